//! The loader on good plans and on garbage: a correct plan loads with no diagnostics, and
//! no input, however mangled, makes `plan::load` panic or report a diagnostic without a
//! place.

use std::path::Path;

use proptest::prelude::*;

fn small_plan() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/small.yaml"))
        .expect("tests/plans/small.yaml")
}

#[test]
fn a_correct_plan_has_no_diagnostics() {
    let loaded = plan::load("small.yaml", &small_plan());
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    let plan = loaded.usable().expect("a usable plan");
    let summary = plan::Summary::of(plan);
    assert_eq!(summary.checklist_items, 2);
    assert_eq!(summary.timeline_steps, 6);
    assert_eq!(summary.ramp_stages, 3);
    assert_eq!(summary.rules, 4);
    assert_eq!(summary.playbook_actions, 4);
}

#[test]
fn loops_filters_and_local_variables_are_not_unknown() {
    let text = String::from_utf8(small_plan()).expect("UTF-8");
    let extra = r#"    - id: contacts
      body: |
        {% set lead = roles.release_manager %}{{ lead.name | upper }}
        {% for id, url in plan.links | items %}{{ loop.index }}. {{ id }}: {{ url }}
        {% endfor %}{% for id in roles %}{{ roles[id].title }} {{ range(3) | length }}{% endfor %}
        {{ now }} {{ audience.title | default("everyone") }} {{ run.incident }}
"#;
    let text = text.replace("  templates:\n", &format!("  templates:\n{extra}"));
    let loaded = plan::load("small.yaml", text.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{}", loaded.render());
    let plan = loaded.usable().expect("a usable plan");
    let template = plan
        .comms
        .as_ref()
        .expect("comms")
        .templates
        .iter()
        .find(|t| t.id.value == "contacts")
        .expect("contacts");
    let rendered =
        plan::templates::render(template, &plan::templates::TemplateContext::for_plan(plan))
            .expect("renders");
    assert!(
        rendered
            .body
            .starts_with("SARAH CHEN\n1. status_page: https://status.example.edu"),
        "{}",
        rendered.body
    );
}

#[test]
fn templates_render_from_the_plan() {
    let loaded = plan::load("small.yaml", &small_plan());
    let plan = loaded.usable().expect("a usable plan");
    let context = plan::templates::TemplateContext::for_plan(plan);
    let comms = plan.comms.as_ref().expect("comms");
    let go_live = comms
        .templates
        .iter()
        .find(|t| t.id.value == "go_live")
        .expect("go_live");
    let rendered = plan::templates::render(go_live, &context).expect("renders");
    assert_eq!(
        rendered.subject.as_deref(),
        Some("Small Go-Live goes live Saturday, August 23, 2025")
    );
    assert_eq!(
        rendered.body,
        "Start: Saturday, August 23, 2025 at 2:00 AM EDT\n\
         Maintenance window: Saturday, August 23, 2025 at 2:00 AM EDT to Saturday, August 23, 2025 at 10:00 AM EDT\n\
         Expected downtime: 30 minutes\n\
         Status: https://status.example.edu\n\
         Questions: Sarah Chen (+1-555-0123)"
    );
    let mut context = context;
    context.run.incident.title = "Error rate above 5%".into();
    context.run.rollback_duration = "1 minute 10 seconds".into();
    let incident = comms
        .templates
        .iter()
        .find(|t| t.id.value == "incident")
        .expect("incident");
    let rendered = plan::templates::render(incident, &context).expect("renders");
    assert_eq!(
        rendered.subject.as_deref(),
        Some("Incident: Error rate above 5%")
    );
    assert!(
        rendered
            .body
            .ends_with("Rolled back in 1 minute 10 seconds."),
        "{}",
        rendered.body
    );
}

#[test]
fn rendering_an_unknown_variable_is_an_error() {
    let template = plan::Template {
        id: plan::At::bare("t".into()),
        subject: None,
        body: plan::At::bare("{{ run.nothing }}".into()),
    };
    let error = plan::templates::render(&template, &plan::templates::TemplateContext::default())
        .unwrap_err();
    assert!(error.to_string().contains("template `t`"), "{error}");
}

#[test]
fn aliases_and_merges_are_reported_where_they_are_used() {
    let text = "golive: 1\nmeta:\n  name: Merge\n  owner: rm\nt0: 2025-08-23T02:00:00-04:00[America/New_York]\n\
people:\n  - &base\n    id: sarah\n    name: Sarah\n  - <<: *base\n    id: david\n\
roles:\n  - &role\n    id: rm\n    title: RM\n    primary: sarah\n    backup: nobody\n  - *role\n";
    let loaded = plan::load("merge.yaml", text.as_bytes());
    let places: Vec<(&str, u32, u32)> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.code.as_str(), d.line, d.column))
        .collect();
    assert_eq!(
        places,
        vec![
            ("unknown-person", 17, 13),
            ("duplicate-id", 18, 5),
            ("unknown-person", 18, 5)
        ],
        "{}",
        loaded.render()
    );
}

