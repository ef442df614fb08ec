//! Roles and what each may do, and who may change what: a role says what kind of change a
//! token may make; its scope (a user or a team) says on whose services. Roles are ordered:
//! each includes the rights of those below it.
//!
//! [`may`] is the one rule: an admin may do everything; a developer token scoped to a user or
//! a team changes only services owned by a team that user belongs to (or that team), unless
//! one of those teams is a platform team; an unscoped developer token (every token made
//! before scopes existed) keeps the rights it had, on every service. On top of ownership an
//! environment may name who deploys there and who approves there.

use serde::{Deserialize, Serialize};

use crate::catalog::{Environment, Team, TeamType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the catalog and the event log.
    Viewer,
    /// Also changes services and reports delivery events.
    Developer,
    /// Also changes teams and environments, manages tokens and reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "developer" => Some(Role::Developer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether a holder of `self` may do what needs `required`.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role needed to create, change or delete a catalog resource of `kind`.
pub fn role_to_write(kind: crate::Kind) -> Role {
    kind.info().write_role
}

/// Whom a token acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// No one in particular: a developer token keeps every developer right on every service.
    Unscoped,
    /// A person, by the identity teams list in `spec.members` (an e-mail address).
    User(String),
    /// A team, by name (a pipeline's token, say).
    Team(String),
}

impl Scope {
    /// `unscoped`, `user` or `team`: what the store keeps in `tokens.scope`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Unscoped => "unscoped",
            Scope::User(_) => "user",
            Scope::Team(_) => "team",
        }
    }

    /// The user's identity or the team's name.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Scope::Unscoped => None,
            Scope::User(s) | Scope::Team(s) => Some(s),
        }
    }

    /// The scope read back from its kind and subject; `None` if they do not fit together.
    pub fn from_parts(kind: &str, subject: Option<String>) -> Option<Scope> {
        match (kind, subject) {
            ("unscoped", None) => Some(Scope::Unscoped),
            ("user", Some(s)) => Some(Scope::User(s)),
            ("team", Some(s)) => Some(Scope::Team(s)),
            _ => None,
        }
    }
}

/// Written as `"scope": KIND` and, when it names one, `"user"` or `"team"`: the shape token
/// listings show (flattened into the token).
impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("scope", self.kind())?;
        if let Some(s) = self.subject() {
            map.serialize_entry(self.kind(), s)?;
        }
        map.end()
    }
}

/// What an unscoped token of `role` may do, said where tokens are listed.
pub fn unscoped_note(role: Role) -> Option<&'static str> {
    (role == Role::Developer).then_some(
        "unscoped: may change, release, deploy and set secrets of every team's service, as every developer \
         token could before ownership; to limit it to one team's services create a token with \
         `pave token create --user EMAIL` or `--team TEAM` and revoke this one",
    )
}

/// Whether `identity` is `member` as teams list members: e-mail addresses compare without case.
fn same_identity(identity: &str, member: &str) -> bool {
    identity.trim().eq_ignore_ascii_case(member.trim())
}

/// The caller as the ownership rule sees it: role, scope, and the teams the scope puts it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The token's name, for messages.
    pub token: String,
    pub role: Role,
    pub scope: Scope,
    /// Teams the caller acts for: a user's teams (those listing them as a member), or the
    /// token's team if it exists; each with whether it is a platform team.
    pub teams: Vec<(String, bool)>,
}

