//! Polling a resource the CA is working on: one `poll_until`, paced by the CA's `Retry-After`,
//! its round trip and its past times, and a deadline.

use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::Client;
use super::error::{Error, Result};
use super::jws::{AccountKey, KeyId};
use super::text::shown;
use super::transport::Response;

/// The longest pause between two polls of an order that the schedule makes by itself (the
/// CA's `Retry-After` and its past times may ask for more): the order alone is polled, so a
/// short one costs one request, however many names it has.
const MAX_POLL_WAIT: Duration = Duration::from_secs(2);
/// The shortest pause between two polls: a `Retry-After` of 0 or in the past never makes it
/// poll without pause.
const MIN_POLL_WAIT: Duration = Duration::from_millis(10);
/// The most a first look waits on the strength of past times alone.
const MAX_FIRST_LOOK: Duration = Duration::from_secs(60);
/// How many past times of each kind are kept; their median is what is expected.
const SAMPLES: usize = 9;

/// What the CA is doing while an order is polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Validating the challenges that were just answered.
    Validating,
    /// Signing after finalize.
    Signing,
}

/// How long a CA took lately, in milliseconds, newest last: from the challenges answered to
/// the order no longer pending, and from finalize answered to the order no longer processing.
/// Kept per CA in `state/`; a time is the middle of the span in which the CA finished (after
/// the last poll that found it working, before the one that found it done), so a first look
/// that comes too late still teaches the next run to look earlier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_ms: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_ms: Vec<u32>,
}

impl Timings {
    fn of(&self, work: Work) -> &Vec<u32> {
        match work {
            Work::Validating => &self.validation_ms,
            Work::Signing => &self.signing_ms,
        }
    }

    /// The median of the times kept for `work`; None before the first.
    pub fn expected(&self, work: Work) -> Option<Duration> {
        let mut times = self.of(work).clone();
        if times.is_empty() {
            return None;
        }
        times.sort_unstable();
        Some(Duration::from_millis(u64::from(times[times.len() / 2])))
    }

    /// Adds a time for `work`, forgetting the oldest beyond [`SAMPLES`].
    pub fn add(&mut self, work: Work, took: Duration) {
        let times = match work {
            Work::Validating => &mut self.validation_ms,
            Work::Signing => &mut self.signing_ms,
        };
        times.push(u32::try_from(took.as_millis()).unwrap_or(u32::MAX));
        let skip = times.len().saturating_sub(SAMPLES);
        times.drain(..skip);
    }

    /// Forgets anything beyond [`SAMPLES`] a record from elsewhere (state/) may hold.
    pub fn bounded(mut self) -> Timings {
        for times in [&mut self.validation_ms, &mut self.signing_ms] {
            let skip = times.len().saturating_sub(SAMPLES);
            times.drain(..skip);
        }
        self
    }
}

/// When to poll: pure, so that tests feed it numbers.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// The caller's shortest first pause (its floor, or the `Retry-After` of the answer that
    /// started the wait).
    pub first_wait: Duration,
    /// The CA's quickest round trip so far.
    pub round_trip: Option<Duration>,
    /// How long the CA took lately ([`Timings::expected`]).
    pub expected: Option<Duration>,
}

impl Schedule {
    /// The pause before poll `n` (0 for the first), when the answer to the last one asked
    /// for `retry_after`.
    ///
    /// The first comes after the CA's usual time when it is known, else after one round trip
    /// (the CA has to reach the server or name server that proves each name, over about the
    /// same distance), and never before `first_wait`. Later ones start from a quarter of the
    /// usual time, a round trip or [`MIN_POLL_WAIT`], whichever is longest, and double up to
    /// 2 s (or that start, when longer). A `Retry-After` longer than the schedule's pause is
    /// waited for; a shorter one (0, a date in the past) changes nothing.
    pub fn wait(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let rtt = self.round_trip.unwrap_or(Duration::ZERO);
        if n == 0 {
            let usual = self.expected.map_or(rtt, |e| e.min(MAX_FIRST_LOOK));
            return usual.max(self.first_wait);
        }
        let step = rtt
            .max(MIN_POLL_WAIT)
            .max(self.expected.map_or(Duration::ZERO, |e| e / 4));
        let grown = step.saturating_mul(1 << (n - 1).min(16));
        let wait = grown.min(MAX_POLL_WAIT.max(step));
        retry_after.map_or(wait, |asked| asked.max(wait))
    }
}

