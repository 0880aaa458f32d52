//! Canonical encodings: base64url with one spelling per byte string ([`base64url`]) and JSON
//! that refuses duplicate members ([`strict_json`]).

pub mod base64url;
pub mod strict_json;
