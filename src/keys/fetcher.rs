//! One VM's key fetcher: when to fetch, which document comes next, and what a finished
//! attempt did to the shared key set, as a state machine without the host.
//!
//! It takes events with the time (a tick, a call dispatched, an answer, a dispatch that
//! failed) and returns what the glue must do: dispatch this endpoint, or report how an
//! attempt finished (published, dropped, failed) so the glue can log and count it. The
//! shared state it works on is a [`JwksCache`]; the glue owns the host calls, and tests drive
//! two fetchers over one in-memory store with simulated time.
//!
//! An attempt: on a tick, when the schedule or a request with an unknown `kid` asks for a
//! fetch and this VM wins the lease ([`JwksCache::begin`]), the first document is
//! dispatched: the discovery document (then the `jwks_uri` it names) or the JWKS. Only the
//! answer to the call in flight is taken; any other (late, or from a call this fetcher
//! gave up) is ignored.

use crate::keys::jwks::{KeyLimits, KeyReport, KeySet};
use crate::keys::jwks_cache::{Begin, JwksCache, PublishError, SharedState, Ticket, Trigger};
use crate::keys::remote::{self, Endpoint, FetchError};
use crate::keys::remote::{RemoteDocument, RemoteKeys};
use crate::shared::SharedStore;

/// A call for the glue to dispatch (GET, `accept: application/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub endpoint: Endpoint,
    pub timeout_ms: u64,
}

/// What a tick asks of the glue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TickOutcome {
    /// A fetch starts: dispatch this, then call [`KeyFetcher::dispatched`] or
    /// [`KeyFetcher::failed_to_dispatch`].
    pub dispatch: Option<Dispatch>,
    /// An unknown-`kid` refetch was asked for and refused (rate-limited): the requests
    /// waiting for one are to be decided now.
    pub release_unknown_keys: bool,
}

/// How an attempt finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// The JWKS at `url` was published (or found unchanged); the shared state before and
    /// after, and what the document held besides its usable keys.
    Published {
        url: String,
        keys: usize,
        report: KeyReport,
        before: SharedState,
        after: SharedState,
    },
    /// The JWKS was good but not published (see [`PublishError`]); the attempt is counted
    /// as finished so that waiting requests are decided.
    NotPublished { url: String, why: PublishError },
    /// The attempt failed; the last good key set stays.
    Failed {
        error: FetchError,
        before: SharedState,
        after: SharedState,
    },
}

/// What an answer asks of the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The next document of the attempt: dispatch it as after a tick.
    Dispatch(Dispatch),
    /// The attempt is over.
    Finished(Finished),
    /// Not the call in flight: nothing to do.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Discovery { jwks_cluster: String },
    Jwks { url: String },
}

#[derive(Debug)]
struct InFlight {
    ticket: Ticket,
    /// The host's id of the call, once dispatched.
    call: Option<u32>,
    stage: Stage,
}

/// The fetcher of one VM for one remote key source.
#[derive(Debug)]
pub struct KeyFetcher {
    remote: RemoteKeys,
    issuer: String,
    limits: KeyLimits,
    in_flight: Option<InFlight>,
}

impl KeyFetcher {
    /// A fetcher for `remote`, checking discovery against `issuer`, parsing within `limits`.
    pub fn new(remote: RemoteKeys, issuer: String, limits: KeyLimits) -> Self {
        KeyFetcher {
            remote,
            issuer,
            limits,
            in_flight: None,
        }
    }

    /// The largest document to read from an answer (`max_document_bytes`).
    pub fn max_document_bytes(&self) -> usize {
        self.remote.max_document_bytes
    }

