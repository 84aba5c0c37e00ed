//! The WordPress connector against the tests' WordPress REST fixture on 127.0.0.1, with 3,000
//! posts and 200 pages of realistic size (Gutenberg markup, 4–8 KB each): a full sync, an
//! unchanged re-sync (the first run's fingerprints and cursor; the id listing not due), then
//! separately the periodic id listing that finds trashed posts, and a re-sync after 10 edits.
//!
//! `cargo bench -p samle-connectors --bench wordpress` prints the table; it asserts nothing.

// A benchmark binary: a failed step should stop it loudly (the fixture unwraps).
#![allow(clippy::unwrap_used)]

mod support;

use support::Prose;

#[path = "../tests/integration/wordpress/site.rs"]
#[allow(dead_code)]
mod site;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use samle_connectors::{ConnectorParams, WordPress};

use self::site::{Shared, Site, post, router, utc};

const POSTS: usize = 3_000;
const PAGES: usize = 200;

/// Gutenberg block markup of 4–8 KB: paragraphs, a heading and a list.
fn content(rng: &mut Prose) -> String {
    let mut html = String::new();
    for block in 0..(6 + rng.below(5)) {
        if block == 2 {
            html.push_str(&format!(
                "<!-- wp:heading -->\n<h2 class=\"wp-block-heading\">{}</h2>\n<!-- /wp:heading -->\n\n",
                rng.sentence(4)
            ));
        }
        if block == 4 {
            html.push_str("<!-- wp:list -->\n<ul>");
            for _ in 0..4 {
                html.push_str(&format!("<li>{}</li>", rng.sentence(6)));
            }
            html.push_str("</ul>\n<!-- /wp:list -->\n\n");
        }
        let paragraph = rng.paragraph(5..9);
        html.push_str(&format!(
            "<!-- wp:paragraph -->\n<p>{} &#8211; se mere p&aring; intranettet &amp; i personaleh&aring;ndbogen.</p>\n<!-- /wp:paragraph -->\n\n",
            paragraph
        ));
    }
    html
}

fn big_site() -> Site {
    let mut site = Site::new("Intranettet");
    site.categories = (1..=20).map(|i| (i, format!("Kategori {i}"))).collect();
    site.tags = (100..200).map(|i| (i, format!("emne-{i}"))).collect();
    let mut rng = Prose::new(42);
    let start = utc("2022-01-01T08:00:00");
    for i in 0..POSTS + PAGES {
        let at: DateTime<Utc> = start + chrono::Duration::hours(3 * i as i64);
        let at = at.format("%Y-%m-%dT%H:%M:%S").to_string();
        let base = if i < POSTS { "posts" } else { "pages" };
        let title = format!(
            "{} &#8211; {} &amp; {}",
            rng.sentence(3),
            i,
            rng.sentence(2)
        );
        let mut p = post(base, &title, &content(&mut rng), &at);
        p.excerpt = format!("<p>{}</p>\n", rng.sentence(20));
        p.author = [1, 2, 3][rng.below(3)];
        if base == "posts" {
            p.categories = vec![1 + rng.below(20) as u64];
            p.tags = vec![100 + rng.below(100) as u64, 100 + rng.below(100) as u64];
        }
        site.add(p);
    }
    site
}

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
    let shared = Shared::new(big_site());
    let (addr, counter) = support::serve_counted(router(shared.clone())).await;
    let url = format!("http://{addr}/");
    let wp = connector(&url, "1h");

    let full = support::measure(&wp, None, Some(&counter)).await;
    let resync = support::measure(&wp, Some(&full), Some(&counter)).await;
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
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
    println!("| run | time ms | requests | bytes | upserted | unchanged |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, m) in [
        ("periodic id listing (deletions)", &listing),
        ("re-sync after 10 edits", &edited),
    ] {
        println!(
            "| {name} | {:.1} | {} | {} | {} | {} |",
            ms(m.elapsed),
            m.requests,
            m.bytes,
            m.upserts,
            m.unchanged
        );
    }
    println!(
        "id listing / full sync: {:.2} % of requests, {:.2} % of bytes",
        pct(listing.requests, full.requests),
        pct(listing.bytes, full.bytes)
    );
}
