//! `samle bench`: measures the whole pipeline and search against raw tantivy, in one run.
//!
//! It writes a corpus as Markdown files into a temporary file share — either generated
//! Danish documents (words drawn from the bundled demo content with a fixed seed) or the
//! records of a JSONL corpus built by `scripts/corpus` (`--corpus`), one folder per source —
//! whose folders map to a hundred groups, syncs it through the real pipeline (file-share
//! connector, extraction, language, access lists, stored fields, commits) and indexes the
//! same titles and bodies with a bare tantivy index as the baseline. Then it runs the same
//! queries (generated from the corpus vocabulary with a fixed seed, plus hand-written Danish
//! ones for a Danish corpus) through Samle's permission-trimmed search as users who may see
//! 100 %, 10 % and 1 % of the documents, and through raw tantivy. It prints figures; it
//! asserts nothing: the machine is shared and noisy, so read the ratios.
//!
//! With `--http` it measures the real server instead (the `http` module): the index built
//! the same way is served by `samle serve` as a child process and loaded with `wrk`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use samle_index::baseline::RawIndex;
use samle_index::{Principals, SearchRequest};
use serde::Deserialize;

use crate::app::Backends;
use crate::config::{Config, DEFAULT_COMMIT_INTERVAL, DEFAULT_WRITER_HEAP_BYTES, Overrides};

mod http;

pub use http::HttpOptions;

/// Groups the documents are spread over: a hundred, so a user can see 1 %.
const GROUPS: usize = 100;
const SEED: u64 = 20261126;

/// Hand-written Danish queries: compounds, inflections, æøå, as employees type them.
const DANISH_QUERIES: &[&str] = &[
    "sygemelding",
    "ferie regler",
    "udskrive dokument",
    "adgangskode",
    "tabeller i regneark",
    "skrifttyper",
    "genvejstaster",
    "indsæt billede",
    "fodnoter",
    "æøå",
    "sidehoved og sidefod",
    "sideskift",
    "stavekontrol",
    "gem som pdf",
    "indholdsfortegnelse",
    "formler",
    "diagrammer",
    "udskriv",
    "printer",
    "trådløst netværk",
    "skærmbillede",
    "tastaturet",
    "brugerkonti",
    "sikkerhedskopi",
    "filhåndtering",
    "søgning",
    "ændre størrelse",
    "celleformatering",
    "lydstyrke",
    "hjælp til dokumenter",
    "kolonnebredde",
    "præsentationer",
];

pub struct BenchOptions {
    /// How many documents: the generated count, or at most this many corpus records.
    pub docs: Option<usize>,
    pub queries: usize,
    /// Where the demo content is (the word source for generated documents, and the
    /// directory file next to it).
    pub words_from: PathBuf,
    /// A JSONL corpus from `scripts/corpus` instead of generated documents.
    pub corpus: Option<PathBuf>,
    /// Measure the real server over HTTP (`samle serve` as a child process, driven by
    /// `wrk`) instead of indexing against raw tantivy and searching in process.
    pub http: Option<http::HttpOptions>,
    /// Work here, and keep what is built, instead of in a temporary folder. An `--http` run
    /// reuses the index an earlier one left here for the same corpus and size.
    pub work_dir: Option<PathBuf>,
}

/// One line of a `scripts/corpus` file.
#[derive(Deserialize)]
struct Record {
    title: String,
    body: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    source: String,
}

/// Words of three letters or more, lowercased.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
}

/// The demo content's vocabulary, most frequent first: the word source for generated documents.
fn demo_vocabulary(root: &Path) -> anyhow::Result<Vec<(String, usize)>> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for entry in walk(root)? {
        let ext = entry.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "md" | "html") {
            continue;
        }
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        for w in text
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| w.chars().count() >= 3 && !w.chars().any(|c| c.is_ascii_uppercase()))
        {
            *counts.entry(w.to_lowercase()).or_default() += 1;
        }
    }
    if counts.len() < 200 {
        bail!(
            "too few words in {} to build a corpus (is the demo content there?)",
            root.display()
        );
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(v)
}

