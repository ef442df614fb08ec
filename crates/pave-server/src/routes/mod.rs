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
            now: crate::now_millis(),
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
