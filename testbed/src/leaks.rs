//! Finds token-shaped text in what Envoy writes (its log, an access log), so a test can show
//! that no token, and no piece of one, leaked.
//!
//! Searching for a whole token is not enough: wsgate cuts every logged request value to 128
//! characters, so a logged `Authorization` value would never hold the whole token. What is
//! searched for instead:
//! - `eyJ` followed by base64url: how every JWS header and JSON payload begins (`{"`);
//! - any 20-character piece of a known token's signature, wherever it starts.

/// Every token-shaped fragment of `text`, and every 20-character piece of the signature of
/// one of `tokens` found in it, each with a few characters of context. Empty: no leak.
pub fn token_fragments(text: &str, tokens: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("eyJ") {
        let tail = &rest[at..];
        let run = tail
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count();
        if run >= 12 {
            found.push(format!("token-shaped: {:.40}", tail));
        }
        rest = &tail[3..];
    }
    for token in tokens {
        let signature = token.rsplit('.').next().unwrap_or_default();
        let bytes = signature.as_bytes();
        for start in 0..bytes.len().saturating_sub(19) {
            let piece = &signature[start..start + 20];
            if text.contains(piece) {
                found.push(format!("a piece of a signature: {piece}"));
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLWEtdG9rZW4tdGhhdC1pcy1sb25n";

    #[test]
    fn a_cut_token_and_a_piece_of_a_signature_are_found() {
        let cut = format!("canary=\"Bearer {}…\"", &TOKEN[..30]);
        assert!(!cut.contains(TOKEN), "the whole-token search misses it");
        assert_eq!(token_fragments(&cut, &[TOKEN]).len(), 1, "{cut}");
        let piece = format!("x={}", &TOKEN[TOKEN.len() - 25..TOKEN.len() - 3]);
        assert_eq!(token_fragments(&piece, &[TOKEN]).len(), 1, "{piece}");
        let clean = "decision=allow path=/ws sub=alice keys=eyJ";
        assert!(token_fragments(clean, &[TOKEN]).is_empty());
    }
}
