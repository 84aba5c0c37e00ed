//! The MediaWiki connector against the tests' Action API fixture on 127.0.0.1, with 3,000
//! pages of realistic size (rendered HTML with sections, lists, a navigation box and
//! categories, 4–8 KB each) in the main and help namespaces: a full sync, an unchanged re-sync
//! (the first run's fingerprints and cursor: recent changes only), then separately a listing
//! without a cursor (fingerprints only, as after an expired cursor) and a re-sync after 10
//! edits.
//!
//! `cargo bench -p samle-connectors --bench mediawiki` prints the table; it asserts nothing.

// A benchmark binary: a failed step should stop it loudly (the fixture unwraps).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use samle_connectors::{ConnectorParams, MediaWiki};

use support::mediawiki_fixture::{API_PATH, router};

const PAGES: usize = 3_000;

fn connector(api: &str) -> MediaWiki {
    let params: ConnectorParams = toml::from_str(&format!(
        "[mediawiki]\napi = \"{api}\"\nnamespaces = [0, 12]\naccess = [\"authenticated\"]\n\
         [mediawiki.http]\nmin_delay = \"0ms\"\n"
    ))
    .unwrap();
    MediaWiki::new(params.mediawiki.as_ref().unwrap(), Path::new("/")).unwrap()
}

#[tokio::main]
async fn main() {
    let shared = support::sites::wiki(PAGES).shared();
    let (addr, counter) = support::serve_counted(router(shared.clone())).await;
    shared.lock().unwrap().server = format!("http://{addr}");
    let api = format!("http://{addr}{API_PATH}");
    let mw = connector(&api);

    let full = support::measure(&mw, None, Some(&counter)).await;
    let resync = support::measure_resync(&mw, &full, Some(&counter), 5).await;
    support::report(
        "mediawiki (Action API, main and help namespaces)",
        PAGES,
        &full,
        &resync,
    );

    // No cursor (an expired one, or new namespaces): every page is listed, none is rendered.
    let without_cursor = support::Measured::start(None, full.known.clone());
    let listing = support::measure(&mw, Some(&without_cursor), Some(&counter)).await;
    // Ten pages edited since.
    {
        let mut wiki = shared.lock().unwrap();
        let titles: Vec<String> = wiki
            .pages
            .values()
            .step_by(97)
            .take(10)
            .map(|p| p.title.clone())
            .collect();
        for title in titles {
            wiki.advance(chrono::Duration::minutes(1));
            wiki.edit(&title, "Lars", "<p>Opdateret indhold.</p>", &["Personale"]);
        }
    }
    let edited = support::measure(&mw, Some(&listing), Some(&counter)).await;

    support::report_runs(
        &[
            ("listing without a cursor (fingerprints)", &listing),
            ("re-sync after 10 edits", &edited),
        ],
        "listing without a cursor",
        &listing,
        &full,
    );
    let stats = mw.http_stats();
    println!(
        "client counters over all runs: {} requests, {} bytes",
        stats.requests, stats.bytes
    );
}
