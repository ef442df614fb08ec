//! Releases: immutable versions of a service, each naming its artifact by digest.

use pave_model::NewEvent;
use pave_model::Timestamp;
use pave_model::event::kinds;
use pave_model::policy::ReleaseScans;
use pave_model::release::Release;
use serde_json::json;
use sqlx::Row;

use crate::events::insert_event;
use crate::{Result, Store, StoreError, WriteContext, with_read_pool, with_write_tx};

const COLUMNS: &str = "service, version, digest, commit_sha, files, bytes, created_at, created_by";

trait ReleaseRow {
    fn release(&self) -> Result<Release>;
}

macro_rules! impl_release_row {
    ($row:ty) => {
        impl ReleaseRow for $row {
            fn release(&self) -> Result<Release> {
                Ok(Release {
                    service: self.try_get(0)?,
                    version: self.try_get(1)?,
                    digest: self.try_get(2)?,
                    commit: self.try_get(3)?,
                    files: u64::try_from(self.try_get::<i64, _>(4)?).unwrap_or(0),
                    bytes: u64::try_from(self.try_get::<i64, _>(5)?).unwrap_or(0),
                    created_at: Timestamp(self.try_get(6)?),
                    created_by: self.try_get(7)?,
                })
            }
        }
    };
}
impl_release_row!(sqlx::sqlite::SqliteRow);
impl_release_row!(sqlx::postgres::PgRow);

impl Store {
    /// Records a release. The same version with the same artifact and commit again is a
    /// no-op (`false`); with anything else it is refused: releases are immutable.
    pub async fn create_release(&self, r: &Release, ctx: &WriteContext) -> Result<(Release, bool)> {
        let select = format!("SELECT {COLUMNS} FROM releases WHERE service = $1 AND version = $2");
        with_write_tx!(self, |tx| {
            if sqlx::query("SELECT 1 FROM services WHERE name = $1")
                .bind(&r.service)
                .fetch_optional(&mut *tx)
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound(format!("service {:?} does not exist", r.service)));
            }
            if let Some(row) = sqlx::query(&select).bind(&r.service).bind(&r.version).fetch_optional(&mut *tx).await? {
                let existing = row.release()?;
                tx.rollback().await?;
                if existing.digest == r.digest && existing.commit == r.commit {
                    return Ok((existing, false));
                }
                return Err(StoreError::Conflict(format!(
                    "release {} {} already exists with artifact {}{}; releases are immutable, so publish a new version",
                    r.service,
                    r.version,
                    existing.digest,
                    existing.commit.as_deref().map(|c| format!(" from commit {c}")).unwrap_or_default()
                )));
            }
            sqlx::query(&format!("INSERT INTO releases ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                .bind(&r.service)
                .bind(&r.version)
                .bind(&r.digest)
                .bind(r.commit.as_deref())
                .bind(i64::try_from(r.files).unwrap_or(i64::MAX))
                .bind(i64::try_from(r.bytes).unwrap_or(i64::MAX))
                .bind(ctx.now)
                .bind(&ctx.actor)
                .execute(&mut *tx)
                .await?;
            let stored = Release { created_at: Timestamp(ctx.now), created_by: ctx.actor.clone(), ..r.clone() };
            let event = NewEvent::new(
                kinds::RELEASE_CREATED,
                format!("service/{}", r.service),
                json!({"version": r.version, "digest": r.digest, "commit": r.commit, "files": r.files, "bytes": r.bytes}),
            );
            insert_event!(tx, ctx, &event);
            tx.commit().await?;
            Ok((stored, true))
        })
    }

    /// A service's releases, newest first.
    pub async fn releases(&self, service: &str) -> Result<Vec<Release>> {
        let sql = format!("SELECT {COLUMNS} FROM releases WHERE service = $1 ORDER BY created_at DESC, version DESC");
        with_read_pool!(self, |pool| {
            sqlx::query(&sql).bind(service).fetch_all(pool).await?.iter().map(|r| r.release()).collect()
        })
    }

    /// Whether any release (of any service) names the artifact `digest`.
    pub async fn artifact_in_use(&self, digest: &str) -> Result<bool> {
        with_read_pool!(self, |pool| {
            Ok(sqlx::query("SELECT 1 FROM releases WHERE digest = $1 LIMIT 1")
                .bind(digest)
                .fetch_optional(pool)
                .await?
                .is_some())
        })
    }

