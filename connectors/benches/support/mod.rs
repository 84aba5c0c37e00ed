//! What the connector benchmarks share: a request and byte counter for loopback servers, one
//! run of a connector with the fingerprints and cursor of the run before, and the table.
//!
//! Also Danish-looking prose from a fixed seed, so every run serves the same content, and in
//! [`sites`] the generated sources themselves (shared with the root crate's end-to-end
//! benchmark, `benches/resync.rs`, which includes this module by path).
//!
//! Each benchmark runs a full sync and then an unchanged re-sync of the same source, and
//! prints time, requests and bytes of both with the ratios (issue 4's target: the re-sync costs
//! at most 2 % of the full sync).

// Each benchmark binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::HttpBody as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use samle_connectors::{Change, ChangeSink, Connector, RunContext};
use tokio::sync::mpsc;

pub mod sites;

/// The tests' MediaWiki Action API fixture.
#[path = "../../tests/integration/mediawiki/fixture.rs"]
pub mod mediawiki_fixture;

/// The tests' WordPress REST API fixture.
#[path = "../../tests/integration/wordpress/site.rs"]
#[allow(clippy::unwrap_used)]
pub mod wordpress_site;

/// Requests a loopback server answered and the body bytes it sent.
#[derive(Clone, Default)]
pub struct Counter {
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Counter {
    /// Requests and bytes so far.
    pub fn read(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// Serves `router` on 127.0.0.1, counting requests and response body bytes (bodies of known
/// size, which every fixture response here is).
pub async fn serve_counted(router: Router) -> (SocketAddr, Counter) {
    let counter = Counter::default();
    let layer_counter = counter.clone();
    let router = router.layer(axum::middleware::map_response(
        move |response: axum::response::Response| {
            let counter = layer_counter.clone();
            async move {
                counter.requests.fetch_add(1, Ordering::Relaxed);
                let size = response.body().size_hint().exact().unwrap_or(0);
                counter.bytes.fetch_add(size, Ordering::Relaxed);
                response
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("serve the fixture");
    });
    (addr, counter)
}

/// One run: how long it took, what it emitted, and what the next run starts from.
pub struct Measured {
    pub elapsed: Duration,
    pub requests: u64,
    pub bytes: u64,
    pub upserts: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub failed: usize,
    pub cursor: Option<String>,
    pub known: HashMap<String, String>,
}

impl Measured {
    /// A starting point with nothing measured: what a run starts from, given a cursor and
    /// the fingerprints the index holds.
    pub fn start(cursor: Option<String>, known: HashMap<String, String>) -> Measured {
        Measured {
            elapsed: Duration::ZERO,
            requests: 0,
            bytes: 0,
            upserts: 0,
            unchanged: 0,
            deleted: 0,
            failed: 0,
            cursor,
            known,
        }
    }
}

/// Runs `connector` to the end after `previous` (its fingerprints and cursor), counting on
/// `counter` when given (a file share has no server).
pub async fn measure(
    connector: &dyn Connector,
    previous: Option<&Measured>,
    counter: Option<&Counter>,
) -> Measured {
    let (tx, mut rx) = mpsc::channel(256);
    let mut known = previous.map(|p| p.known.clone()).unwrap_or_default();
    let ctx = RunContext {
        source_id: "bench".to_owned(),
        cursor: previous.and_then(|p| p.cursor.clone()),
        full: false,
        known: Arc::new(known.clone()),
        sink: ChangeSink::new(tx),
    };
    let before = counter.map(Counter::read).unwrap_or_default();
    let start = Instant::now();
    let collect = async {
        let mut changes = Vec::new();
        while let Some(change) = rx.recv().await {
            changes.push(change);
        }
        changes
    };
    let (result, changes) = tokio::join!(connector.run(ctx), collect);
    let elapsed = start.elapsed();
    if let Err(e) = result {
        panic!("the run failed: {e}");
    }
    let after = counter.map(Counter::read).unwrap_or_default();
    let mut m = Measured {
        elapsed,
        requests: after.0 - before.0,
        bytes: after.1 - before.1,
        upserts: 0,
        unchanged: 0,
        deleted: 0,
        failed: 0,
        cursor: previous.and_then(|p| p.cursor.clone()),
        known: HashMap::new(),
    };
    for change in changes {
        match change {
            Change::Upsert(doc) => {
                m.upserts += 1;
                if let Some(f) = doc.fingerprint {
                    known.insert(doc.external_id, f);
                }
            }
            Change::Unchanged { .. } => m.unchanged += 1,
            Change::UnchangedMany { external_ids } => m.unchanged += external_ids.len(),
            Change::UnchangedKnown { slots } => m.unchanged += slots.len(),
            Change::Delete { external_id } => {
                m.deleted += 1;
                known.remove(&external_id);
            }
            Change::Failed { .. } => m.failed += 1,
            Change::Checkpoint { cursor } => m.cursor = Some(cursor),
            Change::TraversalComplete => {}
        }
    }
    m.known = known;
    m
}

/// Runs the unchanged re-sync after `full` `times` times and keeps the median by time: one
/// re-sync takes milliseconds, so a single run is at the mercy of the scheduler.
pub async fn measure_resync(
    connector: &dyn Connector,
    full: &Measured,
    counter: Option<&Counter>,
    times: usize,
) -> Measured {
    let mut runs = Vec::new();
    for _ in 0..times.max(1) {
        runs.push(measure(connector, Some(full), counter).await);
    }
    runs.sort_by_key(|m| m.elapsed);
    runs.swap_remove(runs.len() / 2)
}

/// Prints the full sync, the unchanged re-sync and their ratios.
pub fn report(title: &str, documents: usize, full: &Measured, resync: &Measured) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2} %", 100.0 * a / b)
        } else {
            "–".to_owned()
        }
    };
    println!("\n{title}: {documents} documents");
    println!("| run | time ms | requests | bytes | upserted | unchanged | deleted | failed |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, m) in [
        ("full sync", full),
        ("unchanged re-sync (median of 5)", resync),
    ] {
        println!(
            "| {name} | {:.1} | {} | {} | {} | {} | {} | {} |",
            ms(m.elapsed),
            m.requests,
            m.bytes,
            m.upserts,
            m.unchanged,
            m.deleted,
            m.failed
        );
    }
    println!(
        "| re-sync / full | {} | {} | {} | | | | |",
        pct(ms(resync.elapsed), ms(full.elapsed)),
        pct(resync.requests as f64, full.requests as f64),
        pct(resync.bytes as f64, full.bytes as f64),
    );
    println!(
        "full sync: {:.0} documents/s",
        documents as f64 / full.elapsed.as_secs_f64().max(1e-9)
    );
}

/// Words the generated documents are made of: everyday intranet Danish, with æøå.
pub const WORDS: &[&str] = &[
    "kommunen",
    "medarbejdere",
    "borgere",
    "ferie",
    "løn",
    "ansøgning",
    "frist",
    "leder",
    "afdelingen",
    "møde",
    "rådhuset",
    "digital",
    "sikkerhed",
    "adgangskode",
    "budget",
    "økonomi",
    "skole",
    "daginstitution",
    "ældrepleje",
    "vejarbejde",
    "affald",
    "byrådet",
    "høring",
    "retningslinjer",
    "sygefravær",
    "arbejdsmiljø",
    "kursus",
    "projekt",
    "og",
    "i",
    "på",
    "for",
    "med",
    "til",
    "at",
    "det",
    "som",
    "er",
    "der",
    "skal",
    "kan",
    "post",
    "genbrug",
    "beslutning",
    "politik",
    "uddannelse",
    "tilmelding",
    "nyhed",
    "orientering",
    "vil",
    "borgerne",
    "vejledning",
    "bliver",
    "har",
    "ikke",
    "også",
    "efter",
    "før",
    "under",
    "hvis",
    "når",
    "sagsbehandling",
    "udvalget",
    "budgettet",
    "tilskud",
    "kontrakt",
    "lederen",
    "referat",
    "regler",
    "procedure",
    "journalisering",
    "fraværet",
    "pension",
    "adgangskort",
    "telefon",
    "postkasse",
    "selvbetjening",
    "blanket",
    "tilladelse",
    "byggesag",
    "vej",
    "plejehjem",
    "hjemmehjælp",
    "bibliotek",
    "idrætshal",
    "kantine",
    "parkering",
    "borgerservice",
    "kørekort",
    "pas",
    "sundhedskort",
    "flytning",
    "skat",
    "ejendom",
    "vurdering",
    "klage",
    "afgørelse",
    "partshøring",
    "aktindsigt",
    "persondata",
    "samtykke",
    "fortrolig",
    "åbningstid",
    "hverdage",
    "weekend",
    "uge",
    "måned",
    "året",
    "sædvanlig",
    "særlig",
    "øvrige",
    "større",
    "mindre",
    "nye",
    "gamle",
];

/// Sentences and paragraphs of [`WORDS`] from a fixed seed.
pub struct Prose(StdRng);

impl Prose {
    pub fn new(seed: u64) -> Prose {
        Prose(StdRng::seed_from_u64(seed))
    }

