//! The end of a rollout: its final state, and the deployment reported to DORA.

use super::*;

impl<R: Runtime> Engine<R> {
    /// Ends a rollout and reports the deployment to DORA (an undo also marks the rollout it
    /// undid as rolled back, which DORA counts as a failure recovered by this one).
    pub(super) async fn finish(&self, r: &Rollout, end: RolloutState) {
        let now = self.now();
        let kind = match end {
            RolloutState::Succeeded => kinds::DEPLOYMENT_SUCCEEDED,
            RolloutState::Aborted => kinds::DEPLOYMENT_ABORTED,
            _ => kinds::DEPLOYMENT_FAILED,
        };
        let finished = self
            .modify(r.id, |r| {
                r.state = end;
                r.finished_at = Some(Timestamp(now));
                vec![NewEvent::new(
                    kind,
                    subject(&r.service),
                    json!({"environment": r.environment, "version": r.version, "from": r.from_version, "reason": r.reason}),
                )]
            })
            .await;
        let Ok(r) = finished else { return };
        // A failure users saw (the new version had traffic) that the revert recovered from is a
        // rollback to DORA, recovered when the revert ended; one that never took traffic is
        // a failed deployment.
        let status = match end {
            RolloutState::Succeeded => DeploymentStatus::Succeeded,
            _ if r.failed_in_traffic() => DeploymentStatus::RolledBack,
            _ => DeploymentStatus::Failed,
        };
        let mut reports = vec![Report::Deployment(deployment_fact(&r, status, now))];
        if r.kind == RolloutKind::Undo && end == RolloutState::Succeeded {
            let undone = self
                .store
                .rollouts(Some(&r.service), Some(&r.environment), 1000)
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|o| {
                    o.id < r.id && Some(&o.version) == r.from_version.as_ref() && o.state == RolloutState::Succeeded
                });
            if let Some(u) = undone {
                let by = r.requested_by.clone();
                if let Ok(u) = self
                    .modify(u.id, |u| {
                        u.state = RolloutState::RolledBack;
                        vec![NewEvent::new(
                            kinds::DEPLOYMENT_ROLLED_BACK,
                            subject(&u.service),
                            json!({"environment": u.environment, "version": u.version, "by": by, "undoRollout": r.id}),
                        )]
                    })
                    .await
                {
                    let finished_at = u.finished_at.map_or(now, |t| t.0);
                    reports.push(Report::Deployment(deployment_fact(&u, DeploymentStatus::RolledBack, finished_at)));
                }
            }
        }
        if let Err(e) = self.store.report(&reports, &self.ctx()).await {
            tracing::warn!(error = %e, "cannot report a finished deployment to DORA");
        }
        tracing::info!(rollout = r.id, service = %r.service, env = %r.environment, version = %r.version, state = end.as_str(), "rollout finished");
    }
}

fn deployment_fact(r: &Rollout, status: DeploymentStatus, finished_at: i64) -> Deployment {
    Deployment {
        id: format!("pave-rollout-{}", r.id),
        service: r.service.clone(),
        environment: r.environment.clone(),
        version: r.version.clone(),
        commit: r.commit.clone(),
        previous_commit: None,
        commits: Vec::new(),
        started_at: r.created_at,
        finished_at: Timestamp(finished_at),
        status,
        kind: if r.kind == RolloutKind::Undo { DeploymentKind::Unplanned } else { DeploymentKind::Planned },
    }
}
