//! Replicas: their runtime spec (secrets opened, artifact verified), starting, scaling and
//! retiring them.

use super::*;

impl<R: Runtime> Engine<R> {
    /// The runtime spec of one replica, from the service's runtime spec, its secrets and the
    /// release's verified artifact.
    pub(super) async fn spec(
        &self,
        service: &str,
        env: &str,
        version: &str,
        replica: u32,
    ) -> Result<ReplicaSpec, String> {
        self.spec_with(service, env, version, replica, true).await
    }

    /// As [`Engine::spec`]; with `strict` false, secrets that cannot be opened are left out
    /// (with a warning) instead of failing: a running replica to adopt already has them, and
    /// stopping it would turn a key problem into an outage.
    pub(super) async fn spec_with(
        &self,
        service: &str,
        env: &str,
        version: &str,
        replica: u32,
        strict: bool,
    ) -> Result<ReplicaSpec, String> {
        let svc = match self.store.get(Kind::Service, service).await.map_err(|e| e.to_string())? {
            Some(s) => match s.resource {
                Resource::Service(s) => s,
                _ => return Err(format!("{service} is not a service")),
            },
            None => return Err(format!("service {service} no longer exists")),
        };
        let rt = svc.spec.runtime.ok_or_else(|| format!("service {service} has no runtime spec"))?;
        let release = self
            .store
            .release(service, version)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("release {service} {version} does not exist"))?;
        let artifacts = self.artifacts.clone();
        let digest = release.digest.clone();
        let cwd = tokio::task::spawn_blocking(move || artifacts.verify(&digest))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("artifact of {service} {version}: {e}"))?;
        let ms = |s: &str| parse_duration(s).map(Duration::from_millis);
        let sealed = self.store.sealed_secrets(service, env).await.map_err(|e| e.to_string())?;
        let mut secrets = std::collections::BTreeMap::new();
        let mut opened = || -> Result<(), String> {
            if sealed.secrets.is_empty() {
                return Ok(());
            }
            let key = self.config.master_key.as_ref().ok_or_else(|| {
                format!("{service} has secrets in {env}, but this control plane has no master key to open them")
            })?;
            for s in &sealed.secrets {
                let at = pave_vault::SecretRef { service, environment: env, name: &s.name, version: s.version };
                secrets.insert(s.name.clone(), key.open(&at, &s.sealed).map_err(|e| e.to_string())?);
            }
            Ok(())
        };
        let mut config_rev = sealed.revision;
        match opened() {
            Ok(()) => {}
            Err(e) if strict => return Err(e),
            Err(e) => {
                // Should it crash and restart, it would run without its secrets: its revision
                // says it is behind, so a roll (which opens them, or fails and says so) follows.
                tracing::warn!(service, env, error = %e, "adopting a replica without opening its secrets");
                secrets.clear();
                config_rev = -1;
            }
        }
        Ok(ReplicaSpec {
            service: service.to_owned(),
            env: env.to_owned(),
            version: version.to_owned(),
            replica,
            program: rt.command.clone(),
            args: rt.args.clone(),
            cwd,
            vars: rt.env.clone(),
            secrets,
            config_rev,
            port_env: rt.port_env.clone(),
            health: Health {
                path: rt.health_check.path.clone(),
                interval: ms(&rt.health_check.interval)?,
                timeout: ms(&rt.health_check.timeout)?,
                threshold: rt.health_check.healthy_threshold,
            },
            start_timeout: ms(&rt.start_timeout)?,
            stop_timeout: ms(&rt.stop_timeout)?,
        })
    }

    pub(super) fn instances_of(&self, service: &str, env: &str, version: &str) -> Vec<Instance> {
        self.runtime
            .running()
            .into_iter()
            .filter(|i| i.service == service && i.env == env && i.version == version)
            .collect()
    }

    /// Makes exactly `replicas` healthy replicas of `version` run; extra ones are taken out
    /// of the router, drained and stopped.
    pub(super) async fn ensure_replicas(
        &self,
        service: &str,
        env: &str,
        version: &str,
        replicas: u32,
    ) -> Result<(), StepError> {
        let have = self.instances_of(service, env, version);
        for idx in 0..replicas {
            if have.iter().any(|i| i.replica == idx) {
                continue;
            }
            self.start_replica(service, env, version, idx, false).await?;
        }
        let mut extra: Vec<Instance> = have.into_iter().filter(|i| i.replica >= replicas).collect();
        extra.sort_by_key(|i| std::cmp::Reverse(i.replica));
        if !extra.is_empty() {
            // The desired state already excludes them: this table has none of them. Until the
            // router has it, they may still get traffic, so they are not stopped.
            self.apply(service, env).await?;
        }
        for inst in extra {
            self.retire(&inst).await;
        }
        Ok(())
    }

    /// Drains and stops a replica the router no longer uses.
    pub(super) async fn retire(&self, inst: &Instance) {
        match self.router.drain(&inst.service, &inst.env, inst.addr(), self.config.drain_timeout).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(id = %inst.id, "requests still in flight after the drain timeout; stopping anyway")
            }
            Err(e) => tracing::warn!(id = %inst.id, error = %e, "cannot drain through the router; stopping anyway"),
        }
        let outcome = self.runtime.stop(&inst.id).await;
        let _ = self.store.delete_instance(&inst.id).await;
        self.book().unhealthy.remove(&inst.id);
        self.book().surge.remove(&inst.id);
        self.event(
            kinds::REPLICA_STOPPED,
            &inst.service,
            json!({"environment": inst.env, "version": inst.version, "replica": inst.replica,
                   "outcome": outcome.map(|o| serde_json::to_value(o).unwrap_or_default()).unwrap_or_else(|e| json!(e.to_string()))}),
        )
        .await;
    }
}
