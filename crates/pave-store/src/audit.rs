//! The audit trail: one entry per mutating request, allowed or denied. Unlike events, entries
//! record attempts, not state changes.

use pave_model::Timestamp;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::{Result, Store, StoreError, with_read_pool, with_write_tx};

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub time: i64,
    pub actor: String,
    pub role: Option<String>,
    /// What was attempted: `METHOD /route/{template}`.
    pub action: String,
    /// The concrete path it was attempted on.
    pub target: String,
    /// `allowed`, `denied` (auth refused it) or `failed` (allowed, but refused or errored).
    pub outcome: String,
    pub status: u16,
    pub request_id: String,
    pub detail: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub time: Timestamp,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub status: u16,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// Newest first; `before` pages backwards.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub before: Option<i64>,
    pub actor: Option<String>,
    pub outcome: Option<String>,
    pub limit: i64,
}

impl Store {
    pub async fn append_audit(&self, e: &NewAuditEntry) -> Result<i64> {
        with_write_tx!(self, |tx| {
            let row = sqlx::query(
                "INSERT INTO audit (time, actor, role, action, target, outcome, status, request_id, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(e.time)
            .bind(&e.actor)
            .bind(e.role.as_deref())
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.outcome)
            .bind(i64::from(e.status))
            .bind(&e.request_id)
            .bind(e.detail.as_ref().map(Value::to_string))
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = row.try_get(0)?;
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut sql = String::from(
            "SELECT id, time, actor, role, action, target, outcome, status, request_id, detail FROM audit WHERE id < $1",
        );
        let mut args = Vec::new();
        if let Some(a) = &q.actor {
            args.push(a.clone());
            sql.push_str(&format!(" AND actor = ${}", args.len() + 1));
        }
        if let Some(o) = &q.outcome {
            args.push(o.clone());
            sql.push_str(&format!(" AND outcome = ${}", args.len() + 1));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", q.limit.clamp(1, 1000)));
        with_read_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).bind(q.before.unwrap_or(i64::MAX));
            for a in &args {
                query = query.bind(a);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    let id: i64 = row.try_get(0)?;
                    let detail: Option<String> = row.try_get(9)?;
                    Ok(AuditEntry {
                        id,
                        time: Timestamp(row.try_get(1)?),
                        actor: row.try_get(2)?,
                        role: row.try_get(3)?,
                        action: row.try_get(4)?,
                        target: row.try_get(5)?,
                        outcome: row.try_get(6)?,
                        status: u16::try_from(row.try_get::<i64, _>(7)?).unwrap_or(0),
                        request_id: row.try_get(8)?,
                        detail: detail.map(|d| serde_json::from_str(&d)).transpose().map_err(|e| {
                            StoreError::Corrupt { what: format!("audit entry {id}"), reason: e.to_string() }
                        })?,
                    })
                })
                .collect()
        })
    }
}
