//! What a control plane does when it takes the engine over: adopt what runs, restore what is
//! missing, and from then on turn runtime events into events and router changes; and the
//! webhooks fed from the event log.

use super::*;

impl<R: Runtime> Engine<R> {
    /// After a start: adopt recorded replicas still running, forget the rest, serve every
    /// route again, start what is missing, and stop unrecorded replicas of ours.
    pub(super) async fn recover(&self) {
        let records = self.store.instances().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read recorded replicas");
            Vec::new()
        });
        // Every recorded replica is looked at at once: adoption waits on health checks, and
        // one after another a dozen replicas would keep the engine from its work for seconds.
        let adoptions = records.into_iter().filter_map(|doc| serde_json::from_value::<Instance>(doc).ok()).map(|inst| async move {
            let outcome = match self.spec_with(&inst.service, &inst.env, &inst.version, inst.replica, false).await {
                Ok(spec) => self.runtime.adopt(spec, inst.clone()).await,
                Err(e) => {
                    tracing::warn!(id = %inst.id, error = %e, "cannot rebuild a replica's spec; it will be stopped");
                    Adoption::Gone
                }
            };
            if !matches!(outcome, Adoption::Adopted(_)) {
                let _ = self.store.delete_instance(&inst.id).await;
            }
            outcome
        });
        let outcomes = join_all(adoptions).await;
        let adopted = outcomes.iter().filter(|o| matches!(o, Adoption::Adopted(_))).count();
        let gone = outcomes.len() - adopted;
        let reaped = self.runtime.reap_orphans().await;
        tracing::info!(adopted, gone, reaped = reaped.len(), "recovered replicas");
        let routes = self.store.routes().await.unwrap_or_default();
        let routes_empty = routes.is_empty();
        for (service, env, state) in &routes {
            if let Err(e) = self.ensure_listener(service, env, state.port).await {
                tracing::error!(error = %e, "cannot serve a route");
                continue;
            }
            let _ = self.apply_state(service, env, state).await;
        }
        for (service, env, state) in routes {
            for v in &state.versions {
                if let Err(e) = self.ensure_replicas(&service, &env, &v.version, v.replicas).await {
                    tracing::error!(service, env, version = %v.version, error = %e, "cannot restore replicas");
                }
            }
            let _ = self.apply(&service, &env).await;
        }
        // Recorded when there was something to recover: a first start on an empty platform
        // is not an event.
        if adopted + gone + reaped.len() > 0 || !routes_empty {
            self.event(kinds::ENGINE_RECOVERED, "pave", json!({"adopted": adopted, "gone": gone, "reaped": reaped}))
                .await;
        }
    }

    /// Sends rollout events to the webhooks while this control plane runs the engine: one
    /// ordered queue per endpoint, fed from the event log.
    pub(super) async fn notify(self: Arc<Self>) {
        if self.config.webhooks.is_empty() {
            return;
        }
        let mut after = self.store.last_event_id().await.unwrap_or(0);
        let queues: Vec<tokio::sync::mpsc::Sender<pave_model::Event>> = self
            .config
            .webhooks
            .iter()
            .map(|hook| {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<pave_model::Event>(10_000);
                let hook = hook.clone();
                tokio::spawn(async move {
                    while let Some(e) = rx.recv().await {
                        crate::notify::deliver(&hook, &e).await;
                    }
                });
                tx
            })
            .collect();
        while !self.stopped.load(Ordering::SeqCst) && self.is_leader() {
            let q = pave_store::EventQuery {
                after,
                kinds: vec![kinds::DEPLOYMENT_ANY.into(), kinds::ANALYSIS_ANY.into()],
                subject: None,
                limit: 500,
            };
            match self.store.events(&q).await {
                Ok(batch) => {
                    let full = batch.len() as i64 == q.limit;
                    for e in batch {
                        after = after.max(e.id);
                        if !crate::notify::carried(&e.kind) {
                            continue;
                        }
                        for queue in &queues {
                            if queue.try_send(e.clone()).is_err() {
                                tracing::error!(event = e.id, "a webhook endpoint is 10,000 events behind; dropping");
                            }
                        }
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) if !self.stopped.load(Ordering::SeqCst) => {
                    tracing::warn!(error = %e, "webhooks cannot read the event log");
                }
                Err(_) => return,
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    /// Turns runtime events into events in the log and router changes.
    pub(super) async fn watch_runtime(self: Arc<Self>) {
        let mut rx = self.runtime.subscribe();
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "runtime events lagged");
                    continue;
                }
                Err(_) => return,
            };
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let id = match &ev {
                RuntimeEvent::Crashed { id, .. }
                | RuntimeEvent::Unhealthy { id, .. }
                | RuntimeEvent::Healthy { id } => id.clone(),
                RuntimeEvent::Restarted { instance } => instance.id.clone(),
            };
            let Some((service, env, version, _)) = pave_runtime::parse_instance_id(&id) else { continue };
            let (service, env, version) = (service.to_owned(), env.to_owned(), version.to_owned());
            let (kind, data) = match &ev {
                RuntimeEvent::Crashed { status, restarts, restart_in, .. } => {
                    self.book().unhealthy.insert(id.clone());
                    (
                        kinds::REPLICA_CRASHED,
                        json!({"replica": id, "status": status, "restarts": restarts, "restartInMs": restart_in.as_millis() as u64}),
                    )
                }
                RuntimeEvent::Restarted { instance } => {
                    self.book().unhealthy.remove(&id);
                    if let Ok(doc) = serde_json::to_value(instance) {
                        let _ = self.store.save_instance(&id, &service, &env, &doc, self.now()).await;
                    }
                    (kinds::REPLICA_RESTARTED, replica_data(instance, json!({"replica": id})))
                }
                RuntimeEvent::Unhealthy { reason, .. } => {
                    self.book().unhealthy.insert(id.clone());
                    (kinds::REPLICA_UNHEALTHY, json!({"replica": id, "reason": reason}))
                }
                RuntimeEvent::Healthy { .. } => {
                    self.book().unhealthy.remove(&id);
                    (kinds::REPLICA_HEALTHY, json!({"replica": id}))
                }
            };
            let _ = self.apply(&service, &env).await;
            let mut data = data;
            data["environment"] = json!(env);
            self.event(kind, &service, data).await;
            if matches!(ev, RuntimeEvent::Crashed { .. } | RuntimeEvent::Unhealthy { .. }) {
                self.fail_canary_of(&service, &env, &version, &id).await;
            }
        }
    }

    /// A canary whose replica crashed or turned unhealthy is rolled back at once: users
    /// already saw it fail, and no analysis needs to say so.
    pub(super) async fn fail_canary_of(&self, service: &str, env: &str, version: &str, replica: &str) {
        let Ok(Some(r)) = self.store.rollouts(Some(service), Some(env), 1).await.map(|v| v.into_iter().next()) else {
            return;
        };
        let canary = r.strategy == pave_model::rollout::Strategy::Canary
            && matches!(r.state, RolloutState::Progressing | RolloutState::Paused | RolloutState::AwaitingPromotion)
            && r.version == version;
        if canary {
            tracing::warn!(rollout = r.id, replica, "a canary replica failed; rolling back");
            self.begin_revert(r.id, format!("canary replica {replica} crashed or became unhealthy")).await;
            self.wake();
        }
    }
}
