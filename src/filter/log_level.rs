//! wsgate's log level follows the host's: a line the host would drop is neither formatted nor
//! handed over. Envoy writes wasm lines at its `wasm` component's level (Istio's sidecars
//! default to `warning`), and `/logging?wasm=debug` changes it at run time; the root context
//! reads it at configuration and on every tick.

use log::{warn, LevelFilter};

use crate::host::Host;

/// Follows the host's log level, and says once when it cannot read it.
#[derive(Debug, Default)]
pub(super) struct LogLevel {
    unreadable: bool,
}

impl LogLevel {
    /// Makes `host`'s level this module's: what it applied, `None` when the host would not
    /// tell (the level stays as it was, `info` at start; logged the first time in a row).
    pub(super) fn follow<H: Host>(&mut self, host: &H) -> Option<LevelFilter> {
        match host.log_level() {
            Ok(level) => {
                self.unreadable = false;
                if level != log::max_level() {
                    log::set_max_level(level);
                }
                Some(level)
            }
            Err(error) => {
                if !self.unreadable {
                    warn!("the host's log level is not followed: {error}");
                    self.unreadable = true;
                }
                None
            }
        }
    }
}
