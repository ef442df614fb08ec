//! What people ask of the delivery engine — deploy, approve, promote, abort, undo — checked and
//! written to the store. These touch only the database, so any control-plane replica can take
//! them; the replica running the engine picks the change up.

use pave_model::event::kinds;
use pave_model::policy::GateCheck;
use pave_model::rollout::{self, Rollout, RolloutKind, RolloutState, RouteState, Step, Strategy};
use pave_model::runtime::parse_duration;
use pave_model::{Kind, NewEvent, Resource, Role, Timestamp};
use pave_store::{Store, StoreError, WriteContext};
use serde_json::json;

/// A refused request; the message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// The release does not meet the environment's release policy; the message names each
    /// failed gate and why.
    #[error("{message}")]
    Policy { message: String, failed: Vec<GateCheck> },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DeployError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => DeployError::NotFound(m),
            StoreError::Conflict(m) => DeployError::Conflict(m),
            StoreError::Invalid(m) => DeployError::Invalid(m),
            StoreError::Forbidden(m) => DeployError::Forbidden(m),
            other => DeployError::Store(other),
        }
    }
}

type Result<T> = std::result::Result<T, DeployError>;

/// Who asks, and in which request (so the events it causes name it).
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    pub request_id: Option<String>,
}

/// `pave deploy SERVICE VERSION --env ENV [--strategy S] [--override REASON]`.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub service: String,
    pub environment: String,
    pub version: String,
    pub strategy: Option<Strategy>,
    /// Skip the promotion path, the approval and the release policy (admins only); the
    /// reason is recorded.
    pub override_reason: Option<String>,
}

/// A recorded deployment request, and the checks an admin's override skipped.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub rollout: Rollout,
    /// `promotion path`, `approval`, and each failed policy gate, when overridden.
    pub overridden: Vec<String>,
}

fn subject(service: &str) -> String {
    format!("service/{service}")
}

/// The environment before `env` on the promotion path (highest order below it), if any.
async fn previous_environment(store: &Store, env_order: u32) -> Result<Option<String>> {
    let all = store.list(Kind::Environment, &Default::default()).await?;
    Ok(all
        .into_iter()
        .filter_map(|r| match r.resource {
            Resource::Environment(e) if e.spec.order < env_order => Some((e.spec.order, e.metadata.name)),
            _ => None,
        })
        .max()
        .map(|(_, name)| name))
}

