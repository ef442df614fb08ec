//! Feature flags, segments, SDK tokens, and what SDKs report back (usage, registrations).
//!
//! Every change to what SDKs see bumps `flag_revision` in the same transaction, so serving
//! replicas notice it with one cheap read. Flag writes check their references (environments,
//! segments, parent flags) inside the write transaction: a broken definition is never stored.

use std::collections::{BTreeMap, BTreeSet};

use pave_model::delivery::FlagChange as FlagChangeFact;
use pave_model::diff::{FieldChange, diff};
use pave_model::event::kinds;
use pave_model::flags::{Exposure, Flag, Segment};
use pave_model::{NewEvent, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::events::{event_from_row, insert_event};
use crate::{Result, Store, StoreError, WriteContext, with_read_pool, with_write_tx};

/// A flag as stored, with who changed it when and its exposure per environment.
#[derive(Debug, Clone)]
pub struct StoredFlag {
    pub flag: Flag,
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub updated_by: String,
    pub archived_at: Option<Timestamp>,
    /// Environment → (exposure, since when).
    pub exposure: BTreeMap<String, (Exposure, Timestamp)>,
}

impl StoredFlag {
    /// The API form: the document plus a read-only `status`.
    pub fn to_value(&self) -> Value {
        let mut v = self.flag.to_value();
        let envs: serde_json::Map<String, Value> = self
            .exposure
            .iter()
            .map(|(env, (e, since))| (env.clone(), json!({"exposure": e, "since": since})))
            .collect();
        v["status"] = json!({
            "createdAt": self.created_at, "createdBy": self.created_by,
            "updatedAt": self.updated_at, "updatedBy": self.updated_by,
            "archivedAt": self.archived_at, "environments": envs,
        });
        v
    }
}

/// What one write did to one flag or segment.
#[derive(Debug, Clone, Serialize)]
pub struct FlagChange {
    /// `flag` or `segment`.
    pub kind: &'static str,
    pub name: String,
    /// `create`, `update` or `unchanged`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// Everything SDK-facing endpoints serve, read at one revision.
#[derive(Debug, Clone, Default)]
pub struct FlagSnapshot {
    pub revision: i64,
    /// Flags not archived.
    pub flags: Vec<Flag>,
    /// Segments with their wire ids.
    pub segments: Vec<(u32, Segment)>,
    /// Live (not revoked) SDK tokens.
    pub tokens: Vec<SdkToken>,
}

/// Which API an SDK token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SdkTokenKind {
    /// Server-side SDKs: the whole flag set (Unleash client API, OFREP, streaming).
    Client,
    /// Browsers and phones: evaluated answers only (Unleash frontend API, OFREP).
    Frontend,
}

impl SdkTokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SdkTokenKind::Client => "client",
            SdkTokenKind::Frontend => "frontend",
        }
    }

    pub fn parse(s: &str) -> Option<SdkTokenKind> {
        match s {
            "client" => Some(SdkTokenKind::Client),
            "frontend" => Some(SdkTokenKind::Frontend),
            _ => None,
        }
    }
}

/// An SDK token as stored (the hash is what requests are checked against).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkToken {
    pub id: String,
    pub name: String,
    pub kind: SdkTokenKind,
    /// A project name or `*` for all.
    pub project: String,
    pub environment: String,
    #[serde(skip)]
    pub hash: String,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// One flag's counts in one report from an SDK.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageCount {
    pub flag: String,
    pub yes: i64,
    pub no: i64,
    pub variants: BTreeMap<String, i64>,
}

/// A flag's usage in one environment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagUsage {
    pub environment: String,
    pub yes: i64,
    pub no: i64,
    pub variants: BTreeMap<String, i64>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// An SDK instance that registered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkClient {
    pub app_name: String,
    pub instance_id: String,
    pub environment: String,
    pub sdk: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<i64>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

fn exposure_str(e: Exposure) -> &'static str {
    match e {
        Exposure::Off => "off",
        Exposure::Partial => "partial",
        Exposure::On => "on",
    }
}

fn parse_exposure(s: &str) -> Exposure {
    match s {
        "on" => Exposure::On,
        "partial" => Exposure::Partial,
        _ => Exposure::Off,
    }
}

