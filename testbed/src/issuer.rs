//! A real OpenID Connect issuer: discovery at `/.well-known/openid-configuration`, the JWKS
//! at `/keys`, a hit counter per path, and switches for every fault a test needs (down, slow,
//! error statuses, broken bodies, a discovery document naming another issuer, a JWKS with no
//! usable key).
//!
//! For the demo it also mints tokens (`GET /token?sub=..&aud=..&ttl=..&roles=..`, signed with the
//! newest key; a negative `ttl` mints one that expired that long ago), rotates keys
//! (`POST /rotate`: a fresh RSA key becomes the signing key; the set keeps the previous one
//! and drops any older), and serves the page for trying the gate from a browser at `/`
//! ([`TRY_PAGE`]).
//!
//! Its `iss` is its own base URL (`http://127.0.0.1:PORT`) unless given a public URL.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::http::read_head;
use crate::keys::{jwks, TestKey};

/// The audience minted tokens carry unless the request names one.
pub const DEMO_AUDIENCE: &str = "my-resource-id";
/// The role minted tokens carry unless `/token?roles=` says otherwise: the one
/// `envoy/envoy.yaml`'s `claims` require.
pub const DEMO_ROLE: &str = "media.stream";

/// The page for trying the gate from a browser, served at `/`: it mints tokens here and
/// opens WebSockets through the gate with each token source (`?gate=ws://HOST:PORT/ws`,
/// default port 10000 on this page's host).
pub const TRY_PAGE: &str = include_str!("../demo/try.html");

/// Path of the discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the JWKS.
pub const JWKS_PATH: &str = "/keys";

/// How the issuer answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Serve the documents.
    Normal,
    /// Close the port: connections are refused.
    Down,
    /// Serve normally after a delay.
    Slow(Duration),
    /// Send the body one byte at a time, this far apart.
    Drip(Duration),
    /// Answer every request with this status and a short body.
    Status(u16),
    /// Promise a longer body than is sent, then close.
    Truncated,
    /// Serve a body of this many bytes of JSON whitespace around the document.
    Oversized(usize),
    /// Serve a body that is not JSON.
    Malformed,
    /// Serve an HTML error page with status 200 and `text/html`.
    Html,
    /// Serve the JWKS as `text/plain`.
    WrongContentType,
    /// Discovery names another issuer.
    WrongIssuer,
    /// Discovery has no `jwks_uri`.
    NoJwksUri,
    /// The JWKS holds only a symmetric key.
    NoUsableKey,
}

