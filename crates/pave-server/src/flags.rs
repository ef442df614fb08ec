//! What the SDK endpoints serve, kept in memory: for each project and environment an SDK
//! token can see, the flag set in the Unleash client API's JSON (serialised once, with its
//! ETag) and a compiled [`Engine`]. Requests read it without a lock or a database query; a
//! refresher polls the store's flag revision (one row) and rebuilds when it moves, so a change
//! made through any replica reaches every replica's SDKs within one poll.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use pave_flags::Engine;
use pave_flags::model::ClientFeatures;
use pave_store::{FlagSnapshot, SdkToken, SdkTokenKind, Store};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

/// The revision streams see when the server shuts down: they end.
pub const CLOSING: i64 = i64::MIN;

/// How often replicas look for flag changes made elsewhere.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// One project/environment view of the flags.
#[derive(Debug)]
pub struct View {
    pub project: String,
    pub environment: String,
    pub features: ClientFeatures,
    /// `features` as the client API's JSON body.
    pub body: Bytes,
    /// Strong ETag of `body` (quoted).
    pub etag: String,
    pub engine: Engine,
    /// Per flag name: whether it is on in this environment and its one OFREP value type.
    pub ofrep: HashMap<String, OfrepFlag>,
}

/// What OFREP answers need to know of a flag beyond its evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfrepFlag {
    pub enabled: bool,
    pub value_type: ValueType,
}

/// The one type of a flag's OFREP `value`, whoever asks: OpenFeature SDKs call a typed getter
/// (`getBooleanValue`, `getStringValue`…) and answer TYPE_MISMATCH, with the code's default,
/// for a value of another type, so a flag whose type changed from user to user would fail for
/// some users only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A flag without variants: whether it is on.
    Boolean,
    /// A flag with variants, some without a payload or with payloads of different types: the
    /// variant's name (a string).
    VariantName,
    /// Every variant has a `string` or `csv` payload: the payload.
    String,
    /// Every variant has a `number` payload: the payload as a number.
    Number,
    /// Every variant has a `json` payload: the payload's JSON.
    Object,
}

impl ValueType {
    /// The type of `f`, from every variant it has in this environment (its own and its
    /// strategies').
    pub fn of(f: &pave_flags::model::Feature) -> ValueType {
        let mut variants = f.variants.iter().chain(f.strategies.iter().flat_map(|s| &s.variants)).peekable();
        if variants.peek().is_none() {
            return ValueType::Boolean;
        }
        let mut common = None;
        for v in variants {
            let t = match v.payload.as_ref().map(|p| p.kind.as_str()) {
                Some("string" | "csv") => ValueType::String,
                Some("number") => ValueType::Number,
                Some("json") => ValueType::Object,
                _ => return ValueType::VariantName,
            };
            if common.is_some_and(|c| c != t) {
                return ValueType::VariantName;
            }
            common = Some(t);
        }
        common.unwrap_or(ValueType::VariantName)
    }

    /// The OpenFeature type name (`metadata.valueType`).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Boolean => "boolean",
            ValueType::VariantName | ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Object => "object",
        }
    }
}

/// A token's access, resolved (cheap to clone: one reference count).
#[derive(Debug, Clone)]
pub struct Access {
    pub kind: SdkTokenKind,
    pub view: Arc<View>,
}

/// Everything served at one revision.
#[derive(Debug, Default)]
pub struct Served {
    pub revision: i64,
    /// SHA-256 (hex) of a token's secret → its access.
    tokens: HashMap<String, Access>,
}

impl Served {
    /// Builds every view some live token needs.
    pub fn build(snap: &FlagSnapshot) -> Served {
        let mut views: HashMap<(String, String), Arc<View>> = HashMap::new();
        let mut tokens = HashMap::new();
        for t in &snap.tokens {
            let key = (t.project.clone(), t.environment.clone());
            let view =
                views.entry(key).or_insert_with(|| Arc::new(build_view(snap, &t.project, &t.environment))).clone();
            tokens.insert(t.hash.clone(), Access { kind: t.kind, view });
        }
        Served { revision: snap.revision, tokens }
    }

    /// The access a presented secret gives, if it is a live token.
    pub fn access(&self, secret: &str) -> Option<&Access> {
        self.tokens.get(&hash_secret(secret))
    }
}

