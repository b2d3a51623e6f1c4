//! The nonce pool: the `Replay-Nonce` values the CA gave and has not seen back, shared by threads.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest a request waits for the nonce of another request's answer before it asks
/// `newNonce` for one of its own (see [`NoncePool::take`]).
const NONCE_WAIT: Duration = Duration::from_millis(500);
/// How often a wait for a nonce looks whether the run was asked to stop.
const STOP_SLICE: Duration = Duration::from_millis(50);

/// The nonces the CA gave and has not seen back, and what may still bring more.
#[derive(Default)]
struct Nonces {
    pool: Vec<String>,
    /// Signed requests given a nonce (or getting one from `newNonce`) and not yet answered:
    /// each answer should bring one.
    in_flight: usize,
    /// Requests waiting for one of those.
    waiting: usize,
}

/// Nonces for signed requests, with the count of answers that will bring more.
#[derive(Default)]
pub struct NoncePool {
    nonces: Mutex<Nonces>,
    /// Told when a nonce comes into the pool or an answer comes back without one.
    came: Condvar,
}

impl NoncePool {
    /// A nonce for a signed request about to be sent; None when the caller is to ask `newNonce`
    /// for one. Either way the request counts as in flight from then on, since its answer will
    /// bring a nonce, until the caller calls [`NoncePool::answered`].
    ///
    /// Taken from the pool; when that is empty, from an answer in flight, if there are more of
    /// those than requests already waiting for one (each answer serves one waiter, no later
    /// than a `newNonce` request would); else, after [`NONCE_WAIT`] or once `stopped` says
    /// so, None. So a run of one order asks `newNonce` once, and the authorizations of an
    /// order are fetched side by side with a `newNonce` request for about every other one.
    pub fn take(&self, stopped: fn() -> bool) -> Option<String> {
        let mut nonces = self.lock();
        let give_up = Instant::now() + NONCE_WAIT;
        loop {
            if let Some(nonce) = nonces.pool.pop() {
                nonces.in_flight += 1;
                return Some(nonce);
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if nonces.in_flight <= nonces.waiting || left.is_zero() || stopped() {
                break;
            }
            nonces.waiting += 1;
            nonces = self
                .came
                .wait_timeout(nonces, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            nonces.waiting -= 1;
        }
        // In flight from now on: the answer to the request this nonce is for comes no later
        // than one more newNonce request would.
        nonces.in_flight += 1;
        None
    }

    /// A nonce that comes into the pool before `until`, for a request already counted in
    /// flight by [`NoncePool::take`] that waits for its turn to ask `newNonce`; None at
    /// `until` or once `stopped` says so. It counts as waiting meanwhile, so that a later
    /// [`NoncePool::take`] does not wait for an answer this request may take first.
    pub fn take_before(&self, until: Instant, stopped: fn() -> bool) -> Option<String> {
        let mut nonces = self.lock();
        let mut counted = false;
        let nonce = loop {
            if let Some(nonce) = nonces.pool.pop() {
                break Some(nonce);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || stopped() {
                break None;
            }
            if !counted {
                nonces.waiting += 1;
                counted = true;
            }
            // In slices, so that a stop is seen within one.
            nonces = self
                .came
                .wait_timeout(nonces, left.min(STOP_SLICE))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        if counted {
            nonces.waiting -= 1;
        }
        nonce
    }

    /// Uncounts a request that [`NoncePool::take`] counted: it was answered (any nonce its
    /// answer brought is already in the pool) or it failed.
    pub fn answered(&self) {
        self.lock().in_flight -= 1;
        // Whoever waits for a nonce looks again: this answer brought one, or none will come.
        self.came.notify_all();
    }

    /// Adds a nonce an answer brought.
    pub fn put(&self, nonce: String) {
        self.lock().pool.push(nonce);
        self.came.notify_one();
    }

    pub fn is_empty(&self) -> bool {
        self.lock().pool.is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Nonces> {
        // A poisoned pool only means another thread panicked while counting or pushing a string.
        self.nonces.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    #[test]
    fn a_nonce_comes_from_the_pool_else_from_new_nonce() {
        let pool = NoncePool::default();
        // Nothing in the pool and nothing in flight: ask newNonce at once.
        let start = Instant::now();
        assert_eq!(pool.take(never), None);
        assert!(start.elapsed() < NONCE_WAIT);
        pool.put("a".into());
        pool.answered();
        assert_eq!(pool.take(never).as_deref(), Some("a"));
        assert!(pool.is_empty());
        pool.answered();
    }

    #[test]
    fn a_request_waits_for_the_nonce_of_an_answer_in_flight() {
        let pool = std::sync::Arc::new(NoncePool::default());
        assert_eq!(pool.take(never), None);
        let answer = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                pool.put("from-the-answer".into());
                pool.answered();
            })
        };
        assert_eq!(pool.take(never).as_deref(), Some("from-the-answer"));
        answer.join().unwrap();
    }

    #[test]
    fn a_request_waiting_for_its_turn_takes_a_nonce_that_comes_meanwhile() {
        let pool = std::sync::Arc::new(NoncePool::default());
        // Nothing comes: None at the turn, not before.
        let start = Instant::now();
        assert_eq!(
            pool.take_before(start + Duration::from_millis(30), never),
            None
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        // A turn already come: only what the pool holds.
        assert_eq!(pool.take_before(Instant::now(), never), None);
        // An answer brings one long before the turn: it is taken then.
        let answer = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                pool.put("from-the-answer".into());
            })
        };
        let start = Instant::now();
        assert_eq!(
            pool.take_before(start + Duration::from_secs(10), never)
                .as_deref(),
            Some("from-the-answer")
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        answer.join().unwrap();
    }
}