    /// A number below `bound`.
    pub fn below(&mut self, bound: usize) -> usize {
        self.0.random_range(0..bound)
    }

    /// A word.
    pub fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }

    /// `words` words, the first capitalised, ending with a full stop.
    pub fn sentence(&mut self, words: usize) -> String {
        let mut s = String::new();
        for i in 0..words {
            let word = self.word();
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    s.extend(first.to_uppercase());
                    s.push_str(chars.as_str());
                }
            } else {
                s.push(' ');
                s.push_str(word);
            }
        }
        s.push('.');
        s
    }

    /// A number of sentences in `sentences`, each of 10 to 17 words.
    pub fn paragraph(&mut self, sentences: std::ops::Range<usize>) -> String {
        let count = self.0.random_range(sentences);
        (0..count)
            .map(|_| {
                let words = 10 + self.below(8);
                self.sentence(words)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Prints a table of extra runs (a listing, a re-sync after edits), then what `part` cost
/// against the full sync, as `label / full sync: … % of requests, … % of bytes`.
pub fn report_runs(rows: &[(&str, &Measured)], label: &str, part: &Measured, full: &Measured) {
    let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
    println!("| run | time ms | requests | bytes | upserted | unchanged |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, m) in rows {
        println!(
            "| {name} | {:.1} | {} | {} | {} | {} |",
            m.elapsed.as_secs_f64() * 1000.0,
            m.requests,
            m.bytes,
            m.upserts,
            m.unchanged
        );
    }
    println!(
        "{label} / full sync: {:.2} % of requests, {:.2} % of bytes",
        pct(part.requests, full.requests),
        pct(part.bytes, full.bytes)
    );
}
