//! Resource names: DNS-label-like, so they are safe in URLs, hostnames, Kubernetes objects and
//! file names alike.

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("is {0} characters long; the limit is 63")]
    TooLong(usize),
    #[error("must start with a lowercase letter, found {0:?}")]
    BadStart(char),
    #[error("must end with a lowercase letter or digit, found {0:?}")]
    BadEnd(char),
    #[error("may only contain lowercase letters, digits and '-', found {0:?}")]
    BadChar(char),
}

/// Checks that `name` is a DNS label (RFC 1123) that starts with a letter.
pub fn validate(name: &str) -> Result<(), NameError> {
    let first = name.chars().next().ok_or(NameError::Empty)?;
    if name.len() > 63 {
        return Err(NameError::TooLong(name.len()));
    }
    if !first.is_ascii_lowercase() {
        return Err(NameError::BadStart(first));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(NameError::BadChar(bad));
    }
    let last = name.chars().last().expect("non-empty checked above");
    if last == '-' {
        return Err(NameError::BadEnd(last));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "checkout", "team-a1", &"a".repeat(63)] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_with_reason() {
        assert_eq!(validate(""), Err(NameError::Empty));
        assert_eq!(validate(&"a".repeat(64)), Err(NameError::TooLong(64)));
        assert_eq!(validate("1abc"), Err(NameError::BadStart('1')));
        assert_eq!(validate("Abc"), Err(NameError::BadStart('A')));
        assert_eq!(validate("ab_c"), Err(NameError::BadChar('_')));
        assert_eq!(validate("abc-"), Err(NameError::BadEnd('-')));
    }
}
