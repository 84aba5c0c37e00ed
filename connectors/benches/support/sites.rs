//! The generated sources the benchmarks sync, one copy for the connector benchmarks
//! (`cargo bench -p samle-connectors`) and the end-to-end one (`cargo bench --bench resync`):
//! a feed, a file share, a website with sitemaps, a WordPress site and a MediaWiki, each of a
//! given number of documents, the same content for the same number on every run.

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
use axum::routing::get;
use chrono::{DateTime, Utc};

use super::mediawiki_fixture::Wiki;
use super::wordpress_site::{Site, post, utc};
use super::{Counter, Prose, WORDS, serve_counted};

// ---- feed ----------------------------------------------------------------------------------

/// The feed's one version: a conditional request with it is answered 304.
pub const FEED_ETAG: &str = "\"v1\"";
/// Where [`feed_router`] serves the feed.
pub const FEED_PATH: &str = "/feed";

/// An RSS 2.0 feed of `n` Danish news items of a few hundred words each.
pub fn feed_xml(n: usize) -> String {
    let paragraph = "Kommunen åbner en ny borgerservice i centrum, hvor borgere kan få hjælp til \
                     pas, kørekort, sundhedskort og digital post. Medarbejderne minder om, at \
                     man skal bestille tid på forhånd, og at ferieperioden giver længere \
                     ventetid. ";
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Nyheder</title><link>http://127.0.0.1/</link><description>Nyheder</description>\n",
    );
    for i in 0..n {
        let day = 1 + i % 28;
        xml.push_str(&format!(
            "<item><title>Nyhed nummer {i}</title><link>http://127.0.0.1/nyheder/{i}</link>\
             <guid>urn:nyhed:{i}</guid><pubDate>Tue, {day:02} Sep 2026 10:00:00 +0200</pubDate>\
             <description>{}</description></item>\n",
            paragraph.repeat(4)
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

/// Serves [`feed_xml`] of `n` items at [`FEED_PATH`], with an `ETag` and 304 for a request
/// that names it.
pub fn feed_router(n: usize) -> Router {
    let body = feed_xml(n);
    Router::new().route(
        FEED_PATH,
        get(move |headers: HeaderMap| {
            let body = body.clone();
            async move {
                if headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v.as_bytes() == FEED_ETAG.as_bytes())
                {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                (
                    [
                        (header::CONTENT_TYPE, "application/rss+xml"),
                        (header::ETAG, FEED_ETAG),
                    ],
                    body,
                )
                    .into_response()
            }
        }),
    )
}

// ---- file share ----------------------------------------------------------------------------

/// Writes `n` Markdown files of about 4 KB into 40 folders under `root`; returns the bytes
/// written.
pub fn write_share(root: &Path, n: usize) -> u64 {
    let paragraph = "Sådan søger du om orlov, registrerer ferie og melder dig syg. Kontakt din \
                     leder, hvis du er i tvivl, og husk at opdatere din kalender. ";
    let mut bytes = 0;
    for i in 0..n {
        let folder = root.join(format!("afdeling-{:02}", i % 40));
        std::fs::create_dir_all(&folder).expect("create a folder");
        let text = format!(
            "---\ntitle: Vejledning {i}\n---\n\n# Vejledning {i}\n\n{}\n",
            paragraph.repeat(30)
        );
        bytes += text.len() as u64;
        std::fs::write(folder.join(format!("vejledning-{i}.md")), text).expect("write a file");
    }
    bytes
}

// ---- website -------------------------------------------------------------------------------

/// The website's sections; each has an index page listing its pages.
pub const SECTIONS: &[&str] = &[
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
pub const UNLISTED_EVERY: usize = 10;
const LAST_MODIFIED: &str = "Mon, 01 Sep 2031 08:00:00 GMT";

/// The HTML documents a website of `pages` pages holds: the pages, one index per section and
/// the front page.
pub fn website_documents(pages: usize) -> usize {
    pages + SECTIONS.len() + 1
}

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

/// A page of about 7 KB: navigation, a title, paragraphs of Danish words and a few links to
/// others of the site's `pages`.
fn page_html(page: usize, pages: usize, rng: &mut Prose, nav: &str) -> String {
    let section = section_of(page);
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"da\"><head><meta charset=\"utf-8\">\
         <title>Vejledning {page} – {section} – Samle Kommune</title></head><body>{nav}\
         <main><article><h1>Vejledning {page} om {}</h1>",
        WORDS[page % WORDS.len()]
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
        (page + SECTIONS.len()) % pages,
        (page + pages - SECTIONS.len() % pages) % pages,
        rng.below(pages),
        rng.below(pages),
        rng.below(pages),
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

/// The whole site of `pages` pages at `base`, by path.
fn website(base: &str, pages: usize) -> HashMap<String, Resource> {
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
    for page in 0..pages {
        add(
            page_path(page),
            page_html(page, pages, &mut rng, &nav).into_bytes(),
            "text/html; charset=utf-8",
        );
    }
    for section in SECTIONS {
        let mut html = format!(
            "<!DOCTYPE html><html lang=\"da\"><head><meta charset=\"utf-8\">\
             <title>{section} – Samle Kommune</title></head><body>{nav}<main><h1>{section}</h1><ul>"
        );
        for page in (0..pages).filter(|p| section_of(*p) == *section) {
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
        for page in (0..pages).filter(|p| p % 2 == part && p % UNLISTED_EVERY != 0) {
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

/// A served website.
pub struct Website {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    pub counter: Counter,
    /// The bytes of the `pages` pages (not the section indexes, sitemaps or robots.txt).
    pub page_bytes: usize,
}

/// Serves an intranet of `pages` linked pages (with robots.txt, a sitemap index and gzip
/// sitemaps, ETags and `Last-Modified`) on 127.0.0.1, counted.
pub async fn serve_website(pages: usize) -> Website {
    let cell: SiteCell = Arc::default();
    let router = Router::new()
        .fallback(respond)
        .with_state(Arc::clone(&cell));
    let (addr, counter) = serve_counted(router).await;
    let base = format!("http://{addr}");
    let resources = website(&base, pages);
    let page_bytes: usize = (0..pages)
        .map(|p| resources[&page_path(p)].body.len())
        .sum();
    if cell.set(resources).is_err() {
        unreachable!("the site is built once");
    }
    Website {
        base,
        counter,
        page_bytes,
    }
}

// ---- WordPress -----------------------------------------------------------------------------

/// Gutenberg block markup of 4–8 KB: paragraphs, a heading and a list.
fn wordpress_content(rng: &mut Prose) -> String {
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

/// A WordPress site of `posts` posts and then `pages` pages of realistic size (Gutenberg
/// markup, 4–8 KB each), one every three hours from 2022, with 20 categories and 100 tags.
pub fn wordpress_site(posts: usize, pages: usize) -> Site {
    let mut site = Site::new("Intranettet");
    site.categories = (1..=20).map(|i| (i, format!("Kategori {i}"))).collect();
    site.tags = (100..200).map(|i| (i, format!("emne-{i}"))).collect();
    let mut rng = Prose::new(42);
    let start = utc("2022-01-01T08:00:00");
    for i in 0..posts + pages {
        let at: DateTime<Utc> = start + chrono::Duration::hours(3 * i as i64);
        let at = at.format("%Y-%m-%dT%H:%M:%S").to_string();
        let base = if i < posts { "posts" } else { "pages" };
        let title = format!(
            "{} &#8211; {} &amp; {}",
            rng.sentence(3),
            i,
            rng.sentence(2)
        );
        let mut p = post(base, &title, &wordpress_content(&mut rng), &at);
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

// ---- MediaWiki -----------------------------------------------------------------------------

/// Every tenth wiki page is a help page (namespace 12).
pub const HELP_EVERY: usize = 10;

/// Rendered wiki content of 4–8 KB: an introduction, four or more sections (so the wiki
/// adds a table of contents and edit links), a list, a link and a navigation box.
fn wiki_content(rng: &mut Prose) -> String {
    let mut html = format!("<p>{}</p>\n", rng.paragraph(4..8));
    for section in 0..(4 + rng.below(3)) {
        html.push_str(&format!("<h2>{}</h2>\n", rng.sentence(3)));
        html.push_str(&format!("<p>{}</p>\n", rng.paragraph(4..8)));
        if section == 1 {
            html.push_str("<ul>");
            for _ in 0..4 {
                html.push_str(&format!(
                    "<li><a href=\"/wiki/Personale\" title=\"Personale\">{}</a></li>",
                    rng.sentence(5)
                ));
            }
            html.push_str("</ul>\n");
        }
    }
    html.push_str(
        "<table class=\"navbox\"><tr><th>Personale</th><td><a href=\"/wiki/Ferie\">Ferie</a> · \
         <a href=\"/wiki/L%C3%B8n\">Løn</a> · <a href=\"/wiki/Sygdom\">Sygdom</a></td></tr></table>",
    );
    html
}

/// A wiki of `pages` pages in the main and help namespaces, one edit ten minutes after the
/// other, the last a day before the wiki's clock.
pub fn wiki(pages: usize) -> Wiki {
    let mut wiki = Wiki::new();
    let mut rng = Prose::new(42);
    let categories = ["Personale", "IT", "Økonomi", "Skole", "Teknik og miljø"];
    for i in 0..pages {
        let title = if i % HELP_EVERY == 0 {
            format!("Hjælp:Vejledning {i}")
        } else {
            format!("{} {i}", rng.sentence(2).trim_end_matches('.'))
        };
        let category = categories[rng.below(categories.len())];
        let content = wiki_content(&mut rng);
        wiki.edit(
            &title,
            "Mette",
            &content,
            &[category, "hidden:Sider med kilder"],
        );
        wiki.advance(chrono::Duration::minutes(10));
    }
    wiki.advance(chrono::Duration::days(1));
    wiki
}