    /// Whether `call` is the call in flight.
    pub fn expects(&self, call: u32) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|flight| flight.call == Some(call))
    }

    /// A tick at `now_ms`; `wants_refetch` when a request waits for an unknown `kid`.
    pub fn on_tick<S: SharedStore>(
        &mut self,
        cache: &JwksCache<S>,
        now_ms: u64,
        wants_refetch: bool,
    ) -> TickOutcome {
        let mut outcome = TickOutcome::default();
        if self.in_flight.is_some() {
            return outcome;
        }
        let begin = match wants_refetch.then(|| cache.begin(now_ms, Trigger::UnknownKey)) {
            Some(Begin::Fetch(ticket)) => Begin::Fetch(ticket),
            Some(Begin::Idle) => {
                outcome.release_unknown_keys = true;
                cache.begin(now_ms, Trigger::Scheduled)
            }
            _ => cache.begin(now_ms, Trigger::Scheduled),
        };
        if let Begin::Fetch(ticket) = begin {
            let (endpoint, stage) = match &self.remote.document {
                RemoteDocument::Discovery {
                    discovery,
                    jwks_cluster,
                } => (
                    discovery.clone(),
                    Stage::Discovery {
                        jwks_cluster: jwks_cluster.clone(),
                    },
                ),
                RemoteDocument::Jwks(jwks) => (
                    jwks.clone(),
                    Stage::Jwks {
                        url: jwks.url.clone(),
                    },
                ),
            };
            self.in_flight = Some(InFlight {
                ticket,
                call: None,
                stage,
            });
            outcome.dispatch = Some(self.dispatch(endpoint));
        }
        outcome
    }

    /// The host took the dispatch asked for last, as call `call`.
    pub fn dispatched(&mut self, call: u32) {
        if let Some(flight) = &mut self.in_flight {
            flight.call = Some(call);
        }
    }

    /// The host refused the dispatch asked for last: the attempt fails with `error`.
    pub fn failed_to_dispatch<S: SharedStore>(
        &mut self,
        cache: &mut JwksCache<S>,
        error: FetchError,
        now_ms: u64,
        jitter: f64,
    ) -> Option<Finished> {
        let flight = self.in_flight.take()?;
        Some(finish(cache, &flight.ticket, Err(error), now_ms, jitter))
    }

    /// The answer to call `call`: the body of a 200 within `max_document_bytes`, or why
    /// there is none ([`remote::judge`]). `jitter` in `[0, 1)` spreads the next refresh.
    pub fn on_answer<S: SharedStore>(
        &mut self,
        cache: &mut JwksCache<S>,
        call: u32,
        answer: Result<Vec<u8>, FetchError>,
        now_ms: u64,
        jitter: f64,
    ) -> Step {
        if !self.expects(call) {
            return Step::Ignored;
        }
        let Some(InFlight { ticket, stage, .. }) = self.in_flight.take() else {
            return Step::Ignored;
        };
        let body = match answer {
            Ok(body) => body,
            Err(error) => {
                return Step::Finished(finish(cache, &ticket, Err(error), now_ms, jitter))
            }
        };
        match stage {
            Stage::Discovery { jwks_cluster } => {
                let next = remote::jwks_uri_from_discovery(&body, &self.issuer).and_then(|uri| {
                    Endpoint::parse(&uri, &jwks_cluster)
                        .map_err(|why| FetchError::Discovery(format!("jwks_uri: {why}")))
                });
                match next {
                    Ok(endpoint) => {
                        self.in_flight = Some(InFlight {
                            ticket,
                            call: None,
                            stage: Stage::Jwks {
                                url: endpoint.url.clone(),
                            },
                        });
                        Step::Dispatch(self.dispatch(endpoint))
                    }
                    Err(error) => {
                        Step::Finished(finish(cache, &ticket, Err(error), now_ms, jitter))
                    }
                }
            }
            Stage::Jwks { url } => {
                let parsed = KeySet::parse(&body, self.limits)
                    .map(|(keys, report)| (url, body, keys.len(), report))
                    .map_err(|error| FetchError::Jwks(error.to_string()));
                Step::Finished(finish(cache, &ticket, parsed, now_ms, jitter))
            }
        }
    }

    fn dispatch(&self, endpoint: Endpoint) -> Dispatch {
        Dispatch {
            endpoint,
            timeout_ms: self.remote.fetch_timeout_ms,
        }
    }
}

