//! Snapshot tests over broken plans: each file in `tests/broken/` names the diagnostic
//! codes it must produce on its first line (`# expect: code code …`); the test checks that
//! exactly those codes come out, that every diagnostic has a place, and snapshots the
//! rendered diagnostics. Together the files cover every code `plan` can report.

use std::collections::BTreeSet;
use std::path::Path;

use plan::{Code, Loaded};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/broken exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("readable fixture");
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

fn expected_codes(name: &str, bytes: &[u8]) -> BTreeSet<String> {
    let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first_line = String::from_utf8_lossy(first_line);
    let codes = first_line
        .strip_prefix("# expect:")
        .unwrap_or_else(|| panic!("{name}: the first line must be `# expect: <codes>`"));
    codes.split_whitespace().map(str::to_string).collect()
}

fn produced_codes(loaded: &Loaded) -> BTreeSet<String> {
    loaded
        .diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect()
}

#[test]
fn broken_plans_report_what_they_should() {
    let mut failures = Vec::new();
    for (name, bytes) in fixtures() {
        let expected = expected_codes(&name, &bytes);
        let file = format!("tests/broken/{name}");
        let loaded = plan::load(&file, &bytes);
        let produced = produced_codes(&loaded);
        if produced != expected {
            failures.push(format!(
                "{name}: expected {expected:?}, got {produced:?}\n{}",
                loaded.render()
            ));
        }
        for diagnostic in &loaded.diagnostics {
            assert!(
                diagnostic.line > 0 && diagnostic.column > 0,
                "{name}: {diagnostic:?} has no place"
            );
            assert!(
                !diagnostic.help.is_empty(),
                "{name}: {diagnostic:?} has no help"
            );
        }
        insta::assert_snapshot!(name.trim_end_matches(".yaml"), loaded.render());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Codes that no fixture file can show: an oversized file (tested below without writing
/// 8 MiB to the repository) and an unreadable path (tested by the CLI tests).
const NOT_IN_FIXTURES: &[Code] = &[Code::FileTooLarge, Code::Unreadable];

#[test]
fn fixtures_cover_every_code() {
    let mut covered = BTreeSet::new();
    for (name, bytes) in fixtures() {
        covered.extend(expected_codes(&name, &bytes));
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|code| !NOT_IN_FIXTURES.contains(code))
        .map(|code| code.as_str())
        .filter(|code| !covered.contains(*code))
        .collect();
    assert!(
        missing.is_empty(),
        "no broken plan shows these codes: {missing:?}"
    );
    let unknown: Vec<&String> = covered
        .iter()
        .filter(|c| !Code::ALL.iter().any(|k| k.as_str() == c.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "fixtures expect codes that do not exist: {unknown:?}"
    );
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let mut bytes = b"golive: 1\n".to_vec();
    bytes.resize(plan::load::MAX_PLAN_BYTES + 1, b'#');
    let loaded = plan::load("huge.yaml", &bytes);
    assert_eq!(
        produced_codes(&loaded),
        BTreeSet::from(["file-too-large".to_string()])
    );
    assert!(loaded.plan.is_none());
    insta::assert_snapshot!("file_too_large", loaded.render());
}
