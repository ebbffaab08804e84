//! Retrying a weight change until the router confirms it, as a rollback must: every
//! attempt is reported as it ends (so the shell can log it and the engine can page on the
//! first failure), with exponential backoff between attempts, until a deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{RouterError, TrafficRouter, Weights};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Pause after the first failed attempt; doubled after each further one.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Give up when this much time has passed since the first attempt began.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// 100 ms doubling to 5 s, for up to the seed runbook's 5-minute rollback budget.
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            deadline: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// One attempt, reported when it ends.
#[derive(Debug)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// Time from the first attempt's start to this one's start.
    pub began_after: Duration,
    /// How long this attempt took.
    pub took: Duration,
    pub result: Result<Weights, RouterError>,
    /// When the next attempt begins, if there is one (`None` after success or the last).
    pub next_in: Option<Duration>,
}

/// The router confirmed the split.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmed {
    pub weights: Weights,
    pub attempts: u32,
    /// From the first attempt's start to the confirmation.
    pub elapsed: Duration,
}

/// The deadline passed without a confirmation.
#[derive(Debug, thiserror::Error)]
#[error("router did not confirm {wanted:?} in {attempts} attempts over {elapsed:?}; last: {last}")]
pub struct GaveUp {
    pub wanted: Weights,
    pub attempts: u32,
    pub elapsed: Duration,
    pub last: RouterError,
}

/// Applies `wanted` until the router confirms it or `policy.deadline` passes; calls
/// `report` after every attempt.
pub async fn apply_until_confirmed(
    router: &dyn TrafficRouter,
    wanted: &Weights,
    policy: &RetryPolicy,
    mut report: impl FnMut(&Attempt),
) -> Result<Confirmed, GaveUp> {
    let start = Instant::now();
    let mut number = 0;
    loop {
        number += 1;
        let began = Instant::now();
        let remaining = policy.deadline.saturating_sub(start.elapsed());
        let result = match tokio::time::timeout(remaining, router.set_weights(wanted)).await {
            Ok(result) => result,
            Err(_) => Err(RouterError::Timeout(remaining)),
        };
        let took = began.elapsed();
        let backoff = policy.backoff(number);
        let next_in = match &result {
            Ok(_) => None,
            Err(_) if start.elapsed() + backoff < policy.deadline => Some(backoff),
            Err(_) => None,
        };
        let attempt = Attempt {
            number,
            began_after: began.duration_since(start),
            took,
            result,
            next_in,
        };
        report(&attempt);
        match (attempt.result, attempt.next_in) {
            (Ok(weights), _) => {
                return Ok(Confirmed {
                    weights,
                    attempts: number,
                    elapsed: start.elapsed(),
                });
            }
            (Err(_), Some(pause)) => tokio::time::sleep(pause).await,
            (Err(last), None) => {
                return Err(GaveUp {
                    wanted: wanted.clone(),
                    attempts: number,
                    elapsed: start.elapsed(),
                    last,
                });
            }
        }
    }
}

/// A router whose `set_weights` retries until confirmed (for rollbacks), reporting each
/// attempt to a callback.
pub struct RetryingRouter {
    inner: Arc<dyn TrafficRouter>,
    policy: RetryPolicy,
    report: Arc<dyn Fn(&Attempt) + Send + Sync>,
}

impl RetryingRouter {
    pub fn new(
        inner: Arc<dyn TrafficRouter>,
        policy: RetryPolicy,
        report: Arc<dyn Fn(&Attempt) + Send + Sync>,
    ) -> RetryingRouter {
        RetryingRouter {
            inner,
            policy,
            report,
        }
    }
}

#[async_trait::async_trait]
impl TrafficRouter for RetryingRouter {
    async fn set_weights(&self, wanted: &Weights) -> Result<Weights, RouterError> {
        let report = self.report.clone();
        apply_until_confirmed(self.inner.as_ref(), wanted, &self.policy, |attempt| {
            report(attempt)
        })
        .await
        .map(|confirmed| confirmed.weights)
        .map_err(|gave_up| gave_up.last)
    }

    async fn read_weights(&self) -> Result<Weights, RouterError> {
        self.inner.read_weights().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Fails the first `failures` changes, then applies them.
    struct Flaky {
        failures: u32,
        calls: AtomicU32,
    }

    #[async_trait::async_trait]
    impl TrafficRouter for Flaky {
        async fn set_weights(&self, wanted: &Weights) -> Result<Weights, RouterError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if call <= self.failures {
                Err(RouterError::Unreachable(format!("attempt {call}")))
            } else {
                Ok(wanted.clone())
            }
        }
        async fn read_weights(&self) -> Result<Weights, RouterError> {
            Ok(Weights::new())
        }
    }

    fn rollback() -> Weights {
        [("stable".to_string(), 100), ("canary".to_string(), 0)].into()
    }

    fn quick(deadline_ms: u64) -> RetryPolicy {
        RetryPolicy {
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            deadline: Duration::from_millis(deadline_ms),
        }
    }

    #[tokio::test]
    async fn retries_until_confirmed_and_reports_every_attempt() {
        let router = Flaky {
            failures: 3,
            calls: AtomicU32::new(0),
        };
        let mut seen = Vec::new();
        let confirmed = apply_until_confirmed(&router, &rollback(), &quick(5_000), |a| {
            seen.push((a.number, a.result.is_ok(), a.next_in))
        })
        .await
        .unwrap();
        assert_eq!(confirmed.attempts, 4);
        assert_eq!(confirmed.weights, rollback());
        assert_eq!(
            seen,
            vec![
                (1, false, Some(Duration::from_millis(5))),
                (2, false, Some(Duration::from_millis(10))),
                (3, false, Some(Duration::from_millis(20))),
                (4, true, None)
            ]
        );
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_with_the_last_error() {
        let router = Flaky {
            failures: u32::MAX,
            calls: AtomicU32::new(0),
        };
        let attempts = Mutex::new(0);
        let gave_up = apply_until_confirmed(&router, &rollback(), &quick(100), |_| {
            *attempts.lock().unwrap() += 1
        })
        .await
        .unwrap_err();
        assert!(gave_up.attempts >= 3, "{gave_up}");
        assert_eq!(gave_up.attempts, *attempts.lock().unwrap());
        assert!(gave_up.elapsed < Duration::from_millis(200), "{gave_up}");
        assert!(matches!(gave_up.last, RouterError::Unreachable(_)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(3), Duration::from_millis(400));
        assert_eq!(policy.backoff(40), Duration::from_secs(5));
    }
}
