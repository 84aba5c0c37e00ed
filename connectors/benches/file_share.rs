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
    let paragraph = "Sådan søger du om orlov, registrerer ferie og melder dig syg. Kontakt din \
                     leder, hvis du er i tvivl, og husk at opdatere din kalender. ";
    for i in 0..FILES {
        let folder = root.join(format!("afdeling-{:02}", i % 40));
        std::fs::create_dir_all(&folder).expect("create a folder");
        let text = format!(
            "---\ntitle: Vejledning {i}\n---\n\n# Vejledning {i}\n\n{}\n",
            paragraph.repeat(30)
        );
        std::fs::write(folder.join(format!("vejledning-{i}.md")), text).expect("write a file");
    }
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
