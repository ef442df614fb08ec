//! What a report (or the change timeline) looks at when the caller names no environment, a
//! team, or a service: the rules the server applies before it asks for figures.

use std::collections::HashSet;

/// The environments whose deployments count when none is named: every production one.
/// `Err` when no environment is marked production (the caller must mark one or name one).
pub fn default_environments<'a>(
    environments: impl IntoIterator<Item = (&'a str, bool)>,
) -> Result<Vec<String>, String> {
    let prod: Vec<String> =
        environments.into_iter().filter(|(_, production)| *production).map(|(name, _)| name.to_owned()).collect();
    if prod.is_empty() {
        return Err(
            "no environment is marked production; mark one (spec.production: true) or pass environment=".to_owned()
        );
    }
    Ok(prod)
}

/// The services whose facts count (`None`: every one) and the teams whose flags' changes
/// count (`None`: every team's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub services: Option<HashSet<String>>,
    pub flag_owners: Option<HashSet<String>>,
}

impl Scope {
    /// The whole organisation.
    pub fn all() -> Scope {
        Scope::default()
    }

    /// A team: the services it owns, and its own flags.
    pub fn team(team: &str, owned_services: impl IntoIterator<Item = String>) -> Scope {
        Scope {
            services: Some(owned_services.into_iter().collect()),
            flag_owners: Some([team.to_owned()].into_iter().collect()),
        }
    }

    /// A service: its own facts, and the flags of the team that owns it (a flag flip by the
    /// owning team changes what the service does as surely as its deployments).
    pub fn service(service: &str, owner: &str) -> Scope {
        Scope {
            services: Some([service.to_owned()].into_iter().collect()),
            flag_owners: Some([owner.to_owned()].into_iter().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_every_production_environment() {
        let envs = [("dev", false), ("prod-eu", true), ("staging", false), ("prod-us", true)];
        assert_eq!(default_environments(envs).expect("two"), ["prod-eu", "prod-us"]);
        let err = default_environments([("dev", false)]).expect_err("none is production");
        assert!(err.contains("spec.production: true"), "{err}");
        assert!(default_environments([]).is_err());
    }

    #[test]
    fn a_team_or_a_service_bounds_services_and_flag_owners() {
        let t = Scope::team("core", ["api".to_owned(), "web".to_owned()]);
        assert_eq!(t.services.as_ref().map(HashSet::len), Some(2));
        assert!(t.flag_owners.as_ref().is_some_and(|o| o.contains("core") && o.len() == 1));
        let s = Scope::service("api", "core");
        assert!(s.services.as_ref().is_some_and(|x| x.contains("api") && x.len() == 1));
        assert!(s.flag_owners.as_ref().is_some_and(|o| o.contains("core")));
        assert_eq!(Scope::all(), Scope { services: None, flag_owners: None });
    }
}
