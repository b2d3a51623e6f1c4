//! Pacing requests under the CA's per-endpoint limits: one token bucket and one-second window
//! per endpoint class, shared by every thread of a client, with the class of a URL taken from
//! the directory.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::wire::Directory;

/// The share of a published limit the client allows itself: a bucket exactly as large and fast
/// as the CA's would meet its limit whenever the network bunches two requests together.
const MARGIN: f64 = 0.9;
/// The most lateness a bucket allows for: a CA two seconds away is paced as one a second
/// away, rather than hardly at all.
const MAX_LATE: Duration = Duration::from_secs(2);
/// The longest pause a CA's `503` with `Retry-After` holds an endpoint class; beyond it the
/// answer is an error of the run, to be tried again later.
pub const MAX_HOLD: Duration = Duration::from_secs(60);

/// The endpoints a CA limits apart, as its directory names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Directory,
    NewNonce,
    NewAccount,
    NewOrder,
    RenewalInfo,
    /// Every other URL of the CA: orders, authorizations, challenges, finalize, certificates.
    Other,
}

impl Class {
    /// Every class, in the order of [`Limits`]' fields and of the buckets.
    pub const ALL: [Class; 6] = [
        Class::Directory,
        Class::NewNonce,
        Class::NewAccount,
        Class::NewOrder,
        Class::RenewalInfo,
        Class::Other,
    ];

    /// Its name in `RATE_LIMITS`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Directory => "directory",
            Class::NewNonce => "new-nonce",
            Class::NewAccount => "new-account",
            Class::NewOrder => "new-order",
            Class::RenewalInfo => "renewal-info",
            Class::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One limit: `per_second` requests a second on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s:{}", self.per_second, self.burst)
    }
}

/// The limit of every endpoint class, in [`Class::ALL`]'s order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits(pub [Rate; 6]);

impl Default for Limits {
    /// Let's Encrypt's published figures (its "overall requests" limits per IP address).
    fn default() -> Self {
        let rate = |per_second, burst| Rate { per_second, burst };
        Limits([
            rate(40.0, 40.0),
            rate(20.0, 10.0),
            rate(5.0, 15.0),
            rate(300.0, 200.0),
            rate(1000.0, 100.0),
            rate(250.0, 125.0),
        ])
    }
}

impl Limits {
    pub fn of(&self, class: Class) -> Rate {
        self.0[class.index()]
    }

    /// The defaults changed by `spec`, `RATE_LIMITS`' value: white-space separated
    /// `CLASS=N/UNIT[:BURST]` (UNIT `s`, `m` or `h`; BURST, when left out, one second's worth
    /// and at least 1). Err says what is wrong without repeating the value.
    pub fn parse(spec: &str) -> Result<Limits, String> {
        let mut limits = Limits::default();
        for item in spec.split_whitespace() {
            let (name, rate) = item
                .split_once('=')
                .ok_or("each limit is CLASS=N/UNIT[:BURST]")?;
            let class = Class::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Class::ALL.iter().map(|c| c.name()).collect();
                    format!("a class is one of {}", names.join(", "))
                })?;
            let (rate, burst) = match rate.split_once(':') {
                Some((rate, burst)) => (rate, Some(burst)),
                None => (rate, None),
            };
            let (count, unit) = rate.split_once('/').ok_or("a rate is N/s, N/m or N/h")?;
            let seconds = match unit {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err("a rate is N/s, N/m or N/h".into()),
            };
            let count: f64 = positive(count).ok_or("a rate's count is a positive number")?;
            let per_second = count / seconds;
            if per_second < 1.0 / 3600.0 {
                return Err("a rate is at least 1/h".into());
            }
            let burst = match burst {
                Some(b) => positive(b).ok_or("a burst is a positive number")?,
                None => per_second.max(1.0),
            };
            limits.0[class.index()] = Rate { per_second, burst };
        }
        Ok(limits)
    }
}

fn positive(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0 && *n < 1e9)
}

/// How many new orders one account may create in a sliding window (Let's Encrypt: 300 in 3
/// hours), counted by the client so that a big run stops short of the CA's refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLimit {
    pub orders: u32,
    /// The window, in seconds.
    pub window: i64,
}

impl Default for OrderLimit {
    fn default() -> Self {
        OrderLimit {
            orders: 300,
            window: 3 * 3600,
        }
    }
}

