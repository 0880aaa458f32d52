//! The Envoy configurations under `envoy/` as shipped, moved onto loopback and free ports so
//! that a test runs the file users run. Each replacement must find its text: a config that
//! drifts from what a test moves fails loudly instead of running something else.

use std::path::Path;

use crate::echo::Echo;
use crate::envoy::workspace_root;
use crate::issuer::Issuer;

/// `envoy/{file}` as shipped.
pub fn text(file: &str) -> Result<String, String> {
    let path = workspace_root().join("envoy").join(file);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The text of `envoy/{file}` from the first line starting with `from` up to, not
/// including, the next line starting with `to` (a block a test removes).
pub fn block(file: &str, from: &str, to: &str) -> Result<String, String> {
    let text = text(file)?;
    let start = text
        .find(&format!("\n{from}"))
        .map(|at| at + 1)
        .ok_or_else(|| format!("envoy/{file} has no line starting {from:?}"))?;
    let rest = text.get(start..).unwrap_or_default();
    let end = rest
        .find(&format!("\n{to}"))
        .map(|at| at + 1)
        .ok_or_else(|| format!("envoy/{file} has no line starting {to:?} after {from:?}"))?;
    Ok(rest.get(..end).unwrap_or_default().to_owned())
}

/// `envoy/{file}` with every `(from, to)` of `replacements` applied, in order.
pub fn config(file: &str, replacements: &[(String, String)]) -> Result<String, String> {
    let mut text = text(file)?;
    for (from, to) in replacements {
        if !text.contains(from.as_str()) {
            return Err(format!("envoy/{file} no longer contains {from:?}"));
        }
        text = text.replace(from.as_str(), to);
    }
    Ok(text)
}

/// What moves the demo's stack (`envoy/envoy.yaml` and the files built on it) onto free
/// ports: the listener and admin on port 0, the issuer and the upstream where they run, and
/// `module` as the filter.
pub fn demo_moves(issuer: &Issuer, echo: &Echo, module: &Path) -> Vec<(String, String)> {
    vec![
        ("port_value: 10000".into(), "port_value: 0".into()),
        ("port_value: 9901".into(), "port_value: 0".into()),
        (
            "port_value: 8080".into(),
            format!("port_value: {}", echo.addr().port()),
        ),
        (
            "port_value: 8081".into(),
            format!("port_value: {}", issuer.addr().port()),
        ),
        ("http://127.0.0.1:8081".into(), issuer.issuer()),
        (
            "filename: target/wasm32-wasip1/release/wsgate.wasm".into(),
            format!("filename: {}", module.display()),
        ),
    ]
}
