//! The demo stack: `envoy/envoy.yaml` as written (Envoy with the built module, the demo
//! issuer and the WebSocket echo upstream), moved onto free loopback ports. `make demo` and
//! the browser tests both run this, so what they check is what `make demo-up` serves.

use std::path::Path;

use crate::echo::Echo;
use crate::envoy::{module_path, Envoy};
use crate::issuer::Issuer;
use crate::keys::TestKey;
use crate::shipped;

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
    shipped::config("envoy.yaml", &shipped::demo_moves(issuer, echo, module))
}
