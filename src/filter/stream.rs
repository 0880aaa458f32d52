//! One context per request: read the head, ask the gate, and apply its outcome: forward,
//! refuse, or park the request until a key fetch ends.

use std::rc::Rc;

use log::error;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::plugin::{ParkedRequest, Plugin};
use super::{apply, slots};
use crate::bench_repeat;
use crate::decision::{Outcome, Verdict};
use crate::deny::{DenyReason, Replies};
use crate::host::{Host, HostError};
use crate::request::RequestHead;

/// The request header on which the test-only `trap-canary` build traps.
#[cfg(feature = "trap-canary")]
const TRAP_HEADER: &str = "x-wsgate-trap";

pub(super) struct GateStream<H: Host> {
    context_id: u32,
    host: H,
    plugin: Option<Rc<Plugin<H>>>,
    /// Whether the request was guarded, so may be parked or an open socket: only then does
    /// its end touch the VM state (unrelated traffic pays nothing for the open sockets).
    guarded: bool,
}

impl<H: Host> GateStream<H> {
    pub(super) fn new(context_id: u32, host: H, plugin: Option<Rc<Plugin<H>>>) -> Self {
        GateStream {
            context_id,
            host,
            plugin,
            guarded: false,
        }
    }
}

impl<H: Host> Context for GateStream<H> {
    fn on_done(&mut self) -> bool {
        if let Some(plugin) = self.plugin.as_ref().filter(|_| self.guarded) {
            plugin.forget(self.context_id);
            slots::release(plugin, self.context_id, || self.host.now_ms());
        }
        true
    }
}

impl<H: Host> HttpContext for GateStream<H> {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(plugin) = self.plugin.clone() else {
            // The host does not route traffic to a plugin whose configuration failed; if it
            // ever does, fail closed.
            error!("request before a valid configuration; refusing");
            apply::reply(&self.host, &Replies::default(), DenyReason::KeysUnavailable);
            return Action::Pause;
        };
        let context_id = self.context_id;
        // Test-only (Cargo.toml's `trap-canary`): a VM that dies mid-request, for the
        // failure-policy test.
        #[cfg(feature = "trap-canary")]
        if matches!(self.host.request_header(TRAP_HEADER), Ok(Some(_))) {
            #[allow(clippy::panic)]
            {
                panic!("trap-canary: {TRAP_HEADER} present");
            }
        }
        // Most traffic through a listener is not to a guarded path: one header decides that.
        let path = bench_repeat::priced(cfg!(feature = "bench-repeat-path"), || {
            self.host.request_header(":path").map(|path| path.map(text))
        });
        let path = match path {
            Ok(path) => path.unwrap_or_default(),
            Err(refusal) => return unreadable(&plugin, context_id, &refusal),
        };
        let Some(rule) = plugin.settings.gate.rule_for(&path) else {
            return Action::Continue;
        };
        self.guarded = true;
        let head = bench_repeat::priced(cfg!(feature = "bench-repeat-headers"), || {
            self.host.request_headers().map(|headers| {
                RequestHead::new(headers.into_iter().map(|(name, value)| (name, text(value))))
            })
        });
        let head = match head {
            Ok(head) => head,
            Err(refusal) => return unreadable(&plugin, context_id, &refusal),
        };
        let now = bench_repeat::priced(cfg!(feature = "bench-repeat-clock"), || self.host.now_ms());
        // What a remote key set's version read costs (`JwksCache::current`, once a
        // request): the bench's keys are inline.
        bench_repeat::again(cfg!(feature = "bench-repeat-shared-read"), || {
            self.host.get_shared_data(bench_repeat::SHARED_ENTRY)
        });
        let outcome = plugin.decide(&rule, &head, now, true);
        if let (Verdict::AwaitKeys(wait, _), Some(provider)) = (&outcome.verdict, outcome.provider)
        {
            let request = ParkedRequest {
                head: head.clone(),
                rule: rule.into_owned(),
            };
            let parked = plugin.with_state(|state| {
                let provider = state.providers.get_mut(provider)?;
                provider.parked.park(context_id, request, *wait);
                Some(())
            });
            if parked.flatten().is_some() {
                apply::count_cache(&plugin, outcome.cache);
                return Action::Pause;
            }
        }
        if apply::outcome(&plugin, outcome, &head, context_id) {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

/// Refuses a request whose headers the host would not hand over: nothing about it can be
/// trusted, not even whether its path is guarded. Logged and counted as
/// `request_unreadable`.
fn unreadable<H: Host>(plugin: &Plugin<H>, context_id: u32, refusal: &HostError) -> Action {
    error!("request headers unreadable: {refusal}");
    let refused = Outcome::refused(DenyReason::RequestUnreadable, Default::default());
    apply::outcome(plugin, refused, &RequestHead::default(), context_id);
    Action::Pause
}

/// A header value as text: UTF-8 as it comes (no copy), anything else with U+FFFD.
fn text(value: Vec<u8>) -> String {
    String::from_utf8(value)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}
