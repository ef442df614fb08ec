//! Limits on untrusted YAML, checked on the text before any parser sees it.
//!
//! libyaml (behind serde_yaml) spends super-linear time on deeply nested collections: a
//! 120 KB `pnpm-lock.yaml` of nested flow sequences took 7.6 s, and 100,000 levels did not
//! finish in 30 s, long before serde_yaml's own recursion limit is reached (it applies after
//! the whole stream is parsed). [`check`] walks the bytes once, counting block nesting (the
//! indentation stack and compact `- - x` entries) and flow nesting (`[`, `{` outside quoted
//! scalars, comments and block scalars), and refuses a text that is too large or nests too
//! deep. It over-counts rather than under-counts where YAML is ambiguous without a full
//! parse; the limits leave room for that: real lockfiles and catalogs nest under 20 levels.

/// Nesting depth allowed by default: far above any real lockfile, manifest or catalog
/// (they stay under 20), well below where parsing gets slow.
pub const MAX_DEPTH: usize = 64;

/// What a text may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
}

/// Why a text was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{bytes} bytes, larger than the {} MiB limit for YAML", .limit >> 20)]
    TooLarge { bytes: usize, limit: usize },
    #[error("line {line}: collections nested deeper than {limit} levels, the limit for YAML")]
    TooDeep { line: usize, limit: usize },
}

/// Refuses `text` when it is larger than `limits.max_bytes` or nests collections deeper than
/// `limits.max_depth`, naming the line where the limit was passed.
pub fn check(text: &str, limits: Limits) -> Result<(), LimitError> {
    if text.len() > limits.max_bytes {
        return Err(LimitError::TooLarge { bytes: text.len(), limit: limits.max_bytes });
    }
    let too_deep = |line: usize| LimitError::TooDeep { line, limit: limits.max_depth };
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<u8> = None;
    // The indentation of the line that opened a block scalar (`key: |`): deeper lines are text.
    let mut block_scalar: Option<usize> = None;
    let mut block_depth = 0usize;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.as_bytes();
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let blank = line[indent..].iter().all(|b| b.is_ascii_whitespace());
        if let Some(parent) = block_scalar {
            if blank || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        let mut at = indent;
        if quote.is_none() && flow == 0 {
            if blank || line[indent] == b'#' {
                continue;
            }
            if line.starts_with(b"---") || line.starts_with(b"...") {
                indents.clear();
            }
            while indents.last().is_some_and(|&top| top > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
            // `- - - x` and `? ` open a collection each without a new line.
            let mut compact = 0;
            while at + 1 < line.len() && matches!(line[at], b'-' | b'?') && matches!(line[at + 1], b' ' | b'\t') {
                compact += 1;
                at += 2;
                while at < line.len() && line[at] == b' ' {
                    at += 1;
                }
            }
            block_depth = indents.len() + compact;
            if block_depth > limits.max_depth {
                return Err(too_deep(line_no));
            }
        }
        let mut prev = b' ';
        let mut code_end = line.len();
        let mut j = at;
        while j < line.len() {
            let c = line[j];
            match quote {
                Some(b'"') => match c {
                    b'\\' => j += 1,
                    b'"' => quote = None,
                    _ => {}
                },
                Some(_) => {
                    if c == b'\'' {
                        if line.get(j + 1) == Some(&b'\'') {
                            j += 1; // `''` is a quote inside the scalar
                        } else {
                            quote = None;
                        }
                    }
                }
                None => {
                    let token_start = matches!(prev, b' ' | b'\t' | b'[' | b'{' | b',') || (flow > 0 && prev == b':');
                    match c {
                        b'#' if matches!(prev, b' ' | b'\t') => {
                            code_end = j;
                            break;
                        }
                        b'"' | b'\'' if token_start => quote = Some(c),
                        b'[' | b'{' if flow > 0 || token_start => {
                            flow += 1;
                            if block_depth + flow > limits.max_depth {
                                return Err(too_deep(line_no));
                            }
                        }
                        b']' | b'}' if flow > 0 => flow -= 1,
                        _ => {}
                    }
                }
            }
            prev = c;
            j += 1;
        }
        if quote.is_none() && flow == 0 && opens_block_scalar(&line[..code_end]) {
            block_scalar = Some(indent);
        }
    }
    Ok(())
}

/// Whether a line ends with a block scalar header: `|`, `>`, with optional chomping and
/// indentation indicators (`|-`, `>+2`), as a value (`key: |`, `- >`) or alone.
fn opens_block_scalar(code: &[u8]) -> bool {
    let code = code.trim_ascii_end();
    let word_start = code.iter().rposition(|b| *b == b' ' || *b == b'\t').map_or(0, |p| p + 1);
    let word = &code[word_start..];
    matches!(word.first(), Some(b'|' | b'>'))
        && word[1..].iter().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_bytes: 1 << 20, max_depth: MAX_DEPTH };

    fn depth_error(text: &str) -> Option<usize> {
        match check(text, LIMITS) {
            Ok(()) => None,
            Err(LimitError::TooDeep { line, .. }) => Some(line),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn real_shapes_pass() {
        let pnpm = "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      ms:\n        specifier: ^2.1.3\n        version: 2.1.3\npackages:\n  ms@2.1.3:\n    resolution: {integrity: sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==}\n";
        assert_eq!(check(pnpm, LIMITS), Ok(()));
        let catalog = "kind: Service\nmetadata: {name: shop, labels: {tier: \"1\"}}\nspec:\n  description: |\n    Brackets in text [[[[[[[[ are text\n    # and so is this\n  ports:\n  - - 8080\n    - {name: \"[[\", note: 'it''s [ fine'}\n";
        assert_eq!(check(catalog, LIMITS), Ok(()));
        let json = format!("{{\"a\": {}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(check(&json, LIMITS), Ok(()));
        // Many shallow flows in a row do not add up.
        assert_eq!(check(&"x: [[a], {b: [c]}]\n".repeat(10_000), LIMITS), Ok(()));
        // Plain scalars with brackets in block context are text.
        assert_eq!(check(&"- a[b\n".repeat(1_000), LIMITS), Ok(()));
    }

    #[test]
    fn deep_flow_block_and_compact_nesting_are_refused_with_the_line() {
        let deep_flow = format!("a: 1\nx: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(depth_error(&deep_flow), Some(2));
        let deep_json = format!("{}{}", "{\"a\":".repeat(65), "}".repeat(65));
        assert_eq!(depth_error(&deep_json), Some(1));
        let deep_block: String = (0..100).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert_eq!(depth_error(&deep_block), Some(MAX_DEPTH + 1));
        let compact = format!("{}x\n", "- ".repeat(100_000));
        assert_eq!(depth_error(&compact), Some(1));
        // A flow split over lines nests as it would on one (the mapping around it counts).
        let split = format!("x: {}\n1{}\n", "[\n".repeat(70), "]".repeat(70));
        assert_eq!(depth_error(&split), Some(MAX_DEPTH));
    }

    #[test]
    fn size_is_checked_first() {
        let e = check(&"a: 1\n".repeat(300_000), LIMITS).unwrap_err();
        assert_eq!(e, LimitError::TooLarge { bytes: 1_500_000, limit: 1 << 20 });
        assert_eq!(e.to_string(), "1500000 bytes, larger than the 1 MiB limit for YAML");
    }
}
