//! The event log: appending inside a transaction, and paging through it.

use pave_model::{Event, NewEvent};
use sqlx::Row;

use crate::{Result, Store, WriteContext, with_read_pool, with_write_tx};

/// Appends one event inside the transaction `$tx` and evaluates to its id.
macro_rules! insert_event {
    ($tx:expr, $ctx:expr, $event:expr) => {{
        let ev: &pave_model::NewEvent = $event;
        let row = sqlx::query(
            "INSERT INTO events (kind, subject, time, actor, request_id, data) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&ev.kind)
        .bind(&ev.subject)
        .bind($ctx.now)
        .bind(&$ctx.actor)
        .bind($ctx.request_id.as_deref())
        .bind(ev.data.to_string())
        .fetch_one(&mut *$tx)
        .await?;
        sqlx::Row::try_get::<i64, _>(&row, 0)?
    }};
}
pub(crate) use insert_event;

/// Reads an event from a row of `SELECT id, kind, subject, time, actor, request_id, data`
/// (a macro: the row type differs per backend).
macro_rules! event_from_row {
    ($row:expr) => {{
        let row = $row;
        let id: i64 = sqlx::Row::try_get(row, 0)?;
        let data: String = sqlx::Row::try_get(row, 6)?;
        pave_model::Event {
            id,
            kind: sqlx::Row::try_get(row, 1)?,
            subject: sqlx::Row::try_get(row, 2)?,
            time: pave_model::Timestamp(sqlx::Row::try_get(row, 3)?),
            actor: sqlx::Row::try_get(row, 4)?,
            request_id: sqlx::Row::try_get(row, 5)?,
            data: serde_json::from_str(&data)
                .map_err(|e| crate::StoreError::Corrupt { what: format!("event {id}"), reason: e.to_string() })?,
        }
    }};
}
pub(crate) use event_from_row;

/// A page request: events after `after`, optionally only some kinds or one subject.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub after: i64,
    /// Exact kinds (`service.created`) or prefixes ending in `.*` (`service.*`); any matches.
    pub kinds: Vec<String>,
    pub subject: Option<String>,
    pub limit: i64,
}

impl Store {
    /// Appends events that change no projection (reports from outside, for instance).
    pub async fn append_events(&self, ctx: &WriteContext, events: &[NewEvent]) -> Result<Vec<i64>> {
        with_write_tx!(self, |tx| {
            let mut ids = Vec::with_capacity(events.len());
            for ev in events {
                ids.push(insert_event!(tx, ctx, ev));
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// Events in log order. `limit` is clamped to 1..=1000.
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<Event>> {
        let mut sql = String::from("SELECT id, kind, subject, time, actor, request_id, data FROM events WHERE id > $1");
        let mut args: Vec<String> = Vec::new();
        if !q.kinds.is_empty() {
            sql.push_str(" AND (");
            for (i, k) in q.kinds.iter().enumerate() {
                if i > 0 {
                    sql.push_str(" OR ");
                }
                match k.strip_suffix('*') {
                    Some(prefix) => {
                        args.push(format!("{}%", prefix.replace(['%', '_'], "")));
                        sql.push_str(&format!("kind LIKE ${}", args.len() + 1));
                    }
                    None => {
                        args.push(k.clone());
                        sql.push_str(&format!("kind = ${}", args.len() + 1));
                    }
                }
            }
            sql.push(')');
        }
        if let Some(s) = &q.subject {
            args.push(s.clone());
            sql.push_str(&format!(" AND subject = ${}", args.len() + 1));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", q.limit.clamp(1, 1000)));
        with_read_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).bind(q.after);
            for a in &args {
                query = query.bind(a);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(|row| Ok(event_from_row!(row))).collect()
        })
    }

    /// Number of events in the log (for tests and status pages).
    pub async fn event_count(&self) -> Result<i64> {
        with_read_pool!(self, |pool| {
            let row = sqlx::query("SELECT COUNT(*) FROM events").fetch_one(pool).await?;
            Ok(row.try_get::<i64, _>(0)?)
        })
    }

    /// The newest event's id (0 for an empty log): where a reader that only wants what comes
    /// next starts.
    pub async fn last_event_id(&self) -> Result<i64> {
        with_read_pool!(self, |pool| {
            let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events").fetch_one(pool).await?;
            Ok(row.try_get::<i64, _>(0)?)
        })
    }
}
