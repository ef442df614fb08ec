//! Reading documents from files: multi-document YAML (JSON is YAML too), a file or a whole
//! directory, each document remembering where it came from so errors can point at it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Files larger than this are refused rather than read into memory: a catalog file this big
/// is a mistake (a log or a dump passed by accident), not a catalog.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One document and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDoc {
    /// The file path, or `-` for stdin.
    pub source: String,
    /// 0-based position among the documents of that file, empty documents included, so it
    /// matches what a reader counts between `---` separators.
    pub index: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    pub value: Value,
}

/// Why documents could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{source_name}{}: {message}", at(.location))]
    Syntax {
        source_name: String,
        /// 1-based line and column, when the parser knows them.
        location: Option<(usize, usize)>,
        message: String,
    },
    #[error("{source_name}#{index} (line {line}): {message}")]
    Unrepresentable { source_name: String, index: usize, line: usize, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: larger than the 16 MiB limit for one catalog file")]
    TooLarge { path: String },
    /// Refused before parsing: nested too deep (or too large) for the YAML parser to be safe.
    #[error("{source_name}: {limit}")]
    Limit { source_name: String, limit: pave_yaml::LimitError },
    #[error("{path}: no .yaml, .yml or .json files found in this directory")]
    Empty { path: String },
}

fn at(location: &Option<(usize, usize)>) -> String {
    location.map(|(line, column)| format!(": line {line}, column {column}")).unwrap_or_default()
}

/// Lines (1-based) at which each document of a multi-document stream begins, in the order
/// the YAML parser yields them: the first line of a document's content, not counting blank
/// lines, comments and `%` directives; for an empty document, the line after its `---`. Only
/// `---` in column 0 is a marker, as in YAML, so one inside an indented block scalar is text.
fn document_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    // `open`: a document has begun; `pending`: it began with a bare `---`, content not yet seen.
    let (mut open, mut pending) = (false, false);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.strip_prefix("---").filter(|r| r.is_empty() || r.starts_with([' ', '\t'])) {
            let rest = rest.trim_start();
            pending = rest.is_empty() || rest.starts_with('#');
            starts.push(if pending { n + 1 } else { n });
            open = true;
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || (!open && line.starts_with('%')) {
            continue;
        }
        if !open {
            starts.push(n);
            open = true;
        } else if pending && let Some(last) = starts.last_mut() {
            *last = n;
        }
        pending = false;
    }
    starts
}

/// What a catalog text may be before it is parsed: the file limit, and nesting far above any
/// real catalog's (libyaml's time grows super-linearly with depth).
const YAML_LIMITS: pave_yaml::Limits =
    pave_yaml::Limits { max_bytes: MAX_FILE_BYTES as usize, max_depth: pave_yaml::MAX_DEPTH };

/// Splits `text` into documents. Empty documents (blank, comments only, `null`) are skipped;
/// YAML merge keys (`<<: *anchor`) are applied; values JSON cannot hold (non-string mapping
/// keys, tags, NaN) are refused, naming the field. A text larger than the file limit or
/// nested deeper than [`pave_yaml::MAX_DEPTH`] is refused before the parser sees it.
pub fn parse_str(text: &str, source: &str) -> Result<Vec<SourceDoc>, CatalogError> {
    pave_yaml::check(text, YAML_LIMITS)
        .map_err(|limit| CatalogError::Limit { source_name: source.to_owned(), limit })?;
    let starts = document_starts(text);
    let mut out = Vec::new();
    for (index, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let mut yaml = serde_yaml::Value::deserialize(de).map_err(|e| {
            let location = e.location().map(|l| (l.line(), l.column()));
            let mut message = e.to_string();
            // serde_yaml repeats the position inside its message; it is shown once already.
            if let Some((l, c)) = location {
                message = message.replacen(&format!(" at line {l} column {c}"), "", 1);
            }
            CatalogError::Syntax { source_name: source.to_owned(), location, message }
        })?;
        let line = starts.get(index).copied().unwrap_or(1);
        let unrepresentable =
            |message: String| CatalogError::Unrepresentable { source_name: source.to_owned(), index, line, message };
        yaml.apply_merge().map_err(|e| unrepresentable(format!("merge key `<<`: {e}")))?;
        if yaml.is_null() {
            continue;
        }
        let value = to_json(yaml, "").map_err(unrepresentable)?;
        out.push(SourceDoc { source: source.to_owned(), index, line, value });
    }
    Ok(out)
}

