//! The command line, run as a newcomer or an administrator would: help, check, sync, index
//! stats, and what happens when things go wrong (broken configuration, a source that
//! disappears, a crash in the middle of a sync).

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{demo_config, file_share_config, samle, text};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["sync", "--help"],
        vec!["check", "--help"],
        vec!["index", "--help"],
        vec!["index", "stats", "--help"],
    ] {
        let out = samle(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn check_passes_on_the_demo_configuration() {
    let data = tempfile::tempdir().unwrap();
    let out = samle(&[
        "--config",
        s(&demo_config()),
        "--data-dir",
        s(data.path()),
        "check",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("✓ directory (demo)"), "{t}");
    assert!(t.contains("✓ source personalehaandbog"), "{t}");
    assert!(t.contains("Everything looks fine."), "{t}");

    // A named user is resolved the way a login would resolve them.
    let out = samle(&[
        "--config",
        s(&demo_config()),
        "--data-dir",
        s(data.path()),
        "check",
        "--user",
        "anna",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("group:portal-admins"),
        "nested group reached: {t}"
    );
    assert!(t.contains("roles: employee, publisher, admin"), "{t}");
    let out = samle(&[
        "--config",
        s(&demo_config()),
        "--data-dir",
        s(data.path()),
        "check",
        "--user",
        "peter",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("✗ user peter: not found, or disabled"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_broken_configuration_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    std::fs::create_dir_all(&root).unwrap();
    let config = file_share_config(dir.path(), &root, "");
    let original = std::fs::read_to_string(&config).unwrap();
    let broken = original.replace(
        "commit_interval = \"5s\"",
        "commit_interval = \"5s\"\ncomit_intervl = 3",
    );
    std::fs::write(&config, &broken).unwrap();
    let line = broken
        .lines()
        .position(|l| l.starts_with("comit_intervl"))
        .unwrap()
        + 1;
    for cmd in [
        vec!["check"],
        vec!["sync"],
        vec!["serve"],
        vec!["index", "stats"],
    ] {
        let mut args = vec!["--config", s(&config), "--data-dir", s(dir.path())];
        args.extend(cmd.iter().copied());
        let out = samle(&args);
        let t = text(&out);
        assert!(!out.status.success(), "{cmd:?} must fail: {t}");
        assert!(
            t.contains(&format!("samle.toml:{line}:")) && t.contains("comit_intervl"),
            "{cmd:?}: {t}"
        );
    }
    let out = samle(&["--config", "/nonexistent/samle.toml", "check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
}

#[test]
fn check_reports_a_missing_share() {
    let dir = tempfile::tempdir().unwrap();
    let config = file_share_config(dir.path(), &dir.path().join("missing"), "");
    let out = samle(&[
        "--config",
        s(&config),
        "--data-dir",
        s(&dir.path().join("data")),
        "check",
    ]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("✗ source share"), "{t}");
    assert!(t.contains("1 problem(s) found."), "{t}");
}

fn write_docs(root: &Path, n: usize) {
    for i in 0..n {
        let folder = root.join(format!("mappe-{}", i % 10));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join(format!("notat-{i}.md")),
            format!("# Notat {i}\n\nMødereferat nummer {i} om budget, bygninger og sygefravær i afdeling {}.\n", i % 7),
        )
        .unwrap();
    }
}

/// The `share` line of `samle sync`'s summary table, and its columns.
fn share_row(output: &str) -> (&str, Vec<&str>) {
    let row = output
        .lines()
        .find(|l| l.starts_with("share "))
        .unwrap_or_else(|| panic!("no summary row for `share` in {output}"));
    (row, row.split_whitespace().collect())
}

fn stats_documents(config: &Path, data: &Path) -> u64 {
    let out = samle(&[
        "--config",
        s(config),
        "--data-dir",
        s(data),
        "index",
        "stats",
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    t.lines()
        .find_map(|l| l.strip_prefix("documents"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no document count in {t}"))
}

#[test]
fn sync_is_incremental_and_reports_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    write_docs(&root, 30);
    let config = file_share_config(dir.path(), &root, "");
    let data = dir.path().join("data");

    let out = samle(&["--config", s(&config), "--data-dir", s(&data), "sync"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let (row, cols) = share_row(&t);
    assert_eq!(&cols[1..7], &["ok", "30", "30", "0", "0", "0"], "{row}");

    // Nothing changed: everything is unchanged, nothing re-extracted.
    let out = samle(&[
        "--config",
        s(&config),
        "--data-dir",
        s(&data),
        "sync",
        "share",
    ]);
    let t = text(&out);
    let (row, cols) = share_row(&t);
    assert_eq!(
        &cols[1..8],
        &["ok", "30", "0", "0", "30", "0", "0"],
        "{row}"
    );

    // One edit, one deletion.
    std::fs::write(
        root.join("mappe-1/notat-1.md"),
        "# Notat 1\n\nNyt indhold.\n",
    )
    .unwrap();
    std::fs::remove_file(root.join("mappe-2/notat-2.md")).unwrap();
    let out = samle(&["--config", s(&config), "--data-dir", s(&data), "sync"]);
    let t = text(&out);
    let (row, cols) = share_row(&t);
    assert_eq!(
        &cols[1..8],
        &["ok", "29", "0", "1", "28", "1", "0"],
        "{row}"
    );
    assert_eq!(stats_documents(&config, &data), 29);

    // A deletion alone: the run writes nothing else, and the sweep must still find it.
    std::fs::remove_file(root.join("mappe-3/notat-3.md")).unwrap();
    let out = samle(&["--config", s(&config), "--data-dir", s(&data), "sync"]);
    let t = text(&out);
    let (row, cols) = share_row(&t);
    assert_eq!(
        &cols[1..8],
        &["ok", "28", "0", "0", "28", "1", "0"],
        "{row}"
    );
    assert_eq!(stats_documents(&config, &data), 28);

    let out = samle(&[
        "--config",
        s(&config),
        "--data-dir",
        s(&data),
        "sync",
        "nosuch",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("there is no source `nosuch`"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_source_that_vanishes_or_lists_too_little_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    write_docs(&root, 20);
    let config = file_share_config(dir.path(), &root, "max_delete_share = 0.25");
    let data = dir.path().join("data");
    assert!(
        samle(&["--config", s(&config), "--data-dir", s(&data), "sync"])
            .status
            .success()
    );
    assert_eq!(stats_documents(&config, &data), 20);

    // The share is unmounted: the run fails with the reason and nothing is deleted.
    let moved = dir.path().join("away");
    std::fs::rename(&root, &moved).unwrap();
    let out = samle(&["--config", s(&config), "--data-dir", s(&data), "sync"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("failed"), "{t}");
    assert_eq!(stats_documents(&config, &data), 20);

    // Half the files are gone: over the guard's 25 %, so nothing is deleted and it says so.
    std::fs::rename(&moved, &root).unwrap();
    for i in 0..10 {
        std::fs::remove_file(root.join(format!("mappe-{}/notat-{i}.md", i % 10))).unwrap();
    }
    let out = samle(&["--config", s(&config), "--data-dir", s(&data), "sync"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("deletion guard"), "{t}");
    assert_eq!(stats_documents(&config, &data), 20);

    // Within the guard, deletions go through.
    write_docs(&root, 10);
    std::fs::remove_file(root.join("mappe-0/notat-0.md")).unwrap();
    let out = samle(&["--config", s(&config), "--data-dir", s(&data), "sync"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stats_documents(&config, &data), 19);
}

#[test]
fn a_crash_during_sync_leaves_an_index_that_opens_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    write_docs(&root, 3000);
    let config = file_share_config(dir.path(), &root, "");
    let data = dir.path().join("data");

    let mut interrupted = 0;
    for attempt in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_samle"))
            .args([
                "--config",
                s(&config),
                "--data-dir",
                s(&data),
                "sync",
                "--full",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for a first commit, then kill without warning at a different moment each time.
        let meta = data.join("index/meta.json");
        let start = Instant::now();
        while !meta.exists() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50 + attempt * 120));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever was committed is there, and the index opens.
        let n = stats_documents(&config, &data);
        assert!(n <= 3000, "{n}");
    }
    assert!(interrupted >= 1, "no sync was actually killed mid-run");
    // The next run completes and nothing is duplicated.
    let out = samle(&["--config", s(&config), "--data-dir", s(&data), "sync"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stats_documents(&config, &data), 3000);
}

#[test]
fn unreadable_files_are_reported_with_their_name_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    write_docs(&root, 5);
    std::fs::write(
        root.join("mappe-0/ødelagt.pdf"),
        b"%PDF-1.4 this is not really a pdf",
    )
    .unwrap();
    let config = file_share_config(dir.path(), &root, "");
    let data = dir.path().join("data");
    let out = samle(&["--config", s(&config), "--data-dir", s(&data), "sync"]);
    let t = text(&out);
    // One unreadable file does not fail the run; it is counted and named.
    assert!(out.status.success(), "{t}");
    let (row, cols) = share_row(&t);
    assert_eq!(&cols[1..4], &["ok", "6", "5"], "{row}");
    assert_eq!(cols[7], "1", "one failed: {row}");
    assert!(t.contains("mappe-0/ødelagt.pdf: "), "{t}");
    assert_eq!(stats_documents(&config, &data), 5);
}

#[test]
fn search_as_a_user_shows_what_that_user_may_see() {
    let data = tempfile::tempdir().unwrap();
    let c = s(&demo_config()).to_string();
    let d = s(data.path()).to_string();
    assert!(
        samle(&["--config", &c, "--data-dir", &d, "sync"])
            .status
            .success()
    );
    let count = |user: &str| {
        let out = samle(&[
            "--config",
            &c,
            "--data-dir",
            &d,
            "search",
            "sygefravær",
            "--as",
            user,
        ]);
        let t = text(&out);
        assert!(out.status.success(), "{t}");
        assert!(t.contains(&format!("user:{user}")), "{t}");
        t.split_whitespace().next().unwrap().parse::<u64>().unwrap()
    };
    let (mette, lars) = (count("mette"), count("lars"));
    assert!(lars > mette && mette > 0, "mette {mette}, lars {lars}");
    let out = samle(&[
        "--config",
        &c,
        "--data-dir",
        &d,
        "search",
        "x",
        "--as",
        "peter",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not found in the directory, or is disabled"),
        "{}",
        text(&out)
    );
}
