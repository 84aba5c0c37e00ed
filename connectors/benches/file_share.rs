//! The file-share connector: a full sync of a few thousand Markdown files, then an unchanged
//! re-sync (size and modification time match, so no file is opened).
//!
//! `cargo bench -p samle-connectors --bench file_share` prints the table; it asserts nothing.
//! A share has no server: requests and bytes are not counted, the time is what matters.

mod support;

use samle_connectors::{ConnectorParams, build};

const FILES: usize = 3_000;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let root = dir.path().join("share");
    support::sites::write_share(&root, FILES);
    let params: ConnectorParams = toml::from_str(&format!(
        "[file-share]\nroot = {:?}\ndefault_access = [\"authenticated\"]\n",
        root.to_str().expect("a UTF-8 path")
    ))
    .expect("file-share parameters");
    let connector = build("file-share", &params, dir.path()).expect("file-share connector");

    let full = support::measure(connector.as_ref(), None, None).await;
    let resync = support::measure_resync(connector.as_ref(), &full, None, 5).await;
    support::report("file share (Markdown)", FILES, &full, &resync);
}
