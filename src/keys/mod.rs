//! The verification keys: key sets and their bounds ([`jwks`]), the issuer's endpoints and
//! documents ([`remote`]), one VM's fetch state machine ([`fetcher`]), the key set shared by
//! Envoy's worker VMs ([`jwks_cache`]) and the requests parked until a fetch ends
//! ([`parked`]).

pub mod fetcher;
pub mod jwks;
pub mod jwks_cache;
pub mod parked;
pub mod remote;
