//! Secret scanning: rules in gitleaks' TOML format (its default set loads unmodified), a
//! keyword prefilter so most bytes never reach a regex, allowlists, accepted-findings lists,
//! and text, JSON and SARIF 2.1.0 reports. The scan of a text is pure ([`Ruleset::scan`]);
//! [`walk`] is the edge that reads a directory tree on every core.

pub mod config;
mod gocompat;
pub mod history;
pub mod report;
mod ruleset;
pub mod walk;

pub use config::{BUILTIN, Loader, NoFiles, RawConfig, resolve};
pub use gocompat::go_to_rust;
pub use report::{Accepted, Commit, Finding, Summary, json_report, sarif_report, secret_hash};
pub use ruleset::{Rule, Ruleset, Source, shannon};

/// What can go wrong loading rules or scanning, in the user's terms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{origin}: {message}")]
    Config { origin: String, message: String },
    #[error("{what} does not compile: {message}")]
    Regex { what: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The built-in rules, compiled.
pub fn builtin() -> Ruleset {
    let raw = RawConfig::parse(BUILTIN, "built-in rules").expect("the built-in rules parse (tested)");
    let raw = resolve(raw, "built-in rules", &NoFiles).expect("the built-in rules resolve (tested)");
    Ruleset::compile(&raw).expect("the built-in rules compile (tested)")
}

/// Loads a configuration file and the files it extends (relative to its directory).
pub fn load(path: &std::path::Path) -> Result<Ruleset, Error> {
    struct Relative(std::path::PathBuf);
    impl Loader for Relative {
        fn load(&self, p: &str) -> Result<String, Error> {
            let full = self.0.join(p);
            std::fs::read_to_string(&full).map_err(|source| Error::Io { path: full.display().to_string(), source })
        }
    }
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: origin.clone(), source })?;
    let raw = RawConfig::parse(&text, &origin)?;
    let dir = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    Ruleset::compile(&resolve(raw, &origin, &Relative(dir))?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_rules_compile_and_find_what_they_name() {
        let set = super::builtin();
        assert!(set.rules().len() >= 15);
        let planted = [
            ("aws-access-key-id", "key = AKIAQYLPMN5HHHFPZAM2"),
            ("github-token", "token: ghp_1wRf2KbC9xLq7NvT3mZp8YsD4hJ6gA0eU5oI"),
            (
                "slack-webhook-url",
                "url = 'https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/abcdefghijklmnopqrstuvwxyzABCDEFGH1234567'",
            ),
            ("stripe-secret-key", "STRIPE=sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
            ("pave-api-token", "PAVE_TOKEN=pave_k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8o9p0z1x2c3v4b5n"),
        ];
        for (rule, line) in planted {
            let f = set.scan(line.as_bytes(), &super::Source { path: "x.env", commit: None });
            assert!(f.iter().any(|f| f.rule_id == rule), "{rule} in {line:?}: {f:?}");
        }
    }

    /// Code shapes the generic rules once flagged in real repositories: a keyword argument
    /// with a dotted value, an attribute path, a Backstage annotation, a header name, a
    /// syntax placeholder in a URL.
    #[test]
    fn builtin_rules_stay_quiet_on_code() {
        let set = super::builtin();
        for line in [
            "    sa.orm.attributes.set_committed_value(state, key, passive=attributes.PASSIVE_NO_INITIALIZE)",
            "RegOpenKeyEx = win32api.RegOpenKeyEx",
            "    backstage.io/source-location: url:https://github.com/acme/shop",
            "    let key = headers.get(\"sec-websocket-key\", \"dGhlIHNhbXBsZSBub25jZQ==\");",
            "DATABASE_URL=postgresql://[user[:password]@][host][:port][/dbname]",
            "password = getpass.getpass(prompt)",
            "api_key = settings.OPENAI_API_KEY",
        ] {
            let f = set.scan(line.as_bytes(), &super::Source { path: "x.py", commit: None });
            assert!(f.is_empty(), "{line:?}: {f:?}");
        }
    }
}
