//! Rollouts: dispatching the active ones, running their steps (scale, route, retire, pause,
//! analyse, await promotion) and reverting on failure.

use super::*;

impl<R: Runtime> Engine<R> {
    pub(super) async fn dispatch(self: &Arc<Self>) {
        let active = match self.store.active_rollouts().await {
            Ok(a) => a,
            Err(e) => {
                // A shutdown closes the store under the engine's feet: not worth a warning.
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot list active rollouts");
                }
                return;
            }
        };
        for r in active {
            if matches!(r.state, RolloutState::AwaitingApproval) {
                continue;
            }
            if matches!(r.state, RolloutState::AwaitingPromotion | RolloutState::Paused) && r.abort_requested.is_none()
            {
                continue;
            }
            if !self.book().running.insert(r.id) {
                continue;
            }
            let engine = self.clone();
            tokio::spawn(async move {
                let id = r.id;
                engine.execute(id).await;
                engine.book().running.remove(&id);
                // Something may have changed while it ran (a promote, an abort).
                engine.wake();
            });
        }
    }

    pub(super) async fn modify(
        &self,
        id: i64,
        change: impl FnOnce(&mut Rollout) -> Vec<NewEvent>,
    ) -> Result<Rollout, pave_store::StoreError> {
        self.store.modify_rollout(id, &self.ctx(), |r| Ok(change(r))).await
    }

    /// Moves a rollout past step `at` of the list it runs in `state` (its plan while
    /// progressing, its revert while rolling back), once.
    pub(super) async fn advance(&self, id: i64, at: usize, state: RolloutState, step: &Step) {
        let kind =
            if state == RolloutState::RollingBack { kinds::DEPLOYMENT_REVERT_STEP } else { kinds::DEPLOYMENT_STEP };
        let _ = self
            .modify(id, |r| {
                // Only if still there: a revert begun meanwhile (a crashed canary) restarted
                // the count in its own list. A pause that came during the step lets it count.
                if r.step == at && (r.state == state || r.state == RolloutState::Paused) {
                    r.step += 1;
                }
                vec![NewEvent::new(
                    kind,
                    subject(&r.service),
                    json!({"environment": r.environment, "version": r.version, "index": at, "step": step.describe()}),
                )]
            })
            .await;
    }

    /// Switches a rollout to running its revert steps, for `reason`.
    pub(super) async fn begin_revert(&self, id: i64, reason: String) {
        let _ = self
            .modify(id, |r| {
                r.state = RolloutState::RollingBack;
                r.reverted_at_step = Some(r.step);
                r.step = 0;
                r.reason = Some(reason.clone());
                vec![NewEvent::new(
                    kinds::DEPLOYMENT_ROLLING_BACK,
                    subject(&r.service),
                    json!({"environment": r.environment, "version": r.version, "reason": reason}),
                )]
            })
            .await;
    }

    pub(super) async fn execute(&self, id: i64) {
        loop {
            match self.tick(id).await {
                Tick::Again => {}
                Tick::Wait(d) => tokio::time::sleep(d).await,
                Tick::Stop => return,
            }
        }
    }

    /// Runs one step of rollout `id` (or moves it on: an abort begins its revert, a plan run
    /// to its end finishes it) and says what to do next. The unit of the engine's work that
    /// tests drive one at a time.
    pub(super) async fn tick(&self, id: i64) -> Tick {
        if self.stopped.load(Ordering::SeqCst) || !self.is_leader() {
            return Tick::Stop;
        }
        let r = match self.store.rollout(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Tick::Stop,
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot read a rollout");
                return Tick::Wait(Duration::from_secs(1));
            }
        };
        if let Some(by) = &r.abort_requested
            && matches!(r.state, RolloutState::Progressing | RolloutState::AwaitingPromotion | RolloutState::Paused)
        {
            self.begin_revert(id, format!("aborted by {by}")).await;
            return Tick::Again;
        }
        match r.state {
            RolloutState::Progressing if r.step >= r.steps.len() => {
                self.finish(&r, RolloutState::Succeeded).await;
                Tick::Stop
            }
            RolloutState::Progressing => {
                let step = &r.steps[r.step];
                if r.step == 0 {
                    self.event(
                        kinds::DEPLOYMENT_STARTED,
                        &r.service,
                        json!({"rollout": r.id, "environment": r.environment, "version": r.version, "strategy": r.strategy}),
                    )
                    .await;
                }
                match self.run_step(&r, step).await {
                    Ok(Outcome::Done) => {
                        self.advance(id, r.step, RolloutState::Progressing, step).await;
                        Tick::Again
                    }
                    Ok(Outcome::AwaitPromotion(reason)) => {
                        let _ = self
                            .modify(id, |r| {
                                if r.abort_requested.is_none() && r.state == RolloutState::Progressing {
                                    r.state = RolloutState::AwaitingPromotion;
                                    if reason.is_some() {
                                        r.reason = reason.clone();
                                    }
                                }
                                vec![NewEvent::new(
                                    kinds::DEPLOYMENT_AWAITING_PROMOTION,
                                    subject(&r.service),
                                    json!({"environment": r.environment, "version": r.version, "reason": reason}),
                                )]
                            })
                            .await;
                        Tick::Stop
                    }
                    Ok(Outcome::Interrupted) => Tick::Again,
                    // Stopping is no failure of the release: the next engine resumes the step.
                    Err(_) if self.stopped.load(Ordering::SeqCst) => Tick::Stop,
                    Err(StepError::Transient(reason)) => {
                        tracing::warn!(id, %reason, "rollout step could not run now; trying again");
                        Tick::Wait(RETRY_TRANSIENT)
                    }
                    Err(StepError::Permanent(reason)) => {
                        tracing::warn!(id, %reason, "rollout step failed; reverting");
                        self.begin_revert(id, reason).await;
                        Tick::Again
                    }
                }
            }
            RolloutState::RollingBack if r.step >= r.revert.len() => {
                let end = if r.abort_requested.is_some() { RolloutState::Aborted } else { RolloutState::Failed };
                self.finish(&r, end).await;
                Tick::Stop
            }
            RolloutState::RollingBack => {
                let step = &r.revert[r.step];
                match self.run_step(&r, step).await {
                    Ok(_) => {
                        self.advance(id, r.step, RolloutState::RollingBack, step).await;
                        Tick::Again
                    }
                    Err(e) => {
                        // A revert must get through; keep trying, loudly.
                        tracing::error!(id, error = %e, "a revert step failed; retrying");
                        Tick::Wait(Duration::from_secs(2))
                    }
                }
            }
            // Waiting for a person, or over.
            _ => Tick::Stop,
        }
    }

    pub(super) async fn run_step(&self, r: &Rollout, step: &Step) -> Result<Outcome, StepError> {
        let (service, env) = (r.service.as_str(), r.environment.as_str());
        match step {
            Step::AwaitPromotion => return Ok(Outcome::AwaitPromotion(None)),
            Step::Pause { ms } => return Ok(self.hold(r, Duration::from_millis(*ms)).await),
            Step::Analyze { canary, stable, analysis } => {
                return self.analyze(r, canary, stable, analysis).await.map_err(StepError::from);
            }
            _ => {}
        }
        let guard = self.route_lock(service, env);
        let _held = guard.lock().await;
        let mut state = self.route_state(service, env).await?;
        let events = match step {
            Step::Retire { version, after_ms } => {
                let at = Timestamp(self.now() + *after_ms as i64);
                if let Some(v) = state.versions.iter_mut().find(|v| v.version == *version && v.weight == 0) {
                    v.retire_at = Some(at);
                }
                vec![NewEvent::new(
                    kinds::ROUTE_RETIRE_SCHEDULED,
                    subject(service),
                    json!({"environment": env, "version": version, "at": at, "rollout": r.id}),
                )]
            }
            Step::Scale { version, replicas } => {
                state.set_replicas(version, *replicas);
                Vec::new()
            }
            Step::Route { weights } => {
                state.set_weights(weights);
                vec![NewEvent::new(
                    kinds::ROUTE_SWITCHED,
                    subject(service),
                    json!({"environment": env, "weights": weights, "rollout": r.id}),
                )]
            }
            Step::AwaitPromotion | Step::Pause { .. } | Step::Analyze { .. } => unreachable!("handled above"),
        };
        // The desired state is stored before anything acts on it.
        self.store.save_route(service, env, &state, &events, &self.ctx()).await.map_err(|e| e.to_string())?;
        match step {
            Step::Scale { version, replicas } => self.ensure_replicas(service, env, version, *replicas).await?,
            Step::Route { .. } => self.apply_state(service, env, &state).await?,
            _ => {}
        }
        Ok(Outcome::Done)
    }

    /// Whether rollout `r` is still where the caller saw it: progressing, at the same step,
    /// not asked to abort, and this engine still in charge.
    pub(super) async fn still_at(&self, r: &Rollout) -> bool {
        if self.stopped.load(Ordering::SeqCst) || !self.is_leader() {
            return false;
        }
        match self.store.rollout(r.id).await {
            Ok(Some(now)) => {
                now.state == RolloutState::Progressing && now.step == r.step && now.abort_requested.is_none()
            }
            Ok(None) => false,
            // A passing store error is no reason to drop the step.
            Err(_) => true,
        }
    }

    /// A timed pause: waits `length`, unless the rollout is moved on meanwhile.
    pub(super) async fn hold(&self, r: &Rollout, length: Duration) -> Outcome {
        let until = tokio::time::Instant::now() + length;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Outcome::Done;
            }
            tokio::time::sleep(left.min(CHECK_EVERY)).await;
            if !self.still_at(r).await {
                return Outcome::Interrupted;
            }
        }
    }

    /// Runs an analysis step: every metric measured at its interval against its limits. The
    /// first failure (or untrustworthy metric) fails the step, which rolls the rollout back;
    /// an inconclusive metric hands the decision to a person.
    pub(super) async fn analyze(
        &self,
        r: &Rollout,
        canary: &str,
        stable: &str,
        spec: &AnalysisSpec,
    ) -> Result<Outcome, String> {
        let (service, env) = (r.service.as_str(), r.environment.as_str());
        let since = std::time::SystemTime::now();
        let target = crate::analysis::Target { service, env, canary, stable };
        let start = tokio::time::Instant::now();
        struct Metric<'a> {
            spec: &'a pave_model::analysis::MetricSpec,
            every: Duration,
            due: tokio::time::Instant,
            run: MetricRun,
            verdict: Option<Verdict>,
        }
        let mut metrics: Vec<Metric> = spec
            .metrics
            .iter()
            .map(|m| {
                let every = Duration::from_millis(parse_duration(&m.interval).unwrap_or(10_000));
                Metric { spec: m, every, due: start + every, run: MetricRun::default(), verdict: None }
            })
            .collect();
        self.event(
            kinds::ANALYSIS_STARTED,
            service,
            json!({"rollout": r.id, "environment": env, "canary": canary, "stable": stable,
                   "metrics": spec.metrics.iter().map(|m| &m.name).collect::<Vec<_>>()}),
        )
        .await;
        loop {
            let next = metrics.iter().filter(|m| m.verdict.is_none()).map(|m| m.due).min();
            let Some(next) = next else { break };
            // Sleep to the next measurement in short stretches, to notice a promote or abort.
            while tokio::time::Instant::now() < next {
                let left = next.saturating_duration_since(tokio::time::Instant::now());
                tokio::time::sleep(left.min(CHECK_EVERY)).await;
                if !self.still_at(r).await {
                    return Ok(Outcome::Interrupted);
                }
            }
            let now = tokio::time::Instant::now();
            // One look at the router's signals for every metric due now.
            let summaries = self.signals(service, env, since).await.unwrap_or_default();
            let pick = |v: &str| summaries.iter().find(|s| s.version == v).cloned();
            for m in metrics.iter_mut().filter(|m| m.verdict.is_none() && m.due <= now) {
                let measured = crate::analysis::measure(m.spec, &target, (pick(canary), pick(stable))).await;
                m.verdict = m.run.record(m.spec, measured.outcome);
                m.due = now + m.every;
                self.event(
                    kinds::ANALYSIS_MEASUREMENT,
                    service,
                    json!({"rollout": r.id, "environment": env, "canary": canary, "measurement": measured, "run": m.run}),
                )
                .await;
                let outcome = match m.verdict {
                    Some(Verdict::Failed) => Some((kinds::ANALYSIS_FAILED, "failed")),
                    Some(Verdict::Error) => Some((kinds::ANALYSIS_FAILED, "could not be measured reliably")),
                    Some(Verdict::Inconclusive) => Some((kinds::ANALYSIS_INCONCLUSIVE, "was inconclusive")),
                    _ => None,
                };
                if let Some((kind, said)) = outcome {
                    let reason = format!("analysis {said}: metric {}: {}", m.spec.name, measured.message);
                    self.event(kind, service, json!({"rollout": r.id, "environment": env, "canary": canary, "metric": m.spec.name, "reason": reason}))
                        .await;
                    return if m.verdict == Some(Verdict::Inconclusive) {
                        Ok(Outcome::AwaitPromotion(Some(reason)))
                    } else {
                        Err(reason)
                    };
                }
            }
        }
        self.event(
            kinds::ANALYSIS_SUCCEEDED,
            service,
            json!({"rollout": r.id, "environment": env, "canary": canary,
                   "runs": metrics.iter().map(|m| json!({"metric": m.spec.name, "run": m.run})).collect::<Vec<_>>()}),
        )
        .await;
        Ok(Outcome::Done)
    }
}