/// Checks and records a deployment request. The rollout starts at once, or waits for an
/// approval where the environment requires one.
pub async fn deploy(store: &Store, req: &DeployRequest, actor: &Actor, now: i64) -> Result<Deployed> {
    let service = match store.get(Kind::Service, &req.service).await?.map(|s| s.resource) {
        Some(Resource::Service(s)) => s,
        _ => return Err(DeployError::NotFound(format!("service {:?} does not exist", req.service))),
    };
    let runtime = service.spec.runtime.as_ref().ok_or_else(|| {
        DeployError::Invalid(format!(
            "service {:?} has no spec.runtime: say how to run it (command, port, health check) before deploying",
            req.service
        ))
    })?;
    let env = match store.get(Kind::Environment, &req.environment).await?.map(|e| e.resource) {
        Some(Resource::Environment(e)) => e,
        _ => return Err(DeployError::NotFound(format!("environment {:?} does not exist", req.environment))),
    };
    let release = store.release(&req.service, &req.version).await?.ok_or_else(|| {
        DeployError::NotFound(format!(
            "release {} {} does not exist; create it with `pave release create {} --version {} --artifact PATH`",
            req.service, req.version, req.service, req.version
        ))
    })?;
    let overriding = req.override_reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if req.override_reason.is_some() && overriding.is_none() {
        return Err(DeployError::Invalid("an override needs a reason".into()));
    }
    if overriding.is_some() && actor.role != Role::Admin {
        return Err(DeployError::Forbidden(format!(
            "only an admin can override the promotion path, approvals or the release policy; {} is a {}",
            actor.name,
            actor.role.as_str()
        )));
    }
    let mut events = Vec::new();
    let mut overridden = Vec::new();
    // Both checks run before either refuses, so one answer names everything in the way.
    let mut unpromoted = None;
    if let Some(prev) = previous_environment(store, env.spec.order).await?
        && !store.succeeded_in(&req.service, &req.version, &prev).await?
    {
        unpromoted = Some(prev);
    }
    let mut failed: Vec<GateCheck> = Vec::new();
    if let Some(policy) = env.spec.policy.as_ref().filter(|p| !p.require.is_empty()) {
        let scans = store.release_scans(&req.service, &req.version).await?;
        failed = pave_model::policy::evaluate(policy, &scans).into_iter().filter(|c| !c.passed).collect();
    }
    let promotion_note = unpromoted.as_ref().map(|prev| {
        format!(
            "release {} {} has not succeeded in {prev}, the environment before {} on the promotion path; deploy it there first",
            req.service, req.version, req.environment
        )
    });
    if overriding.is_none() {
        if !failed.is_empty() {
            let why: Vec<String> = failed.iter().map(|c| format!("gate `{}` failed: {}", c.gate, c.reason)).collect();
            return Err(DeployError::Policy {
                message: format!(
                    "release {} {} does not meet the release policy of {}: {}. Attach new scans of a fixed release{} \
                     (an admin may override with a reason)",
                    req.service,
                    req.version,
                    req.environment,
                    why.join("; "),
                    promotion_note.map(|n| format!("; also, {n}")).unwrap_or_default()
                ),
                failed,
            });
        }
        if let Some(note) = promotion_note {
            return Err(DeployError::Forbidden(format!("{note} (an admin may override with a reason)")));
        }
    }
    if let Some(prev) = unpromoted {
        events.push(NewEvent::new(
            kinds::DEPLOYMENT_OVERRIDE,
            subject(&req.service),
            json!({"environment": req.environment, "version": req.version, "skipped": format!("not yet succeeded in {prev}"), "by": actor.name, "reason": overriding}),
        ));
        overridden.push("promotion path".to_owned());
    }
    if !failed.is_empty() {
        overridden.extend(failed.iter().map(|c| format!("policy gate {}", c.gate)));
        events.push(NewEvent::new(
            kinds::DEPLOYMENT_OVERRIDE,
            subject(&req.service),
            json!({"environment": req.environment, "version": req.version, "skipped": "release policy",
                   "gates": failed, "by": actor.name, "reason": overriding}),
        ));
    }
    let spec = service.spec.rollout.as_deref().cloned().unwrap_or_default();
    let strategy = req.strategy.unwrap_or(spec.strategy);
    let keep_warm = parse_duration(&spec.keep_warm).map_err(DeployError::Invalid)?;
    if strategy == rollout::Strategy::Canary
        && !spec.steps.iter().any(|s| matches!(s, rollout::CanaryStep::SetWeight(_)))
    {
        return Err(DeployError::Invalid(format!(
            "service {:?} has no canary steps: declare spec.rollout.steps (setWeight, pause, analysis) to deploy it as a canary",
            req.service
        )));
    }
    let route = store.route_state(&req.service, &req.environment).await?.unwrap_or_default();
    let from = route.primary().map(str::to_owned);
    let replicas = runtime.replicas;
    let needs_approval = env.spec.require_approval && overriding.is_none();
    if env.spec.require_approval && overriding.is_some() {
        events.push(NewEvent::new(
            kinds::DEPLOYMENT_OVERRIDE,
            subject(&req.service),
            json!({"environment": req.environment, "version": req.version, "skipped": "approval", "by": actor.name, "reason": overriding}),
        ));
        overridden.push("approval".to_owned());
    }
    let r = Rollout {
        id: 0,
        service: req.service.clone(),
        environment: req.environment.clone(),
        version: req.version.clone(),
        from_version: from.clone(),
        strategy,
        kind: RolloutKind::Deploy,
        state: if needs_approval { RolloutState::AwaitingApproval } else { RolloutState::Progressing },
        step: 0,
        steps: rollout::plan(strategy, from.as_deref(), &req.version, replicas, &spec, keep_warm),
        revert: rollout::revert(from.as_deref(), &req.version, replicas),
        replicas,
        requested_by: actor.name.clone(),
        approved_by: None,
        override_by: overriding.map(|_| actor.name.clone()),
        override_reason: overriding.map(str::to_owned),
        reason: None,
        abort_requested: None,
        reverted_at_step: None,
        commit: release.commit.clone(),
        created_at: Timestamp(now),
        updated_at: Timestamp(now),
        finished_at: None,
    };
    events.insert(
        0,
        NewEvent::new(
            kinds::DEPLOYMENT_REQUESTED,
            subject(&req.service),
            json!({"environment": req.environment, "version": req.version, "from": from, "strategy": strategy,
                   "awaitingApproval": needs_approval}),
        ),
    );
    let rollout = store.create_rollout(&r, &events, &ctx(actor, now)).await?;
    Ok(Deployed { rollout, overridden })
}

