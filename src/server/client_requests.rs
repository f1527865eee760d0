//! The requests this server's clients made and wait on: ids, deadlines, and what came back
//! (answers, errors, timeouts), which scenario expectations read. In memory only: a restart
//! starts the ids over, as a client reconnecting would.

use std::collections::{BTreeMap, BTreeSet};

use super::env::ServerEnv;
use super::observe::Observation;
use super::wire::Answer;

/// A client waits this long for an answer, as NATS clients time out.
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Requests waiting for an answer on one server, at most (new ones are refused beyond it).
pub const PENDING_REQUESTS_MAX: usize = 1_000;
/// Distinct successful answers kept for expectations (info answers carry counts, so they vary).
pub const ANSWERS_KEPT_MAX: usize = 1_000;

#[derive(Debug, Default)]
pub struct ClientRequests {
    /// Requests waiting for an answer: id → deadline on the monotonic clock.
    pending: BTreeMap<u64, u64>,
    /// No pending deadline is earlier (a lower bound, exact after every expiry): the meta
    /// layer's book is expired after every input, and a bound past the clock spares the walk.
    earliest_deadline_ms: u64,
    next_request: u64,
    /// Answers received and timeouts, for scenario expectations.
    pub answered: u64,
    pub timed_out: u64,
    pub errors: BTreeSet<String>,
    /// Successful answers, for scenario expectations (the first [`ANSWERS_KEPT_MAX`]).
    pub oks: BTreeSet<String>,
}

impl ClientRequests {
    /// A new request from a client of this server: its id, or `None` when too many wait.
    pub fn open(&mut self, now_ms: u64) -> Option<u64> {
        if self.pending.len() >= PENDING_REQUESTS_MAX {
            return None;
        }
        self.next_request += 1;
        let deadline = now_ms + REQUEST_TIMEOUT_MS;
        self.pending.insert(self.next_request, deadline);
        self.earliest_deadline_ms = self.earliest_deadline_ms.min(deadline);
        Some(self.next_request)
    }

    /// An answer for one of this server's requests (late or duplicate answers are dropped).
    pub fn on_answer(&mut self, env: &mut ServerEnv<'_>, request: u64, answer: Answer) {
        if self.pending.remove(&request).is_none() {
            return;
        }
        env.observe(Observation::RequestAnswered { request });
        self.answered += 1;
        match &answer {
            Err(e) => self.errors.insert(e.clone()),
            Ok(ok) if self.oks.len() < ANSWERS_KEPT_MAX => self.oks.insert(ok.clone()),
            Ok(_) => false,
        };
        env.trace_with("answer", &(request, &answer), || super::wire::describe_answer(request, &answer));
    }

    /// Requests past their deadline time out, as a client would see it.
    pub fn expire(&mut self, env: &mut ServerEnv<'_>, now_ms: u64) {
        if self.earliest_deadline_ms > now_ms {
            return;
        }
        self.earliest_deadline_ms = self.pending.values().copied().filter(|&at| at > now_ms).min().unwrap_or(u64::MAX);
        let expired: Vec<u64> = self.pending.iter().filter(|(_, &at)| at <= now_ms).map(|(&id, _)| id).collect();
        for request in expired {
            self.pending.remove(&request).expect("listed above");
            self.timed_out += 1;
            env.trace_with("request-timeout", &request, || format!("#{request}"));
            env.observe(Observation::RequestTimedOut { request });
        }
    }
}