fn check(bytes: &[u8]) {
    let loaded = plan::load("fuzz.yaml", bytes);
    for diagnostic in &loaded.diagnostics {
        assert!(
            diagnostic.line > 0 && diagnostic.column > 0,
            "no place: {diagnostic:?}"
        );
        assert!(
            !diagnostic.message.is_empty() && !diagnostic.help.is_empty(),
            "{diagnostic:?}"
        );
    }
    // Rendering must not panic either, whatever the line holds.
    let _ = loaded.render();
    if loaded.plan.is_none() {
        assert!(loaded.errors() > 0, "no plan but no error");
    }
}

/// The fuzzer's corpus (`fuzz/corpus/load`) replayed on every test run, so what fuzzing
/// found stays covered without cargo-fuzz.
#[test]
fn fuzz_corpus_loads_without_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/load");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/load exists") {
        let bytes = std::fs::read(entry.expect("a directory entry").path())
            .expect("a readable corpus file");
        check(&bytes);
        count += 1;
    }
    assert!(count > 100, "the corpus has only {count} inputs");
}

/// Characters that matter to YAML, the plan's values and the loader's text scanning.
const SPICE: &[&str] = &[
    ":",
    "-",
    " ",
    "  ",
    "\n",
    "\t",
    "[",
    "]",
    "{",
    "}",
    "#",
    "&a",
    "*a",
    "!",
    "|",
    ">",
    "'",
    "\"",
    "%",
    "@",
    "`",
    "T+",
    "T-",
    "0:",
    "ms",
    "%",
    "<<: *a",
    "---",
    "\u{feff}",
    "é",
    "\u{0}",
    "{{",
    "}}",
    "{%",
    "${",
    "Saturday, August 21",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn garbage_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn garbage_text_never_panics(text in "(golive: 1\n|meta:\n|  name: x\n|t0: |roles:\n|  - id: |[-:\\[\\]{}#&*!|>'\" \n\ta-z0-9%T+]){0,80}") {
        check(text.as_bytes());
    }

    #[test]
    fn mutated_plans_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..3, 0usize..SPICE.len(), 0usize..40), 1..6)
    ) {
        let mut text = small_plan();
        for (at, kind, spice, len) in edits {
            let at = at.index(text.len() + 1);
            match kind {
                // Delete a run of bytes.
                0 => { let end = (at + len).min(text.len()); text.drain(at..end); }
                // Insert something YAML cares about.
                1 => { text.splice(at..at, SPICE[spice].bytes()); }
                // Duplicate a run (repeated keys, repeated items).
                _ => { let end = (at + len).min(text.len()); let copy = text[at..end].to_vec(); text.splice(at..at, copy); }
            }
        }
        check(&text);
    }
}