struct State {
    /// Newest first: the first key signs minted tokens.
    keys: Vec<(&'static TestKey, String)>,
    rotations: usize,
    behaviour: Behaviour,
    hits: HashMap<String, usize>,
    /// When each request arrived, by path.
    hit_times: HashMap<String, Vec<std::time::Instant>>,
}

/// A running issuer; it serves until the process ends.
#[derive(Clone)]
pub struct Issuer {
    addr: SocketAddr,
    public_url: Option<String>,
    state: Arc<Mutex<State>>,
}

impl Issuer {
    /// Starts on a free loopback port with `keys` (each with its `kid`).
    pub fn start(keys: &[(&'static TestKey, &str)]) -> Issuer {
        Self::bind("127.0.0.1:0", None, keys).expect("bind the issuer")
    }

    /// Listens on `addr`; its `iss` is `public_url` when given (for example
    /// `http://issuer:8081` behind a container name), else `http://ADDR`.
    pub fn bind(
        addr: &str,
        public_url: Option<String>,
        keys: &[(&'static TestKey, &str)],
    ) -> std::io::Result<Issuer> {
        let listener = TcpListener::bind(addr)?;
        let issuer = Issuer {
            addr: listener.local_addr()?,
            public_url,
            state: Arc::new(Mutex::new(State {
                keys: keys
                    .iter()
                    .map(|(key, kid)| (*key, kid.to_string()))
                    .collect(),
                rotations: 0,
                behaviour: Behaviour::Normal,
                hits: HashMap::new(),
                hit_times: HashMap::new(),
            })),
        };
        let serving = issuer.clone();
        thread::spawn(move || serving.accept(listener));
        Ok(issuer)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its `iss`: the public URL, or `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.addr))
    }

    /// A token from the newest key for `sub` and `aud`, valid for `ttl` seconds (expired
    /// `-ttl` seconds ago when negative), with the demo's role ([`DEMO_ROLE`]).
    pub fn mint(&self, sub: &str, aud: &str, ttl: i64) -> Option<String> {
        self.mint_with_roles(sub, aud, ttl, &[DEMO_ROLE])
    }

    /// [`Issuer::mint`] with `roles` as the `roles` claim.
    pub fn mint_with_roles(
        &self,
        sub: &str,
        aud: &str,
        ttl: i64,
        roles: &[&str],
    ) -> Option<String> {
        let (key, kid) = self.with(|state| state.keys.first().cloned())?;
        let now = crate::now();
        let exp = now.saturating_add_signed(ttl);
        let iat = now.min(exp);
        let claims = json!({"iss": self.issuer(), "aud": aud, "sub": sub, "iat": iat, "exp": exp,
                            "roles": roles});
        Some(key.sign(json!({ "kid": kid, "typ": "JWT" }), &claims))
    }

    /// Makes a fresh RSA key the signing key; the set keeps the previous key and drops older
    /// ones. Returns the new `kid`.
    pub fn rotate(&self) -> String {
        let key: &'static TestKey = Box::leak(Box::new(TestKey::rsa(
            jwt_compact::alg::ModulusBits::TwoKibibytes,
        )));
        self.with(|state| {
            state.rotations += 1;
            let kid = format!("demo-key-{}", state.rotations + 1);
            state.keys.insert(0, (key, kid.clone()));
            state.keys.truncate(2);
            kid
        })
    }

    /// The `kid`s served now, newest first.
    pub fn kids(&self) -> Vec<String> {
        self.with(|state| state.keys.iter().map(|(_, kid)| kid.clone()).collect())
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.issuer())
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.issuer())
    }

    /// Replaces the served keys.
    pub fn set_keys(&self, keys: &[(&'static TestKey, &str)]) {
        self.with(|state| {
            state.keys = keys
                .iter()
                .map(|(key, kid)| (*key, kid.to_string()))
                .collect()
        });
    }

    /// Changes how it answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.with(|state| state.behaviour = behaviour);
    }

    /// Requests received on `path` so far (not counting refused connections).
    pub fn hits(&self, path: &str) -> usize {
        self.with(|state| state.hits.get(path).copied().unwrap_or(0))
    }

    /// When each request on `path` arrived, oldest first: to check fetches against the
    /// fetcher's schedule (one per refresh interval for all workers, never two close together).
    pub fn hit_times(&self, path: &str) -> Vec<std::time::Instant> {
        self.with(|state| state.hit_times.get(path).cloned().unwrap_or_default())
    }

    /// The shortest time between two requests on `path` (`None` before the second): one
    /// fetch per refresh for all workers shows as no two requests closer than the interval.
    pub fn shortest_gap(&self, path: &str) -> Option<std::time::Duration> {
        let times = self.hit_times(path);
        times.windows(2).map(|pair| pair[1] - pair[0]).min()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }

    fn accept(&self, listener: TcpListener) {
        listener.set_nonblocking(true).expect("non-blocking accept");
        let mut listener = Some(listener);
        loop {
            let down = self.with(|state| state.behaviour == Behaviour::Down);
            match (&listener, down) {
                (Some(_), true) => listener = None, // close the port
                (None, false) => {
                    listener = TcpListener::bind(self.addr).ok().inspect(|l| {
                        let _ = l.set_nonblocking(true);
                    })
                }
                _ => {}
            }
            let accepted = listener.as_ref().and_then(|l| l.accept().ok());
            match accepted {
                Some((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let issuer = self.clone();
                    thread::spawn(move || issuer.serve(stream));
                }
                None => thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream);
        while let Some(head) = read_head(&mut reader) {
            let path = head.path.split('?').next().unwrap_or_default().to_owned();
            if path == "/" || path == "/try" {
                if !respond(reader.get_mut(), 200, "text/html; charset=utf-8", TRY_PAGE) {
                    return;
                }
                continue;
            }
            if path == "/token" || path == "/rotate" {
                if !self.demo_endpoint(reader.get_mut(), &head) {
                    return;
                }
                continue;
            }
            if self.with(|state| state.behaviour == Behaviour::Down) {
                return; // a real outage takes open connections down too
            }
            let (behaviour, keys) = self.with(|state| {
                *state.hits.entry(path.clone()).or_default() += 1;
                let at = std::time::Instant::now();
                state.hit_times.entry(path.clone()).or_default().push(at);
                (state.behaviour.clone(), state.keys.clone())
            });
            let keep_going = self.answer(reader.get_mut(), &path, &behaviour, &keys);
            if !keep_going {
                return;
            }
        }
    }

    /// Writes one answer; `false` when the connection must close.
    fn answer(
        &self,
        stream: &mut TcpStream,
        path: &str,
        behaviour: &Behaviour,
        keys: &[(&'static TestKey, String)],
    ) -> bool {
        let document = match path {
            DISCOVERY_PATH => {
                let issuer = if *behaviour == Behaviour::WrongIssuer {
                    "https://impostor.example".to_owned()
                } else {
                    self.issuer()
                };
                let mut doc = json!({ "issuer": issuer, "jwks_uri": self.jwks_url(), "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"] });
                if *behaviour == Behaviour::NoJwksUri {
                    doc.as_object_mut().map(|o| o.remove("jwks_uri"));
                }
                doc.to_string()
            }
            JWKS_PATH if *behaviour == Behaviour::NoUsableKey => {
                json!({"keys": [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]}).to_string()
            }
            JWKS_PATH => {
                let pairs: Vec<(&TestKey, &str)> =
                    keys.iter().map(|(key, kid)| (*key, kid.as_str())).collect();
                jwks(&pairs).to_string()
            }
            _ => return respond(stream, 404, "text/plain", "not found"),
        };
        match behaviour {
            Behaviour::Normal
            | Behaviour::WrongIssuer
            | Behaviour::NoJwksUri
            | Behaviour::NoUsableKey
            | Behaviour::Down => respond(stream, 200, "application/json", &document),
            Behaviour::Slow(delay) => {
                thread::sleep(*delay);
                respond(stream, 200, "application/json", &document)
            }
            Behaviour::Drip(gap) => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", document.len());
                if stream.write_all(head.as_bytes()).is_err() {
                    return false;
                }
                for byte in document.as_bytes() {
                    if stream.write_all(&[*byte]).is_err() {
                        return false;
                    }
                    thread::sleep(*gap);
                }
                true
            }
            Behaviour::Status(status) => respond(stream, *status, "text/plain", "issuer trouble"),
            Behaviour::Truncated => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", document.len() + 100);
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&document.as_bytes()[..document.len() / 2]);
                false
            }
            Behaviour::Oversized(size) => {
                let padding = " ".repeat(size.saturating_sub(document.len()));
                respond(
                    stream,
                    200,
                    "application/json",
                    &format!("{document}{padding}"),
                )
            }
            Behaviour::Malformed => {
                respond(stream, 200, "application/json", "{\"keys\": [ {\"kty\": ")
            }
            Behaviour::Html => respond(
                stream,
                200,
                "text/html",
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            ),
            Behaviour::WrongContentType => respond(stream, 200, "text/plain", &document),
        }
    }
}

impl Issuer {
    /// `/token` and `/rotate`.
    fn demo_endpoint(&self, stream: &mut TcpStream, head: &crate::http::Head) -> bool {
        let query: HashMap<&str, &str> = head
            .path
            .split_once('?')
            .map(|(_, query)| {
                query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .collect()
            })
            .unwrap_or_default();
        if head.path.starts_with("/rotate") {
            if head.method != "POST" {
                return respond(stream, 405, "text/plain", "POST /rotate\n");
            }
            let kid = self.rotate();
            return respond(
                stream,
                200,
                "text/plain",
                &format!("signing with {kid}; serving {:?}\n", self.kids()),
            );
        }
        let sub = query.get("sub").copied().unwrap_or("demo-caller");
        let aud = query.get("aud").copied().unwrap_or(DEMO_AUDIENCE);
        let ttl = query
            .get("ttl")
            .and_then(|ttl| ttl.parse().ok())
            .unwrap_or(300);
        let roles: Vec<&str> = match query.get("roles") {
            None => vec![DEMO_ROLE],
            Some(roles) => roles.split(',').filter(|role| !role.is_empty()).collect(),
        };
        match self.mint_with_roles(sub, aud, ttl, &roles) {
            Some(token) => respond(stream, 200, "text/plain", &format!("{token}\n")),
            None => respond(stream, 503, "text/plain", "no signing key\n"),
        }
    }
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> bool {
    let text = format!(
        "HTTP/1.1 {status} Whatever\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).is_ok()
}
