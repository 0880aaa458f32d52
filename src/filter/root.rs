//! One root context per VM: configuration, then on each tick the host's log level, key
//! fetching, parked requests and expired sockets; and the answers to its key fetches.

use std::rc::Rc;
use std::time::Duration;

use log::error;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::log_level::LogLevel;
use super::plugin::{Plugin, TICK};
use super::stream::GateStream;
use super::{expiry, key_fetch, resume, slots};
use crate::host::Host;

/// At most this many streams are answered, resumed or reset in one call into the root
/// context. Envoy runs a stream's callbacks into the VM within such a host call, and V8's
/// stack did not survive about a thousand of those in one call (`RangeError: Maximum call
/// stack size exceeded` from `proxy_on_log`, which killed the VM; measured with Envoy 1.40
/// resetting expired sockets: between 800 and 1024). More wait for the next tick, which then
/// comes after [`BACKLOG_TICK`] instead of the usual period.
pub(super) const CALL_BUDGET: usize = 256;

/// The tick period while more streams wait than one call may handle: 8000 sockets expiring
/// together are closed in 32 ticks. (128 on 5 ms ticks closed the last of 8000 1.8 s after
/// `exp` at the client, too near the 2 s bound; Envoy's 1 s delayed close is in both.)
pub(super) const BACKLOG_TICK: Duration = Duration::from_millis(1);

pub(super) struct GateRoot<H: Host> {
    context_id: u32,
    host: H,
    /// `None` until a configuration is accepted.
    plugin: Option<Rc<Plugin<H>>>,
    log_level: LogLevel,
    /// Whether ticks come every [`BACKLOG_TICK`], while streams wait for the root context.
    backlog: bool,
}

impl<H: Host + Clone> GateRoot<H> {
    pub(super) fn new(context_id: u32, host: H) -> Self {
        GateRoot {
            context_id,
            host,
            plugin: None,
            log_level: LogLevel::default(),
            backlog: false,
        }
    }

    /// The configured plugin, for tests that drive it directly.
    #[cfg(test)]
    pub(super) fn plugin(&self) -> Option<Rc<Plugin<H>>> {
        self.plugin.clone()
    }

    /// The context of a new request.
    pub(super) fn stream(&self, context_id: u32) -> GateStream<H> {
        GateStream::new(context_id, self.host.clone(), self.plugin.clone())
    }
}

impl<H: Host> GateRoot<H> {
    /// Ticks every [`BACKLOG_TICK`] while streams wait (`backlog`), else every [`TICK`].
    fn pace(&mut self, backlog: bool) {
        if backlog == self.backlog {
            return;
        }
        let period = if backlog { BACKLOG_TICK } else { TICK };
        match self.host.set_tick_period(period) {
            Ok(()) => self.backlog = backlog,
            Err(refusal) => error!("tick period not changed: {refusal}"),
        }
    }
}

impl<H: Host + Clone> Context for GateRoot<H> {
    fn on_http_call_response(
        &mut self,
        call: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        key_fetch::on_answer(&plugin, call, num_headers, body_size);
        let (_, more) = resume::resolve(&plugin, self.context_id, self.host.now_ms(), CALL_BUDGET);
        if more {
            self.pace(true);
        }
    }
}

impl<H: Host + Clone + 'static> RootContext for GateRoot<H> {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.log_level.follow(&self.host);
        match Plugin::configure(self.host.clone()) {
            Ok(plugin) => {
                self.plugin = Some(plugin);
                true
            }
            Err(problem) => {
                error!("{problem}");
                self.plugin = None;
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.log_level.follow(&self.host);
        let Some(plugin) = &self.plugin else { return };
        let now = self.host.now_ms();
        key_fetch::on_tick(plugin, now);
        slots::on_tick(plugin, now);
        let (decided, parked) = resume::resolve(plugin, self.context_id, now, CALL_BUDGET);
        let budget = CALL_BUDGET.saturating_sub(decided);
        let expired = expiry::close_expired(plugin, self.context_id, now, budget);
        self.pace(parked || expired);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never `None`: the SDK panics on it.
        Some(Box::new(self.stream(context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
