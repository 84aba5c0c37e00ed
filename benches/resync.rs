//! End to end: a full sync against an unchanged re-sync of every connector kind, through the
//! whole pipeline (`cargo bench --bench resync`).
//!
//! For each kind (file share, feed, website crawl with sitemaps, WordPress, MediaWiki) it
//! generates a source of 10,000 documents (`RESYNC_DOCS=N` for another number) with the
//! connector benchmarks' generators (`connectors/benches/support`), serves it on 127.0.0.1
//! with a request and byte counter (the file share is written to a temporary folder), and
//! builds a real configuration with one source of that kind over a temporary data directory:
//! the SQLite store, the tantivy index, the index writer's thread and the sync engine, as
//! `samle sync` wires them. Then it times
//! - a full sync (`SyncEngine::run(…, "cli", full = true, …)`): connector, extraction,
//!   fingerprints, indexing and the commits, after which the index must hold exactly the
//!   source's documents and an employee's browse search must find them all;
//! - an unchanged re-sync, five times, keeping the median: each must add, update and delete
//!   nothing.
//!
//! Bytes are response body bytes at the server; for the file share they are the files' sizes
//! for every file the run reads: all of them in a full sync, none in an unchanged re-sync
//! (the connector compares size and modification time, and opens no file whose both match).
//!
//! Then it splits the unchanged re-sync's time: the connector alone (run from the index's
//! fingerprints and cursor, changes collected, median of five), building the connector, the
//! index reads the engine may make (its cursor, and the ids with their fingerprints, which
//! it reads only when the run first needs them), an empty commit of the
//! index writer times the commits the re-sync made (counted from the writer's "index
//! committed" events), and the store's two writes (run started, finished); and it prints
//! the median re-sync's timeline: the sync's, the connector's and the index writer's events,
//! in milliseconds from the call.
//!
//! It prints figures, with the load average at the start and end of each kind, and asserts
//! nothing about timings. `RESYNC_KINDS=feed,website` runs some kinds only (`file-share`,
//! `feed`, `website`, `wordpress`, `mediawiki`); `RESYNC_WALK_THREADS=N` sets the file
//! share's `walk_threads`. Under
//! `valgrind --tool=callgrind --instr-atstart=no`, `RESYNC_CALLGRIND=1` switches the
//! instrumentation on for the unchanged re-syncs only (`callgrind_control -i on|off`), so
//! that the profile holds what they cost and nothing of the set-up or the full sync.

// A benchmark binary: a failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

#[path = "../connectors/benches/support/mod.rs"]
mod support;

/// The binary's allocator, so that the pipeline allocates as `samle sync` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use samle::config::{Config, Overrides};
use samle::store::{RunCounts, RunOutcome, RunStatus, Store};
use samle::sync::{Indexer, RunReport, SyncEngine};
use samle_index::{Principals, SearchIndex, SearchRequest};
use support::Counter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Documents per source, unless `RESYNC_DOCS` says otherwise.
const DOCUMENTS: usize = 10_000;
/// Unchanged re-syncs per kind; the median is reported.
const RESYNCS: usize = 5;
const SOURCE: &str = "bench";
/// Loopback HTTP as the connector benchmarks use it: no politeness delay, four requests in
/// flight, a feed of 10,000 items in one response.
const HTTP: &str = "min_delay = \"0ms\"\nmax_concurrency = 4\nmax_response_bytes = 104857600\n";

/// The index writer's commits so far, counted from its "index committed" event.
static COMMITS: AtomicU64 = AtomicU64::new(0);
/// Whether [`Timeline`] keeps events (during a timed run).
static RECORDING: AtomicBool = AtomicBool::new(false);
/// The events of the run being timed: when, and which.
static EVENTS: Mutex<Vec<(Instant, String)>> = Mutex::new(Vec::new());

/// Counts [`COMMITS`] and keeps the sync's, the connectors' and the index writer's events
/// with their time while [`RECORDING`]: the timeline of a run.
struct Timeline;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Timeline {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let at = Instant::now();
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0 == "index committed" {
            COMMITS.fetch_add(1, Ordering::Relaxed);
        }
        if RECORDING.load(Ordering::Relaxed) {
            EVENTS.lock().unwrap().push((at, message.0));
        }
    }
}

