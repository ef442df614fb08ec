//! Test support: a fresh, empty database on the backend the environment asks for.
//!
//! With `PAVE_TEST_DATABASE_URL=postgres://…` set, each call creates a new database on that
//! server (so tests run in parallel without sharing state); otherwise a SQLite file in a
//! temporary directory.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

use crate::StoreOptions;

/// A database for one test. Keep it alive for the test's duration: dropping it removes the
/// temporary directory.
#[derive(Debug)]
pub struct TestDatabase {
    pub options: StoreOptions,
    pub dir: tempfile::TempDir,
}

impl TestDatabase {
    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        if self.options.database_url.is_some() { "postgres" } else { "sqlite" }
    }
}

/// The PostgreSQL server under test, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("PAVE_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates a fresh database and returns options pointing at it.
pub async fn fresh() -> TestDatabase {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut options = StoreOptions::new(dir.path());
    if let Some(base) = postgres_url() {
        let name = format!(
            "pave_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
        );
        let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect to PAVE_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        conn.close().await.ok();
        options.database_url = Some(with_database(&base, &name));
    }
    TestDatabase { options, dir }
}

/// Replaces the database name in a `postgres://…/db?params` URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..].find('/').map(|i| i + scheme_end).unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..host_end])
}
