//! The WordPress connector against the tests' WordPress REST fixture on 127.0.0.1, with 3,000
//! posts and 200 pages of realistic size (Gutenberg markup, 4–8 KB each): a full sync, an
//! unchanged re-sync (the first run's fingerprints and cursor; the id listing not due), then
//! separately the periodic id listing that finds trashed posts, and a re-sync after 10 edits.
//!
//! `cargo bench -p samle-connectors --bench wordpress` prints the table; it asserts nothing.

// A benchmark binary: a failed step should stop it loudly (the fixture unwraps).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use samle_connectors::{ConnectorParams, WordPress};

use support::wordpress_site::{Shared, router, utc};

const POSTS: usize = 3_000;
const PAGES: usize = 200;

fn connector(url: &str, full_listing_every: &str) -> WordPress {
    let params: ConnectorParams = toml::from_str(&format!(
        "[wordpress]\nurl = \"{url}\"\naccess = [\"authenticated\"]\nfull_listing_every = \"{full_listing_every}\"\n\
         [wordpress.http]\nmin_delay = \"0ms\"\nmax_response_bytes = 104857600\n"
    ))
    .unwrap();
    WordPress::new(params.wordpress.as_ref().unwrap(), Path::new("/")).unwrap()
}

#[tokio::main]
async fn main() {
    let shared = Shared::new(support::sites::wordpress_site(POSTS, PAGES));
    let (addr, counter) = support::serve_counted(router(shared.clone())).await;
    let url = format!("http://{addr}/");
    let wp = connector(&url, "1h");

    let full = support::measure(&wp, None, Some(&counter)).await;
    let resync = support::measure_resync(&wp, &full, Some(&counter), 5).await;
    support::report(
        "wordpress (REST API, posts and pages)",
        POSTS + PAGES,
        &full,
        &resync,
    );

    // The same site, with the id listing due: the cost of finding trashed posts.
    let listing = support::measure(&connector(&url, "0s"), Some(&resync), Some(&counter)).await;
    // Ten posts edited since.
    {
        let mut site = shared.lock();
        let now = utc("2030-01-01T08:00:00");
        for (n, id) in (101..).step_by(97).take(10).enumerate() {
            site.edit(id, now + chrono::Duration::minutes(n as i64), |p| {
                p.title.push_str(" (opdateret)");
            });
        }
    }
    let edited = support::measure(&wp, Some(&listing), Some(&counter)).await;
    support::report_runs(
        &[
            ("periodic id listing (deletions)", &listing),
            ("re-sync after 10 edits", &edited),
        ],
        "id listing",
        &listing,
        &full,
    );
}
