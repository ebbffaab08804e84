//! Keeps the engine crate honest: no async runtime, network or database crate among its
//! dependencies, and every module says what it is for in a `//!` line.

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn engine_depends_on_no_runtime_network_or_database_crate() {
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let forbidden = [
        "tokio",
        "reqwest",
        "hyper",
        "rusqlite",
        "axum",
        "async-trait",
        "adapters",
        "store",
        "sqlx",
    ];
    for line in manifest.lines() {
        let name = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
        assert!(
            !forbidden.contains(&name),
            "crates/engine/Cargo.toml depends on `{name}`: the engine does no I/O"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_starts_with_a_doc_line() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    rust_files(&crate_dir().join("tests"), &mut files);
    assert!(files.len() > 10, "found only {files:?}");
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.strip_prefix(crate_dir()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a `//!` line saying what they are for: {missing:?}"
    );
}

#[test]
fn engine_sources_read_no_clock_and_no_randomness() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for banned in [
            "SystemTime",
            "Instant::now",
            "Timestamp::now",
            "ZonedDateTime::now",
            "rand::",
            "HashMap",
            "HashSet",
            "std::fs",
            "std::net",
            "std::process",
        ] {
            assert!(
                !text.contains(banned),
                "{} uses `{banned}`: the engine is pure",
                file.display()
            );
        }
    }
}
