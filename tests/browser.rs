//! A real browser against the demo stack: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `make setup` installs where `apt-get` is available), driven
//! through WebDriver, opens the page the demo issuer serves (`make demo-up` prints it) and
//! clicks each row: a token in a `Sec-WebSocket-Protocol` entry beside an application
//! subprotocol, in the query, in a cookie the page sets, and no token, a forged one, one
//! refused by a policy (its roles) and an expired one.
//!
//! What a browser does that the hand-made clients of the other tests do not: it refuses a
//! handshake whose answer names no offered subprotocol, it cannot set `Authorization`, it
//! sends cookies by its own rules, and it shows a refused handshake only as close code 1006.
//! Checked from both ends: what the page shows, and what the echo upstream recorded.
//!
//! A missing browser or driver fails the test, naming the packages; it never skips. Set
//! `WSGATE_CHROMIUM` and `WSGATE_CHROMEDRIVER` to use others. The screenshot goes to
//! `target/browser/try-page.png` (not committed).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use testbed::demo::DemoStack;
use testbed::echo::Seen;
use testbed::envoy::workspace_root;

/// `$env` when set, else the first of `candidates` that exists, else one of their names on
/// `PATH`; panics naming the packages.
fn locate(env: &str, candidates: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates
        .iter()
        .map(PathBuf::from)
        .chain(candidates.iter().flat_map(|candidate| {
            let name = PathBuf::from(candidate);
            let name = name.file_name().map(PathBuf::from).unwrap_or_default();
            on_path.iter().map(move |dir| dir.join(&name))
        }))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no {} found (looked for {candidates:?}; set {env}). Install Debian's `chromium` \
                 and `chromium-driver` (`make setup` does where apt-get is available); the \
                 browser tests never skip",
                candidates[0]
            )
        })
}

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Driver {
    fn start() -> Driver {
        let binary = locate(
            "WSGATE_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let logs = workspace_root().join("target/browser");
        std::fs::create_dir_all(&logs).unwrap();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                logs.join("chromedriver.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, addr }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let chromium = locate(
        "WSGATE_CHROMIUM",
        &[
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ],
    );
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1500,1100"]
        }
    });
    let capabilities = capabilities.as_object().cloned().unwrap();
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://{}", driver.addr))
        .await
        .unwrap_or_else(|e| panic!("Chromium through chromedriver did not start: {e}"))
}

/// What the page shows in one row once it has settled.
#[derive(Debug)]
struct Row {
    state: String,
    outcome: String,
    code: String,
    protocol: String,
    echo: String,
    /// The page's "what the upstream received" cell.
    upstream: String,
    /// The echo upstream's report of the upgrade request, as the page received it.
    report: Option<Value>,
}

