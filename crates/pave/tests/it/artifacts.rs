//! Release uploads and the artifact store, against the real server: files with holes, tars
//! that cannot be unpacked as named, refusals and crashes that leave nothing behind, and
//! connections that never finish their request head.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN, Server, start, stderr, stdout};

async fn service_web(s: &Server) {
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
        {"kind": "Service", "metadata": {"name": "web"}, "spec": {"owner": "core"}},
    ]});
    assert_eq!(s.send(Method::POST, "/api/v1/apply", ADMIN, docs).await.0, 200);
}

async fn upload(s: &Server, version: &str, token: &str, tar: Vec<u8>) -> (u16, Value) {
    let resp = s
        .http
        .post(format!("{}/api/v1/services/web/releases?version={version}", s.url))
        .bearer_auth(token)
        .body(tar)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The entries of `<data>/artifacts/<sub>`, sorted.
fn listing(data: &Path, sub: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("artifacts").join(sub))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until `done` holds, for at most `secs` seconds.
fn wait_for(secs: u64, done: impl FnMut() -> bool) -> bool {
    pave_testkit::wait_until(Duration::from_secs(secs), done)
}

/// A tar stream of `(path, is_dir, content)` entries written as given.
fn archive(entries: &[(&[u8], bool, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, dir, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(if *dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        let path = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path);
        b.append_data(&mut h, path, *data).expect("append");
    }
    b.into_inner().expect("tar")
}

#[tokio::test]
async fn a_file_with_holes_is_released_and_stored_byte_for_byte() {
    let (s, db) = start().await;
    service_web(&s).await;
    let src = tempfile::tempdir().expect("tempdir");
    let path = src.path().join("pave-sample");
    {
        // What linkers leave in binaries: a hole between written parts.
        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(b"\x7fELF head").expect("write");
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(5 << 20)).expect("seek past the end");
        f.write_all(b"tail").expect("write");
    }
    let out = s.cli(
        &["release", "create", "web", "--version", "1.0.0", "--artifact", path.to_str().expect("path")],
        Some(ADMIN),
    );
    let text = stdout(&out);
    assert!(out.status.success() && text.contains("created: sha256:"), "{text}{}", stderr(&out));
    let digest = text.split_whitespace().find(|w| w.starts_with("sha256:")).expect("digest");
    let stored = db.dir.path().join("artifacts/sha256").join(&digest["sha256:".len()..]).join("pave-sample");
    assert_eq!(std::fs::read(stored).expect("stored copy"), std::fs::read(&path).expect("source"));
}

#[tokio::test]
async fn tars_that_cannot_be_unpacked_as_named_are_422_naming_the_entry() {
    let (s, db) = start().await;
    service_web(&s).await;
    let deep = "d/".repeat(3000) + "f";
    let long_name = "n".repeat(300);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("file then directory", archive(&[(b"app", false, b"x"), (b"app", true, b"")]), "\"app\" is a directory"),
        ("directory then file", archive(&[(b"app", true, b""), (b"app", false, b"x")]), "\"app\" is a file"),
        ("file under a file", archive(&[(b"app", false, b"x"), (b"app/conf", false, b"y")]), "\"app/conf\" lies under"),
        ("not UTF-8", archive(&[(b"caf\xe9", false, b"x")]), "not UTF-8"),
        ("long name", archive(&[(long_name.as_bytes(), false, b"x")]), "longer than 255 bytes"),
        ("thousands of levels", archive(&[(deep.as_bytes(), false, b"x")]), "\"d/d/d/d"),
    ];
    for (what, tar, expected) in cases {
        let (status, v) = upload(&s, "1.0.0", ADMIN, tar).await;
        let detail = v["detail"].as_str().unwrap_or_default();
        assert_eq!(status, 422, "{what}: {v}");
        assert!(detail.contains(expected) && detail.starts_with("artifact entry"), "{what}: {detail}");
    }
    assert_eq!(listing(db.dir.path(), "sha256"), Vec::<String>::new(), "nothing refused was stored");
    assert_eq!(listing(db.dir.path(), "tmp"), Vec::<String>::new(), "nothing refused stays");
    let (status, _) = upload(&s, "1.0.0", ADMIN, archive(&[(b"app", true, b""), (b"app/run", false, b"x")])).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn nothing_of_a_refused_upload_stays() {
    let (s, db) = start().await;
    service_web(&s).await;
    let data = db.dir.path().to_path_buf();
    let (status, v) = upload(&s, "1.0.0", ADMIN, archive(&[(b"app", false, b"one")])).await;
    assert_eq!(status, 201, "{v}");
    let stored = listing(&data, "sha256");
    assert_eq!(stored.len(), 1);
    // The same version with other content: 409, and the other content is not kept.
    let (status, v) = upload(&s, "1.0.0", ADMIN, archive(&[(b"app", false, b"two")])).await;
    assert_eq!(status, 409, "{v}");
    // Not an archive; no right to release; a declared size over the limit.
    let (status, _) = upload(&s, "1.1.0", ADMIN, b"not a tar, though long enough to look like one ".repeat(20)).await;
    assert_eq!(status, 422);
    let viewer = s.token("viewer", "viewer").await;
    let (status, _) = upload(&s, "1.2.0", &viewer, archive(&[(b"app", false, b"three")])).await;
    assert_eq!(status, 403);
    let (status, _) = upload(&s, "1.2.0", "pave_wrong", archive(&[(b"app", false, b"three")])).await;
    assert_eq!(status, 401);
    let url = s.url.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&url).expect("connect");
    write!(
        conn,
        "POST /api/v1/services/web/releases?version=1.3.0 HTTP/1.1\r\nHost: {url}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Length: 4294967296\r\n\r\n"
    )
    .expect("send head");
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut answer = vec![0u8; 4096];
    let n = conn.read(&mut answer).expect("an answer before any body");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A client that goes away mid-upload.
    let conn = half_upload(&url, "1.4.0");
    assert!(wait_for(10, || listing(&data, "tmp").iter().any(|n| n.ends_with(".d"))), "the upload is being unpacked");
    conn.shutdown(std::net::Shutdown::Both).expect("hang up");
    drop(conn);
    assert!(wait_for(10, || listing(&data, "tmp").is_empty()), "left behind: {:?}", listing(&data, "tmp"));
    assert_eq!(listing(&data, "sha256"), stored, "only the released artifact is stored");
    let (_, v) = s.get("/api/v1/services/web/releases").await;
    assert_eq!(v["releases"].as_array().map(Vec::len), Some(1), "{v}");
}

