//! [`Host`] over the proxy-wasm ABI: the only code in wsgate that calls the host.
//!
//! Each method is one `hostcalls` call (two, at the bottom, call the ABI directly) with its
//! status turned into a [`HostError`], or, where the trait gives a neutral answer instead,
//! logged. Note what that covers: the SDK (0.2.5)
//! itself panics on every status it does not expect for a call, which for header edits,
//! local replies, resume, reset, properties and ticks is every status but `Ok`. So in Envoy a
//! refused header removal kills the VM rather than reaching the glue's fail-closed path;
//! the request still fails closed because the Wasm filter's `fail_open` is false (Envoy's
//! default, and what every shipped configuration keeps). The glue's handling of refusals is
//! for hosts and SDK versions that do report them, and is tested against the recording
//! host. The glue avoids the one panic wsgate could meet in Envoy: reading the answer maps
//! of a call that failed.

use std::time::{Duration, UNIX_EPOCH};

use log::{warn, LevelFilter};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

use super::{Host, HostError, HostStatus, MetricKind};

/// The host wsgate runs in (natively, only `register`, itself unused there, names it).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProxyWasm;

fn refused(call: &'static str) -> impl Fn(Status) -> HostError {
    move |status| HostError {
        call,
        status: host_status(status as u32),
    }
}

/// The ABI's status number as a [`HostStatus`].
fn host_status(status: u32) -> HostStatus {
    match status {
        1 => HostStatus::NotFound,
        2 => HostStatus::BadArgument,
        3 => HostStatus::SerializationFailure,
        4 => HostStatus::ParseFailure,
        7 => HostStatus::Empty,
        8 => HostStatus::CasMismatch,
        10 => HostStatus::InternalFailure,
        other => HostStatus::Other(other),
    }
}

impl Host for ProxyWasm {
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            })
    }

    fn plugin_configuration(&self) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .map_err(|status| warn!("plugin configuration unreadable: {status:?}"))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn plugin_name(&self) -> String {
        hostcalls::get_property(vec!["plugin_name"])
            .map_err(|status| warn!("plugin_name unreadable: {status:?}"))
            .ok()
            .flatten()
            .map(|name| String::from_utf8_lossy(&name).into_owned())
            .unwrap_or_default()
    }

    fn log_level(&self) -> Result<LevelFilter, HostError> {
        let refused = |status: HostStatus| HostError {
            call: "proxy_get_log_level",
            status,
        };
        let level = get_log_level().map_err(|status| refused(host_status(status)))?;
        level_filter(level).ok_or_else(|| refused(HostStatus::UnknownLevel(level)))
    }

    fn set_tick_period(&self, period: Duration) -> Result<(), HostError> {
        hostcalls::set_tick_period(period).map_err(refused("set_tick_period"))
    }

    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
            .map_err(refused("get_map_value"))
    }

    fn request_headers(&self) -> Result<Vec<(String, Vec<u8>)>, HostError> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).map_err(refused("get_map_bytes"))
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError> {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value)
            .map_err(refused("set_map_value"))
    }

    fn set_property(&self, path: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_property(vec![path], Some(value)).map_err(refused("set_property"))
    }

    fn send_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body))
            .map_err(refused("send_http_response"))
    }

    fn resume_request(&self) -> Result<(), HostError> {
        hostcalls::resume_http_request().map_err(refused("resume_http_request"))
    }

    fn reset_request(&self) -> Result<(), HostError> {
        hostcalls::reset_http_request().map_err(refused("reset_http_request"))
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), HostError> {
        hostcalls::set_effective_context(context_id).map_err(refused("set_effective_context"))
    }

    fn dispatch_get(
        &self,
        cluster: &str,
        authority: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        hostcalls::dispatch_http_call(
            cluster,
            vec![
                (":method", "GET"),
                (":path", path),
                (":authority", authority),
                ("accept", "application/json"),
            ],
            None,
            vec![],
            timeout,
        )
        .map_err(refused("dispatch_http_call"))
    }

    fn call_response_status(&self) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .map_err(|status| warn!("call answer's :status unreadable: {status:?}"))
            .ok()
            .flatten()
    }

    fn call_response_body(&self, max_bytes: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, max_bytes)
            .map_err(|status| warn!("call answer's body unreadable: {status:?}"))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn get_shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or_else(|status| {
            warn!("shared data {key:?} unreadable: {status:?}");
            (None, None)
        })
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
        hostcalls::set_shared_data(key, Some(value), cas).map_err(refused("set_shared_data"))
    }

    fn call_foreign(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostError> {
        call_foreign_function(name, arguments).map_err(|status| HostError {
            call: "call_foreign_function",
            status: host_status(status),
        })
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<u32, HostError> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
        };
        hostcalls::define_metric(kind, name).map_err(refused("define_metric"))
    }

    fn increment_metric(&self, id: u32, by: i64) -> Result<(), HostError> {
        hostcalls::increment_metric(id, by).map_err(refused("increment_metric"))
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        hostcalls::record_metric(id, value).map_err(refused("record_metric"))
    }
}

