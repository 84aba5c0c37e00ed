//! The feeds connector: a full sync of a feed of a few thousand items from a loopback server,
//! then an unchanged re-sync (one conditional request answered 304).
//!
//! `cargo bench -p samle-connectors --bench feed` prints the table; it asserts nothing.

mod support;

use std::path::Path;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use samle_connectors::{ConnectorParams, build};

const ITEMS: usize = 3_000;
const ETAG: &str = "\"v1\"";

/// An RSS 2.0 feed of `n` Danish news items of a few hundred words each.
fn feed(n: usize) -> String {
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

#[tokio::main]
async fn main() {
    let body = feed(ITEMS);
    let router = Router::new().route(
        "/feed",
        get(move |headers: HeaderMap| {
            let body = body.clone();
            async move {
                if headers
                    .get(header::IF_NONE_MATCH)
                    .is_some_and(|v| v.as_bytes() == ETAG.as_bytes())
                {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                (
                    [
                        (header::CONTENT_TYPE, "application/rss+xml"),
                        (header::ETAG, ETAG),
                    ],
                    body,
                )
                    .into_response()
            }
        }),
    );
    let (addr, counter) = support::serve_counted(router).await;
    let params: ConnectorParams = toml::from_str(&format!(
        "[feed]\nurl = \"http://{addr}/feed\"\naccess = [\"authenticated\"]\n\
         [feed.http]\nmin_delay = \"0ms\"\nmax_response_bytes = 104857600\n"
    ))
    .expect("feed parameters");
    let connector = build("feed", &params, Path::new("/")).expect("feed connector");

    let full = support::measure(connector.as_ref(), None, Some(&counter)).await;
    let resync = support::measure_resync(connector.as_ref(), &full, Some(&counter), 5).await;
    support::report("feed (RSS 2.0)", ITEMS, &full, &resync);
}