/// A source of one kind, ready to be synced.
struct Fixture {
    kind: &'static str,
    title: &'static str,
    /// The `[sources.<kind>]` table's keys (and its `http` sub-table, after a header).
    table: String,
    counter: Option<Counter>,
    /// The file share's total size (it has no server to count).
    share_bytes: Option<u64>,
    /// What the kind keeps alive while it is synced (the share's folder).
    _keep: Option<tempfile::TempDir>,
}

impl Fixture {
    fn http(kind: &'static str, title: &'static str, keys: String, counter: Counter) -> Fixture {
        Fixture {
            kind,
            title,
            table: format!("{keys}\n[sources.{kind}.http]\n{HTTP}"),
            counter: Some(counter),
            share_bytes: None,
            _keep: None,
        }
    }

    fn counters(&self) -> (u64, u64) {
        self.counter.as_ref().map(Counter::read).unwrap_or_default()
    }
}

async fn file_share(n: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    let bytes = support::sites::write_share(&root, n);
    Fixture {
        kind: "file-share",
        title: "file share (Markdown)",
        table: format!(
            "root = {:?}\ndefault_access = [\"authenticated\"]\n{}",
            root.to_str().unwrap(),
            std::env::var("RESYNC_WALK_THREADS")
                .map(|n| format!("walk_threads = {n}\n"))
                .unwrap_or_default()
        ),
        counter: None,
        share_bytes: Some(bytes),
        _keep: Some(dir),
    }
}

async fn feed(n: usize) -> Fixture {
    let (addr, counter) = support::serve_counted(support::sites::feed_router(n)).await;
    Fixture::http(
        "feed",
        "feed (RSS 2.0)",
        format!(
            "url = \"http://{addr}{}\"\naccess = [\"authenticated\"]\n",
            support::sites::FEED_PATH
        ),
        counter,
    )
}

async fn website(n: usize) -> Fixture {
    // The section indexes and the front page are documents too.
    let pages = n - (support::sites::website_documents(n) - n);
    let site = support::sites::serve_website(pages).await;
    assert_eq!(support::sites::website_documents(pages), n);
    Fixture::http(
        "website",
        "website crawl (sitemaps, conditional GET)",
        format!(
            "seeds = [\"{}/\"]\naccess = [\"authenticated\"]\n",
            site.base
        ),
        site.counter,
    )
}

async fn wordpress(n: usize) -> Fixture {
    // Posts and pages in the connector benchmark's proportion (3,000 to 200).
    let pages = n / 16;
    let shared =
        support::wordpress_site::Shared::new(support::sites::wordpress_site(n - pages, pages));
    let (addr, counter) = support::serve_counted(support::wordpress_site::router(shared)).await;
    Fixture::http(
        "wordpress",
        "WordPress (REST API)",
        format!("url = \"http://{addr}/\"\naccess = [\"authenticated\"]\n"),
        counter,
    )
}

async fn mediawiki(n: usize) -> Fixture {
    use support::mediawiki_fixture::{API_PATH, router};
    let shared = support::sites::wiki(n).shared();
    let (addr, counter) = support::serve_counted(router(shared.clone())).await;
    shared.lock().unwrap().server = format!("http://{addr}");
    Fixture::http(
        "mediawiki",
        "MediaWiki (Action API)",
        format!(
            "api = \"http://{addr}{API_PATH}\"\nnamespaces = [0, 12]\naccess = [\"authenticated\"]\n"
        ),
        counter,
    )
}

/// The 1-minute load average.
fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Median of `RESYNCS` timings of `f`.
async fn timed<F, Fut, T>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::new();
    for _ in 0..RESYNCS {
        let start = Instant::now();
        std::hint::black_box(f().await);
        times.push(start.elapsed());
    }
    median(times)
}