/// Clicks row `case`'s button and waits (at most 15 s) for the row to settle.
async fn click_through(page: &Client, case: &str) -> Row {
    page.find(Locator::Css(&format!("#case-{case} button")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let script = format!(
        "const row = document.getElementById('case-{case}');
         const cell = (name) => row.querySelector('td.' + name).textContent;
         return {{state: row.dataset.state || '', outcome: cell('outcome'), code: cell('code'),
                  protocol: cell('protocol'), echo: cell('echo'), upstream: cell('upstream'),
                  report: row.dataset.report || null}};"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let row = page.execute(&script, vec![]).await.unwrap();
        let state = row["state"].as_str().unwrap_or_default().to_owned();
        if state == "open" || state == "refused" {
            let text = |name: &str| row[name].as_str().unwrap_or_default().to_owned();
            return Row {
                state,
                outcome: text("outcome"),
                code: text("code"),
                protocol: text("protocol"),
                echo: text("echo"),
                upstream: text("upstream"),
                report: row["report"]
                    .as_str()
                    .map(|report| serde_json::from_str(report).unwrap()),
            };
        }
        assert!(
            Instant::now() < deadline,
            "row {case} did not settle within 15 s: {row}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The upgrade request the upstream recorded most recently, and everything in it as text.
fn last_upgrade(stack: &DemoStack) -> (Seen, String) {
    let seen = stack
        .echo
        .seen()
        .into_iter()
        .rev()
        .find(|seen| seen.header("upgrade").is_some())
        .expect("the upstream saw an upgrade request");
    let everything = format!("{} {} {:?}", seen.method, seen.path, seen.headers);
    (seen, everything)
}

#[test]
fn a_browser_connects_with_each_token_source_and_is_refused_without_a_valid_token() {
    let stack = DemoStack::start().unwrap();
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let page = browser(&driver).await;
        page.goto(&stack.page_url()).await.unwrap();
        let title = page.title().await.unwrap();
        assert!(title.contains("wsgate"), "page title {title:?}");

        // Accepted: each source opens, negotiates the application subprotocol, echoes, and
        // the upstream receives the verified identity and no token.
        for case in ["subprotocol", "query", "cookie"] {
            let row = click_through(&page, case).await;
            assert_eq!(row.state, "open", "{case}: {row:?}");
            assert_eq!(row.outcome, "opened, echoed, closed", "{case}: {row:?}");
            assert_eq!(row.protocol, "chat.v1", "{case}: {row:?}");
            assert_eq!(row.echo, format!("hello from {case}"), "{case}: {row:?}");
            assert_eq!(row.code, "1000", "{case}: {row:?}");
            for line in [
                "GET /ws",
                "sec-websocket-protocol: chat.v1",
                "x-jwt-sub: browser-user",
                "(no token among them)",
            ] {
                assert!(row.upstream.contains(line), "{case}: page shows {row:?}");
            }

            let report = row.report.clone().expect("the upstream's report");
            let headers = report["headers"].as_array().unwrap();
            let header = |name: &str| {
                headers
                    .iter()
                    .filter(|pair| pair[0] == name)
                    .map(|pair| pair[1].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            };
            assert_eq!(header("x-jwt-sub"), ["browser-user"], "{case}: {report}");
            assert_eq!(
                header("sec-websocket-protocol"),
                ["chat.v1"],
                "{case}: {report}"
            );
            assert!(header("authorization").is_empty(), "{case}: {report}");
            assert_eq!(report["path"], "/ws", "{case}: the token parameter is cut");
            assert!(
                !report.to_string().contains("access_token"),
                "{case}: a token source reached the upstream: {report}"
            );

            // The same seen from the upstream's own record, not through the page.
            let (seen, everything) = last_upgrade(&stack);
            assert_eq!(seen.header("x-jwt-sub"), Some("browser-user"));
            assert!(!everything.contains("access_token"), "{case}: {everything}");
            assert!(
                !everything.contains("eyJ"),
                "{case}: a JWT upstream: {everything}"
            );
        }

        // Refused: the browser sees only a failed connection (1006), and nothing reaches the
        // upstream; Envoy's access log says why.
        let upgrades_before = stack.echo.seen().len();
        for (case, reason, status) in [
            ("none", "missing_token", 401),
            ("forged", "bad_signature", 401),
            ("role", "claims_not_satisfied", 403),
            ("expired", "expired", 401),
        ] {
            let row = click_through(&page, case).await;
            assert_eq!(row.state, "refused", "{case}: {row:?}");
            assert_eq!(row.code, "1006", "{case}: {row:?}");
            assert!(row.report.is_none(), "{case}: {row:?}");
            assert!(row.upstream.is_empty(), "{case}: {row:?}");
            let log = stack
                .envoy
                .stdout_with(&format!("reason={reason} "), Duration::from_secs(10));
            assert!(
                log.contains(&format!("{status} decision=deny reason={reason} ")),
                "{case}: no {status} with reason={reason} in the access log:\n{log}"
            );
        }
        assert_eq!(
            stack.echo.seen().len(),
            upgrades_before,
            "a refused handshake reached the upstream"
        );

        // The page's own "run every row" settles every row as one click at a time did.
        page.find(Locator::Id("run-all"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let states = "return document.body.dataset.done === 'true'
            ? [...document.querySelectorAll('tr[data-case]')]
                .map(r => r.dataset.state + ' ' + r.querySelector('td.code').textContent) : null;";
        let deadline = Instant::now() + Duration::from_secs(30);
        let states = loop {
            let states = page.execute(states, vec![]).await.unwrap();
            if !states.is_null() {
                break states;
            }
            assert!(
                Instant::now() < deadline,
                "run every row did not finish in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            states,
            json!([
                "open 1000",
                "open 1000",
                "open 1000",
                "refused 1006",
                "refused 1006",
                "refused 1006",
                "refused 1006"
            ])
        );

        let screenshot = page.screenshot().await.unwrap();
        let dir = workspace_root().join("target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("try-page.png"), screenshot).unwrap();
        page.close().await.unwrap();
    });
    assert_eq!(stack.envoy.vm_failures(), 0, "{}", stack.envoy.log());
}
