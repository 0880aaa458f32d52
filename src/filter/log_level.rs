//! wsgate's log level follows the host's: a line the host would drop is neither formatted nor
//! handed over. Envoy writes wasm lines at its `wasm` component's level (Istio's sidecars
//! default to `warning`), and `/logging?wasm=debug` changes it at run time; the root context
//! reads it at configuration and on every tick.

use log::LevelFilter;

use crate::host::Host;

/// Makes `host`'s level this module's: what it applied, `None` when the host could not tell
/// (the level stays as it was, `info` at start).
pub(super) fn follow<H: Host>(host: &H) -> Option<LevelFilter> {
    let level = host.log_level()?;
    if level != log::max_level() {
        log::set_max_level(level);
    }
    Some(level)
}