/// Converts a YAML value to JSON; the error names the dotted path of the offending field.
fn to_json(yaml: serde_yaml::Value, path: &str) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    let here = |what: String| if path.is_empty() { what } else { format!("{path}: {what}") };
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| here(format!("{n} cannot be represented in JSON")))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => return Err(here(format!("mapping key {n} is a number; quote it: \"{n}\""))),
                    Y::Bool(b) => return Err(here(format!("mapping key {b} is a boolean; quote it: \"{b}\""))),
                    Y::Null => return Err(here("a mapping key is null (empty or `~`); keys must be strings".into())),
                    _ => {
                        return Err(here(
                            "a mapping key is a sequence, mapping or tagged value; keys must be strings".into(),
                        ));
                    }
                };
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                let v = to_json(v, &child)?;
                out.insert(key, v);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => return Err(here(format!("YAML tag {} is not supported", t.tag))),
    })
}

/// Reads a file, every `.yaml`/`.yml`/`.json` file under a directory, or stdin for `-`.
///
/// Directories are walked recursively in sorted path order, so results are the same on every
/// machine. Hidden entries (`.git`, `.github`, `.pre-commit-config.yaml`) are skipped, and
/// symbolic links to directories are not followed (no cycles); a file named explicitly is
/// read whatever its extension.
pub fn load_path(path: &Path) -> Result<Vec<SourceDoc>, CatalogError> {
    if path == Path::new("-") {
        let text = read_limited(std::io::stdin().lock(), "-")?;
        return parse_str(&text, "-");
    }
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| CatalogError::Io { path: name.clone(), source })?;
    if !meta.is_dir() {
        return load_file(path);
    }
    let mut files = Vec::new();
    walk(path, &mut files)?;
    if files.is_empty() {
        return Err(CatalogError::Empty { path: name });
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        out.extend(load_file(&f)?);
    }
    Ok(out)
}

fn load_file(path: &Path) -> Result<Vec<SourceDoc>, CatalogError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| CatalogError::Io { path: name.clone(), source })?;
    let text = read_limited(file, &name)?;
    parse_str(&text, &name)
}

