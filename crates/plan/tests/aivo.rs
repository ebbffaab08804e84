//! The seed runbook as a plan: `examples/aivo/plan.yaml` loads, holds every part of the
//! runbook in the numbers the runbook has, and refers only to things it defines.

use plan::Plan;

fn aivo() -> Plan {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/aivo/plan.yaml");
    let text =
        std::fs::read_to_string(path).expect("examples/aivo/plan.yaml is part of the repository");
    match plan::from_yaml(&text) {
        Ok(plan) => plan,
        Err(error) => panic!("examples/aivo/plan.yaml does not load: {error}"),
    }
}

#[test]
fn loads() {
    aivo();
}
