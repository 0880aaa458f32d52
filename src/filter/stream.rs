//! One context per request: read the head, ask the gate, apply or park.

use std::rc::Rc;

use log::error;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::{now_ms, verdict, Keys, Plugin};
use crate::decision::{Decision, Denial, DenyReason};
use crate::keys::jwks_cache::Trigger;
use crate::request::RequestHead;

pub(super) struct GateStream {
    context_id: u32,
    plugin: Option<Rc<Plugin>>,
}

impl GateStream {
    pub(super) fn new(context_id: u32, plugin: Option<Rc<Plugin>>) -> Self {
        GateStream { context_id, plugin }
    }

    fn head(&self) -> RequestHead {
        RequestHead::new(
            self.get_http_request_headers_bytes()
                .into_iter()
                .map(|(name, value)| (name, text(value))),
        )
    }
}

impl Context for GateStream {
    fn on_done(&mut self) -> bool {
        if let Some(plugin) = &self.plugin {
            plugin.forget(self.context_id);
        }
        true
    }
}

impl HttpContext for GateStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(plugin) = self.plugin.clone() else {
            // The host does not route traffic to a plugin whose configuration failed; if it
            // ever does, fail closed.
            error!("request before a valid configuration; refusing");
            verdict::reply(DenyReason::KeysUnavailable);
            return Action::Pause;
        };
        // Most traffic through a listener is not to a guarded path: one header decides that.
        let path = self
            .get_http_request_header_bytes(":path")
            .map(text)
            .unwrap_or_default();
        if !plugin.gate.guards_path(&path) {
            return Action::Continue;
        }
        let head = self.head();
        let now = now_ms();
        let decision = plugin.decide(&head, now);

        if let Some((trigger, completed, deadline_ms)) = wait_for_keys(&plugin, &decision, now) {
            if let Ok(mut waiters) = plugin.waiters.try_borrow_mut() {
                waiters.park(self.context_id, head, trigger, completed, deadline_ms);
                return Action::Pause;
            }
        }
        if verdict::enforce(&plugin, &decision, &head, self.context_id) {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

/// A header value as text: UTF-8 as it comes (no copy), anything else with U+FFFD.
fn text(value: Vec<u8>) -> String {
    String::from_utf8(value)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// When `decision` lacks keys that a fetch may bring: what to wait for, the fetch attempts
/// finished so far and the deadline, for [`Parked::park`](crate::keys::parked::Parked::park).
fn wait_for_keys(plugin: &Plugin, decision: &Decision, now: u64) -> Option<(Trigger, u64, u64)> {
    let trigger = match decision {
        Decision::Deny(Denial {
            reason: DenyReason::KeysUnavailable,
            ..
        }) => Trigger::Scheduled,
        Decision::Deny(Denial {
            reason: DenyReason::UnknownKey,
            ..
        }) => Trigger::UnknownKey,
        _ => return None,
    };
    let Keys::Remote(cache) = &plugin.keys else {
        return None;
    };
    let cache = cache.try_borrow().ok()?;
    let completed = cache.worth_waiting(trigger, now)?;
    Some((trigger, completed, now.saturating_add(cache.lease_ms())))
}
