//! The proxy-wasm glue: the only module that talks to the host.
//!
//! The root context parses the plugin configuration once per VM (refusing to start on any
//! error, with a log line that names the field) and creates one [`GateStream`] per request.
//! A stream reads the request head, asks the [`Gate`], logs the decision and applies it: a
//! local reply for a denial, `Continue` otherwise.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use log::{error, info, warn};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::{Config, KeySource};
use crate::decision::{Decision, DenyReason};
use crate::gate::Gate;
use crate::jwks::KeySet;
use crate::request::RequestHead;

/// Registers the root context with the host. Called once per VM from `_initialize`.
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(GateRoot::default()) });
}

/// What every request of one plugin configuration shares.
struct Shared {
    gate: Gate,
    keys: KeySet,
}

#[derive(Default)]
struct GateRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for GateRoot {}

impl RootContext for GateRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::parse(&bytes) {
            Ok(config) => config,
            Err(problem) => {
                error!("invalid plugin configuration: {problem}");
                self.shared = None;
                return false;
            }
        };
        for skipped in &config.skipped_keys {
            warn!("jwks: ignoring {skipped}");
        }
        let KeySource::Inline(keys) = config.keys.clone();
        info!(
            "configured: paths={:?} issuer={:?} keys={}",
            config.paths,
            config.authenticator.policy.issuer,
            keys.len()
        );
        self.shared = Some(Rc::new(Shared {
            gate: Gate::new(&config),
            keys,
        }));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never `None`: the SDK panics on it. Without a configuration every guarded
        // decision fails closed (the host does not route traffic to an unconfigured plugin).
        Some(Box::new(GateStream {
            shared: self.shared.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct GateStream {
    shared: Option<Rc<Shared>>,
}

impl Context for GateStream {}

impl HttpContext for GateStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            error!("request before a valid configuration; refusing");
            self.reply(DenyReason::KeysUnavailable);
            return Action::Pause;
        };
        let head = RequestHead::new(
            self.get_http_request_headers_bytes()
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned())),
        );
        let now = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        match shared.gate.decide(&head, Some(&shared.keys), now) {
            Decision::Unguarded => Action::Continue,
            Decision::Allow(identity) => {
                info!(
                    "decision=allow path={} iss={} sub={}",
                    head.path(),
                    identity.claim_str("iss").unwrap_or("-"),
                    identity.claim_str("sub").unwrap_or("-"),
                );
                Action::Continue
            }
            Decision::Deny(reason) => {
                warn!(
                    "decision=deny reason={reason} status={} path={}",
                    reason.reply().status,
                    head.path()
                );
                self.reply(reason);
                Action::Pause
            }
        }
    }
}

impl GateStream {
    fn reply(&self, reason: DenyReason) {
        let reply = reason.reply();
        let mut headers = vec![("content-type", "text/plain; charset=utf-8")];
        if let Some(challenge) = reply.www_authenticate.as_deref() {
            headers.push(("www-authenticate", challenge));
        }
        self.send_http_response(reply.status, headers, Some(reply.body.as_bytes()));
    }
}
