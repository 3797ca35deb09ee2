//! Comparing secrets without leaking, through timing, how much of them matched.

/// Equal lengths and equal bytes, with no early exit. The length check comes first: comparing
/// zipped bytes alone would let an empty value match anything.
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::eq;

    #[test]
    fn compares_whole_values() {
        assert!(eq(b"secret-token", b"secret-token"));
        assert!(!eq(b"secret-token", b"secret-tokem"));
        assert!(!eq(b"secret", b"secret-token"));
        assert!(!eq(b"", b"secret"));
    }
}
