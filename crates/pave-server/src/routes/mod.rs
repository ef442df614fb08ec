//! HTTP handlers: each parses, calls the store or the domain, and maps the result — no
//! business rules here.

pub mod admin;
pub mod catalog;
pub mod delivery;
pub mod deploy;
pub mod flags;
pub mod health;
pub mod hooks;
pub mod releases;
pub mod sdk;
pub mod secrets;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use pave_model::auth::{Access, ServiceAct, Target};
use pave_model::{Kind, Resource};
use pave_store::WriteContext;

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::request_id::RequestId;

/// The authenticated caller of a handler, with what the store needs to attribute a change.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
}

impl Caller {
    pub fn write_context(&self) -> WriteContext {
        WriteContext {
            actor: self.principal.name.clone(),
            request_id: Some(self.request_id.clone()),
            now: pave_model::clock::now_ms(),
        }
    }
}

impl Caller {
    /// The caller as the ownership rule sees it; the catalog's teams are read only for a
    /// scoped developer token, the one case the rule needs them.
    pub async fn access(&self, state: &AppState) -> Result<Access, ApiError> {
        let p = &self.principal;
        let mut teams = Vec::new();
        if Access::needs_teams(p.role, &p.scope) {
            for r in state.store.list(Kind::Team, &Default::default()).await? {
                if let Resource::Team(t) = r.resource {
                    teams.push(t);
                }
            }
        }
        Ok(Access::resolve(&p.name, p.role, p.scope.clone(), &teams))
    }

    /// Refuses (403, audited as a denial) unless the caller may `act` on `service`, in
    /// `environment` when one is given; a service that does not exist is a 404. An
    /// environment that does not exist is left to the command to refuse.
    pub async fn may(
        &self,
        state: &AppState,
        act: ServiceAct,
        service: &str,
        environment: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(Resource::Service(svc)) = state.store.get(Kind::Service, service).await?.map(|s| s.resource) else {
            return Err(ApiError::not_found(format!("service {service:?} does not exist")));
        };
        let env = match environment {
            Some(e) => match state.store.get(Kind::Environment, e).await?.map(|r| r.resource) {
                Some(Resource::Environment(env)) => Some(env),
                _ => None,
            },
            None => None,
        };
        let target = Target { service, owner: &svc.spec.owner, environment: env.as_ref() };
        pave_model::auth::may(&self.access(state).await?, act, &target).map_err(|d| ApiError::forbidden(d.to_string()))
    }

    /// Refuses (403) a change to the flags `changes` names — each a flag's name with its
    /// owner as stored and as written — unless the caller's teams own them. A flag's owner is
    /// a team, or a service (whose team then owns it); a flag naming neither is anyone's, as
    /// before owners counted. Only scoped developer tokens read anything here.
    pub async fn may_change_flags(
        &self,
        state: &AppState,
        changes: &[(&str, Option<&str>, Option<&str>)],
    ) -> Result<(), ApiError> {
        if !Access::needs_teams(self.principal.role, &self.principal.scope) {
            return Ok(());
        }
        let access = self.access(state).await?;
        let mut refused = Vec::new();
        for (flag, before, after) in changes {
            let mut owners = vec![*before, *after];
            owners.dedup();
            for owner in owners.into_iter().flatten() {
                let team = match state.store.get(Kind::Team, owner).await? {
                    Some(_) => Some(owner.to_owned()),
                    None => match state.store.get(Kind::Service, owner).await?.map(|r| r.resource) {
                        Some(Resource::Service(s)) => Some(s.spec.owner),
                        _ => None,
                    },
                };
                let Some(team) = team else { continue };
                let target = Target { service: flag, owner: &team, environment: None };
                if let Err(d) = pave_model::auth::may(&access, ServiceAct::ChangeFlag, &target) {
                    refused.push(d.to_string());
                }
            }
        }
        if refused.is_empty() { Ok(()) } else { Err(ApiError::forbidden(refused.join("; "))) }
    }

    /// [`Caller::may_change_flags`] for flags as stored, by name (a flag that does not exist
    /// is left to the store to refuse).
    pub async fn may_change_stored_flag(&self, state: &AppState, name: &str) -> Result<(), ApiError> {
        if !Access::needs_teams(self.principal.role, &self.principal.scope) {
            return Ok(());
        }
        let stored = state.store.flag(name).await?;
        let owner = stored.as_ref().and_then(|f| f.flag.spec.owner.as_deref());
        self.may_change_flags(state, &[(name, owner, None)]).await
    }

    /// [`Caller::may_change_flags`] for flags about to be written: each one's stored owner and
    /// its new one.
    pub async fn may_write_flags(&self, state: &AppState, flags: &[pave_model::flags::Flag]) -> Result<(), ApiError> {
        if !Access::needs_teams(self.principal.role, &self.principal.scope) {
            return Ok(());
        }
        let mut stored = Vec::new();
        for f in flags {
            stored.push(state.store.flag(f.name()).await?.and_then(|s| s.flag.spec.owner));
        }
        let changes: Vec<(&str, Option<&str>, Option<&str>)> = flags
            .iter()
            .zip(&stored)
            .map(|(f, before)| (f.name(), before.as_deref(), f.spec.owner.as_deref()))
            .collect();
        self.may_change_flags(state, &changes).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::new(crate::error::Problem::Unauthorized, "not authenticated"))?;
        let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        Ok(Caller { principal, request_id })
    }
}
