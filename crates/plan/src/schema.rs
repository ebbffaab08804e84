//! The JSON Schema of the plan format, for editors' YAML completion and validation.
//! `docs/plan.schema.json` is this output, checked by a test so it never drifts.

use crate::model::Plan;

/// The schema as pretty-printed JSON with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Plan);
    // A schema is plain JSON data; serializing it cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
