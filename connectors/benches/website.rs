//! The website crawler: a full crawl of a generated intranet of a few thousand linked pages
//! (with robots.txt, a sitemap index and gzip sitemaps) from a loopback server, then unchanged
//! re-crawls: one as configured (sitemap `lastmod` plus conditional requests for the pages the
//! sitemaps do not list), one without sitemaps (a conditional request for every page).
//!
//! `cargo bench -p samle-connectors --bench website` prints the tables; it asserts nothing.

mod support;

use support::Prose;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use samle_connectors::{ConnectorParams, build};

const PAGES: usize = 3_000;
const SECTIONS: &[&str] = &[
    "borgerservice",
    "teknik-og-miljoe",
    "boern-og-unge",
    "aeldre-og-sundhed",
    "beskaeftigelse",
    "kultur-og-fritid",
    "oekonomi",
    "hr",
    "it",
    "kommunikation",
    "jura",
    "byggeri",
    "trafik",
    "skoler",
    "dagtilbud",
    "handicap",
    "psykiatri",
    "beredskab",
    "indkoeb",
    "politik",
];
/// Every tenth page is in no sitemap: only links lead there.
const UNLISTED_EVERY: usize = 10;
const LAST_MODIFIED: &str = "Mon, 01 Sep 2031 08:00:00 GMT";

fn section_of(page: usize) -> &'static str {
    SECTIONS[page % SECTIONS.len()]
}

fn page_path(page: usize) -> String {
    format!("/{}/side-{page}.html", section_of(page))
}

fn nav() -> String {
    let mut nav = String::from("<header><nav><ul><li><a href=\"/\">Forside</a></li>");
    for section in SECTIONS {
        let _ = write!(nav, "<li><a href=\"/{section}/\">{section}</a></li>");
    }
    nav.push_str("</ul></nav></header>");
    nav
}

/// A page of about 7 KB: navigation, a title, paragraphs of Danish words and a few links.
fn page_html(page: usize, rng: &mut Prose, nav: &str) -> String {
    let section = section_of(page);
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"da\"><head><meta charset=\"utf-8\">\
         <title>Vejledning {page} – {section} – Samle Kommune</title></head><body>{nav}\
         <main><article><h1>Vejledning {page} om {}</h1>",
        support::WORDS[page % support::WORDS.len()]
    );
    for _ in 0..7 {
        html.push_str("<p>");
        for sentence in 0..7 {
            let words = 8 + rng.below(8);
            for w in 0..words {
                let word = rng.word();
                if w == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        html.extend(first.to_uppercase());
                        html.push_str(chars.as_str());
                    }
                } else {
                    html.push(' ');
                    html.push_str(word);
                }
            }
            html.push_str(if sentence % 3 == 2 { ". " } else { ", og " });
        }
        html.push_str("</p>");
    }
    html.push_str("<h2>Se også</h2><ul>");
    let related = [
        (page + SECTIONS.len()) % PAGES,
        (page + PAGES - SECTIONS.len()) % PAGES,
        rng.below(PAGES),
        rng.below(PAGES),
        rng.below(PAGES),
    ];
    for other in related {
        let _ = write!(
            html,
            "<li><a href=\"{}\">Vejledning {other}</a></li>",
            page_path(other)
        );
    }
    html.push_str(
        "</ul></article></main><footer>Samle Kommune · Rådhuspladsen 1</footer></body></html>",
    );
    html
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

struct Resource {
    body: Bytes,
    content_type: &'static str,
    etag: String,
}

