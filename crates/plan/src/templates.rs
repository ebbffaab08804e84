//! Message templates: the context the engine fills, rendering, and lint of template text.

use crate::diagnostic::Sink;
use crate::model::Plan;

/// Checks every template's syntax and variables.
pub fn lint(plan: &Plan, sink: &mut Sink<'_>) {
    let _ = (plan, sink);
}
