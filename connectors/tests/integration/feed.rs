//! The feeds connector against feeds served on 127.0.0.1: RSS, Atom, JSON Feed, encodings,
//! dates, conditional GET, failures, full-text fetch, retention and hostile XML.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use samle_connectors::{Change, ConnectorError, ConnectorParams, build};

use crate::common::{fingerprints, fixture, run, run_known, run_with, upserts};
use crate::http::serve;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Builds a feed connector from the body of a `[feed]` table, with test-friendly HTTP settings.
fn connector(table: &str) -> Box<dyn samle_connectors::Connector> {
    let text = format!(
        "[feed]\n{table}\n[feed.http]\nmin_delay = \"0ms\"\nmax_retry_wait = \"2s\"\nretries = 1\n"
    );
    let params: ConnectorParams = toml::from_str(&text).unwrap();
    build("feed", &params, Path::new("/")).unwrap()
}

/// Serves `body` with `content_type` at `/feed`, counting requests.
async fn feed_server(body: Vec<u8>, content_type: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/feed",
            get(move |State(hits): State<Arc<AtomicUsize>>| {
                let body = body.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    ([(header::CONTENT_TYPE, content_type)], body)
                }
            }),
        )
        .with_state(Arc::clone(&hits));
    (serve(router).await, hits)
}

fn cursor_of(changes: &[Change]) -> String {
    match changes.last() {
        Some(Change::Checkpoint { cursor }) => cursor.clone(),
        other => panic!("the last change must be a checkpoint, got {other:?}"),
    }
}

#[tokio::test]
async fn rss_items_with_every_date_form() {
    let (addr, _) = feed_server(fixture("feeds/rss.xml"), "application/rss+xml").await;
    let feed = connector(&format!(
        "url = \"http://{addr}/feed\"\naccess = [\"group:alle\"]"
    ));
    let (result, changes) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert!(!changes.contains(&Change::TraversalComplete));
    cursor_of(&changes);
    let docs = upserts(&changes);
    assert_eq!(docs.len(), 4, "{docs:?}");

    let parking = &docs["nyhed-101"];
    assert_eq!(
        parking.title,
        "Ny parkeringsordning – gælder fra 1. november"
    );
    assert_eq!(
        parking.body,
        "Alle medarbejdere skal søge ny parkeringstilladelse."
    );
    assert_eq!(parking.created, Some(utc("2025-10-14T07:30:00Z")));
    assert_eq!(
        parking.url.as_deref(),
        Some("https://intra.example.dk/nyheder/parkering")
    );
    assert_eq!(parking.kind, "news");
    assert_eq!(parking.acl, ["group:alle"]);
    assert_eq!(parking.language.as_deref(), Some("da"));
    assert_eq!(parking.tags, ["Parkering"]);

    let party = &docs["https://intra.example.dk/nyheder/julefrokost"];
    assert_eq!(
        party.created,
        Some(utc("2025-09-12T12:00:00Z")),
        "CEST is +02:00"
    );
    assert_eq!(party.body, "Tilmelding senest fredag – husk gaven.");

    // No guid: the link is the identity; no zone: taken as UTC.
    let policy = &docs["https://intra.example.dk/nyheder/it-politik"];
    assert_eq!(policy.created, Some(utc("2025-09-01T08:00:00Z")));

    let undated = &docs["nyhed-104"];
    assert_eq!(undated.created, None);
    assert_eq!(undated.updated, None);
    assert_eq!(undated.body, "Beholdes uden dato.");
}

#[tokio::test]
async fn atom_entries() {
    let (addr, _) = feed_server(fixture("feeds/atom.xml"), "application/atom+xml").await;
    let feed = connector(&format!(
        "url = \"http://{addr}/feed\"\nkind = \"wiki-change\""
    ));
    let (result, changes) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&changes);
    let handbook = &docs["urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"];
    assert_eq!(handbook.title, "Handbook updated & moved");
    assert_eq!(handbook.body, "Holidays\n\nSix weeks & a day.");
    assert_eq!(
        handbook.url.as_deref(),
        Some("https://wiki.example.dk/Handbook")
    );
    assert_eq!(handbook.created, Some(utc("2025-10-01T06:00:00Z")));
    assert_eq!(handbook.updated, Some(utc("2025-10-14T09:30:00Z")));
    assert_eq!(handbook.author.as_deref(), Some("Lars Jensen"));
    assert_eq!(handbook.tags, ["HR"]);
    assert_eq!(handbook.kind, "wiki-change");
    assert_eq!(handbook.language.as_deref(), Some("en"));
    // No access configured: visible to nobody, never public.
    assert!(handbook.acl.is_empty());
    let plain = &docs["tag:wiki.example.dk,2025:plain"];
    assert_eq!(plain.body, "Nothing special.");
}

