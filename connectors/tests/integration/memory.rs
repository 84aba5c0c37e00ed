//! The in-memory connector other crates test against.

use std::collections::HashMap;

use samle_connectors::{Change, Connector, ConnectorError, Document, MemoryConnector};

use crate::common::{run, run_with};

fn changes() -> Vec<Change> {
    vec![
        Change::Upsert(Box::new(Document {
            external_id: "a".to_owned(),
            title: "A".to_owned(),
            acl: vec!["public".to_owned()],
            ..Document::default()
        })),
        Change::Checkpoint {
            cursor: "1".to_owned(),
        },
        Change::Delete {
            external_id: "b".to_owned(),
        },
        Change::Failed {
            external_id: "c".to_owned(),
            error: "could not read".to_owned(),
        },
        Change::Checkpoint {
            cursor: "2".to_owned(),
        },
        Change::TraversalComplete,
    ]
}

#[tokio::test]
async fn emits_its_changes_in_order() {
    let connector = MemoryConnector::new(changes());
    assert_eq!(connector.kind(), "memory");
    assert_eq!(
        connector.check().await.unwrap(),
        ["memory connector with 6 changes"]
    );
    let (result, emitted) = run(&connector, HashMap::new()).await;
    result.unwrap();
    assert_eq!(emitted, changes());
}

#[tokio::test]
async fn fails_after_n_changes() {
    let cases = [(0, 0), (2, 2), (6, 6), (9, 6)];
    for (n, expected) in cases {
        let connector = MemoryConnector::new(changes()).fail_after(n, "kilden svarer 503");
        let (result, emitted) = run(&connector, HashMap::new()).await;
        let err = result.unwrap_err();
        assert!(matches!(err, ConnectorError::Unavailable { .. }), "{err}");
        assert_eq!(err.to_string(), "source unavailable: kilden svarer 503");
        assert_eq!(emitted, changes()[..expected], "fail_after({n})");
    }
}

#[tokio::test]
async fn resumes_after_the_given_cursor() {
    let connector = MemoryConnector::new(changes());
    let cases: [(Option<&str>, bool, usize); 4] = [
        (Some("1"), false, 2),
        (Some("2"), false, 5),
        (Some("ukendt"), false, 0),
        (Some("1"), true, 0),
    ];
    for (cursor, full, skipped) in cases {
        let (result, emitted) = run_with(&connector, HashMap::new(), cursor, full).await;
        result.unwrap();
        assert_eq!(
            emitted,
            changes()[skipped..],
            "cursor {cursor:?} full {full}"
        );
    }
}