fn decode_flag(name: &str, doc: &str) -> Result<Flag> {
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("flag {name:?}"), reason };
    let v: Value = serde_json::from_str(doc).map_err(|e| corrupt(e.to_string()))?;
    Flag::from_stored_value(v)
        .map_err(|errs| corrupt(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
}

fn decode_segment(name: &str, doc: &str) -> Result<Segment> {
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("segment {name:?}"), reason };
    let v: Value = serde_json::from_str(doc).map_err(|e| corrupt(e.to_string()))?;
    Segment::from_value(v).map_err(|errs| corrupt(errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
}

/// A flag's document without `kind`, as stored and diffed.
fn flag_doc(f: &Flag) -> Value {
    serde_json::to_value(f).expect("a flag serialises")
}

const FLAG_COLUMNS: &str = "name, doc, created_at, created_by, updated_at, updated_by, archived_at";

/// Reads a `flags` row selected with [`FLAG_COLUMNS`] (exposure filled in later).
macro_rules! flag_row {
    ($row:expr) => {{
        let row = $row;
        let name: String = row.try_get(0)?;
        StoredFlag {
            flag: decode_flag(&name, &row.try_get::<String, _>(1)?)?,
            created_at: Timestamp(row.try_get(2)?),
            created_by: row.try_get(3)?,
            updated_at: Timestamp(row.try_get(4)?),
            updated_by: row.try_get(5)?,
            archived_at: row.try_get::<Option<i64>, _>(6)?.map(Timestamp),
            exposure: BTreeMap::new(),
        }
    }};
}

const TOKEN_COLUMNS: &str = "id, name, kind, project, environment, hash, created_at, created_by, revoked_at";

macro_rules! token_row {
    ($row:expr) => {{
        let row = $row;
        let kind: String = row.try_get(2)?;
        SdkToken {
            id: row.try_get(0)?,
            name: row.try_get(1)?,
            kind: SdkTokenKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt { what: "SDK token kind".into(), reason: kind.clone() })?,
            project: row.try_get(3)?,
            environment: row.try_get(4)?,
            hash: row.try_get(5)?,
            created_at: Timestamp(row.try_get(6)?),
            created_by: row.try_get(7)?,
            revoked_at: row.try_get::<Option<i64>, _>(8)?.map(Timestamp),
        }
    }};
}

macro_rules! bump_revision {
    ($tx:expr) => {
        sqlx::query("UPDATE flag_revision SET revision = revision + 1 WHERE id = 1").execute(&mut *$tx).await?
    };
}

/// Checks `flag`'s references against the store (inside the write transaction), with the
/// segments and flags of the same request counted as existing. Evaluates to the errors.
macro_rules! check_references {
    ($tx:expr, $flag:expr, $pending_segments:expr, $pending_flags:expr) => {{
        let flag: &Flag = $flag;
        let pending_segments: &BTreeSet<String> = $pending_segments;
        let pending_flags: &BTreeMap<String, Flag> = $pending_flags;
        let mut errors: Vec<String> = Vec::new();
        let envs: BTreeSet<String> = sqlx::query("SELECT name FROM environments")
            .fetch_all(&mut *$tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<std::result::Result<_, _>>()?;
        for env in flag.spec.environments.keys() {
            if !envs.contains(env) {
                errors.push(format!("spec.environments.{env}: environment {env:?} does not exist"));
            }
        }
        for seg in flag.segment_names() {
            if !pending_segments.contains(seg)
                && sqlx::query("SELECT 1 FROM flag_segments WHERE name = $1").bind(seg).fetch_optional(&mut *$tx).await?.is_none()
            {
                errors.push(format!("segment {seg:?} does not exist"));
            }
        }
        for dep in &flag.spec.dependencies {
            let parent = match pending_flags.get(&dep.feature) {
                Some(p) => Some((p.clone(), false)),
                None => match sqlx::query("SELECT doc, archived_at FROM flags WHERE name = $1")
                    .bind(&dep.feature)
                    .fetch_optional(&mut *$tx)
                    .await?
                {
                    Some(row) => Some((
                        decode_flag(&dep.feature, &row.try_get::<String, _>(0)?)?,
                        row.try_get::<Option<i64>, _>(1)?.is_some(),
                    )),
                    None => None,
                },
            };
            match parent {
                None => errors.push(format!("spec.dependencies: parent flag {:?} does not exist", dep.feature)),
                Some((_, true)) => errors.push(format!("spec.dependencies: parent flag {:?} is archived", dep.feature)),
                Some((p, false)) if !p.spec.dependencies.is_empty() => errors.push(format!(
                    "spec.dependencies: {:?} depends on other flags itself; dependencies are one level deep",
                    dep.feature
                )),
                Some((p, false)) => {
                    for v in &dep.variants {
                        let known = p.spec.environments.values().flat_map(|e| {
                            e.variants.iter().chain(e.strategies.iter().flat_map(|s| &s.variants))
                        });
                        if !known.clone().any(|k| &k.name == v) {
                            errors.push(format!("spec.dependencies: parent flag {:?} has no variant {v:?}", dep.feature));
                        }
                    }
                }
            }
        }
        if !flag.spec.dependencies.is_empty() {
            let pattern = format!("%\"feature\":\"{}\"%", flag.name());
            for row in sqlx::query("SELECT name, doc FROM flags WHERE doc LIKE $1 AND name <> $2")
                .bind(&pattern)
                .bind(flag.name())
                .fetch_all(&mut *$tx)
                .await?
            {
                let child: String = row.try_get(0)?;
                let doc = decode_flag(&child, &row.try_get::<String, _>(1)?)?;
                if doc.spec.dependencies.iter().any(|d| d.feature == flag.name()) {
                    errors.push(format!(
                        "spec.dependencies: flag {child:?} depends on this one, so it cannot depend on others (dependencies are one level deep)"
                    ));
                }
            }
        }
        errors
    }};
}

/// Writes `flag` (created or replaced) inside `$tx` with its exposure rows and event, and
/// evaluates to the change. `$old` is the stored flag, if any.
macro_rules! write_flag {
    ($tx:expr, $ctx:expr, $flag:expr, $old:expr) => {{
        let flag: &Flag = $flag;
        let old: Option<&StoredFlag> = $old;
        let ctx: &WriteContext = $ctx;
        let doc = flag_doc(flag);
        let envs: BTreeMap<String, Exposure> =
            flag.spec.environments.keys().map(|e| (e.clone(), flag.exposure(e))).collect();
        let change = match old {
            Some(o) if flag_doc(&o.flag) == doc => {
                FlagChange { kind: "flag", name: flag.name().to_owned(), action: "unchanged", fields: vec![] }
            }
            _ => {
                match old {
                    None => {
                        sqlx::query(
                            "INSERT INTO flags (name, project, doc, created_at, created_by, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $4, $5)",
                        )
                        .bind(flag.name())
                        .bind(&flag.spec.project)
                        .bind(doc.to_string())
                        .bind(ctx.now)
                        .bind(&ctx.actor)
                        .execute(&mut *$tx)
                        .await?;
                    }
                    Some(_) => {
                        sqlx::query("UPDATE flags SET project = $2, doc = $3, updated_at = $4, updated_by = $5 WHERE name = $1")
                            .bind(flag.name())
                            .bind(&flag.spec.project)
                            .bind(doc.to_string())
                            .bind(ctx.now)
                            .bind(&ctx.actor)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
                // Exposure per environment, with `since` kept while it does not change.
                let mut moved = Vec::new();
                for (env, e) in &envs {
                    let before = old.and_then(|o| o.exposure.get(env)).map(|(x, _)| *x);
                    let enabled_before = old.and_then(|o| o.flag.spec.environments.get(env)).map(|c| c.enabled);
                    let enabled = flag.spec.environments[env].enabled;
                    if before != Some(*e) {
                        sqlx::query(
                            "INSERT INTO flag_exposure (flag, environment, exposure, since) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (flag, environment) DO UPDATE SET exposure = excluded.exposure, since = excluded.since",
                        )
                        .bind(flag.name())
                        .bind(env)
                        .bind(exposure_str(*e))
                        .bind(ctx.now)
                        .execute(&mut *$tx)
                        .await?;
                    }
                    let config_changed = old
                        .map(|o| o.flag.spec.environments.get(env) != flag.spec.environments.get(env))
                        .unwrap_or(true);
                    if config_changed {
                        moved.push(json!({"environment": env, "enabled": enabled, "enabledBefore": enabled_before,
                            "exposure": e, "exposureBefore": before}));
                    }
                }
                if let Some(o) = old {
                    for env in o.exposure.keys().filter(|e| !envs.contains_key(*e)) {
                        sqlx::query("DELETE FROM flag_exposure WHERE flag = $1 AND environment = $2")
                            .bind(flag.name())
                            .bind(env)
                            .execute(&mut *$tx)
                            .await?;
                        moved.push(json!({"environment": env, "enabled": false, "exposure": "off", "removed": true}));
                    }
                }
                let fields = old.map(|o| diff(&flag_doc(&o.flag), &doc)).unwrap_or_default();
                let (kind, action) =
                    if old.is_some() { (kinds::FLAG_UPDATED, "update") } else { (kinds::FLAG_CREATED, "create") };
                let event = NewEvent::new(
                    kind,
                    format!("flag/{}", flag.name()),
                    json!({"project": flag.spec.project, "type": flag.spec.flag_type, "owner": flag.spec.owner,
                           "environments": moved, "changes": fields}),
                );
                insert_event!($tx, ctx, &event);
                bump_revision!($tx);
                FlagChange { kind: "flag", name: flag.name().to_owned(), action, fields }
            }
        };
        change
    }};
}

/// Loads one stored flag (with exposure) inside a transaction or from a pool.
macro_rules! load_flag {
    ($conn:expr, $name:expr) => {{
        let name: &str = $name;
        let sql = format!("SELECT {FLAG_COLUMNS} FROM flags WHERE name = $1");
        match sqlx::query(&sql).bind(name).fetch_optional(&mut *$conn).await? {
            None => None,
            Some(row) => {
                let mut f = flag_row!(&row);
                for r in sqlx::query("SELECT environment, exposure, since FROM flag_exposure WHERE flag = $1")
                    .bind(name)
                    .fetch_all(&mut *$conn)
                    .await?
                {
                    f.exposure
                        .insert(r.try_get(0)?, (parse_exposure(&r.try_get::<String, _>(1)?), Timestamp(r.try_get(2)?)));
                }
                Some(f)
            }
        }
    }};
}

/// Writes `$segments` and `$flags` inside an open write transaction `$tx`, checking every
/// reference (segments and flags of the same request count as existing; environments are
/// read in the transaction, so ones created by the same apply count too). Evaluates to the
/// changes; returns an error from the enclosing function on a bad reference, an archived
/// flag, or (with `$create_only`) a flag that exists. The caller commits.
macro_rules! flag_writes {
    ($tx:ident, $ctx:expr, $segments:expr, $flags:expr, $create_only:expr) => {{
        let pending_segments: BTreeSet<String> = $segments.iter().map(|s| s.name().to_owned()).collect();
        let pending_flags: BTreeMap<String, Flag> = $flags.iter().map(|f| (f.name().to_owned(), f.clone())).collect();
        if pending_segments.len() != $segments.len() || pending_flags.len() != $flags.len() {
            return Err(StoreError::Invalid("a flag or segment is listed twice in one request".into()));
        }
            let mut changes = Vec::new();
            for s in $segments {
                let doc = serde_json::to_value(s).expect("a segment serialises");
                let old = sqlx::query("SELECT doc FROM flag_segments WHERE name = $1")
                    .bind(s.name())
                    .fetch_optional(&mut *$tx)
                    .await?
                    .map(|r| r.try_get::<String, _>(0))
                    .transpose()?;
                let old = old.map(|d| decode_segment(s.name(), &d)).transpose()?;
                let old_doc = old.as_ref().map(|o| serde_json::to_value(o).expect("a segment serialises"));
                if old_doc.as_ref() == Some(&doc) {
                    changes.push(FlagChange {
                        kind: "segment",
                        name: s.name().into(),
                        action: "unchanged",
                        fields: vec![],
                    });
                    continue;
                }
                let (kind, action) = match &old_doc {
                    None => {
                        sqlx::query(
                            "INSERT INTO flag_segments (name, doc, created_at, updated_at) VALUES ($1, $2, $3, $3)",
                        )
                        .bind(s.name())
                        .bind(doc.to_string())
                        .bind($ctx.now)
                        .execute(&mut *$tx)
                        .await?;
                        (kinds::SEGMENT_CREATED, "create")
                    }
                    Some(_) => {
                        sqlx::query("UPDATE flag_segments SET doc = $2, updated_at = $3 WHERE name = $1")
                            .bind(s.name())
                            .bind(doc.to_string())
                            .bind($ctx.now)
                            .execute(&mut *$tx)
                            .await?;
                        (kinds::SEGMENT_UPDATED, "update")
                    }
                };
                let fields = old_doc.map(|o| diff(&o, &doc)).unwrap_or_default();
                let event = NewEvent::new(kind, format!("segment/{}", s.name()), json!({"changes": fields}));
                insert_event!($tx, $ctx, &event);
                bump_revision!($tx);
                changes.push(FlagChange { kind: "segment", name: s.name().into(), action, fields });
            }
            let mut problems = Vec::new();
            for f in $flags {
                let errors = check_references!($tx, f, &pending_segments, &pending_flags);
                if !errors.is_empty() {
                    problems.push(format!("flag {:?}: {}", f.name(), errors.join("; ")));
                    continue;
                }
                let old = load_flag!($tx, f.name());
                if $create_only && old.is_some() {
                                        return Err(StoreError::Conflict(format!(
                        "flag {:?} already exists; PUT /api/v1/flags/{} replaces it",
                        f.name(),
                        f.name()
                    )));
                }
                if let Some(o) = &old
                    && o.archived_at.is_some()
                {
                    problems.push(format!("flag {:?} is archived; revive it before changing it", f.name()));
                    continue;
                }
                changes.push(write_flag!($tx, $ctx, f, old.as_ref()));
            }
            if !problems.is_empty() {
                                return Err(StoreError::Invalid(problems.join("; ")));
            }
        changes
    }};
}

impl Store {
    /// Creates or replaces segments and flags in one transaction, checking every reference.
    /// A dry run does the same and rolls back. Archived flags are refused (revive them first).
    pub async fn apply_flags(
        &self,
        segments: &[Segment],
        flags: &[Flag],
        ctx: &WriteContext,
        dry_run: bool,
    ) -> Result<Vec<FlagChange>> {
        self.write_flags(segments, flags, ctx, dry_run, false).await
    }

    /// Creates one flag; a flag of that name already stored is a conflict. The check is made
    /// inside the write transaction, so of concurrent creates of one name exactly one wins.
    pub async fn create_flag(&self, flag: &Flag, ctx: &WriteContext) -> Result<FlagChange> {
        let mut changes = self.write_flags(&[], std::slice::from_ref(flag), ctx, false, true).await?;
        Ok(changes.pop().expect("one flag written, one change"))
    }

    async fn write_flags(
        &self,
        segments: &[Segment],
        flags: &[Flag],
        ctx: &WriteContext,
        dry_run: bool,
        create_only: bool,
    ) -> Result<Vec<FlagChange>> {
        with_write_tx!(self, |tx| {
            let changes = flag_writes!(tx, ctx, segments, flags, create_only);
            if dry_run {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            Ok(changes)
        })
    }

    /// One apply of catalog resources, segments and flags in one transaction: the catalog
    /// first (flags may name environments it creates), then segments and flags. Any refusal
    /// — a dangling reference, a forbidden change, a bad flag — writes nothing of any of them.
    pub async fn apply_all(
        &self,
        request: &pave_model::apply::Request,
        segments: &[Segment],
        flags: &[Flag],
        ctx: &WriteContext,
        dry_run: bool,
        authorize: &(dyn Fn(&pave_model::Plan, &pave_model::Snapshot) -> std::result::Result<(), String> + Sync),
    ) -> Result<(pave_model::Plan, Vec<i64>, Vec<FlagChange>)> {
        with_write_tx!(self, |tx| {
            let (plan, ids) = crate::catalog::catalog_writes!(tx, request, ctx, authorize);
            let changes = flag_writes!(tx, ctx, segments, flags, false);
            if dry_run {
                tx.rollback().await?;
                return Ok((plan, Vec::new(), changes));
            }
            tx.commit().await?;
            Ok((plan, ids, changes))
        })
    }

    /// Changes one stored flag with `change` inside a write transaction (so two concurrent
    /// toggles do not lose one another), re-validating the result.
    pub async fn modify_flag<F>(&self, name: &str, ctx: &WriteContext, change: F) -> Result<(StoredFlag, FlagChange)>
    where
        F: FnOnce(&mut Flag) -> std::result::Result<(), String> + Send,
    {
        with_write_tx!(self, |tx| {
            let Some(old) = load_flag!(tx, name) else {
                return Err(StoreError::NotFound(format!("flag {name:?} does not exist")));
            };
            if old.archived_at.is_some() {
                return Err(StoreError::Conflict(format!("flag {name:?} is archived; revive it before changing it")));
            }
            let mut flag = old.flag.clone();
            change(&mut flag).map_err(StoreError::Invalid)?;
            let flag = match Flag::from_value(flag.to_value()) {
                Ok(f) => f,
                Err(errs) => {
                    return Err(StoreError::Invalid(
                        errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                    ));
                }
            };
            let errors = check_references!(tx, &flag, &BTreeSet::new(), &BTreeMap::new());
            if !errors.is_empty() {
                return Err(StoreError::Invalid(errors.join("; ")));
            }
            let c = write_flag!(tx, ctx, &flag, Some(&old));
            let stored = load_flag!(tx, name).expect("just written");
            tx.commit().await?;
            Ok((stored, c))
        })
    }

    /// Archives (stops serving) or revives a flag. Archiving a flag others depend on is refused.
    pub async fn set_flag_archived(&self, name: &str, archived: bool, ctx: &WriteContext) -> Result<StoredFlag> {
        with_write_tx!(self, |tx| {
            let Some(old) = load_flag!(tx, name) else {
                return Err(StoreError::NotFound(format!("flag {name:?} does not exist")));
            };
            if old.archived_at.is_some() == archived {
                let state = if archived { "already archived" } else { "not archived" };
                return Err(StoreError::Conflict(format!("flag {name:?} is {state}")));
            }
            if archived {
                let pattern = format!("%\"feature\":\"{name}\"%");
                for row in sqlx::query("SELECT name, doc FROM flags WHERE doc LIKE $1 AND archived_at IS NULL")
                    .bind(&pattern)
                    .fetch_all(&mut *tx)
                    .await?
                {
                    let child: String = row.try_get(0)?;
                    if decode_flag(&child, &row.try_get::<String, _>(1)?)?
                        .spec
                        .dependencies
                        .iter()
                        .any(|d| d.feature == name)
                    {
                        return Err(StoreError::Conflict(format!(
                            "flag {child:?} depends on {name:?}; remove that dependency before archiving"
                        )));
                    }
                }
            }
            sqlx::query("UPDATE flags SET archived_at = $2, updated_at = $3, updated_by = $4 WHERE name = $1")
                .bind(name)
                .bind(archived.then_some(ctx.now))
                .bind(ctx.now)
                .bind(&ctx.actor)
                .execute(&mut *tx)
                .await?;
            let kind = if archived { kinds::FLAG_ARCHIVED } else { kinds::FLAG_REVIVED };
            let event = NewEvent::new(
                kind,
                format!("flag/{name}"),
                json!({"project": old.flag.spec.project, "owner": old.flag.spec.owner}),
            );
            insert_event!(tx, ctx, &event);
            bump_revision!(tx);
            let stored = load_flag!(tx, name).expect("just written");
            tx.commit().await?;
            Ok(stored)
        })
    }

    pub async fn flag(&self, name: &str) -> Result<Option<StoredFlag>> {
        with_read_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            Ok(load_flag!(conn, name))
        })
    }

    /// Stored flags (archived ones only when asked), by name, optionally of one project.
    pub async fn flags(&self, project: Option<&str>, archived: bool) -> Result<Vec<StoredFlag>> {
        let sql = format!(
            "SELECT {FLAG_COLUMNS} FROM flags WHERE ($1 = '' OR project = $1) AND ({} archived_at IS NULL) ORDER BY name",
            if archived { "TRUE OR" } else { "" }
        );
        with_read_pool!(self, |pool| {
            let mut flags = BTreeMap::new();
            for row in sqlx::query(&sql).bind(project.unwrap_or("")).fetch_all(pool).await? {
                let f = flag_row!(&row);
                flags.insert(f.flag.name().to_owned(), f);
            }
            for r in sqlx::query("SELECT flag, environment, exposure, since FROM flag_exposure").fetch_all(pool).await?
            {
                if let Some(f) = flags.get_mut(&r.try_get::<String, _>(0)?) {
                    f.exposure
                        .insert(r.try_get(1)?, (parse_exposure(&r.try_get::<String, _>(2)?), Timestamp(r.try_get(3)?)));
                }
            }
            Ok(flags.into_values().collect())
        })
    }

    pub async fn segments(&self) -> Result<Vec<(u32, Segment)>> {
        with_read_pool!(self, |pool| {
            sqlx::query("SELECT id, name, doc FROM flag_segments ORDER BY name")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    let name: String = r.try_get(1)?;
                    Ok((
                        u32::try_from(r.try_get::<i64, _>(0)?).unwrap_or(u32::MAX),
                        decode_segment(&name, &r.try_get::<String, _>(2)?)?,
                    ))
                })
                .collect()
        })
    }

    /// Flag changes (`flag.created|updated|archived|revived` events) made in `[from, to)`,
    /// oldest first, at most `limit`.
    pub async fn flag_changes(&self, from: Timestamp, to: Timestamp, limit: i64) -> Result<Vec<FlagChangeFact>> {
        with_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, kind, subject, time, actor, request_id, data FROM events \
                 WHERE kind IN ($4, $5, $6, $7) AND time >= $1 AND time < $2 ORDER BY id LIMIT $3",
            )
            .bind(from.0)
            .bind(to.0)
            .bind(limit.max(0))
            .bind(kinds::FLAG_CHANGES[0])
            .bind(kinds::FLAG_CHANGES[1])
            .bind(kinds::FLAG_CHANGES[2])
            .bind(kinds::FLAG_CHANGES[3])
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.extend(FlagChangeFact::from_event(&event_from_row!(row)));
            }
            Ok(out)
        })
    }

    /// The revision of what SDKs see; it changes with every flag, segment or token write.
    pub async fn flag_revision(&self) -> Result<i64> {
        with_read_pool!(self, |pool| {
            Ok(sqlx::query("SELECT revision FROM flag_revision WHERE id = 1").fetch_one(pool).await?.try_get(0)?)
        })
    }

    /// Everything the SDK endpoints serve. The revision is read first: if a write lands
    /// while the rest is read, the next poll sees a newer revision and reads again.
    pub async fn flag_snapshot(&self) -> Result<FlagSnapshot> {
        let revision = self.flag_revision().await?;
        let flags = self.flags(None, false).await?.into_iter().map(|f| f.flag).collect();
        let segments = self.segments().await?;
        let tokens = self.sdk_tokens().await?.into_iter().filter(|t| t.revoked_at.is_none()).collect();
        Ok(FlagSnapshot { revision, flags, segments, tokens })
    }

    /// Stores a new SDK token (the caller made the secret and hashed it).
    pub async fn create_sdk_token(&self, t: &SdkToken, ctx: &WriteContext) -> Result<SdkToken> {
        with_write_tx!(self, |tx| {
            if t.environment != "*"
                && sqlx::query("SELECT 1 FROM environments WHERE name = $1")
                    .bind(&t.environment)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_none()
            {
                return Err(StoreError::Invalid(format!("environment {:?} does not exist", t.environment)));
            }
            if sqlx::query("SELECT 1 FROM flag_tokens WHERE name = $1 AND revoked_at IS NULL")
                .bind(&t.name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
            {
                return Err(StoreError::Conflict(format!("an SDK token named {:?} already exists", t.name)));
            }
            sqlx::query(&format!(
                "INSERT INTO flag_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)"
            ))
            .bind(&t.id)
            .bind(&t.name)
            .bind(t.kind.as_str())
            .bind(&t.project)
            .bind(&t.environment)
            .bind(&t.hash)
            .bind(ctx.now)
            .bind(&ctx.actor)
            .execute(&mut *tx)
            .await?;
            let event = NewEvent::new(
                kinds::SDK_TOKEN_CREATED,
                format!("sdk-token/{}", t.id),
                json!({"name": t.name, "kind": t.kind, "project": t.project, "environment": t.environment}),
            );
            insert_event!(tx, ctx, &event);
            bump_revision!(tx);
            tx.commit().await?;
            Ok(SdkToken {
                created_at: Timestamp(ctx.now),
                created_by: ctx.actor.clone(),
                revoked_at: None,
                ..t.clone()
            })
        })
    }

    pub async fn sdk_tokens(&self) -> Result<Vec<SdkToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM flag_tokens ORDER BY created_at, id");
        with_read_pool!(self, |pool| {
            let mut out = Vec::new();
            for row in sqlx::query(&sql).fetch_all(pool).await? {
                out.push(token_row!(&row));
            }
            Ok(out)
        })
    }

    pub async fn revoke_sdk_token(&self, id: &str, ctx: &WriteContext) -> Result<SdkToken> {
        let select = format!("SELECT {TOKEN_COLUMNS} FROM flag_tokens WHERE id = $1");
        with_write_tx!(self, |tx| {
            let Some(row) = sqlx::query(&select).bind(id).fetch_optional(&mut *tx).await? else {
                return Err(StoreError::NotFound(format!("SDK token {id:?} does not exist")));
            };
            let mut t = token_row!(&row);
            if t.revoked_at.is_some() {
                return Err(StoreError::Conflict(format!("SDK token {id:?} is already revoked")));
            }
            sqlx::query("UPDATE flag_tokens SET revoked_at = $1 WHERE id = $2")
                .bind(ctx.now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let event = NewEvent::new(kinds::SDK_TOKEN_REVOKED, format!("sdk-token/{id}"), json!({"name": t.name}));
            insert_event!(tx, ctx, &event);
            bump_revision!(tx);
            tx.commit().await?;
            t.revoked_at = Some(Timestamp(ctx.now));
            Ok(t)
        })
    }

    /// Adds an SDK's evaluation counts. Counters, not events: SDKs report every few seconds.
    pub async fn record_flag_usage(&self, environment: &str, counts: &[UsageCount], now: i64) -> Result<()> {
        const UPSERT: &str = "INSERT INTO flag_usage (flag, environment, variant, yes, no, first_seen, last_seen) \
            VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (flag, environment, variant) DO UPDATE SET \
            yes = flag_usage.yes + excluded.yes, no = flag_usage.no + excluded.no, last_seen = excluded.last_seen";
        with_write_tx!(self, |tx| {
            for c in counts {
                sqlx::query(UPSERT)
                    .bind(&c.flag)
                    .bind(environment)
                    .bind("")
                    .bind(c.yes)
                    .bind(c.no)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                for (v, n) in &c.variants {
                    sqlx::query(UPSERT)
                        .bind(&c.flag)
                        .bind(environment)
                        .bind(v)
                        .bind(*n)
                        .bind(0i64)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Usage per flag and environment (all flags when `flag` is `None`).
    pub async fn flag_usage(&self, flag: Option<&str>) -> Result<BTreeMap<String, Vec<FlagUsage>>> {
        with_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT flag, environment, variant, yes, no, first_seen, last_seen FROM flag_usage \
                 WHERE ($1 = '' OR flag = $1) ORDER BY flag, environment, variant",
            )
            .bind(flag.unwrap_or(""))
            .fetch_all(pool)
            .await?;
            let mut out: BTreeMap<String, Vec<FlagUsage>> = BTreeMap::new();
            for r in rows {
                let (name, env, variant): (String, String, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                let list = out.entry(name).or_default();
                if list.last().is_none_or(|u| u.environment != env) {
                    list.push(FlagUsage {
                        environment: env,
                        yes: 0,
                        no: 0,
                        variants: BTreeMap::new(),
                        first_seen: Timestamp(r.try_get(5)?),
                        last_seen: Timestamp(r.try_get(6)?),
                    });
                }
                let u = list.last_mut().expect("pushed above");
                if variant.is_empty() {
                    u.yes = r.try_get(3)?;
                    u.no = r.try_get(4)?;
                } else {
                    u.variants.insert(variant, r.try_get(3)?);
                }
                u.first_seen = u.first_seen.min(Timestamp(r.try_get(5)?));
                u.last_seen = u.last_seen.max(Timestamp(r.try_get(6)?));
            }
            Ok(out)
        })
    }

    /// Records that an SDK instance registered or reported.
    pub async fn register_sdk_client(&self, c: &SdkClient) -> Result<()> {
        with_write_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO flag_clients (app_name, instance_id, environment, sdk, started_at, interval_ms, first_seen, last_seen) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (app_name, instance_id, environment) DO UPDATE SET \
                 sdk = CASE WHEN excluded.sdk = '' THEN flag_clients.sdk ELSE excluded.sdk END, \
                 started_at = COALESCE(excluded.started_at, flag_clients.started_at), \
                 interval_ms = COALESCE(excluded.interval_ms, flag_clients.interval_ms), last_seen = excluded.last_seen",
            )
            .bind(&c.app_name)
            .bind(&c.instance_id)
            .bind(&c.environment)
            .bind(&c.sdk)
            .bind(c.started_at.map(|t| t.0))
            .bind(c.interval_ms)
            .bind(c.last_seen.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn sdk_clients(&self) -> Result<Vec<SdkClient>> {
        with_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT app_name, instance_id, environment, sdk, started_at, interval_ms, first_seen, last_seen \
                 FROM flag_clients ORDER BY app_name, instance_id, environment",
            )
            .fetch_all(pool)
            .await?;
            let mut out = Vec::new();
            for r in rows {
                out.push(SdkClient {
                    app_name: r.try_get(0)?,
                    instance_id: r.try_get(1)?,
                    environment: r.try_get(2)?,
                    sdk: r.try_get(3)?,
                    started_at: r.try_get::<Option<i64>, _>(4)?.map(Timestamp),
                    interval_ms: r.try_get(5)?,
                    first_seen: Timestamp(r.try_get(6)?),
                    last_seen: Timestamp(r.try_get(7)?),
                });
            }
            Ok(out)
        })
    }
}
