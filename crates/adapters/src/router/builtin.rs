//! The built-in router (crate `proxy`) behind [`TrafficRouter`]: it runs inside golive, so
//! a weight change is one pointer swap, read back at once.

use std::sync::Arc;

use crate::{RouterError, TrafficRouter, Weights};

pub struct BuiltinRouter {
    handle: Arc<proxy::RouterHandle>,
}

impl BuiltinRouter {
    pub fn new(handle: Arc<proxy::RouterHandle>) -> BuiltinRouter {
        BuiltinRouter { handle }
    }
}

#[async_trait::async_trait]
impl TrafficRouter for BuiltinRouter {
    async fn set_weights(&self, wanted: &Weights) -> Result<Weights, RouterError> {
        self.handle
            .set_weights(wanted)
            .map_err(|e| RouterError::Refused(e.to_string()))?;
        let found = self.handle.weights();
        let matches = found
            .iter()
            .all(|(group, weight)| wanted.get(group).copied().unwrap_or(0) == *weight)
            && wanted
                .iter()
                .all(|(group, weight)| found.get(group).copied().unwrap_or(0) == *weight);
        if matches {
            Ok(found)
        } else {
            Err(RouterError::NotVerified {
                wanted: wanted.clone(),
                found,
            })
        }
    }

    async fn read_weights(&self) -> Result<Weights, RouterError> {
        Ok(self.handle.weights())
    }
}
