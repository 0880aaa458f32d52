//! What an operator sees of a decision: one log line and the access-log fields.
//!
//! Both carry the decision, the deny reason, the verified `iss` and `sub` of an accepted token
//! (for a refused token that could be read, what it claimed, marked `claimed_`), and the
//! correlation values (`not provided` when absent). Every value from the request is stripped
//! of control characters and cut to [`MAX_VALUE_CHARS`] before it is written anywhere. The
//! token and its signature never are.

use crate::decision::{Outcome, Verdict};
use crate::deny::Replies;
use crate::request::path;
use crate::request::RequestHead;

/// What is written for a correlation header the request did not carry.
pub const NOT_PROVIDED: &str = "not provided";
/// Longest value written to a log line or an access-log field.
pub const MAX_VALUE_CHARS: usize = 128;

/// A correlation value to carry into logs: `field` (the name in logs and access logs) is
/// read from request header `header`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationHeader {
    pub field: String,
    pub header: String,
}

/// The default correlation headers: ACS's call correlation and call connection ids.
pub fn default_correlation_headers() -> Vec<CorrelationHeader> {
    [
        ("correlation_id", "x-ms-call-correlation-id"),
        ("connection_id", "x-ms-call-connection-id"),
    ]
    .into_iter()
    .map(|(field, header)| CorrelationHeader {
        field: field.to_owned(),
        header: header.to_owned(),
    })
    .collect()
}

/// Names the log line and access log already use.
pub const RECORD_FIELDS: [&str; 9] = [
    "decision",
    "provider",
    "reason",
    "status",
    "path",
    "iss",
    "sub",
    "claimed_iss",
    "claimed_sub",
];

/// The operator's view of one guarded decision; its field names are static or the
/// configured correlation fields' (`'a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    allowed: bool,
    /// `(name, value)` in log order; values already sanitised.
    fields: Vec<(&'a str, String)>,
}

impl<'a> Record<'a> {
    /// The record of `outcome` on `head`, a refusal's status as `replies` answers it. Where
    /// providers are `named` (not the single-issuer form), it names the one that accepted
    /// or refused the token, `provider`, or `-` when none was chosen.
    pub fn of(
        outcome: &Outcome,
        head: &RequestHead,
        correlation: &'a [CorrelationHeader],
        provider: Option<&str>,
        named: bool,
        replies: &Replies,
    ) -> Record<'a> {
        let mut fields = Vec::with_capacity(8 + correlation.len());
        let mut add = |name: &'a str, value: &str| fields.push((name, sanitize(value)));
        let allowed = match &outcome.verdict {
            Verdict::Allow(identity) => {
                add("decision", "allow");
                if let Some(name) = provider {
                    add("provider", name);
                }
                add("path", path::without_revealed_query(head.path()));
                add("iss", identity.claim_str("iss").unwrap_or("-"));
                add("sub", identity.claim_str("sub").unwrap_or("-"));
                true
            }
            Verdict::Deny(denial) | Verdict::AwaitKeys(_, denial) => {
                let reason = denial.reason;
                add("decision", "deny");
                add("reason", reason.name());
                add("status", &replies.reply(reason).status.to_string());
                match provider {
                    Some(name) => add("provider", name),
                    // Refused before a provider was chosen: so that the field is always
                    // set where providers are named.
                    None if named => add("provider", "-"),
                    None => {}
                }
                add("path", path::without_revealed_query(head.path()));
                if let Some(iss) = &denial.claimed.iss {
                    add("claimed_iss", iss);
                }
                if let Some(sub) = &denial.claimed.sub {
                    add("claimed_sub", sub);
                }
                false
            }
        };
        for entry in correlation {
            add(
                &entry.field,
                head.first(&entry.header).unwrap_or(NOT_PROVIDED),
            );
        }
        // Test-only (Cargo.toml's `leak-canary`): a leak the leak check must catch.
        #[cfg(feature = "leak-canary")]
        add("canary", head.first("authorization").unwrap_or("-"));
        Record { allowed, fields }
    }

    /// Whether the request was accepted.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// One line: `name=value` pairs, values quoted when they hold spaces, quotes or `=`.
    pub fn log_line(&self) -> String {
        let mut line = String::new();
        for (name, value) in &self.fields {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(name);
            line.push('=');
            if value.is_empty() || value.contains([' ', '"', '=', '\\']) {
                line.push('"');
                line.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
                line.push('"');
            } else {
                line.push_str(value);
            }
        }
        line
    }

    /// The access-log fields: every field of the line but `path` and `status` (Envoy logs
    /// those itself). Each is a host call, so a field with nothing to say is not set: an
    /// accepted request has no `reason`, which an access log prints as `-`.
    pub fn access_log_fields(&self) -> Vec<(&str, &str)> {
        self.fields
            .iter()
            .filter(|(name, _)| *name != "path" && *name != "status")
            .map(|(name, value)| (*name, value.as_str()))
            .collect()
    }
}

