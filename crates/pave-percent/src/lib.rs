//! Percent-encoding, once for every crate: path segments and query values of Pave's API
//! (the CLI), package URLs (the SBOM), PromQL queries (canary analysis), and the decoding of
//! query values the SDK endpoints read. No dependencies, so the pure crates can use it too.

use std::fmt;

/// `s` with every byte outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) written as
/// `%XX`, so it is safe as one path segment, query value or purl component.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

/// A query value as browsers send it (`application/x-www-form-urlencoded`): `+` is a space
/// and `%XX` a byte. Refused when a `%` is not followed by two hex digits or the bytes are not
/// UTF-8, rather than guessed at.
pub fn decode_query_value(s: &str) -> Result<String, DecodeError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
                let byte = match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                    (Some(hi), Some(lo)) => hi << 4 | lo,
                    _ => return Err(DecodeError::BadEscape(s.to_owned())),
                };
                out.push(byte);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8(s.to_owned()))
}

/// Why a query value could not be decoded; shows the value as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    BadEscape(String),
    NotUtf8(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadEscape(s) => write!(f, "bad percent-encoding in {s:?}"),
            DecodeError::NotUtf8(s) => write!(f, "{s:?} is not UTF-8 once decoded"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_bytes_pass_and_every_other_byte_is_escaped() {
        let cases = [
            ("", ""),
            ("AZaz09-._~", "AZaz09-._~"),
            ("a b", "a%20b"),
            ("a/b?c=d&e#f", "a%2Fb%3Fc%3Dd%26e%23f"),
            ("100%+", "100%25%2B"),
            ("@scope", "%40scope"),
            ("rate(x{version=\"v1\"}[1m])", "rate%28x%7Bversion%3D%22v1%22%7D%5B1m%5D%29"),
            ("é", "%C3%A9"),
            ("\u{0}\u{7f}", "%00%7F"),
        ];
        for (raw, want) in cases {
            assert_eq!(encode(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn decoding_undoes_encoding() {
        for raw in ["", "plain", "a b/c?d=e&f", "100%", "é and ☃", "+"] {
            assert_eq!(decode_query_value(&encode(raw)).as_deref(), Ok(raw));
        }
    }

    #[test]
    fn query_values_read_plus_as_space_and_refuse_bad_escapes() {
        assert_eq!(decode_query_value("eu+west%2C%20us").as_deref(), Ok("eu west, us"));
        assert_eq!(decode_query_value("%e2%98%83").as_deref(), Ok("☃"));
        for bad in ["%", "%4", "%zz", "a%g1"] {
            assert_eq!(decode_query_value(bad), Err(DecodeError::BadEscape(bad.into())), "{bad:?}");
        }
        assert_eq!(decode_query_value("%FF"), Err(DecodeError::NotUtf8("%FF".into())));
        assert_eq!(DecodeError::BadEscape("%4".into()).to_string(), "bad percent-encoding in \"%4\"");
    }
}
