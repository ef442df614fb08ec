//! Routes: the desired state of each service and environment, the router kept in line with
//! it and with the healthy replicas, keep-warm retirement and the teardown of deleted routes.

use super::*;

impl<R: Runtime> Engine<R> {
    pub(super) fn route_lock(&self, service: &str, env: &str) -> RouteLock {
        self.book().route_locks.entry((service.to_owned(), env.to_owned())).or_default().clone()
    }

    /// Stops versions whose keep-warm time is over and that still take no traffic.
    pub(super) async fn retire_due(&self) {
        let now = self.now();
        let routes = match self.store.routes().await {
            Ok(r) => r,
            Err(e) => {
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot read routes");
                }
                return;
            }
        };
        for (service, env, state) in routes {
            if !state.versions.iter().any(|v| v.weight == 0 && v.retire_at.is_some_and(|t| t.0 <= now)) {
                continue;
            }
            let guard = self.route_lock(&service, &env);
            // Never wait here: this runs in the loop that renews the lease, and a rollout step
            // or a roll may hold the route for a while. The next poll tries again.
            let Ok(_held) = guard.try_lock() else { continue };
            // Read again under the lock: an undo may have brought the version back.
            let Ok(Some(mut state)) = self.store.route_state(&service, &env).await else { continue };
            let due: Vec<String> = state
                .versions
                .iter()
                .filter(|v| v.weight == 0 && v.retire_at.is_some_and(|t| t.0 <= now))
                .map(|v| v.version.clone())
                .collect();
            for version in due {
                state.set_replicas(&version, 0);
                let ev = NewEvent::new(
                    kinds::ROUTE_RETIRED,
                    subject(&service),
                    json!({"environment": env, "version": version, "reason": "keep-warm time over"}),
                );
                if let Err(e) = self.store.save_route(&service, &env, &state, &[ev], &self.ctx()).await {
                    tracing::warn!(error = %e, "cannot retire a version");
                    continue;
                }
                if let Err(e) = self.ensure_replicas(&service, &env, &version, 0).await {
                    tracing::warn!(error = %e, "cannot stop a retired version");
                }
            }
        }
    }

    /// Tears down the routes of services and environments that were deleted: a delete stops
    /// what runs there (its replicas, drained first, and the router's listener) and forgets
    /// the route. The store refuses the delete while a rollout there is in progress.
    pub(super) async fn reap_removed(&self) {
        let removed = match self.store.removed_routes().await {
            Ok(r) => r,
            Err(e) => {
                if !self.stopped.load(Ordering::SeqCst) {
                    tracing::warn!(error = %e, "cannot read routes");
                }
                return;
            }
        };
        for (service, env) in removed {
            let guard = self.route_lock(&service, &env);
            // As in retire_due: never wait here; the next poll tries again.
            let Ok(_held) = guard.try_lock() else { continue };
            let key = (service.clone(), env.clone());
            // No new connection and no new request, so the drains below see only what is
            // already in flight.
            if let Err(e) = self.router.close(&service, &env).await {
                tracing::warn!(error = %e, service, env, "cannot close a removed route; trying again later");
                continue;
            }
            let port = self.store.route_state(&service, &env).await.ok().flatten().map(|s| s.port);
            let replicas: Vec<Instance> =
                self.runtime.running().into_iter().filter(|i| i.service == service && i.env == env).collect();
            for inst in &replicas {
                self.retire(inst).await;
            }
            if let Err(e) = self.router.forget(&service, &env).await {
                tracing::warn!(error = %e, service, env, "cannot drop a removed route from the router");
            }
            self.book().listening.remove(&key);
            self.book().failed_rolls.remove(&key);
            let ev = NewEvent::new(
                kinds::ROUTE_REMOVED,
                subject(&service),
                json!({"environment": env, "port": port, "stopped": replicas.len(),
                       "reason": "the service or the environment was deleted"}),
            );
            match self.store.delete_route(&service, &env, &[ev], &self.ctx()).await {
                Ok(()) => tracing::info!(service, env, stopped = replicas.len(), "route of a deleted resource removed"),
                Err(e) => tracing::warn!(error = %e, service, env, "cannot forget a removed route"),
            }
        }
    }

    /// The route's desired state, creating it (with a free port) the first time.
    pub(super) async fn route_state(&self, service: &str, env: &str) -> Result<RouteState, StepError> {
        if let Some(s) = self.store.route_state(service, env).await.map_err(|e| e.to_string())? {
            self.ensure_listener(service, env, s.port).await?;
            return Ok(s);
        }
        let used: HashSet<u16> =
            self.store.routes().await.map_err(|e| e.to_string())?.into_iter().map(|(_, _, s)| s.port).collect();
        // The router says which port it can bind: it is the one listening, wherever it runs.
        let mut port = None;
        for p in self.config.router_ports.clone().filter(|p| !used.contains(p)) {
            match self.router.listen(service, env, p).await {
                Ok(()) => {
                    port = Some(p);
                    break;
                }
                Err(e) if e.is_transient() => return Err(StepError::router(e)),
                Err(_) => continue,
            }
        }
        let port = port.ok_or_else(|| format!("no free router port in {:?}", self.config.router_ports))?;
        self.book().listening.insert((service.to_owned(), env.to_owned()));
        let state = RouteState { port, sticky: true, versions: Vec::new() };
        let ev = NewEvent::new(kinds::ROUTE_CREATED, subject(service), json!({"environment": env, "port": port}));
        self.store.save_route(service, env, &state, &[ev], &self.ctx()).await.map_err(|e| e.to_string())?;
        Ok(state)
    }

    pub(super) async fn ensure_listener(&self, service: &str, env: &str, port: u16) -> Result<(), StepError> {
        let key = (service.to_owned(), env.to_owned());
        if self.book().listening.contains(&key) {
            return Ok(());
        }
        self.router.listen(service, env, port).await.map_err(StepError::router)?;
        self.book().listening.insert(key);
        Ok(())
    }

    /// Points the router at the healthy replicas of the versions the desired state names.
    /// An error means the router may still route as before: whoever is about to stop a
    /// replica on the strength of this must not.
    pub(super) async fn apply(&self, service: &str, env: &str) -> Result<(), StepError> {
        match self.store.route_state(service, env).await {
            Ok(Some(state)) => self.apply_state(service, env, &state).await,
            Ok(None) => Ok(()),
            Err(e) => Err(StepError::Transient(format!("cannot read the route of {service} in {env}: {e}"))),
        }
    }

    /// As [`Engine::apply`], with the desired state in hand. Errors are logged here too, so
    /// callers with nothing at stake may ignore them.
    pub(super) async fn apply_state(&self, service: &str, env: &str, state: &RouteState) -> Result<(), StepError> {
        let running = self.runtime.running();
        let (unhealthy, surge, draining) = {
            let book = self.book();
            (book.unhealthy.clone(), book.surge.clone(), book.draining.clone())
        };
        let table = RouteTable {
            sticky: state.sticky,
            versions: state
                .versions
                .iter()
                .map(|v| VersionRoute {
                    version: v.version.clone(),
                    weight: v.weight,
                    backends: running
                        .iter()
                        .filter(|i| {
                            i.service == service
                                && i.env == env
                                && i.version == v.version
                                && (i.replica < v.replicas || surge.contains(&i.id))
                                && !unhealthy.contains(&i.id)
                                && !draining.contains(&i.id)
                        })
                        .map(Instance::addr)
                        .collect(),
                })
                .collect(),
        };
        match self.router.set(service, env, table).await {
            Ok(()) => Ok(()),
            // The router is away (restarting, say): it keeps its last table, and the next
            // check gives it every table again.
            Err(e) if e.is_transient() => {
                tracing::warn!(service, env, error = %e, "cannot update the router; it keeps its last table");
                self.book().router_boot = None;
                Err(StepError::router(e))
            }
            // It restarted and lost the route: serve it again, then set the table.
            Err(ControlError::Refused(m)) if m.starts_with("no route") => {
                self.book().listening.remove(&(service.to_owned(), env.to_owned()));
                self.ensure_listener(service, env, state.port).await?;
                Box::pin(self.apply_state(service, env, state)).await
            }
            Err(e) => {
                tracing::error!(service, env, error = %e, "route state is inconsistent");
                Err(StepError::router(e))
            }
        }
    }
}
