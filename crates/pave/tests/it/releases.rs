//! Releases: artifacts stored by content, immutable versions.

use reqwest::Method;
use serde_json::json;

use crate::harness::{ADMIN, start, stderr, stdout};

#[tokio::test]
async fn releases_are_content_addressed_and_immutable() {
    let (s, db) = start().await;
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
        {"kind": "Service", "metadata": {"name": "web"}, "spec": {"owner": "core"}},
    ]});
    assert_eq!(s.send(Method::POST, "/api/v1/apply", ADMIN, docs).await.0, 200);
    let art = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(art.path().join("bin")).expect("mkdir");
    std::fs::write(art.path().join("bin/web"), "#!/bin/sh\necho v1\n").expect("write");
    std::fs::write(art.path().join("config.toml"), "port = 1\n").expect("write");
    let a = art.path().to_str().expect("path");

    let out =
        s.cli(&["release", "create", "web", "--version", "1.0.0", "--artifact", a, "--commit", "abcdef1"], Some(ADMIN));
    let text = stdout(&out);
    assert!(text.contains("release web 1.0.0 created: sha256:"), "{text}{}", stderr(&out));
    let digest = text.split_whitespace().find(|w| w.starts_with("sha256:")).expect("digest").to_owned();
    // The artifact lives in the data directory under its digest; changing the source later
    // does not change the release.
    let stored = db.dir.path().join("artifacts/sha256").join(&digest["sha256:".len()..]);
    assert_eq!(std::fs::read_to_string(stored.join("bin/web")).expect("stored copy"), "#!/bin/sh\necho v1\n");
    // Same version, same artifact: unchanged. Same version, other artifact: refused.
    let out =
        s.cli(&["release", "create", "web", "--version", "1.0.0", "--artifact", a, "--commit", "abcdef1"], Some(ADMIN));
    assert!(stdout(&out).contains("already exists, unchanged"), "{}", stdout(&out));
    std::fs::write(art.path().join("config.toml"), "port = 2\n").expect("write");
    let out = s.cli(&["release", "create", "web", "--version", "1.0.0", "--artifact", a], Some(ADMIN));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("releases are immutable"), "{}", stderr(&out));
    let out = s.cli(&["release", "create", "web", "--version", "1.1.0", "--artifact", a], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    // Bad input.
    let out = s.cli(&["release", "create", "web", "--version", "1 0", "--artifact", a], Some(ADMIN));
    assert!(stderr(&out).contains("is not a version"), "{}", stderr(&out));
    let out = s.cli(&["release", "create", "nope", "--version", "1.0.0", "--artifact", a], Some(ADMIN));
    assert!(stderr(&out).contains("service \"nope\" does not exist"), "{}", stderr(&out));
    let resp = s
        .http
        .post(format!("{}/api/v1/services/web/releases?version=2.0.0", s.url))
        .bearer_auth(ADMIN)
        .body("this is not a tar archive at all, not even close to one; it is long enough though")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 422);

    let (_, v) = s.get("/api/v1/services/web/releases").await;
    let versions: Vec<&str> =
        v["releases"].as_array().expect("releases").iter().filter_map(|r| r["version"].as_str()).collect();
    assert_eq!(versions, ["1.1.0", "1.0.0"]);
    let (st, r) = s.get("/api/v1/services/web/releases/1.0.0").await;
    assert_eq!((st, r["digest"].as_str()), (200, Some(digest.as_str())));
    let (_, ev) = s.get("/api/v1/events?kind=release.created").await;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(2));
}
