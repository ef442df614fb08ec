//! The delivery engine's state: rollouts, the desired state of each route, the replicas the
//! runtime started, and the lease that elects the one control plane running the engine.
//! Every change appends its events in the same transaction.

use pave_model::NewEvent;
use pave_model::rollout::{Rollout, RolloutState, RouteState};
use serde_json::Value;
use sqlx::Row;

use crate::events::insert_event;
use crate::{Result, Store, StoreError, WriteContext, with_read_pool, with_write_tx};

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what: what.to_owned(), reason: e.to_string() }
}

fn parse_rollout(id: i64, doc: &str) -> Result<Rollout> {
    let mut r: Rollout = serde_json::from_str(doc).map_err(|e| corrupt(&format!("rollout {id}"), e))?;
    r.id = id;
    Ok(r)
}

/// The SQL condition of a rollout not yet finished (the states `RolloutState::is_terminal`
/// does not name), written once for every query that looks for one.
macro_rules! unfinished {
    () => {
        "state NOT IN ('succeeded', 'failed', 'aborted', 'rolled-back')"
    };
}
pub(crate) use unfinished;

impl Store {
    /// Stores a new rollout and returns it with its id. Refused while another rollout of the
    /// same service in the same environment is still active: one change at a time.
    pub async fn create_rollout(&self, r: &Rollout, events: &[NewEvent], ctx: &WriteContext) -> Result<Rollout> {
        with_write_tx!(self, |tx| {
            let active = sqlx::query(concat!(
                "SELECT id, state FROM rollouts WHERE service = $1 AND environment = $2 AND ",
                unfinished!(),
                " ORDER BY id LIMIT 1"
            ))
            .bind(&r.service)
            .bind(&r.environment)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = active {
                let (id, state): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
                tx.rollback().await?;
                return Err(StoreError::Conflict(format!(
                    "rollout {id} of {} in {} is still {state}; wait for it, or promote, approve or abort it",
                    r.service, r.environment
                )));
            }
            let doc = serde_json::to_string(r).map_err(|e| corrupt("rollout", e))?;
            let row = sqlx::query(
                "INSERT INTO rollouts (service, environment, state, doc, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
            )
            .bind(&r.service)
            .bind(&r.environment)
            .bind(r.state.as_str())
            .bind(&doc)
            .bind(ctx.now)
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = row.try_get(0)?;
            let stored = Rollout { id, ..r.clone() };
            // The id is known only now: store the document again with it, and put it in events.
            let doc = serde_json::to_string(&stored).map_err(|e| corrupt("rollout", e))?;
            sqlx::query("UPDATE rollouts SET doc = $1 WHERE id = $2").bind(&doc).bind(id).execute(&mut *tx).await?;
            for e in events {
                let mut e = e.clone();
                if let Some(obj) = e.data.as_object_mut() {
                    obj.insert("rollout".into(), Value::from(id));
                }
                insert_event!(tx, ctx, &e);
            }
            tx.commit().await?;
            Ok(stored)
        })
    }

