//! Password checks that cannot stall the API and cannot be guessed at
//! forever.
//!
//! argon2 is deliberately slow (tens of ms of CPU per check), so every check
//! runs on the blocking pool, and at most `concurrent_checks` run at once:
//! a crowd of logins queues for a bounded time and then gets a 429 instead
//! of starving every other request of CPU. Failed attempts are counted per
//! user (Keystone's `lockout_failure_attempts` / `lockout_duration`: the
//! account is locked, a 401 saying so, until the duration passes) and per
//! client address (many failures from one source in a window: 429 until the
//! window ends), unknown user names included, so neither a targeted guess
//! nor a spray is free. Counters live in the API process (each API process
//! counts its own attempts) and use the datastore's clock, so tests drive
//! time.

use crate::AuthError;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Limits of password authentication.
#[derive(Clone, Debug)]
pub struct LoginLimits {
    /// Password checks running at once (argon2 on the blocking pool).
    pub concurrent_checks: usize,
    /// How long a login waits for a check slot before a 429.
    pub max_wait: std::time::Duration,
    /// Failed passwords that lock a user (0: never).
    pub lockout_failure_attempts: u32,
    /// How long a locked user stays locked.
    pub lockout_duration: Duration,
    /// Failed logins from one address within `source_window` before its
    /// further attempts get 429 (0: no limit).
    pub source_failure_attempts: u32,
    /// The window of `source_failure_attempts`.
    pub source_window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            concurrent_checks: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(1),
            max_wait: std::time::Duration::from_secs(5),
            lockout_failure_attempts: 6,
            lockout_duration: Duration::minutes(30),
            source_failure_attempts: 30,
            source_window: Duration::minutes(1),
        }
    }
}

/// Failures counted since `since`.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    since: DateTime<Utc>,
}

/// Most entries kept per table; the oldest go first (an attacker cycling
/// names or addresses cannot grow memory without bound).
const MAX_TRACKED: usize = 100_000;

/// The gate every password login passes.
#[derive(Clone)]
pub(crate) struct LoginGuard {
    limits: LoginLimits,
    checks: Arc<Semaphore>,
    sources: Arc<Mutex<HashMap<IpAddr, Failures>>>,
}

fn remember<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Failures>,
    key: &K,
    now: DateTime<Utc>,
    window: Duration,
) {
    if map.len() >= MAX_TRACKED
        && !map.contains_key(key)
        && let Some(oldest) = map.iter().min_by_key(|(_, f)| f.since).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    let f = map.entry(key.clone()).or_insert(Failures { count: 0, since: now });
    if now - f.since > window {
        *f = Failures { count: 0, since: now };
    }
    f.count = f.count.saturating_add(1);
}

impl LoginGuard {
    /// A gate with these limits.
    pub(crate) fn new(limits: LoginLimits) -> Self {
        Self { checks: Arc::new(Semaphore::new(limits.concurrent_checks.max(1))), limits, sources: Arc::default() }
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    /// Is a user with `count` failures in a row, the last at `last`, locked
    /// out at `now`?
    pub(crate) fn locked(&self, count: i64, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let l = &self.limits;
        l.lockout_failure_attempts > 0
            && count >= i64::from(l.lockout_failure_attempts)
            && last.is_some_and(|t| now - t <= l.lockout_duration)
    }

    /// Refuse before any work when the address is over its limit.
    pub(crate) fn admit(&self, source: Option<IpAddr>, now: DateTime<Utc>) -> Result<(), AuthError> {
        let l = &self.limits;
        if let Some(ip) = source
            && l.source_failure_attempts > 0
        {
            let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = sources.get(&ip)
                && f.count >= l.source_failure_attempts
                && now - f.since <= l.source_window
            {
                let retry = (f.since + l.source_window - now).num_seconds().max(1);
                return Err(AuthError::TooManyAttempts { retry_after_secs: retry as u64 });
            }
        }
        Ok(())
    }

    /// Run the argon2 check `f` on the blocking pool, when a slot is free
    /// within `max_wait` (else a 429).
    pub(crate) async fn check<F>(&self, f: F) -> Result<bool, AuthError>
    where
        F: FnOnce() -> bool + Send + 'static,
    {
        let permit = tokio::time::timeout(self.limits.max_wait, self.checks.clone().acquire_owned())
            .await
            .map_err(|_| AuthError::TooManyAttempts { retry_after_secs: 1 })?
            .map_err(|_| AuthError::Hash("the password check gate is closed".into()))?;
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| AuthError::Hash(format!("password check task failed: {e}")))?;
        Ok(ok)
    }

    /// Count a failed login from `source`.
    pub(crate) fn failed(&self, source: Option<IpAddr>, now: DateTime<Utc>) {
        let l = &self.limits;
        if let Some(ip) = source
            && l.source_failure_attempts > 0
        {
            let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
            remember(&mut sources, &ip, now, l.source_window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn limits() -> LoginLimits {
        LoginLimits {
            concurrent_checks: 1,
            max_wait: std::time::Duration::from_millis(50),
            lockout_failure_attempts: 3,
            lockout_duration: Duration::minutes(30),
            source_failure_attempts: 5,
            source_window: Duration::minutes(1),
        }
    }

    /// Keystone: after `lockout_failure_attempts` failures in a row the
    /// account is locked for `lockout_duration` after the last one.
    #[test]
    fn the_lockout_rule() {
        let g = LoginGuard::new(limits());
        assert!(!g.locked(2, Some(t0()), t0()), "below the limit");
        assert!(g.locked(3, Some(t0()), t0() + Duration::minutes(29)));
        assert!(!g.locked(3, Some(t0()), t0() + Duration::minutes(31)), "the lock expires");
        assert!(!g.locked(3, None, t0()));
        let off = LoginGuard::new(LoginLimits { lockout_failure_attempts: 0, ..limits() });
        assert!(!off.locked(100, Some(t0()), t0()), "0: never");
    }

    #[test]
    fn one_address_spraying_many_names_is_slowed_down() {
        let g = LoginGuard::new(limits());
        let ip: IpAddr = [192, 0, 2, 7].into();
        for _ in 0..5 {
            assert!(g.admit(Some(ip), t0()).is_ok());
            g.failed(Some(ip), t0());
        }
        match g.admit(Some(ip), t0() + Duration::seconds(10)) {
            Err(AuthError::TooManyAttempts { retry_after_secs }) => assert_eq!(retry_after_secs, 50),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(g.admit(Some([192, 0, 2, 8].into()), t0()).is_ok(), "another address is not limited");
        assert!(g.admit(Some(ip), t0() + Duration::seconds(61)).is_ok(), "the window ends");
    }

    #[tokio::test]
    async fn checks_wait_for_a_slot_and_give_up_with_a_429() {
        let g = LoginGuard::new(limits());
        let slow = g.clone();
        let busy = tokio::spawn(async move {
            slow.check(|| {
                std::thread::sleep(std::time::Duration::from_millis(300));
                true
            })
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(matches!(g.check(|| true).await, Err(AuthError::TooManyAttempts { .. })), "no slot within max_wait");
        assert!(busy.await.expect("join").expect("check"));
        assert!(g.check(|| false).await.is_ok_and(|ok| !ok), "a slot is free again");
    }
}
