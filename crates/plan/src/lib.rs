//! The plan language: types, loading from YAML with source locations, units and offsets.
//!
//! **Architecture Invariant:** this crate does no network I/O and runs no async code; it
//! only reads the plan file it is given.

pub mod model;
pub mod span;
pub mod units;

pub use model::*;
pub use span::{At, Loc};
pub use units::{Comparison, Condition, Dur, Offset, Quantity, Unit};

/// Parses a plan from YAML text. Errors carry the location serde-saphyr reports.
pub fn from_yaml(text: &str) -> Result<Plan, serde_saphyr::Error> {
    serde_saphyr::from_str(text)
}