    /// Changes a rollout in one transaction: `change` sees the stored rollout, edits it, and
    /// returns the events to append (or refuses with an error, changing nothing).
    pub async fn modify_rollout<F>(&self, id: i64, ctx: &WriteContext, change: F) -> Result<Rollout>
    where
        F: FnOnce(&mut Rollout) -> Result<Vec<NewEvent>>,
    {
        let mut change = Some(change);
        with_write_tx!(self, |tx| {
            let row = sqlx::query("SELECT doc FROM rollouts WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Err(StoreError::NotFound(format!("rollout {id} does not exist")));
            };
            let mut r = parse_rollout(id, &row.try_get::<String, _>(0)?)?;
            let events = match (change.take().expect("called once"))(&mut r) {
                Ok(ev) => ev,
                Err(e) => {
                    tx.rollback().await?;
                    return Err(e);
                }
            };
            r.updated_at = pave_model::Timestamp(ctx.now);
            let doc = serde_json::to_string(&r).map_err(|e| corrupt("rollout", e))?;
            sqlx::query("UPDATE rollouts SET state = $1, doc = $2, updated_at = $3 WHERE id = $4")
                .bind(r.state.as_str())
                .bind(&doc)
                .bind(ctx.now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for e in &events {
                let mut e = e.clone();
                if let Some(obj) = e.data.as_object_mut() {
                    obj.insert("rollout".into(), Value::from(id));
                }
                insert_event!(tx, ctx, &e);
            }
            tx.commit().await?;
            Ok(r)
        })
    }

    pub async fn rollout(&self, id: i64) -> Result<Option<Rollout>> {
        with_read_pool!(self, |pool| {
            let row = sqlx::query("SELECT doc FROM rollouts WHERE id = $1").bind(id).fetch_optional(pool).await?;
            row.map(|r| parse_rollout(id, &r.try_get::<String, _>(0)?)).transpose()
        })
    }

    /// Rollouts, newest first, optionally of one service and/or environment.
    pub async fn rollouts(&self, service: Option<&str>, env: Option<&str>, limit: i64) -> Result<Vec<Rollout>> {
        with_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, doc FROM rollouts WHERE (CAST($1 AS TEXT) IS NULL OR service = $1) AND (CAST($2 AS TEXT) IS NULL OR environment = $2) \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(service)
            .bind(env)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| parse_rollout(r.try_get(0)?, &r.try_get::<String, _>(1)?)).collect()
        })
    }

    /// Rollouts not yet finished, oldest first.
    pub async fn active_rollouts(&self) -> Result<Vec<Rollout>> {
        with_read_pool!(self, |pool| {
            let rows = sqlx::query(concat!("SELECT id, doc FROM rollouts WHERE ", unfinished!(), " ORDER BY id"))
                .fetch_all(pool)
                .await?;
            rows.iter().map(|r| parse_rollout(r.try_get(0)?, &r.try_get::<String, _>(1)?)).collect()
        })
    }

    /// Whether `version` of `service` has a succeeded rollout in `env` (the promotion path).
    pub async fn succeeded_in(&self, service: &str, version: &str, env: &str) -> Result<bool> {
        let all = self.rollouts(Some(service), Some(env), 10_000).await?;
        Ok(all
            .iter()
            .any(|r| r.version == version && matches!(r.state, RolloutState::Succeeded | RolloutState::RolledBack)))
    }

    pub async fn route_state(&self, service: &str, env: &str) -> Result<Option<RouteState>> {
        with_read_pool!(self, |pool| {
            let row = sqlx::query("SELECT doc FROM routes WHERE service = $1 AND environment = $2")
                .bind(service)
                .bind(env)
                .fetch_optional(pool)
                .await?;
            row.map(|r| {
                serde_json::from_str(&r.try_get::<String, _>(0)?)
                    .map_err(|e| corrupt(&format!("route {service}/{env}"), e))
            })
            .transpose()
        })
    }

    /// Every route: `(service, environment, state)`.
    pub async fn routes(&self) -> Result<Vec<(String, String, RouteState)>> {
        with_read_pool!(self, |pool| {
            let rows = sqlx::query("SELECT service, environment, doc FROM routes ORDER BY service, environment")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let (s, e): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    let state = serde_json::from_str(&r.try_get::<String, _>(2)?)
                        .map_err(|err| corrupt(&format!("route {s}/{e}"), err))?;
                    Ok((s, e, state))
                })
                .collect()
        })
    }

    /// Writes a route's desired state (creating it), with its events.
    pub async fn save_route(
        &self,
        service: &str,
        env: &str,
        state: &RouteState,
        events: &[NewEvent],
        ctx: &WriteContext,
    ) -> Result<()> {
        let doc = serde_json::to_string(state).map_err(|e| corrupt("route", e))?;
        with_write_tx!(self, |tx| {
            let taken = sqlx::query("SELECT service, environment FROM routes WHERE port = $1")
                .bind(i64::from(state.port))
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = taken {
                let (s, e): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                if s != service || e != env {
                    tx.rollback().await?;
                    return Err(StoreError::Conflict(format!(
                        "router port {} is already used by {s} in {e}",
                        state.port
                    )));
                }
            }
            sqlx::query(
                "INSERT INTO routes (service, environment, port, doc, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (service, environment) DO UPDATE SET port = excluded.port, doc = excluded.doc, \
                 updated_at = excluded.updated_at",
            )
            .bind(service)
            .bind(env)
            .bind(i64::from(state.port))
            .bind(&doc)
            .bind(ctx.now)
            .execute(&mut *tx)
            .await?;
            for e in events {
                insert_event!(tx, ctx, e);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Routes whose service or environment no longer exists in the catalog: what the engine
    /// tears down after a delete.
    pub async fn removed_routes(&self) -> Result<Vec<(String, String)>> {
        with_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT r.service, r.environment FROM routes r \
                 WHERE NOT EXISTS (SELECT 1 FROM services s WHERE s.name = r.service) \
                 OR NOT EXISTS (SELECT 1 FROM environments e WHERE e.name = r.environment) \
                 ORDER BY r.service, r.environment",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
        })
    }

    /// Forgets a route (its replicas stopped), with its events.
    pub async fn delete_route(&self, service: &str, env: &str, events: &[NewEvent], ctx: &WriteContext) -> Result<()> {
        with_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM routes WHERE service = $1 AND environment = $2")
                .bind(service)
                .bind(env)
                .execute(&mut *tx)
                .await?;
            for e in events {
                insert_event!(tx, ctx, e);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a running replica (the runtime's record, as JSON).
    pub async fn save_instance(&self, id: &str, service: &str, env: &str, doc: &Value, now: i64) -> Result<()> {
        with_write_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO instances (id, service, environment, doc, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(service)
            .bind(env)
            .bind(doc.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn delete_instance(&self, id: &str) -> Result<()> {
        with_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM instances WHERE id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every recorded replica's document.
    pub async fn instances(&self) -> Result<Vec<Value>> {
        with_read_pool!(self, |pool| {
            let rows = sqlx::query("SELECT id, doc FROM instances ORDER BY id").fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let id: String = r.try_get(0)?;
                    serde_json::from_str(&r.try_get::<String, _>(1)?).map_err(|e| corrupt(&format!("instance {id}"), e))
                })
                .collect()
        })
    }

    /// Who holds lease `name` now, if anyone.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        with_read_pool!(self, |pool| {
            let row = sqlx::query("SELECT holder FROM leases WHERE name = $1").bind(name).fetch_optional(pool).await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
    }

    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`. Returns whether
    /// `holder` has it: a lease held by another and not yet expired is not taken — unless
    /// its holder is `stale` (the caller knows it is dead).
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now: i64,
        stale: Option<&str>,
    ) -> Result<bool> {
        with_write_tx!(self, |tx| {
            let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            let free = match &row {
                None => true,
                Some(r) => {
                    let current: String = r.try_get(0)?;
                    current == holder || Some(current.as_str()) == stale || r.try_get::<i64, _>(1)? < now
                }
            };
            if free {
                sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
                )
                .bind(name)
                .bind(holder)
                .bind(now + ttl_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(free)
        })
    }
}
