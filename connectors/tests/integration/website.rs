//! The website crawler against a small Danish intranet served on 127.0.0.1: robots.txt,
//! sitemap indexes and gzip sitemaps, scope, canonical URLs, redirects, encodings, PDFs,
//! noindex, throttling, conditional re-crawls, deletions, crawler traps and failing seeds.
//!
//! The fixture server answers conditional requests like a real one (`ETag` /
//! `If-None-Match`, `Last-Modified` / `If-Modified-Since`) and logs every request with the
//! validators it carried and the body bytes it sent.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use samle_connectors::{Change, Connector, build};

use crate::common::{
    failures, fixture, ids, is_failed, is_unchanged, is_upsert, last_cursor, run, run_with, upserts,
};
use crate::http::serve;

const LAST_MODIFIED: &str = "Tue, 06 May 2031 08:00:00 GMT";

/// One answer of the fixture server.
#[derive(Clone)]
enum Res {
    Page {
        body: Vec<u8>,
        content_type: String,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    Redirect {
        status: u16,
        location: String,
    },
    Status(u16),
    /// 429 with `Retry-After: 1` the first `times` requests, then the page.
    Throttled {
        times: usize,
        page: Box<Res>,
    },
}

/// A page with an `ETag` made from its bytes and a `Last-Modified`.
fn page(body: impl Into<Vec<u8>>, content_type: &str) -> Res {
    let body = body.into();
    Res::Page {
        etag: Some(format!("\"{}\"", &blake3::hash(&body).to_hex()[..16])),
        last_modified: Some(LAST_MODIFIED.to_owned()),
        body,
        content_type: content_type.to_owned(),
    }
}

fn html(body: impl Into<Vec<u8>>) -> Res {
    page(body, "text/html; charset=utf-8")
}

/// One request the server saw.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    if_none_match: bool,
    if_modified_since: bool,
    status: u16,
    bytes: usize,
}

#[derive(Default)]
struct SiteState {
    resources: Mutex<HashMap<String, Res>>,
    hits: Mutex<Vec<Hit>>,
}

/// A fixture site: resources by path and query, exactly as requested.
struct Site {
    /// `http://127.0.0.1:PORT`
    base: String,
    /// The same server under another host name (`localhost`): outside the crawl's scope.
    other: String,
    state: Arc<SiteState>,
}

async fn respond(State(state): State<Arc<SiteState>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let resource = {
        let mut resources = state.resources.lock().unwrap();
        match resources.get_mut(&path) {
            Some(Res::Throttled { times, page }) => {
                if *times > 0 {
                    *times -= 1;
                    Some(Res::Status(429))
                } else {
                    Some((**page).clone())
                }
            }
            other => other.cloned(),
        }
    };
    let if_none_match = headers.get(header::IF_NONE_MATCH).cloned();
    let if_modified_since = headers.get(header::IF_MODIFIED_SINCE).cloned();
    let response = match resource {
        None => Response::builder()
            .status(404)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Body::from("<h1>Siden findes ikke</h1>")),
        Some(Res::Page {
            body,
            content_type,
            etag,
            last_modified,
        }) => {
            let not_modified = match (&if_none_match, &etag) {
                (Some(sent), Some(etag)) => sent.as_bytes() == etag.as_bytes(),
                _ => matches!((&if_modified_since, &last_modified),
                    (Some(sent), Some(lm)) if sent.as_bytes() == lm.as_bytes()),
            };
            let mut builder = Response::builder().header(header::CONTENT_TYPE, content_type);
            if let Some(etag) = &etag {
                builder = builder.header(header::ETAG, etag);
            }
            if let Some(lm) = &last_modified {
                builder = builder.header(header::LAST_MODIFIED, lm);
            }
            if not_modified {
                builder.status(304).body(Body::empty())
            } else {
                builder.status(200).body(Body::from(body))
            }
        }
        Some(Res::Redirect { status, location }) => Response::builder()
            .status(status)
            .header(header::LOCATION, location)
            .body(Body::empty()),
        Some(Res::Status(429)) => Response::builder()
            .status(429)
            .header(header::RETRY_AFTER, "1")
            .body(Body::from("Prøv igen om lidt")),
        Some(Res::Status(status)) => Response::builder()
            .status(status)
            .body(Body::from("Der opstod en fejl på serveren")),
        Some(Res::Throttled { .. }) => unreachable!("resolved above"),
    }
    .unwrap();
    let bytes = match response.status() {
        StatusCode::OK => match &state.resources.lock().unwrap().get(&path) {
            Some(Res::Page { body, .. }) => body.len(),
            Some(Res::Throttled { page, .. }) => match page.as_ref() {
                Res::Page { body, .. } => body.len(),
                _ => 0,
            },
            _ => 0,
        },
        _ => 0,
    };
    state.hits.lock().unwrap().push(Hit {
        path,
        if_none_match: if_none_match.is_some(),
        if_modified_since: if_modified_since.is_some(),
        status: response.status().as_u16(),
        bytes,
    });
    response
}

