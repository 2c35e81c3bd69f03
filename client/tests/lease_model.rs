//! Property tests of the lease decisions against a model of memcached's lease semantics (one
//! key): several clients run `LeaseFlow` in random interleavings, with loaders that fail at
//! random and write-throughs and invalidations coming in between, on a clock the test moves.
//!
//! Checked: no lease (the CAS a `W` was handed out at) is won by two clients and stored twice;
//! a waiter never waits longer than its bound; every caller ends with an answer; a failed
//! loader never leaves the key blocked (the next reader can win at once).

use ferrocache_client::MetaResponse;
use ferrocache_client::patterns::lease::{
    self, Decision, Lease, LeaseFlow, LeaseOptions, LeaseReply,
};
use ferrocache_protocol::MetaCommand;
use ferrocache_protocol::reply::MetaStatus;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// memcached's item for the key: a placeholder is an empty value.
#[derive(Debug, Clone)]
struct ModelItem {
    value: Vec<u8>,
    cas: u64,
    stale: bool,
    /// A `W` was handed out and neither a store nor an invalidation has cleared it.
    token_sent: bool,
}

#[derive(Debug, Default)]
struct ModelServer {
    item: Option<ModelItem>,
    next_cas: u64,
}

impl ModelServer {
    fn bump(&mut self) -> u64 {
        self.next_cas += 1;
        self.next_cas
    }

    fn reply(status: MetaStatus, flags: String, value: Vec<u8>) -> MetaResponse {
        MetaResponse {
            status,
            flags: flags.into_bytes(),
            value,
        }
    }

    /// `mg <key> v c N<ttl>`.
    fn lease_read(&mut self) -> MetaResponse {
        if self.item.is_none() {
            let cas = self.bump();
            self.item = Some(ModelItem {
                value: Vec::new(),
                cas,
                stale: false,
                token_sent: true,
            });
            return Self::reply(
                MetaStatus::Value { len: 0 },
                format!("c{cas} W"),
                Vec::new(),
            );
        }
        let item = self.item.as_mut().unwrap();
        let mut flags = format!("c{}", item.cas);
        if !item.token_sent && item.stale {
            item.token_sent = true;
            flags.push_str(" W");
        } else if item.token_sent {
            flags.push_str(" Z");
        }
        if item.stale {
            flags.push_str(" X");
        }
        let len = item.value.len();
        Self::reply(MetaStatus::Value { len }, flags, item.value.clone())
    }

    /// `ms` with or without `C`, `md` with or without `I` and `C`.
    fn apply(&mut self, request: &ferrocache_client::MetaRequest) -> MetaStatus {
        let flags = String::from_utf8(request.flags.clone()).unwrap();
        let compare = flags
            .split(' ')
            .find_map(|t| t.strip_prefix('C'))
            .map(|c| c.parse::<u64>().unwrap());
        let invalidate = flags.split(' ').any(|t| t == "I");
        if let Some(cas) = compare {
            match &self.item {
                None => return MetaStatus::NotFound,
                Some(item) if item.cas != cas => return MetaStatus::Exists,
                _ => {}
            }
        }
        match request.command {
            MetaCommand::Set => {
                let cas = self.bump();
                self.item = Some(ModelItem {
                    value: request.value.clone(),
                    cas,
                    stale: false,
                    token_sent: false,
                });
                MetaStatus::Done
            }
            MetaCommand::Delete if invalidate => match self.item.take() {
                None => MetaStatus::NotFound,
                Some(mut item) => {
                    item.cas = self.bump();
                    item.stale = true;
                    item.token_sent = false;
                    self.item = Some(item);
                    MetaStatus::Done
                }
            },
            MetaCommand::Delete => match self.item.take() {
                None => MetaStatus::NotFound,
                Some(_) => MetaStatus::Done,
            },
            _ => unreachable!("the lease logic sends only ms and md"),
        }
    }
}

#[derive(Debug)]
enum ClientState {
    Read,
    Sleeping {
        until: Instant,
    },
    Loading {
        lease: Lease,
        current: Vec<u8>,
        steps_left: u32,
        fails: bool,
    },
    Done,
}

struct SimClient {
    flow: LeaseFlow,
    state: ClientState,
    started: Instant,
    slept: Duration,
}

/// One scheduling step: which client moves, how far the clock moves first, and what the
/// world does in between.
#[derive(Debug, Clone)]
enum Event {
    Step { client: usize, advance_ms: u64 },
    WriteThrough,
    Invalidate,
}

