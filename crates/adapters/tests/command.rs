//! The command runner against real `sh`: exit codes, captured and bounded output, timeouts
//! that kill the whole process group, secrets redacted, `${NAME}` from the environment.

use std::collections::BTreeMap;
use std::time::Duration;

use adapters::command::{CommandError, CommandSpec, OUTPUT_LIMIT, REDACTED, run_command};

fn spec(run: &str) -> CommandSpec {
    CommandSpec::new(run, Duration::from_secs(10))
}

#[tokio::test]
async fn exit_code_and_both_streams_are_captured() {
    let outcome = run_command(&spec("echo out; echo err >&2; exit 3"))
        .await
        .unwrap();
    assert_eq!(outcome.exit_code, Some(3));
    assert_eq!(outcome.stdout, "out\n");
    assert_eq!(outcome.stderr, "err\n");
    assert!(!outcome.success());
    assert_eq!(outcome.status_text(), "exit 3");
    let ok = run_command(&spec("true")).await.unwrap();
    assert!(ok.success());
    assert!(ok.duration < Duration::from_secs(10));
}

#[tokio::test]
async fn a_command_killed_by_a_signal_says_so() {
    let outcome = run_command(&spec("kill -TERM $$")).await.unwrap();
    assert_eq!(outcome.exit_code, None);
    assert_eq!(outcome.signal, Some(15));
    assert_eq!(outcome.status_text(), "killed by signal 15");
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("background.pid");
    // The shell starts a background sleeper, records its pid, then waits on it.
    let command = format!(
        "sleep 30 & echo $! > {}; echo started; wait",
        pid_file.display()
    );
    let mut timed = spec(&command);
    timed.timeout = Duration::from_millis(500);
    let outcome = run_command(&timed).await.unwrap();
    assert!(outcome.timed_out);
    assert!(!outcome.success());
    assert_eq!(outcome.stdout, "started\n");
    assert!(
        outcome.status_text().starts_with("timed out after"),
        "{}",
        outcome.status_text()
    );
    assert!(
        outcome.duration < Duration::from_secs(5),
        "{:?}",
        outcome.duration
    );
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    // The sleeper was in the group; give the kernel a moment to reap it.
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone, "background process {pid} survived the timeout");
}

#[tokio::test]
async fn a_background_daemon_does_not_hold_the_result() {
    // The shell exits at once; its child keeps the output pipe open for 30 s.
    let outcome = run_command(&spec("echo ready; (sleep 30 &) ; exit 0"))
        .await
        .unwrap();
    assert!(outcome.success());
    assert_eq!(outcome.stdout, "ready\n");
    assert!(
        outcome.duration < Duration::from_secs(5),
        "{:?}",
        outcome.duration
    );
}

#[tokio::test]
async fn output_keeps_the_last_64_kib() {
    // 200 000 bytes of numbered lines; the end must be intact.
    let outcome = run_command(&spec(
        "seq 1 40000 | awk '{printf \"%04d\\n\", $1 % 10000}'",
    ))
    .await
    .unwrap();
    assert!(outcome.success());
    assert_eq!(outcome.stdout.len(), OUTPUT_LIMIT);
    assert!(
        outcome.stdout.ends_with("9999\n0000\n"),
        "{}",
        &outcome.stdout[outcome.stdout.len() - 20..]
    );
    assert_eq!(outcome.stdout_dropped as usize + OUTPUT_LIMIT, 40000 * 5);
    assert_eq!(outcome.stderr_dropped, 0);
}

#[tokio::test]
async fn secrets_are_redacted_from_output() {
    let mut s = spec(
        "echo \"token=$DEPLOY_TOKEN\"; echo \"pw=$DB_PASSWORD\" >&2; echo \"plain=$REGION home=$HOME\"",
    );
    s.env = BTreeMap::from([
        ("DEPLOY_TOKEN".to_owned(), "tok-3f9a8b7c".to_owned()),
        ("DB_PASSWORD".to_owned(), "hunter2hunter2".to_owned()),
        ("REGION".to_owned(), "eu-west-1".to_owned()),
    ]);
    let outcome = run_command(&s).await.unwrap();
    assert!(
        outcome.stdout.contains(&format!("token={REDACTED}")),
        "{}",
        outcome.stdout
    );
    assert_eq!(outcome.stderr, format!("pw={REDACTED}\n"));
    assert!(
        outcome.stdout.contains("plain=eu-west-1"),
        "not secret by name: {}",
        outcome.stdout
    );
    assert!(!outcome.stdout.contains("tok-3f9a8b7c"));

    // A variable named in the redaction list, here one from the process environment.
    let home = std::env::var("HOME").expect("HOME is set for tests");
    assert!(
        home.len() >= adapters::command::MIN_SECRET_LEN,
        "HOME too short to test with: {home}"
    );
    s.redact = vec!["HOME".into(), "REGION".into()];
    let outcome = run_command(&s).await.unwrap();
    assert!(
        outcome
            .stdout
            .contains(&format!("plain={REDACTED} home={REDACTED}")),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn a_secret_cut_by_the_output_limit_is_still_redacted() {
    let secret = "S3CRET-VALUE-0123456789";
    let mut s = spec(&format!(
        "printf '%s' \"$API_KEY\"; head -c {} /dev/zero | tr '\\0' x",
        OUTPUT_LIMIT - 5
    ));
    s.env = BTreeMap::from([("API_KEY".to_owned(), secret.to_owned())]);
    let outcome = run_command(&s).await.unwrap();
    assert!(
        !outcome.stdout.contains("0123456789"),
        "a piece of the secret leaked: {}",
        &outcome.stdout[..40]
    );
}

#[tokio::test]
async fn env_references_are_resolved_or_refused() {
    let mut s = spec("echo \"${GOLIVE_TEST_TARGET}\"");
    s.env = BTreeMap::from([("GOLIVE_TEST_TARGET".to_owned(), "127.0.0.1:8080".to_owned())]);
    assert_eq!(run_command(&s).await.unwrap().stdout, "127.0.0.1:8080\n");

    let missing = run_command(&spec("curl ${GOLIVE_SURELY_UNSET_VARIABLE}/health"))
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, CommandError::UnsetVariable { name, .. } if name == "GOLIVE_SURELY_UNSET_VARIABLE")
    );
    assert!(missing.to_string().contains("is not set"), "{missing}");

    // From the process environment, as the shell sees it.
    let home = std::env::var("HOME").unwrap();
    assert_eq!(
        run_command(&spec("printf %s \"${HOME}\""))
            .await
            .unwrap()
            .stdout,
        home
    );
}

#[tokio::test]
async fn the_working_directory_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec("pwd");
    s.workdir = Some(dir.path().to_owned());
    let outcome = run_command(&s).await.unwrap();
    assert_eq!(
        outcome.stdout.trim(),
        dir.path().canonicalize().unwrap().display().to_string()
    );
}