impl Site {
    async fn start() -> Self {
        let state = Arc::new(SiteState::default());
        let router = Router::new()
            .fallback(respond)
            .with_state(Arc::clone(&state));
        let addr = serve(router).await;
        Self {
            base: format!("http://{addr}"),
            other: format!("http://localhost:{}", addr.port()),
            state,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn set(&self, path: &str, resource: Res) {
        self.state
            .resources
            .lock()
            .unwrap()
            .insert(path.to_owned(), resource);
    }

    fn remove(&self, path: &str) {
        self.state.resources.lock().unwrap().remove(path);
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    fn clear_hits(&self) {
        self.state.hits.lock().unwrap().clear();
    }

    fn hits_of(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }

    /// A fixture file from `fixtures/website/` with the server's addresses filled in.
    fn fixture(&self, name: &str) -> String {
        String::from_utf8(fixture(&format!("website/{name}")))
            .unwrap()
            .replace("{{base}}", &self.base)
            .replace("{{BASE}}", &self.base.replace("http://", "HTTP://"))
            .replace("{{other}}", &self.other)
    }

    /// The Danish intranet of Samle Kommune.
    async fn danish() -> Self {
        let site = Self::start().await;
        site.set(
            "/robots.txt",
            page(site.fixture("robots.txt"), "text/plain; charset=utf-8"),
        );
        site.set(
            "/sitemap_index.xml",
            page(
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{}/sitemaps/sider.xml.gz</loc><lastmod>2031-05-06</lastmod></sitemap>
</sitemapindex>"#,
                    site.base
                ),
                "application/xml",
            ),
        );
        site.set_sitemap("2031-05-01");
        for (path, file) in [
            ("/", "index.html"),
            ("/nyheder/", "nyheder/index.html"),
            ("/nyheder/kantine.html", "nyheder/kantine.html"),
            (
                "/nyheder/kantine.html?visning=print",
                "nyheder/kantine-print.html",
            ),
            ("/nyheder/arkiv.html", "nyheder/arkiv.html"),
            ("/om/", "om/index.html"),
            ("/kontakt?afdeling=digitalisering&emne=it", "kontakt.html"),
            ("/flyttet.html", "flyttet.html"),
            ("/hr/ny-adresse.html", "hr/ny-adresse.html"),
            ("/intern/", "intern/index.html"),
            ("/intern/budget.html", "intern/budget.html"),
            ("/intern/kladder.html", "intern/kladder.html"),
            ("/intern/hemmelig-kladde.html", "intern/budget.html"),
            ("/udgaaet.html", "udgaaet.html"),
            ("/arkiv/gammel-nyhed.html", "arkiv/gammel-nyhed.html"),
            ("/privat/loenoversigt.html", "intern/budget.html"),
            ("/soeg?q=ferie", "kontakt.html"),
            ("/nyheder/?sort=dato", "nyheder/index.html"),
        ] {
            site.set(path, html(site.fixture(file)));
        }
        site.set(
            "/travl.html",
            Res::Throttled {
                times: 1,
                page: Box::new(html(site.fixture("travl.html"))),
            },
        );
        // An old page in Windows-1252, served without a charset (and without an ETag): the
        // crawler must find the encoding itself.
        let ferie = "<html lang=\"da\"><head><title>Ferie og fridage – HR – Samle Kommune</title>\
            </head><body><main><h1>Ferie og fridage</h1><p>Alle medarbejdere har ret til fem \
            ugers ferie. Særlige feriedage, øvrige fridage og årsopgørelsen for ferie står i \
            personalehåndbogen. Spørg din leder, før du planlægger ferie i uge 42.</p></main>\
            </body></html>";
        let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(ferie);
        assert!(!unmappable);
        site.set(
            "/hr/ferie.html",
            Res::Page {
                body: cp1252.into_owned(),
                content_type: "text/html".to_owned(),
                etag: None,
                last_modified: Some(LAST_MODIFIED.to_owned()),
            },
        );
        site.set(
            "/dokumenter/personalehaandbog.pdf",
            page(fixture("personalehaandbog.pdf"), "application/pdf"),
        );
        site.set(
            "/gammel-side",
            Res::Redirect {
                status: 301,
                location: "/nyheder/".to_owned(),
            },
        );
        site.set(
            "/redirect-ud",
            Res::Redirect {
                status: 302,
                location: format!("{}/borger", site.other),
            },
        );
        for path in ["/billeder/logo.png", "/css/samle.css", "/ekstern.html"] {
            site.set(path, page("ikke en side", "application/octet-stream"));
        }
        site
    }

    /// The gzip-compressed sitemap, with `kantine_lastmod` for the canteen news.
    fn set_sitemap(&self, kantine_lastmod: &str) {
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{base}/nyheder/kantine.html</loc><lastmod>{kantine_lastmod}</lastmod></url>
  <url><loc>{base}/arkiv/gammel-nyhed.html</loc><lastmod>2030-12-20T10:00:00+01:00</lastmod></url>
  <url><loc>{base}/om/</loc></url>
  <url><loc>{base}/privat/loenoversigt.html</loc><lastmod>2031-04-01</lastmod></url>
</urlset>"#,
            base = self.base
        );
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(xml.as_bytes()).unwrap();
        self.set(
            "/sitemaps/sider.xml.gz",
            page(encoder.finish().unwrap(), "application/gzip"),
        );
    }
}

/// The crawler for `site` with test-friendly HTTP settings and `extra` lines of
/// `[website]`.
fn crawler(site: &Site, extra: &str) -> Box<dyn Connector> {
    let text = format!(
        "[website]\nseeds = [\"{}/\"]\naccess = [\"group:alle\"]\n{extra}\n\
         [website.http]\nmin_delay = \"0ms\"\nmax_retry_wait = \"2s\"\nretries = 1\ntimeout = \"10s\"\n",
        site.base
    );
    build("website", &toml::from_str(&text).unwrap(), Path::new("/")).unwrap()
}

/// The settings of the Danish site's source.
const DANISH: &str = "exclude = [\"/soeg*\"]\n\
    access_rules = [{ prefix = \"/intern/\", principals = [\"group:ledere\"] }]";

/// Crawls the Danish site once from scratch.
async fn first_crawl() -> (Site, Vec<Change>) {
    let site = Site::danish().await;
    let (result, changes) = run(crawler(&site, DANISH).as_ref(), HashMap::new()).await;
    result.unwrap();
    (site, changes)
}

fn urls(site: &Site, paths: &[&str]) -> Vec<String> {
    let mut urls: Vec<String> = paths.iter().map(|p| site.url(p)).collect();
    urls.sort();
    urls
}

/// Every page of the Danish site that is a document.
const DOCUMENTS: &[&str] = &[
    "/",
    "/arkiv/gammel-nyhed.html",
    "/dokumenter/personalehaandbog.pdf",
    "/hr/ferie.html",
    "/hr/ny-adresse.html",
    "/intern/budget.html",
    "/kontakt?afdeling=digitalisering&emne=it",
    "/nyheder/",
    "/nyheder/arkiv.html",
    "/nyheder/kantine.html",
    "/om/",
    "/travl.html",
    "/udgaaet.html",
];

#[tokio::test]
async fn the_crawl_stays_in_scope_and_obeys_robots_txt() {
    let (site, changes) = first_crawl().await;
    assert_eq!(ids(&changes, is_upsert), urls(&site, DOCUMENTS));
    assert_eq!(changes.last(), Some(&Change::TraversalComplete));

    // Robots.txt: a disallowed folder (even though the sitemap lists a page in it) and a
    // wildcard rule. Out of scope: another host, an excluded pattern. Never links: images,
    // style sheets, mailto: and javascript:.
    for path in [
        "/privat/loenoversigt.html",
        "/nyheder/?sort=dato",
        "/soeg?q=ferie",
        "/ekstern.html",
        "/billeder/logo.png",
        "/css/samle.css",
    ] {
        assert!(site.hits_of(path).is_empty(), "{path} was requested");
    }
    // The sitemap index led to the gzip sitemap, whose sitemap-only page is a document.
    assert_eq!(site.hits_of("/sitemap_index.xml").len(), 1);
    assert_eq!(site.hits_of("/sitemaps/sider.xml.gz").len(), 1);

    let docs = upserts(&changes);
    let front = &docs[&site.url("/")];
    assert_eq!(front.title, "Forside – Samle Kommunes intranet");
    assert!(
        front.body.contains("Velkommen til intranettet"),
        "{}",
        front.body
    );
    assert_eq!(front.kind, "page");
    assert_eq!(front.language.as_deref(), Some("da"));
    assert_eq!(front.acl, ["group:alle"]);
    assert_eq!(front.url.as_deref(), Some(site.url("/").as_str()));
    // Access rules by path prefix.
    assert_eq!(docs[&site.url("/intern/budget.html")].acl, ["group:ledere"]);
    // Dates the page declares, else the server's.
    assert_eq!(
        docs[&site.url("/nyheder/kantine.html")]
            .created
            .unwrap()
            .to_rfc3339(),
        "2031-05-01T06:00:00+00:00"
    );
    assert_eq!(
        docs[&site.url("/travl.html")].updated.unwrap().to_rfc3339(),
        "2031-05-06T08:00:00+00:00"
    );
}

#[tokio::test]
async fn canonical_urls_give_one_document_per_page() {
    let (site, changes) = first_crawl().await;
    // Every change concerns a different document.
    let mut seen = std::collections::HashSet::new();
    for id in changes.iter().filter_map(Change::external_id) {
        assert!(seen.insert(id.to_owned()), "{id} was sent twice");
    }
    // Query parameters in another order, a fragment and an upper-case scheme, index.html:
    // each page was requested once, under its canonical address.
    // (The news page is also the target of a 301, which the client follows: see the redirect
    // test.)
    for path in [
        "/kontakt?afdeling=digitalisering&emne=it",
        "/om/",
        "/nyheder/kantine.html",
    ] {
        assert_eq!(site.hits_of(path).len(), 1, "{path}: {:?}", site.hits());
    }
    for path in [
        "/kontakt?emne=it&afdeling=digitalisering",
        "/om/index.html",
        "/om/index.html#kontakt",
    ] {
        assert!(site.hits_of(path).is_empty(), "{path} was requested");
    }
    // The print version names the article as canonical: read, not indexed, and its links
    // still followed (the news archive is linked only from there).
    assert_eq!(site.hits_of("/nyheder/kantine.html?visning=print").len(), 1);
    let docs = upserts(&changes);
    assert!(!docs.contains_key(&site.url("/nyheder/kantine.html?visning=print")));
    assert!(docs.contains_key(&site.url("/nyheder/arkiv.html")));
    let kantine = &docs[&site.url("/nyheder/kantine.html")];
    assert_eq!(kantine.title, "Kantinen åbner igen efter ombygningen");
    assert!(kantine.body.contains("Birthe Ølgaard"), "{}", kantine.body);
}

#[tokio::test]
async fn redirects_lead_to_their_targets_and_are_not_indexed() {
    let (site, changes) = first_crawl().await;
    let docs = upserts(&changes);
    // A 301 to a page the crawl also reaches directly.
    assert_eq!(site.hits_of("/gammel-side").len(), 1);
    assert!(!docs.contains_key(&site.url("/gammel-side")));
    // A meta refresh leads to a page linked from nowhere else.
    assert_eq!(site.hits_of("/flyttet.html").len(), 1);
    assert!(!docs.contains_key(&site.url("/flyttet.html")));
    assert!(docs.contains_key(&site.url("/hr/ny-adresse.html")));
    // A redirect to another host is refused and reported, and the run goes on to complete.
    let failed = failures(&changes);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, site.url("/redirect-ud"));
    assert!(
        failed[0].1.contains("redirect") && failed[0].1.contains("localhost"),
        "{}",
        failed[0].1
    );
    assert!(site.hits_of("/borger").is_empty());
    assert_eq!(changes.last(), Some(&Change::TraversalComplete));
}

