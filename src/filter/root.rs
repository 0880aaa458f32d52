//! One root context per VM: configuration, then on each tick the host's log level, key
//! fetching, parked requests and expired sockets; and the answers to its key fetches.

use std::rc::Rc;

use log::error;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::log_level::LogLevel;
use super::plugin::{Plugin, TICK};
use super::stream::GateStream;
use super::{expiry, fetching, waiters};
use crate::host::Host;

pub(super) struct GateRoot<H: Host> {
    context_id: u32,
    host: H,
    /// `None` until a configuration is accepted.
    plugin: Option<Rc<Plugin<H>>>,
    log_level: LogLevel,
    /// Whether ticks come every [`expiry::BACKLOG_TICK`], while expired sockets wait.
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

impl<H: Host + Clone> Context for GateRoot<H> {
    fn on_http_call_response(
        &mut self,
        call: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(plugin) = &self.plugin else { return };
        fetching::on_answer(plugin, call, num_headers, body_size);
        waiters::resolve(plugin, self.context_id, self.host.now_ms());
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
        fetching::on_tick(plugin, now);
        waiters::resolve(plugin, self.context_id, now);
        let backlog = expiry::close_expired(plugin, self.context_id, now);
        if backlog != self.backlog {
            let period = if backlog { expiry::BACKLOG_TICK } else { TICK };
            match self.host.set_tick_period(period) {
                Ok(()) => self.backlog = backlog,
                Err(refusal) => error!("tick period not changed: {refusal}"),
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never `None`: the SDK panics on it.
        Some(Box::new(self.stream(context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
