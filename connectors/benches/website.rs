//! The website crawler: a full crawl of a generated intranet of a few thousand linked pages
//! (with robots.txt, a sitemap index and gzip sitemaps) from a loopback server, then unchanged
//! re-crawls: one as configured (sitemap `lastmod` plus conditional requests for the pages the
//! sitemaps do not list), one without sitemaps (a conditional request for every page).
//!
//! `cargo bench -p samle-connectors --bench website` prints the tables; it asserts nothing.

mod support;

use std::path::Path;

use samle_connectors::{ConnectorParams, build};
use support::sites::{SECTIONS, UNLISTED_EVERY};

const PAGES: usize = 3_000;

#[tokio::main]
async fn main() {
    let site = support::sites::serve_website(PAGES).await;
    let (base, counter) = (&site.base, &site.counter);

    let crawler = |extra: &str| {
        let params: ConnectorParams = toml::from_str(&format!(
            "[website]\nseeds = [\"{base}/\"]\naccess = [\"authenticated\"]\n{extra}\n\
             [website.http]\nmin_delay = \"0ms\"\nmax_concurrency = 4\n"
        ))
        .expect("website parameters");
        build("website", &params, Path::new("/")).expect("website connector")
    };
    let with_sitemaps = crawler("");
    let without_sitemaps = crawler("use_sitemaps = false");

    println!(
        "site: {PAGES} pages of {:.1} KB on average, {} sections, every {UNLISTED_EVERY}th page in no sitemap",
        site.page_bytes as f64 / PAGES as f64 / 1024.0,
        SECTIONS.len()
    );
    let full = support::measure(with_sitemaps.as_ref(), None, Some(counter)).await;
    let resync = support::measure_resync(with_sitemaps.as_ref(), &full, Some(counter), 5).await;
    let conditional =
        support::measure_resync(without_sitemaps.as_ref(), &full, Some(counter), 5).await;
    let documents = full.upserts;
    support::report(
        "website crawl, re-crawl with sitemap lastmod and conditional GET",
        documents,
        &full,
        &resync,
    );
    support::report(
        "website crawl, re-crawl without sitemaps (a conditional GET per page)",
        documents,
        &full,
        &conditional,
    );
}
