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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use samle_index::baseline::RawIndex;
use samle_index::{Principals, SearchRequest};

use crate::app::Backends;
use crate::config::{Config, Overrides};

const GROUPS: usize = 10;
const SEED: u64 = 20261126;

pub struct BenchOptions {
    pub docs: usize,
    pub queries: usize,
    /// Where the demo content is (the word source).
    pub words_from: PathBuf,
}

/// The vocabulary: every word of three letters or more in the demo content, with its count.
fn vocabulary(root: &Path) -> anyhow::Result<Vec<(String, usize)>> {
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

struct Corpus {
    docs: Vec<(String, String, String)>, // (relative path, title, body)
    bytes: u64,
}

fn write_corpus(root: &Path, n: usize, words: &[(String, usize)]) -> anyhow::Result<Corpus> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut docs = Vec::with_capacity(n);
    let mut bytes = 0;
    for i in 0..n {
        let folder = format!("afdeling-{}", i % GROUPS);
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
        let rel = format!("{folder}/dokument-{i:06}.md");
        let text = format!("# {title}\n\n{body}\n");
        let path = root.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &text)?;
        bytes += text.len() as u64;
        docs.push((rel, title, body));
    }
    Ok(Corpus { docs, bytes })
}

fn queries(n: usize, words: &[(String, usize)]) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    // Leave out the very common and the very rare words, as the benchmark protocol says.
    let lo = words.len() / 100;
    let hi = (words.len() * 6 / 10).max(lo + 10);
    let band = &words[lo..hi];
    (0..n)
        .map(|_| {
            let k = rng.random_range(1..=3);
            (0..k)
                .map(|_| band[rng.random_range(0..band.len())].0.clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
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

pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("cannot create a temporary folder")?;
    let words_from = opts
        .words_from
        .canonicalize()
        .with_context(|| format!("cannot find {}", opts.words_from.display()))?;
    let share = tmp.path().join("share");
    let words = vocabulary(&words_from)?;
    eprintln!(
        "writing {} documents ({} words of vocabulary) to {}",
        opts.docs,
        words.len(),
        share.display()
    );
    let corpus = write_corpus(&share, opts.docs, &words)?;

    let access: Vec<String> = (0..GROUPS)
        .map(|g| format!("{{ path = \"afdeling-{g}/**\", principals = [\"group:afd-{g}\"] }}"))
        .collect();
    let toml = format!(
        r#"
[server]
data_dir = "{data}"
[directory]
kind = "demo"
file = "{dir}"
[index]
commit_every = 5000
max_delete_share = 1.0
[[sources]]
id = "bench"
kind = "file-share"
schedule = "manual"
[sources.file-share]
root = "{share}"
language = "da"
access = [{access}]
"#,
        data = tmp.path().join("data").display(),
        dir = words_from
            .parent()
            .unwrap_or(Path::new("."))
            .join("directory.toml")
            .display(),
        share = share.display(),
        access = access.join(", "),
    );
    let config = Config::from_str(
        &toml,
        &tmp.path().join("bench.toml"),
        &BTreeMap::new(),
        &Overrides::default(),
    )?;

    // 1. The whole pipeline.
    eprintln!("indexing through the whole pipeline…");
    let backends = Backends::open(config).await?;
    let started = Instant::now();
    let report = backends
        .state
        .sync
        .run("bench", "cli", true, &|_| {})
        .await?;
    let pipeline = started.elapsed();
    if report.counts.added as usize != opts.docs {
        bail!(
            "the pipeline indexed {} of {} documents",
            report.counts.added,
            opts.docs
        );
    }
    let index = backends.state.index.clone();
    let samle_size = index.stats()?.size_bytes;

    // 2. Raw tantivy on the same texts, in the same process.
    eprintln!("indexing the same documents with raw tantivy…");
    let raw_dir = tmp.path().join("raw");
    let started = Instant::now();
    let mut raw = RawIndex::create(&raw_dir, 64 * 1024 * 1024)?;
    for (id, title, body) in &corpus.docs {
        raw.add(id, title, body)?;
    }
    raw.commit()?;
    let raw_time = started.elapsed();
    let raw_size = raw.size_bytes()?;

    // 3. Search.
    let qs = queries(opts.queries, &words);
    eprintln!("running {} queries…", qs.len());
    let everyone = Principals::new(
        ["authenticated".to_string()]
            .into_iter()
            .chain((0..GROUPS).map(|g| format!("group:afd-{g}"))),
    );
    let tenth = Principals::new(["authenticated", "group:afd-3"]);
    let search = move |p: &Principals| {
        let index = index.clone();
        let p = p.clone();
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
    let (all, part, rawl) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let all = measure(&qs2, search(&everyone))?;
        let part = measure(&qs2, search(&tenth))?;
        let rawl = measure(&qs2, |q| raw.search(q, 10).map(|_| ()).map_err(Into::into))?;
        Ok((all, part, rawl))
    })
    .await??;

    let n = opts.docs as f64;
    let mb = corpus.bytes as f64 / 1_000_000.0;
    let p_rate = n / pipeline.as_secs_f64();
    let r_rate = n / raw_time.as_secs_f64();
    println!();
    println!(
        "Samle benchmark — {} documents, {:.1} MB of text, {} queries",
        opts.docs,
        mb,
        qs.len()
    );
    println!("load average: {}", load_average());
    println!();
    println!(
        "{:<44} {:>10} {:>9} {:>10}",
        "indexing", "docs/s", "MB/s", "size MB"
    );
    println!(
        "{:<44} {:>10.0} {:>9.2} {:>10.1}",
        "samle: whole pipeline (files → index)",
        p_rate,
        mb / pipeline.as_secs_f64(),
        samle_size as f64 / 1e6
    );
    println!(
        "{:<44} {:>10.0} {:>9.2} {:>10.1}",
        "raw tantivy (same texts, in memory)",
        r_rate,
        mb / raw_time.as_secs_f64(),
        raw_size as f64 / 1e6
    );
    println!("{:<44} {:>10.2}", "ratio samle / raw", p_rate / r_rate);
    println!();
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>9}",
        "search, top 10, one thread (ms)", "p50", "p90", "p99", "q/s"
    );
    for (name, l) in [
        ("samle: user who sees 100 %", &all),
        ("samle: user who sees 10 %", &part),
        ("raw tantivy (no permissions, no facets)", &rawl),
    ] {
        println!(
            "{:<44} {:>8.3} {:>8.3} {:>8.3} {:>9.0}",
            name, l.p50, l.p90, l.p99, l.qps
        );
    }
    println!(
        "{:<44} {:>8.2} {:>8} {:>8.2}",
        "ratio samle (100 %) / raw",
        all.p50 / rawl.p50,
        "",
        all.p99 / rawl.p99
    );
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