/// Reads at most one byte over the limit, so an oversized input costs no more than that.
fn read_limited(reader: impl Read, name: &str) -> Result<String, CatalogError> {
    let mut text = String::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| CatalogError::Io { path: name.to_owned(), source })?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(CatalogError::TooLarge { path: name.to_owned() });
    }
    Ok(text)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
    let io = |source| CatalogError::Io { path: dir.display().to_string(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type().map_err(io)?.is_dir() {
            walk(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, usize)> {
        parse_str(text, "c.yaml").expect("parse").iter().map(|d| (d.index, d.line)).collect()
    }

    /// `pave apply` of a deeply nested file (100,000 levels did not finish in 30 s) is refused
    /// before parsing, with the line; an alias bomb is refused by the parser.
    #[test]
    fn hostile_yaml_is_refused_by_kind() {
        let deep = format!("kind: Team\nmetadata: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse_str(&deep, "deep.yaml").unwrap_err();
        assert!(
            matches!(err, CatalogError::Limit { limit: pave_yaml::LimitError::TooDeep { line: 2, .. }, .. }),
            "{err}"
        );
        assert_eq!(err.to_string(), "deep.yaml: line 2: collections nested deeper than 64 levels, the limit for YAML");
        let block: String = (0..100_000).map(|_| "- ").collect::<String>() + "x\n";
        assert!(matches!(parse_str(&block, "b.yaml"), Err(CatalogError::Limit { .. })));
        let mut bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n".to_owned();
        for (name, prev) in
            ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            bomb.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 10].join(", ")));
        }
        let err = parse_str(&bomb, "bomb.yaml").unwrap_err();
        assert!(matches!(err, CatalogError::Syntax { .. }) && err.to_string().contains("repetition limit"), "{err}");
    }

    #[test]
    fn splits_documents_and_remembers_lines() {
        let text = "# catalog\nkind: Team\nmetadata: {name: a}\n---\n\n---\nkind: Service\nmetadata: {name: b}\n";
        let docs = parse_str(text, "c.yaml").expect("parse");
        assert_eq!(docs.len(), 2, "the empty middle document is skipped");
        assert_eq!((docs[0].index, docs[0].line), (0, 2), "the leading comment is not the document");
        assert_eq!((docs[1].index, docs[1].line), (2, 7));
        assert_eq!(docs[1].value["metadata"]["name"], "b");
        assert_eq!(docs[1].source, "c.yaml");
    }

    #[test]
    fn document_lines_follow_yaml_markers() {
        // A leading comment and `---` open one document, not two.
        assert_eq!(lines("# header\n---\na: 1\n---\nb: 2\n"), [(0, 3), (1, 5)]);
        // Content on the marker line starts the document there; a comment after it does not.
        assert_eq!(lines("--- {a: 1}\n--- # second\nb: 2\n"), [(0, 1), (1, 3)]);
        // `...` ends a document; what follows up to the next `---` belongs to none.
        assert_eq!(lines("a: 1\n...\n# between\n---\nb: 2\n"), [(0, 1), (1, 5)]);
        // `---` inside an indented block scalar is text, not a marker.
        assert_eq!(lines("a: |\n  ---\n  x\n---\nb: 2\n"), [(0, 1), (1, 5)]);
        assert_eq!(lines("%YAML 1.2\n---\na: 1\n"), [(0, 3)]);
        // Blank lines and comments after a marker are not the document either.
        assert_eq!(lines("a: 1\n---\n\n# b\nb: 2\n"), [(0, 1), (1, 5)]);
        assert!(lines("# only a comment\n").is_empty());
    }

    #[test]
    fn reads_json_and_yaml_merge_keys() {
        let docs = parse_str(r#"{"kind": "Team", "metadata": {"name": "a"}}"#, "a.json").expect("parse");
        assert_eq!(docs[0].value["kind"], "Team");
        let docs = parse_str("base: &b {owner: x, tier: 2}\nsvc: {<<: *b, tier: 1}\n", "m.yaml").expect("parse");
        assert_eq!(docs[0].value["svc"], serde_json::json!({"owner": "x", "tier": 1}));
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = parse_str("kind: Team\nmetadata: {name: a}\n---\nkind: Team\nmetadata: {name: [a\n", "bad.yaml")
            .expect_err("bad");
        let CatalogError::Syntax { location: Some((line, _)), .. } = &err else { panic!("{err:?}") };
        assert_eq!(*line, 6, "the parser notices at end of input: {err}");
        assert!(err.to_string().starts_with("bad.yaml: line 6, column 1: did not find expected"), "{err}");

        let err = parse_str("kind: Team\n  name: x\n", "indent.yaml").expect_err("bad");
        assert!(err.to_string().starts_with("indent.yaml: line 2, column 7: "), "{err}");
    }

    #[test]
    fn values_json_cannot_hold_are_refused_by_field() {
        let err = parse_str("a: 1\n---\nmetadata:\n  labels: {1: x}\n", "keys.yaml").expect_err("key");
        assert_eq!(
            err.to_string(),
            "keys.yaml#1 (line 3): metadata.labels: mapping key 1 is a number; quote it: \"1\""
        );
        let err = parse_str("spec: {members: [a, !secret b]}\n", "tag.yaml").expect_err("tag");
        assert!(err.to_string().contains("spec.members[1]: YAML tag !secret is not supported"), "{err}");
        assert!(parse_str("x: .nan\n", "nan.yaml").is_err());
    }

    #[test]
    fn walks_directories_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in ["sub", ".git", "a-dir"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        for (file, text) in [
            ("b.yaml", "kind: B\n"),
            ("sub/a.yml", "kind: A\n---\nkind: A2\n"),
            ("a-dir/c.json", r#"{"kind": "C"}"#),
            (".git/x.yaml", "kind: X\n"),
            (".hidden.yaml", "kind: H\n"),
            ("notes.txt", "kind: T\n"),
        ] {
            std::fs::write(root.join(file), text).expect("write");
        }
        let docs = load_path(root).expect("load");
        let kinds: Vec<_> = docs.iter().filter_map(|d| d.value["kind"].as_str()).collect();
        assert_eq!(kinds, ["C", "B", "A", "A2"]);
        assert!(docs[3].source.ends_with("a.yml") && docs[3].index == 1 && docs[3].line == 3);

        // A file named explicitly is read whatever its extension.
        assert_eq!(load_path(&root.join("notes.txt")).expect("load")[0].value["kind"], "T");
        let err = load_path(&root.join("missing.yaml")).expect_err("missing");
        assert!(matches!(err, CatalogError::Io { .. }) && err.to_string().contains("missing.yaml"), "{err}");
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(load_path(empty.path()), Err(CatalogError::Empty { .. })));
    }

    #[test]
    fn refuses_oversized_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("huge.yaml");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_FILE_BYTES + 1).expect("sparse file");
        let err = load_path(&path).expect_err("too large");
        assert!(matches!(err, CatalogError::TooLarge { .. }), "{err}");
        assert!(err.to_string().ends_with("huge.yaml: larger than the 16 MiB limit for one catalog file"), "{err}");
    }
}