impl OrderLimit {
    /// `N/WINDOW`, the window in seconds or with a unit: `300/3h`, `50/90m`, `5/3600`. Err
    /// says what is wrong without repeating the value.
    pub fn parse(spec: &str) -> Result<OrderLimit, String> {
        const FORM: &str = "it is N/WINDOW, as 300/3h (units s, m, h, d)";
        let (orders, window) = spec.trim().split_once('/').ok_or(FORM)?;
        let orders: u32 = orders.parse().ok().filter(|n| *n > 0).ok_or(FORM)?;
        let (number, unit) = match window.find(|c: char| !c.is_ascii_digit()) {
            Some(at) => window.split_at(at),
            None => (window, "s"),
        };
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(FORM.into()),
        };
        let window = number
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0 && *n <= 366 * 86_400)
            .ok_or(FORM)?
            * seconds;
        Ok(OrderLimit { orders, window })
    }

    /// How many more orders fit at `now`, given when the account's past orders were sent.
    pub fn room(&self, sent: &[i64], now: i64) -> usize {
        let recent = sent.iter().filter(|&&t| now - t < self.window).count();
        (self.orders as usize).saturating_sub(recent)
    }

    /// `sent` without the times that have left the window at `now`.
    pub fn recent(&self, sent: &[i64], now: i64) -> Vec<i64> {
        sent.iter()
            .copied()
            .filter(|&t| now - t < self.window)
            .collect()
    }
}

impl fmt::Display for OrderLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.window;
        match (w % 86_400, w % 3600, w % 60) {
            (0, _, _) => write!(f, "{} new orders in {} d", self.orders, w / 86_400),
            (_, 0, _) => write!(f, "{} new orders in {} h", self.orders, w / 3600),
            (_, _, 0) => write!(f, "{} new orders in {} min", self.orders, w / 60),
            _ => write!(f, "{} new orders in {} s", self.orders, w),
        }
    }
}

/// One endpoint class's pacing: pure, fed the time, handing out times to send at rather than
/// refusals. Two rules, each at [`MARGIN`] of the CA's figures: the CA's own token bucket (its
/// burst at once, then its rate), and a sliding window: no one second, as the CA counts, holds
/// more requests than the rate (a bucket alone lets its burst and a second's refill through in
/// one second). A small batch goes out at once; a long run is held to the rate.
#[derive(Debug, Clone)]
pub struct Bucket {
    per_second: f64,
    /// The burst allowed for: [`MARGIN`] of the CA's, less what lateness may bunch onto it.
    burst: f64,
    /// [`MARGIN`] of the CA's burst.
    full_burst: f64,
    /// Tokens at `at`; below zero when requests are booked ahead.
    tokens: f64,
    at: Option<Instant>,
    /// The most requests in any one second (0: a limit per minute or hour, no window).
    in_a_second: usize,
    /// The times booked lately, in order: the last `in_a_second` of them.
    booked: VecDeque<Instant>,
    /// How much later than a request booked after it one may reach the CA: two round trips,
    /// the TCP and TLS handshakes of a new connection the other does not need
    /// ([`Bucket::arrive_late`]).
    late: Duration,
}

impl Bucket {
    /// A full bucket for `rate`, kept at [`MARGIN`] of its rate and burst (at least one
    /// request at once), with a window of [`MARGIN`] of the rate in whole requests.
    pub fn new(rate: Rate) -> Bucket {
        let burst = (rate.burst * MARGIN).floor().max(1.0);
        Bucket {
            per_second: rate.per_second * MARGIN,
            burst,
            full_burst: burst,
            tokens: burst,
            at: None,
            in_a_second: (rate.per_second * MARGIN).floor() as usize,
            booked: VecDeque::new(),
            late: Duration::ZERO,
        }
    }

