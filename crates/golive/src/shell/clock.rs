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
    /// Work started that should take no plan time (an effect out, the shell writing the
    /// log); a clock that stands still for it stops here.
    fn hold(&self) {}
    /// That work ended.
    fn release(&self) {}
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

/// Plan time that runs `scale` times faster than real time from `origin` on, and stands
/// still while effects are out and while the shell writes the log. At ×1000 a probe that
/// takes 30 real milliseconds would look like 30 seconds to the plan and time out; held,
/// adapters and the log take no plan time at all, as they take next to none at ×1.
pub struct ScaledClock {
    scale: f64,
    anchor: std::sync::Mutex<Anchor>,
}

struct Anchor {
    real: Timestamp,
    plan: Timestamp,
    /// Holds in force; the clock stands still while this is above zero.
    held: usize,
}

impl ScaledClock {
    pub fn new(plan_origin: Timestamp, scale: f64) -> ScaledClock {
        ScaledClock {
            scale: scale.max(1e-6),
            anchor: std::sync::Mutex::new(Anchor {
                real: Timestamp::now(),
                plan: plan_origin,
                held: 0,
            }),
        }
    }

    fn anchor(&self) -> std::sync::MutexGuard<'_, Anchor> {
        // The guarded values are plain numbers, valid whatever a panicking holder did.
        self.anchor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn plan_now(&self, anchor: &Anchor) -> Timestamp {
        if anchor.held > 0 {
            return anchor.plan;
        }
        let real = Timestamp::now().duration_since(anchor.real);
        let scaled = SignedDuration::from_secs_f64(real.as_secs_f64() * self.scale);
        anchor.plan.checked_add(scaled).unwrap_or(anchor.plan)
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let anchor = self.anchor();
        truncate_to_millis(self.plan_now(&anchor))
    }

    fn real_wait_until(&self, at: Timestamp) -> Duration {
        let plan_wait = at.duration_since(self.now()).as_secs_f64();
        if plan_wait <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(plan_wait / self.scale)
    }

    fn hold(&self) {
        let mut anchor = self.anchor();
        if anchor.held == 0 {
            anchor.plan = self.plan_now(&anchor);
        }
        anchor.held += 1;
    }

    fn release(&self) {
        let mut anchor = self.anchor();
        anchor.held = anchor.held.saturating_sub(1);
        if anchor.held == 0 {
            anchor.real = Timestamp::now();
        }
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
    fn scaled_clock_stands_still_while_held() {
        let origin: Timestamp = "2025-08-23T06:00:00Z".parse().unwrap();
        let clock = ScaledClock::new(origin, 3600.0);
        clock.hold();
        clock.hold();
        let held = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        clock.release();
        assert_eq!(clock.now(), held, "one hold is still in force");
        clock.release();
        std::thread::sleep(Duration::from_millis(20));
        assert!(clock.now() > held + SignedDuration::from_secs(30));
    }

    #[test]
    fn wall_clock_is_whole_milliseconds() {
        let now = WallClock.now();
        assert_eq!(now.subsec_nanosecond() % 1_000_000, 0);
    }
}
