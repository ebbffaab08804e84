//! Fuzzes `plan::load`: any bytes give a result, never a panic, and every diagnostic has a
//! place. `cargo fuzz run load -s none` (the committed corpus is in `corpus/load`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = plan::load("fuzz.yaml", data);
    for diagnostic in &loaded.diagnostics {
        assert!(
            diagnostic.line > 0 && diagnostic.column > 0,
            "no place: {diagnostic:?}"
        );
    }
    if loaded.plan.is_none() {
        assert!(loaded.errors() > 0, "no plan and no error");
    }
    let _ = loaded.render();
});
