//! Where the shell gets the time it hands the engine: the wall clock, or a scaled clock
//! for the demo, where a minute of real time can stand for hours of plan time.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The shell's source of time. The engine never reads one; it is told.
pub trait Clock: Send + Sync + 'static {
    /// The current time, truncated to whole milliseconds (the precision of the log, so a
    /// replay hands the engine exactly the instants it saw live).
    fn now(&self) -> Timestamp;
    /// How long to wait in real time until the clock reads `at`.
    fn real_wait_until(&self, at: Timestamp) -> Duration;
}

fn truncate_to_millis(t: Timestamp) -> Timestamp {
    // from_millisecond only fails outside jiff's range, which the wall clock never is.
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

/// The system clock.
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        truncate_to_millis(Timestamp::now())
    }

    fn real_wait_until(&self, at: Timestamp) -> Duration {
        let wait = at.duration_since(Timestamp::now());
        wait.try_into().unwrap_or(Duration::ZERO)
    }
}

/// Plan time that runs `scale` times faster than real time from `origin` on.
pub struct ScaledClock {
    real_origin: Timestamp,
    plan_origin: Timestamp,
    scale: f64,
}

impl ScaledClock {
    pub fn new(plan_origin: Timestamp, scale: f64) -> ScaledClock {
        ScaledClock {
            real_origin: Timestamp::now(),
            plan_origin,
            scale: scale.max(1e-6),
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let real = Timestamp::now().duration_since(self.real_origin);
        let scaled = SignedDuration::from_secs_f64(real.as_secs_f64() * self.scale);
        truncate_to_millis(
            self.plan_origin
                .checked_add(scaled)
                .unwrap_or(self.plan_origin),
        )
    }

    fn real_wait_until(&self, at: Timestamp) -> Duration {
        let plan_wait = at.duration_since(self.now()).as_secs_f64();
        if plan_wait <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(plan_wait / self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster_and_waits_shorter() {
        let origin: Timestamp = "2025-08-23T06:00:00Z".parse().unwrap();
        let clock = ScaledClock::new(origin, 3600.0);
        let now = clock.now();
        assert!(now >= origin && now < origin + SignedDuration::from_secs(3600));
        // An hour of plan time is about a second of real time.
        let wait = clock.real_wait_until(now + SignedDuration::from_secs(3600));
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(wait > Duration::from_millis(500), "{wait:?}");
        assert_eq!(
            clock.real_wait_until(origin - SignedDuration::from_secs(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn wall_clock_is_whole_milliseconds() {
        let now = WallClock.now();
        assert_eq!(now.subsec_nanosecond() % 1_000_000, 0);
    }
}
