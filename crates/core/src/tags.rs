//! The one rule for channel tags, for `[[channels]]` in config.toml and the HTTP API alike: a
//! tag is 1 to [`MAX_TAG_CHARS`] characters (Unicode scalar values, not bytes), and not only
//! whitespace; the API takes at most [`MAX_TAGS`] per channel.

/// The most tags one channel takes through the API.
pub const MAX_TAGS: usize = 50;

/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// Whether `tag` is a valid tag.
pub fn is_valid(tag: &str) -> bool {
    !tag.trim().is_empty() && tag.chars().count() <= MAX_TAG_CHARS
}

/// The first tag of `tags` that is not valid, if any.
pub fn first_invalid(tags: &[String]) -> Option<&str> {
    tags.iter().map(String::as_str).find(|tag| !is_valid(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_counted_in_characters() {
        assert!(is_valid("news"));
        assert!(is_valid(&"é".repeat(64)), "64 characters, 128 bytes");
        assert!(!is_valid(&"é".repeat(65)));
        assert!(!is_valid(""));
        assert!(!is_valid("   "));
        assert_eq!(
            first_invalid(&["ok".into(), " ".into(), "x".into()]),
            Some(" ")
        );
        assert_eq!(first_invalid(&["ok".into()]), None);
    }
}
