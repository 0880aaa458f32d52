//! The bootstraps tests give Envoy: the Wasm filter entry that loads wsgate, one loopback
//! listener in front of an upstream, and the clusters, HTTP/2 WebSockets and access logs a
//! test adds.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value};

use super::module_path;

/// The HTTP filter entry that loads wsgate with `plugin_config` (any JSON value; it is
/// passed to the plugin as a JSON string, as docs/deploying.md shows).
pub fn wasm_filter(plugin_config: &Value, module: &Path) -> Value {
    let configuration = match plugin_config {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "wsgate",
                "root_id": "wsgate",
                "vm_config": {
                    "vm_id": "wsgate",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": module.display().to_string() } }
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration
                }
            }
        }
    })
}

/// [`bootstrap`] with the built wsgate module ([`module_path`]) as its one filter,
/// configured with `plugin_config`.
pub fn gate_bootstrap(upstream: SocketAddr, plugin_config: &Value) -> Value {
    bootstrap(upstream, vec![wasm_filter(plugin_config, &module_path())])
}

/// `base` with every member of the object `settings` set over it (a test's own settings on
/// top of its defaults). Panics when `settings` is not an object.
pub fn with_settings(mut base: Value, settings: &Value) -> Value {
    let settings = settings.as_object().expect("settings are a JSON object");
    for (key, value) in settings {
        base[key] = value.clone();
    }
    base
}

/// A bootstrap with one loopback listener (WebSocket upgrades on) whose routes all go to
/// `upstream`, with `http_filters` before the router.
pub fn bootstrap(upstream: SocketAddr, http_filters: Vec<Value>) -> Value {
    let mut filters = http_filters;
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
    }));
    json!({
        "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } } },
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "upgrade_configs": [{ "upgrade_type": "websocket" }],
                        "route_config": { "virtual_hosts": [{
                            "name": "all",
                            "domains": ["*"],
                            "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": "upstream" } }]
                        }]},
                        "http_filters": filters
                    }
                }]}]
            }],
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {
                    "cluster_name": "upstream",
                    "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": {
                        "address": upstream.ip().to_string(), "port_value": upstream.port()
                    }}}}]}]
                }
            }]
        }
    })
}

/// Adds a STATIC cluster `name` with one endpoint at `addr` to `bootstrap`.
pub fn add_cluster(bootstrap: &mut Value, name: &str, addr: SocketAddr) {
    let cluster = json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{ "endpoint": { "address": { "socket_address": {
                "address": addr.ip().to_string(), "port_value": addr.port()
            }}}}]}]
        }
    });
    if let Some(clusters) = bootstrap["static_resources"]["clusters"].as_array_mut() {
        clusters.push(cluster);
    }
}

/// Lets the ingress listener accept WebSockets over HTTP/2 (RFC 8441 extended CONNECT);
/// cleartext HTTP/2 is recognised by its preface.
pub fn enable_http2_websockets(bootstrap: &mut Value) {
    let manager = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        [0]["typed_config"];
    manager["http2_protocol_options"] = json!({ "allow_connect": true });
}

/// Adds a file access log with `format` (Envoy's format string, one line per request) to
/// the ingress listener of `bootstrap`.
pub fn add_access_log(bootstrap: &mut Value, path: &Path, format: &str) {
    let manager = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        [0]["typed_config"];
    manager["access_log"] = json!([{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path.display().to_string(),
            "log_format": { "text_format_source": { "inline_string": format } }
        }
    }]);
}
