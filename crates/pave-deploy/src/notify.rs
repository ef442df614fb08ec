//! Outgoing webhooks: rollout events (started, each step, promoted, paused, failed, rolled
//! back, succeeded, and every analysis verdict) POSTed as JSON to the configured URLs.
//!
//! - **Signed** like GitHub's: `X-Pave-Signature-256: sha256=<hex HMAC-SHA256 of the body>`
//!   under the shared secret, with `X-Pave-Event` (the kind) and `X-Pave-Delivery` (the event
//!   id, the same on every retry, so receivers can drop duplicates).
//! - **Retried** with exponential backoff (0.5 s, doubling, up to [`ATTEMPTS`] tries) on a
//!   connection failure or any answer outside 2xx; each endpoint gets its events in order.
//! - **Sent once per platform**: only the control plane running the delivery engine sends,
//!   reading the event log from where it stood when it took over. Events from before a
//!   restart are not sent again (delivery is at least once within a control plane's life).

use std::time::Duration;

use hmac::{Hmac, Mac};
use hyper::body::Bytes;
use pave_model::Event;
use pave_model::event::kinds;
use sha2::Sha256;

/// Tries per event and endpoint.
pub const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Where rollout events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    /// Signs every delivery; receivers check `X-Pave-Signature-256`.
    pub secret: String,
}

/// Whether an event is one webhooks carry: the rollout's life and the analysis' verdicts
/// (not each measurement, which a dashboard reads from the SSE stream instead).
pub fn carried(kind: &str) -> bool {
    kinds::matches(kinds::DEPLOYMENT_ANY, kind)
        || matches!(
            kind,
            kinds::ANALYSIS_STARTED | kinds::ANALYSIS_SUCCEEDED | kinds::ANALYSIS_FAILED | kinds::ANALYSIS_INCONCLUSIVE
        )
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Delivers one event to one endpoint, retrying with backoff. Returns the attempts made and
/// whether one succeeded.
pub(crate) async fn deliver(hook: &Webhook, event: &Event) -> (u32, bool) {
    let body = match serde_json::to_vec(event) {
        Ok(b) => Bytes::from(b),
        Err(_) => return (0, false),
    };
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("user-agent", "pave-webhooks".to_owned()),
        ("x-pave-event", event.kind.clone()),
        ("x-pave-delivery", event.id.to_string()),
        ("x-pave-signature-256", signature(&hook.secret, &body)),
    ];
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match crate::http::send(hyper::Method::POST, &hook.url, &headers, body.clone(), Duration::from_secs(10)).await {
            Ok((status, _)) if status.is_success() => return (attempt, true),
            Ok((status, _)) => {
                tracing::warn!(url = %hook.url, event = event.id, attempt, %status, "webhook refused; retrying")
            }
            Err(e) => {
                tracing::warn!(url = %hook.url, event = event.id, attempt, error = %e, "webhook failed; retrying")
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    tracing::error!(url = %hook.url, event = event.id, kind = %event.kind, "webhook delivery gave up after {ATTEMPTS} tries");
    (ATTEMPTS, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_githubs_hmac_sha256_and_only_rollout_events_are_carried() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(carried("deployment.started") && carried("analysis.failed"));
        assert!(!carried("analysis.measurement") && !carried("replica.started") && !carried("service.updated"));
    }
}
