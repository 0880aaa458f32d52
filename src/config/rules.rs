//! `paths` (the single-issuer form) and `rules` (named providers) as [`Rule`]s.

use serde_json::{Map, Value};

use crate::config::{non_empty_strings, policies, ConfigError};
use crate::decision::policy::ClaimRequirement;
use crate::decision::rules::{PathMatch, Rule, DEFAULT_PATH};
use crate::provider::ProviderId;
use crate::request::path::NormalPath;
use crate::request::spelling;

/// The single-issuer form's rules: each of `paths` (default [`DEFAULT_PATH`]) exactly,
/// with the one provider and the top-level `claims` and `origins`.
pub(crate) fn exact_paths(
    paths: Option<Vec<String>>,
    claims: Vec<ClaimRequirement>,
    origins: Option<Vec<String>>,
) -> Result<Vec<Rule>, ConfigError> {
    let paths = match paths {
        None => vec![DEFAULT_PATH.to_owned()],
        Some(paths) => non_empty_strings("paths", paths)?,
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
                claims: claims.clone(),
                origins: origins.clone(),
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
            let rule = object(&field, rule, &["match", "requires", "claims", "origins"])?;
            let (matcher, shown) = path_match(&format!("{field}.match"), rule.get("match"))?;
            let providers = required(&format!("{field}.requires"), rule.get("requires"), names)?;
            let claims = match rule.get("claims") {
                Some(raw) => policies::claims(&format!("{field}.claims"), raw)?,
                None => Vec::new(),
            };
            let origins = match rule.get("origins") {
                Some(raw) => Some(policies::origins(&format!("{field}.origins"), raw)?),
                None => None,
            };
            Ok(Rule {
                matcher,
                providers,
                shown,
                claims,
                origins,
            })
        })
        .collect()
}

/// The members of `value`, which must be an object of no member but `known`.
pub(crate) fn object<'a>(
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
pub(crate) fn string<'a>(field: &str, value: &'a Value) -> Result<&'a str, ConfigError> {
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
