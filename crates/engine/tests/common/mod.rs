//! Helpers shared by the engine's tests: loading plans and scenarios from the repository.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use engine::rehearsal::{Rehearsal, Scenario, rehearse};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn load_plan(relative: &str) -> Arc<plan::Plan> {
    let path = repo_root().join(relative);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let loaded = plan::load(relative, &bytes);
    match loaded.plan {
        Some(plan) if loaded.errors() == 0 => Arc::new(plan),
        _ => panic!("{relative} does not load:\n{}", loaded.render()),
    }
}

pub fn small_plan() -> Arc<plan::Plan> {
    load_plan("crates/engine/tests/fixtures/small.yaml")
}

pub fn scenario(text: &str) -> Scenario {
    Scenario::parse("test.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

pub fn rehearse_text(plan: &Arc<plan::Plan>, text: &str) -> Rehearsal {
    rehearse(Arc::clone(plan), &scenario(text), "test.yaml", None).unwrap_or_else(|e| panic!("{e}"))
}

pub fn rehearse_file(plan: &Arc<plan::Plan>, relative: &str) -> Rehearsal {
    let path = repo_root().join(relative);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let scenario = Scenario::parse(relative, &text).unwrap_or_else(|e| panic!("{e}"));
    rehearse(Arc::clone(plan), &scenario, relative, None).unwrap_or_else(|e| panic!("{e}"))
}

/// The small fixture plan with text edits applied (each `(find, replace)` must match once).
pub fn small_plan_with(edits: &[(&str, &str)]) -> Arc<plan::Plan> {
    let path = repo_root().join("crates/engine/tests/fixtures/small.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (find, replace) in edits {
        assert_eq!(text.matches(find).count(), 1, "edit anchor `{find}`");
        text = text.replacen(find, replace, 1);
    }
    let loaded = plan::load("small.yaml", text.as_bytes());
    match loaded.plan {
        Some(plan) if loaded.errors() == 0 => Arc::new(plan),
        _ => panic!("the edited fixture does not load:\n{}", loaded.render()),
    }
}

/// `offset text` of every decision of one kind (`rule_firing`, `page_closed`…), as the
/// rehearsal report words them, with offsets from the actual T0 (or the planned one).
pub fn decision_texts(log: &[engine::Record], kind: &str) -> Vec<String> {
    use engine::{Decision, RecordBody};
    let t0 = log
        .iter()
        .find_map(|x| match &x.body {
            RecordBody::Decision(Decision::Go {
                t0_actual: Some(t), ..
            }) => Some(*t),
            _ => None,
        })
        .unwrap_or("2025-08-23T06:00:00Z".parse().unwrap());
    log.iter()
        .filter_map(|x| match &x.body {
            RecordBody::Decision(d) if serde_json::to_value(d).unwrap()["decision"] == kind => {
                Some(format!(
                    "{} {}",
                    engine::rehearsal::report::offset_text(t0, x.at),
                    engine::rehearsal::report::decision_text(d).unwrap_or_default()
                ))
            }
            _ => None,
        })
        .collect()
}
