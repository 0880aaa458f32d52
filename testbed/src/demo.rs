//! The demo stack: `envoy/envoy.yaml` as written (Envoy with the built module, the demo
//! issuer and the WebSocket echo upstream), moved onto free loopback ports. `make demo` and
//! the browser tests both run this, so what they check is what `make demo-up` serves.

use std::path::Path;

use crate::echo::Echo;
use crate::envoy::{module_path, workspace_root, Envoy};
use crate::issuer::Issuer;
use crate::keys::TestKey;

/// The demo's issuer, upstream and Envoy, running.
pub struct DemoStack {
    pub issuer: Issuer,
    pub echo: Echo,
    pub envoy: Envoy,
}

impl DemoStack {
    /// Starts the issuer (one fresh RSA key, `demo-key-1`), the echo upstream and Envoy with
    /// `envoy/envoy.yaml` on free ports. Panics if Envoy does not start; an error if the
    /// configuration no longer has what is moved.
    pub fn start() -> Result<DemoStack, String> {
        let signing: &'static TestKey = Box::leak(Box::new(TestKey::rsa(
            jwt_compact::alg::ModulusBits::TwoKibibytes,
        )));
        let issuer = Issuer::start(&[(signing, "demo-key-1")]);
        let echo = Echo::start();
        let config = config(&issuer, &echo, &module_path())?;
        let envoy = Envoy::start_yaml(&config);
        Ok(DemoStack {
            issuer,
            echo,
            envoy,
        })
    }

    /// The page for trying the gate, pointed at this stack's Envoy.
    pub fn page_url(&self) -> String {
        format!(
            "http://{}/?gate=ws://{}/ws",
            self.issuer.addr(),
            self.envoy.listener()
        )
    }
}

/// `envoy/envoy.yaml` with its fixed ports replaced by the issuer's and upstream's, and free
/// ones for the listener and admin.
fn config(issuer: &Issuer, echo: &Echo, module: &Path) -> Result<String, String> {
    let path = workspace_root().join("envoy/envoy.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let replacements = [
        ("port_value: 10000", "port_value: 0".to_owned()),
        ("port_value: 9901", "port_value: 0".to_owned()),
        (
            "port_value: 8080",
            format!("port_value: {}", echo.addr().port()),
        ),
        (
            "port_value: 8081",
            format!("port_value: {}", issuer.addr().port()),
        ),
        ("http://127.0.0.1:8081", issuer.issuer()),
        (
            "filename: target/wasm32-wasip1/release/wsgate.wasm",
            format!("filename: {}", module.display()),
        ),
    ];
    let mut text = text;
    for (from, to) in replacements {
        if !text.contains(from) {
            return Err(format!("envoy/envoy.yaml no longer contains {from:?}"));
        }
        text = text.replace(from, &to);
    }
    Ok(text)
}
