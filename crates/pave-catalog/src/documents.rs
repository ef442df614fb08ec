//! Reading documents from files: multi-document YAML (JSON is YAML too), a file or a whole
//! directory, each document remembering where it came from so errors can point at it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Files larger than this are refused rather than read into memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One document and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDoc {
    /// The file path, or `-` for stdin.
    pub source: String,
    /// 0-based position among the documents of that file.
    pub index: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    pub value: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{source_name}: line {line}, column {column}: {message}")]
    Syntax { source_name: String, line: usize, column: usize, message: String },
    #[error("{source_name}#{index}: {message}")]
    NotJson { source_name: String, index: usize, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit for one file")]
    TooLarge { path: String, size: u64 },
    #[error("{path}: no .yaml, .yml or .json files found")]
    Empty { path: String },
}

/// Lines (1-based) at which each document of a multi-document stream begins: the first line
/// of the text, and the line after each `---` separator.
fn document_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![1];
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            if i == 0 {
                starts[0] = 2;
            } else {
                starts.push(i + 2);
            }
        }
    }
    starts
}

/// Splits `text` into documents; empty documents (blank, comments only, `null`) are skipped.
pub fn parse_str(text: &str, source: &str) -> Result<Vec<SourceDoc>, CatalogError> {
    let starts = document_starts(text);
    let mut out = Vec::new();
    for (index, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let yaml = serde_yaml::Value::deserialize(de).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            CatalogError::Syntax { source_name: source.to_owned(), line, column, message: e.to_string() }
        })?;
        if yaml.is_null() {
            continue;
        }
        let value = serde_json::to_value(&yaml).map_err(|e| CatalogError::NotJson {
            source_name: source.to_owned(),
            index,
            message: format!("cannot be represented as JSON (mapping keys must be strings): {e}"),
        })?;
        let line = starts.get(index).copied().unwrap_or(1);
        out.push(SourceDoc { source: source.to_owned(), index, line, value });
    }
    Ok(out)
}

/// Reads a file, every `.yaml`/`.yml`/`.json` file under a directory (sorted, hidden
/// entries skipped), or stdin for `-`.
pub fn load_path(path: &Path) -> Result<Vec<SourceDoc>, CatalogError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().take(MAX_FILE_BYTES + 1), &mut text)
            .map_err(|source| CatalogError::Io { path: "-".into(), source })?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(CatalogError::TooLarge { path: "-".into(), size: text.len() as u64 });
        }
        return parse_str(&text, "-");
    }
    let io = |source| CatalogError::Io { path: path.display().to_string(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(CatalogError::Empty { path: path.display().to_string() });
        }
        let mut out = Vec::new();
        for f in files {
            out.extend(load_file(&f)?);
        }
        Ok(out)
    } else {
        load_file(path)
    }
}

fn load_file(path: &Path) -> Result<Vec<SourceDoc>, CatalogError> {
    let name = path.display().to_string();
    let size = std::fs::metadata(path).map_err(|source| CatalogError::Io { path: name.clone(), source })?.len();
    if size > MAX_FILE_BYTES {
        return Err(CatalogError::TooLarge { path: name, size });
    }
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io { path: name.clone(), source })?;
    parse_str(&text, &name)
}

use std::io::Read as _;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
    let io = |source| CatalogError::Io { path: dir.display().to_string(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
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

    #[test]
    fn splits_documents_and_remembers_lines() {
        let text = "# catalog\nkind: Team\nmetadata: {name: a}\n---\n\n---\nkind: Service\nmetadata: {name: b}\n";
        let docs = parse_str(text, "c.yaml").expect("parse");
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].index, docs[0].line), (0, 1));
        assert_eq!((docs[1].index, docs[1].line), (2, 7));
        assert_eq!(docs[1].value["metadata"]["name"], "b");
    }

    #[test]
    fn reads_json_too() {
        let docs = parse_str(r#"{"kind": "Team", "metadata": {"name": "a"}}"#, "a.json").expect("parse");
        assert_eq!(docs[0].value["kind"], "Team");
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let err = parse_str("kind: Team\nmetadata: {name: [a\n", "bad.yaml").expect_err("bad");
        let msg = err.to_string();
        assert!(msg.starts_with("bad.yaml: line "), "{msg}");
        let err = parse_str("a: 1\n---\n{[1, 2]: x}\n", "keys.yaml").expect_err("non-string key");
        assert!(err.to_string().contains("keys.yaml#1"), "{err}");
    }

    #[test]
    fn walks_directories_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join(".git")).expect("mkdir");
        std::fs::write(dir.path().join("b.yaml"), "kind: B\n").expect("write");
        std::fs::write(dir.path().join("sub/a.yml"), "kind: A\n").expect("write");
        std::fs::write(dir.path().join(".git/x.yaml"), "kind: X\n").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "kind: T\n").expect("write");
        let docs = load_path(dir.path()).expect("load");
        let kinds: Vec<_> = docs.iter().map(|d| d.value["kind"].as_str().unwrap_or("")).collect();
        assert_eq!(kinds, ["B", "A"]);
        assert!(matches!(load_path(&dir.path().join("missing.yaml")), Err(CatalogError::Io { .. })));
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(matches!(load_path(empty.path()), Err(CatalogError::Empty { .. })));
    }
}