impl Access {
    /// Resolves the scope's teams against the catalog's `teams`.
    pub fn resolve<'a>(token: &str, role: Role, scope: Scope, teams: impl IntoIterator<Item = &'a Team>) -> Access {
        let platform = |t: &Team| t.spec.team_type == TeamType::Platform;
        let teams = match &scope {
            Scope::Unscoped => Vec::new(),
            Scope::User(user) => teams
                .into_iter()
                .filter(|t| t.spec.members.iter().any(|m| same_identity(user, m)))
                .map(|t| (t.metadata.name.clone(), platform(t)))
                .collect(),
            Scope::Team(name) => teams
                .into_iter()
                .filter(|t| t.metadata.name == *name)
                .map(|t| (t.metadata.name.clone(), platform(t)))
                .collect(),
        };
        Access { token: token.to_owned(), role, scope, teams }
    }

    /// Whether a scoped caller needs to know its teams at all (admins and unscoped tokens pass
    /// the ownership rule without them), so callers can skip reading the catalog.
    pub fn needs_teams(role: Role, scope: &Scope) -> bool {
        role == Role::Developer && *scope != Scope::Unscoped
    }

    fn team_names(&self) -> Vec<&str> {
        self.teams.iter().map(|(t, _)| t.as_str()).collect()
    }

    /// Whether one of `list` (team names or member identities) names this caller.
    fn listed_in(&self, list: &[String]) -> bool {
        list.iter().any(|who| {
            self.teams.iter().any(|(t, _)| t == who) || matches!(&self.scope, Scope::User(u) if same_identity(u, who))
        })
    }
}

/// Something a developer does to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceAct {
    /// Create or change its catalog entry.
    Change,
    Delete,
    PublishRelease,
    /// Deploy, undo, promote or resume a rollout: a version reaches the environment.
    Deploy,
    Approve,
    /// Pause or abort a rollout.
    Halt,
    /// Set or remove a secret.
    ChangeSecrets,
    /// Create, change, toggle or archive a feature flag owned by a team (directly, or through
    /// the service named as its owner).
    ChangeFlag,
}

impl ServiceAct {
    fn verb(self) -> &'static str {
        match self {
            ServiceAct::Change => "change",
            ServiceAct::Delete => "delete",
            ServiceAct::PublishRelease => "publish releases of",
            ServiceAct::Deploy => "deploy",
            ServiceAct::Approve => "approve deployments of",
            ServiceAct::Halt => "pause or abort rollouts of",
            ServiceAct::ChangeSecrets => "change secrets of",
            ServiceAct::ChangeFlag => "change flag",
        }
    }
}

/// What is acted on: a service (or a flag), its owning team and, for deployments, the
/// environment.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The service's name, or the flag's for [`ServiceAct::ChangeFlag`].
    pub service: &'a str,
    pub owner: &'a str,
    pub environment: Option<&'a Environment>,
}

/// A refusal, saying who was refused what and why, in words for the person refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token {token:?} may not {verb} {service}{env}: {why}", env = environment.as_ref().map(|e| format!(" in {e}")).unwrap_or_default())]
pub struct Denial {
    pub token: String,
    pub verb: &'static str,
    pub service: String,
    pub environment: Option<String>,
    pub why: String,
}

