//! Polling a resource the CA is working on: one `poll_until`, paced by the CA and a deadline.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::Client;
use super::error::{Error, Result};
use super::jws::{AccountKey, KeyId};
use super::text::shown;
use super::transport::Response;

/// The longest pause between two polls of an order, unless the CA asks for more: the order
/// alone is polled, so a short one costs one request, however many names it has.
const MAX_POLL_WAIT: Duration = Duration::from_secs(2);
/// How many of the CA's quickest round trips a first look at an order waits at least, while
/// the CA validates (it has to reach the server or name server that proves each name, over
/// about the same distance) or signs: a CA on the same machine is done in milliseconds, one an
/// ocean away takes a second or more and should not be asked ten times in between.
const ROUND_TRIPS_BEFORE_A_LOOK: u32 = 8;

impl Client {
    /// POST-as-GET `url` until `done` reads a finished `T` from an answer (Some); None is not
    /// finished yet, an error ends the polling. The first request goes out after `first_wait`
    /// or after [`first_look`] for this CA's round trip, whichever is longer; later ones after
    /// a wait that grows by half from there up to 2 s, or after the answer's `Retry-After` when
    /// that is longer (a `Retry-After` of 0 or in the past never makes it poll without pause).
    /// At `deadline` it gives up with the last status the CA reported.
    pub fn poll_until<T>(
        &self,
        key: &AccountKey,
        key_id: KeyId<'_>,
        url: &str,
        first_wait: Duration,
        deadline: Instant,
        done: impl Fn(&Response) -> Result<Option<T>>,
    ) -> Result<T> {
        let first_wait = first_wait.max(first_look(self.round_trip()));
        let mut delay = first_wait.max(Duration::from_millis(10));
        let mut wait = first_wait;
        loop {
            // In slices, so that a stop is seen within one.
            let until =
                Instant::now() + wait.min(deadline.saturating_duration_since(Instant::now()));
            while Instant::now() < until && !self.stop_requested() {
                thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
            }
            let response = self.post(key, key_id, url, None)?;
            if let Some(value) = done(&response)? {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                let last = serde_json::from_slice::<Value>(&response.body)
                    .ok()
                    .and_then(|v| v.get("status").map(|s| shown(&s.to_string()).into_owned()))
                    .unwrap_or_else(|| "unknown".into());
                return Err(Error::Timeout {
                    url: url.to_string(),
                    last,
                });
            }
            wait = response.retry_after.unwrap_or(delay).max(delay);
            delay = (delay * 3 / 2).min(MAX_POLL_WAIT);
        }
    }
}

/// The shortest wait before a first look at an order the CA is working on:
/// [`ROUND_TRIPS_BEFORE_A_LOOK`] of its quickest round trips, at most [`MAX_POLL_WAIT`].
fn first_look(round_trip: Option<Duration>) -> Duration {
    round_trip.map_or(Duration::ZERO, |rtt| {
        (rtt * ROUND_TRIPS_BEFORE_A_LOOK).min(MAX_POLL_WAIT)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_look_waits_eight_round_trips_of_the_ca_at_most_two_seconds() {
        assert_eq!(first_look(None), Duration::ZERO);
        let ms = Duration::from_millis;
        // Loopback: the caller's own floor decides.
        assert_eq!(
            first_look(Some(Duration::from_micros(300))),
            Duration::from_micros(2400)
        );
        // Across a continent, across an ocean, and a CA that takes its time.
        assert_eq!(first_look(Some(ms(30))), ms(240));
        assert_eq!(first_look(Some(ms(150))), ms(1200));
        assert_eq!(first_look(Some(ms(900))), MAX_POLL_WAIT);
    }
}