/// `pave rollout undo`: back to the release that served before the current one.
pub async fn undo(store: &Store, service: &str, env: &str, actor: &Actor, now: i64) -> Result<Rollout> {
    let route = store.route_state(service, env).await?.unwrap_or_default();
    let current = route
        .serving()
        .ok_or_else(|| {
            DeployError::Conflict(format!("{service} has no version serving all traffic in {env}; nothing to undo"))
        })?
        .to_owned();
    let history = store.rollouts(Some(service), Some(env), 1000).await?;
    let last =
        history.iter().find(|r| r.version == current && r.state == RolloutState::Succeeded).ok_or_else(|| {
            DeployError::Conflict(format!("no succeeded rollout of {service} {current} in {env} to undo"))
        })?;
    let target = last.from_version.clone().filter(|v| *v != current).ok_or_else(|| {
        DeployError::Conflict(format!("{service} {current} was the first release in {env}; there is nothing before it"))
    })?;
    let release = store
        .release(service, &target)
        .await?
        .ok_or_else(|| DeployError::NotFound(format!("release {service} {target} no longer exists")))?;
    let replicas = last.replicas;
    let r = Rollout {
        id: 0,
        service: service.to_owned(),
        environment: env.to_owned(),
        version: target.clone(),
        from_version: Some(current.clone()),
        strategy: Strategy::BlueGreen,
        kind: RolloutKind::Undo,
        state: RolloutState::Progressing,
        step: 0,
        steps: rollout::revert(Some(&target), &current, replicas),
        revert: rollout::revert(Some(&current), &target, replicas),
        replicas,
        requested_by: actor.name.clone(),
        approved_by: None,
        override_by: None,
        override_reason: None,
        reason: Some(format!("undo of rollout {} ({current})", last.id)),
        abort_requested: None,
        reverted_at_step: None,
        commit: release.commit,
        created_at: Timestamp(now),
        updated_at: Timestamp(now),
        finished_at: None,
    };
    let events = [NewEvent::new(
        kinds::DEPLOYMENT_UNDO_REQUESTED,
        subject(service),
        json!({"environment": env, "from": current, "to": target, "undoes": last.id}),
    )];
    Ok(store.create_rollout(&r, &events, &ctx(actor, now)).await?)
}

fn ctx(actor: &Actor, now: i64) -> WriteContext {
    WriteContext { actor: actor.name.clone(), request_id: actor.request_id.clone(), now }
}

/// `pave rollout approve`: someone other than the requester (an admin may approve their own).
pub async fn approve(store: &Store, id: i64, actor: &Actor, now: i64) -> Result<Rollout> {
    let who = actor.clone();
    Ok(store
        .modify_rollout(id, &ctx(actor, now), move |r| {
            if r.state != RolloutState::AwaitingApproval {
                return Err(StoreError::Conflict(format!(
                    "rollout {} is {}, not awaiting approval",
                    r.id,
                    r.state.as_str()
                )));
            }
            if r.requested_by == who.name && who.role != Role::Admin {
                return Err(StoreError::Forbidden(format!(
                    "{} requested rollout {}; someone else must approve it",
                    who.name, r.id
                )));
            }
            r.state = RolloutState::Progressing;
            r.approved_by = Some(who.name.clone());
            // An admin's approval of their own rollout is allowed (break-glass, as an
            // override is) and said so in the event, for whoever reviews the audit.
            let self_approved = r.requested_by == who.name;
            Ok(vec![NewEvent::new(
                kinds::DEPLOYMENT_APPROVED,
                subject(&r.service),
                json!({"environment": r.environment, "version": r.version, "by": who.name,
                       "selfApproved": self_approved}),
            )])
        })
        .await?)
}

