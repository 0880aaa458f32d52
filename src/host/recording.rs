//! An in-memory [`Host`] for native tests: it holds requests, shared data, metrics and the
//! answer to a call, records every effect the glue asks for, and refuses the calls a test
//! names.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use super::{Host, HostError, HostStatus, MetricKind};

/// One effect the glue asked of the host, and the context it was asked in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    SetHeader {
        context: u32,
        name: String,
        value: Option<String>,
    },
    SetProperty {
        context: u32,
        path: String,
        value: String,
    },
    Reply {
        context: u32,
        status: u32,
        headers: Vec<(String, String)>,
        body: String,
    },
    Resume(u32),
    Reset(u32),
    Dispatch {
        call: u32,
        cluster: String,
        authority: String,
        path: String,
        timeout: Duration,
    },
    TickPeriod(Duration),
}

#[derive(Default)]
struct World {
    now_ms: u64,
    configuration: Vec<u8>,
    plugin_name: String,
    log_level: Option<log::LevelFilter>,
    /// Live requests by context id: their headers.
    requests: BTreeMap<u32, Vec<(String, String)>>,
    effective: u32,
    effects: Vec<Effect>,
    /// Call names (`set_map_value`) or a call with its argument (`set_map_value:x-sub`)
    /// to refuse.
    refuse: HashSet<String>,
    next_call: u32,
    answer_status: Option<String>,
    answer_body: Vec<u8>,
    shared: BTreeMap<String, (Vec<u8>, u32)>,
    metrics: Vec<(String, MetricKind, i64)>,
    /// Answers foreign-function calls; none: `NotFound`, as a host without them.
    foreign: Option<Foreign>,
    foreign_calls: usize,
    /// Every call the glue made, by its ABI name, in order (`take_calls`).
    calls: Vec<&'static str>,
}

/// How a test's host answers a foreign-function call.
pub(crate) type Foreign = Rc<dyn Fn(&str, &[u8]) -> Result<Vec<u8>, HostError>>;

/// A shared handle on one recorded host: clones see the same world, as every context of a
/// VM sees the same Envoy.
#[derive(Clone, Default)]
pub(crate) struct Recording(Rc<RefCell<World>>);

impl Recording {
    pub fn new(configuration: &str, now_ms: u64) -> Self {
        let host = Recording::default();
        {
            let mut world = host.0.borrow_mut();
            world.configuration = configuration.as_bytes().to_vec();
            world.now_ms = now_ms;
            world.plugin_name = "wsgate".to_owned();
            world.log_level = Some(log::LevelFilter::Info);
            world.next_call = 1;
        }
        host
    }

    /// The log level the host answers from now on (`None`: it cannot tell).
    pub fn set_log_level(&self, level: Option<log::LevelFilter>) {
        self.0.borrow_mut().log_level = level;
    }

    pub fn set_now(&self, now_ms: u64) {
        self.0.borrow_mut().now_ms = now_ms;
    }

    /// A new request on `context`, made effective (as the host does for its callback).
    pub fn request(&self, context: u32, headers: &[(&str, &str)]) {
        let mut world = self.0.borrow_mut();
        let headers = headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        world.requests.insert(context, headers);
        world.effective = context;
    }

    /// The request on `context` ends.
    pub fn end(&self, context: u32) {
        self.0.borrow_mut().requests.remove(&context);
    }

    /// Makes `context` effective, as the host does before a callback.
    pub fn enter(&self, context: u32) {
        self.0.borrow_mut().effective = context;
    }

    /// Refuses from now on every call named `call` (or `call:argument`).
    pub fn refuse(&self, call: &str) {
        self.0.borrow_mut().refuse.insert(call.to_owned());
    }

    /// The answer the next `call_response_*` reads.
    pub fn answer(&self, status: &str, body: &str) {
        let mut world = self.0.borrow_mut();
        world.answer_status = Some(status.to_owned());
        world.answer_body = body.as_bytes().to_vec();
    }