fn walk(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Picks words with a Zipf-like preference for common ones, as real text does.
fn pick<'a>(rng: &mut StdRng, words: &'a [(String, usize)]) -> &'a str {
    let n = words.len() as f64;
    let r: f64 = rng.random();
    let i = ((n.powf(r) - 1.0) as usize).min(words.len() - 1);
    &words[i].0
}

struct Doc {
    rel: String,
    title: String,
    body: String,
}

struct Corpus {
    docs: Vec<Doc>,
    bytes: u64,
    /// "da" or "en": the language most documents are in.
    language: String,
    /// What the documents are, for the table's heading.
    name: String,
}

/// The folder of document `i`: one per source, then one of the hundred groups.
fn rel_path(source: &str, i: usize) -> String {
    format!("{source}/g-{:02}/dokument-{i:07}.md", i % GROUPS)
}

/// Writes a document as a Markdown file under `root`; with no `root` (an index built by an
/// earlier run is reused) only counts its bytes.
fn write_doc(root: Option<&Path>, doc: &Doc) -> anyhow::Result<u64> {
    let text = format!("# {}\n\n{}\n", doc.title, doc.body);
    let Some(root) = root else {
        return Ok(text.len() as u64);
    };
    let path = root.join(&doc.rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, &text)?;
    Ok(text.len() as u64)
}

fn generate_corpus(
    root: Option<&Path>,
    n: usize,
    words: &[(String, usize)],
) -> anyhow::Result<Corpus> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut docs = Vec::with_capacity(n);
    let mut bytes = 0;
    for i in 0..n {
        let title_len = rng.random_range(2..6);
        let title: Vec<&str> = (0..title_len).map(|_| pick(&mut rng, words)).collect();
        let mut title = title.join(" ");
        if let Some(first) = title.get(..1) {
            title = first.to_uppercase() + &title[1..];
        }
        let body_len = rng.random_range(80..500);
        let mut body = String::new();
        for j in 0..body_len {
            if j > 0 {
                body.push(if j % 14 == 0 { '\n' } else { ' ' });
            }
            body.push_str(pick(&mut rng, words));
        }
        let doc = Doc {
            rel: rel_path("genereret", i),
            title,
            body,
        };
        bytes += write_doc(root, &doc)?;
        docs.push(doc);
    }
    Ok(Corpus {
        docs,
        bytes,
        language: "da".into(),
        name: "generated Danish documents".into(),
    })
}

/// A folder name for a record's source: lowercase ASCII letters, digits and `-`.
fn folder_name(source: &str) -> String {
    let s: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "corpus".into() } else { s }
}

fn read_corpus(root: Option<&Path>, file: &Path, limit: Option<usize>) -> anyhow::Result<Corpus> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut docs = Vec::new();
    let mut bytes = 0;
    let mut langs: HashMap<String, usize> = HashMap::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        if limit.is_some_and(|l| docs.len() >= l) {
            break;
        }
        let line = line.with_context(|| format!("cannot read {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: Record = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a corpus record", file.display(), n + 1))?;
        *langs.entry(rec.lang).or_default() += 1;
        let i = docs.len();
        let title = if rec.title.trim().is_empty() {
            format!("Dokument {i}")
        } else {
            rec.title.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        let doc = Doc {
            rel: rel_path(&folder_name(&rec.source), i),
            title,
            body: rec.body,
        };
        bytes += write_doc(root, &doc)?;
        docs.push(doc);
    }
    if docs.is_empty() {
        bail!("{} holds no documents", file.display());
    }
    let language = if langs.get("en").copied().unwrap_or(0) > docs.len() / 2 {
        "en"
    } else {
        "da"
    };
    Ok(Corpus {
        docs,
        bytes,
        language: language.into(),
        name: file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
    })
}

