//! Secret rolls: replicas restarted one at a time, without losing capacity, when the secrets
//! they started with changed.

use super::*;

impl<R: Runtime> Engine<R> {
    /// Starts a roll for every route with a replica that runs an older secret revision than
    /// the store has. One query per poll, and none while nothing runs.
    pub(super) async fn roll_due(self: &Arc<Self>) {
        let running = self.runtime.running();
        if running.is_empty() {
            return;
        }
        let revisions = match self.store.secret_revisions().await {
            Ok(r) => r,
            Err(e) => {
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot read secret revisions");
                }
                return;
            }
        };
        let mut due: HashMap<(String, String), i64> = HashMap::new();
        for i in running {
            let key = (i.service, i.env);
            let rev = revisions.get(&key).copied().unwrap_or(0);
            if i.config_rev != rev {
                due.insert(key, rev);
            }
        }
        // A failed roll is tried again when its wait is over even if every running replica
        // is current: it may have left a slot empty with only the extra replica serving.
        for (key, f) in self.book().failed_rolls.iter() {
            let rev = revisions.get(key).copied().unwrap_or(0);
            if !f.holds(rev) {
                due.entry(key.clone()).or_insert(rev);
            }
        }
        for (key, rev) in due {
            let busy = {
                let mut book = self.book();
                book.failed_rolls.get(&key).is_some_and(|f| f.holds(rev)) || !book.rolling.insert(key.clone())
            };
            if busy {
                continue;
            }
            let engine = self.clone();
            tokio::spawn(async move {
                let (service, env) = &key;
                if let Err(reason) = engine.roll(service, env, rev).await {
                    let failures = {
                        let mut book = engine.book();
                        let failed = &mut book.failed_rolls;
                        let failures = failed.get(&key).filter(|f| f.revision == rev).map_or(0, |f| f.failures) + 1;
                        let wait = Duration::from_secs(10u64.saturating_mul(1 << (failures - 1).min(6)).min(600));
                        failed.insert(
                            key.clone(),
                            FailedRoll { revision: rev, retry_at: std::time::Instant::now() + wait, failures },
                        );
                        failures
                    };
                    tracing::warn!(service, env, %reason, failures, "replicas keep their previous secrets for now");
                    engine
                        .event(
                            kinds::REPLICAS_ROLL_FAILED,
                            service,
                            json!({"environment": env, "revision": rev, "reason": reason, "failures": failures}),
                        )
                        .await;
                }
                engine.book().rolling.remove(&key);
            });
        }
    }

    /// Restarts a route's replicas that run older secrets, one at a time, without losing
    /// capacity: first one extra replica with the new secrets (if it fails its health check,
    /// nothing else changes), then each old one leaves the router, drains, stops and starts
    /// again on its slot with the new secrets, then the extra one leaves. A rollout in
    /// progress goes first: it starts its replicas with the new secrets, and what it leaves
    /// running is rolled after it.
    pub(super) async fn roll(&self, service: &str, env: &str, rev: i64) -> Result<(), String> {
        let guard = self.route_lock(service, env);
        let _held = guard.lock().await;
        // A rollout waiting for its approval has changed nothing yet: it does not hold up a roll.
        let active = self.store.active_rollouts().await.map_err(|e| e.to_string())?;
        if active
            .iter()
            .any(|r| r.service == service && r.environment == env && r.state != RolloutState::AwaitingApproval)
        {
            return Ok(());
        }
        let Some(state) = self.store.route_state(service, env).await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let mut rolled = 0;
        for v in state.versions.iter().filter(|v| v.replicas > 0) {
            // Fill an empty slot and retire an extra replica a failed roll left behind.
            self.ensure_replicas(service, env, &v.version, v.replicas).await.map_err(|e| e.to_string())?;
            let mut stale: Vec<Instance> = self
                .instances_of(service, env, &v.version)
                .into_iter()
                .filter(|i| i.config_rev != rev && i.replica < v.replicas)
                .collect();
            if stale.is_empty() {
                continue;
            }
            stale.sort_by_key(|i| i.replica);
            let surge = self.start_replica(service, env, &v.version, v.replicas, true).await?;
            let mut outcome = Ok(());
            for old in &stale {
                if self.stopped.load(Ordering::SeqCst) || !self.is_leader() {
                    // The next engine picks the roll up where it stands.
                    return Ok(());
                }
                self.book().draining.insert(old.id.clone());
                if let Err(e) = self.apply(service, env).await {
                    // The router may still send it traffic: it is not stopped.
                    self.book().draining.remove(&old.id);
                    outcome = Err(e.to_string());
                    break;
                }
                if let Err(e) = self.router.drain(service, env, old.addr(), self.config.drain_timeout).await {
                    tracing::warn!(id = %old.id, error = %e, "cannot drain through the router; restarting anyway");
                }
                let _ = self.runtime.stop(&old.id).await;
                let started = self.start_replica(service, env, &v.version, old.replica, false).await;
                self.book().draining.remove(&old.id);
                let _ = self.apply(service, env).await;
                if let Err(e) = started {
                    // The slot stays empty; the extra replica keeps serving in its place.
                    outcome = Err(e);
                    break;
                }
                rolled += 1;
            }
            outcome?;
            self.book().surge.remove(&surge.id);
            self.apply(service, env).await.map_err(|e| e.to_string())?;
            self.retire(&surge).await;
        }
        self.book().failed_rolls.remove(&(service.to_owned(), env.to_owned()));
        if rolled > 0 {
            self.event(
                kinds::REPLICAS_ROLLED,
                service,
                json!({"environment": env, "reason": "secrets changed", "revision": rev, "replicas": rolled}),
            )
            .await;
        }
        Ok(())
    }

    /// Starts one replica with the current secrets, records it, and puts it in the router
    /// (as an extra one beside the desired replicas when `surge`).
    pub(super) async fn start_replica(
        &self,
        service: &str,
        env: &str,
        version: &str,
        replica: u32,
        surge: bool,
    ) -> Result<Instance, String> {
        let _starting = self.starts.read().await;
        if self.stopped.load(Ordering::SeqCst) {
            return Err("the delivery engine is stopping".into());
        }
        let spec = self.spec(service, env, version, replica).await?;
        let inst = self.runtime.start(spec).await.map_err(|e| e.to_string())?;
        let doc = serde_json::to_value(&inst).map_err(|e| e.to_string())?;
        self.store.save_instance(&inst.id, service, env, &doc, self.now()).await.map_err(|e| e.to_string())?;
        self.book().unhealthy.remove(&inst.id);
        if surge {
            self.book().surge.insert(inst.id.clone());
        }
        self.event(
            kinds::REPLICA_STARTED,
            service,
            replica_data(
                &inst,
                json!({"environment": env, "version": version, "replica": replica, "revision": inst.config_rev}),
            ),
        )
        .await;
        // A router that missed this gets the replica with its next table.
        let _ = self.apply(service, env).await;
        Ok(inst)
    }
}