/// Control characters removed, cut to [`MAX_VALUE_CHARS`].
pub fn sanitize(value: &str) -> String {
    // The usual value, short and clean, is copied as it is (a byte is at most a character).
    if value.len() <= MAX_VALUE_CHARS && !value.chars().any(char::is_control) {
        return value.to_owned();
    }
    let clean: String = value.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() > MAX_VALUE_CHARS {
        let mut cut: String = clean.chars().take(MAX_VALUE_CHARS).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::CacheUse;
    use crate::deny::DenyReason;
    use crate::provider::ProviderId;
    use crate::token::identity::{Claimed, Denial, Identity};
    use serde_json::json;

    fn head(extra: &[(&str, &str)]) -> RequestHead {
        let mut pairs = vec![(":path", "/ws?x=1"), (":method", "GET")];
        pairs.extend_from_slice(extra);
        RequestHead::new(pairs)
    }

    fn allow() -> Outcome {
        let claims = json!({"iss": "https://issuer.example", "sub": "alice"});
        Outcome {
            provider: Some(ProviderId::at(0)),
            tokens: Default::default(),
            verdict: Verdict::Allow(Identity {
                claims: claims.as_object().unwrap().clone().into(),
                payload: "".into(),
            }),
            cache: CacheUse::Off,
            slot: None,
        }
    }

    fn refusal(denial: Denial) -> Outcome {
        Outcome {
            verdict: Verdict::Deny(denial),
            ..Outcome::refused(DenyReason::Malformed, Default::default())
        }
    }

    /// The default correlation headers, for as long as a record borrows their names.
    fn ids() -> &'static [CorrelationHeader] {
        Box::leak(default_correlation_headers().into_boxed_slice())
    }

    #[test]
    fn values_are_copied_as_they_are_only_when_short_and_clean() {
        let at_most = "x".repeat(MAX_VALUE_CHARS);
        assert_eq!(sanitize(&at_most), at_most);
        let over = "x".repeat(MAX_VALUE_CHARS + 1);
        assert_eq!(sanitize(&over), format!("{at_most}…"));
        // Longer in bytes than the cap, not in characters: kept whole.
        let accents = "é".repeat(MAX_VALUE_CHARS);
        assert_eq!(sanitize(&accents), accents);
        assert_eq!(sanitize("a\u{85}b\u{7f}c\td"), "abcd");
    }

    #[test]
    fn an_accepted_request_with_both_ids() {
        let record = Record::of(
            &allow(),
            &head(&[
                ("x-ms-call-correlation-id", "corr-1"),
                ("x-ms-call-connection-id", "conn-1"),
            ]),
            ids(),
            None,
            false,
            &Replies::default(),
        );
        assert!(record.allowed());
        assert_eq!(
            record.log_line(),
            "decision=allow path=/ws iss=https://issuer.example sub=alice correlation_id=corr-1 connection_id=conn-1"
        );
        assert_eq!(
            record.access_log_fields(),
            [
                ("decision", "allow"),
                ("iss", "https://issuer.example"),
                ("sub", "alice"),
                ("correlation_id", "corr-1"),
                ("connection_id", "conn-1"),
            ]
        );
    }

    #[test]
    fn a_refusal_with_missing_ids_and_a_claimed_subject() {
        let denial = Denial {
            reason: DenyReason::Expired,
            claimed: Claimed {
                iss: Some("https://issuer.example".into()),
                sub: Some("mallory".into()),
            },
        };
        let record = Record::of(
            &refusal(denial),
            &head(&[]),
            ids(),
            None,
            false,
            &Replies::default(),
        );
        assert!(!record.allowed());
        assert_eq!(
            record.log_line(),
            "decision=deny reason=expired status=401 path=/ws claimed_iss=https://issuer.example claimed_sub=mallory correlation_id=\"not provided\" connection_id=\"not provided\""
        );
    }

    #[test]
    fn hostile_values_are_cleaned_and_bounded() {
        let long = "x".repeat(500);
        let record = Record::of(
            &refusal(DenyReason::MissingToken.into()),
            &head(&[
                ("x-ms-call-correlation-id", "a\r\nfake=1\u{1b}[31m \"q\""),
                ("x-ms-call-connection-id", &long),
            ]),
            ids(),
            None,
            false,
            &Replies::default(),
        );
        let line = record.log_line();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(
            line.contains(r#"correlation_id="afake=1[31m \"q\"""#),
            "{line}"
        );
        let connection = &record.access_log_fields()[3];
        assert_eq!(connection.0, "connection_id");
        assert_eq!(connection.1.chars().count(), MAX_VALUE_CHARS + 1);
    }

    /// With named providers, the line and the access log name the one that decided, or
    /// `-` when the request was refused before one was chosen.
    #[test]
    fn named_providers_are_named() {
        let record = Record::of(
            &allow(),
            &head(&[]),
            &[],
            Some("entra"),
            true,
            &Replies::default(),
        );
        assert_eq!(
            record.log_line(),
            "decision=allow provider=entra path=/ws iss=https://issuer.example sub=alice"
        );
        assert!(record.access_log_fields().contains(&("provider", "entra")));
        let wrong_issuer = refusal(DenyReason::WrongIssuer.into());
        let record = Record::of(
            &wrong_issuer,
            &head(&[]),
            &[],
            None,
            true,
            &Replies::default(),
        );
        assert_eq!(
            record.log_line(),
            "decision=deny reason=wrong_issuer status=401 provider=- path=/ws"
        );
        let expired = refusal(DenyReason::Expired.into());
        let line = Record::of(
            &expired,
            &head(&[]),
            &[],
            Some("acs"),
            true,
            &Replies::default(),
        )
        .log_line();
        assert!(line.contains(" provider=acs "), "{line}");
    }
}
