//! The plan language: types, loading from YAML with source locations, units and offsets.
//!
//! **Architecture Invariant:** this crate does no network I/O and runs no async code; it
//! only reads the plan file it is given.

pub mod diagnostic;
pub mod lint;
pub mod load;
pub mod model;
pub mod reaction;
pub mod schedule;
pub mod schema;
pub mod source;
pub mod span;
pub mod suggest;
pub mod summary;
pub mod templates;
pub mod units;
pub mod validate;
pub mod vars;

pub use diagnostic::{Code, Diagnostic, Level};
pub use load::{Loaded, load, load_file};
pub use model::*;
pub use span::{At, Loc};
pub use summary::Summary;
pub use units::{Comparison, Condition, Dur, Offset, Quantity, Unit};

/// Parses a plan from YAML text. Errors carry the location serde-saphyr reports.
pub fn from_yaml(text: &str) -> Result<Plan, serde_saphyr::Error> {
    serde_saphyr::from_str(text)
}