fn events(clients: usize) -> impl Strategy<Value = Vec<Event>> {
    let event = prop_oneof![
        10 => (0..clients, 0u64..15).prop_map(|(client, advance_ms)| Event::Step { client, advance_ms }),
        1 => Just(Event::WriteThrough),
        1 => Just(Event::Invalidate),
    ];
    proptest::collection::vec(event, 1..300)
}

const KEY: &[u8] = b"k";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn leases_are_won_once_waits_are_bounded_and_failures_release(
        clients in 2usize..7,
        load_steps in 1u32..6,
        failures in proptest::collection::vec(any::<bool>(), 7),
        schedule in events(7),
        max_wait_ms in 5u64..80,
    ) {
        let options = LeaseOptions {
            max_wait: Duration::from_millis(max_wait_ms),
            first_poll: Duration::from_millis(1),
            max_poll: Duration::from_millis(8),
            ..LeaseOptions::default()
        };
        let mut now = Instant::now();
        let mut server = ModelServer::default();
        let mut sims: Vec<SimClient> = (0..clients)
            .map(|_| SimClient {
                flow: LeaseFlow::new(options, now),
                state: ClientState::Read,
                started: now,
                slept: Duration::ZERO,
            })
            .collect();
        let mut winners: HashMap<u64, usize> = HashMap::new();
        let mut stored_leases: HashSet<u64> = HashSet::new();
        let mut write_version = 0u32;

        // The schedule, then round robin with time moving until everyone is done.
        let tail = (0..).map(|i| Event::Step { client: i % clients, advance_ms: 1 });
        for (steps, event) in schedule.into_iter().chain(tail).enumerate() {
            prop_assert!(steps < 100_000, "clients never finished");
            if sims.iter().all(|s| matches!(s.state, ClientState::Done)) {
                break;
            }
            let (index, advance_ms) = match event {
                Event::WriteThrough => {
                    write_version += 1;
                    let request = ferrocache_client::patterns::write_through::set_request(
                        KEY, format!("db{write_version}").as_bytes(), 60);
                    server.apply(&request);
                    continue;
                }
                Event::Invalidate => {
                    server.apply(&ferrocache_client::patterns::write_through::invalidate_request(KEY, 30));
                    continue;
                }
                Event::Step { client, advance_ms } => (client % clients, advance_ms),
            };
            now += Duration::from_millis(advance_ms);
            let sim = &mut sims[index];
            let state = std::mem::replace(&mut sim.state, ClientState::Done);
            sim.state = match state {
                ClientState::Done => ClientState::Done,
                ClientState::Sleeping { until } if now < until => ClientState::Sleeping { until },
                ClientState::Read | ClientState::Sleeping { .. } => {
                    let response = server.lease_read();
                    match sim.flow.on_reply(LeaseReply::from_response(&response), now) {
                        Decision::Serve(_) | Decision::LoadUncached(_) => ClientState::Done,
                        Decision::Wait(pause) => {
                            sim.slept += pause;
                            prop_assert!(sim.slept <= options.max_wait, "slept {:?}", sim.slept);
                            ClientState::Sleeping { until: now + pause }
                        }
                        Decision::Load(lease) => {
                            let cas = lease.cas.expect("the model always sends c");
                            prop_assert!(
                                winners.insert(cas, index).is_none(),
                                "lease at cas {} won twice", cas
                            );
                            ClientState::Loading {
                                lease,
                                current: response.value,
                                steps_left: load_steps,
                                fails: failures[index],
                            }
                        }
                    }
                }
                ClientState::Loading { lease, current, steps_left, fails } if steps_left > 0 => {
                    ClientState::Loading { lease, current, steps_left: steps_left - 1, fails }
                }
                ClientState::Loading { lease, current, fails, .. } => {
                    let loaded: Result<Vec<u8>, ()> =
                        if fails { Err(()) } else { Ok(b"loaded".to_vec()) };
                    let (follow_up, _answer) = lease::after_load(KEY, 60, &lease, current, loaded);
                    if let Some(request) = follow_up {
                        let status = server.apply(&request);
                        if request.command == MetaCommand::Set && status == MetaStatus::Done {
                            prop_assert!(stored_leases.insert(lease.cas.unwrap()));
                        }
                    }
                    ClientState::Done
                }
            };
            // A waiter decides by its deadline at the latest (plus the step that found it).
            if matches!(sims[index].state, ClientState::Sleeping { .. }) {
                let elapsed = now - sims[index].started;
                prop_assert!(elapsed <= options.max_wait + Duration::from_millis(15));
            }
        }
        // Nobody holds a lease now, so nothing may block the next reader: it gets a value or
        // wins (never `Z` on an empty placeholder).
        let next = LeaseReply::from_response(&server.lease_read());
        prop_assert!(next.win || next.has_value || !next.lost, "key left blocked: {:?}", server.item);
    }
}