    /// Tells the bucket how much later than the one booked after it a request may reach the
    /// CA (two round trips; at most [`MAX_LATE`]): the window is one second and that long, and
    /// the burst is smaller by what the rate books in that time, since the CA may see those
    /// requests arrive together with it.
    pub fn arrive_late(&mut self, late: Duration) {
        self.late = late.min(MAX_LATE);
        self.burst = (self.full_burst - self.per_second * self.late.as_secs_f64())
            .floor()
            .max(1.0);
        self.tokens = self.tokens.min(self.burst);
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at
            && now > at
        {
            let gained = (now - at).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + gained).min(self.burst);
        }
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
    }

    /// Books one request at `now` and returns how long it must wait before it is sent. A
    /// request that waits holds its place: the next one waits longer still.
    pub fn take(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        // The bucket's own time may be a little after `now`, read by a caller before another
        // thread took its turn: the wait counts from the bucket's time, never earlier.
        let at = self.at.unwrap_or(now).max(now);
        let mut send = if self.tokens >= 0.0 {
            at
        } else {
            at + Duration::from_secs_f64(-self.tokens / self.per_second)
        };
        if self.in_a_second > 0 {
            if let Some(last) = self.booked.back() {
                send = send.max(*last);
            }
            if self.booked.len() >= self.in_a_second {
                let first = self.booked[self.booked.len() - self.in_a_second];
                send = send.max(first + WINDOW + self.late);
            }
            self.booked.push_back(send);
            while self.booked.len() > self.in_a_second {
                self.booked.pop_front();
            }
        }
        send.saturating_duration_since(now)
    }

    /// Sends nothing more before `until` (a CA's `Retry-After`): the bucket is emptied as of
    /// then, so requests after it come one at a time at the rate.
    pub fn hold(&mut self, now: Instant, until: Instant) {
        self.refill(now);
        let ahead = until.saturating_duration_since(now).as_secs_f64() * self.per_second;
        self.tokens = self.tokens.min(-ahead);
    }
}

/// The span a CA counts a per-second rate over.
const WINDOW: Duration = Duration::from_secs(1);

/// The URLs of a CA's directory that it limits apart.
#[derive(Debug)]
struct Endpoints {
    directory: String,
    new_nonce: String,
    new_account: String,
    new_order: String,
    renewal_info: Option<String>,
}

/// The buckets of one client, shared by its threads.
pub struct Pacer {
    buckets: Mutex<Vec<Bucket>>,
    endpoints: OnceLock<Endpoints>,
}

impl Pacer {
    pub fn new(limits: &Limits) -> Pacer {
        Pacer {
            buckets: Mutex::new(
                Class::ALL
                    .iter()
                    .map(|c| Bucket::new(limits.of(*c)))
                    .collect(),
            ),
            endpoints: OnceLock::new(),
        }
    }