#[tokio::test]
async fn json_feed_items() {
    let (addr, _) = feed_server(fixture("feeds/feed.json"), "application/feed+json").await;
    let feed = connector(&format!("url = \"http://{addr}/feed\""));
    let (result, changes) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&changes);
    let pas = &docs["bs-1"];
    assert_eq!(pas.title, "Nye åbningstider for pas");
    assert_eq!(pas.body, "Pas & kørekort: mandag til torsdag.");
    assert_eq!(pas.created, Some(utc("2025-10-14T07:30:00Z")));
    assert_eq!(pas.url.as_deref(), Some("https://borger.example.dk/pas"));
    assert_eq!(docs["bs-2"].body, "Almindelig tekst uden HTML.");
    assert_eq!(docs["bs-2"].updated, Some(utc("2025-10-10T12:00:00Z")));
}

#[tokio::test]
async fn windows_1252_declared_in_the_prolog() {
    // No charset in the header: only the XML declaration says windows-1252.
    let (addr, _) = feed_server(fixture("feeds/windows-1252.xml"), "application/xml").await;
    let feed = connector(&format!("url = \"http://{addr}/feed\""));
    let (result, changes) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    let doc = &upserts(&changes)["cp1252-1"];
    assert_eq!(doc.title, "Æblegrød på Østerbro – ÆØÅ æøå");
    assert_eq!(doc.body, "Søndag serveres “æblegrød” for alle.");
    assert!(!doc.title.contains('\u{fffd}') && !doc.body.contains('\u{fffd}'));
}

#[tokio::test]
async fn an_unchanged_feed_costs_one_request_and_emits_only_the_checkpoint() {
    let hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/feed",
            get(
                |State(hits): State<Arc<AtomicUsize>>, headers: HeaderMap| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    if headers
                        .get(header::IF_NONE_MATCH)
                        .and_then(|v| v.to_str().ok())
                        == Some("\"rss-1\"")
                    {
                        return StatusCode::NOT_MODIFIED.into_response();
                    }
                    (
                        [
                            (header::ETAG, "\"rss-1\""),
                            (header::LAST_MODIFIED, "Tue, 14 Oct 2025 07:30:00 GMT"),
                            (header::CONTENT_TYPE, "application/rss+xml"),
                        ],
                        fixture("feeds/rss.xml"),
                    )
                        .into_response()
                },
            ),
        )
        .with_state(Arc::clone(&hits));
    let addr = serve(router).await;
    let feed = connector(&format!("url = \"http://{addr}/feed\""));

    let (result, first) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let cursor = cursor_of(&first);
    assert!(cursor.contains("rss-1"), "{cursor}");

    let (result, second) =
        run_with(feed.as_ref(), fingerprints(&first), Some(&cursor), false).await;
    result.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one request per run");
    assert_eq!(second, [Change::Checkpoint { cursor }]);
}

#[tokio::test]
async fn unchanged_items_are_not_re_emitted_without_etags() {
    let (addr, hits) = feed_server(fixture("feeds/atom.xml"), "application/atom+xml").await;
    let feed = connector(&format!("url = \"http://{addr}/feed\""));
    let (result, first) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    let cursor = cursor_of(&first);
    let (result, second) =
        run_with(feed.as_ref(), fingerprints(&first), Some(&cursor), false).await;
    result.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(upserts(&second).is_empty(), "{second:?}");
    let unchanged = second
        .iter()
        .filter(|c| matches!(c, Change::Unchanged { .. }))
        .count();
    assert_eq!(unchanged, 2);
}

