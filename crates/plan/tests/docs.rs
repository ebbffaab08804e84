//! `docs/plan.md` documents every diagnostic code and every top-level section, so a new
//! code or section cannot ship undocumented.

fn reference() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan.md");
    std::fs::read_to_string(path).expect("docs/plan.md exists")
}

#[test]
fn every_code_has_a_heading() {
    let doc = reference();
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("#### ")).collect();
    let missing: Vec<&str> = plan::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !headings.iter().any(|h| h.contains(&format!("`{code}`"))))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/plan.md has no `#### ` heading for: {missing:?}"
    );
}

#[test]
fn every_section_has_a_heading() {
    let doc = reference();
    let schema: serde_json::Value =
        serde_json::from_str(&plan::schema::json_schema()).expect("valid JSON");
    let sections = schema["properties"].as_object().expect("properties");
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("### ")).collect();
    let missing: Vec<&String> = sections
        .keys()
        .filter(|key| !headings.iter().any(|h| h.contains(&format!("`{key}`"))))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/plan.md has no `### ` heading for: {missing:?}"
    );
}