/// `pave rollout promote`: go past the step the rollout waits in — a promotion gate, a pause
/// or an analysis (which is then skipped: a person decided) — and on from a `pause`.
pub async fn promote(store: &Store, id: i64, actor: &Actor, now: i64) -> Result<Rollout> {
    let who = actor.name.clone();
    Ok(store
        .modify_rollout(id, &ctx(actor, now), move |r| {
            let waiting =
                matches!(r.steps.get(r.step), Some(Step::AwaitPromotion | Step::Pause { .. } | Step::Analyze { .. }));
            let promotable = match r.state {
                RolloutState::AwaitingPromotion => true,
                RolloutState::Progressing | RolloutState::Paused => waiting,
                _ => false,
            };
            if !promotable || r.abort_requested.is_some() {
                return Err(StoreError::Conflict(format!(
                    "rollout {} is {}{}, not waiting for promotion",
                    r.id,
                    r.state.as_str(),
                    r.steps.get(r.step).map(|s| format!(" at \"{}\"", s.describe())).unwrap_or_default()
                )));
            }
            let skipped = r.steps.get(r.step).map(Step::describe);
            r.state = RolloutState::Progressing;
            r.step += 1;
            Ok(vec![NewEvent::new(
                kinds::DEPLOYMENT_PROMOTED,
                subject(&r.service),
                json!({"environment": r.environment, "version": r.version, "by": who, "skipped": skipped}),
            )])
        })
        .await?)
}

/// `pave rollout pause`: hold a progressing rollout where it is (a pause or an analysis in
/// progress stops waiting; traffic stays as it is) until `resume` or `promote`.
pub async fn pause(store: &Store, id: i64, actor: &Actor, now: i64) -> Result<Rollout> {
    hold_or_go(store, id, actor, now, RolloutState::Progressing, RolloutState::Paused, kinds::DEPLOYMENT_PAUSED).await
}

/// `pave rollout resume`: a paused rollout goes on from the step it was in (a pause or an
/// analysis starts over).
pub async fn resume(store: &Store, id: i64, actor: &Actor, now: i64) -> Result<Rollout> {
    hold_or_go(store, id, actor, now, RolloutState::Paused, RolloutState::Progressing, kinds::DEPLOYMENT_RESUMED).await
}

/// Moves a rollout from state `from` to `to`, recording `kind`.
async fn hold_or_go(
    store: &Store,
    id: i64,
    actor: &Actor,
    now: i64,
    from: RolloutState,
    to: RolloutState,
    kind: &'static str,
) -> Result<Rollout> {
    let who = actor.name.clone();
    Ok(store
        .modify_rollout(id, &ctx(actor, now), move |r| {
            if r.state != from || r.abort_requested.is_some() {
                return Err(StoreError::Conflict(format!(
                    "rollout {} is {}, not {}",
                    r.id,
                    r.state.as_str(),
                    from.as_str()
                )));
            }
            r.state = to;
            Ok(vec![NewEvent::new(
                kind,
                subject(&r.service),
                json!({"environment": r.environment, "version": r.version, "by": who, "step": r.step}),
            )])
        })
        .await?)
}

/// `pave rollout abort`: the engine restores the previous version. A rollout still waiting
/// for approval has changed nothing and ends at once.
pub async fn abort(store: &Store, id: i64, actor: &Actor, now: i64) -> Result<Rollout> {
    let who = actor.name.clone();
    Ok(store
        .modify_rollout(id, &ctx(actor, now), move |r| {
            if r.state.is_terminal() {
                return Err(StoreError::Conflict(format!("rollout {} has already ended ({})", r.id, r.state.as_str())));
            }
            r.abort_requested = Some(who.clone());
            if r.state == RolloutState::AwaitingApproval {
                r.state = RolloutState::Aborted;
                r.finished_at = Some(Timestamp(now));
            }
            Ok(vec![NewEvent::new(
                kinds::DEPLOYMENT_ABORT_REQUESTED,
                subject(&r.service),
                json!({"environment": r.environment, "version": r.version, "by": who}),
            )])
        })
        .await?)
}

/// The rollout a command about `service` in `env` means: the active one.
pub async fn active(store: &Store, service: &str, env: &str) -> Result<Rollout> {
    store
        .rollouts(Some(service), Some(env), 1)
        .await?
        .into_iter()
        .find(|r| !r.state.is_terminal())
        .ok_or_else(|| DeployError::NotFound(format!("{service} has no rollout in progress in {env}")))
}

/// The desired state of a route, for status pages.
pub async fn route(store: &Store, service: &str, env: &str) -> Result<RouteState> {
    store
        .route_state(service, env)
        .await?
        .ok_or_else(|| DeployError::NotFound(format!("{service} has never been deployed to {env}")))
}
