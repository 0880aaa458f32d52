//! What an Envoy test runs against: a real Envoy, the WebSocket echo upstream behind it, and
//! the issuers it fetches keys from, all on loopback with free ports, each stopped when the
//! stack is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::echo::Echo;
use crate::envoy::{self, Envoy};
use crate::issuer::Issuer;

/// An Envoy, its upstream and its issuers.
pub struct Stack {
    pub envoy: Envoy,
    pub echo: Echo,
    /// Each issuer under the name of the Envoy cluster that reaches it.
    issuers: Vec<(String, Issuer)>,
    /// Envoy's access log, when the stack has one ([`Stack::logged`]).
    access_log: Option<PathBuf>,
}

impl Stack {
    /// A fresh echo upstream, then Envoy with `workers` worker threads on the bootstrap
    /// `build` makes for the echo's address, with a cluster added for each of `issuers`
    /// (named as given).
    pub fn start(
        issuers: Vec<(&str, Issuer)>,
        workers: usize,
        build: impl FnOnce(SocketAddr) -> Value,
    ) -> Stack {
        let echo = Echo::start();
        let mut bootstrap = build(echo.addr());
        for (name, issuer) in &issuers {
            envoy::add_cluster(&mut bootstrap, name, issuer.addr());
        }
        let envoy = Envoy::start_with(&bootstrap, workers);
        Stack::around(envoy, echo, issuers)
    }

    /// [`Stack::start`] with an access log in `format` to a fresh file under the system temp
    /// directory ([`Stack::access_log`]).
    pub fn logged(
        issuers: Vec<(&str, Issuer)>,
        workers: usize,
        format: &str,
        build: impl FnOnce(SocketAddr) -> Value,
    ) -> Stack {
        let path = std::env::temp_dir().join(format!(
            "wsgate-access-{}-{}.log",
            std::process::id(),
            crate::now_nanos()
        ));
        let mut stack = Stack::start(issuers, workers, |upstream| {
            let mut bootstrap = build(upstream);
            envoy::add_access_log(&mut bootstrap, &path, format);
            bootstrap
        });
        stack.access_log = Some(path);
        stack
    }

    /// [`Stack::start`] with the built wsgate module as the one filter, configured with
    /// `plugin`.
    pub fn gate(plugin: &Value, issuers: Vec<(&str, Issuer)>, workers: usize) -> Stack {
        Stack::start(issuers, workers, |upstream| {
            envoy::gate_bootstrap(upstream, plugin)
        })
    }

    /// An Envoy the caller started (from a shipped file, say) in front of `echo`, with the
    /// `issuers` its configuration names.
    pub fn around(envoy: Envoy, echo: Echo, issuers: Vec<(&str, Issuer)>) -> Stack {
        Stack {
            envoy,
            echo,
            issuers: issuers
                .into_iter()
                .map(|(name, issuer)| (name.to_owned(), issuer))
                .collect(),
            access_log: None,
        }
    }

    /// The issuer behind cluster `name`; panics, naming it, when there is none.
    pub fn issuer(&self, name: &str) -> &Issuer {
        self.issuers
            .iter()
            .find(|(cluster, _)| cluster == name)
            .map(|(_, issuer)| issuer)
            .unwrap_or_else(|| panic!("no issuer behind cluster {name:?}"))
    }

    /// Every issuer, in the order given.
    pub fn issuers(&self) -> impl Iterator<Item = &Issuer> {
        self.issuers.iter().map(|(_, issuer)| issuer)
    }

    /// Envoy's access log; panics when the stack was not started [`Stack::logged`].
    pub fn access_log(&self) -> &Path {
        self.access_log
            .as_deref()
            .unwrap_or_else(|| panic!("this stack has no access log: start it with Stack::logged"))
    }

    /// Envoy's listener.
    pub fn listener(&self) -> SocketAddr {
        self.envoy.listener()
    }
}