/// One run through the engine, timed from outside.
struct Run {
    elapsed: Duration,
    requests: u64,
    bytes: u64,
    /// Index commits during the run.
    commits: u64,
    /// The run's events, from its start.
    timeline: Vec<(Duration, String)>,
    report: RunReport,
}

async fn run(engine: &SyncEngine, fixture: &Fixture, full: bool) -> Run {
    let commits = COMMITS.load(Ordering::Relaxed);
    let before = fixture.counters();
    EVENTS.lock().unwrap().clear();
    RECORDING.store(!full, Ordering::Relaxed);
    let start = Instant::now();
    let report = engine.run(SOURCE, "cli", full, &|_| {}).await.unwrap();
    let elapsed = start.elapsed();
    RECORDING.store(false, Ordering::Relaxed);
    let timeline = std::mem::take(&mut *EVENTS.lock().unwrap())
        .into_iter()
        .map(|(at, message)| (at.saturating_duration_since(start), message))
        .collect();
    let after = fixture.counters();
    assert!(
        report.status == RunStatus::Ok && report.counts.failed == 0,
        "the {} {} sync did not succeed: {report:?}",
        fixture.kind,
        if full { "full" } else { "incremental" }
    );
    let bytes = match fixture.share_bytes {
        // Every file is read in a full sync; an unchanged file is only stat'ed.
        Some(total) if full => total,
        Some(_) => {
            assert_eq!(report.counts.updated, 0);
            0
        }
        None => after.1 - before.1,
    };
    Run {
        elapsed,
        requests: after.0 - before.0,
        bytes,
        commits: COMMITS.load(Ordering::Relaxed) - commits,
        timeline,
        report,
    }
}

/// What one kind measured.
struct Row {
    title: &'static str,
    documents: usize,
    /// Whether a server counted requests.
    counted: bool,
    full: Run,
    resync: Run,
    load_start: f64,
    load_end: f64,
    /// The connector alone, its building, the engine's index reads, an empty commit, the
    /// store's writes.
    connector: Duration,
    build: Duration,
    index_reads: Duration,
    empty_commit: Duration,
    store_writes: Duration,
    /// The source's cursor after the full sync, in bytes (every commit rewrites it).
    cursor_bytes: usize,
}

/// A browse search as an employee: every document of the source must be found.
fn searchable(index: &SearchIndex) -> u64 {
    let viewer = Principals::new(["authenticated"]);
    let request = SearchRequest {
        limit: 0,
        ..SearchRequest::default()
    };
    index.search(&viewer, &request).unwrap().total
}