/// Queries of 1–3 words drawn from the corpus vocabulary, weighted by document frequency,
/// leaving out the very common (the top 1 % of words, or in more than 5 % of documents) and
/// the very rare (in fewer than three documents).
fn queries(n: usize, docs: &[Doc]) -> anyhow::Result<Vec<String>> {
    let mut df: HashMap<String, usize> = HashMap::new();
    for d in docs {
        let seen: HashSet<String> = words(&d.title).chain(words(&d.body)).collect();
        for w in seen {
            *df.entry(w).or_default() += 1;
        }
    }
    let mut v: Vec<(String, usize)> = df.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let max_df = (docs.len() / 20).max(3);
    let band: Vec<(String, usize)> = v
        .iter()
        .skip(v.len() / 100)
        .filter(|(_, f)| *f >= 3 && *f <= max_df)
        .cloned()
        .collect();
    if band.len() < 10 {
        bail!("the corpus has too few words to draw queries from");
    }
    let mut cumulative = Vec::with_capacity(band.len());
    let mut total = 0usize;
    for (_, f) in &band {
        total += f;
        cumulative.push(total);
    }
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    Ok((0..n)
        .map(|_| {
            let k = rng.random_range(1..=3);
            (0..k)
                .map(|_| {
                    let r = rng.random_range(0..total);
                    let i = cumulative.partition_point(|&c| c <= r);
                    band[i].0.clone()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    qps: f64,
}

fn measure(
    queries: &[String],
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<Latency> {
    // Warm-up: the first pass loads postings into the page cache.
    for q in queries.iter().take(100) {
        f(q)?;
    }
    let mut times = Vec::with_capacity(queries.len());
    let start = Instant::now();
    for q in queries {
        let t = Instant::now();
        f(q)?;
        times.push(t.elapsed());
    }
    let total = start.elapsed().as_secs_f64();
    times.sort();
    Ok(Latency {
        p50: percentile(&times, 0.50),
        p90: percentile(&times, 0.90),
        p99: percentile(&times, 0.99),
        qps: queries.len() as f64 / total,
    })
}

/// Peak resident memory of this process so far (VmHWM), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn mb_or_unknown(v: Option<f64>) -> String {
    v.map_or_else(|| "unknown".into(), |v| format!("{v:.0}"))
}

/// A user who is in the first `groups` of the hundred groups.
fn user(groups: usize) -> Principals {
    Principals::new(
        [Principals::AUTHENTICATED.to_string()]
            .into_iter()
            .chain((0..groups).map(|g| format!("group:g-{g:02}"))),
    )
}

/// The access rules of the benchmark's file share: folder `g-NN` of any source belongs to
/// group `g-NN`.
fn pipeline_config(
    work: &Path,
    share: &Path,
    directory: &Path,
    language: &str,
) -> anyhow::Result<Config> {
    let access: Vec<String> = (0..GROUPS)
        .map(|g| format!("{{ path = \"*/g-{g:02}/**\", principals = [\"group:g-{g:02}\"] }}"))
        .collect();
    let toml = format!(
        r#"
[server]
data_dir = "{data}"
[directory]
kind = "demo"
file = "{dir}"
[index]
max_delete_share = 1.0
[[sources]]
id = "bench"
kind = "file-share"
schedule = "manual"
[sources.file-share]
root = "{share}"
language = "{language}"
access = [{access}]
"#,
        data = work.join("data").display(),
        dir = directory.display(),
        share = share.display(),
        access = access.join(", "),
    );
    Ok(Config::from_str(
        &toml,
        &work.join("bench.toml"),
        &BTreeMap::new(),
        &Overrides::default(),
    )?)
}

/// What indexing through the whole pipeline took and gave.
struct Indexed {
    time: Duration,
    size_bytes: u64,
    segments: usize,
    peak_rss: Option<f64>,
}

/// Syncs the share through the real pipeline (connector, extraction, analysis, access
/// lists, commits) and checks that every document arrived.
async fn index_pipeline(config: Config, docs: usize) -> anyhow::Result<(Backends, Indexed)> {
    eprintln!("indexing {docs} documents through the whole pipeline…");
    let backends = Backends::open(config).await?;
    let started = Instant::now();
    let report = backends
        .state
        .sync
        .run("bench", "cli", true, &|_| {})
        .await?;
    let time = started.elapsed();
    let peak_rss = peak_rss_mb();
    if report.counts.added as usize != docs {
        bail!(
            "the pipeline indexed {} of {} documents",
            report.counts.added,
            docs
        );
    }
    let stats = backends.state.index.stats()?;
    Ok((
        backends,
        Indexed {
            time,
            size_bytes: stats.size_bytes,
            segments: stats.segments,
            peak_rss,
        },
    ))
}

/// The corpus of `opts`, written as Markdown files under `root` (when given).
fn load_corpus(opts: &BenchOptions, root: Option<&Path>) -> anyhow::Result<Corpus> {
    match &opts.corpus {
        Some(file) => {
            if let Some(root) = root {
                eprintln!(
                    "writing the records of {} to {}",
                    file.display(),
                    root.display()
                );
            }
            read_corpus(root, file, opts.docs)
        }
        None => {
            let n = opts.docs.unwrap_or(10_000);
            let words_from = opts
                .words_from
                .canonicalize()
                .with_context(|| format!("cannot find {}", opts.words_from.display()))?;
            let words = demo_vocabulary(&words_from)?;
            if let Some(root) = root {
                eprintln!(
                    "writing {n} documents ({} words of vocabulary) to {}",
                    words.len(),
                    root.display()
                );
            }
            generate_corpus(root, n, &words)
        }
    }
}

pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    let tmp;
    let work = match &opts.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.canonicalize()
                .with_context(|| format!("cannot find {}", dir.display()))?
        }
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary folder")?;
            tmp.path().to_path_buf()
        }
    };
    if let Some(http_opts) = &opts.http {
        return run_http(&work, &opts, http_opts).await;
    }
    if std::fs::read_dir(&work)?.next().is_some() {
        bail!(
            "{} is not empty: the in-process benchmark starts from an empty folder",
            work.display()
        );
    }
    run_in_process(&work, &opts).await
}

/// What identifies the index a work folder holds, so that a later `--http` run with the same
/// corpus and size reuses it instead of indexing again.
fn index_key(opts: &BenchOptions) -> String {
    let corpus = match &opts.corpus {
        Some(file) => file
            .canonicalize()
            .unwrap_or_else(|_| file.clone())
            .display()
            .to_string(),
        None => "generated".into(),
    };
    let docs = opts.docs.map_or_else(|| "all".into(), |n| n.to_string());
    format!("corpus {corpus}\ndocs {docs}\n")
}

const INDEX_KEY_FILE: &str = "bench-index.txt";

async fn run_http(
    work: &Path,
    opts: &BenchOptions,
    http_opts: &http::HttpOptions,
) -> anyhow::Result<()> {
    // Before minutes of indexing, not after.
    http::ensure_wrk()?;
    let key = index_key(opts);
    let key_file = work.join(INDEX_KEY_FILE);
    let data_dir = work.join("data");
    let index_dir = data_dir.join("index");
    let previous = std::fs::read_to_string(&key_file).ok();
    let reuse = previous.as_deref() == Some(key.as_str()) && index_dir.join("meta.json").exists();
    if !reuse {
        if previous.is_some() {
            // A folder of an earlier run with another corpus: start over.
            std::fs::remove_file(&key_file)?;
            for sub in ["data", "share"] {
                let p = work.join(sub);
                if p.exists() {
                    std::fs::remove_dir_all(&p)
                        .with_context(|| format!("cannot remove {}", p.display()))?;
                }
            }
        } else if std::fs::read_dir(work)?.next().is_some() {
            bail!(
                "{} is not empty and was not made by `samle bench --http`",
                work.display()
            );
        }
    }
    let directory = http::write_directory(work)?;

    let (corpus, indexed) = if reuse {
        eprintln!(
            "reusing the index built earlier in {} (delete the folder to index again)",
            work.display()
        );
        (load_corpus(opts, None)?, None)
    } else {
        let share = work.join("share");
        let corpus = load_corpus(opts, Some(&share))?;
        let config = pipeline_config(work, &share, &directory, &corpus.language)?;
        let (backends, indexed) = index_pipeline(config, corpus.docs.len()).await?;
        drop(backends);
        http::wait_for_writer_lock(&index_dir)?;
        // The server must not need the files: it serves the index alone.
        std::fs::remove_dir_all(&share)
            .with_context(|| format!("cannot remove {}", share.display()))?;
        std::fs::write(&key_file, &key)?;
        (corpus, Some(indexed))
    };
    let stats = samle_index::SearchIndex::open(&index_dir)?.stats()?;
    let qs = queries(opts.queries, &corpus.docs)?;
    let docs = corpus.docs.len();
    let mb = corpus.bytes as f64 / 1_000_000.0;
    let Corpus { name, language, .. } = corpus;

    let setup = http::Setup {
        work: work.to_path_buf(),
        data_dir,
        directory,
        queries: qs,
    };
    let opts2 = http_opts.clone();
    let report = tokio::task::spawn_blocking(move || http::run(&setup, &opts2)).await??;

    println!();
    println!(
        "Samle HTTP benchmark — {docs} documents ({name}, language {language}), {mb:.1} MB of text, {} queries",
        opts.queries
    );
    println!(
        "cores: {}   work folder: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        work.display()
    );
    match &indexed {
        Some(i) => println!(
            "indexing through the whole pipeline: {:.1} s, {:.0} docs/s, {:.2} MB/s, peak RSS {} MB",
            i.time.as_secs_f64(),
            docs as f64 / i.time.as_secs_f64(),
            mb / i.time.as_secs_f64(),
            mb_or_unknown(i.peak_rss)
        ),
        None => println!("indexing: reused an index built by an earlier run"),
    }
    println!(
        "index: {} documents, {:.1} MB, {} segments (at the end of indexing: {})",
        stats.documents,
        stats.size_bytes as f64 / 1e6,
        stats.segments,
        indexed.as_ref().map_or_else(
            || "unknown".into(),
            |i| format!(
                "{:.1} MB, {} segments",
                i.size_bytes as f64 / 1e6,
                i.segments
            )
        )
    );
    http::print(&report);
    Ok(())
}

async fn run_in_process(work: &Path, opts: &BenchOptions) -> anyhow::Result<()> {
    let words_from = opts
        .words_from
        .canonicalize()
        .with_context(|| format!("cannot find {}", opts.words_from.display()))?;
    let share = work.join("share");
    let corpus = load_corpus(opts, Some(&share))?;
    let docs = corpus.docs.len();
    let directory = words_from
        .parent()
        .unwrap_or(Path::new("."))
        .join("directory.toml");
    let config = pipeline_config(work, &share, &directory, &corpus.language)?;

    // 1. The whole pipeline.
    let cpu = cpu_seconds();
    let (backends, indexed) = index_pipeline(config, docs).await?;
    let pipeline_cpu = cpu_seconds().zip(cpu).map(|(b, a)| b - a);
    let pipeline = indexed.time;
    let rss_pipeline = indexed.peak_rss;
    let samle_size = indexed.size_bytes;
    let index = backends.state.index.clone();

    // 2. Samle's index writer on the same texts from memory: the analysers, access lists,
    // stored fields and facets, without reading files and without the sync loop.
    eprintln!("indexing the same documents with samle's index writer…");
    let cpu = cpu_seconds();
    let (writer_time, writer_size) = index_from_memory(&work.join("writer"), &corpus)?;
    let writer_cpu = cpu_seconds().zip(cpu).map(|(b, a)| b - a);
    let rss_writer = peak_rss_mb();

    // 3. Raw tantivy on the same texts, in the same process.
    eprintln!("indexing the same documents with raw tantivy…");
    let raw_dir = work.join("raw");
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut raw = RawIndex::create(&raw_dir, DEFAULT_WRITER_HEAP_BYTES)?;
    for d in &corpus.docs {
        raw.add(&d.rel, &d.title, &d.body)?;
    }
    raw.commit()?;
    let raw_time = started.elapsed();
    let raw_cpu = cpu_seconds().zip(cpu).map(|(b, a)| b - a);
    let rss_raw = peak_rss_mb();
    let raw_size = raw.size_bytes()?;

    // 4. Search.
    let qs = queries(opts.queries, &corpus.docs)?;
    let danish: Vec<String> = if corpus.language == "da" {
        // Repeated, so the percentiles rest on some hundreds of timings.
        (0..10)
            .flat_map(|_| DANISH_QUERIES.iter().map(|q| q.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    eprintln!(
        "running {} generated and {} hand-written queries…",
        qs.len(),
        DANISH_QUERIES.len() * usize::from(!danish.is_empty())
    );
    let search = move |p: Principals| {
        let index = index.clone();
        move |q: &str| -> anyhow::Result<()> {
            let req = SearchRequest {
                query: q.to_string(),
                limit: 10,
                ..Default::default()
            };
            index.search(&p, &req)?;
            Ok(())
        }
    };
    let qs2 = qs.clone();
    let (rows, danish_rows) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let all = measure(&qs2, search(user(GROUPS)))?;
        let tenth = measure(&qs2, search(user(GROUPS / 10)))?;
        let hundredth = measure(&qs2, search(user(1)))?;
        let rawl = measure(&qs2, |q| raw.search(q, 10).map(|_| ()).map_err(Into::into))?;
        let danish_rows = if danish.is_empty() {
            None
        } else {
            Some((
                measure(&danish, search(user(GROUPS)))?,
                measure(&danish, |q| {
                    raw.search(q, 10).map(|_| ()).map_err(Into::into)
                })?,
            ))
        };
        Ok(([all, tenth, hundredth, rawl], danish_rows))
    })
    .await??;

    let n = docs as f64;
    let mb = corpus.bytes as f64 / 1_000_000.0;
    let p_rate = n / pipeline.as_secs_f64();
    let r_rate = n / raw_time.as_secs_f64();
    println!();
    println!(
        "Samle benchmark — {} documents ({}, language {}), {:.1} MB of text, {} queries",
        docs,
        corpus.name,
        corpus.language,
        mb,
        qs.len()
    );
    println!(
        "load average: {}   cores: {}",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "{:<46} {:>9} {:>8} {:>7} {:>8} {:>12}",
        "indexing", "docs/s", "MB/s", "CPU s", "size MB", "peak RSS MB"
    );
    let w_rate = n / writer_time.as_secs_f64();
    for (name, rate, time, cpu, size, rss) in [
        (
            "samle: sync (files → connector → index)",
            p_rate,
            pipeline,
            pipeline_cpu,
            samle_size,
            rss_pipeline,
        ),
        (
            "samle: index writer (texts in memory)",
            w_rate,
            writer_time,
            writer_cpu,
            writer_size,
            rss_writer,
        ),
        (
            "raw tantivy (texts in memory)",
            r_rate,
            raw_time,
            raw_cpu,
            raw_size,
            rss_raw,
        ),
    ] {
        println!(
            "{:<46} {:>9.0} {:>8.2} {:>7} {:>8.1} {:>12}",
            name,
            rate,
            mb / time.as_secs_f64(),
            cpu.map_or_else(|| "?".to_string(), |c| format!("{c:.2}")),
            size as f64 / 1e6,
            mb_or_unknown(rss)
        );
    }
    let cpu_ratio = |samle: Option<f64>| match (samle, raw_cpu) {
        (Some(s), Some(r)) if s > 0.0 => format!("{:.2}", r / s),
        _ => "?".to_string(),
    };
    println!(
        "{:<46} {:>9.2} {:>8} {:>7} {:>8.2}",
        "ratio samle sync / raw",
        p_rate / r_rate,
        "",
        cpu_ratio(pipeline_cpu),
        samle_size as f64 / raw_size.max(1) as f64
    );
    println!(
        "{:<46} {:>9.2} {:>8} {:>7} {:>8.2}",
        "ratio samle index writer / raw",
        w_rate / r_rate,
        "",
        cpu_ratio(writer_cpu),
        writer_size as f64 / raw_size.max(1) as f64
    );
    println!(
        "(ratios of docs/s, and of raw's CPU time to samle's; the CPU ratio is steadier on a busy machine)"
    );
    println!("(peak RSS is the process's VmHWM after each step: it never goes down)");
    println!();
    let [all, tenth, hundredth, rawl] = &rows;
    print_latency_header("search, generated queries, top 10, one thread (ms)");
    for (name, l) in [
        ("samle: user who sees 100 %", all),
        ("samle: user who sees 10 %", tenth),
        ("samle: user who sees 1 %", hundredth),
        ("raw tantivy (no permissions, no facets)", rawl),
    ] {
        print_latency(name, l);
    }
    print_ratio("ratio samle (100 %) / raw", all, rawl);
    print_ratio("ratio samle (1 %) / samle (100 %)", hundredth, all);
    if let Some((samle, raw)) = &danish_rows {
        println!();
        print_latency_header(&format!(
            "search, {} hand-written Danish queries (ms)",
            DANISH_QUERIES.len()
        ));
        print_latency("samle: user who sees 100 %", samle);
        print_latency("raw tantivy", raw);
        print_ratio("ratio samle / raw", samle, raw);
    }
    Ok(())
}

/// The CPU time this process has used so far (user and system, all threads), from
/// `/proc/self/stat`; `None` where that is not readable.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks; Linux reports them at 100 per second whatever the kernel's HZ.
    Some((user + system) / 100.0)
}

/// Indexes the corpus with Samle's index writer from memory, each record as the file-share
/// connector delivers it on a first sync (new documents), committing as often as a sync does.
fn index_from_memory(dir: &Path, corpus: &Corpus) -> anyhow::Result<(Duration, u64)> {
    let index = samle_index::SearchIndex::open(dir)?;
    let language = samle_index::Lang::parse(&corpus.language);
    let started = Instant::now();
    let mut writer = index.writer(DEFAULT_WRITER_HEAP_BYTES)?;
    let mut last_commit = Instant::now();
    for (i, d) in corpus.docs.iter().enumerate() {
        let group = format!("g-{:02}", i % GROUPS);
        writer.add_new(samle_index::IndexDoc {
            source: "bench".into(),
            external_id: d.rel.clone(),
            kind: "file".into(),
            title: d.title.clone(),
            body: d.body.clone(),
            url: Some(format!("file:///share/{}", d.rel)),
            author: None,
            language,
            created: None,
            updated: Some(chrono::Utc::now()),
            acl: vec![format!("group:{group}")],
            tags: vec![group],
            fingerprint: Some(format!("{i:016x}")),
            properties: Default::default(),
        })?;
        if last_commit.elapsed() >= DEFAULT_COMMIT_INTERVAL {
            writer.commit(None)?;
            last_commit = Instant::now();
        }
    }
    writer.commit(None)?;
    let time = started.elapsed();
    drop(writer);
    Ok((time, index.stats()?.size_bytes))
}

fn print_latency_header(title: &str) {
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>9}",
        title, "p50", "p90", "p99", "q/s"
    );
}

fn print_latency(name: &str, l: &Latency) {
    println!(
        "{:<52} {:>8.3} {:>8.3} {:>8.3} {:>9.0}",
        name, l.p50, l.p90, l.p99, l.qps
    );
}

fn print_ratio(name: &str, a: &Latency, b: &Latency) {
    println!(
        "{:<52} {:>8.2} {:>8.2} {:>8.2} {:>9.2}",
        name,
        a.p50 / b.p50,
        a.p90 / b.p90,
        a.p99 / b.p99,
        a.qps / b.qps
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
