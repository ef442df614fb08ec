//! API tokens. Only a SHA-256 of each secret is stored; the secret itself is shown once, to
//! whoever created it.

use pave_model::auth::{Scope, unscoped_note};
use pave_model::event::kinds;
use pave_model::{NewEvent, Role, Timestamp};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::events::insert_event;
use crate::{Result, Store, StoreError, WriteContext, with_read_pool, with_write_tx};

/// A token to create: its public id, a name for people, its role, whom it acts for and the
/// hash of its secret.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub scope: Scope,
    pub hash: String,
}

/// A token as stored, without its hash.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// `scope` (`unscoped`, `user`, `team`) and the `user` or `team` it names.
    #[serde(flatten)]
    pub scope: Scope,
    /// For a live unscoped developer token: what it may do, and how to scope it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl TokenRecord {
    fn noted(mut self) -> Self {
        self.note = match (&self.scope, self.revoked_at) {
            (Scope::Unscoped, None) => unscoped_note(self.role),
            _ => None,
        };
        self
    }
}

const COLUMNS: &str = "id, name, role, created_at, created_by, revoked_at, scope, scope_subject";

fn record(row: &impl RowLike) -> Result<TokenRecord> {
    row.token()
}

/// Decodes a token row from either backend.
trait RowLike {
    fn token(&self) -> Result<TokenRecord>;
}

macro_rules! impl_row_like {
    ($row:ty) => {
        impl RowLike for $row {
            fn token(&self) -> Result<TokenRecord> {
                let role: String = self.try_get(2)?;
                let scope: String = self.try_get(6)?;
                let subject: Option<String> = self.try_get(7)?;
                Ok(TokenRecord {
                    id: self.try_get(0)?,
                    name: self.try_get(1)?,
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt { what: "token role".into(), reason: role.clone() })?,
                    scope: Scope::from_parts(&scope, subject.clone()).ok_or_else(|| StoreError::Corrupt {
                        what: "token scope".into(),
                        reason: format!("{scope} {subject:?}"),
                    })?,
                    note: None,
                    created_at: Timestamp(self.try_get(3)?),
                    created_by: self.try_get(4)?,
                    revoked_at: self.try_get::<Option<i64>, _>(5)?.map(Timestamp),
                }
                .noted())
            }
        }
    };
}
impl_row_like!(sqlx::sqlite::SqliteRow);
impl_row_like!(sqlx::postgres::PgRow);

macro_rules! insert_token {
    ($tx:expr, $ctx:expr, $t:expr) => {{
        let t: &NewToken = $t;
        sqlx::query(
            "INSERT INTO tokens (id, name, role, hash, created_at, created_by, scope, scope_subject) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(&t.hash)
        .bind($ctx.now)
        .bind(&$ctx.actor)
        .bind(t.scope.kind())
        .bind(t.scope.subject())
        .execute(&mut *$tx)
        .await?;
        let rec = TokenRecord {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            scope: t.scope.clone(),
            note: None,
            created_at: Timestamp($ctx.now),
            created_by: $ctx.actor.clone(),
            revoked_at: None,
        }
        .noted();
        // The scope in its one shape (`"scope": KIND` and the user or team it names).
        let mut data = serde_json::to_value(&t.scope).expect("a scope serialises");
        data["name"] = json!(t.name);
        data["role"] = json!(t.role);
        let event = NewEvent::new(kinds::TOKEN_CREATED, format!("token/{}", t.id), data);
        insert_event!($tx, $ctx, &event);
        rec
    }};
}

impl Store {
    pub async fn create_token(&self, token: &NewToken, ctx: &WriteContext) -> Result<TokenRecord> {
        with_write_tx!(self, |tx| {
            let exists = sqlx::query("SELECT 1 FROM tokens WHERE name = $1 AND revoked_at IS NULL")
                .bind(&token.name)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::Conflict(format!("a token named {:?} already exists", token.name)));
            }
            let rec = insert_token!(tx, ctx, token);
            tx.commit().await?;
            Ok(rec)
        })
    }

    /// Creates `token` only if no token exists yet; true if it did. Safe when several
    /// replicas start at once: the write lock makes exactly one of them win.
    pub async fn bootstrap_token(&self, token: &NewToken, ctx: &WriteContext) -> Result<bool> {
        with_write_tx!(self, |tx| {
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM tokens").fetch_one(&mut *tx).await?.try_get(0)?;
            if n > 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            insert_token!(tx, ctx, token);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The live (not revoked) token whose secret hashes to `hash`.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM tokens WHERE hash = $1");
        with_read_pool!(self, |pool| {
            match sqlx::query(&sql).bind(hash).fetch_optional(pool).await? {
                Some(row) => Ok(Some(record(&row)?)),
                None => Ok(None),
            }
        })
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM tokens ORDER BY created_at, id");
        with_read_pool!(self, |pool| { sqlx::query(&sql).fetch_all(pool).await?.iter().map(record).collect() })
    }

    pub async fn revoke_token(&self, id: &str, ctx: &WriteContext) -> Result<TokenRecord> {
        let select = format!("SELECT {COLUMNS} FROM tokens WHERE id = $1");
        with_write_tx!(self, |tx| {
            let Some(row) = sqlx::query(&select).bind(id).fetch_optional(&mut *tx).await? else {
                return Err(StoreError::NotFound(format!("token {id:?} does not exist")));
            };
            let mut rec = record(&row)?;
            if rec.revoked_at.is_some() {
                return Err(StoreError::Conflict(format!("token {id:?} is already revoked")));
            }
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2")
                .bind(ctx.now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let event = NewEvent::new(kinds::TOKEN_REVOKED, format!("token/{id}"), json!({"name": rec.name}));
            insert_event!(tx, ctx, &event);
            tx.commit().await?;
            rec.revoked_at = Some(Timestamp(ctx.now));
            Ok(rec.noted())
        })
    }
}
