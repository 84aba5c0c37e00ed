//! Crash safety of the state database: a writer process is killed with SIGKILL in the middle of
//! its writes, and every write it had acknowledged must still be there afterwards, in a
//! database that passes `PRAGMA integrity_check`.
//!
//! The writer is this same test binary, started again with `CHILD_ENV` set so that only
//! `crash_child_writer` does anything.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use samle::store::{RunCounts, RunOutcome, RunStatus, Store};

const CHILD_ENV: &str = "SAMLE_STORE_CRASH_CHILD_DB";

/// In the child: write forever, printing one line per acknowledged write, until killed.
#[tokio::test]
async fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&path)).unwrap();
    let mut i: u64 = 0;
    loop {
        store
            .audit(Some("writer"), "write", &i.to_string(), None)
            .await
            .unwrap();
        println!("acked audit {i}");
        let run = store.run_started("crash", "cli", false).await.unwrap();
        store.run_error(run, Some("doc"), "boom").await.unwrap();
        store
            .run_finished(
                run,
                &RunOutcome {
                    status: RunStatus::Ok,
                    counts: RunCounts {
                        seen: i,
                        ..RunCounts::default()
                    },
                    message: None,
                },
            )
            .await
            .unwrap();
        println!("acked run {run} {i}");
        i += 1;
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samle.db");
    let exe = std::env::current_exe().unwrap();

    let mut acked_audit: Vec<String> = Vec::new();
    let mut acked_runs: Vec<i64> = Vec::new();
    // Kill after a different number of writes each round, so the kill lands at different
    // points of the write cycle.
    for (round, kill_after) in [37usize, 101, 64, 13].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < kill_after {
            let line = lines
                .next()
                .expect("writer stopped before it was killed")
                .unwrap();
            if let Some(rest) = line.strip_prefix("acked audit ") {
                acked_audit.push(format!("{round}:{rest}"));
                seen += 1;
            } else if let Some(rest) = line.strip_prefix("acked run ") {
                let id = rest.split(' ').next().unwrap().parse().unwrap();
                acked_runs.push(id);
            }
        }
        // `Child::kill` sends SIGKILL on Unix: no destructor, no close, no checkpoint.
        child.kill().unwrap();
        child.wait().unwrap();

        let store = Store::open(&path).unwrap();
        let report: String = store
            .call(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(report, "ok", "round {round}");
        store.mark_interrupted_runs().await.unwrap();

        // Rebuild this round's audit details: the child numbers from 0 each time.
        let entries = store.recent_audit(usize::MAX).await.unwrap();
        let mut rounds_seen = 0;
        let mut stored: Vec<String> = Vec::new();
        for e in entries.iter().rev() {
            if e.detail == "0" {
                rounds_seen += 1;
            }
            stored.push(format!("{}:{}", rounds_seen - 1, e.detail));
        }
        for acked in &acked_audit {
            assert!(stored.contains(acked), "acknowledged audit {acked} lost");
        }
        let runs = store.recent_runs(Some("crash"), usize::MAX).await.unwrap();
        for id in &acked_runs {
            let run = runs.iter().find(|r| r.id == *id);
            let run = run.unwrap_or_else(|| panic!("acknowledged run {id} lost"));
            assert_eq!(run.status, RunStatus::Ok, "run {id}");
            assert_eq!(run.error_count, 1, "run {id}");
        }
        // Nothing is left "running": the run the kill interrupted, if any, is marked.
        assert!(runs.iter().all(|r| r.status != RunStatus::Running));
    }
}
