//! Catalog projections (teams, environments, services) and the transactional apply.

use pave_model::apply::Request;
use pave_model::{Kind, Plan, Resource, Selector, Snapshot, Timestamp};
use serde_json::Value;
use sqlx::Row;

use crate::{Result, Store, StoreError, WriteContext, with_read_pool, with_write_tx};

/// Requests touching more resources than this load the whole catalog at once rather than
/// looking each name up.
pub(crate) const TARGETED_LIMIT: usize = 64;

pub(crate) fn table(kind: Kind) -> &'static str {
    kind.info().table
}

/// A resource as stored, with its timestamps.
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub resource: Resource,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl StoredResource {
    /// The API form: the document plus a read-only `status`.
    pub fn to_value(&self) -> Value {
        let mut v = self.resource.to_value();
        v["status"] = serde_json::json!({
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        });
        v
    }
}

/// Filters for listing resources of one kind.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only services owned by this team.
    pub owner: Option<String>,
    pub selector: Option<Selector>,
}

pub(crate) fn decode(kind: Kind, name: &str, doc: &str) -> Result<Resource> {
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("{} {name:?}", kind.noun()), reason };
    let value: Value = serde_json::from_str(doc).map_err(|e| corrupt(e.to_string()))?;
    Resource::from_value(value)
        .map_err(|errs| corrupt(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
}

/// Loads one resource inside a transaction into the snapshot, if it exists.
macro_rules! load_one {
    ($tx:expr, $snap:expr, $kind:expr, $name:expr) => {{
        let kind: ::pave_model::Kind = $kind;
        let name: &str = $name;
        let sql = format!("SELECT doc FROM {} WHERE name = $1", $crate::catalog::table(kind));
        if let Some(row) = ::sqlx::query(&sql).bind(name).fetch_optional(&mut *$tx).await? {
            $snap.insert($crate::catalog::decode(kind, name, &row.try_get::<String, _>(0)?)?);
        }
    }};
}

/// Loads every row a query returns (`name, doc` columns) into the snapshot.
macro_rules! load_many {
    ($tx:expr, $snap:expr, $kind:expr, $query:expr) => {{
        let kind: ::pave_model::Kind = $kind;
        for row in $query.fetch_all(&mut *$tx).await? {
            let name: String = row.try_get(0)?;
            $snap.insert($crate::catalog::decode(kind, &name, &row.try_get::<String, _>(1)?)?);
        }
    }};
}

/// The catalog part of an apply, inside an open write transaction `$tx`: plans `$request`
/// against the catalog it loads, lets `$authorize` veto the plan, refuses deletes where a
/// rollout is in progress, and writes rows and events. Evaluates to the plan and the new
/// event ids; the caller commits (or, for a dry run, rolls back), so other writes — flags in
/// the same apply — can share the transaction. A macro because the transaction's type
/// differs per backend (see `with_write_tx!`).
macro_rules! catalog_writes {
    ($tx:ident, $request:expr, $ctx:expr, $authorize:expr) => {{
        let full = $request.prune.is_some() || $request.desired.len() + $request.deletes.len() > $crate::catalog::TARGETED_LIMIT;
            let mut snap = ::pave_model::Snapshot::default();
            if full {
                for kind in ::pave_model::Kind::ALL {
                    $crate::catalog::load_many!($tx, snap, kind, sqlx::query(&format!("SELECT name, doc FROM {}", $crate::catalog::table(kind))));
                }
            } else {
                let mut wanted: ::std::collections::BTreeSet<(::pave_model::Kind, String)> = ::std::collections::BTreeSet::new();
                for r in &$request.desired {
                    wanted.insert((r.kind(), r.name().to_string()));
                    wanted.extend((r.kind().info().references)(r).into_iter().map(|x| (x.kind, x.name)));
                }
                for (kind, name) in &$request.deletes {
                    wanted.insert((*kind, name.clone()));
                    match kind {
                        ::pave_model::Kind::Team => $crate::catalog::load_many!(
                            $tx,
                            snap,
                            ::pave_model::Kind::Service,
                            sqlx::query("SELECT name, doc FROM services WHERE owner = $1").bind(name)
                        ),
                        ::pave_model::Kind::Service => $crate::catalog::load_many!(
                            $tx,
                            snap,
                            ::pave_model::Kind::Service,
                            sqlx::query(
                                "SELECT s.name, s.doc FROM services s JOIN service_dependencies d ON d.service = s.name \
                                 WHERE d.depends_on = $1"
                            )
                            .bind(name)
                        ),
                        ::pave_model::Kind::Environment => {}
                    }
                }
                for (kind, name) in &wanted {
                    $crate::catalog::load_one!($tx, snap, *kind, name);
                }
            }

            let plan = ::pave_model::apply::plan(&snap, $request)?;
            if let Err(reason) = ($authorize)(&plan, &snap) {
                $tx.rollback().await?;
                return Err($crate::StoreError::Forbidden(reason));
            }
            // A delete stops what runs there (the engine tears the routes down), but not in
            // the middle of a rollout: that one is aborted first, on purpose.
            for change in plan.changes.iter().filter(|c| c.action == ::pave_model::Action::Delete) {
                let column = match change.kind {
                    ::pave_model::Kind::Service => "service",
                    ::pave_model::Kind::Environment => "environment",
                    ::pave_model::Kind::Team => continue,
                };
                let active = sqlx::query(&format!(
                    "SELECT id, service, environment, state FROM rollouts WHERE {column} = $1 AND {} \
                     ORDER BY id LIMIT 1",
                    crate::rollouts::unfinished!()
                ))
                .bind(&change.name)
                .fetch_optional(&mut *$tx)
                .await?;
                if let Some(row) = active {
                    let (id, service, env, state): (i64, String, String, String) =
                        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
                    $tx.rollback().await?;
                    return Err($crate::StoreError::Conflict(format!(
                        "{} {:?} has a rollout in progress (rollout {id} of {service} to {env}, {state}): \
                         `pave rollout abort {service} --env {env}` first; a delete stops the replicas that run there",
                        change.kind.noun(),
                        change.name
                    )));
                }
            }

            let mut deleted_services = Vec::new();
            for change in &plan.changes {
                match (&change.action, &change.resource) {
                    (::pave_model::Action::Create | ::pave_model::Action::Update, Some(resource)) => {
                        let doc = resource.to_value().to_string();
                        match resource {
                            ::pave_model::Resource::Team(t) => {
                                sqlx::query(
                                    "INSERT INTO teams (name, doc, created_at, updated_at) VALUES ($1, $2, $3, $3) \
                                     ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at",
                                )
                                .bind(&t.metadata.name)
                                .bind(&doc)
                                .bind($ctx.now)
                                .execute(&mut *$tx)
                                .await?;
                            }
                            ::pave_model::Resource::Environment(e) => {
                                sqlx::query(
                                    "INSERT INTO environments (name, position, production, doc, created_at, updated_at) \
                                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO UPDATE SET \
                                     position = excluded.position, production = excluded.production, \
                                     doc = excluded.doc, updated_at = excluded.updated_at",
                                )
                                .bind(&e.metadata.name)
                                .bind(i64::from(e.spec.order))
                                .bind(e.spec.production)
                                .bind(&doc)
                                .bind($ctx.now)
                                .execute(&mut *$tx)
                                .await?;
                            }
                            ::pave_model::Resource::Service(s) => {
                                sqlx::query(
                                    "INSERT INTO services (name, owner, doc, created_at, updated_at) \
                                     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO UPDATE SET \
                                     owner = excluded.owner, doc = excluded.doc, updated_at = excluded.updated_at",
                                )
                                .bind(&s.metadata.name)
                                .bind(&s.spec.owner)
                                .bind(&doc)
                                .bind($ctx.now)
                                .execute(&mut *$tx)
                                .await?;
                            }
                        }
                    }
                    (::pave_model::Action::Delete, _) if change.kind == ::pave_model::Kind::Service => deleted_services.push(change.name.as_str()),
                    _ => {}
                }
            }
            // Dependency edges after every service row exists, so edges between services
            // created in this same apply satisfy the foreign keys.
            for change in &plan.changes {
                if let (::pave_model::Action::Create | ::pave_model::Action::Update, Some(::pave_model::Resource::Service(s))) =
                    (&change.action, &change.resource)
                {
                    if change.action == ::pave_model::Action::Update {
                        sqlx::query("DELETE FROM service_dependencies WHERE service = $1")
                            .bind(&s.metadata.name)
                            .execute(&mut *$tx)
                            .await?;
                    }
                    for dep in &s.spec.depends_on {
                        sqlx::query("INSERT INTO service_dependencies (service, depends_on) VALUES ($1, $2)")
                            .bind(&s.metadata.name)
                            .bind(dep)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
            }
            // Outgoing edges of deleted services first: any edge into a deleted service comes
            // from another deleted one (the planner refused the rest).
            for name in &deleted_services {
                sqlx::query("DELETE FROM service_dependencies WHERE service = $1")
                    .bind(*name)
                    .execute(&mut *$tx)
                    .await?;
            }
            for change in plan.changes.iter().filter(|c| c.action == ::pave_model::Action::Delete) {
                // A deleted service or environment takes its secrets with it: a later one of
                // the same name must not inherit them.
                let owned = match change.kind {
                    ::pave_model::Kind::Service => Some("DELETE FROM secrets WHERE service = $1"),
                    ::pave_model::Kind::Environment => Some("DELETE FROM secrets WHERE environment = $1"),
                    ::pave_model::Kind::Team => None,
                };
                if let Some(sql) = owned {
                    sqlx::query(sql).bind(&change.name).execute(&mut *$tx).await?;
                }
                sqlx::query(&format!("DELETE FROM {} WHERE name = $1", $crate::catalog::table(change.kind)))
                    .bind(&change.name)
                    .execute(&mut *$tx)
                    .await?;
            }
            let mut ids = Vec::new();
            for change in &plan.changes {
                if let Some(event) = change.event() {
                    ids.push($crate::events::insert_event!($tx, $ctx, &event));
                }
            }
            (plan, ids)
    }};
}

pub(crate) use {catalog_writes, load_many, load_one};

impl Store {
    /// Plans `request` against the catalog and, unless `dry_run`, carries it out: projection
    /// rows and one event per change, all in one transaction. A dry run takes the same path
    /// and rolls back, so its answer is exactly what a real apply would do.
    ///
    /// `authorize` sees the plan, and the catalog it was planned against, before anything is
    /// written and may refuse it (the caller's role may allow some kinds of change and not
    /// others; its scope some owners and not others — a service's current owner is in the
    /// snapshot).
    pub async fn apply(
        &self,
        request: &Request,
        ctx: &WriteContext,
        dry_run: bool,
        authorize: &(dyn Fn(&Plan, &Snapshot) -> Result<(), String> + Sync),
    ) -> Result<(Plan, Vec<i64>)> {
        with_write_tx!(self, |tx| {
            let (plan, ids) = catalog_writes!(tx, request, ctx, authorize);
            if dry_run {
                tx.rollback().await?;
                return Ok((plan, Vec::new()));
            }
            tx.commit().await?;
            Ok((plan, ids))
        })
    }

    /// One resource by kind and name.
    pub async fn get(&self, kind: Kind, name: &str) -> Result<Option<StoredResource>> {
        let sql = format!("SELECT doc, created_at, updated_at FROM {} WHERE name = $1", table(kind));
        with_read_pool!(self, |pool| {
            let Some(row) = sqlx::query(&sql).bind(name).fetch_optional(pool).await? else {
                return Ok(None);
            };
            Ok(Some(StoredResource {
                resource: decode(kind, name, &row.try_get::<String, _>(0)?)?,
                created_at: Timestamp(row.try_get(1)?),
                updated_at: Timestamp(row.try_get(2)?),
            }))
        })
    }

    /// All resources of one kind, by name (environments by their order on the path).
    pub async fn list(&self, kind: Kind, q: &ListQuery) -> Result<Vec<StoredResource>> {
        let order = if kind == Kind::Environment { "position, name" } else { "name" };
        let (filter, owner) = match (&q.owner, kind) {
            (Some(owner), Kind::Service) => (" WHERE owner = $1", Some(owner.clone())),
            _ => ("", None),
        };
        let sql = format!("SELECT name, doc, created_at, updated_at FROM {}{filter} ORDER BY {order}", table(kind));
        with_read_pool!(self, |pool| {
            let mut query = sqlx::query(&sql);
            if let Some(owner) = &owner {
                query = query.bind(owner);
            }
            let rows = query.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let name: String = row.try_get(0)?;
                let resource = decode(kind, &name, &row.try_get::<String, _>(1)?)?;
                if q.selector.as_ref().is_some_and(|s| !s.matches(&resource.metadata().labels)) {
                    continue;
                }
                out.push(StoredResource {
                    resource,
                    created_at: Timestamp(row.try_get(2)?),
                    updated_at: Timestamp(row.try_get(3)?),
                });
            }
            Ok(out)
        })
    }

    /// How many resources of `kind` exist.
    pub async fn count(&self, kind: Kind) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table(kind));
        with_read_pool!(self, |pool| Ok(sqlx::query(&sql).fetch_one(pool).await?.try_get::<i64, _>(0)?))
    }
}
