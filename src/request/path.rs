//! Whether a request path is a guarded one, decided so that it fails closed.
//!
//! A guard that compares `:path` with `/ws` byte for byte lets `/WS`, `/ws/`, `//ws`,
//! `/%77s`, `/ws;x=1`, `/./ws` and `/ws%2F` through, and a backend serves every one of them
//! as `/ws`: ASP.NET Core compares a percent-decoded path ignoring case, Tomcat and Spring
//! drop `;` parameters, many routers merge slashes and ignore a trailing one. So both the
//! request's path and each guarded path are reduced to a [`NormalPath`] before they are
//! compared, by one function, [`NormalPath::of`]:
//!
//! 1. the query and fragment are cut off (at the first raw `?` or `#`);
//! 2. the rest is percent-decoded until it stops changing (`%2F` and `%5C` included, so
//!    they become separators; see [`spelling::decode_fully`]);
//! 3. it is cut at the first NUL byte, where C-string backends stop reading, and at the
//!    first `?` or `#` that decoding revealed (`/ws%3Fx`: a decoding proxy sends `/ws?x`
//!    on, and its backend routes `/ws`);
//! 4. it is split into segments at every `/` and `\`; in each segment, everything from the
//!    first `;` on (a path parameter) is dropped;
//! 5. empty segments and `.` are dropped (repeated slashes merged, trailing slash ignored);
//!    `..` removes the segment before it (never above the root);
//! 6. each segment is case-folded ([`spelling::fold_case`]).
//!
//! Steps 4 and 5 are where backends disagree, so a path has up to four *readings*
//! ([`NormalPath::readings`]): with `;` parameters cut or kept as part of their segment, and
//! with `..` resolved or kept as a segment. Kestrel, Express, FastAPI and Go's ServeMux route
//! `/calls/..;x` to `/calls/{id}` (for them `..;x` is a name, not a dot segment), Tomcat
//! resolves it to `/`, and a backend behind a proxy that does not normalise may see
//! `/calls/%2e%2e` as a segment named `..`. Resolving `..` is the one step that removes
//! segments, so it is the one that could turn a guarded path into an unguarded one; the gate
//! ([`crate::decision::gate::Gate::rule_for`]) therefore guards a request by every rule that
//! matches any of its readings. [`NormalPath::of`] is the first reading (parameters cut, `..`
//! resolved), the one configured paths are reduced to.
//!
//! The result is only for deciding: the upstream receives the path as the client sent it.
//! A path still percent-encoded after every decoding round cannot be reduced; it is
//! [`NormalPath::Undecidable`], which every guarded path and every prefix matches.

use crate::request::path_only;
use crate::request::spelling;

/// A path as the gate compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NormalPath {
    /// `/`-joined normalised segments, always starting with `/`.
    Normal(String),
    /// Still percent-encoded after every decoding round: matches everything.
    Undecidable,
}

impl NormalPath {
    /// The normal form of `raw`, a `:path` value (query and fragment allowed) or a
    /// configured path: its first reading, parameters cut and `..` resolved.
    pub fn of(raw: &str) -> NormalPath {
        match decoded(raw) {
            Some((full, end)) => {
                let text = full.get(..end).unwrap_or_default();
                NormalPath::Normal(reading(text, Reading::CANONICAL))
            }
            None => NormalPath::Undecidable,
        }
    }

    /// Every distinct reading a backend could give `raw` (see the module docs), the normal
    /// form first: one for most paths, up to four when a segment holds `;` or is `..`.
    /// [`NormalPath::Undecidable`] alone for a path with a `..` segment whose decoding
    /// also changes its structure (an encoded `/` or `\`, a raw `\`, a `?`, `#` or NUL
    /// revealed): a backend that resolves `..` before decoding those, or without splitting
    /// on them (Kestrel keeps `%2F` inside a segment; Tomcat decodes `%3F` to a literal
    /// `?`), serves `/x%2Fy/../ws` or `/x%3F/../ws` as `/ws`, while any reading that decodes
    /// first does not. No legitimate client sends such a path.
    pub fn readings(raw: &str) -> Vec<NormalPath> {
        let path = path_only(raw);
        let Some((full, end)) = decoded(raw) else {
            return vec![NormalPath::Undecidable];
        };
        let text = full.get(..end).unwrap_or_default();
        let has_params = text.contains(';');
        let has_dot_dot = full
            .split(['/', '\\'])
            .any(|segment| segment.split(';').next() == Some(".."));
        let canonical = NormalPath::Normal(reading(text, Reading::CANONICAL));
        if !has_params && !has_dot_dot {
            return vec![canonical];
        }
        let separators = |text: &str| text.matches(['/', '\\']).count();
        let restructured =
            end < full.len() || path.contains('\\') || separators(&full) > separators(path);
        if has_dot_dot && restructured {
            return vec![NormalPath::Undecidable];
        }
        let mut readings = vec![canonical];
        for how in Reading::OTHERS {
            let other = NormalPath::Normal(reading(text, how));
            if !readings.contains(&other) {
                readings.push(other);
            }
        }
        readings
    }