/// SHA-256 of an SDK token secret, hex: what the store keeps.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new SDK token for `project` and `environment`: `(secret shown once, what to store)`.
/// The secret has Unleash's `project:environment.random` form, so SDK users recognise it.
pub fn generate_sdk_token(name: &str, kind: SdkTokenKind, project: &str, environment: &str) -> (String, SdkToken) {
    use rand::RngCore;
    let mut rng = rand::rng();
    let mut secret = [0u8; 24];
    rng.fill_bytes(&mut secret);
    let mut id = [0u8; 6];
    rng.fill_bytes(&mut id);
    let secret = format!("{project}:{environment}.{}", hex::encode(secret));
    let token = SdkToken {
        id: format!("sdk_{}", hex::encode(id)),
        name: name.into(),
        kind,
        project: project.into(),
        environment: environment.into(),
        hash: hash_secret(&secret),
        created_at: pave_model::Timestamp(0),
        created_by: String::new(),
        revoked_at: None,
    };
    (secret, token)
}

fn build_view(snap: &FlagSnapshot, project: &str, environment: &str) -> View {
    let ids: HashMap<&str, u32> = snap.segments.iter().map(|(id, s)| (s.name(), *id)).collect();
    let segment_id = |n: &str| ids.get(n).copied();
    let features: Vec<_> = snap
        .flags
        .iter()
        .filter(|f| project == "*" || f.spec.project == project)
        .map(|f| f.client_feature(environment, &segment_id))
        .collect();
    // Only the segments these flags use: a project's SDKs need not see the others.
    let used: std::collections::BTreeSet<u32> =
        features.iter().flat_map(|f| &f.strategies).flat_map(|s| s.segments.iter().copied()).collect();
    let segments = snap.segments.iter().filter(|(id, _)| used.contains(id)).map(|(id, s)| s.to_wire(*id)).collect();
    let features = ClientFeatures { version: 2, features, segments };
    let body = Bytes::from(serde_json::to_vec(&features).expect("flags serialise"));
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
    let engine = Engine::new(&features);
    let ofrep = features
        .features
        .iter()
        .map(|f| (f.name.clone(), OfrepFlag { enabled: f.enabled, value_type: ValueType::of(f) }))
        .collect();
    View { project: project.into(), environment: environment.into(), features, body, etag, engine, ofrep }
}

/// The served state and its refresher's controls.
#[derive(Debug)]
pub struct FlagServing {
    current: RwLock<Arc<Served>>,
    /// Wakes the refresher at once (after a write through this replica).
    poke: Notify,
    /// Tells streams a new revision is being served.
    changed: watch::Sender<i64>,
}

impl Default for FlagServing {
    fn default() -> Self {
        Self { current: RwLock::default(), poke: Notify::new(), changed: watch::Sender::new(-1) }
    }
}

impl FlagServing {
    /// What is served now.
    pub fn current(&self) -> Arc<Served> {
        pave_sync::read(&self.current).clone()
    }

    /// Asks the refresher to look for changes now rather than at its next poll.
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// After a write through this replica: serves it before the write is answered, so a
    /// client that creates a token or flips a flag and then calls an SDK endpoint sees it.
    pub async fn written(&self, store: &Store) {
        if let Err(e) = self.refresh(store, false).await {
            tracing::warn!(error = %e, "cannot reload flags after a write; the poller will retry");
            self.poke();
        }
    }

    /// A receiver that sees each revision as it starts being served.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }

    /// Reads the store and serves what it holds, if the revision moved (or `force`).
    pub async fn refresh(&self, store: &Store, force: bool) -> Result<(), pave_store::StoreError> {
        let revision = store.flag_revision().await?;
        if !force && revision == self.current().revision && *self.changed.borrow() >= 0 {
            return Ok(());
        }
        let snap = store.flag_snapshot().await?;
        let served = Arc::new(Served::build(&snap));
        let rev = served.revision;
        {
            let mut current = pave_sync::write(&self.current);
            // Two refreshes may race (a write's and the poller's): never go back in time.
            if rev < current.revision {
                return Ok(());
            }
            *current = served;
        }
        self.changed.send_replace(rev);
        tracing::debug!(revision = rev, flags = snap.flags.len(), "serving flags");
        Ok(())
    }

    /// Keeps the served state current until `shutdown` fires.
    pub async fn run(self: Arc<Self>, store: Store, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.refresh(&store, false).await {
                tracing::warn!(error = %e, "cannot refresh the served flags; serving the last good state");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = self.poke.notified() => {}
                _ = shutdown.changed() => {
                    // Streams end, so a graceful shutdown does not wait on them.
                    self.changed.send_replace(CLOSING);
                    return;
                }
            }
        }
    }
}