/// Publishes a good JWKS, or records the failure, under `ticket`.
fn finish<S: SharedStore>(
    cache: &mut JwksCache<S>,
    ticket: &Ticket,
    outcome: Result<(String, Vec<u8>, usize, KeyReport), FetchError>,
    now_ms: u64,
    jitter: f64,
) -> Finished {
    match outcome {
        Ok((url, document, keys, report)) => {
            match cache.succeed(ticket, &document, keys, now_ms, jitter) {
                Ok((before, after)) => Finished::Published {
                    url,
                    keys,
                    report,
                    before,
                    after,
                },
                Err(why) => {
                    cache.abandon(ticket);
                    Finished::NotPublished { url, why }
                }
            }
        }
        Err(error) => {
            let (before, after) = cache.fail(ticket, &error.to_string(), now_ms, jitter);
            Finished::Failed {
                error,
                before,
                after,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::jwks_cache::Timing;
    use crate::shared::memory::Memory;
    use testbed::keys::{jwks, P256, RSA_2048};

    const ISSUER: &str = "https://issuer.example";

    fn remote(discovery: bool) -> RemoteKeys {
        let document = if discovery {
            RemoteDocument::Discovery {
                discovery: Endpoint::parse(
                    &format!("{ISSUER}/.well-known/openid-configuration"),
                    "idp",
                )
                .unwrap(),
                jwks_cluster: "keys".into(),
            }
        } else {
            RemoteDocument::Jwks(Endpoint::parse(&format!("{ISSUER}/keys"), "idp").unwrap())
        };
        RemoteKeys {
            document,
            fetch_timeout_ms: 5_000,
            refresh_interval_seconds: 600,
            min_refresh_interval_seconds: 30,
            max_document_bytes: 262_144,
            max_stale_keys_seconds: 86_400,
        }
    }

    /// One VM: its fetcher and its handle on the shared store.
    struct Vm<'a> {
        fetcher: KeyFetcher,
        cache: JwksCache<&'a Memory>,
        next_call: u32,
    }

    impl<'a> Vm<'a> {
        fn new(memory: &'a Memory, owner: u64, discovery: bool) -> Self {
            let timing = Timing {
                refresh_interval_ms: 600_000,
                min_refresh_interval_ms: 30_000,
                lease_ms: 11_000,
                max_stale_ms: 0,
            };
            let cache = JwksCache::new(memory, "wsgate/t", owner, timing, KeyLimits::default());
            cache.init();
            Vm {
                fetcher: KeyFetcher::new(remote(discovery), ISSUER.into(), KeyLimits::default()),
                cache,
                next_call: owner as u32 * 100,
            }
        }

        /// A tick; a dispatch it asks for is taken by the host, whose call id is returned.
        fn tick(&mut self, now: u64, wants_refetch: bool) -> (Option<(u32, Dispatch)>, bool) {
            let outcome = self.fetcher.on_tick(&self.cache, now, wants_refetch);
            let dispatched = outcome.dispatch.map(|dispatch| (self.take(), dispatch));
            (dispatched, outcome.release_unknown_keys)
        }

        fn take(&mut self) -> u32 {
            self.next_call += 1;
            self.fetcher.dispatched(self.next_call);
            self.next_call
        }

        fn answer(&mut self, call: u32, body: &[u8], now: u64) -> Step {
            self.fetcher
                .on_answer(&mut self.cache, call, Ok(body.to_vec()), now, 0.0)
        }
    }

    fn discovery_document() -> Vec<u8> {
        format!(r#"{{"issuer":"{ISSUER}","jwks_uri":"{ISSUER}/keys"}}"#).into_bytes()
    }

    fn jwks_document() -> Vec<u8> {
        jwks(&[(&RSA_2048, "a"), (&P256, "b")])
            .to_string()
            .into_bytes()
    }

    fn published(step: Step) -> SharedState {
        match step {
            Step::Finished(Finished::Published { after, .. }) => after,
            other => panic!("expected a publication, got {other:?}"),
        }
    }

    #[test]
    fn discovery_then_jwks_then_published_for_every_vm() {
        let memory = Memory::default();
        let mut one = Vm::new(&memory, 1, true);
        let mut two = Vm::new(&memory, 2, true);
        let (Some((call, first)), _) = one.tick(0, false) else {
            panic!("the first tick fetches")
        };
        assert!(first.endpoint.path.ends_with("openid-configuration"));
        assert_eq!(two.tick(0, false).0, None, "VM 2 waits for VM 1's lease");
        let Step::Dispatch(next) = one.answer(call, &discovery_document(), 10) else {
            panic!("the JWKS comes next")
        };
        assert_eq!(
            (next.endpoint.cluster.as_str(), next.endpoint.path.as_str()),
            ("keys", "/keys")
        );
        let call = one.take();
        let after = published(one.answer(call, &jwks_document(), 20));
        assert_eq!((after.version, after.key_count, after.completed), (1, 2, 1));
        assert_eq!(two.cache.keys().unwrap().len(), 2);
        assert_eq!(two.tick(1_000, false).0, None, "not due for anyone");
    }

    #[test]
    fn late_and_unknown_answers_are_ignored() {
        let memory = Memory::default();
        let mut one = Vm::new(&memory, 1, false);
        let (Some((call, _)), _) = one.tick(0, false) else {
            panic!("fetches")
        };
        assert_eq!(one.answer(call + 7, &jwks_document(), 5), Step::Ignored);
        let failed =
            one.fetcher
                .on_answer(&mut one.cache, call, Err(FetchError::Status(503)), 10, 0.0);
        assert!(
            matches!(failed, Step::Finished(Finished::Failed { .. })),
            "{failed:?}"
        );
        // The same call answering again, after the attempt ended: ignored.
        assert_eq!(one.answer(call, &jwks_document(), 20), Step::Ignored);
        assert!(one.cache.keys().is_none());
    }

    /// VM 1's fetch outlives its lease, VM 2 takes over and publishes; VM 1's late answer
    /// is dropped without touching VM 2's set, and still counts as a finished attempt.
    #[test]
    fn a_lapsed_lease_drops_the_late_answer() {
        let memory = Memory::default();
        let mut one = Vm::new(&memory, 1, false);
        let mut two = Vm::new(&memory, 2, false);
        let (Some((slow, _)), _) = one.tick(0, false) else {
            panic!("fetches")
        };
        let (Some((fast, _)), _) = two.tick(11_000, false) else {
            panic!("the lease lapsed: VM 2 fetches")
        };
        let newer = jwks(&[(&P256, "newer")]).to_string().into_bytes();
        assert_eq!(published(two.answer(fast, &newer, 11_100)).version, 1);
        let late = one.answer(slow, &jwks_document(), 11_200);
        assert_eq!(
            late,
            Step::Finished(Finished::NotPublished {
                url: format!("{ISSUER}/keys"),
                why: PublishError::LeaseLapsed
            })
        );
        let state = one.cache.state();
        assert_eq!((state.version, state.key_count, state.completed), (1, 1, 2));
        assert_eq!(one.cache.keys().unwrap().len(), 1, "VM 2's set stays");
        assert!(
            one.tick(11_300, false).0.is_none(),
            "VM 1 is free, nothing is due"
        );
    }

    /// Two VMs ticking together on every tick: one fetch per attempt, never two.
    #[test]
    fn racing_vms_fetch_once_per_refresh() {
        let memory = Memory::default();
        let mut vms = [Vm::new(&memory, 1, false), Vm::new(&memory, 2, false)];
        let mut fetches = 0;
        for tick in 0..20_000u64 {
            let now = tick * 100;
            for vm in &mut vms {
                if let (Some((call, _)), _) = vm.tick(now, false) {
                    fetches += 1;
                    published(vm.answer(call, &jwks_document(), now + 50));
                }
            }
        }
        // 2 000 s at a 600 s interval: the first fetch, then at 600, 1 200 and 1 800 s.
        assert_eq!(fetches, 4);
    }

    /// A flood of requests with unknown kids: one refetch per `min_refresh_interval` across
    /// both VMs; in between, every tick that asks is told to release the waiters.
    #[test]
    fn a_flood_of_unknown_kids_costs_one_fetch_per_interval() {
        let memory = Memory::default();
        let mut vms = [Vm::new(&memory, 1, false), Vm::new(&memory, 2, false)];
        let (Some((call, _)), _) = vms[0].tick(0, false) else {
            panic!("fetches")
        };
        published(vms[0].answer(call, &jwks_document(), 10));
        let (mut fetches, mut released) = (0, 0);
        for tick in 1..=600u64 {
            let now = tick * 100; // 60 s of ticks, every VM always wanting a refetch
            for vm in &mut vms {
                let (dispatched, release) = vm.tick(now, true);
                if let Some((call, _)) = dispatched {
                    fetches += 1;
                    published(vm.answer(call, &jwks_document(), now + 20));
                }
                released += usize::from(release);
            }
        }
        assert_eq!(fetches, 2, "at 0.1 s and 30.1 s");
        assert!(released > 1_000, "{released}");
    }

    #[test]
    fn a_refused_dispatch_is_a_failed_attempt() {
        let memory = Memory::default();
        let mut one = Vm::new(&memory, 1, true);
        assert!(one.fetcher.on_tick(&one.cache, 0, false).dispatch.is_some());
        let finished = one.fetcher.failed_to_dispatch(
            &mut one.cache,
            FetchError::Dispatch("BadArgument".into()),
            0,
            0.0,
        );
        let Some(Finished::Failed { after, .. }) = finished else {
            panic!("{finished:?}")
        };
        assert_eq!((after.failures, after.completed), (1, 1));
        assert!(one
            .fetcher
            .failed_to_dispatch(&mut one.cache, FetchError::NoResponse, 0, 0.0)
            .is_none());
    }

    #[test]
    fn a_discovery_document_for_another_issuer_fails_the_attempt() {
        let memory = Memory::default();
        let mut one = Vm::new(&memory, 1, true);
        let (Some((call, _)), _) = one.tick(0, false) else {
            panic!("fetches")
        };
        let other = br#"{"issuer":"https://evil.example","jwks_uri":"https://evil.example/keys"}"#;
        match one.answer(call, other, 5) {
            Step::Finished(Finished::Failed {
                error: FetchError::Discovery(why),
                ..
            }) => assert!(why.contains("not the configured issuer"), "{why}"),
            step => panic!("{step:?}"),
        }
    }
}
