//! Delivery facts — deployments, incidents, changes — reported idempotently: reporting a
//! fact again with the same id and content changes nothing; with new content (an incident
//! now resolved) it updates the fact. Each create or update appends an event.

use std::collections::{HashMap, HashSet};

use pave_model::delivery::{Change, Deployment, DeploymentKind, DeploymentStatus, Incident, Report};
use pave_model::event::kinds;
use pave_model::{NewEvent, Timestamp};
use serde::Serialize;
use sqlx::Row;

use crate::events::insert_event;
use crate::{Result, Store, StoreError, WriteContext, with_read_pool, with_write_tx};

/// What reporting one fact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportAction {
    Created,
    Updated,
    Unchanged,
}

/// Delivery facts, for the DORA engine.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFacts {
    pub deployments: Vec<Deployment>,
    pub incidents: Vec<Incident>,
    pub changes: Vec<Change>,
    /// The highest event id among these facts' latest changes: read again with
    /// `delivery_changes_since(seq)` to catch up.
    pub seq: i64,
}

fn status_str(s: DeploymentStatus) -> &'static str {
    match s {
        DeploymentStatus::Succeeded => "succeeded",
        DeploymentStatus::Failed => "failed",
        DeploymentStatus::RolledBack => "rolled-back",
    }
}

fn corrupt(what: &str, reason: String) -> StoreError {
    StoreError::Corrupt { what: what.into(), reason }
}

/// Decodes delivery rows from either backend.
trait FactRow {
    fn deployment(&self) -> Result<Deployment>;
    fn incident(&self) -> Result<Incident>;
    fn change(&self) -> Result<Change>;
}

const DEPLOYMENT_COLUMNS: &str =
    "id, service, environment, version, commit_sha, previous_sha, commits, started_at, finished_at, status, kind";
const INCIDENT_COLUMNS: &str = "id, service, opened_at, detected_at, resolved_at, severity, deployment, title";
const CHANGE_COLUMNS: &str = "sha, service, author, message, authored_at, committed_at, merged_at";

macro_rules! impl_fact_row {
    ($row:ty) => {
        impl FactRow for $row {
            fn deployment(&self) -> Result<Deployment> {
                let status: String = self.try_get(9)?;
                let kind: String = self.try_get(10)?;
                let commits: String = self.try_get(6)?;
                Ok(Deployment {
                    id: self.try_get(0)?,
                    service: self.try_get(1)?,
                    environment: self.try_get(2)?,
                    version: self.try_get(3)?,
                    commit: self.try_get(4)?,
                    previous_commit: self.try_get(5)?,
                    commits: commits.split_whitespace().map(str::to_owned).collect(),
                    started_at: Timestamp(self.try_get(7)?),
                    finished_at: Timestamp(self.try_get(8)?),
                    status: match status.as_str() {
                        "succeeded" => DeploymentStatus::Succeeded,
                        "failed" => DeploymentStatus::Failed,
                        "rolled-back" => DeploymentStatus::RolledBack,
                        other => return Err(corrupt("deployment status", other.into())),
                    },
                    kind: if kind == "unplanned" { DeploymentKind::Unplanned } else { DeploymentKind::Planned },
                })
            }

            fn incident(&self) -> Result<Incident> {
                Ok(Incident {
                    id: self.try_get(0)?,
                    service: self.try_get(1)?,
                    opened_at: Timestamp(self.try_get(2)?),
                    detected_at: self.try_get::<Option<i64>, _>(3)?.map(Timestamp),
                    resolved_at: self.try_get::<Option<i64>, _>(4)?.map(Timestamp),
                    severity: self.try_get(5)?,
                    deployment: self.try_get(6)?,
                    title: self.try_get(7)?,
                })
            }

            fn change(&self) -> Result<Change> {
                Ok(Change {
                    sha: self.try_get(0)?,
                    service: self.try_get(1)?,
                    author: self.try_get(2)?,
                    message: self.try_get(3)?,
                    authored_at: Timestamp(self.try_get(4)?),
                    committed_at: Timestamp(self.try_get(5)?),
                    merged_at: self.try_get::<Option<i64>, _>(6)?.map(Timestamp),
                })
            }
        }
    };
}
impl_fact_row!(sqlx::sqlite::SqliteRow);
impl_fact_row!(sqlx::postgres::PgRow);