async fn measure(fixture: Fixture, n: usize) -> Row {
    let load_start = load();
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[[sources]]\nid = \"{SOURCE}\"\nkind = \"{kind}\"\nschedule = \"manual\"\n\
         run_on_start = false\n\n[sources.{kind}]\n{}",
        fixture.table,
        kind = fixture.kind
    );
    let overrides = Overrides {
        data_dir: Some(data.path().to_path_buf()),
        ..Overrides::default()
    };
    let config = Config::from_str(
        &text,
        &data.path().join("samle.toml"),
        &BTreeMap::new(),
        &overrides,
    )
    .unwrap();
    let store = samle::app::open_store(&config).unwrap();
    let index = samle::app::open_index(&config).unwrap();
    let indexer = Indexer::start(index.clone(), config.index.writer_heap_bytes).unwrap();
    let config = Arc::new(config);
    let engine = SyncEngine::new(Arc::clone(&config), indexer.clone(), store.clone());

    let full = run(&engine, &fixture, true).await;
    let stats = index.stats().unwrap();
    let found = searchable(&index);
    if stats.documents != n as u64 || found != n as u64 || full.report.counts.added != n as u64 {
        panic!(
            "{}: the full sync should have indexed {n} documents; the index holds {}, an \
             employee finds {found}, the run reported {:?}",
            fixture.kind, stats.documents, full.report.counts
        );
    }

    let mut resyncs = Vec::new();
    callgrind("on");
    for _ in 0..RESYNCS {
        let resync = run(&engine, &fixture, false).await;
        let RunCounts {
            added,
            updated,
            deleted,
            ..
        } = resync.report.counts;
        if added + updated + deleted != 0 {
            panic!(
                "{}: an unchanged re-sync changed the index: {:?}",
                fixture.kind, resync.report.counts
            );
        }
        resyncs.push(resync);
    }
    callgrind("off");
    // In run order: the first reads the source's documents from the index, the others are
    // handed the map it read (nothing was committed in between).
    let each: Vec<String> = resyncs
        .iter()
        .map(|r| format!("{:.1}", r.elapsed.as_secs_f64() * 1e3))
        .collect();
    println!(
        "{}: unchanged re-syncs in run order, ms: {}",
        fixture.kind,
        each.join(", ")
    );
    resyncs.sort_by_key(|r| r.elapsed);
    let resync = resyncs.swap_remove(resyncs.len() / 2);
    let stats = index.stats().unwrap();
    assert_eq!(
        stats.documents, n as u64,
        "{}: documents lost",
        fixture.kind
    );

    // Where the re-sync's time goes. The connector alone, from what the engine starts from.
    let source = config.source(SOURCE).unwrap();
    let connector = samle::sources::build(&config, source).unwrap();
    let previous = support::Measured::start(
        index.cursors().unwrap().remove(SOURCE),
        index.fingerprints(SOURCE).unwrap(),
    );
    let alone = support::measure_resync(
        connector.as_ref(),
        &previous,
        fixture.counter.as_ref(),
        RESYNCS,
    )
    .await;
    assert_eq!(alone.upserts + alone.deleted + alone.failed, 0);
    let index_reads = timed(|| {
        let index = index.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                // What the engine reads: the cursor, and the ids with their fingerprints when
                // the run first needs them (an unchanged feed's 304 never does).
                let docs = index.source_docs_by_id(SOURCE).unwrap();
                let cursor = index.cursor(SOURCE).unwrap();
                (docs.len(), cursor)
            })
            .await
            .unwrap()
        }
    })
    .await;
    let build = timed(|| async { samle::sources::build(&config, source).unwrap() }).await;
    let empty_commit = timed(|| indexer.upsert_all(Vec::new())).await;
    let store_writes = timed(|| store_writes(&store)).await;

    Row {
        title: fixture.title,
        documents: n,
        counted: fixture.counter.is_some(),
        full,
        resync,
        load_start,
        load_end: load(),
        connector: alone.elapsed,
        build,
        cursor_bytes: previous.cursor.as_ref().map_or(0, String::len),
        index_reads,
        empty_commit,
        store_writes,
    }
}

/// Under `valgrind --tool=callgrind --instr-atstart=no` with `RESYNC_CALLGRIND=1`: collects
/// costs during the unchanged re-syncs only (`callgrind_control -i on|off`).
fn callgrind(state: &str) {
    if std::env::var_os("RESYNC_CALLGRIND").is_some() {
        let status = std::process::Command::new("callgrind_control")
            .args(["-i", state, &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "callgrind_control -i {state} failed");
    }
}

/// The two writes a run makes to the store.
async fn store_writes(store: &Store) {
    let id = store
        .run_started("attribution", "cli", false)
        .await
        .unwrap();
    let outcome = RunOutcome {
        status: RunStatus::Ok,
        counts: RunCounts::default(),
        message: None,
    };
    store.run_finished(id, &outcome).await.unwrap();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2} %", 100.0 * a / b)
    } else {
        "–".to_owned()
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} KB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