#[tokio::test]
async fn items_that_fall_off_are_kept_for_the_retention_then_deleted() {
    let (addr, _) = feed_server(fixture("feeds/atom.xml"), "application/atom+xml").await;
    let feed = connector(&format!(
        "url = \"http://{addr}/feed\"\nretention = \"30d\""
    ));
    let old = (Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    let recent = (Utc::now() - chrono::Duration::days(5)).to_rfc3339();
    let cursor = format!(
        r#"{{"items":{{"gone-old":"{old}","gone-recent":"{recent}","tag:wiki.example.dk,2025:plain":"2020-01-01T00:00:00Z"}}}}"#
    );
    let (result, changes) = run_with(feed.as_ref(), HashMap::new(), Some(&cursor), false).await;
    result.unwrap();
    let deleted: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Delete { external_id } => Some(external_id.as_str()),
            _ => None,
        })
        .collect();
    // Still in the feed: never deleted, however old its date.
    assert_eq!(deleted, ["gone-old"]);
    let next = cursor_of(&changes);
    assert!(!next.contains("gone-old"), "{next}");
    assert!(next.contains("gone-recent"), "{next}");
    assert!(!changes.contains(&Change::TraversalComplete));
}

#[tokio::test]
async fn failures_are_errors_and_delete_nothing() {
    let router = Router::new()
        .route("/500", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/401", get(|| async { StatusCode::UNAUTHORIZED }))
        .route("/garbage", get(|| async { "this is not a feed at all" }))
        .route(
            "/truncated",
            get(|| async { "<rss version=\"2.0\"><channel><item><title>x" }),
        );
    let addr = serve(router).await;
    for (path, expected) in [
        ("500", "500"),
        ("401", "401"),
        ("garbage", "cannot be read"),
        ("truncated", "cannot be read"),
    ] {
        let feed = connector(&format!(
            "url = \"http://{addr}/{path}\"\nretention = \"1s\""
        ));
        let cursor = r#"{"items":{"old":"2000-01-01T00:00:00Z"}}"#;
        let (result, changes) = run_with(feed.as_ref(), HashMap::new(), Some(cursor), false).await;
        let err = result.unwrap_err();
        assert!(
            matches!(err, ConnectorError::Unavailable { .. }),
            "{path}: {err:?}"
        );
        assert!(err.to_string().contains(expected), "{path}: {err}");
        assert!(changes.is_empty(), "{path}: {changes:?}");
    }
}

#[tokio::test]
async fn full_text_fetches_the_linked_page() {
    let router = Router::new()
        .route(
            "/feed",
            get(|headers: HeaderMap| async move {
                let host = headers[header::HOST].to_str().unwrap().to_owned();
                let rss = format!(
                    r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
                    <item><title>Artikel</title><guid>a-1</guid><link>http://{host}/artikel</link>
                    <description>Kort resumé.</description></item>
                    <item><title>Udenfor</title><guid>a-2</guid><link>http://localhost:1/x</link>
                    <description>Link til en anden vært.</description></item>
                    </channel></rss>"#
                );
                ([(header::CONTENT_TYPE, "application/rss+xml")], rss)
            }),
        )
        .route(
            "/artikel",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><head><title>Artikel</title></head><body><nav>Menu</nav>\
                     <article><h1>Artikel</h1><p>Hele teksten om æblegrød står her.</p></article>\
                     <footer>Sidefod</footer></body></html>",
                )
            }),
        );
    let addr = serve(router).await;
    let feed = connector(&format!("url = \"http://{addr}/feed\"\nfull_text = true"));
    let (result, changes) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&changes);
    let article = &docs["a-1"];
    assert!(
        article.body.contains("Hele teksten om æblegrød"),
        "{:?}",
        article.body
    );
    assert!(!article.body.contains("Menu") && !article.body.contains("Sidefod"));
    // The link to another host is refused by the same host rules as redirects.
    let failed = changes
        .iter()
        .find_map(|c| match c {
            Change::Failed { external_id, error } if external_id == "a-2" => Some(error.clone()),
            _ => None,
        })
        .expect("a-2 must be reported as failed");
    assert!(failed.contains("allowed_hosts"), "{failed}");
}