/// The whole site, by path.
fn site(base: &str) -> HashMap<String, Resource> {
    let mut resources = HashMap::new();
    let mut add = |path: String, body: Vec<u8>, content_type: &'static str| {
        let etag = format!("\"{}\"", &blake3::hash(&body).to_hex()[..16]);
        resources.insert(
            path,
            Resource {
                body: Bytes::from(body),
                content_type,
                etag,
            },
        );
    };
    let nav = nav();
    let mut rng = Prose::new(42);
    for page in 0..PAGES {
        add(
            page_path(page),
            page_html(page, &mut rng, &nav).into_bytes(),
            "text/html; charset=utf-8",
        );
    }
    for section in SECTIONS {
        let mut html = format!(
            "<!DOCTYPE html><html lang=\"da\"><head><meta charset=\"utf-8\">\
             <title>{section} – Samle Kommune</title></head><body>{nav}<main><h1>{section}</h1><ul>"
        );
        for page in (0..PAGES).filter(|p| section_of(*p) == *section) {
            let _ = write!(
                html,
                "<li><a href=\"side-{page}.html\">Vejledning {page}</a></li>"
            );
        }
        html.push_str("</ul></main></body></html>");
        add(
            format!("/{section}/"),
            html.into_bytes(),
            "text/html; charset=utf-8",
        );
    }
    add(
        "/".to_owned(),
        format!(
            "<!DOCTYPE html><html lang=\"da\"><head><meta charset=\"utf-8\">\
             <title>Samle Kommunes intranet</title></head><body>{nav}<main>\
             <h1>Velkommen</h1><p>Intranettet for alle medarbejdere.</p></main></body></html>"
        )
        .into_bytes(),
        "text/html; charset=utf-8",
    );
    add(
        "/robots.txt".to_owned(),
        format!("User-agent: *\nDisallow: /soeg\nSitemap: {base}/sitemap_index.xml\n").into_bytes(),
        "text/plain",
    );
    let mut index = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">",
    );
    for part in 0..2 {
        let _ = write!(
            index,
            "<sitemap><loc>{base}/sitemap-{part}.xml.gz</loc></sitemap>"
        );
        let mut urlset = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">",
        );
        for page in (0..PAGES).filter(|p| p % 2 == part && p % UNLISTED_EVERY != 0) {
            let _ = write!(
                urlset,
                "<url><loc>{base}{}</loc><lastmod>2031-09-01T10:00:00+02:00</lastmod></url>",
                page_path(page)
            );
        }
        urlset.push_str("</urlset>");
        add(
            format!("/sitemap-{part}.xml.gz"),
            gzip(&urlset),
            "application/gzip",
        );
    }
    index.push_str("</sitemapindex>");
    add(
        "/sitemap_index.xml".to_owned(),
        index.into_bytes(),
        "application/xml",
    );
    resources
}

/// The site, built once the server's address is known (the sitemaps name it).
type SiteCell = Arc<OnceLock<HashMap<String, Resource>>>;

async fn respond(State(site): State<SiteCell>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(resource) = site.get().and_then(|site| site.get(uri.path())) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag_matches = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == resource.etag.as_bytes());
    let since_matches = headers
        .get(header::IF_MODIFIED_SINCE)
        .is_some_and(|v| v.as_bytes() == LAST_MODIFIED.as_bytes());
    let builder = Response::builder()
        .header(header::ETAG, &resource.etag)
        .header(header::LAST_MODIFIED, LAST_MODIFIED);
    let response = if etag_matches || since_matches {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder
            .header(header::CONTENT_TYPE, resource.content_type)
            .body(Body::from(resource.body.clone()))
    };
    response.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[tokio::main]
async fn main() {
    let cell: SiteCell = Arc::default();
    let router = Router::new()
        .fallback(respond)
        .with_state(Arc::clone(&cell));
    let (addr, counter) = support::serve_counted(router).await;
    let base = format!("http://{addr}");
    let resources = site(&base);
    let page_bytes: usize = (0..PAGES)
        .map(|p| resources[&page_path(p)].body.len())
        .sum();
    if cell.set(resources).is_err() {
        unreachable!("the site is built once");
    }

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
        page_bytes as f64 / PAGES as f64 / 1024.0,
        SECTIONS.len()
    );
    let full = support::measure(with_sitemaps.as_ref(), None, Some(&counter)).await;
    let resync = support::measure(with_sitemaps.as_ref(), Some(&full), Some(&counter)).await;
    let conditional =
        support::measure(without_sitemaps.as_ref(), Some(&full), Some(&counter)).await;
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
