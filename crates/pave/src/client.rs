//! The CLI's HTTP client: adds the token, and turns problem documents into readable errors.

use anyhow::{Context, Result, anyhow};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::ClientArgs;

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(args: &ClientArgs) -> Result<Client> {
        crate::output::use_format(args.output);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .user_agent(concat!("pave-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client { http, base: args.url.trim_end_matches('/').to_owned(), token: args.token.clone() })
    }

    /// Sends a request; returns the JSON body of a success (or `Null` for 204).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(body);
        }
        self.send(method, path, req).await
    }

    /// POSTs raw bytes (an artifact's tar stream).
    pub async fn post_bytes(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Result<Value> {
        self.send_bytes(Method::POST, path, content_type, bytes).await
    }

    /// Sends raw bytes as the body (an artifact, a secret's value).
    pub async fn send_bytes(&self, method: Method, path: &str, content_type: &str, bytes: Vec<u8>) -> Result<Value> {
        let req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
        self.send(method, path, req).await
    }

    async fn send(&self, method: Method, path: &str, mut req: reqwest::RequestBuilder) -> Result<Value> {
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.with_context(|| format!("cannot reach the Pave server at {}", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the server's answer")?;
        if status.is_success() {
            if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("the server's answer to {method} {path} is not JSON"));
        }
        Err(problem_error(status, &bytes, self.token.is_none()))
    }

    /// GETs a text body and hands it over chunk by chunk as it arrives (`pave logs --follow`).
    pub async fn stream_text(&self, path: &str, mut each: impl FnMut(&[u8])) -> Result<()> {
        let mut req = reqwest::Client::builder()
            .user_agent(concat!("pave-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?
            .get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let mut resp = req.send().await.with_context(|| format!("cannot reach the Pave server at {}", self.base))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            return Err(problem_error(status, &bytes, self.token.is_none()));
        }
        while let Some(chunk) = resp.chunk().await.context("reading the server's answer")? {
            each(&chunk);
        }
        Ok(())
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }
}

/// Reads a server's answer as its API type (`pave-api`); `what` names it in the error.
pub fn read<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> Result<T> {
    T::deserialize(v).with_context(|| format!("the server's answer for {what} is not what this CLI understands"))
}

/// Formats a problem document: its detail, then each invalid field on its own line.
fn problem_error(status: StatusCode, body: &[u8], no_token: bool) -> anyhow::Error {
    let Ok(problem) = serde_json::from_slice::<pave_api::ProblemDocument>(body) else {
        return anyhow!("server answered {status}: {}", crate::output::clean(String::from_utf8_lossy(body).trim()));
    };
    let title = if problem.title.is_empty() { "request failed" } else { problem.title.as_str() };
    // With field errors, list them one per line instead of the run-on detail.
    let mut msg = if problem.errors.is_empty() {
        format!("{title} ({}): {}", status.as_u16(), problem.detail)
    } else {
        format!("{title} ({}):", status.as_u16())
    };
    for e in &problem.errors {
        let doc = e.document.map(|d| format!("document {d} ")).unwrap_or_default();
        let res = e.resource.as_ref().map(|r| format!("{r} ")).unwrap_or_default();
        msg.push_str(&format!("\n  {doc}{res}{}: {}", e.field, e.reason));
    }
    if status == StatusCode::UNAUTHORIZED && no_token {
        msg.push_str("\n  hint: set PAVE_TOKEN or pass --token");
    }
    // The detail quotes what the request sent (names, descriptions): never raw to a terminal.
    anyhow!(crate::output::clean(&msg).into_owned())
}
