//! Secrets, as the store sees them: sealed text it cannot open, with names, versions and who
//! changed them. Sealing happens at the edge (the server holds the master key); the store
//! asks for the sealed value of the version it is about to write, inside its transaction, so
//! the version bound into the ciphertext is the one stored.

use std::collections::HashMap;

use pave_model::event::kinds;
use pave_model::secrets::SecretInfo;
use pave_model::{NewEvent, Timestamp};
use serde_json::json;
use sqlx::Row;

use crate::events::insert_event;
use crate::{Result, Store, StoreError, WriteContext, with_read_pool, with_write_tx};

/// A secret's sealed value, for the engine to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub name: String,
    pub version: i64,
    pub sealed: String,
}

/// The sealed secrets of one service in one environment, and their revision: the id of the
/// event that last changed any of them (removals included), 0 when there never were any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSet {
    pub revision: i64,
    pub secrets: Vec<SealedSecret>,
}

/// Seals one secret again: `(service, environment, name, version, sealed) -> sealed`.
pub type Reseal<'a> = dyn Fn(&str, &str, &str, i64, &str) -> std::result::Result<String, String> + Sync + 'a;

const INFO: &str = "service, environment, name, version, created_at, created_by, updated_at, updated_by, key_id";

macro_rules! info_row {
    ($row:expr) => {{
        let row = $row;
        SecretInfo {
            service: row.try_get(0)?,
            environment: row.try_get(1)?,
            name: row.try_get(2)?,
            version: row.try_get(3)?,
            created_at: Timestamp(row.try_get(4)?),
            created_by: row.try_get(5)?,
            updated_at: Timestamp(row.try_get(6)?),
            updated_by: row.try_get(7)?,
            key_id: row.try_get(8)?,
        }
    }};
}

impl Store {
    /// Sets a secret: version 1, or one more than the last (a removed secret set again
    /// continues its count). `seal(version)` returns the sealed value for that version.
    /// Appends `secret.set` (name, version, key id — never the value).
    pub async fn set_secret(
        &self,
        service: &str,
        environment: &str,
        name: &str,
        key_id: &str,
        seal: &(dyn Fn(i64) -> std::result::Result<String, String> + Sync),
        ctx: &WriteContext,
    ) -> Result<SecretInfo> {
        with_write_tx!(self, |tx| {
            for (table, what, value) in [("services", "service", service), ("environments", "environment", environment)]
            {
                if sqlx::query(&format!("SELECT 1 FROM {table} WHERE name = $1"))
                    .bind(value)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_none()
                {
                    return Err(StoreError::NotFound(format!("{what} {value:?} does not exist")));
                }
            }
            let previous = sqlx::query(
                "SELECT version, created_at, created_by, sealed FROM secrets WHERE service = $1 AND environment = $2 AND name = $3",
            )
            .bind(service)
            .bind(environment)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            let (version, created_at, created_by) = match &previous {
                // A removed secret set again is new again, but keeps counting versions.
                Some(row) if row.try_get::<Option<String>, _>(3)?.is_some() => {
                    (row.try_get::<i64, _>(0)? + 1, row.try_get::<i64, _>(1)?, row.try_get::<String, _>(2)?)
                }
                Some(row) => (row.try_get::<i64, _>(0)? + 1, ctx.now, ctx.actor.clone()),
                None => (1, ctx.now, ctx.actor.clone()),
            };
            let sealed = seal(version).map_err(StoreError::Invalid)?;
            let event = NewEvent::new(
                kinds::SECRET_SET,
                format!("service/{service}"),
                json!({"environment": environment, "name": name, "version": version, "keyId": key_id}),
            );
            let seq = insert_event!(tx, ctx, &event);
            sqlx::query(
                "INSERT INTO secrets (service, environment, name, version, sealed, key_id, created_at, created_by, updated_at, updated_by, seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (service, environment, name) DO UPDATE SET version = excluded.version, sealed = excluded.sealed, \
                 key_id = excluded.key_id, created_at = excluded.created_at, created_by = excluded.created_by, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by, seq = excluded.seq",
            )
            .bind(service)
            .bind(environment)
            .bind(name)
            .bind(version)
            .bind(&sealed)
            .bind(key_id)
            .bind(created_at)
            .bind(&created_by)
            .bind(ctx.now)
            .bind(&ctx.actor)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(SecretInfo {
                service: service.to_owned(),
                environment: environment.to_owned(),
                name: name.to_owned(),
                version,
                created_at: Timestamp(created_at),
                created_by,
                updated_at: Timestamp(ctx.now),
                updated_by: ctx.actor.clone(),
                key_id: key_id.to_owned(),
            })
        })
    }

    /// Removes a secret's value (its name and version count stay, so a later set continues
    /// the count and the engine sees the change). Appends `secret.removed`.
    pub async fn remove_secret(
        &self,
        service: &str,
        environment: &str,
        name: &str,
        ctx: &WriteContext,
    ) -> Result<SecretInfo> {
        let select = format!(
            "SELECT {INFO} FROM secrets WHERE service = $1 AND environment = $2 AND name = $3 AND sealed IS NOT NULL"
        );
        with_write_tx!(self, |tx| {
            let Some(row) =
                sqlx::query(&select).bind(service).bind(environment).bind(name).fetch_optional(&mut *tx).await?
            else {
                return Err(StoreError::NotFound(format!("{service} has no secret {name:?} in {environment}")));
            };
            let info = info_row!(&row);
            let event = NewEvent::new(
                kinds::SECRET_REMOVED,
                format!("service/{service}"),
                json!({"environment": environment, "name": name, "version": info.version}),
            );
            let seq = insert_event!(tx, ctx, &event);
            sqlx::query(
                "UPDATE secrets SET sealed = NULL, updated_at = $4, updated_by = $5, seq = $6 \
                 WHERE service = $1 AND environment = $2 AND name = $3",
            )
            .bind(service)
            .bind(environment)
            .bind(name)
            .bind(ctx.now)
            .bind(&ctx.actor)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(SecretInfo { updated_at: Timestamp(ctx.now), updated_by: ctx.actor.clone(), ..info })
        })
    }