#[tokio::test]
async fn hostile_xml_is_parsed_safely() {
    let (addr, _) = feed_server(fixture("feeds/xxe.xml"), "application/rss+xml").await;
    let feed = connector(&format!("url = \"http://{addr}/feed\""));
    let (result, changes) = run(feed.as_ref(), HashMap::new()).await;
    // Parsed without reading the DTD: unknown entities stay literal text, nothing is fetched
    // and nothing is expanded.
    result.unwrap();
    let docs = upserts(&changes);
    let doc = &docs["hostile-1"];
    assert_eq!(doc.title, "Laughs &lol9;");
    assert_eq!(doc.body, "Secret: &xxe;");
}

#[tokio::test]
async fn check_reports_items_and_empty_access() {
    let (addr, _) = feed_server(fixture("feeds/rss.xml"), "application/rss+xml").await;
    let feed = connector(&format!("url = \"http://{addr}/feed\""));
    let notes = feed.check().await.unwrap();
    assert!(notes[0].contains("4 items"), "{notes:?}");
    assert!(
        notes.iter().any(|n| n.contains("visible to nobody")),
        "{notes:?}"
    );
}

#[test]
fn configuration_mistakes_are_named() {
    let cases = [
        ("url = \"ftp://x/feed\"", "must start with http"),
        ("url = \"not a url\"", "feed url"),
        (
            "url = \"https://x/feed\"\nretention = \"forever\"",
            "retention",
        ),
        ("url = \"https://x/feed\"\nkind = \"Nyheder\"", "kind"),
        (
            "url = \"https://x/feed\"\naccess = [\" \"]",
            "empty principal",
        ),
    ];
    crate::common::assert_config_errors("feed", &cases);
    let err = toml::from_str::<ConnectorParams>("[feed]\nurl = \"https://x/\"\nfulltext = true")
        .unwrap_err();
    assert!(err.to_string().contains("fulltext"), "{err}");
    let err = build("feed", &ConnectorParams::default(), Path::new("/"))
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("[sources.feed]"), "{err}");
}

#[tokio::test]
async fn a_gzip_encoded_feed_is_decoded() {
    let router = Router::new().route(
        "/feed",
        get(|headers: HeaderMap| async move {
            let accepts = headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("gzip"));
            assert!(accepts, "the client must offer gzip");
            (
                [
                    (header::CONTENT_TYPE, "application/rss+xml"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                fixture("feeds/rss.xml.gz"),
            )
        }),
    );
    let addr = serve(router).await;
    let feed = connector(&format!("url = \"http://{addr}/feed\""));
    let (result, changes) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_eq!(upserts(&changes).len(), 4);
}

/// An RSS feed of `(guid, date)` items; an item without a date has none.
fn rss(items: &[(&str, Option<DateTime<Utc>>)]) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Nyt</title><link>http://intra/</link>",
    );
    for (guid, date) in items {
        xml.push_str(&format!(
            "<item><guid>{guid}</guid><title>Om {guid}</title>"
        ));
        if let Some(date) = date {
            xml.push_str(&format!("<pubDate>{}</pubDate>", date.to_rfc2822()));
        }
        xml.push_str("<description>Tekst.</description></item>");
    }
    xml.push_str("</channel></rss>");
    xml.into_bytes()
}

