//! Bounds on tokens and keys: `max_lifetime_seconds` and `max_stale_keys_seconds`.

use serde_json::{json, Value};

use super::{base, error_field, parse, remote};
use crate::config::KeySource;

/// #25: `max_lifetime_seconds` and `max_stale_keys_seconds`, their defaults and the errors
/// that name them.
#[test]
fn lifetime_and_staleness_bounds() {
    let config = parse(&base()).unwrap();
    let policy = &config.providers[0].authenticator.policy;
    assert_eq!(policy.max_lifetime_seconds, None, "no bound unless given");
    let mut bounded = base();
    bounded["max_lifetime_seconds"] = json!(86_400);
    let config = parse(&bounded).unwrap();
    assert_eq!(
        config.providers[0]
            .authenticator
            .policy
            .max_lifetime_seconds,
        Some(86_400)
    );
    for bad in [json!(0), json!(-1), json!(1.5), json!("1")] {
        bounded["max_lifetime_seconds"] = bad.clone();
        assert_eq!(error_field(&bounded), "max_lifetime_seconds", "{bad}");
    }
    let remote_keys = |extra: Value| match parse(&remote(extra)).unwrap().providers[0].keys.clone()
    {
        KeySource::Remote(remote) => remote.max_stale_keys_seconds,
        KeySource::Inline(_) => panic!("remote keys"),
    };
    let source = json!({"jwks_uri": "https://i/k", "cluster": "c"});
    assert_eq!(remote_keys(source.clone()), 86_400, "a day by default");
    let mut with = source.clone();
    with["max_stale_keys_seconds"] = json!(0);
    assert_eq!(remote_keys(with.clone()), 0, "0: no limit");
    // At least two refresh intervals (600 s by default).
    with["max_stale_keys_seconds"] = json!(1199);
    assert_eq!(error_field(&remote(with.clone())), "max_stale_keys_seconds");
    with["refresh_interval_seconds"] = json!(599);
    assert_eq!(remote_keys(with.clone()), 1199);
    with["refresh_interval_seconds"] = json!(86_400);
    with.as_object_mut()
        .unwrap()
        .remove("max_stale_keys_seconds");
    assert_eq!(
        remote_keys(with),
        172_800,
        "the default follows a long interval"
    );
    let mut inline = base();
    inline["max_stale_keys_seconds"] = json!(3600);
    assert_eq!(
        error_field(&inline),
        "max_stale_keys_seconds",
        "remote only"
    );
}