/// The ownership rule: may `access` do `act` to `target`?
pub fn may(access: &Access, act: ServiceAct, target: &Target<'_>) -> Result<(), Denial> {
    let deny = |why: String| Denial {
        token: access.token.clone(),
        verb: act.verb(),
        service: target.service.to_owned(),
        environment: target.environment.map(|e| e.metadata.name.clone()),
        why,
    };
    match access.role {
        Role::Admin => return Ok(()),
        Role::Viewer => return Err(deny("it has the viewer role, which only reads; this needs developer".into())),
        Role::Developer => {}
    }
    let platform = access.teams.iter().any(|(_, p)| *p);
    let owns = access.teams.iter().any(|(t, _)| t == target.owner);
    if !(access.scope == Scope::Unscoped || platform || owns) {
        let (service, owner) = (target.service, target.owner);
        return Err(deny(match &access.scope {
            Scope::User(user) => {
                let teams = access.team_names();
                let theirs = if teams.is_empty() {
                    format!("{user} is in no team")
                } else {
                    format!("{user} is a member of {}", teams.join(", "))
                };
                format!("{user} is not a member of team {owner}, which owns {service} ({theirs})")
            }
            Scope::Team(team) if access.teams.is_empty() => {
                format!("it acts for team {team}, which does not exist; {service} is owned by team {owner}")
            }
            Scope::Team(team) => format!("it acts for team {team}, and {service} is owned by team {owner}"),
            Scope::Unscoped => unreachable!("unscoped tokens pass the ownership check"),
        }));
    }
    let Some(env) = target.environment else { return Ok(()) };
    let (list, what) = match act {
        ServiceAct::Deploy => (&env.spec.deployers, "deploys"),
        ServiceAct::Approve => (&env.spec.approvers, "approvals"),
        _ => return Ok(()),
    };
    if list.is_empty() || access.listed_in(list) {
        return Ok(());
    }
    let allowed = format!("{} allows {what} only by {}", env.metadata.name, list.join(", "));
    Err(deny(match &access.scope {
        Scope::Unscoped => format!(
            "{allowed}, and the token is unscoped (it names no user or team); use a token made with \
             `pave token create --user EMAIL` or `--team TEAM`"
        ),
        Scope::User(user) => format!("{allowed}; {user} is neither listed nor a member of a listed team"),
        Scope::Team(team) => format!("{allowed}; team {team} is not listed"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{EnvironmentSpec, Metadata, TeamSpec};

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Developer));
        assert!(Role::Developer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Developer));
        assert!(!Role::Developer.allows(Role::Admin));
    }

    fn team(name: &str, platform: bool, members: &[&str]) -> Team {
        Team {
            metadata: Metadata { name: name.into(), ..Default::default() },
            spec: TeamSpec {
                team_type: if platform { TeamType::Platform } else { TeamType::StreamAligned },
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                ..Default::default()
            },
        }
    }

    fn env(name: &str, deployers: &[&str], approvers: &[&str]) -> Environment {
        Environment {
            metadata: Metadata { name: name.into(), ..Default::default() },
            spec: EnvironmentSpec {
                deployers: deployers.iter().map(|m| (*m).to_owned()).collect(),
                approvers: approvers.iter().map(|m| (*m).to_owned()).collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn scoped_tokens_change_only_what_their_teams_own() {
        let teams = [
            team("payments", false, &["alice@example.com"]),
            team("web", false, &["Bob@Example.com", "dave@example.com"]),
            team("platform", true, &["carol@example.com"]),
            team("sre", false, &["erin@example.com"]),
        ];
        let prod = env("production", &["sre", "dave@example.com"], &["sre"]);
        let open = env("dev", &[], &[]);
        let who = |role, scope| Access::resolve("t", role, scope, &teams);
        let user = |u: &str| who(Role::Developer, Scope::User(u.into()));
        let alice = user("alice@example.com");
        let bob = user("bob@example.com");
        let carol = user("carol@example.com");
        let dave = user("dave@example.com");
        let erin = user("erin@example.com");
        let stranger = user("zed@example.com");
        let ci_web = who(Role::Developer, Scope::Team("web".into()));
        let ci_gone = who(Role::Developer, Scope::Team("gone".into()));
        let legacy = who(Role::Developer, Scope::Unscoped);
        let admin = who(Role::Admin, Scope::Unscoped);
        let viewer = who(Role::Viewer, Scope::User("alice@example.com".into()));
        let checkout = |environment| Target { service: "checkout", owner: "payments", environment };
        let storefront = |environment| Target { service: "storefront", owner: "web", environment };
        use ServiceAct::*;
        // (caller, act, target, Ok or a piece of the denial)
        let cases: Vec<(&Access, ServiceAct, Target<'_>, Result<(), &str>)> = vec![
            (&alice, Change, checkout(None), Ok(())),
            (&alice, Delete, checkout(None), Ok(())),
            (&alice, ChangeSecrets, checkout(None), Ok(())),
            (&alice, Deploy, checkout(Some(&open)), Ok(())),
            (
                &bob,
                Change,
                checkout(None),
                Err(
                    "bob@example.com is not a member of team payments, which owns checkout (bob@example.com is a member of web)",
                ),
            ),
            (&bob, Deploy, checkout(Some(&open)), Err("may not deploy checkout in dev")),
            (&bob, PublishRelease, checkout(None), Err("may not publish releases of checkout")),
            (&bob, Change, storefront(None), Ok(())),
            (&stranger, Change, checkout(None), Err("zed@example.com is in no team")),
            (&ci_web, ChangeSecrets, storefront(None), Ok(())),
            (
                &ci_web,
                ChangeSecrets,
                checkout(None),
                Err("it acts for team web, and checkout is owned by team payments"),
            ),
            (&ci_gone, Change, storefront(None), Err("team gone, which does not exist")),
            (&carol, Delete, checkout(None), Ok(())),
            (&carol, Deploy, storefront(Some(&open)), Ok(())),
            (&legacy, Change, checkout(None), Ok(())),
            (&legacy, Deploy, checkout(Some(&open)), Ok(())),
            (&admin, Delete, checkout(Some(&prod)), Ok(())),
            (&admin, Deploy, checkout(Some(&prod)), Ok(())),
            (&viewer, Change, checkout(None), Err("viewer role")),
            // Production: deployers and approvers restrict further.
            (
                &alice,
                Deploy,
                checkout(Some(&prod)),
                Err("production allows deploys only by sre, dave@example.com; alice@example.com is neither listed"),
            ),
            (&alice, Halt, checkout(Some(&prod)), Ok(())),
            (&alice, ChangeSecrets, checkout(Some(&prod)), Ok(())),
            (&dave, Deploy, storefront(Some(&prod)), Ok(())),
            (&dave, Deploy, checkout(Some(&prod)), Err("not a member of team payments")),
            (&dave, Approve, storefront(Some(&prod)), Err("production allows approvals only by sre")),
            (&erin, Deploy, checkout(Some(&prod)), Err("not a member of team payments")),
            (&carol, Deploy, checkout(Some(&prod)), Err("production allows deploys only by sre")),
            (&legacy, Deploy, checkout(Some(&prod)), Err("the token is unscoped")),
            (&legacy, Approve, checkout(Some(&prod)), Err("the token is unscoped")),
            (&ci_web, Deploy, storefront(Some(&prod)), Err("team web is not listed")),
            (
                &bob,
                ChangeFlag,
                checkout(Some(&prod)),
                Err("may not change flag checkout in production: bob@example.com is not a member of team payments"),
            ),
            (&alice, ChangeFlag, checkout(Some(&prod)), Ok(())),
        ];
        for (i, (access, act, target, want)) in cases.iter().enumerate() {
            let got = may(access, *act, target);
            match (want, &got) {
                (Ok(()), Ok(())) => {}
                (Err(piece), Err(d)) => assert!(d.to_string().contains(piece), "case {i}: {d} lacks {piece:?}"),
                _ => panic!("case {i}: {:?} {act:?} {}: got {got:?}, want {want:?}", access.scope, target.service),
            }
        }
        let sre = Access::resolve("ci", Role::Developer, Scope::User("erin@example.com".into()), &teams);
        let platform_sre = Access { teams: vec![("sre".into(), false), ("platform".into(), true)], ..sre };
        assert_eq!(may(&platform_sre, Deploy, &checkout(Some(&prod))), Ok(()));
        assert_eq!(may(&platform_sre, Approve, &checkout(Some(&prod))), Ok(()));
    }

    #[test]
    fn scopes_round_trip_and_unscoped_developers_are_told_what_they_may_do() {
        for s in [Scope::Unscoped, Scope::User("a@b.c".into()), Scope::Team("web".into())] {
            assert_eq!(Scope::from_parts(s.kind(), s.subject().map(str::to_owned)), Some(s));
        }
        assert_eq!(Scope::from_parts("user", None), None);
        assert!(unscoped_note(Role::Developer).is_some_and(|n| n.contains("every team's service")));
        assert_eq!(unscoped_note(Role::Admin), None);
        assert!(!Access::needs_teams(Role::Admin, &Scope::User("a".into())));
        assert!(Access::needs_teams(Role::Developer, &Scope::Team("web".into())));
    }
}
