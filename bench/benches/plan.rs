//! Loading the AIVO plan: parse, validate and lint (target: under 20 ms in release), and
//! the parts on their own.
//!
//! `cargo bench -p golive-bench --bench plan`

use std::hint::black_box;
use std::path::PathBuf;

fn main() {
    divan::main();
}

const PLAN: &str = "examples/aivo/plan.yaml";

fn aivo() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(PLAN);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What `golive validate` does: parse, validate, lint (templates included).
#[divan::bench]
fn load_validate_lint(bencher: divan::Bencher) {
    let bytes = aivo();
    bencher.bench(|| {
        let loaded = plan::load(PLAN, black_box(&bytes));
        assert_eq!(loaded.errors(), 0, "the AIVO plan has errors");
        loaded
    });
}

/// YAML to typed plan only.
#[divan::bench]
fn parse_only(bencher: divan::Bencher) {
    let bytes = aivo();
    bencher.bench(|| plan::load::parse(PLAN, black_box(&bytes)));
}

/// Every scheduled item, cadences listed one by one (`golive timeline --all`).
#[divan::bench]
fn timeline_all(bencher: divan::Bencher) {
    let loaded = plan::load(PLAN, &aivo());
    let plan = loaded.plan.expect("the AIVO plan parses");
    bencher.bench(|| plan::schedule::items(black_box(&plan), None, plan::schedule::Cadences::List));
}
