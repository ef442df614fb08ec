//! A history scan reports each secret once, at the commit that introduced it, as gitleaks
//! does (it reads only the lines each commit adds). Pave scans every distinct file version
//! instead, so an edit of a file that keeps its secret yields a new version with the same
//! secret; [`Introductions`] drops those repeats.
//!
//! The identity of a secret: the same rule, the same secret value and the same path. A copy
//! of it in another file, or under a new name, is introduced there again and reported
//! again; so is a second copy added to the same file (a file version with more copies than
//! any version before it reports the extra ones). Versions must be fed parents first (see
//! `pave_git::Repo::blobs`), so "before" is the history's order, not the clock's.

use std::collections::HashMap;

use crate::Finding;

/// The secrets reported so far, with the most copies any one version of their file held.
#[derive(Debug, Default)]
pub struct Introductions {
    seen: HashMap<(String, String, String), usize>,
}

impl Introductions {
    /// The findings of one file version (as its scan returned them, in file order) that no
    /// earlier version already had: unredacted, as the secret value is the identity.
    pub fn introduced(&mut self, findings: Vec<Finding>) -> Vec<Finding> {
        let mut copies: HashMap<(String, String, String), usize> = HashMap::new();
        let mut out = Vec::new();
        for f in findings {
            let key = (f.rule_id.clone(), f.secret.clone(), f.file.clone());
            let copy = copies.entry(key.clone()).or_default();
            *copy += 1;
            let before = self.seen.get(&key).copied().unwrap_or(0);
            if *copy > before {
                out.push(f);
            }
        }
        for (key, n) in copies {
            let seen = self.seen.entry(key).or_default();
            *seen = (*seen).max(n);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Commit, Source};

    fn commit(sha: &str) -> Commit {
        Commit {
            sha: sha.into(),
            author: "Ana".into(),
            email: "ana@example.com".into(),
            date: "2024-01-01T00:00:00Z".into(),
            message: sha.into(),
        }
    }

    #[test]
    fn a_secret_is_reported_once_at_the_version_that_introduced_it() {
        let set = crate::builtin();
        let mut seen = Introductions::default();
        let mut scan = |path: &str, sha: &str, text: &str| -> Vec<(String, usize)> {
            let c = commit(sha);
            let found = set.scan(text.as_bytes(), &Source { path, commit: Some(&c) });
            seen.introduced(found)
                .into_iter()
                .map(|f| (f.commit.map(|c| c.sha).unwrap_or_default(), f.start_line))
                .collect()
        };
        let key = "aws_key = AKIAQYLPMN5HHHFPZAM2\n";
        assert_eq!(scan("app.env", "c1", key), [("c1".to_owned(), 1)]);
        // Edits that keep the secret are new versions of the file, not new secrets.
        assert!(scan("app.env", "c2", &format!("# config\n{key}")).is_empty());
        assert!(scan("app.env", "c3", &format!("# config\n{key}debug = 1\n")).is_empty());
        // A second copy in the same file is introduced by the version that adds it.
        assert_eq!(scan("app.env", "c4", &format!("{key}{key}")), [("c4".to_owned(), 2)]);
        // The same secret in another file is introduced there.
        assert_eq!(scan("deploy/prod.env", "c5", key), [("c5".to_owned(), 1)]);
        // A different secret in the known file is new.
        assert_eq!(scan("app.env", "c6", &format!("{key}aws_key = AKIAZZZZMN5HHHFPZAM3\n")).len(), 1);
    }
}
