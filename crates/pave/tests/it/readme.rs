//! The README's examples, run as written (issue 16 items 32 and 33): every shell block marked
//! `<!-- tested -->`, line by line and in order, against a server started as the README says,
//! from the repository root with `pave` on PATH. A line that fails fails the test, naming it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{ADMIN, Server, pave_bin, reap};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// `(README line number, command)` of every line of every tested block, comments kept (the
/// shell drops them).
fn tested_commands(readme: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut armed = false;
    let mut inside = false;
    for (i, line) in readme.lines().enumerate() {
        let t = line.trim();
        if t == "<!-- tested -->" {
            armed = true;
        } else if t.starts_with("```") {
            if inside {
                inside = false;
            } else if armed {
                assert_eq!(t, "```sh", "README line {}: a tested block must be sh", i + 1);
                inside = true;
                armed = false;
            }
        } else if inside && !t.is_empty() && !t.starts_with('#') {
            out.push((i + 1, line.to_owned()));
        } else if armed && !t.is_empty() {
            panic!("README line {}: `<!-- tested -->` must stand right before a ```sh block", i + 1);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_examples_run_as_written() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    // The server the README starts, with the same options.
    assert!(
        readme.lines().any(|l| l.trim_start().starts_with("pave serve --osv-db examples/osv ")),
        "the README no longer starts the server with `pave serve --osv-db examples/osv`: update this test"
    );
    let bin_dir = Path::new(pave_bin()).parent().expect("bin dir").to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let db = pave_store::testing::fresh().await;
    let osv = root.join("examples/osv");
    let server = Server::start_with(&db, &["--osv-db", osv.to_str().expect("path")], &[("PATH", &path)], None);

    let commands = tested_commands(&readme);
    assert!(commands.len() >= 20, "only {} tested README lines", commands.len());
    let mut transcript = String::new();
    for (line, cmd) in &commands {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", cmd])
            .current_dir(&root)
            .env("PATH", &path)
            .env("PAVE_URL", &server.url)
            .env("PAVE_TOKEN", ADMIN)
            .env("NO_COLOR", "1")
            .output()
            .expect("run bash");
        let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        transcript.push_str(&format!("$ {cmd}\n{o}{e}"));
        assert!(out.status.success(), "README line {line} failed: {cmd}\n{o}{e}\n--- transcript ---\n{transcript}");
    }
    // What the examples promise, checked on what they did.
    for want in [
        "10 created",           // the sample catalog
        "kind: Service",        // get -o yaml
        "awaiting-approval",    // production waits for an approval
        "rollout 3: succeeded", // and then goes
        "secrets-clean",        // the release's gates, shown
    ] {
        assert!(transcript.contains(want), "the README's run lacks {want:?}:\n{transcript}");
    }
    let (_, v) = server.get("/api/v1/timeline?from=1d&environment=production").await;
    let deployments = v["entries"].as_array().expect("entries").iter().filter(|e| e["type"] == "deployment").count();
    // checkout's reported deployment (retried: still one) and pave-sample's rollout.
    assert_eq!(deployments, 2, "{v}");
    let (_, dora) = server.get("/api/v1/dora?from=1d&environment=production").await;
    let lead = dora["leadTime"]["commits"]["median"].as_f64().expect("lead time");
    assert!((3.0 * 3600.0 - 120.0..3.0 * 3600.0 + 120.0).contains(&lead), "lead time {lead} s, not the 3 h written");
    drop(server);
    reap(db.dir.path());
}

#[test]
fn tested_blocks_are_found_and_nothing_else() {
    let text = "x\n<!-- tested -->\n```sh\na # note\n# only a comment\n\nb\n```\n```sh\nnot tested\n```\n";
    assert_eq!(tested_commands(text), vec![(4, "a # note".to_owned()), (7, "b".to_owned())]);
}
