//! Token scopes, and the migration that introduced them on a database that had tokens.

use pave_model::Role;
use pave_model::auth::Scope;
use pave_store::testing::fresh;
use pave_store::{EventQuery, NewToken, Store};
use sha2::{Digest, Sha256};
use sqlx::Connection;

fn token(id: &str, role: Role, scope: Scope) -> NewToken {
    NewToken { id: id.into(), name: id.into(), role, scope, hash: format!("hash-{id}") }
}

#[tokio::test]
async fn tokens_keep_their_scope() {
    let (store, _db) = super::open().await;
    store
        .create_token(&token("alice", Role::Developer, Scope::User("alice@example.com".into())), &super::ctx(1))
        .await
        .expect("user");
    store
        .create_token(&token("ci-web", Role::Developer, Scope::Team("web".into())), &super::ctx(2))
        .await
        .expect("team");
    store.create_token(&token("legacy", Role::Developer, Scope::Unscoped), &super::ctx(3)).await.expect("unscoped");
    let found = store.token_by_hash("hash-alice").await.expect("lookup").expect("found");
    assert_eq!(found.scope, Scope::User("alice@example.com".into()));
    assert_eq!(found.note, None);
    let listed = serde_json::to_value(store.list_tokens().await.expect("list")).expect("json");
    assert_eq!(listed[0]["scope"], "user");
    assert_eq!(listed[0]["user"], "alice@example.com");
    assert_eq!(listed[1]["scope"], "team");
    assert_eq!(listed[1]["team"], "web");
    assert_eq!(listed[2]["scope"], "unscoped");
    assert!(listed[2]["note"].as_str().is_some_and(|n| n.contains("every team's service")), "{listed}");
    let created = store.events(&EventQuery { limit: 10, ..Default::default() }).await.expect("events");
    assert_eq!(created[0].data["user"], "alice@example.com");
    assert_eq!(created[1].data["team"], "web");
}

/// The migrations before scopes, applied as an older `pave serve` applied them.
const BEFORE: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "0001_init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "0002_delivery",
        include_str!("../../migrations/sqlite/0002_delivery.sql"),
        include_str!("../../migrations/postgres/0002_delivery.sql"),
    ),
    (
        3,
        "0003_releases",
        include_str!("../../migrations/sqlite/0003_releases.sql"),
        include_str!("../../migrations/postgres/0003_releases.sql"),
    ),
    (
        4,
        "0004_rollouts",
        include_str!("../../migrations/sqlite/0004_rollouts.sql"),
        include_str!("../../migrations/postgres/0004_rollouts.sql"),
    ),
    (
        5,
        "0005_flags",
        include_str!("../../migrations/sqlite/0005_flags.sql"),
        include_str!("../../migrations/postgres/0005_flags.sql"),
    ),
    (
        6,
        "0006_secrets_scans",
        include_str!("../../migrations/sqlite/0006_secrets_scans.sql"),
        include_str!("../../migrations/postgres/0006_secrets_scans.sql"),
    ),
];

macro_rules! old_database {
    ($conn:expr, $postgres:expr) => {{
        sqlx::raw_sql(
            "CREATE TABLE pave_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, \
             applied_at BIGINT NOT NULL)",
        )
        .execute(&mut $conn)
        .await
        .expect("migrations table");
        for (version, name, sqlite, postgres) in BEFORE {
            let sql = if $postgres { postgres } else { sqlite };
            sqlx::raw_sql(sql).execute(&mut $conn).await.expect("old migration");
            sqlx::query("INSERT INTO pave_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, 0)")
                .bind(version)
                .bind(name)
                .bind(hex::encode(Sha256::digest(sql.as_bytes())))
                .execute(&mut $conn)
                .await
                .expect("record migration");
        }
        for (id, role, revoked) in
            [("admin", "admin", None), ("ci", "developer", None), ("old", "developer", Some(5i64))]
        {
            sqlx::query(
                "INSERT INTO tokens (id, name, role, hash, created_at, created_by, revoked_at) \
                 VALUES ($1, $1, $2, $3, 1, 'system', $4)",
            )
            .bind(id)
            .bind(role)
            .bind(format!("hash-{id}"))
            .bind(revoked)
            .execute(&mut $conn)
            .await
            .expect("old token");
        }
        $conn.close().await.expect("close");
    }};
}

#[tokio::test]
async fn tokens_from_before_scopes_stay_unscoped_and_the_migration_says_what_they_may_do() {
    let db = fresh().await;
    match &db.options.database_url {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            old_database!(conn, true);
        }
        None => {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db.options.data_dir.join("pave.db"))
                .create_if_missing(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.expect("connect");
            old_database!(conn, false);
        }
    }
    let store = Store::open(&db.options).await.expect("open migrates");
    let tokens = store.list_tokens().await.expect("list");
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| t.scope == Scope::Unscoped), "{tokens:?}");
    let ci = tokens.iter().find(|t| t.id == "ci").expect("ci");
    assert!(ci.note.is_some_and(|n| n.contains("--user EMAIL")), "{ci:?}");
    assert!(tokens.iter().filter(|t| t.id != "ci").all(|t| t.note.is_none()), "{tokens:?}");
    let events = store
        .events(&EventQuery { kinds: vec!["token.scopes-introduced".into()], limit: 10, ..Default::default() })
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].data["unscoped"], 2);
    assert_eq!(events[0].data["unscopedDevelopers"], 1);
    assert!(events[0].data["note"].as_str().is_some_and(|n| n.contains("every team's service")));
    assert!(events[0].time.0 > 1_700_000_000_000, "{:?}", events[0].time);
    // A fresh database has no tokens to speak of.
    let (fresh_store, _db) = super::open().await;
    let none = fresh_store
        .events(&EventQuery { kinds: vec!["token.scopes-introduced".into()], limit: 10, ..Default::default() })
        .await
        .expect("events");
    assert!(none.is_empty());
}
