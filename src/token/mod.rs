//! The bearer token: where it is ([`extractor`]) and how to cut it from the request
//! ([`cut`]), its compact JWS form ([`jws`]), the claims it must carry ([`claims`]), the
//! pipeline that verifies it ([`authenticator`]), what that yields ([`identity`]), and the
//! per-VM cache of tokens already verified ([`token_cache`]).

pub mod authenticator;
pub mod claims;
pub mod cut;
pub mod extractor;
pub mod identity;
pub mod jws;
pub mod token_cache;
