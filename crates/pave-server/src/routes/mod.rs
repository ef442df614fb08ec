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
use pave_store::WriteContext;

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