impl Client {
    /// POST-as-GET `url`, an order the CA is doing `work` on, until `done` reads a finished
    /// `T` from an answer (Some); None is not finished yet, an error ends the polling. Paced
    /// by [`Schedule::wait`] from `first_wait`, this CA's round trip and its past times for
    /// `work`, to which the time this one took is added. At `deadline` it gives up with the
    /// last status the CA reported.
    pub fn poll_until<T>(
        &self,
        work: Work,
        (key, key_id): (&AccountKey, KeyId<'_>),
        url: &str,
        first_wait: Duration,
        deadline: Instant,
        done: impl Fn(&Response) -> Result<Option<T>>,
    ) -> Result<T> {
        let start = Instant::now();
        let schedule = Schedule {
            first_wait,
            round_trip: self.round_trip(),
            expected: self.lock_timings().expected(work),
        };
        let mut retry_after = None;
        // When the last poll that found the CA still working was sent.
        let mut still_working = Duration::ZERO;
        for n in 0.. {
            let wait = schedule.wait(n, retry_after);
            // In slices, so that a stop is seen within one.
            let until =
                Instant::now() + wait.min(deadline.saturating_duration_since(Instant::now()));
            while Instant::now() < until && !self.stop_requested() {
                thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
            }
            let sent = start.elapsed();
            let response = self.post(key, key_id, url, None)?;
            if let Some(value) = done(&response)? {
                self.lock_timings().add(work, (still_working + sent) / 2);
                return Ok(value);
            }
            still_working = sent;
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
            retry_after = response.retry_after;
        }
        unreachable!("the polls are counted without end")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The times the polls of `schedule` go out at, while the CA is not done before `done`,
    /// with `retry_after` on every answer: what a poll costs, without a clock.
    fn polls(schedule: Schedule, done: Duration, retry_after: Option<Duration>) -> Vec<Duration> {
        let mut at = Duration::ZERO;
        let mut sent = Vec::new();
        for n in 0..100 {
            at += schedule.wait(n, if n == 0 { None } else { retry_after });
            sent.push(at);
            if at >= done {
                break;
            }
        }
        sent
    }

    #[test]
    fn without_past_times_the_first_look_waits_one_round_trip() {
        let s = |rtt: Option<Duration>| Schedule {
            first_wait: ms(4),
            round_trip: rtt,
            expected: None,
        };
        assert_eq!(s(None).wait(0, None), ms(4));
        // Loopback: the caller's own floor decides.
        assert_eq!(s(Some(Duration::from_micros(300))).wait(0, None), ms(4));
        assert_eq!(s(Some(ms(50))).wait(0, None), ms(50));
        assert_eq!(s(Some(ms(150))).wait(0, None), ms(150));
        // A Retry-After the caller got first (the challenge's answer) is waited for.
        let told = Schedule {
            first_wait: ms(3000),
            ..s(Some(ms(50)))
        };
        assert_eq!(told.wait(0, None), ms(3000));
    }

    #[test]
    fn a_ca_close_by_is_polled_within_milliseconds() {
        let s = Schedule {
            first_wait: ms(4),
            round_trip: Some(Duration::from_micros(300)),
            expected: None,
        };
        assert_eq!(polls(s, ms(5), None), [ms(4), ms(14)]);
        let learnt = Schedule {
            expected: Some(ms(3)),
            ..s
        };
        assert_eq!(polls(learnt, ms(3), None), [ms(4)]);
    }

    #[test]
    fn a_validation_of_a_few_seconds_costs_a_handful_of_polls() {
        let far = Schedule {
            first_wait: ms(4),
            round_trip: Some(ms(50)),
            expected: None,
        };
        // Nothing known: doubling from a round trip, up to 2 s between polls.
        let sent = polls(far, ms(3000), None);
        assert_eq!(sent.len(), 7, "{sent:?}");
        assert!(*sent.last().unwrap() < ms(5200), "{sent:?}");
        // Known to take about 3 s: one or two polls.
        let known = Schedule {
            expected: Some(ms(3000)),
            ..far
        };
        assert_eq!(polls(known, ms(3000), None), [ms(3000)]);
        assert_eq!(polls(known, ms(3500), None), [ms(3000), ms(3750)]);
        // Ten seconds when it took three lately: still a handful.
        assert!(polls(known, ms(10_000), None).len() <= 6);
        // An instant validation at 50 ms: one poll, one round trip after the answer.
        assert_eq!(polls(far, ms(30), None), [ms(50)]);
    }

    #[test]
    fn a_longer_retry_after_is_waited_for_and_a_shorter_one_changes_nothing() {
        let s = Schedule {
            first_wait: ms(4),
            round_trip: Some(ms(50)),
            expected: None,
        };
        assert_eq!(
            s.wait(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(s.wait(9, Some(ms(700))), MAX_POLL_WAIT);
        assert_eq!(s.wait(1, Some(Duration::ZERO)), ms(50));
        let close = Schedule {
            round_trip: Some(Duration::from_micros(300)),
            ..s
        };
        assert_eq!(close.wait(1, Some(Duration::ZERO)), MIN_POLL_WAIT);
        assert_eq!(close.wait(3, Some(Duration::ZERO)), MIN_POLL_WAIT * 4);
        // A CA that says 1 s every time is asked about once a second, not more often.
        let sent = polls(close, Duration::from_secs(5), Some(Duration::from_secs(1)));
        assert!(sent.len() <= 7, "{sent:?}");
    }

    #[test]
    fn past_times_are_a_median_of_the_latest_nine() {
        let mut t = Timings::default();
        assert_eq!(t.expected(Work::Validating), None);
        for took in [900, 100, 200, 5000, 300] {
            t.add(Work::Validating, ms(took));
        }
        assert_eq!(t.expected(Work::Validating), Some(ms(300)));
        assert_eq!(t.expected(Work::Signing), None);
        for _ in 0..9 {
            t.add(Work::Validating, ms(40));
        }
        assert_eq!(t.validation_ms, vec![40; 9]);
        let long = Timings {
            signing_ms: (0..100).collect(),
            ..Timings::default()
        };
        assert_eq!(long.bounded().signing_ms, (91..100).collect::<Vec<u32>>());
    }

    #[test]
    fn a_first_look_that_came_late_teaches_an_earlier_one() {
        // The CA validates in 20 ms at 50 ms round trip: a run whose first poll found it done
        // records the middle of "before the first poll", so the next looks earlier; one that
        // looked too early records a later time. The first look settles around the CA's time,
        // and no run costs more than two polls.
        let mut t = Timings::default();
        let mut first = Vec::new();
        for _ in 0..6 {
            let s = Schedule {
                first_wait: ms(4),
                round_trip: Some(ms(50)),
                expected: t.expected(Work::Validating),
            };
            let sent = polls(s, ms(20), None);
            assert!(sent.len() <= 2, "{sent:?}");
            first.push(sent[0]);
            let before = if sent.len() > 1 {
                sent[sent.len() - 2]
            } else {
                Duration::ZERO
            };
            t.add(Work::Validating, (before + *sent.last().unwrap()) / 2);
        }
        assert_eq!(first[0], ms(50));
        assert!(first[1..].iter().all(|f| *f <= ms(25)), "{first:?}");
    }
}
