//! Opening: creation, damage detection, rebuild, and leftovers of a killed process.

use std::fs;
use std::path::{Path, PathBuf};

use samle_index::{IndexError, SearchIndex};

use crate::common::{Fixture, doc};

fn populated() -> (tempfile::TempDir, PathBuf) {
    let f = Fixture::with((0..20).map(|i| doc(&format!("d{i}"), "Titel", "tekst")));
    let Fixture { dir, index } = f;
    drop(index);
    let path = dir.path().join("index");
    (dir, path)
}

fn damaged_siblings(path: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.damaged-", path.file_name().unwrap().to_string_lossy());
    fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}

fn segment_file(path: &Path, extension: &str) -> PathBuf {
    fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == extension))
        .unwrap_or_else(|| panic!("no .{extension} file in {}", path.display()))
}

/// Damages the index, checks that `open` reports it and `open_or_rebuild` recovers.
fn assert_detected_and_rebuilt(path: &Path, damage: impl FnOnce(&Path)) {
    damage(path);
    let err = SearchIndex::open(path).expect_err("damage must be detected");
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(!err.is_user_error());

    let (index, rebuilt) = SearchIndex::open_or_rebuild(path).unwrap();
    assert!(rebuilt);
    assert_eq!(index.stats().unwrap().documents, 0);
    assert!(index.cursors().unwrap().is_empty());
    // The fresh index works.
    let mut w = index.writer(0).unwrap();
    w.upsert(doc("new", "Ny", "tekst")).unwrap();
    w.commit(Some(("wiki", "c1"))).unwrap();
    assert_eq!(index.stats().unwrap().documents, 1);
    // The damaged one is kept aside for inspection.
    let aside = damaged_siblings(path);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].join("meta.json").exists() || fs::read_dir(&aside[0]).unwrap().count() > 0);
    drop(w);
    drop(index);
    // And next time it simply opens.
    let (_, rebuilt) = SearchIndex::open_or_rebuild(path).unwrap();
    assert!(!rebuilt);
}

#[test]
fn garbage_meta_json_is_detected_and_rebuilt() {
    let (_dir, path) = populated();
    assert_detected_and_rebuilt(&path, |p| {
        fs::write(p.join("meta.json"), b"{ this is not json").unwrap();
    });
}

#[test]
fn empty_meta_json_is_detected_and_rebuilt() {
    let (_dir, path) = populated();
    assert_detected_and_rebuilt(&path, |p| fs::write(p.join("meta.json"), b"").unwrap());
}

#[test]
fn missing_segment_files_are_detected_and_rebuilt() {
    for extension in ["store", "idx", "term", "fast"] {
        let (_dir, path) = populated();
        assert_detected_and_rebuilt(&path, |p| {
            fs::remove_file(segment_file(p, extension)).unwrap();
        });
    }
}

#[test]
fn truncated_segment_files_are_detected_and_rebuilt() {
    for extension in ["store", "idx", "term", "fast", "pos", "fieldnorm"] {
        let (_dir, path) = populated();
        assert_detected_and_rebuilt(&path, |p| {
            let file = segment_file(p, extension);
            let bytes = fs::read(&file).unwrap();
            fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        });
    }
}

#[test]
fn missing_meta_json_with_segments_is_detected() {
    let (_dir, path) = populated();
    assert_detected_and_rebuilt(&path, |p| fs::remove_file(p.join("meta.json")).unwrap());
}

#[test]
fn a_healthy_index_is_not_rebuilt() {
    let (_dir, path) = populated();
    let (index, rebuilt) = SearchIndex::open_or_rebuild(&path).unwrap();
    assert!(!rebuilt);
    assert_eq!(index.stats().unwrap().documents, 20);
    assert!(damaged_siblings(&path).is_empty());
}

#[test]
fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("index");
    let index = SearchIndex::open(&path).unwrap();
    assert_eq!(index.stats().unwrap().documents, 0);
    assert!(path.join("meta.json").exists());
}

#[test]
fn leftovers_of_a_killed_writer_do_not_block_opening() {
    let (_dir, path) = populated();
    // What a process killed mid-indexing leaves: lock files, and segment files of an
    // uncommitted batch that meta.json does not mention.
    fs::write(path.join(".tantivy-writer.lock"), b"").unwrap();
    fs::write(path.join(".tantivy-meta.lock"), b"").unwrap();
    fs::write(
        path.join("00000000000000000000000000000001.store"),
        b"half written",
    )
    .unwrap();
    let index = SearchIndex::open(&path).unwrap();
    assert_eq!(index.stats().unwrap().documents, 20);
    let mut w = index.writer(0).unwrap();
    w.upsert(doc("after", "Efter", "tekst")).unwrap();
    w.commit(None).unwrap();
    assert_eq!(index.stats().unwrap().documents, 21);
}

#[test]
fn a_crash_during_creation_is_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    fs::create_dir_all(&path).unwrap();
    fs::write(path.join(".managed.json"), b"[]").unwrap();
    fs::write(path.join(".tantivy-meta.lock"), b"").unwrap();
    let index = SearchIndex::open(&path).unwrap();
    assert_eq!(index.stats().unwrap().documents, 0);
}
