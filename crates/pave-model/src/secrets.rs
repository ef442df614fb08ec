//! A service's secrets: what a name and a value may be, and what may be said about a secret
//! (its name, version, who set it and when — never its value).

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Largest secret value, in bytes. Environment variables this size are already unusual.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Names the runtime sets itself; a secret must not shadow them.
const RESERVED: [&str; 4] = ["PATH", "HOME", "PORT", "LANG"];

/// A secret becomes an environment variable, so its name is one: a letter or `_`, then
/// letters, digits or `_`, at most 128 characters. `PAVE_*`, `LC_*` and the variables the
/// runtime sets (`PATH`, `HOME`, `PORT`, `LANG`) are refused, and so is the service's own
/// port variable (`port_env`).
pub fn validate_name(name: &str, port_env: Option<&str>) -> Result<(), String> {
    let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !(1..=128).contains(&name.len()) || !ok_start || !ok_chars {
        return Err(format!(
            "{name:?} is not a secret name: it becomes an environment variable, so use 1-128 letters, digits \
             or '_', not starting with a digit (DB_PASSWORD)"
        ));
    }
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("PAVE_") || upper.starts_with("LC_") || RESERVED.contains(&upper.as_str()) {
        return Err(format!("{name:?} is a variable the runtime sets itself; choose another name"));
    }
    if port_env.is_some_and(|p| p.eq_ignore_ascii_case(name)) {
        return Err(format!("{name:?} is the service's port variable (spec.runtime.portEnv); choose another name"));
    }
    Ok(())
}

/// A value is UTF-8 text of at most [`MAX_VALUE_BYTES`] without NUL (which no environment
/// variable can hold). One trailing newline, which `echo` and most editors add, is dropped.
/// The error never quotes the value.
pub fn validate_value(raw: &[u8]) -> Result<&str, String> {
    let raw = raw.strip_suffix(b"\r\n").or_else(|| raw.strip_suffix(b"\n")).unwrap_or(raw);
    if raw.is_empty() {
        return Err("the secret value is empty; send the value as the request body (pave secret set reads it from standard input)".into());
    }
    if raw.len() > MAX_VALUE_BYTES {
        return Err(format!("the secret value is {} bytes; at most {MAX_VALUE_BYTES} are allowed", raw.len()));
    }
    let text = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "the secret value is not UTF-8 text (invalid byte at offset {}); encode binary values, e.g. as base64",
            e.valid_up_to()
        )
    })?;
    if let Some(at) = text.find('\0') {
        return Err(format!(
            "the secret value contains a NUL byte at offset {at}, which an environment variable cannot hold"
        ));
    }
    Ok(text)
}

/// What may be said about a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    pub service: String,
    pub environment: String,
    pub name: String,
    /// 1 for the first value, one more for each change.
    pub version: i64,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub updated_by: String,
    /// The master key it is sealed under (`k-` and a hash, not the key).
    pub key_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_environment_variables_the_runtime_does_not_own() {
        for ok in ["DB_PASSWORD", "_X", "apiKey2", &"A".repeat(128)] {
            assert!(validate_name(ok, Some("PORT")).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("", "not a secret name"),
            ("1ABC", "not a secret name"),
            ("DB-PASSWORD", "not a secret name"),
            ("A B", "not a secret name"),
            (&"A".repeat(129), "not a secret name"),
            ("PAVE_SERVICE", "runtime sets itself"),
            ("pave_x", "runtime sets itself"),
            ("PATH", "runtime sets itself"),
            ("LC_ALL", "runtime sets itself"),
            ("HTTP_PORT", "port variable"),
        ] {
            let err = validate_name(bad, Some("HTTP_PORT")).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn values_are_text_and_errors_never_quote_them() {
        assert_eq!(validate_value(b"s3cret\n").unwrap(), "s3cret");
        assert_eq!(validate_value(b"s3cret\r\n").unwrap(), "s3cret");
        assert_eq!(validate_value(b"two\nlines\n").unwrap(), "two\nlines");
        assert_eq!(validate_value(b" spaced ").unwrap(), " spaced ");
        let long = vec![b'x'; MAX_VALUE_BYTES + 1];
        for (bad, says) in [
            (&b""[..], "empty"),
            (b"\n", "empty"),
            (b"abc\xffdef-hidden", "not UTF-8 text (invalid byte at offset 3)"),
            (b"abc\0def-hidden", "NUL byte at offset 3"),
            (&long[..], "65537 bytes"),
        ] {
            let err = validate_value(bad).unwrap_err();
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("hidden") && !err.contains("xxxx"), "{err}");
        }
    }
}
