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

use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::provider::ProviderId;
use crate::request::path::NormalPath;
use crate::request::spelling;

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

/// One rule: a path match and the providers it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: PathMatch,
    /// At least one, without repeats, in the order the rule names them.
    pub providers: Vec<ProviderId>,
    /// The match as configured (`/ws`, `/calls/*`), for the start-up log.
    pub shown: String,
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
    /// they have none in common). `shown` names it in logs.
    pub fn common(rules: &[&Rule], shown: String) -> Rule {
        let mut providers = rules
            .first()
            .map(|rule| rule.providers.clone())
            .unwrap_or_default();
        providers.retain(|id| rules.iter().all(|rule| rule.accepts(*id)));
        Rule {
            matcher: PathMatch::Exact(NormalPath::Undecidable),
            providers,
            shown,
        }
    }

    /// Whether this rule accepts tokens of provider `id`.
    pub fn accepts(&self, id: ProviderId) -> bool {
        self.providers.contains(&id)
    }

    /// The single-issuer form's rules: each of `paths` (default [`DEFAULT_PATH`]) exactly,
    /// with the one provider.
    pub(crate) fn exact_paths(paths: Option<Vec<String>>) -> Result<Vec<Rule>, ConfigError> {
        let paths = match paths {
            None => vec![DEFAULT_PATH.to_owned()],
            Some(paths) => crate::config::non_empty_strings("paths", paths)?,
        };
        paths
            .into_iter()
            .enumerate()
            .map(|(index, path)| {
                let normal = guarded_path(&format!("paths[{index}]"), &path)?;
                Ok(Rule {
                    matcher: PathMatch::Exact(normal),
                    providers: vec![ProviderId::at(0)],
                    shown: path,
                })
            })
            .collect()
    }

    /// The configured `rules` (a JSON array), naming providers among `names` (in index
    /// order).
    pub(crate) fn configured(raw: &Value, names: &[&str]) -> Result<Vec<Rule>, ConfigError> {
        let rules = match raw {
            Value::Array(rules) if !rules.is_empty() => rules,
            _ => {
                return Err(ConfigError::new(
                    "rules",
                    "must be a non-empty array: with no rule, nothing is guarded",
                ))
            }
        };
        rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                let field = format!("rules[{index}]");
                let rule = object(&field, rule, &["match", "requires"])?;
                let (matcher, shown) = path_match(&format!("{field}.match"), rule.get("match"))?;
                let providers =
                    required(&format!("{field}.requires"), rule.get("requires"), names)?;
                Ok(Rule {
                    matcher,
                    providers,
                    shown,
                })
            })
            .collect()
    }
}

/// The members of `value`, which must be an object of no member but `known`.
fn object<'a>(
    field: &str,
    value: &'a Value,
    known: &[&str],
) -> Result<&'a Map<String, Value>, ConfigError> {
    let Value::Object(members) = value else {
        return Err(ConfigError::new(field, "must be a JSON object"));
    };
    if let Some(unknown) = members.keys().find(|name| !known.contains(&name.as_str())) {
        return Err(ConfigError::new(
            &format!("{field}.{unknown}"),
            format!(
                "unknown field `{unknown}`, expected one of `{}`",
                known.join("`, `")
            ),
        ));
    }
    Ok(members)
}

/// `value`, which must be a string.
fn string<'a>(field: &str, value: &'a Value) -> Result<&'a str, ConfigError> {
    value
        .as_str()
        .ok_or_else(|| ConfigError::new(field, "must be a string"))
}

/// A rule's `match`: exactly one of `path` and `prefix`.
fn path_match(field: &str, raw: Option<&Value>) -> Result<(PathMatch, String), ConfigError> {
    let Some(raw) = raw else {
        return Err(ConfigError::new(field, "is required"));
    };
    let members = object(field, raw, &["path", "prefix"])?;
    match (members.get("path"), members.get("prefix")) {
        (Some(path), None) => {
            let field = format!("{field}.path");
            let path = string(&field, path)?;
            Ok((
                PathMatch::Exact(guarded_path(&field, path)?),
                path.to_owned(),
            ))
        }
        (None, Some(prefix)) => {
            let field = format!("{field}.prefix");
            let prefix = string(&field, prefix)?;
            let normal = guarded_path(&field, prefix)?;
            let matcher = if prefix.ends_with('/') {
                PathMatch::Directory(normal)
            } else {
                PathMatch::Prefix(normal)
            };
            Ok((matcher, format!("{prefix}*")))
        }
        _ => Err(ConfigError::new(
            field,
            "must give exactly one of \"path\" and \"prefix\"",
        )),
    }
}

/// A rule's `requires`: exactly one of `provider_name` and `requires_any`
/// (`{"requirements": [{"provider_name": ...}, ...]}`), every name one of `names`; the
/// providers, without repeats.
fn required(
    field: &str,
    raw: Option<&Value>,
    names: &[&str],
) -> Result<Vec<ProviderId>, ConfigError> {
    let Some(raw) = raw else {
        return Err(ConfigError::new(field, "is required"));
    };
    let members = object(field, raw, &["provider_name", "requires_any"])?;
    let named: Vec<(String, &Value)> =
        match (members.get("provider_name"), members.get("requires_any")) {
            (Some(name), None) => vec![(format!("{field}.provider_name"), name)],
            (None, Some(any)) => {
                let any_field = format!("{field}.requires_any");
                let list_field = format!("{any_field}.requirements");
                let requirements = object(&any_field, any, &["requirements"])?
                    .get("requirements")
                    .and_then(Value::as_array)
                    .filter(|list| !list.is_empty())
                    .ok_or_else(|| {
                        ConfigError::new(&list_field, "must be a non-empty array of requirements")
                    })?;
                let mut named = Vec::new();
                for (index, requirement) in requirements.iter().enumerate() {
                    let item = format!("{list_field}[{index}]");
                    let name = object(&item, requirement, &["provider_name"])?
                        .get("provider_name")
                        .ok_or_else(|| ConfigError::new(&item, "must give \"provider_name\""))?;
                    named.push((format!("{item}.provider_name"), name));
                }
                named
            }
            _ => {
                return Err(ConfigError::new(
                    field,
                    "must give exactly one of \"provider_name\" and \"requires_any\"",
                ))
            }
        };
    let mut providers = Vec::new();
    for (path, name) in named {
        let name = string(&path, name)?;
        let Some(index) = names.iter().position(|known| *known == name) else {
            return Err(ConfigError::new(
                &path,
                format!(
                    "{name:?} is not a provider (providers: {})",
                    names.join(", ")
                ),
            ));
        };
        let id = ProviderId::at(index);
        if !providers.contains(&id) {
            providers.push(id);
        }
    }
    Ok(providers)
}

/// A configured path to guard, normalised: it must start with `/`, have no query or
/// fragment, and be ASCII once percent-decoded (case is folded for ASCII only).
fn guarded_path(field: &str, path: &str) -> Result<NormalPath, ConfigError> {
    if !path.starts_with('/') || path.contains(['?', '#']) {
        return Err(ConfigError::new(
            field,
            format!(
                "{path:?} is not a path (it must start with '/' and have no query or fragment)"
            ),
        ));
    }
    if !spelling::is_foldable(path) {
        return Err(ConfigError::new(
            field,
            format!(
                "{path:?} is not ASCII once percent-decoded: wsgate compares paths ignoring \
                 ASCII case only, so it could not guard every spelling of it"
            ),
        ));
    }
    Ok(NormalPath::of(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(matcher: PathMatch) -> Rule {
        Rule {
            matcher,
            providers: vec![ProviderId::at(0)],
            shown: String::new(),
        }
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
