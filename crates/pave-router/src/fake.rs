//! A router that routes nothing, for unit tests of what steers a router (the delivery
//! engine): it keeps each route's port and table in memory, answers drains at once, can be
//! made unreachable (a router restarting) and can restart (a new boot id, every route lost,
//! as a router without its state file).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::RouteTable;
use crate::control::{BoxFuture, Control, ControlError, Hello, PROTOCOL, Reply, Request};

#[derive(Debug, Default)]
struct State {
    routes: BTreeMap<(String, String), (u16, RouteTable)>,
    /// Ports a listen is refused on (taken by something else).
    taken: BTreeSet<u16>,
    unreachable: bool,
    boot: u64,
    /// Every request that changed something, in order (`listen S E P`, `set S E`, ...).
    log: Vec<String>,
}

#[derive(Debug, Default)]
pub struct FakeRouter {
    state: Mutex<State>,
}

impl FakeRouter {
    pub fn new() -> Self {
        FakeRouter { state: Mutex::new(State { boot: 1, ..State::default() }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        pave_sync::lock(&self.state)
    }

    /// The table a route has now.
    pub fn table(&self, service: &str, env: &str) -> Option<RouteTable> {
        self.state().routes.get(&(service.to_owned(), env.to_owned())).map(|(_, t)| t.clone())
    }

    /// The port a route is served on.
    pub fn port(&self, service: &str, env: &str) -> Option<u16> {
        self.state().routes.get(&(service.to_owned(), env.to_owned())).map(|(p, _)| *p)
    }

    pub fn take_port(&self, port: u16) {
        self.state().taken.insert(port);
    }

    pub fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    /// Starts over: a new boot id and no routes.
    pub fn restart(&self) {
        let mut s = self.state();
        s.boot += 1;
        s.routes.clear();
    }

    pub fn log(&self) -> Vec<String> {
        self.state().log.clone()
    }

    fn handle(&self, req: Request) -> Result<Reply, ControlError> {
        let mut s = self.state();
        if s.unreachable {
            return Err(ControlError::Unreachable { path: "fake".into(), reason: "told to be away".into() });
        }
        let refused = |m: String| Ok(Reply::Refused { message: m });
        Ok(match req {
            Request::Hello => Reply::Hello(Hello {
                protocol: PROTOCOL,
                pid: 0,
                boot: s.boot,
                version: "fake".into(),
                routes: s.routes.len(),
            }),
            Request::Listen { service, env, port } => {
                let key = (service.clone(), env.clone());
                match s.routes.get(&key) {
                    Some((p, _)) if *p == port => {}
                    Some((p, _)) => return refused(format!("{service} in {env} is served on port {p}, not {port}")),
                    None if s.taken.contains(&port) => return refused(format!("port {port} is taken")),
                    None => {
                        s.routes.insert(key, (port, RouteTable::default()));
                        s.log.push(format!("listen {service} {env} {port}"));
                    }
                }
                Reply::Done
            }
            Request::Set { service, env, table } => {
                if let Err(e) = table.validate() {
                    return refused(e.to_string());
                }
                match s.routes.get_mut(&(service.clone(), env.clone())) {
                    Some(route) => route.1 = table,
                    None => return refused(format!("no route for {service} in {env}")),
                }
                s.log.push(format!("set {service} {env}"));
                Reply::Done
            }
            Request::Close { service, env } => {
                if let Some(route) = s.routes.get_mut(&(service.clone(), env.clone())) {
                    route.1 = RouteTable::default();
                }
                s.log.push(format!("close {service} {env}"));
                Reply::Done
            }
            Request::Forget { service, env } => {
                s.routes.remove(&(service.clone(), env.clone()));
                s.log.push(format!("forget {service} {env}"));
                Reply::Done
            }
            Request::Drain { .. } => Reply::Drained { drained: true },
            Request::Signals { service, env, .. } => {
                Reply::Signals { summaries: s.routes.contains_key(&(service, env)).then(Vec::new) }
            }
            Request::Table { service, env } => {
                Reply::Table { table: s.routes.get(&(service, env)).map(|r| r.1.clone()) }
            }
            Request::Shutdown => Reply::Done,
        })
    }
}

impl Control for FakeRouter {
    fn call(&self, req: Request) -> BoxFuture<'_, Result<Reply, ControlError>> {
        let reply = self.handle(req);
        Box::pin(async move { reply })
    }
}