    /// Learns the classes of the CA's URLs from its directory, found at `url`.
    pub fn learn(&self, url: &str, directory: &Directory) {
        let _ = self.endpoints.set(Endpoints {
            directory: url.to_string(),
            new_nonce: directory.new_nonce.clone(),
            new_account: directory.new_account.clone(),
            new_order: directory.new_order.clone(),
            renewal_info: directory
                .renewal_info
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_string()),
        });
    }

    /// The class of `url`: by the directory's URLs, never by the look of the path. Before
    /// the directory is known, the one request is for the directory.
    pub fn class(&self, url: &str) -> Class {
        let Some(e) = self.endpoints.get() else {
            return Class::Directory;
        };
        if url == e.directory {
            Class::Directory
        } else if url == e.new_nonce {
            Class::NewNonce
        } else if url == e.new_account {
            Class::NewAccount
        } else if url == e.new_order {
            Class::NewOrder
        } else if e.renewal_info.as_deref().is_some_and(|base| {
            url.strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
        }) {
            Class::RenewalInfo
        } else {
            Class::Other
        }
    }

    /// How long a request of `class` must wait at `now` before it is sent; booked.
    pub fn take(&self, class: Class, now: Instant) -> Duration {
        self.lock()[class.index()].take(now)
    }

    /// Paces every class for a CA `round_trip` away: a request may reach it two round trips
    /// later than one booked after it ([`Bucket::arrive_late`]).
    pub fn round_trip(&self, round_trip: Duration) {
        for bucket in self.lock().iter_mut() {
            bucket.arrive_late(round_trip * 2);
        }
    }

    /// Holds every request of `class` until `until`.
    pub fn hold(&self, class: Class, now: Instant, until: Instant) {
        self.lock()[class.index()].hold(now, until);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Bucket>> {
        // A poisoned lock only means another thread panicked while doing arithmetic.
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `JOBS` when not set: enough certificates in flight for the CA's `other` limit to be the
/// bound rather than the round trip, from 4 (a CA close by, where the CPU is the bound) to 64.
/// One certificate sends about [`REQUESTS_PER_CERT`] requests over that many round trips plus
/// the CA's validation time, so `N` in flight send about `N × 10 / (10 × rtt + validation)`
/// requests a second.
pub fn default_jobs(limits: &Limits, round_trip: Duration, validation: Duration) -> usize {
    let per_cert = round_trip.as_secs_f64() * REQUESTS_PER_CERT + validation.as_secs_f64();
    let rate = limits.of(Class::Other).per_second * MARGIN;
    let jobs = (rate * per_cert / REQUESTS_PER_CERT).floor();
    (jobs as usize).clamp(MIN_JOBS, MAX_JOBS)
}

/// About how many requests one certificate of one name costs on its critical path.
const REQUESTS_PER_CERT: f64 = 10.0;
const MIN_JOBS: usize = 4;
/// The most certificates a run issues at the same time, `JOBS` set or chosen.
pub const MAX_JOBS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_small_batch_goes_at_once_and_a_long_run_is_held_to_the_rate() {
        // 250/s with a burst of 125, at 90 %: 112 at once, then one every 1/225 s by the
        // bucket, and the 226th not before a second after the first, by the window.
        let mut b = Bucket::new(Rate {
            per_second: 250.0,
            burst: 125.0,
        });
        let t0 = Instant::now();
        for _ in 0..112 {
            assert_eq!(b.take(t0), Duration::ZERO);
        }
        let waits: Vec<Duration> = (0..113).map(|_| b.take(t0)).collect();
        let step = Duration::from_secs_f64(1.0 / 225.0);
        for (i, w) in waits.iter().enumerate() {
            let want = step * (i as u32 + 1);
            assert!(
                w.abs_diff(want) < Duration::from_micros(10),
                "{i}: {w:?} {want:?}"
            );
        }
        let w = b.take(t0);
        assert!(w >= Duration::from_secs(1), "{w:?}");
        // Three seconds later the bucket is full again, not fuller.
        let t1 = t0 + Duration::from_secs(3);
        for _ in 0..112 {
            assert_eq!(b.take(t1), Duration::ZERO);
        }
        assert!(b.take(t1) > Duration::ZERO);
    }

    #[test]
    fn a_caller_that_read_the_clock_before_another_took_its_turn_is_not_sent_early() {
        // new-nonce: 9 at once, then one every 1/18 s. The 19th is booked by a thread that
        // read the clock 1 ms after the start, the 20th by one that read it at the start but
        // got the bucket after: it goes no earlier than the 19th, not 1 ms before its time.
        let mut b = Bucket::new(Rate {
            per_second: 20.0,
            burst: 10.0,
        });
        let t0 = Instant::now();
        let mut sent: Vec<Instant> = (0..18).map(|_| t0 + b.take(t0)).collect();
        let t1 = t0 + ms(1);
        sent.push(t1 + b.take(t1));
        sent.push(t0 + b.take(t0));
        assert!(sent[19] >= sent[18], "{:?} {:?}", sent[19], sent[18]);
        assert!(peak(&sent) <= 18, "{}", peak(&sent));
    }

    #[test]
    fn late_arrivals_meet_neither_the_cas_bucket_nor_more_than_its_rate_in_a_second() {
        // 150 ms away, a request that opens a connection arrives 300 ms later than one that
        // reuses one. Whichever come late, the CA counts no more than 90 % of the rate in
        // any one second, and its own bucket refuses none.
        let t0 = Instant::now();
        for rate in [
            Rate {
                per_second: 20.0,
                burst: 10.0,
            },
            Rate {
                per_second: 250.0,
                burst: 125.0,
            },
        ] {
            let mut b = Bucket::new(rate);
            let late = ms(300);
            b.arrive_late(late);
            let sent: Vec<Instant> = (0..600).map(|_| t0 + b.take(t0)).collect();
            let allowed = (rate.per_second * MARGIN).floor() as usize;
            // The ones booked before `split` arrive late, the others on time.
            for split in (0..600).step_by(7) {
                let mut arrived: Vec<Instant> = sent
                    .iter()
                    .enumerate()
                    .map(|(i, t)| if i < split { *t + late } else { *t })
                    .collect();
                arrived.sort();
                assert!(
                    peak(&arrived) <= allowed,
                    "{rate}, the first {split} late: {} in one second",
                    peak(&arrived)
                );
                assert_eq!(refused(&arrived, rate), 0, "{rate}, the first {split} late");
            }
        }
    }

    #[test]
    fn a_limit_per_hour_keeps_its_burst() {
        // new-order=300/h:300: 270 at once, then one every 13.3 s.
        let mut b = Bucket::new(Rate {
            per_second: 300.0 / 3600.0,
            burst: 300.0,
        });
        let t0 = Instant::now();
        for _ in 0..270 {
            assert_eq!(b.take(t0), Duration::ZERO);
        }
        let w = b.take(t0);
        assert!(
            w.abs_diff(Duration::from_secs_f64(3600.0 / 270.0)) < ms(1),
            "{w:?}"
        );
    }

    /// How many of `arrived` (in order) the CA's own token bucket for `rate` refuses.
    fn refused(arrived: &[Instant], rate: Rate) -> usize {
        let (mut tokens, mut at, mut refused) = (rate.burst, arrived[0], 0);
        for t in arrived {
            tokens =
                (tokens + t.duration_since(at).as_secs_f64() * rate.per_second).min(rate.burst);
            at = *t;
            if tokens >= 1.0 {
                tokens -= 1.0;
            } else {
                refused += 1;
            }
        }
        refused
    }

    /// The most requests sent in any one second, given the times they are sent at.
    fn peak(sent: &[Instant]) -> usize {
        (0..sent.len())
            .map(|i| {
                sent[i..]
                    .iter()
                    .filter(|t| t.duration_since(sent[i]) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_second_holds_more_than_the_rate_however_the_requests_come() {
        // Let's Encrypt's published figures, asked for by threads that come all at once, in
        // a steady stream, or in waves after a pause: no one-second window holds more than
        // 90 % of the rate (or one request, for a rate under 2 a second).
        let t0 = Instant::now();
        // When the i-th request is asked for, from the start.
        type Asked = fn(u64) -> Duration;
        let patterns: [(&str, Asked); 3] = [
            ("at once", |_| Duration::ZERO),
            ("steady", |i| ms(i * 2)),
            ("waves", |i| ms((i / 50) * 1500)),
        ];
        let published = Limits::default().0.into_iter().chain([
            Rate {
                per_second: 2.0,
                burst: 2.0,
            },
            Rate {
                per_second: 1.0,
                burst: 1.0,
            },
            Rate {
                per_second: 40.0,
                burst: 20.0,
            },
        ]);
        for rate in published {
            for (pattern, at) in patterns {
                let mut b = Bucket::new(rate);
                let sent: Vec<Instant> = (0..600u64)
                    .map(|i| {
                        let now = t0 + at(i);
                        now + b.take(now)
                    })
                    .collect();
                let allowed = (rate.per_second * MARGIN).floor().max(1.0) as usize;
                assert!(
                    peak(&sent) <= allowed,
                    "{rate} {pattern}: {} in one second, {allowed} allowed",
                    peak(&sent)
                );
                // And it is not slower than needed: asked for more than it allows, it sends
                // at least 80 % of the published rate, where that is a whole number.
                let span = sent[599].duration_since(sent[0]).as_secs_f64();
                assert!(
                    pattern != "at once" || 599.0 / span >= (rate.per_second * 0.8).floor(),
                    "{rate} {pattern}: {} a second",
                    599.0 / span
                );
            }
        }
    }

    #[test]
    fn a_hold_stops_a_class_until_the_time_the_ca_gave() {
        let mut b = Bucket::new(Rate {
            per_second: 100.0,
            burst: 100.0,
        });
        let t0 = Instant::now();
        b.hold(t0, t0 + Duration::from_secs(3));
        let w = b.take(t0);
        assert!(w >= Duration::from_secs(3), "{w:?}");
        assert!(w < Duration::from_secs(3) + ms(20), "{w:?}");
        // After the hold, one at a time at the rate.
        let after = t0 + Duration::from_secs(3);
        let w = b.take(after);
        assert!(w > Duration::ZERO && w < ms(30), "{w:?}");
    }

    #[test]
    fn rate_limits_change_the_classes_named_and_keep_the_others() {
        let l = Limits::parse("new-nonce=2/s:1  new-order=300/h other=10/s").unwrap();
        assert_eq!(
            l.of(Class::NewNonce),
            Rate {
                per_second: 2.0,
                burst: 1.0
            }
        );
        let order = l.of(Class::NewOrder);
        assert!((order.per_second - 1.0 / 12.0).abs() < 1e-9);
        assert_eq!(order.burst, 1.0);
        assert_eq!(l.of(Class::Other).burst, 10.0);
        assert_eq!(
            l.of(Class::Directory),
            Limits::default().of(Class::Directory)
        );
        assert_eq!(Limits::parse("").unwrap(), Limits::default());
        for bad in [
            "nonce=2/s",
            "new-nonce",
            "new-nonce=2",
            "new-nonce=2/d",
            "new-nonce=0/s",
            "new-nonce=-1/s",
            "new-nonce=2/s:x",
            "new-nonce=NaN/s",
            "new-nonce=1e-20/s",
            "new-order=0.5/h",
        ] {
            assert!(Limits::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_class_of_a_url_comes_from_the_directory() {
        let directory: Directory = serde_json::from_value(serde_json::json!({
            "newNonce": "https://ca/nonce-plz",
            "newAccount": "https://ca/sign-me-up",
            "newOrder": "https://ca/order-plz",
            "renewalInfo": "https://ca/draft-ietf-acme-ari-03/renewalInfo/",
        }))
        .unwrap();
        let pacer = Pacer::new(&Limits::default());
        assert_eq!(pacer.class("https://ca/dir"), Class::Directory);
        pacer.learn("https://ca/dir", &directory);
        let cases = [
            ("https://ca/dir", Class::Directory),
            ("https://ca/nonce-plz", Class::NewNonce),
            ("https://ca/sign-me-up", Class::NewAccount),
            ("https://ca/order-plz", Class::NewOrder),
            (
                "https://ca/draft-ietf-acme-ari-03/renewalInfo/aaa.bbb",
                Class::RenewalInfo,
            ),
            // Paths that merely look like an endpoint are not one.
            ("https://ca/acme/new-order", Class::Other),
            ("https://ca/new-nonce", Class::Other),
            (
                "https://ca/draft-ietf-acme-ari-03/renewalInfoX/a",
                Class::Other,
            ),
            ("https://ca/my-order/1", Class::Other),
        ];
        for (url, class) in cases {
            assert_eq!(pacer.class(url), class, "{url}");
        }
    }

    #[test]
    fn the_order_limit_counts_the_orders_inside_its_window() {
        let l = OrderLimit::parse("300/3h").unwrap();
        assert_eq!(l, OrderLimit::default());
        assert_eq!(l.to_string(), "300 new orders in 3 h");
        assert_eq!(
            OrderLimit::parse("5/3600").unwrap(),
            OrderLimit {
                orders: 5,
                window: 3600
            }
        );
        assert_eq!(OrderLimit::parse("50/90m").unwrap().window, 5400);
        for bad in ["300", "0/3h", "300/", "300/3y", "x/3h", "300/-3h", "300/0"] {
            assert!(OrderLimit::parse(bad).is_err(), "{bad}");
        }
        let five = OrderLimit {
            orders: 5,
            window: 100,
        };
        // Orders at 0, 50 and 99: at 120 the first has left the window.
        assert_eq!(five.room(&[0, 50, 99], 99), 2);
        assert_eq!(five.room(&[0, 50, 99], 120), 3);
        assert_eq!(five.recent(&[0, 50, 99], 120), [50, 99]);
        assert_eq!(five.room(&[1, 2, 3, 4, 5, 6, 7], 10), 0);
    }

    #[test]
    fn jobs_follow_the_round_trip_and_the_validation_time() {
        let l = Limits::default();
        assert_eq!(default_jobs(&l, Duration::from_micros(300), ms(5)), 4);
        // 50 ms away: 225 requests/s allowed, 0.5 s a certificate, 10 requests each.
        assert_eq!(default_jobs(&l, ms(50), Duration::ZERO), 11);
        assert_eq!(default_jobs(&l, ms(150), Duration::ZERO), 33);
        assert_eq!(default_jobs(&l, ms(50), Duration::from_secs(3)), 64);
        let slow = Limits::parse("other=20/s").unwrap();
        assert_eq!(default_jobs(&slow, ms(50), Duration::from_secs(1)), 4);
    }
}
