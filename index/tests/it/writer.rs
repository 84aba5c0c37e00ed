//! The writer: upserts, deletes, cursors in the commit payload, sweep, rollback, the single
//! writer rule, stats and fingerprints, and searching while committing.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use samle_index::{IndexDoc, IndexError, Principals, SearchIndex, SearchRequest, SweepOutcome};

use crate::common::{Fixture, doc, id_set, set};

fn in_source(source: &str, id: &str) -> IndexDoc {
    IndexDoc {
        source: source.into(),
        fingerprint: Some(format!("fp-{id}")),
        ..doc(id, "Titel", &format!("tekst {id}"))
    }
}

fn seen(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn upsert_replaces_instead_of_duplicating() {
    let f = Fixture::with([doc("a", "Gammel", "gammel tekst"), doc("b", "B", "tekst")]);
    f.add([doc("a", "Ny", "ny tekst")]);
    f.add([doc("a", "Ny", "ny tekst")]);
    assert_eq!(f.index.stats().unwrap().documents, 2);
    assert_eq!(f.find("gammel").total, 0);
    assert_eq!(id_set(&f.find("ny")), set(&["a"]));
    // Within one batch, the last version wins.
    let mut w = f.index.writer(0).unwrap();
    w.upsert(doc("c", "C", "kaffe")).unwrap();
    w.upsert(doc("c", "C", "kage")).unwrap();
    w.commit(None).unwrap();
    assert_eq!(f.find("kaffe").total, 0);
    assert_eq!(f.find("kage").total, 1);
    // The same external id in another source is another document.
    w.upsert(in_source("other", "a")).unwrap();
    w.commit(None).unwrap();
    assert_eq!(f.index.stats().unwrap().documents, 4);
}

#[test]
fn new_documents_are_added_without_a_delete_and_replaced_by_a_later_upsert() {
    let f = Fixture::with([doc("a", "A", "gammel tekst")]);
    let mut w = f.index.writer(0).unwrap();
    w.add_new(doc("b", "B", "kaffe")).unwrap();
    w.add_new(doc("c", "C", "kage")).unwrap();
    w.commit(None).unwrap();
    assert_eq!(f.index.stats().unwrap().documents, 3);
    assert_eq!(id_set(&f.find("kaffe")), set(&["b"]));
    // An upsert replaces a document that came in through add_new, as any other.
    w.upsert(doc("b", "B", "the")).unwrap();
    w.commit(None).unwrap();
    assert_eq!(f.index.stats().unwrap().documents, 3);
    assert_eq!(f.find("kaffe").total, 0);
    // add_new is checked like upsert.
    let err = w
        .add_new(IndexDoc {
            external_id: String::new(),
            ..doc("d", "D", "d")
        })
        .unwrap_err();
    assert!(matches!(err, IndexError::InvalidDocument(_)), "{err}");
}

#[test]
fn invalid_documents_are_refused() {
    let f = Fixture::new();
    let mut w = f.index.writer(0).unwrap();
    for bad in [
        IndexDoc {
            source: String::new(),
            ..doc("a", "A", "a")
        },
        IndexDoc {
            external_id: String::new(),
            ..doc("a", "A", "a")
        },
        IndexDoc {
            source: "bad\u{1f}source".into(),
            ..doc("a", "A", "a")
        },
    ] {
        let err = w.upsert(bad).unwrap_err();
        assert!(matches!(err, IndexError::InvalidDocument(_)), "{err}");
    }
}

#[test]
fn deletes_take_effect_on_commit() {
    let f = Fixture::with([
        in_source("wiki", "a"),
        in_source("wiki", "b"),
        in_source("blog", "c"),
        in_source("blog", "d"),
    ]);
    let mut w = f.index.writer(0).unwrap();
    w.delete("wiki", "a").unwrap();
    w.delete("wiki", "missing").unwrap();
    w.delete_source("blog").unwrap();
    assert_eq!(f.find("tekst").total, 4, "pending until commit");
    w.commit(None).unwrap();
    assert_eq!(id_set(&f.find("tekst")), set(&["b"]));
}

#[test]
fn rollback_discards_pending_changes() {
    let f = Fixture::with([doc("a", "A", "tekst")]);
    let mut w = f.index.writer(0).unwrap();
    w.upsert(doc("b", "B", "tekst")).unwrap();
    w.delete("wiki", "a").unwrap();
    w.rollback().unwrap();
    w.commit(None).unwrap();
    assert_eq!(id_set(&f.find("tekst")), set(&["a"]));
    // The writer is still usable.
    w.upsert(doc("c", "C", "tekst")).unwrap();
    w.commit(None).unwrap();
    assert_eq!(id_set(&f.find("tekst")), set(&["a", "c"]));
}

#[test]
fn cursors_merge_across_sources_and_survive_reopen() {
    let f = Fixture::new();
    assert!(f.index.cursors().unwrap().is_empty());
    {
        let mut w = f.index.writer(0).unwrap();
        w.upsert(in_source("wiki", "a")).unwrap();
        w.commit(Some(("wiki", "rev-1"))).unwrap();
        w.upsert(in_source("blog", "b")).unwrap();
        w.commit(Some(("blog", "2024-01-01T00:00:00Z"))).unwrap();
        w.commit(None).unwrap();
        w.commit(Some(("wiki", "rev-2"))).unwrap();
        // Uncommitted work never moves a cursor.
        w.upsert(in_source("wiki", "z")).unwrap();
    }
    let expected = [("blog", "2024-01-01T00:00:00Z"), ("wiki", "rev-2")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into_iter()
        .collect();
    assert_eq!(f.index.cursors().unwrap(), expected);
    let path = f.path();
    drop(f.index);
    let reopened = SearchIndex::open(&path).unwrap();
    assert_eq!(reopened.cursors().unwrap(), expected);
    assert_eq!(
        reopened.stats().unwrap().documents,
        2,
        "z was never committed"
    );
}

#[test]
fn reopen_keeps_committed_documents_searchable() {
    let f = Fixture::with([
        doc("a", "Århus", "Kontoret i Århus"),
        doc("b", "B", "bygninger"),
    ]);
    let path = f.path();
    let before = f.index.stats().unwrap();
    drop(f.index);
    let index = SearchIndex::open(&path).unwrap();
    let viewer = Principals::anonymous();
    let search = |q: &str| {
        let req = SearchRequest {
            query: q.into(),
            ..SearchRequest::default()
        };
        index.search(&viewer, &req).unwrap().total
    };
    assert_eq!(
        search("aarhus"),
        1,
        "analysers are registered again on open"
    );
    assert_eq!(search("bygningerne"), 1);
    let after = index.stats().unwrap();
    assert_eq!(after.documents, 2);
    assert_eq!(after.last_commit_opstamp, before.last_commit_opstamp);
    assert_eq!(after.last_commit_at, before.last_commit_at);
}

#[test]
fn sweep_deletes_unseen_documents() {
    let f = Fixture::with(["a", "b", "c", "d"].map(|id| in_source("wiki", id)));
    f.add([in_source("blog", "x")]);
    let mut w = f.index.writer(0).unwrap();
    let outcome = w
        .sweep("wiki", &seen(&["a", "b", "c", "new"]), 0.5)
        .unwrap();
    assert_eq!(outcome, SweepOutcome::Deleted(1));
    w.commit(Some(("wiki", "done"))).unwrap();
    assert_eq!(f.index.source_ids("wiki").unwrap(), seen(&["a", "b", "c"]));
    assert_eq!(
        f.index.source_ids("blog").unwrap(),
        seen(&["x"]),
        "other sources untouched"
    );
    // Nothing unseen: nothing to do.
    let outcome = w.sweep("wiki", &seen(&["a", "b", "c"]), 0.0).unwrap();
    assert_eq!(outcome, SweepOutcome::Deleted(0));
    // An empty source is fine too.
    assert_eq!(
        w.sweep("none", &seen(&[]), 0.0).unwrap(),
        SweepOutcome::Deleted(0)
    );
}

#[test]
fn sweep_refuses_to_delete_too_much() {
    let f = Fixture::with(["a", "b", "c", "d"].map(|id| in_source("wiki", id)));
    let mut w = f.index.writer(0).unwrap();
    let table: &[(&[&str], f64, SweepOutcome)] = &[
        // A source that suddenly lists nothing.
        (
            &[],
            0.5,
            SweepOutcome::Refused {
                would_delete: 4,
                total: 4,
            },
        ),
        (
            &["a"],
            0.5,
            SweepOutcome::Refused {
                would_delete: 3,
                total: 4,
            },
        ),
        (
            &["a", "b", "c"],
            0.0,
            SweepOutcome::Refused {
                would_delete: 1,
                total: 4,
            },
        ),
        (
            &["a"],
            f64::NAN,
            SweepOutcome::Refused {
                would_delete: 3,
                total: 4,
            },
        ),
        (
            &["a"],
            -1.0,
            SweepOutcome::Refused {
                would_delete: 3,
                total: 4,
            },
        ),
    ];
    for (ids, share, expected) in table {
        assert_eq!(
            &w.sweep("wiki", &seen(ids), *share).unwrap(),
            expected,
            "{ids:?} {share}"
        );
    }
    w.commit(None).unwrap();
    assert_eq!(f.find("tekst").total, 4, "refused sweeps delete nothing");
    // Exactly at the share is allowed; a share of 1 allows emptying the source.
    assert_eq!(
        w.sweep("wiki", &seen(&["a", "b"]), 0.5).unwrap(),
        SweepOutcome::Deleted(2)
    );
    w.rollback().unwrap();
    assert_eq!(
        w.sweep("wiki", &seen(&[]), 1.0).unwrap(),
        SweepOutcome::Deleted(4)
    );
    w.commit(None).unwrap();
    assert_eq!(f.find("tekst").total, 0);
}

#[test]
fn only_one_writer_at_a_time() {
    let f = Fixture::new();
    let w = f.index.writer(0).unwrap();
    assert!(matches!(f.index.writer(0), Err(IndexError::WriterBusy)));
    assert!(matches!(
        f.index.clone().writer(0),
        Err(IndexError::WriterBusy)
    ));
    // Another handle on the same directory (another process, in effect): tantivy's lock.
    let other = SearchIndex::open(&f.path()).unwrap();
    assert!(matches!(other.writer(0), Err(IndexError::WriterBusy)));
    drop(w);
    let w = f.index.writer(0).unwrap();
    drop(w);
    drop(other.writer(0).unwrap());
}

#[test]
fn stats_and_fingerprints() {
    let f = Fixture::new();
    let empty = f.index.stats().unwrap();
    assert_eq!(empty.documents, 0);
    assert!(empty.per_source.is_empty());
    assert!(empty.last_commit_at.is_none());

    let mut w = f.index.writer(0).unwrap();
    for i in 0..1200 {
        w.upsert(in_source("wiki", &format!("w{i}"))).unwrap();
    }
    for i in 0..3 {
        let mut d = in_source("blog", &format!("b{i}"));
        if i == 2 {
            d.fingerprint = None;
        }
        w.upsert(d).unwrap();
    }
    let opstamp = w.commit(None).unwrap();
    w.upsert(IndexDoc {
        fingerprint: Some("changed".into()),
        ..in_source("blog", "b0")
    })
    .unwrap();
    w.commit(None).unwrap();

    let stats = f.index.stats().unwrap();
    assert_eq!(stats.documents, 1203);
    assert_eq!(stats.per_source.get("wiki"), Some(&1200));
    assert_eq!(stats.per_source.get("blog"), Some(&3));
    assert!(stats.size_bytes > 0);
    assert!(stats.segments >= 1);
    assert!(stats.last_commit_opstamp > opstamp);
    assert!(stats.last_commit_at.is_some());

    let blog = f.index.fingerprints("blog").unwrap();
    assert_eq!(
        blog.len(),
        2,
        "documents without a fingerprint are left out"
    );
    assert_eq!(blog["b0"], "changed");
    assert_eq!(blog["b1"], "fp-b1");
    let wiki = f.index.fingerprints("wiki").unwrap();
    assert_eq!(wiki.len(), 1200);
    assert!(wiki.iter().all(|(id, fp)| fp == &format!("fp-{id}")));
    assert_eq!(
        f.index.source_ids("blog").unwrap(),
        seen(&["b0", "b1", "b2"])
    );
    assert!(f.index.fingerprints("nothing").unwrap().is_empty());
}

#[test]
fn a_sources_documents_are_read_again_only_after_the_index_changed() {
    let f = Fixture::new();
    let mut w = f.index.writer(0).unwrap();
    for id in ["a", "b"] {
        w.upsert(in_source("wiki", id)).unwrap();
    }
    w.upsert(in_source("blog", "x")).unwrap();
    w.commit(None).unwrap();
    let expect = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(id, fp)| (id.to_string(), Some(fp.to_string())))
            .collect::<samle_index::DocsById>()
    };

    let first = f.index.source_docs_by_id("wiki").unwrap();
    assert_eq!(*first, expect(&[("a", "fp-a"), ("b", "fp-b")]));
    // Nothing committed since: the same map, not a new reading.
    let again = f.index.source_docs_by_id("wiki").unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    // A commit of nothing, with only a cursor, leaves the documents as they were.
    w.commit(Some(("wiki", "c1"))).unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &f.index.source_docs_by_id("wiki").unwrap()
    ));

    // Uncommitted changes are not seen, as in any reading of the index.
    w.upsert(IndexDoc {
        fingerprint: Some("new".into()),
        ..in_source("wiki", "a")
    })
    .unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &f.index.source_docs_by_id("wiki").unwrap()
    ));
    w.commit(None).unwrap();
    let changed = f.index.source_docs_by_id("wiki").unwrap();
    assert_eq!(*changed, expect(&[("a", "new"), ("b", "fp-b")]));

    // Another source's commit changes the segments: read again, and still right.
    w.upsert(in_source("blog", "y")).unwrap();
    w.commit(None).unwrap();
    let after_blog = f.index.source_docs_by_id("wiki").unwrap();
    assert!(!Arc::ptr_eq(&changed, &after_blog));
    assert_eq!(*after_blog, *changed);

    // A delete alone moves the segment's delete opstamp.
    w.delete("wiki", "b").unwrap();
    w.commit(None).unwrap();
    assert_eq!(
        *f.index.source_docs_by_id("wiki").unwrap(),
        expect(&[("a", "new")])
    );
    assert_eq!(
        *f.index.source_docs_by_id("blog").unwrap(),
        expect(&[("x", "fp-x"), ("y", "fp-y")])
    );
}