    /// Every effect so far, and forgets them.
    pub fn take_effects(&self) -> Vec<Effect> {
        std::mem::take(&mut self.0.borrow_mut().effects)
    }

    /// The headers of the request on `context` now.
    pub fn headers(&self, context: u32) -> Vec<(String, String)> {
        self.0
            .borrow()
            .requests
            .get(&context)
            .cloned()
            .unwrap_or_default()
    }

    /// The value of metric `name` (0 when never moved).
    pub fn metric(&self, name: &str) -> i64 {
        self.0
            .borrow()
            .metrics
            .iter()
            .find(|(metric, _, _)| metric == name)
            .map_or(0, |(_, _, value)| *value)
    }

    /// The names of every metric defined so far.
    pub fn metric_names(&self) -> Vec<String> {
        self.0
            .borrow()
            .metrics
            .iter()
            .map(|(name, ..)| name.clone())
            .collect()
    }

    /// Answers foreign-function calls with `answer` from now on.
    pub fn foreign(&self, answer: impl Fn(&str, &[u8]) -> Result<Vec<u8>, HostError> + 'static) {
        self.0.borrow_mut().foreign = Some(Rc::new(answer));
    }

    /// Foreign-function calls so far.
    pub fn foreign_calls(&self) -> usize {
        self.0.borrow().foreign_calls
    }

    pub fn effective(&self) -> u32 {
        self.0.borrow().effective
    }

    /// The host calls made since the last take, by ABI name, in order.
    pub fn take_calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut self.0.borrow_mut().calls)
    }

    fn called(&self, call: &'static str) {
        self.0.borrow_mut().calls.push(call);
    }

    fn check(&self, call: &'static str, argument: &str) -> Result<(), HostError> {
        self.called(call);
        let world = self.0.borrow();
        if world.refuse.contains(call) || world.refuse.contains(&format!("{call}:{argument}")) {
            return Err(HostError {
                call,
                status: HostStatus::InternalFailure,
            });
        }
        Ok(())
    }

    fn record(&self, effect: Effect) {
        self.0.borrow_mut().effects.push(effect);
    }
}

impl Host for Recording {
    fn now_ms(&self) -> u64 {
        self.called("get_current_time_nanoseconds");
        self.0.borrow().now_ms
    }

    fn plugin_configuration(&self) -> Vec<u8> {
        self.0.borrow().configuration.clone()
    }

    fn plugin_name(&self) -> String {
        self.0.borrow().plugin_name.clone()
    }

    fn log_level(&self) -> Result<log::LevelFilter, HostError> {
        self.check("proxy_get_log_level", "")?;
        self.0.borrow().log_level.ok_or(HostError {
            call: "proxy_get_log_level",
            status: HostStatus::NotFound,
        })
    }

