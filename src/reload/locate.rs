//! Loading a configuration file so that every error names its line.
//!
//! figment names the key of a bad value but not its line, and [`Config::validate`] names keys
//! only. So a file that figment refuses is parsed again with `toml` (whose errors carry the
//! position), and the key of a validation error is looked up in the file's syntax tree
//! (`toml_edit` keeps the position of every item).

use serde::Serialize;

use crate::config::{Config, ConfigError};

/// Why a configuration file was refused, with where in the file when known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    pub message: String,
    /// The dotted key (`tracked_users[1].account`), when known.
    pub key: Option<String>,
    /// 1-based line and column in the file, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if let Some(key) = &self.key
            && !self.message.contains(key.as_str())
        {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigProblem {}

/// Loads `text` as the configuration file (defaults, then the text, then the environment, then
/// validation: the same pipeline as [`Config::load`]) and locates any error in `text`.
pub fn load_text(text: &str) -> Result<Config, ConfigProblem> {
    match Config::load_text(text) {
        Ok(config) => Ok(config),
        Err(ConfigError::Invalid { key, message }) => {
            let position = key_position(text, &key);
            Err(ConfigProblem {
                message,
                line: position.map(|(line, _)| line),
                column: position.map(|(_, column)| column),
                key: Some(key),
            })
        }
        Err(ConfigError::Load(error)) => {
            let key = (!error.path.is_empty()).then(|| error.path.join("."));
            // The file alone, parsed by `toml`, tells where a syntax error, an unknown key or a
            // wrong type is. If the file alone is fine, the environment is at fault.
            match toml::from_str::<Config>(text) {
                Err(toml_error) => {
                    let position = toml_error.span().map(|span| position_of(text, span.start));
                    Err(ConfigProblem {
                        message: toml_error.message().trim().to_owned(),
                        key,
                        line: position.map(|(line, _)| line),
                        column: position.map(|(_, column)| column),
                    })
                }
                Ok(_) => Err(ConfigProblem {
                    message: error.to_string(),
                    key,
                    line: None,
                    column: None,
                }),
            }
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn position_of(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// Where the item named by a dotted key (`webhooks.endpoints[1].name`, `tracked_users[0]`) is
/// in `text`: the deepest part of the key found in the file.
pub fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = document.as_item();
    let mut found = None;
    for part in key_parts(key) {
        let next = match part {
            KeyPart::Name(name) => item.get(name),
            KeyPart::Index(index) => item.get(index),
        };
        let Some(next) = next else { break };
        item = next;
        if let Some(span) = item.span() {
            found = Some(span.start);
        }
    }
    found.map(|offset| position_of(text, offset))
}

enum KeyPart<'a> {
    Name(&'a str),
    Index(usize),
}

/// `a.b[2].c` -> a, b, 2, c.
fn key_parts(key: &str) -> Vec<KeyPart<'_>> {
    let mut parts = Vec::new();
    for segment in key.split('.') {
        let (name, rest) = match segment.find('[') {
            Some(index) => segment.split_at(index),
            None => (segment, ""),
        };
        if !name.is_empty() {
            parts.push(KeyPart::Name(name));
        }
        for index in rest.split(['[', ']']).filter(|s| !s.is_empty()) {
            if let Ok(index) = index.parse() {
                parts.push(KeyPart::Index(index));
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_toml_names_the_line() {
        let text = "[presence]\ngap_seconds = 180\n[[tracked_users]\nusername = \"x\"\n";
        let problem = load_text(text).expect_err("unclosed header");
        assert_eq!(problem.line, Some(3), "{problem:?}");
        assert!(
            problem.to_string().starts_with("line 3, column"),
            "{problem}"
        );
    }

    #[test]
    fn wrong_type_names_the_line_and_the_key() {
        let text = "[presence]\npoll_min_seconds = 60\ngap_seconds = \"three minutes\"\n";
        let problem = load_text(text).expect_err("wrong type");
        assert_eq!(problem.line, Some(3), "{problem:?}");
        assert_eq!(problem.key.as_deref(), Some("presence.gap_seconds"));
        assert!(problem.to_string().contains("line 3"), "{problem}");
    }

    #[test]
    fn unknown_key_names_the_line() {
        let text = "[http]\nbind = \"127.0.0.1:8080\"\n\n[presence]\ngap_secs = 10\n";
        let problem = load_text(text).expect_err("unknown key");
        assert_eq!(problem.line, Some(5), "{problem:?}");
        assert!(problem.message.contains("gap_secs"), "{problem}");
    }

    #[test]
    fn unknown_account_label_names_the_line_of_the_entry() {
        let text = "[[accounts]]\nlabel = \"main\"\n\n[[tracked_users]]\nusername = \"alice_w\"\n\n\
                    [[tracked_users]]\nusername = \"bob_smith\"\naccount = \"ghost\"\n";
        let problem = load_text(text).expect_err("unknown account");
        assert_eq!(problem.key.as_deref(), Some("tracked_users[1].account"));
        assert_eq!(problem.line, Some(9), "{problem:?}");
        assert!(problem.to_string().contains("ghost"), "{problem}");
    }

    #[test]
    fn keys_are_found_in_nested_arrays_of_tables() {
        let text = "[webhooks]\njitter = 0.1\n\n[[webhooks.endpoints]]\nname = \"a\"\n\n\
                    [[webhooks.endpoints]]\nname = \"b\"\nurl = \"x\"\n";
        assert_eq!(
            key_position(text, "webhooks.endpoints[1].url"),
            Some((9, 7))
        );
        assert_eq!(
            key_position(text, "webhooks.endpoints[1]").map(|p| p.0),
            Some(7)
        );
        assert_eq!(key_position(text, "webhooks.jitter"), Some((2, 10)));
        // A key the file does not hold (a default) has no position.
        assert_eq!(key_position(text, "presence.gap_seconds"), None);
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position_of("ab\ncé\nx", 6), (2, 3));
        assert_eq!(position_of("", 0), (1, 1));
    }
}