#[tokio::test]
async fn item_dates_live_in_their_fingerprints_and_retention_reads_them_there() {
    let body = Arc::new(std::sync::Mutex::new(Vec::new()));
    let router = Router::new()
        .route(
            "/feed",
            get(
                |State(body): State<Arc<std::sync::Mutex<Vec<u8>>>>| async move {
                    let body = body.lock().unwrap().clone();
                    ([(header::CONTENT_TYPE, "application/rss+xml")], body)
                },
            ),
        )
        .with_state(Arc::clone(&body));
    let addr = serve(router).await;
    let feed = connector(&format!(
        "url = \"http://{addr}/feed\"\nretention = \"30d\""
    ));
    let old = Utc::now() - chrono::Duration::days(40);
    let recent = Utc::now() - chrono::Duration::days(5);
    *body.lock().unwrap() = rss(&[
        ("old", Some(old)),
        ("recent", Some(recent)),
        ("undated", None),
    ]);

    let (result, first) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&first);
    assert_eq!(docs.len(), 3);
    let fingerprint = |id: &str| docs[id].fingerprint.clone().unwrap();
    assert!(
        fingerprint("old").ends_with(&format!("@{}", old.timestamp())),
        "{}",
        fingerprint("old")
    );
    assert!(
        !fingerprint("undated").contains('@'),
        "{}",
        fingerprint("undated")
    );
    // Only the undated item is remembered in the cursor.
    let cursor = cursor_of(&first);
    assert!(cursor.contains("undated"), "{cursor}");
    assert!(
        !cursor.contains("\"old\"") && !cursor.contains("\"recent\""),
        "{cursor}"
    );

    // All three fall off the feed: the old one is past the retention by the date in its
    // fingerprint, the recent one is not, and the undated one was seen just now.
    *body.lock().unwrap() = rss(&[("new", Some(Utc::now()))]);
    let known = fingerprints(&first);
    let (result, second) = run_with(feed.as_ref(), known.clone(), Some(&cursor), false).await;
    result.unwrap();
    let deleted: Vec<&str> = second
        .iter()
        .filter_map(|c| match c {
            Change::Delete { external_id } => Some(external_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, ["old"]);
    assert_eq!(upserts(&second).keys().collect::<Vec<_>>(), ["new"]);
    let next = cursor_of(&second);
    assert!(next.contains("undated"), "{next}");

    // An undated item is deleted once it has not been seen for the retention.
    let mut aged: serde_json::Value = serde_json::from_str(&next).unwrap();
    aged["items"]["undated"] = (Utc::now() - chrono::Duration::days(31))
        .to_rfc3339()
        .into();
    let aged = aged.to_string();
    let (result, third) = run_with(feed.as_ref(), known, Some(&aged), false).await;
    result.unwrap();
    assert!(
        third.contains(&Change::Delete {
            external_id: "undated".to_owned()
        }),
        "{third:?}"
    );
    assert!(!third.contains(&Change::Delete {
        external_id: "recent".to_owned()
    }));
}

/// Known documents that record whether anybody read them, and can refuse to load.
struct Watched {
    docs: HashMap<String, String>,
    touched: std::sync::atomic::AtomicBool,
    fail: bool,
}

#[async_trait::async_trait]
impl samle_connectors::KnownDocs for Watched {
    async fn load(&self) -> Result<(), ConnectorError> {
        self.touched.store(true, Ordering::SeqCst);
        if self.fail {
            return Err(ConnectorError::Internal("cannot read the index".to_owned()));
        }
        Ok(())
    }

    fn find(&self, external_id: &str) -> Option<samle_connectors::KnownDoc<'_>> {
        self.touched.store(true, Ordering::SeqCst);
        HashMap::find(&self.docs, external_id)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &str)) {
        self.touched.store(true, Ordering::SeqCst);
        for (id, fingerprint) in &self.docs {
            each(id, fingerprint);
        }
    }
}

#[tokio::test]
async fn a_304_never_reads_the_indexed_items_and_a_200_that_cannot_read_them_fails() {
    let router = Router::new().route(
        "/feed",
        get(|headers: HeaderMap| async move {
            if headers.contains_key(header::IF_NONE_MATCH) {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            (
                [
                    (header::ETAG, "\"v1\""),
                    (header::CONTENT_TYPE, "application/rss+xml"),
                ],
                fixture("feeds/rss.xml"),
            )
                .into_response()
        }),
    );
    let addr = serve(router).await;
    let feed = connector(&format!("url = \"http://{addr}/feed\""));
    let (result, first) = run(feed.as_ref(), HashMap::new()).await;
    result.unwrap();
    let cursor = cursor_of(&first);

    let known = Arc::new(Watched {
        docs: fingerprints(&first),
        touched: false.into(),
        fail: false,
    });
    let (result, second) = run_known(feed.as_ref(), known.clone(), Some(&cursor), false).await;
    result.unwrap();
    assert_eq!(second, [Change::Checkpoint { cursor }]);
    assert!(
        !known.touched.load(Ordering::SeqCst),
        "a 304 must not read the indexed items"
    );

    // Without validators the feed answers 200: the items are needed, and if they cannot be
    // read the run fails rather than send every item as new.
    let broken = Arc::new(Watched {
        docs: fingerprints(&first),
        touched: false.into(),
        fail: true,
    });
    let (result, changes) = run_known(feed.as_ref(), broken, None, false).await;
    assert!(
        matches!(result, Err(ConnectorError::Internal(_))),
        "{result:?}"
    );
    assert!(changes.is_empty(), "{changes:?}");
}
