//! Schema migrations, embedded in the binary and applied at start. One folder per SQL dialect;
//! an applied migration is identified by its version and checked by a SHA-256 of its text, so
//! an edited migration is refused rather than silently diverging.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Result, Store, StoreError, with_write_tx};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

macro_rules! migration {
    ($version:expr, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_init"),
    migration!(2, "0002_delivery"),
    migration!(3, "0003_releases"),
    migration!(4, "0004_rollouts"),
    migration!(5, "0005_flags"),
    migration!(6, "0006_secrets_scans"),
    migration!(7, "0007_token_scope"),
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS pave_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

pub(crate) async fn run(store: &Store) -> Result<()> {
    let postgres = store.backend_name() == "postgres";
    let now = pave_model::clock::now_ms();
    with_write_tx!(store, |tx| {
        sqlx::raw_sql(CREATE_TABLE).execute(&mut *tx).await?;
        let rows = sqlx::query("SELECT version, name, checksum FROM pave_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
        let mut applied = std::collections::BTreeMap::new();
        for row in rows {
            applied.insert(row.try_get::<i64, _>(0)?, (row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?));
        }
        if let Some(&newest) = applied.keys().next_back()
            && MIGRATIONS.iter().all(|m| m.version < newest)
        {
            return Err(StoreError::DatabaseTooNew(newest));
        }
        for m in MIGRATIONS {
            let sql = if postgres { m.postgres } else { m.sqlite };
            let sum = checksum(sql);
            match applied.get(&m.version) {
                Some((_, stored)) if *stored == sum => continue,
                Some(_) => return Err(StoreError::MigrationChanged { version: m.version, name: m.name.into() }),
                None => {
                    tracing::info!(version = m.version, name = m.name, "applying migration");
                    sqlx::raw_sql(sql).execute(&mut *tx).await?;
                    sqlx::query(
                        "INSERT INTO pave_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(m.version)
                    .bind(m.name)
                    .bind(&sum)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
    });
    Ok(())
}