    fn set_tick_period(&self, period: Duration) -> Result<(), HostError> {
        self.check("set_tick_period", "")?;
        self.record(Effect::TickPeriod(period));
        Ok(())
    }

    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.check("get_map_value", name)?;
        let world = self.0.borrow();
        Ok(world.requests.get(&world.effective).and_then(|headers| {
            headers
                .iter()
                .find(|(header, _)| header == name)
                .map(|(_, value)| value.as_bytes().to_vec())
        }))
    }

    fn request_headers(&self) -> Result<Vec<(String, Vec<u8>)>, HostError> {
        self.check("get_map_bytes", "")?;
        let world = self.0.borrow();
        Ok(world
            .requests
            .get(&world.effective)
            .map(|headers| {
                headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.as_bytes().to_vec()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError> {
        self.check("set_map_value", name)?;
        let mut world = self.0.borrow_mut();
        let context = world.effective;
        if let Some(headers) = world.requests.get_mut(&context) {
            headers.retain(|(header, _)| header != name);
            if let Some(value) = value {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        world.effects.push(Effect::SetHeader {
            context,
            name: name.to_owned(),
            value: value.map(str::to_owned),
        });
        Ok(())
    }

    fn set_property(&self, path: &str, value: &[u8]) -> Result<(), HostError> {
        self.check("set_property", path)?;
        let context = self.effective();
        self.record(Effect::SetProperty {
            context,
            path: path.to_owned(),
            value: String::from_utf8_lossy(value).into_owned(),
        });
        Ok(())
    }

    fn send_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        self.check("send_http_response", "")?;
        let context = self.effective();
        self.record(Effect::Reply {
            context,
            status,
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
        Ok(())
    }

    fn resume_request(&self) -> Result<(), HostError> {
        self.check("resume_http_request", "")?;
        let context = self.effective();
        self.record(Effect::Resume(context));
        Ok(())
    }

    fn reset_request(&self) -> Result<(), HostError> {
        self.check("reset_http_request", "")?;
        let context = self.effective();
        self.record(Effect::Reset(context));
        Ok(())
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError> {
        self.check("set_effective_context", "")?;
        let mut world = self.0.borrow_mut();
        // Root contexts (below 100 in these tests) always exist; a request must be live.
        if context_id >= 100 && !world.requests.contains_key(&context_id) {
            return Err(HostError {
                call: "set_effective_context",
                status: HostStatus::NotFound,
            });
        }
        world.effective = context_id;
        Ok(())
    }

    fn dispatch_get(
        &self,
        cluster: &str,
        authority: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        self.check("dispatch_http_call", cluster)?;
        let mut world = self.0.borrow_mut();
        let call = world.next_call;
        world.next_call += 1;
        world.effects.push(Effect::Dispatch {
            call,
            cluster: cluster.to_owned(),
            authority: authority.to_owned(),
            path: path.to_owned(),
            timeout,
        });
        Ok(call)
    }

    fn call_response_status(&self) -> Option<Vec<u8>> {
        self.0
            .borrow()
            .answer_status
            .as_ref()
            .map(|status| status.as_bytes().to_vec())
    }

    fn call_response_body(&self, max_bytes: usize) -> Vec<u8> {
        let world = self.0.borrow();
        world.answer_body.iter().copied().take(max_bytes).collect()
    }

    fn get_shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.called("get_shared_data");
        match self.0.borrow().shared.get(key) {
            // As Envoy answers: an empty value comes back as none, with its CAS token.
            Some((value, cas)) if value.is_empty() => (None, Some(*cas)),
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
        self.check("set_shared_data", key)?;
        let mut world = self.0.borrow_mut();
        let current = world.shared.get(key).map(|(_, cas)| *cas);
        if cas.is_some() && cas != current {
            return Err(HostError {
                call: "set_shared_data",
                status: HostStatus::CasMismatch,
            });
        }
        let next = current.unwrap_or(0) + 1;
        world.shared.insert(key.to_owned(), (value.to_vec(), next));
        Ok(())
    }

    fn call_foreign(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostError> {
        let answer = {
            let mut world = self.0.borrow_mut();
            world.foreign_calls += 1;
            world.foreign.clone()
        };
        match answer {
            Some(answer) => answer(name, arguments),
            None => Err(HostError {
                call: "call_foreign_function",
                status: HostStatus::NotFound,
            }),
        }
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostError> {
        self.check("define_metric", name)?;
        let mut world = self.0.borrow_mut();
        if let Some(id) = world.metrics.iter().position(|(metric, ..)| metric == name) {
            return Ok(u32::try_from(id).unwrap_or(u32::MAX));
        }
        world.metrics.push((name.to_owned(), kind, 0));
        Ok(u32::try_from(world.metrics.len() - 1).unwrap_or(u32::MAX))
    }

    fn increment_metric(&self, id: u32, by: i64) -> Result<(), HostError> {
        self.check("increment_metric", "")?;
        let mut world = self.0.borrow_mut();
        if let Some((_, _, value)) = world.metrics.get_mut(id as usize) {
            *value += by;
        }
        Ok(())
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        self.check("record_metric", "")?;
        let mut world = self.0.borrow_mut();
        if let Some((_, _, metric)) = world.metrics.get_mut(id as usize) {
            *metric = i64::try_from(value).unwrap_or(i64::MAX);
        }
        Ok(())
    }
}