    pub async fn release(&self, service: &str, version: &str) -> Result<Option<Release>> {
        let sql = format!("SELECT {COLUMNS} FROM releases WHERE service = $1 AND version = $2");
        with_read_pool!(self, |pool| {
            sqlx::query(&sql).bind(service).bind(version).fetch_optional(pool).await?.map(|r| r.release()).transpose()
        })
    }

    /// Attaches scan results to a release, replacing earlier ones of the same kinds (a later
    /// audit against a newer advisory database supersedes an older one). `sbom_document` is
    /// the SBOM itself, kept to be served back. Appends `release.scanned` with the summary.
    pub async fn attach_scans(
        &self,
        service: &str,
        version: &str,
        scans: &ReleaseScans,
        sbom_document: Option<&str>,
        ctx: &WriteContext,
    ) -> Result<ReleaseScans> {
        let encode = |v: serde_json::Result<String>| {
            v.map_err(|e| StoreError::Corrupt { what: "scan summary".into(), reason: e.to_string() })
        };
        let mut rows: Vec<(&str, String, Option<&str>)> = Vec::new();
        if let Some(s) = &scans.secrets {
            rows.push(("secrets", encode(serde_json::to_string(s))?, None));
        }
        if let Some(d) = &scans.deps {
            rows.push(("deps", encode(serde_json::to_string(d))?, None));
        }
        if let Some(b) = &scans.sbom {
            rows.push(("sbom", encode(serde_json::to_string(b))?, sbom_document));
        }
        if rows.is_empty() {
            return Err(StoreError::Invalid(
                "nothing to attach: give a secret scan, a dependency audit or an SBOM".into(),
            ));
        }
        with_write_tx!(self, |tx| {
            if sqlx::query("SELECT 1 FROM releases WHERE service = $1 AND version = $2")
                .bind(service)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?
                .is_none()
            {
                return Err(StoreError::NotFound(format!("service {service:?} has no release {version:?}")));
            }
            for (kind, summary, document) in &rows {
                sqlx::query(
                    "INSERT INTO release_scans (service, version, kind, summary, document, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (service, version, kind) DO UPDATE SET \
                     summary = excluded.summary, document = excluded.document, created_at = excluded.created_at, \
                     created_by = excluded.created_by",
                )
                .bind(service)
                .bind(version)
                .bind(*kind)
                .bind(summary)
                .bind(*document)
                .bind(ctx.now)
                .bind(&ctx.actor)
                .execute(&mut *tx)
                .await?;
            }
            let event = NewEvent::new(
                kinds::RELEASE_SCANNED,
                format!("service/{service}"),
                json!({
                    "version": version,
                    "secrets": scans.secrets.as_ref().map(|s| json!({"findings": s.findings.len(), "source": s.origin.source})),
                    "deps": scans.deps.as_ref().map(|d| json!({"packages": d.packages, "vulnerabilities": d.vulnerabilities.len(), "source": d.origin.source})),
                    "sbom": scans.sbom.as_ref().map(|b| json!({"components": b.components, "digest": b.digest, "source": b.origin.source})),
                }),
            );
            insert_event!(tx, ctx, &event);
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.release_scans(service, version).await
    }

    /// The scan results a release carries.
    pub async fn release_scans(&self, service: &str, version: &str) -> Result<ReleaseScans> {
        let sql = "SELECT kind, summary FROM release_scans WHERE service = $1 AND version = $2";
        let rows: Vec<(String, String)> = with_read_pool!(self, |pool| {
            let rows = sqlx::query(sql).bind(service).bind(version).fetch_all(pool).await?;
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<Vec<_>>>()
        })?;
        let mut scans = ReleaseScans::default();
        for (kind, summary) in rows {
            let corrupt = |e: serde_json::Error| StoreError::Corrupt {
                what: format!("{kind} scan of {service} {version}"),
                reason: e.to_string(),
            };
            match kind.as_str() {
                "secrets" => scans.secrets = Some(serde_json::from_str(&summary).map_err(corrupt)?),
                "deps" => scans.deps = Some(serde_json::from_str(&summary).map_err(corrupt)?),
                "sbom" => scans.sbom = Some(serde_json::from_str(&summary).map_err(corrupt)?),
                _ => {}
            }
        }
        Ok(scans)
    }

    /// The SBOM document attached to a release.
    pub async fn release_sbom(&self, service: &str, version: &str) -> Result<Option<String>> {
        let sql = "SELECT document FROM release_scans WHERE service = $1 AND version = $2 AND kind = 'sbom'";
        with_read_pool!(self, |pool| {
            Ok(sqlx::query(sql)
                .bind(service)
                .bind(version)
                .fetch_optional(pool)
                .await?
                .and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten()))
        })
    }
}