#[tokio::test]
async fn encodings_pdfs_noindex_and_throttling() {
    let (site, changes) = first_crawl().await;
    let docs = upserts(&changes);

    // Windows-1252 without a charset header or meta tag.
    let ferie = &docs[&site.url("/hr/ferie.html")];
    assert_eq!(ferie.title, "Ferie og fridage");
    for word in [
        "Særlige feriedage",
        "øvrige fridage",
        "årsopgørelsen",
        "Spørg",
    ] {
        assert!(ferie.body.contains(word), "{word} missing: {}", ferie.body);
    }
    assert!(!ferie.body.contains('\u{fffd}'));

    // A linked PDF, extracted with its metadata.
    let pdf = &docs[&site.url("/dokumenter/personalehaandbog.pdf")];
    assert_eq!(pdf.title, "Personalehåndbog");
    assert!(pdf.body.contains("Ferie og fravær"), "{}", pdf.body);
    assert_eq!(pdf.author.as_deref(), Some("Mette Hansen"));

    // noindex: not a document, links followed; "noindex, nofollow" for the user agent
    // samle: not a document, links not followed.
    assert!(!docs.contains_key(&site.url("/intern/")));
    assert!(!docs.contains_key(&site.url("/intern/kladder.html")));
    assert!(docs.contains_key(&site.url("/intern/budget.html")));
    assert!(site.hits_of("/intern/hemmelig-kladde.html").is_empty());

    // 429 with Retry-After, then the page.
    let statuses: Vec<u16> = site
        .hits_of("/travl.html")
        .iter()
        .map(|h| h.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
    assert!(docs[&site.url("/travl.html")].body.contains("normalt"));
}

#[tokio::test]
async fn an_unchanged_site_costs_only_conditional_requests() {
    let (site, first) = first_crawl().await;
    let first_bytes: usize = site.hits().iter().map(|h| h.bytes).sum();
    let known = crate::common::fingerprints(&first);
    site.clear_hits();

    let crawler = crawler(&site, DANISH);
    let (result, second) = run_with(
        crawler.as_ref(),
        known.clone(),
        Some(&last_cursor(&first)),
        false,
    )
    .await;
    result.unwrap();
    assert!(ids(&second, is_upsert).is_empty(), "{second:?}");
    assert_eq!(ids(&second, is_unchanged), urls(&site, DOCUMENTS));
    assert_eq!(second.last(), Some(&Change::TraversalComplete));
    // The same cursor again (the redirect's alias included), so the run commits nothing.
    assert_eq!(last_cursor(&second), last_cursor(&first));
    assert!(
        last_cursor(&first).contains("/nyheder/"),
        "{}",
        last_cursor(&first)
    );

    // No document's body was sent again.
    for path in DOCUMENTS {
        let bytes: usize = site.hits_of(path).iter().map(|h| h.bytes).sum();
        assert_eq!(bytes, 0, "{path} was sent again: {:?}", site.hits_of(path));
    }
    // ETag and If-None-Match...
    let front = site.hits_of("/");
    assert!(front.len() == 1 && front[0].if_none_match && front[0].status == 304);
    // ... Last-Modified alone and If-Modified-Since ...
    let ferie = site.hits_of("/hr/ferie.html");
    assert!(
        ferie.len() == 1 && ferie[0].if_modified_since && ferie[0].status == 304,
        "{ferie:?}"
    );
    // ... through a 301, with the target's validators ...
    let moved = site.hits_of("/nyheder/");
    assert!(moved.iter().all(|h| h.status == 304), "{moved:?}");
    // ... and pages whose sitemap lastmod has not moved are not requested at all.
    assert!(site.hits_of("/nyheder/kantine.html").is_empty());
    assert!(site.hits_of("/arkiv/gammel-nyhed.html").is_empty());

    let second_bytes: usize = site.hits().iter().map(|h| h.bytes).sum();
    assert!(
        second_bytes * 3 < first_bytes,
        "re-crawl {second_bytes} bytes, first crawl {first_bytes} bytes"
    );

    // A full run ignores validators and sends everything again.
    let (result, full) = run_with(crawler.as_ref(), known, None, true).await;
    result.unwrap();
    assert_eq!(ids(&full, is_upsert), urls(&site, DOCUMENTS));
    assert!(ids(&full, is_unchanged).is_empty());
}

#[tokio::test]
async fn changed_pages_are_sent_again_and_removed_pages_deleted() {
    let (site, first) = first_crawl().await;
    let known = crate::common::fingerprints(&first);

    // The news page gets a new article; the canteen news is edited and its sitemap entry
    // says so; the fax guide is removed; "Om" is saved again unchanged (a new ETag only).
    let news = site.fixture("nyheder/index.html").replace(
        "<article>",
        "<article><h2><a href=\"direktoer.html\">Ny kommunaldirektør</a></h2></article><article>",
    );
    site.set("/nyheder/", html(news));
    site.set(
        "/nyheder/direktoer.html",
        html(
            "<html lang=\"da\"><head><title>Ny kommunaldirektør</title></head><body><main>\
             <h1>Ny kommunaldirektør</h1><p>Byrådet har ansat Søren Åberg som ny \
             kommunaldirektør fra 1. august.</p></main></body></html>",
        ),
    );
    site.set(
        "/nyheder/kantine.html",
        html(
            site.fixture("nyheder/kantine.html")
                .replace("38 kroner", "42 kroner"),
        ),
    );
    site.set_sitemap("2031-06-01T09:00:00+02:00");
    site.remove("/udgaaet.html");
    let om = site.fixture("om/index.html");
    site.set(
        "/om/",
        Res::Page {
            body: om.into_bytes(),
            content_type: "text/html; charset=utf-8".to_owned(),
            etag: Some("\"gemt-igen\"".to_owned()),
            last_modified: None,
        },
    );
    site.clear_hits();

    let (result, second) = run_with(
        crawler(&site, DANISH).as_ref(),
        known,
        Some(&last_cursor(&first)),
        false,
    )
    .await;
    result.unwrap();
    assert_eq!(
        ids(&second, is_upsert),
        urls(
            &site,
            &[
                "/nyheder/",
                "/nyheder/direktoer.html",
                "/nyheder/kantine.html"
            ]
        )
    );
    let docs = upserts(&second);
    assert!(
        docs[&site.url("/nyheder/kantine.html")]
            .body
            .contains("42 kroner")
    );
    assert_eq!(
        ids(&second, |c| matches!(c, Change::Delete { .. })),
        urls(&site, &["/udgaaet.html"])
    );
    // Fetched again (new ETag), same content: unchanged.
    assert_eq!(site.hits_of("/om/")[0].status, 200);
    assert!(ids(&second, is_unchanged).contains(&site.url("/om/")));
    assert_eq!(second.last(), Some(&Change::TraversalComplete));
}

#[tokio::test]
async fn crawler_traps_are_stopped_by_the_limits() {
    let site = Site::start().await;
    site.set(
        "/",
        html(
            "<html><body><h1>Forside</h1><a href=\"/kalender?month=1\">Kalender</a> \
             <a href=\"/sti/a\">Sti</a></body></html>",
        ),
    );
    // An endless calendar and ever-growing paths.
    for month in 1..=200 {
        site.set(
            &format!("/kalender?month={month}"),
            html(format!(
                "<html><body><h1>Kalender, måned {month}</h1><p>Ingen begivenheder.</p>\
                 <a href=\"/kalender?month={}\">Næste måned</a></body></html>",
                month + 1
            )),
        );
    }
    let mut path = "/sti/a".to_owned();
    for _ in 0..100 {
        site.set(
            &path,
            html(format!(
                "<html><body><h1>Sti</h1><p>Endnu et niveau.</p><a href=\"{path}/a\">Videre</a></body></html>"
            )),
        );
        path.push_str("/a");
    }

    let crawler = crawler(
        &site,
        "max_pages_per_prefix = 25\nmax_url_length = 60\nmax_depth = 1000",
    );
    let (result, changes) = run(crawler.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert!(!changes.contains(&Change::TraversalComplete));
    let calendar = site
        .hits()
        .iter()
        .filter(|h| h.path.starts_with("/kalender"))
        .count();
    assert_eq!(calendar, 25);
    let longest = site
        .hits()
        .iter()
        .map(|h| site.url(&h.path).len())
        .max()
        .unwrap();
    assert!(longest <= 60, "{longest}");
    let errors: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Failed { error, .. } => Some(error.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("max_pages_per_prefix (25)") && e.contains("/kalender"))
    );
    assert!(errors.iter().any(|e| e.contains("max_url_length (60)")));
    assert!(errors.iter().all(|e| e.contains("deletes nothing")));

    // The same trap under a page budget.
    let (result, changes) = run(crawler_with_budget(&site).as_ref(), HashMap::new()).await;
    result.unwrap();
    assert!(!changes.contains(&Change::TraversalComplete));
    assert_eq!(ids(&changes, is_upsert).len(), 10);
    assert!(ids(&changes, is_failed).len() == 1);
}

fn crawler_with_budget(site: &Site) -> Box<dyn Connector> {
    crawler(site, "max_pages = 10\nuse_sitemaps = false")
}

#[tokio::test]
async fn a_seed_answering_500_fails_the_run() {
    let site = Site::start().await;
    site.set("/", Res::Status(500));
    site.set(
        "/robots.txt",
        page("User-agent: *\nAllow: /\n", "text/plain"),
    );
    // Documents indexed by an earlier run must not be swept.
    let known: HashMap<String, String> = [(site.url("/hr/"), "{}".to_owned())].into();
    let (result, changes) = run(crawler(&site, "").as_ref(), known).await;
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains(&format!("seed {}/", site.base)) && error.contains("500"),
        "{error}"
    );
    assert!(!changes.contains(&Change::TraversalComplete));
    assert!(!changes.iter().any(|c| matches!(c, Change::Delete { .. })));
    // Retried once (retries = 1) before giving up.
    assert_eq!(site.hits_of("/").len(), 2);
}