    /// The secrets that have a value, optionally of one service and one environment, by
    /// service, environment and name. Never values.
    pub async fn secrets(&self, service: Option<&str>, environment: Option<&str>) -> Result<Vec<SecretInfo>> {
        let sql = format!(
            "SELECT {INFO} FROM secrets WHERE sealed IS NOT NULL AND (CAST($1 AS TEXT) IS NULL OR service = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR environment = $2) ORDER BY service, environment, name"
        );
        with_read_pool!(self, |pool| {
            let rows = sqlx::query(&sql).bind(service).bind(environment).fetch_all(pool).await?;
            rows.iter().map(|r| Ok(info_row!(r))).collect()
        })
    }

    /// What the engine starts a replica with: the sealed values of a service's secrets in an
    /// environment, and their revision.
    pub async fn sealed_secrets(&self, service: &str, environment: &str) -> Result<SecretSet> {
        let sql =
            "SELECT name, version, sealed, seq FROM secrets WHERE service = $1 AND environment = $2 ORDER BY name";
        with_read_pool!(self, |pool| {
            let mut set = SecretSet::default();
            for row in sqlx::query(sql).bind(service).bind(environment).fetch_all(pool).await? {
                set.revision = set.revision.max(row.try_get(3)?);
                if let Some(sealed) = row.try_get::<Option<String>, _>(2)? {
                    set.secrets.push(SealedSecret { name: row.try_get(0)?, version: row.try_get(1)?, sealed });
                }
            }
            Ok(set)
        })
    }

    /// Seals again, under key `key_id`, every secret sealed under another key: `reseal(service,
    /// environment, name, version, sealed)` returns the new sealed text. Values do not change,
    /// so neither does the revision (no replica restarts). Records `key_id` as the database's
    /// key and appends one `secrets.resealed` event, in the same transaction; returns how many
    /// were sealed again.
    pub async fn reseal_secrets(&self, key_id: &str, reseal: &Reseal<'_>, ctx: &WriteContext) -> Result<usize> {
        with_write_tx!(self, |tx| {
            let rows = sqlx::query(
                "SELECT service, environment, name, version, sealed, key_id FROM secrets \
                 WHERE sealed IS NOT NULL AND key_id <> $1 ORDER BY service, environment, name",
            )
            .bind(key_id)
            .fetch_all(&mut *tx)
            .await?;
            let mut from = std::collections::BTreeSet::new();
            for row in &rows {
                let (service, environment, name): (String, String, String) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                let version: i64 = row.try_get(3)?;
                let sealed: String = row.try_get(4)?;
                from.insert(row.try_get::<String, _>(5)?);
                let again = reseal(&service, &environment, &name, version, &sealed).map_err(StoreError::Invalid)?;
                sqlx::query(
                    "UPDATE secrets SET sealed = $4, key_id = $5 WHERE service = $1 AND environment = $2 AND name = $3",
                )
                .bind(&service)
                .bind(&environment)
                .bind(&name)
                .bind(&again)
                .bind(key_id)
                .execute(&mut *tx)
                .await?;
            }
            // The database's key moves in the same transaction: a crash cannot leave secrets
            // sealed under a key the database does not name.
            sqlx::query("UPDATE vault SET key_id = $1, updated_at = $2 WHERE slot = 1")
                .bind(key_id)
                .bind(ctx.now)
                .execute(&mut *tx)
                .await?;
            if !rows.is_empty() {
                let event = NewEvent::new(
                    kinds::SECRETS_RESEALED,
                    "pave",
                    json!({"count": rows.len(), "from": from, "to": key_id}),
                );
                insert_event!(tx, ctx, &event);
            }
            tx.commit().await?;
            Ok(rows.len())
        })
    }

    /// Records `key_id` as the master key of this database unless one is recorded already;
    /// returns the recorded one.
    pub async fn claim_master_key(&self, key_id: &str, now: i64) -> Result<String> {
        with_write_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO vault (slot, key_id, updated_at) VALUES (1, $1, $2) ON CONFLICT (slot) DO NOTHING",
            )
            .bind(key_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let recorded: String =
                sqlx::query("SELECT key_id FROM vault WHERE slot = 1").fetch_one(&mut *tx).await?.try_get(0)?;
            tx.commit().await?;
            Ok(recorded)
        })
    }

    /// Records a new master key after every secret was sealed again under it.
    pub async fn set_master_key(&self, key_id: &str, now: i64) -> Result<()> {
        with_write_tx!(self, |tx| {
            sqlx::query("UPDATE vault SET key_id = $1, updated_at = $2 WHERE slot = 1")
                .bind(key_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The revision of every service and environment that has or had secrets.
    pub async fn secret_revisions(&self) -> Result<HashMap<(String, String), i64>> {
        let sql = "SELECT service, environment, MAX(seq) FROM secrets GROUP BY service, environment";
        with_read_pool!(self, |pool| {
            let mut out = HashMap::new();
            for row in sqlx::query(sql).fetch_all(pool).await? {
                out.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
            }
            Ok(out)
        })
    }
}