fn print(rows: &[Row]) {
    println!(
        "\n| kind | documents | full sync: s / requests / bytes | unchanged re-sync (median of {RESYNCS}): ms / requests / bytes | re-sync ÷ full: time / requests / bytes | load start → end |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let requests = |run: &Run| {
            if r.counted {
                run.requests.to_string()
            } else {
                "–".to_owned()
            }
        };
        println!(
            "| {} | {} | {:.2} / {} / {} | {:.1} / {} / {} | {} / {} / {} | {:.2} → {:.2} |",
            r.title,
            r.documents,
            r.full.elapsed.as_secs_f64(),
            requests(&r.full),
            size(r.full.bytes),
            ms(r.resync.elapsed),
            requests(&r.resync),
            size(r.resync.bytes),
            pct(ms(r.resync.elapsed), ms(r.full.elapsed)),
            if r.counted {
                pct(r.resync.requests as f64, r.full.requests as f64)
            } else {
                "–".to_owned()
            },
            pct(r.resync.bytes as f64, r.full.bytes as f64),
            r.load_start,
            r.load_end,
        );
    }
    println!(
        "\nWhere an unchanged re-sync's time goes (ms; the parts are medians measured apart, so \
         they need not add up; commits: the index writer's commits during the re-sync):"
    );
    println!(
        "| kind | re-sync | inside the engine (RunReport) | connector alone | building the connector | index reads (fingerprints, ids, cursor) | commits × empty commit | store writes | rest |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let commits = r.resync.commits;
        let rest = ms(r.resync.elapsed)
            - ms(r.connector)
            - ms(r.build)
            - ms(r.index_reads)
            - commits as f64 * ms(r.empty_commit)
            - ms(r.store_writes);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {commits} × {:.1} | {:.1} | {:.1} |",
            r.title,
            ms(r.resync.elapsed),
            ms(r.resync.report.elapsed),
            ms(r.connector),
            ms(r.build),
            ms(r.index_reads),
            ms(r.empty_commit),
            ms(r.store_writes),
            rest
        );
    }
    println!("\nThe median unchanged re-sync's events, in ms from the call:");
    for r in rows {
        let events: Vec<String> = r
            .resync
            .timeline
            .iter()
            .map(|(at, message)| format!("{:.1} {message}", ms(*at)))
            .collect();
        println!(
            "- {}: {}; returned {:.1}",
            r.title,
            events.join("; "),
            ms(r.resync.elapsed)
        );
    }
    for r in rows {
        println!(
            "{}: full sync {:.0} documents/s in {} commits; cursor {}; the re-sync saw {} ({} unchanged)",
            r.title,
            r.documents as f64 / r.full.elapsed.as_secs_f64().max(1e-9),
            r.full.commits,
            size(r.cursor_bytes as u64),
            r.resync.report.counts.seen,
            r.resync.report.counts.unchanged
        );
    }
}

type Setup = fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = Fixture>>>;

fn main() {
    let n: usize = std::env::var("RESYNC_DOCS")
        .ok()
        .map(|v| v.parse().expect("RESYNC_DOCS is a number of documents"))
        .unwrap_or(DOCUMENTS);
    assert!(n >= 100, "RESYNC_DOCS: at least 100 documents");
    tracing_subscriber::registry()
        .with(
            Timeline.with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("samle", tracing::Level::INFO)
                    .with_target("samle_connectors", tracing::Level::INFO)
                    .with_target("samle_index::writer", tracing::Level::DEBUG),
            ),
        )
        .init();
    let only = std::env::var("RESYNC_KINDS").ok();
    let kinds: [(&str, Setup); 5] = [
        ("file-share", |n| Box::pin(file_share(n))),
        ("feed", |n| Box::pin(feed(n))),
        ("website", |n| Box::pin(website(n))),
        ("wordpress", |n| Box::pin(wordpress(n))),
        ("mediawiki", |n| Box::pin(mediawiki(n))),
    ];
    println!(
        "{n} documents per source, {} cores, load average {:.2}",
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        load()
    );
    let mut rows = Vec::new();
    for (kind, setup) in kinds {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|k| k == kind))
        {
            continue;
        }
        // A runtime per kind: its fixture server and everything it holds end with it.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let row = runtime.block_on(async move {
            let fixture = setup(n).await;
            measure(fixture, n).await
        });
        drop(runtime);
        println!(
            "{}: full {:.2} s, re-sync {:.1} ms",
            row.title,
            row.full.elapsed.as_secs_f64(),
            ms(row.resync.elapsed)
        );
        rows.push(row);
    }
    print(&rows);
}