#[tokio::test]
async fn robots_txt_disallowing_the_seed_fails_run_and_check() {
    let site = Site::start().await;
    site.set(
        "/robots.txt",
        page(
            "User-agent: Samle\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
            "text/plain",
        ),
    );
    site.set("/", html("<html><body>Forside</body></html>"));
    let crawler = crawler(&site, "");
    let (result, changes) = run(crawler.as_ref(), HashMap::new()).await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("disallows the seed"), "{error}");
    assert!(!changes.contains(&Change::TraversalComplete));
    assert!(site.hits_of("/").is_empty());
    let error = crawler.check().await.unwrap_err().to_string();
    assert!(
        error.contains("robots.txt disallows the seed") && error.contains("Samle"),
        "{error}"
    );
}

#[tokio::test]
async fn check_says_what_it_found_or_what_is_wrong() {
    let site = Site::danish().await;
    let notes = crawler(&site, DANISH).check().await.unwrap();
    let seed_note = notes
        .iter()
        .find(|n| n.starts_with("seed "))
        .unwrap_or_else(|| panic!("{notes:?}"));
    assert!(
        seed_note.contains("answers 200 (text/html; charset=utf-8)")
            && seed_note.contains("robots.txt allows it")
            && seed_note.contains("2 sitemap file(s) list 4 URLs (4 in scope)"),
        "{seed_note}"
    );

    // Nothing listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let text = format!(
        "[website]\nseeds = [\"http://{closed}/\"]\nuse_sitemaps = false\nrespect_robots = false\n\
         [website.http]\nretries = 0\n"
    );
    let dead = build("website", &toml::from_str(&text).unwrap(), Path::new("/")).unwrap();
    let error = dead.check().await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("seed http://{closed}/ cannot be fetched"))
            && error.to_lowercase().contains("refused"),
        "{error}"
    );

    // A seed that redirects to another host, and one that wants credentials.
    site.set(
        "/",
        Res::Redirect {
            status: 302,
            location: format!("{}/login", site.other),
        },
    );
    let error = crawler(&site, DANISH)
        .check()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("redirect") && error.contains("add it to hosts"),
        "{error}"
    );
    site.set("/", Res::Status(401));
    let error = crawler(&site, DANISH)
        .check()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("401") && error.contains("credentials"),
        "{error}"
    );
}

#[test]
fn a_misspelt_key_is_refused() {
    let err = toml::from_str::<samle_connectors::ConnectorParams>(
        "[website]\nseeds = [\"https://intra/\"]\nfollow_link = false",
    )
    .unwrap_err();
    assert!(err.to_string().contains("follow_link"), "{err}");
    let err = build(
        "website",
        &samle_connectors::ConnectorParams::default(),
        Path::new("/"),
    )
    .err()
    .expect("must fail");
    assert!(err.to_string().contains("[sources.website]"), "{err}");
}