// Two calls are made through the ABI directly, reading what the host answers as the
// integers they are:
// - the SDK's `hostcalls::call_foreign_function` panics on any status it does not know, and
//   hosts other than Envoy answer "unimplemented" (12), which it does not: a panic there
//   would kill the VM during the self-test;
// - the SDK's `hostcalls::get_log_level` reads the level into its six-variant enum, and
//   Envoy can answer 6 (spdlog's "off"), which is no value of that enum; it also panics on
//   any status but Ok.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_call_foreign_function(
        function_name: *const u8,
        function_name_size: usize,
        arguments: *const u8,
        arguments_size: usize,
        results: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

/// The level a host's `proxy_get_log_level` answer names. Envoy answers spdlog's levels, of
/// which proxy-wasm's are the first six; critical and off turn wsgate's lines off (it logs
/// nothing critical).
fn level_filter(level: u32) -> Option<LevelFilter> {
    match level {
        0 => Some(LevelFilter::Trace),
        1 => Some(LevelFilter::Debug),
        2 => Some(LevelFilter::Info),
        3 => Some(LevelFilter::Warn),
        4 => Some(LevelFilter::Error),
        5 | 6 => Some(LevelFilter::Off),
        _ => None,
    }
}

/// `proxy_get_log_level`: the level as the host numbers it, or the host's status.
#[allow(unsafe_code)]
fn get_log_level() -> Result<u32, u32> {
    let mut level: u32 = 0;
    // SAFETY: the host writes one u32 through a pointer to a live local.
    match unsafe { proxy_get_log_level(&mut level) } {
        0 => Ok(level),
        status => Err(status),
    }
}

/// `proxy_call_foreign_function`: the answer's bytes, or the host's status.
#[allow(unsafe_code)]
fn call_foreign_function(name: &str, arguments: &[u8]) -> Result<Vec<u8>, u32> {
    let mut results: *mut u8 = std::ptr::null_mut();
    let mut results_size: usize = 0;
    // SAFETY: the pointers and lengths are those of live slices, and the two out-parameters
    // are locals the host writes once; this is the SDK's own call, status aside.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            arguments.as_ptr(),
            arguments.len(),
            &mut results,
            &mut results_size,
        )
    };
    if status != 0 {
        return Err(status);
    }
    if results.is_null() {
        return Ok(Vec::new());
    }
    // SAFETY: the host allocated exactly `results_size` bytes at `results` through this
    // module's `proxy_on_memory_allocate` (the SDK's: a boxed slice of that length) and
    // hands them over; the SDK frees such answers the same way.
    Ok(unsafe { Vec::from_raw_parts(results, results_size, results_size) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_envoy_answers_has_its_filter() {
        let levels: Vec<Option<LevelFilter>> = (0..8).map(level_filter).collect();
        assert_eq!(
            levels,
            [
                Some(LevelFilter::Trace),
                Some(LevelFilter::Debug),
                Some(LevelFilter::Info),
                Some(LevelFilter::Warn),
                Some(LevelFilter::Error),
                Some(LevelFilter::Off),
                Some(LevelFilter::Off),
                None,
            ]
        );
    }
}
