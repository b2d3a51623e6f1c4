//! The client of one CA: its directory, signed requests with fresh nonces, and downloads.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::error::{Error, Result};
use super::jws::{AccountKey, KeyId};
use super::poll::Timings;
use super::transport::{
    BRIEF_REFUSAL_RETRIES, Http, PEM_CHAIN, Response, Transport, is_brief_refusal,
};
use super::wire::{Directory, RenewalInfo};

/// How many times one request is sent again after a `badNonce` answer.
const BAD_NONCE_RETRIES: usize = 10;

/// One CA: its directory, one HTTPS agent with kept-alive connections, one nonce pool.
/// Shared by every thread of a run.
pub struct Client {
    http: Http,
    pub directory_url: String,
    pub directory: Directory,
    /// The CA's clock (its `Date` header) minus ours, in seconds, when it sent one.
    pub clock_skew: Option<i64>,
    /// How long the CA took to validate and to sign, lately: where polling starts.
    timings: Mutex<Timings>,
}

impl Client {
    /// Fetches the directory at `directory_url`. This is the first request of every run that
    /// talks to the CA.
    pub fn connect(directory_url: &str, transport: &Transport) -> Result<Client> {
        let http = Http::new(transport).map_err(|msg| Error::Transport {
            url: directory_url.to_string(),
            msg,
        })?;
        let response = http.get(directory_url)?;
        let directory = response.json()?;
        http.pace.learn(directory_url, &directory);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Client {
            http,
            directory_url: directory_url.to_string(),
            directory,
            clock_skew: response
                .date
                .map(|date| date.cast_signed().saturating_sub(now.cast_signed())),
            timings: Mutex::new(Timings::default()),
        })
    }

    /// How long this CA took to validate and to sign in past runs and in this one so far.
    pub fn timings(&self) -> Timings {
        self.lock_timings().clone()
    }

    /// Starts from what past runs learnt of this CA's times.
    pub fn set_timings(&self, timings: Timings) {
        *self.lock_timings() = timings;
    }

    pub(super) fn lock_timings(&self) -> MutexGuard<'_, Timings> {
        // A poisoned record only means another thread panicked while pushing a number.
        self.timings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Has `sink` told of every `newOrder` the CA accepts from now on, with the time it was
    /// answered (Unix seconds), before the order goes back to whoever sent it: so that what
    /// counts orders can note each one at once.
    pub fn on_order(&self, sink: super::transport::OrderSink) {
        self.http.on_order(sink);
    }

    /// How many HTTP requests this client has sent.
    pub fn requests(&self) -> usize {
        self.http.requests()
    }

    /// How long to wait at most for the CA to validate or to sign, when the built-in limit is
    /// `normal`: that, or the shorter limit [`Transport::deadlines`] sets for tests.
    pub fn wait_limit(&self, normal: Duration) -> Duration {
        self.http.deadlines.wait(normal)
    }

    /// True once the run was asked to stop (see [`Transport::stopped`]).
    pub(super) fn stop_requested(&self) -> bool {
        (self.http.stopped)()
    }

    /// A signed POST (RFC 8555 §6.2). `payload` None is POST-as-GET. A `badNonce` answer is
    /// retried with the nonce it carries, and a `503` with a short `Retry-After` after that
    /// time, each a bounded number of times. Any other non-2xx answer is an
    /// [`Error::Problem`].
    pub fn post(
        &self,
        key: &AccountKey,
        key_id: KeyId<'_>,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<Response> {
        let (mut tries, mut refused) = (0, 0);
        loop {
            let nonce = self.nonce()?;
            let answer = key
                .jws(url, &nonce, key_id, payload)
                .map_err(Error::from)
                .and_then(|body| self.http.send(url, Some(body)));
            self.http.nonces.answered();
            match answer {
                Err(Error::Problem { problem, .. })
                    if problem.is("badNonce") && tries < BAD_NONCE_RETRIES =>
                {
                    tries += 1;
                }
                // The pacer holds the request until the time the CA gave.
                Err(e) if is_brief_refusal(&e) && refused < BRIEF_REFUSAL_RETRIES => {
                    refused += 1;
                }
                other => return other,
            }
        }
    }

    /// The quickest round trip to the CA so far: the network's share of every request, without
    /// most of the CA's own work. None before the first answer.
    pub fn round_trip(&self) -> Option<Duration> {
        self.http.quickest()
    }

    /// RFC 9773 renewal information for `cert_id` (unauthenticated GET), with the answer's
    /// `Retry-After`. None when the CA offers none.
    pub fn renewal_info(&self, cert_id: &str) -> Result<Option<(RenewalInfo, Option<Duration>)>> {
        let Some(base) = &self.directory.renewal_info else {
            return Ok(None);
        };
        let url = format!("{}/{cert_id}", base.trim_end_matches('/'));
        let response = self.http.get(&url)?;
        Ok(Some((response.json()?, response.retry_after)))
    }

    /// Downloads `url` by POST-as-GET, expecting a PEM certificate chain.
    pub fn download_chain(
        &self,
        key: &AccountKey,
        key_id: KeyId<'_>,
        url: &str,
    ) -> Result<Response> {
        let response = self.post(key, key_id, url, None)?;
        response.expect_type(PEM_CHAIN)?;
        Ok(response)
    }

    /// A nonce for a signed request about to be sent, from the pool (see
    /// [`super::nonce::NoncePool::take`]) or else from `newNonce`. The request counts as in
    /// flight until the caller tells the pool it was answered.
    fn nonce(&self) -> Result<String> {
        let pool = &self.http.nonces;
        match pool.take(self.http.stopped) {
            Some(nonce) => Ok(nonce),
            None => self
                .http
                .new_nonce(&self.directory.new_nonce)
                .inspect_err(|_| pool.answered()),
        }
    }

    /// Puts a nonce from `newNonce` in the pool when it is empty, for a first signed request
    /// that is sure to come; a failure is left for that request to meet.
    pub fn stock_nonce(&self) {
        if !self.http.nonces.is_empty() {
            return;
        }
        if let Ok(nonce) = self.http.new_nonce(&self.directory.new_nonce) {
            self.http.nonces.put(nonce);
        }
    }
}
