//! Output for people (aligned tables) or scripts (`-o json`).

use clap::ValueEnum;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// The same data as `json`, as YAML (`pave get … -o yaml` applies back unchanged).
    Yaml,
}

impl Format {
    /// Data for scripts (JSON or YAML) rather than a table for people.
    pub fn structured(self) -> bool {
        matches!(self, Format::Json | Format::Yaml)
    }
}

/// Whether [`json`] writes YAML: one output format per invocation, chosen where the command
/// reads its client options ([`crate::client::Client::new`]).
static AS_YAML: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn use_format(format: Format) {
    AS_YAML.store(format == Format::Yaml, std::sync::atomic::Ordering::Relaxed);
}

/// Prints rows under headers, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| clean(c).into_owned()).collect()).collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Prints data for scripts: JSON, or YAML under `-o yaml`.
pub fn json(value: &Value) {
    if AS_YAML.load(std::sync::atomic::Ordering::Relaxed) {
        print!("{}", yaml(value));
    } else {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
    }
}

/// `value` as a YAML document (strings with control characters come out escaped).
pub fn yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// Text safe to print on a terminal: control characters (escape sequences that could move
/// the cursor, retitle the window or hide what follows) and bidirectional overrides are shown
/// escaped (`\u{1b}`), never sent raw. Everything printed from the server goes through this.
pub fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A JSON value as a short cell: strings bare (escaped for the terminal), arrays
/// comma-joined, absent as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => clean(s).into_owned(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A typed value as a short cell, exactly as [`cell`] shows its JSON.
pub fn show(v: &impl serde::Serialize) -> String {
    cell(&serde_json::to_value(v).unwrap_or(Value::Null))
}

/// Prints `value` as JSON, or `items` (read from it) as a table with one row per item.
pub fn typed_list<T>(format: Format, value: &Value, items: &[T], headers: &[&str], row: impl Fn(&T) -> Vec<String>) {
    match format {
        Format::Json | Format::Yaml => json(value),
        Format::Table => table(headers, &items.iter().map(row).collect::<Vec<_>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_shown_not_sent() {
        assert_eq!(clean("plain ünïcode"), "plain ünïcode");
        assert_eq!(clean("a\u{1b}]0;owned\u{7}b"), "a\\u{1b}]0;owned\\u{7}b");
        assert_eq!(clean("x\u{9b}2Jy"), "x\\u{9b}2Jy");
        assert_eq!(clean("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(cell(&Value::String("\r\n".into())), "\\u{d}\\u{a}");
        assert_eq!(cell(&serde_json::json!(["ok", "\u{1b}[31m"])), "ok,\\u{1b}[31m");
    }
}
