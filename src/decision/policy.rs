//! What a rule asks beyond a valid token: `claims` (Istio's `request.auth.claims`, Envoy
//! Gateway's claim authorization) and `origins` (against cross-site WebSocket hijacking).
//! Both are plain checks on values the gate already holds. And `max_sockets_per_identity`,
//! which [`crate::quota`] counts.

use serde_json::Value;

use crate::request::RequestHead;
use crate::token::identity::Identity;

/// Claims whose string values are space-separated words (RFC 8693 §4.2, and Azure AD's `scp`):
/// a value holds when it is one of the words.
const WORD_LIST_CLAIMS: [&str; 2] = ["scope", "scp"];

/// One entry of a rule's `claims`: the claim `name` (dotted for a nested claim) must hold one
/// of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequirement {
    pub name: String,
    /// At least one.
    pub values: Vec<String>,
}

impl ClaimRequirement {
    /// Whether `identity`'s claim holds one of the values: a string equal to one, an array
    /// with a string equal to one, or for `scope`/`scp` a space-separated string with one as
    /// a whole word. Numbers, booleans, objects and an absent claim never hold.
    pub fn holds(&self, identity: &Identity) -> bool {
        let wanted = |text: &str| self.values.iter().any(|value| value == text);
        match identity.claim(&self.name) {
            Some(Value::String(text)) if WORD_LIST_CLAIMS.contains(&self.name.as_str()) => {
                text.split(' ').any(wanted)
            }
            Some(Value::String(text)) => wanted(text),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(wanted),
            _ => false,
        }
    }
}

/// `max_sockets_per_identity` of a provider: how many open WebSockets one identity (the
/// string claim `identity_claim`) may hold across the proxy's VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketLimit {
    pub max: u32,
    pub identity_claim: String,
}

/// Whether every requirement holds for `identity`.
pub fn claims_hold(requirements: &[ClaimRequirement], identity: &Identity) -> bool {
    requirements
        .iter()
        .all(|requirement| requirement.holds(identity))
}

/// Whether `head`'s `Origin` is admitted by `origins` (`None`: any). A request without
/// `Origin` is admitted (servers such as ACS send none; browsers always send one on a
/// WebSocket upgrade); `null`, several `Origin` headers, or one not listed is not. Compared
/// ignoring ASCII case, as scheme and host are.
pub fn origin_allowed(origins: Option<&[String]>, head: &RequestHead) -> bool {
    let Some(origins) = origins else {
        return true;
    };
    let mut sent = head.values("origin");
    match (sent.next(), sent.next()) {
        (None, _) => true,
        (Some(origin), None) => origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin.trim())),
        (Some(_), Some(_)) => false,
    }
}

/// The origins both `a` and `b` admit (`None`: any).
pub fn common_origins(a: Option<&[String]>, b: Option<&[String]>) -> Option<Vec<String>> {
    match (a, b) {
        (None, None) => None,
        (Some(only), None) | (None, Some(only)) => Some(only.to_vec()),
        (Some(a), Some(b)) => Some(
            a.iter()
                .filter(|origin| b.iter().any(|other| other.eq_ignore_ascii_case(origin)))
                .cloned()
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use serde_json::json;

    use super::*;

    fn identity(claims: Value) -> Identity {
        Identity {
            claims: Rc::new(claims.as_object().cloned().unwrap_or_default()),
            payload: Rc::from(""),
        }
    }

    fn requirement(name: &str, values: &[&str]) -> ClaimRequirement {
        ClaimRequirement {
            name: name.to_owned(),
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        }
    }

    #[test]
    fn strings_arrays_and_scope_words() {
        let who = identity(json!({
            "role": "media.stream",
            "roles": ["reader", "media.stream"],
            "scp": "calls.read media.stream",
            "scope": "media",
            "tier": 3,
            "admin": true,
            "realm_access": {"roles": ["ops"]},
            "https://example.com/groups": ["g1"],
        }));
        let holds = |name: &str, values: &[&str]| requirement(name, values).holds(&who);
        assert!(holds("role", &["x", "media.stream"]));
        assert!(!holds("role", &["media"]), "a string is compared whole");
        assert!(holds("roles", &["media.stream"]));
        assert!(!holds("roles", &["writer"]));
        assert!(holds("scp", &["media.stream"]));
        assert!(holds("scp", &["calls.read"]));
        assert!(
            !holds("scp", &["media"]),
            "a prefix of a scope is not the scope"
        );
        assert!(
            !holds("scp", &["calls.read media.stream"]),
            "one word at a time"
        );
        assert!(!holds("scope", &["med"]));
        assert!(holds("scope", &["media"]));
        assert!(!holds("tier", &["3"]), "numbers never hold");
        assert!(!holds("admin", &["true"]), "booleans never hold");
        assert!(!holds("absent", &["x"]));
        assert!(holds("realm_access.roles", &["ops"]), "dotted: nested");
        assert!(!holds("realm_access", &["ops"]), "an object never holds");
        assert!(
            holds("https://example.com/groups", &["g1"]),
            "dots in the name"
        );
        // Every entry must hold.
        assert!(claims_hold(
            &[
                requirement("roles", &["reader"]),
                requirement("scp", &["calls.read"])
            ],
            &who
        ));
        assert!(!claims_hold(
            &[
                requirement("roles", &["reader"]),
                requirement("scp", &["x"])
            ],
            &who
        ));
        assert!(claims_hold(&[], &who));
    }

    #[test]
    fn origins_absent_listed_other_and_null() {
        let listed = ["https://app.example.com".to_owned()];
        let allowed = |origins: &[&str]| {
            let head = RequestHead::new(origins.iter().map(|origin| ("origin", *origin)));
            origin_allowed(Some(&listed), &head)
        };
        assert!(allowed(&[]), "no Origin: a server, judged on its token");
        assert!(allowed(&["https://app.example.com"]));
        assert!(allowed(&["HTTPS://APP.example.com"]));
        assert!(!allowed(&["https://app.example.com:8443"]), "another port");
        assert!(!allowed(&["http://app.example.com"]), "another scheme");
        assert!(!allowed(&["https://evil.example"]));
        assert!(!allowed(&["null"]));
        assert!(!allowed(&[
            "https://app.example.com",
            "https://app.example.com"
        ]));
        let head = RequestHead::new([("origin", "https://evil.example")]);
        assert!(origin_allowed(None, &head), "no origins: any");
    }

    #[test]
    fn common_origins_are_those_both_admit() {
        let a = ["https://a".to_owned(), "https://b".to_owned()];
        let b = ["https://b".to_owned()];
        assert_eq!(common_origins(None, None), None);
        assert_eq!(common_origins(Some(&a), None), Some(a.to_vec()));
        assert_eq!(common_origins(Some(&a), Some(&b)), Some(b.to_vec()));
        assert_eq!(common_origins(Some(&b), Some(&[])), Some(vec![]));
    }
}
