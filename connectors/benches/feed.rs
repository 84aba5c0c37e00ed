//! The feeds connector: a full sync of a feed of a few thousand items from a loopback server,
//! then an unchanged re-sync (one conditional request answered 304).
//!
//! `cargo bench -p samle-connectors --bench feed` prints the table; it asserts nothing.

mod support;

use std::path::Path;

use samle_connectors::{ConnectorParams, build};

const ITEMS: usize = 3_000;

#[tokio::main]
async fn main() {
    let (addr, counter) = support::serve_counted(support::sites::feed_router(ITEMS)).await;
    let params: ConnectorParams = toml::from_str(&format!(
        "[feed]\nurl = \"http://{addr}{}\"\naccess = [\"authenticated\"]\n\
         [feed.http]\nmin_delay = \"0ms\"\nmax_response_bytes = 104857600\n",
        support::sites::FEED_PATH
    ))
    .expect("feed parameters");
    let connector = build("feed", &params, Path::new("/")).expect("feed connector");

    let full = support::measure(connector.as_ref(), None, Some(&counter)).await;
    let resync = support::measure_resync(connector.as_ref(), &full, Some(&counter), 5).await;
    support::report("feed (RSS 2.0)", ITEMS, &full, &resync);
}