    /// Whether this request path is the guarded path `guarded` (itself normal).
    pub fn is(&self, guarded: &NormalPath) -> bool {
        self.compare(guarded, |path, guarded| path == guarded)
    }

    /// Whether this request path starts with the prefix `prefix` (itself normal), the normal
    /// forms compared as text, as `jwt_authn` compares a `prefix` with a path: `/calls`
    /// takes `/calls`, `/calls/1` and `/callsx`.
    pub fn starts_with(&self, prefix: &NormalPath) -> bool {
        self.compare(prefix, |path, prefix| {
            prefix == "/" || path.starts_with(prefix)
        })
    }

    /// Whether this request path is the directory `dir` (itself normal) or lies under it,
    /// segment by segment: for a configured prefix that ends in `/`. Normalisation drops that
    /// slash, so `/calls/` takes `/calls` and `/calls/1` but not `/callsx`, which a later
    /// rule for other providers may guard.
    pub fn is_under(&self, dir: &NormalPath) -> bool {
        self.compare(dir, |path, dir| {
            dir == "/"
                || path
                    .strip_prefix(dir)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// `test` on the two normal forms; an undecidable path on either side matches.
    fn compare(&self, other: &NormalPath, test: impl Fn(&str, &str) -> bool) -> bool {
        match (self, other) {
            (NormalPath::Normal(path), NormalPath::Normal(other)) => test(path, other),
            _ => true,
        }
    }
}

/// `path` (without its query) cut before what percent-decoding would reveal as a query or
/// fragment: at its first `%` when its decoding holds a `?` or `#`, else whole. For what a
/// refused request leaves to Envoy's access log and wsgate's own log line: a token hidden
/// in `/ws%3Faccess_token=…` must not be written there either.
pub fn without_revealed_query(path: &str) -> &str {
    // Without a `%` nothing is revealed: the common case costs no decoding (every decision
    // logs its path through here).
    if !path.contains('%') {
        return path;
    }
    let reveals = spelling::decode_fully(path, false).map_or(true, |decoded| {
        decoded.iter().any(|&byte| matches!(byte, b'?' | b'#'))
    });
    if !reveals {
        return path;
    }
    match path.split('%').next() {
        Some(kept) if !kept.is_empty() => kept,
        _ => "/",
    }
}

/// How a backend reads the segments of a decoded path.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// `;` and what follows it dropped from each segment (Tomcat, Spring, Jetty).
    cut_params: bool,
    /// `..` removes the segment before it (RFC 3986 §5.2.4); otherwise it is a name.
    resolve_dot_dot: bool,
}

impl Reading {
    const CANONICAL: Reading = Reading {
        cut_params: true,
        resolve_dot_dot: true,
    };
    const OTHERS: [Reading; 3] = [
        Reading {
            cut_params: true,
            resolve_dot_dot: false,
        },
        Reading {
            cut_params: false,
            resolve_dot_dot: true,
        },
        Reading {
            cut_params: false,
            resolve_dot_dot: false,
        },
    ];
}

/// Steps 1 to 3 of the normal form: `raw`'s path percent-decoded until it stops changing,
/// and where step 3 cuts it (the first NUL, `?` or `#`, else its length); `None` when it is
/// undecidable.
fn decoded(raw: &str) -> Option<(String, usize)> {
    let full =
        String::from_utf8_lossy(&spelling::decode_fully(path_only(raw), false)?).into_owned();
    let end = full.find(['\0', '?', '#']).unwrap_or(full.len());
    Some((full, end))
}

/// Steps 4 to 6 of the normal form for one reading of `text`, already decoded.
fn reading(text: &str, how: Reading) -> String {
    let mut segments: Vec<String> = Vec::new();
    for segment in text.split(['/', '\\']) {
        let segment = if how.cut_params {
            segment.split(';').next().unwrap_or_default()
        } else {
            segment
        };
        match segment {
            "" | "." => {}
            ".." if how.resolve_dot_dot => {
                segments.pop();
            }
            _ => segments.push(spelling::fold_case(segment)),
        }
    }
    format!("/{}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(path: &str) -> bool {
        NormalPath::of(path).is(&NormalPath::of("/ws"))
    }

    /// Every spelling that some backend serves as `/ws`.
    #[test]
    fn each_variant_of_a_guarded_path_is_guarded() {
        for path in [
            "/ws",
            "/ws?x=1",
            "/ws#f",
            "/WS",
            "/Ws",
            "/ws/",
            "/ws//",
            "//ws",
            "///ws",
            "/%77s",
            "/%77%73",
            "/%57S",
            "/%2577s",
            "/ws;x=1",
            "/ws;",
            "/;x/ws",
            "/ws;jsessionid=1?x=2",
            "/./ws",
            "/ws/.",
            "/x/../ws",
            "/../ws",
            "/x/..;/ws",
            "/%2e/ws",
            "/x/%2e%2e/ws",
            "/ws%2F",
            "/%2Fws",
            "/%2fws",
            "\\ws",
            "/ws\\",
            "/%5Cws",
            "/%5cws%5c",
            "/ws%3Bx=1",
            "/ws%00.html",
            "/ws%3Fx",
            "/ws%23x",
            "/ws%253Fx=1",
            "/w\u{17f}",
            "/w%C5%BF",
            "ws",
        ] {
            assert!(guarded(path), "{path:?} must be guarded");
        }
    }

    #[test]
    fn unrelated_paths_are_not_guarded() {
        for path in [
            "/", "", "/wsx", "/w", "/ws2", "/ws.", "/ws%20", "/xws", "/ws/x", "/x/ws", "/w/s",
            "/ws..", "/.ws", "/ws/..", "/w%00s", "/w%3Fs",
        ] {
            assert!(!guarded(path), "{path:?} must not be guarded");
        }
    }

    #[test]
    fn configured_paths_are_normalised_the_same_way() {
        let configured = NormalPath::of("/Calls/Media/");
        assert_eq!(configured, NormalPath::Normal("/calls/media".into()));
        assert!(NormalPath::of("/calls//MEDIA").is(&configured));
        assert!(!NormalPath::of("/calls").is(&configured));
    }

    #[test]
    fn prefixes_use_the_same_normal_form() {
        let prefix = NormalPath::of("/calls/");
        for path in [
            "/calls/1/media",
            "/CALLS/1",
            "//calls%2F1",
            "/x/../calls/1",
            "/calls",
        ] {
            assert!(NormalPath::of(path).starts_with(&prefix), "{path:?}");
        }
        for path in ["/call", "/media/calls/1", "/"] {
            assert!(!NormalPath::of(path).starts_with(&prefix), "{path:?}");
        }
        assert!(
            NormalPath::of("/callsx").starts_with(&prefix),
            "text, as jwt_authn"
        );
        assert!(NormalPath::of("/anything").starts_with(&NormalPath::of("/")));
    }

    #[test]
    fn a_directory_prefix_takes_whole_segments_only() {
        let dir = NormalPath::of("/calls/");
        for path in ["/calls", "/calls/1/media", "/CALLS//1", "/x/../calls/1"] {
            assert!(NormalPath::of(path).is_under(&dir), "{path:?}");
        }
        for path in ["/callsx", "/calls-admin/1", "/call", "/"] {
            assert!(!NormalPath::of(path).is_under(&dir), "{path:?}");
        }
        assert!(NormalPath::of("/anything").is_under(&NormalPath::of("/")));
    }

    fn readings(raw: &str) -> Vec<String> {
        NormalPath::readings(raw)
            .into_iter()
            .map(|reading| match reading {
                NormalPath::Normal(path) => path,
                NormalPath::Undecidable => "(undecidable)".to_owned(),
            })
            .collect()
    }

    #[test]
    fn most_paths_have_one_reading() {
        for path in ["/ws", "/calls/1/media", "/%77s", "/./ws", "", "/"] {
            assert_eq!(
                NormalPath::readings(path),
                [NormalPath::of(path)],
                "{path:?}"
            );
        }
    }

    /// Parameters cut or kept, `..` resolved or kept: the readings some backend gives.
    #[test]
    fn dot_segments_and_parameters_have_every_reading() {
        assert_eq!(readings("/calls/..;x"), ["/", "/calls/..", "/calls/..;x"]);
        assert_eq!(readings("/calls/%2e%2e"), ["/", "/calls/.."]);
        assert_eq!(readings("/calls/x/../.."), ["/", "/calls/x/../.."]);
        // With encoded or backslash separators, `..` is undecidable (below).
        assert_eq!(readings("/calls/x%2F..%2F.."), ["(undecidable)"]);
        assert_eq!(readings("/calls/x\\..\\.."), ["(undecidable)"]);
        assert_eq!(
            readings("/calls/..;x/ws"),
            ["/ws", "/calls/../ws", "/calls/..;x/ws"]
        );
        assert_eq!(readings("/ws;v=1"), ["/ws", "/ws;v=1"]);
        assert_eq!(
            readings("/static/..;/ws"),
            ["/ws", "/static/../ws", "/static/..;/ws"]
        );
        // The first reading is always the normal form.
        for path in ["/calls/..;x", "/a/../b;c", "/%2e%2e/ws"] {
            assert_eq!(
                NormalPath::readings(path)[0],
                NormalPath::of(path),
                "{path}"
            );
        }
        let deep = format!("/%{}2e./ws", "25".repeat(spelling::MAX_DECODE_ROUNDS));
        assert_eq!(NormalPath::readings(&deep), [NormalPath::Undecidable]);
    }

    /// #25 review: `..` beside a decoding that changes the path's structure is undecidable:
    /// some backend resolves `..` first, or keeps the encoded separator in its segment.
    #[test]
    fn dot_segments_beside_encoded_structure_are_undecidable() {
        for path in [
            "/x%3F/../ws",
            "/%3F/../ws",
            "/x%23/../calls/1",
            "/ws%00/../calls/1",
            "/x%2Fy/../ws",
            "/x%5Cy/../calls/1",
            "/x\\y/../ws",
            "/x%252Fy/%2e%2e/ws",
            "/a%2F..;x/ws",
        ] {
            assert_eq!(
                NormalPath::readings(path),
                [NormalPath::Undecidable],
                "{path}"
            );
        }
        // Each alone is decided as before.
        assert_eq!(readings("/x%2Fy/ws"), ["/x/y/ws"]);
        assert_eq!(readings("/ws%3Fx"), ["/ws"]);
        assert_eq!(readings("/x/../ws"), ["/ws", "/x/../ws"]);
        assert_eq!(readings("/x\\ws"), ["/x/ws"]);
    }

    #[test]
    fn a_revealed_query_is_cut_for_logs() {
        assert_eq!(without_revealed_query("/ws"), "/ws");
        assert_eq!(without_revealed_query("/ws%20x"), "/ws%20x");
        assert_eq!(without_revealed_query("/ws%3Faccess_token=x"), "/ws");
        assert_eq!(without_revealed_query("/ws%2523x"), "/ws");
        assert_eq!(without_revealed_query("%3Fx"), "/");
    }

    #[test]
    fn an_undecidable_path_matches_everything() {
        let deep = format!("/%{}77s", "25".repeat(spelling::MAX_DECODE_ROUNDS));
        assert_eq!(NormalPath::of(&deep), NormalPath::Undecidable);
        assert!(NormalPath::of(&deep).is(&NormalPath::of("/ws")));
        assert!(NormalPath::of(&deep).starts_with(&NormalPath::of("/calls/")));
    }

    #[test]
    fn long_and_hostile_paths_are_cheap_and_safe() {
        // 60 KiB paths (Envoy's default header limit) of the costliest shapes: many decoding
        // rounds, many segments to pop, many escapes. Linear work stays far below the
        // bound; a quadratic normalisation would take seconds.
        let nested = format!("/{}77s", "%25".repeat(7)).repeat(5_000);
        let long = "/%25".repeat(20_000);
        let dots = "/..".repeat(20_000) + "/ws";
        let started = std::time::Instant::now();
        for _ in 0..10 {
            assert!(matches!(NormalPath::of(&nested), NormalPath::Normal(_)));
            assert!(matches!(NormalPath::of(&long), NormalPath::Normal(_)));
            assert!(guarded(&dots));
        }
        let took = started.elapsed();
        assert!(
            took.as_secs_f64() < 2.0,
            "30 normalisations of 60 KiB took {took:?}"
        );
        assert!(!guarded(&"/\u{ffff}".repeat(1000)));
        assert!(!guarded("/%ff%fe"));
    }
}
