//! Rehearsal: runs a plan against a scenario on simulated time (placeholder, filled next).
