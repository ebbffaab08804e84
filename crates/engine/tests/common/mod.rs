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