/// Writes one fact (insert or update) inside `$tx`.
macro_rules! upsert_fact {
    ($tx:expr, $report:expr, $now:expr, $seq:expr) => {{
        match $report {
            Report::Deployment(d) => {
                sqlx::query(&format!(
                    "INSERT INTO deployments ({DEPLOYMENT_COLUMNS}, updated_at, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (id) DO UPDATE SET service = excluded.service, environment = excluded.environment, \
                     version = excluded.version, commit_sha = excluded.commit_sha, previous_sha = excluded.previous_sha, \
                     commits = excluded.commits, started_at = excluded.started_at, finished_at = excluded.finished_at, \
                     status = excluded.status, kind = excluded.kind, updated_at = excluded.updated_at, seq = excluded.seq"
                ))
                .bind(&d.id)
                .bind(&d.service)
                .bind(&d.environment)
                .bind(&d.version)
                .bind(d.commit.as_deref())
                .bind(d.previous_commit.as_deref())
                .bind(d.commits.join(" "))
                .bind(d.started_at.0)
                .bind(d.finished_at.0)
                .bind(status_str(d.status))
                .bind(if d.kind == DeploymentKind::Unplanned { "unplanned" } else { "planned" })
                .bind($now)
                .bind($seq)
                .execute(&mut *$tx)
                .await?;
            }
            Report::Incident(i) => {
                sqlx::query(&format!(
                    "INSERT INTO incidents ({INCIDENT_COLUMNS}, updated_at, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (id) DO UPDATE SET service = excluded.service, opened_at = excluded.opened_at, \
                     detected_at = excluded.detected_at, resolved_at = excluded.resolved_at, severity = excluded.severity, \
                     deployment = excluded.deployment, title = excluded.title, updated_at = excluded.updated_at, seq = excluded.seq"
                ))
                .bind(&i.id)
                .bind(&i.service)
                .bind(i.opened_at.0)
                .bind(i.detected_at.map(|t| t.0))
                .bind(i.resolved_at.map(|t| t.0))
                .bind(&i.severity)
                .bind(i.deployment.as_deref())
                .bind(i.title.as_deref())
                .bind($now)
                .bind($seq)
                .execute(&mut *$tx)
                .await?;
            }
            Report::Change(c) => {
                sqlx::query(&format!(
                    "INSERT INTO changes ({CHANGE_COLUMNS}, updated_at, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (sha) DO UPDATE SET service = excluded.service, author = excluded.author, \
                     message = excluded.message, authored_at = excluded.authored_at, committed_at = excluded.committed_at, \
                     merged_at = excluded.merged_at, updated_at = excluded.updated_at, seq = excluded.seq"
                ))
                .bind(&c.sha)
                .bind(&c.service)
                .bind(&c.author)
                .bind(&c.message)
                .bind(c.authored_at.0)
                .bind(c.committed_at.0)
                .bind(c.merged_at.map(|t| t.0))
                .bind($now)
                .bind($seq)
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

impl Store {
    /// Records reported facts in one transaction: all or nothing. Every fact must name an
    /// existing service; an incident's deployment, if given, must exist (in the store or in
    /// the same batch).
    pub async fn report(&self, reports: &[Report], ctx: &WriteContext) -> Result<Vec<ReportAction>> {
        let mut seen = HashSet::new();
        for r in reports {
            if !seen.insert((r.noun(), r.key())) {
                return Err(StoreError::Invalid(format!("{} {:?} appears twice in one batch", r.noun(), r.key())));
            }
        }
        let batch_deployments: HashSet<&str> = reports
            .iter()
            .filter_map(|r| if let Report::Deployment(d) = r { Some(d.id.as_str()) } else { None })
            .collect();
        with_write_tx!(self, |tx| {
            let mut known_services: HashMap<String, bool> = HashMap::new();
            let mut missing = Vec::new();
            for r in reports {
                let svc = r.service();
                if !known_services.contains_key(svc) {
                    let found = sqlx::query("SELECT 1 FROM services WHERE name = $1")
                        .bind(svc)
                        .fetch_optional(&mut *tx)
                        .await?;
                    known_services.insert(svc.to_owned(), found.is_some());
                }
                if !known_services[svc] {
                    missing.push(format!("{} {:?}: service {svc:?} does not exist", r.noun(), r.key()));
                }
                if let Report::Incident(i) = r
                    && let Some(dep) = i.deployment.as_deref().filter(|d| !batch_deployments.contains(d))
                {
                    let found = sqlx::query("SELECT 1 FROM deployments WHERE id = $1")
                        .bind(dep)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if found.is_none() {
                        missing.push(format!("incident {:?}: deployment {dep:?} does not exist", i.id));
                    }
                }
            }
            if !missing.is_empty() {
                return Err(StoreError::Invalid(missing.join("; ")));
            }
            let mut actions = Vec::with_capacity(reports.len());
            for r in reports {
                let existing: Option<Report> = match r {
                    Report::Deployment(d) => {
                        sqlx::query(&format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1"))
                            .bind(&d.id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|row| row.deployment().map(Report::Deployment))
                            .transpose()?
                    }
                    Report::Incident(i) => {
                        sqlx::query(&format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"))
                            .bind(&i.id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|row| row.incident().map(Report::Incident))
                            .transpose()?
                    }
                    Report::Change(c) => sqlx::query(&format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE sha = $1"))
                        .bind(&c.sha)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|row| row.change().map(Report::Change))
                        .transpose()?,
                };
                let action = match existing {
                    Some(e) if e == *r => ReportAction::Unchanged,
                    Some(_) => ReportAction::Updated,
                    None => ReportAction::Created,
                };
                if action != ReportAction::Unchanged {
                    let event = NewEvent::new(
                        kinds::fact(r, action == ReportAction::Updated),
                        format!("{}/{}", r.noun(), r.key()),
                        r.to_value(),
                    );
                    // The row remembers the event that last changed it, for readers catching up.
                    let seq = insert_event!(tx, ctx, &event);
                    upsert_fact!(tx, r, ctx.now, seq);
                }
                actions.push(action);
            }
            tx.commit().await?;
            Ok(actions)
        })
    }

    /// Every delivery fact, deployments only for `environments` (all when empty).
    pub async fn delivery_facts(&self, environments: &[String]) -> Result<DeliveryFacts> {
        self.delivery_changes_since(0, environments).await
    }

    /// The facts created or changed after `seq` (see [`DeliveryFacts::seq`]), deployments
    /// only for `environments` (all when empty). Lets a reader keep a copy and catch up.
    pub async fn delivery_changes_since(&self, seq: i64, environments: &[String]) -> Result<DeliveryFacts> {
        let filter = if environments.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = (2..=environments.len() + 1).map(|i| format!("${i}")).collect();
            format!(" AND environment IN ({})", list.join(", "))
        };
        let dep_sql = format!("SELECT {DEPLOYMENT_COLUMNS}, seq FROM deployments WHERE seq > $1{filter}");
        let inc_sql = format!("SELECT {INCIDENT_COLUMNS}, seq FROM incidents WHERE seq > $1");
        let chg_sql = format!("SELECT {CHANGE_COLUMNS}, seq FROM changes WHERE seq > $1");
        with_read_pool!(self, |pool| {
            // One snapshot for the three reads, so `seq` is consistent with what was read.
            let mut tx = pool.begin().await?;
            let mut q = sqlx::query(&dep_sql).bind(seq);
            for e in environments {
                q = q.bind(e);
            }
            let mut high = seq;
            let rows = q.fetch_all(&mut *tx).await?;
            let mut deployments = Vec::with_capacity(rows.len());
            for r in &rows {
                deployments.push(r.deployment()?);
                high = high.max(r.try_get::<i64, _>(11)?);
            }
            drop(rows);
            let rows = sqlx::query(&inc_sql).bind(seq).fetch_all(&mut *tx).await?;
            let mut incidents = Vec::with_capacity(rows.len());
            for r in &rows {
                incidents.push(r.incident()?);
                high = high.max(r.try_get::<i64, _>(8)?);
            }
            let rows = sqlx::query(&chg_sql).bind(seq).fetch_all(&mut *tx).await?;
            let mut changes = Vec::with_capacity(rows.len());
            for r in &rows {
                changes.push(r.change()?);
                high = high.max(r.try_get::<i64, _>(7)?);
            }
            tx.rollback().await?;
            Ok(DeliveryFacts { deployments, incidents, changes, seq: high })
        })
    }

    /// The highest `seq` of any delivery fact: whether a kept copy is current.
    pub async fn delivery_seq(&self) -> Result<i64> {
        with_read_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM deployments UNION ALL SELECT MAX(seq) FROM incidents \
                 UNION ALL SELECT MAX(seq) FROM changes) AS m",
            )
            .fetch_one(pool)
            .await?;
            Ok(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0))
        })
    }
}

impl Store {
    /// One incident by id.
    pub async fn incident(&self, id: &str) -> Result<Option<Incident>> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1");
        with_read_pool!(self, |pool| {
            sqlx::query(&sql).bind(id).fetch_optional(pool).await?.map(|r| r.incident()).transpose()
        })
    }

    /// One change by sha.
    pub async fn change(&self, sha: &str) -> Result<Option<Change>> {
        let sql = format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE sha = $1");
        with_read_pool!(self, |pool| {
            sqlx::query(&sql).bind(sha).fetch_optional(pool).await?.map(|r| r.change()).transpose()
        })
    }
}
