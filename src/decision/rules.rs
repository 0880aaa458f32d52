//! Which requests are guarded, and by which providers: `jwt_authn`'s `rules`.
//!
//! Rules are tried in order and the first whose `match` fits a request's path decides: its
//! `requires` names the providers whose tokens are accepted there. A request no rule
//! matches passes untouched. Both a rule's path and the request's are compared through the
//! one fail-closed normalisation of [`crate::request::path`], exact (`path`) or as a
//! prefix (`prefix`); a path that cannot be normalised matches every rule. A path that
//! backends may read in several ways (`..`, `;`, see [`crate::request::path`]) is guarded by
//! the first matching rule of each reading, and when those differ only the providers all of
//! them accept may pass ([`Rule::common`]).

use crate::decision::policy::{self, ClaimRequirement};
use crate::provider::ProviderId;
use crate::request::path::NormalPath;

/// The path guarded in the single-issuer form when `paths` is not given.
pub const DEFAULT_PATH: &str = "/ws";

/// How a rule matches a request's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// `match.path`: this path exactly (query ignored), in any spelling.
    Exact(NormalPath),
    /// `match.prefix` not ending in `/`: every path whose normal form starts with this
    /// text (`/calls` takes `/callsx`), as `jwt_authn` compares a prefix.
    Prefix(NormalPath),
    /// `match.prefix` ending in `/`: this directory and every path under it, segment by
    /// segment (`/calls/` takes `/calls` and `/calls/1`, not `/callsx`).
    Directory(NormalPath),
}

/// One rule: a path match, the providers it accepts and what else it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: PathMatch,
    /// At least one, without repeats, in the order the rule names them.
    pub providers: Vec<ProviderId>,
    /// The match as configured (`/ws`, `/calls/*`), for the start-up log.
    pub shown: String,
    /// `claims`: every entry must hold for the verified token.
    pub claims: Vec<ClaimRequirement>,
    /// `origins`: the `Origin` values admitted (`None`: any).
    pub origins: Option<Vec<String>>,
}

impl Rule {
    /// Whether this rule matches `path`, a request path already normalised.
    pub fn matches(&self, path: &NormalPath) -> bool {
        match &self.matcher {
            PathMatch::Exact(exact) => path.is(exact),
            PathMatch::Prefix(prefix) => path.starts_with(prefix),
            PathMatch::Directory(dir) => path.is_under(dir),
        }
    }

    /// The rule for a path that cannot be normalised (see [`NormalPath::Undecidable`]): it
    /// could be any rule's path, so it accepts only the providers every rule accepts (none,
    /// when they have none in common: every token is then refused).
    pub fn undecidable(rules: &[Rule]) -> Rule {
        let all: Vec<&Rule> = rules.iter().collect();
        Rule::common(&all, "(undecidable path)".to_owned())
    }

    /// The rule for a path whose readings match several `rules`: a backend may serve it as
    /// any of their paths, so it accepts only the providers all of them accept (none, when
    /// they have none in common), asks every claim any of them asks, and admits only the
    /// origins all of them admit. `shown` names it in logs.
    pub fn common(rules: &[&Rule], shown: String) -> Rule {
        let mut providers = rules
            .first()
            .map(|rule| rule.providers.clone())
            .unwrap_or_default();
        providers.retain(|id| rules.iter().all(|rule| rule.accepts(*id)));
        let mut claims: Vec<ClaimRequirement> = Vec::new();
        let mut origins: Option<Vec<String>> = None;
        for rule in rules {
            for claim in &rule.claims {
                if !claims.contains(claim) {
                    claims.push(claim.clone());
                }
            }
            origins = policy::common_origins(origins.as_deref(), rule.origins.as_deref());
        }
        Rule {
            matcher: PathMatch::Exact(NormalPath::Undecidable),
            providers,
            shown,
            claims,
            origins,
        }
    }

    /// Whether this rule accepts tokens of provider `id`.
    pub fn accepts(&self, id: ProviderId) -> bool {
        self.providers.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(matcher: PathMatch) -> Rule {
        Rule {
            matcher,
            providers: vec![ProviderId::at(0)],
            shown: String::new(),
            claims: Vec::new(),
            origins: None,
        }
    }

    /// Several rules at once ask every claim any of them asks and admit only the origins
    /// all of them admit: the strictest reading of an ambiguous path wins.
    #[test]
    fn common_takes_every_claim_and_the_shared_origins() {
        let claim = |name: &str| ClaimRequirement {
            name: name.to_owned(),
            values: vec!["v".to_owned()],
        };
        let a = Rule {
            claims: vec![claim("roles")],
            origins: Some(vec!["https://a".to_owned(), "https://b".to_owned()]),
            ..rule(PathMatch::Exact(NormalPath::of("/a")))
        };
        let b = Rule {
            claims: vec![claim("roles"), claim("scp")],
            origins: None,
            ..rule(PathMatch::Exact(NormalPath::of("/b")))
        };
        let c = Rule {
            origins: Some(vec!["https://b".to_owned()]),
            ..rule(PathMatch::Exact(NormalPath::of("/c")))
        };
        let common = Rule::common(&[&a, &b, &c], String::new());
        assert_eq!(common.claims, vec![claim("roles"), claim("scp")]);
        assert_eq!(common.origins, Some(vec!["https://b".to_owned()]));
        assert_eq!(Rule::common(&[&b], String::new()).origins, None);
    }

    #[test]
    fn exact_and_prefix_match_every_spelling() {
        let exact = rule(PathMatch::Exact(NormalPath::of("/ws")));
        let prefix = rule(PathMatch::Directory(NormalPath::of("/calls/")));
        for path in ["/ws", "/WS", "//ws/", "/%77s?x=1", "/a/../ws"] {
            assert!(exact.matches(&NormalPath::of(path)), "{path}");
        }
        assert!(!exact.matches(&NormalPath::of("/ws/x")));
        for path in [
            "/calls/1/media",
            "/CALLS/1",
            "/calls",
            "//calls//2",
            "/x/../calls/3",
        ] {
            assert!(prefix.matches(&NormalPath::of(path)), "{path}");
        }
        assert!(!prefix.matches(&NormalPath::of("/call")));
        assert!(
            !prefix.matches(&NormalPath::of("/callsadmin/ws")),
            "whole segments"
        );
        assert!(!prefix.matches(&NormalPath::of("/ws")));
        // Undecidable: every rule matches.
        assert!(prefix.matches(&NormalPath::Undecidable));
    }
}
