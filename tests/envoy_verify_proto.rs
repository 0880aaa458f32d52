//! The bytes wsgate sends to Envoy's `verify_signature` and reads back, checked against
//! `prost` (the protobuf messages of Envoy's `verify_signature.proto`, derived here), so
//! that the small encoder and decoder in `src/signature/envoy_verify.rs` need no trust.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prost::Message;
use wsgate::signature::envoy_verify::{arguments, verdict};
use wsgate::signature::JwsAlgorithm;

#[derive(Clone, PartialEq, prost::Message)]
struct VerifySignatureArguments {
    #[prost(string, tag = "1")]
    hash_function: String,
    #[prost(bytes = "vec", tag = "2")]
    public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    text: Vec<u8>,
    #[prost(string, tag = "5")]
    public_key_pem: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct VerifySignatureResult {
    #[prost(bool, tag = "1")]
    result: bool,
    #[prost(string, tag = "2")]
    error: String,
}

#[test]
fn arguments_decode_as_envoys_message() {
    // Lengths on both sides of every varint boundary, for each field.
    for size in [0usize, 1, 127, 128, 255, 256, 16_383, 16_384, 70_000] {
        let key = vec![0x30; size];
        let signature = vec![0x5a; size.min(600)];
        let text = vec![b'x'; size];
        for alg in [
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Rs384,
            JwsAlgorithm::Rs512,
        ] {
            let encoded = arguments(alg, &key, &signature, &text).unwrap();
            let decoded = VerifySignatureArguments::decode(encoded.as_slice()).unwrap();
            assert_eq!(
                decoded,
                VerifySignatureArguments {
                    hash_function: alg.name().replace("RS", "sha"),
                    public_key: key.clone(),
                    signature: signature.clone(),
                    text: text.clone(),
                    public_key_pem: String::new(),
                },
                "{alg:?} at {size} bytes"
            );
            // And prost writes exactly these bytes (proto3 leaves empty fields out, which
            // wsgate writes: both decode alike, as checked above).
            if size > 0 {
                assert_eq!(decoded.encode_to_vec(), encoded, "{alg:?} at {size} bytes");
            }
        }
    }
}

#[test]
fn results_read_as_envoys_message() {
    for (result, error) in [
        (true, ""),
        (false, ""),
        (false, "Failed to verify digest. Error code: 0"),
        (true, "unexpected"),
        (false, &"x".repeat(300)),
    ] {
        let encoded = VerifySignatureResult {
            result,
            error: error.to_owned(),
        }
        .encode_to_vec();
        assert_eq!(verdict(&encoded), Some(result), "{result} {error:?}");
    }
    // A valid signature is exactly 08 01.
    let valid = VerifySignatureResult {
        result: true,
        error: String::new(),
    };
    assert_eq!(valid.encode_to_vec(), [0x08, 0x01]);
}
