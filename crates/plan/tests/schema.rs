//! The committed JSON Schema (`docs/plan.schema.json`) is exactly what the code generates,
//! so editors never validate against a stale format. After a model change, regenerate it
//! with `cargo run -p golive -- schema > docs/plan.schema.json`.

#[test]
fn committed_schema_matches_the_model() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan.schema.json");
    let committed = std::fs::read_to_string(&path).expect("docs/plan.schema.json exists");
    let generated = plan::schema::json_schema();
    assert!(
        committed == generated,
        "docs/plan.schema.json is out of date; run `cargo run -p golive -- schema > docs/plan.schema.json`"
    );
}

#[test]
fn schema_describes_every_top_level_section() {
    let schema: serde_json::Value =
        serde_json::from_str(&plan::schema::json_schema()).expect("valid JSON");
    let properties = schema["properties"].as_object().expect("properties");
    for key in [
        "golive",
        "meta",
        "t0",
        "window",
        "expected_downtime",
        "people",
        "roles",
        "environments",
        "services",
        "routers",
        "metric_sources",
        "slis",
        "checklists",
        "timeline",
        "ramp",
        "rules",
        "triggers",
        "playbooks",
        "comms",
        "success",
        "followups",
    ] {
        assert!(properties.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(schema["properties"]["t0"]["type"], "string");
}
