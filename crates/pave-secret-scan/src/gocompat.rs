//! gitleaks' patterns are Go RE2 regexes. Rust's `regex` reads nearly all of them the same
//! way, with two differences that matter:
//!
//! - Go's `\w \d \s \b` (and their negations) are ASCII-only; Rust's are Unicode. Left as
//!   they are, they match differently on non-ASCII text, and `[\w-]{50,1000}` compiles to a
//!   50 MB automaton instead of a few hundred kilobytes.
//! - Go reads a `{` that does not start `{n}`, `{n,}` or `{n,m}` as a literal; Rust refuses it.
//!
//! [`go_to_rust`] rewrites a pattern so Rust matches exactly what Go matches: Perl classes
//! become explicit ASCII classes, `\b` becomes ASCII `(?-u:\b)`, a stray `{` is escaped, and
//! inside a class a literal `[` and Rust's set operators (`&&`, `--`, `~~`) are escaped.

const WORD: &str = "0-9A-Za-z_";
const DIGIT: &str = "0-9";
const SPACE: &str = r"\t\n\x0C\r ";

/// The Rust pattern that matches what Go's `regexp` matches for `pattern`.
pub fn go_to_rust(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut i = 0;
    let mut in_class = false;
    // Index just after `[` or `[^`: a `]` there is a literal.
    let mut class_start = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            let e = chars[i + 1];
            let replaced = match (in_class, e) {
                (true, 'w') => Some(WORD.to_owned()),
                (true, 'd') => Some(DIGIT.to_owned()),
                (true, 's') => Some(SPACE.to_owned()),
                (false, 'w') => Some(format!("[{WORD}]")),
                (false, 'd') => Some(format!("[{DIGIT}]")),
                (false, 's') => Some(format!("[{SPACE}]")),
                (_, 'W') => Some(format!("[^{WORD}]")),
                (_, 'D') => Some(format!("[^{DIGIT}]")),
                (_, 'S') => Some(format!("[^{SPACE}]")),
                (false, 'b') => Some(r"(?-u:\b)".to_owned()),
                (false, 'B') => Some(r"(?-u:\B)".to_owned()),
                _ => None,
            };
            match replaced {
                Some(r) => out.push_str(&r),
                None => {
                    out.push('\\');
                    out.push(e);
                }
            }
            i += 2;
            continue;
        }
        if in_class {
            if c == '[' && chars.get(i + 1) == Some(&':') {
                // A POSIX class, `[:alnum:]`, which both engines read alike.
                let end = (i + 2..chars.len().saturating_sub(1))
                    .find(|&k| chars[k] == ':' && chars[k + 1] == ']')
                    .map_or(chars.len(), |k| k + 2);
                out.extend(&chars[i..end]);
                i = end;
                continue;
            }
            if c == '[' {
                out.push_str(r"\[");
            } else if matches!(c, '&' | '~' | '-') && chars.get(i + 1) == Some(&c) {
                out.push('\\');
                out.push(c);
            } else {
                if c == ']' && i > class_start {
                    in_class = false;
                }
                out.push(c);
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                class_start = i;
                if chars.get(i) == Some(&']') {
                    out.push_str(r"\]");
                    i += 1;
                    class_start = i;
                }
            }
            '{' => {
                if is_repetition(&chars[i..]) {
                    out.push('{');
                } else {
                    out.push_str(r"\{");
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Whether `s` (starting at `{`) is `{n}`, `{n,}` or `{n,m}`.
fn is_repetition(s: &[char]) -> bool {
    let Some(end) = s.iter().position(|&c| c == '}') else {
        return false;
    };
    let inner: String = s[1..end].iter().collect();
    let (min, max) = inner.split_once(',').map_or((inner.as_str(), None), |(a, b)| (a, Some(b)));
    !min.is_empty()
        && min.bytes().all(|b| b.is_ascii_digit())
        && max.is_none_or(|m| m.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::go_to_rust;

    #[test]
    fn perl_classes_become_ascii_and_stray_braces_literal() {
        let cases = [
            (r"\w+", r"[0-9A-Za-z_]+"),
            (r"[\w.-]{0,50}", r"[0-9A-Za-z_.-]{0,50}"),
            (r"\bkey\b", r"(?-u:\b)key(?-u:\b)"),
            (r"^\${(?:[A-Z_]+)}$", r"^\$\{(?:[A-Z_]+)}$"),
            (r"import[ \t]+{[ \t\w,]+}", r"import[ \t]+\{[ \t0-9A-Za-z_,]+}"),
            (r"a{2,}b{3}c{1,4}", r"a{2,}b{3}c{1,4}"),
            (r"[^\s]", r"[^\t\n\x0C\r ]"),
            (r"[]a]", r"[\]a]"),
            (r"[[:alnum:]_]", r"[[:alnum:]_]"),
            (r"[a[b]", r"[a\[b]"),
            (r"[a&&b]", r"[a\&&b]"),
            (r"\D\S\W", r"[^0-9][^\t\n\x0C\r ][^0-9A-Za-z_]"),
            (r"\.\\\$", r"\.\\\$"),
        ];
        for (go, rust) in cases {
            assert_eq!(go_to_rust(go), rust, "{go}");
            regex::Regex::new(&go_to_rust(go)).unwrap_or_else(|e| panic!("{go}: {e}"));
        }
    }

    #[test]
    fn ascii_semantics_like_go() {
        let re = regex::Regex::new(&go_to_rust(r"^\w+$")).expect("compiles");
        assert!(re.is_match("abc_123"));
        assert!(!re.is_match("café"), "Go's \\w is ASCII");
        let re = regex::Regex::new(&go_to_rust(r"a\sb")).expect("compiles");
        assert!(re.is_match("a b") && !re.is_match("a\u{a0}b"));
    }
}