/// Starts an upload of an 8 MiB file and sends only its first MiB.
fn half_upload(url: &str, version: &str) -> std::net::TcpStream {
    let mut h = tar::Header::new_gnu();
    h.set_path("big").expect("path");
    h.set_size(8 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    let mut conn = std::net::TcpStream::connect(url).expect("connect");
    write!(
        conn,
        "POST /api/v1/services/web/releases?version={version} HTTP/1.1\r\nHost: {url}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Length: {}\r\n\r\n",
        512 + (8 << 20) + 1024
    )
    .expect("send head");
    conn.write_all(h.as_bytes()).expect("send tar header");
    conn.write_all(&vec![7u8; 1 << 20]).expect("send part of the file");
    conn
}

#[tokio::test]
async fn a_crash_mid_upload_leaves_only_what_the_next_start_removes() {
    let db = pave_store::testing::fresh().await;
    let data: PathBuf = db.dir.path().to_path_buf();
    let mut s = Server::start_on(&db, &[]);
    service_web(&s).await;
    let url = s.url.trim_start_matches("http://").to_owned();
    let conn = half_upload(&url, "1.0.0");
    assert!(wait_for(10, || listing(&data, "tmp").iter().any(|n| n.ends_with(".d"))), "the upload is being unpacked");
    s.kill();
    drop(conn);
    let left = listing(&data, "tmp");
    assert!(!left.is_empty() && left.iter().all(|n| n.starts_with("upload-")), "{left:?}");
    assert_eq!(listing(&data, "sha256"), Vec::<String>::new());
    let s = Server::start_on(&db, &[]);
    // The sweep runs before the server takes its first connection, so a request waits for it.
    let (_, v) = s.get("/api/v1/services/web/releases").await;
    assert_eq!(listing(&data, "tmp"), Vec::<String>::new(), "the next start removed it");
    assert_eq!(v["releases"].as_array().map(Vec::len), Some(0), "{v}");
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_head_is_closed() {
    let db = pave_store::testing::fresh().await;
    let s = Server::start_on(&db, &["--header-read-timeout", "1s"]);
    let url = s.url.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&url).expect("connect");
    conn.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {url}\r\nUser-Agent: slow").as_bytes())
        .expect("half a head");
    conn.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = match conn.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    let waited = started.elapsed();
    assert!(closed && waited < Duration::from_secs(8), "still open after {waited:?}");
    assert!(waited >= Duration::from_millis(900), "closed before the timeout: {waited:?}");
    // A client that sends its head in time is served as ever.
    let (status, _) = s.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn concurrent_uploads_of_one_version_keep_only_the_winners_artifact() {
    let (s, db) = start().await;
    service_web(&s).await;
    let mut uploads = Vec::new();
    for i in 0..6 {
        let tar = archive(&[(b"app", false, format!("build {i}").as_bytes())]);
        let (http, url) = (s.http.clone(), s.url.clone());
        uploads.push(tokio::spawn(async move {
            let resp =
                http.post(format!("{url}/api/v1/services/web/releases?version=2.0.0")).bearer_auth(ADMIN).body(tar);
            resp.send().await.expect("send").status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for u in uploads {
        statuses.push(u.await.expect("upload task"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409]);
    assert_eq!(listing(db.dir.path(), "sha256").len(), 1, "only the released artifact is stored");
    assert_eq!(listing(db.dir.path(), "tmp"), Vec::<String>::new());
}
