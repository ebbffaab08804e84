//! Adapters: everything golive does to the outside world, behind narrow traits.
//!
//! The engine never holds an adapter; the shell calls these and feeds the results back to
//! the engine as inputs. Every result that is not a clear answer (no data, an error, a
//! timeout) is returned as such, never as a pass.

pub mod command;
pub mod metrics;
pub mod probe;
pub mod router;

use std::collections::BTreeMap;

/// Percent of traffic per version group (`stable`, `canary`, …), summing to 100.
pub type Weights = BTreeMap<String, u32>;

/// What a metric source answered for one SLI query.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Value(f64),
    /// The source answered, but there was nothing to judge (no series, too few requests).
    NoData {
        reason: String,
    },
    /// The source could not be asked or answered with an error.
    Error {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("router unreachable: {0}")]
    Unreachable(String),
    #[error("router refused the change: {0}")]
    Refused(String),
    #[error("router reports weights {found:?} after setting {wanted:?}")]
    NotVerified { wanted: Weights, found: Weights },
    #[error("router timed out after {0:?}")]
    Timeout(std::time::Duration),
}

/// A traffic router. `set_weights` returns only after reading back the weights in force;
/// a change that cannot be confirmed is an error, never assumed.
#[async_trait::async_trait]
pub trait TrafficRouter: Send + Sync {
    async fn set_weights(&self, wanted: &Weights) -> Result<Weights, RouterError>;
    async fn read_weights(&self) -> Result<Weights, RouterError>;
}

/// A metric source. `query` is already templated (`${version}` and environment variables
/// substituted); `version` is the group being judged, for sources that need it apart.
#[async_trait::async_trait]
pub trait MetricSource: Send + Sync {
    async fn read(&self, query: &str, version: &str) -> Reading;

    /// Reads a ratio SLI (errors per request, availability). A source that can count the
    /// version's requests answers `NoData` below its minimum, so a stage without traffic
    /// is inconclusive instead of passing. By default the same as `read`.
    async fn read_ratio(&self, query: &str, version: &str) -> Reading {
        self.read(query, version).await
    }
}
