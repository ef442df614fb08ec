//! Pave's persistence: one store API in domain terms over two real backends — embedded SQLite
//! (the default) and PostgreSQL (for several control-plane replicas). Every state change
//! appends its events in the same transaction as the projection rows it changes. This is the
//! only crate that writes SQL.

mod audit;
mod catalog;
mod delivery;
mod events;
mod flags;
mod migrate;
mod releases;
mod rollouts;
mod secrets;
mod tokens;

pub mod testing;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use audit::{AuditEntry, AuditQuery, NewAuditEntry};
pub use catalog::{ListQuery, StoredResource};
pub use delivery::{DeliveryFacts, ReportAction};
pub use events::EventQuery;
pub use flags::{FlagChange, FlagSnapshot, FlagUsage, SdkClient, SdkToken, SdkTokenKind, StoredFlag, UsageCount};
pub use secrets::{SealedSecret, SecretSet};
/// The database driver's error, for callers that classify failures (unavailable or not).
pub use sqlx::Error as SqlxError;
pub use tokens::{NewToken, TokenRecord};

/// A refused or failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Plan(#[from] pave_model::PlanError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Input that is well-formed but refers to what does not exist, or repeats itself.
    #[error("{0}")]
    Invalid(String),
    /// The caller may not make this change.
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "migration {version} ({name}) differs from the one applied to this database; migrations must never be edited once applied"
    )]
    MigrationChanged { version: i64, name: String },
    #[error("the database has migration {0}, newer than this pave knows; upgrade pave")]
    DatabaseTooNew(i64),
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("cannot open the database at {location}: {source}")]
    Open { location: String, source: sqlx::Error },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where the store lives.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `postgres://…`, `sqlite://PATH`, or `None` for `pave.db` in `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// Upper bound of pooled connections (readers, for SQLite).
    pub max_connections: u32,
}

impl StoreOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self { database_url: None, data_dir: data_dir.into(), max_connections: 8 }
    }
}

#[derive(Clone)]
enum Backend {
    /// Writes go through a single connection so SQLite never returns BUSY inside this process;
    /// reads use a pool of connections that WAL lets run beside the writer.
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
    },
    Postgres(PgPool),
}

/// Who or what makes a change, for the events it appends.
#[derive(Debug, Clone)]
pub struct WriteContext {
    pub actor: String,
    pub request_id: Option<String>,
    /// Milliseconds since the epoch; passed in so tests control time.
    pub now: i64,
}

/// An `authorize` argument that allows every plan.
pub fn allow_all(_: &pave_model::Plan, _: &pave_model::Snapshot) -> std::result::Result<(), String> {
    Ok(())
}

impl WriteContext {
    pub fn system(now: i64) -> Self {
        Self { actor: "system".into(), request_id: None, now }
    }
}

/// Connection-pool figures for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The store. Cheap to clone: clones share the pools.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    max_connections: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend_name()).finish()
    }
}

/// Runs `$body` with `$pool` bound to the reading pool of whichever backend is in use. The
/// body is compiled once per backend, so the same SQL text serves both (`$1` placeholders
/// work in SQLite and PostgreSQL alike).
macro_rules! with_read_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { read: $pool, .. } => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` inside a write transaction `$tx`. On PostgreSQL the transaction first takes a
/// transaction-scoped advisory lock, so writers from every replica are serialised and event
/// ids become visible in commit order — a reader paging with `after=ID` never skips one.
macro_rules! with_write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { write, .. } => {
                #[allow(unused_mut)]
                // IMMEDIATE takes the write lock up front, so a transaction that reads before
                // it writes waits for another process's writer instead of failing with BUSY.
                let mut $tx = write.begin_with("BEGIN IMMEDIATE").await?;
                $body
            }
            $crate::Backend::Postgres(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind($crate::WRITE_LOCK).execute(&mut *$tx).await?;
                $body
            }
        }
    };
}

pub(crate) use {with_read_pool, with_write_tx};

/// Makes the SQLite database 0600 before it is opened (created empty if missing), and its
/// `-wal` and `-shm` files too if they exist: SQLite creates those with the database file's
/// mode, and they hold the same rows (sealed secrets, token hashes, audit).
fn private_database_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::metadata(&p) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Advisory-lock key that serialises writers on PostgreSQL ("pave" in ASCII).
pub(crate) const WRITE_LOCK: i64 = 0x7061_7665;

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn open(opts: &StoreOptions) -> Result<Store> {
        let url = opts.database_url.clone().unwrap_or_default();
        let max = opts.max_connections.max(1);
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let conn = PgConnectOptions::from_str(&url)
                .map_err(|source| StoreError::Open { location: redact_url(&url), source })?
                .application_name("pave");
            let pool = PgPoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(conn)
                .await
                .map_err(|source| StoreError::Open { location: redact_url(&url), source })?;
            Backend::Postgres(pool)
        } else {
            let path = match url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ if url.is_empty() => opts.data_dir.join("pave.db"),
                _ => {
                    return Err(StoreError::Open {
                        location: redact_url(&url),
                        source: sqlx::Error::Configuration(
                            "unsupported database URL; use postgres://… or sqlite://PATH".into(),
                        ),
                    });
                }
            };
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                    location: parent.display().to_string(),
                    source: sqlx::Error::Io(e),
                })?;
            }
            private_database_files(&path)
                .map_err(|e| StoreError::Open { location: path.display().to_string(), source: sqlx::Error::Io(e) })?;
            let conn = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let open_err = |source| StoreError::Open { location: path.display().to_string(), source };
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .connect_with(conn.clone())
                .await
                .map_err(open_err)?;
            let read = SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .connect_with(conn.read_only(true))
                .await;
            // The first connection must exist before a read-only one can open the file.
            let read = read.map_err(|source| StoreError::Open { location: path.display().to_string(), source })?;
            Backend::Sqlite { write, read }
        };
        let store = Store { backend, max_connections: max };
        migrate::run(&store).await?;
        Ok(store)
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<()> {
        with_read_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle) = match &self.backend {
            Backend::Sqlite { read, write } => {
                (read.size() + write.size(), (read.num_idle() + write.num_idle()) as u32)
            }
            Backend::Postgres(pool) => (pool.size(), pool.num_idle() as u32),
        };
        PoolStats { size, idle, max: self.max_connections }
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// Hides the password of a database URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact_url("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
        assert_eq!(super::redact_url("postgres://h/db"), "postgres://h/db");
    }
}