#[test]
fn searches_run_while_the_writer_commits() {
    let f = Fixture::with((0..50).map(|i| doc(&format!("seed{i}"), "Seed", "fælles")));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let index = f.index.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let viewer = Principals::anonymous();
                let req = SearchRequest {
                    query: "fælles".into(),
                    ..SearchRequest::default()
                };
                let mut last = 0;
                let mut searches = 0;
                while !stop.load(Ordering::Relaxed) || searches == 0 {
                    let total = index.search(&viewer, &req).unwrap().total;
                    // Commits only add documents here, so no search may see fewer.
                    assert!(total >= last, "{total} < {last}");
                    last = total;
                    searches += 1;
                    // Leave the writer some CPU on small machines.
                    std::thread::yield_now();
                }
                last
            })
        })
        .collect();
    let mut w = f.index.writer(0).unwrap();
    for batch in 0..10 {
        for i in 0..20 {
            w.upsert(doc(&format!("b{batch}-{i}"), "Ny", "fælles"))
                .unwrap();
        }
        w.commit(None).unwrap();
        // Visible as soon as commit returns.
        assert_eq!(f.find("fælles").total, 50 + 20 * (batch + 1));
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() <= 250);
    }
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync::<SearchIndex>();
    send::<samle_index::IndexWriter>();
}
