//! The command line: `samle serve`, `samle sync`, `samle check`, `samle index stats`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::{self, Backends};
use crate::config::{Config, Overrides};
use crate::store::RunStatus;
use crate::sync::{Progress, RunReport};

/// Samle: one employee portal that gathers the organisation's internal portals into a
/// single search.
#[derive(Parser, Debug)]
#[command(name = "samle", version, about, long_about = None)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "config/samle.toml",
        env = "SAMLE_CONFIG"
    )]
    pub config: PathBuf,
    /// Where the index and the database live (overrides `server.data_dir`).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the portal.
    Serve(ServeArgs),
    /// Run one source, or all of them, now.
    Sync(SyncArgs),
    /// Validate the configuration and test the directory and every source.
    Check(CheckArgs),
    /// Inspect the index.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Search as a given user sees it (for administrators checking access).
    Search(SearchArgs),
    /// Measure indexing and search on a generated corpus, against raw tantivy.
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// What to search for (empty lists the newest documents).
    pub query: String,
    /// The user whose permissions apply, looked up in the directory.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: String,
    /// Only this source.
    #[arg(long)]
    pub source: Option<String>,
    /// How many hits to show (at most 50).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// How many documents: generated (10,000 when left out), or at most this many records
    /// of `--corpus` (all when left out).
    #[arg(long)]
    pub docs: Option<usize>,
    /// A JSONL corpus built by `scripts/corpus` (e.g. /tmp/corpus/danish.jsonl) instead of
    /// generated documents.
    #[arg(long, value_name = "FILE.jsonl")]
    pub corpus: Option<PathBuf>,
    /// How many queries to run.
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// The folder whose words make up the corpus.
    #[arg(long, default_value = "config/demo/content")]
    pub words_from: PathBuf,
    /// Measure the real server over HTTP with wrk instead: start-up, memory, latency and
    /// queries/s of the JSON API and the search page, logged in (see docs/performance.md).
    #[arg(long)]
    pub http: bool,
    /// With --http: how long wrk runs for each figure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// With --http: the concurrent connections to measure at.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub clients: Vec<usize>,
    /// With --http: how many times to start the server and measure (medians are printed).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Work in this folder and keep it, instead of a temporary one; a later --http run with
    /// the same corpus and --docs reuses the index built there.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on (overrides `server.listen`), e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also look this user up in the directory and show their groups, principals and roles.
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The source's id; all enabled sources when left out.
    pub source: Option<String>,
    /// Ignore the saved cursor and traverse the whole source.
    #[arg(long)]
    pub full: bool,
}

#[derive(Subcommand, Debug)]
pub enum IndexCommand {
    /// Documents per source, index size and the last commit.
    Stats,
}

fn env_map() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("SAMLE_"))
        .collect()
}

fn load_config(cli: &Cli, listen: Option<SocketAddr>) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen,
        data_dir: cli.data_dir.clone(),
    };
    if !cli.config.exists() {
        bail!(
            "the configuration file {} does not exist (run from the repository's top folder, or pass --config)",
            cli.config.display()
        );
    }
    Ok(Config::load(&cli.config, &env_map(), &overrides)?)
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Serve(args) => {
            let config = load_config(&cli, args.listen)?;
            init_logging(&config.server.log);
            serve(config).await?;
            Ok(0)
        }
        Command::Sync(args) => {
            let config = load_config(&cli, None)?;
            init_logging("warn");
            sync(config, args).await
        }
        Command::Check(args) => {
            // A broken configuration is itself a finding: print it as one.
            let config = match load_config(&cli, None) {
                Ok(c) => c,
                Err(e) => {
                    println!("✗ {e:#}");
                    return Ok(1);
                }
            };
            init_logging("warn");
            check(config, args.user.as_deref()).await
        }
        Command::Search(args) => {
            let config = load_config(&cli, None)?;
            init_logging("warn");
            search_as(&config, args).await
        }
        Command::Bench(args) => {
            init_logging("warn");
            crate::bench::run(crate::bench::BenchOptions {
                docs: args.docs,
                queries: args.queries,
                words_from: args.words_from.clone(),
                corpus: args.corpus.clone(),
                http: args.http.then(|| crate::bench::HttpOptions {
                    duration: args.duration,
                    clients: args.clients.clone(),
                    runs: args.runs.max(1),
                }),
                work_dir: args.work_dir.clone(),
            })
            .await?;
            Ok(0)
        }
        Command::Index {
            command: IndexCommand::Stats,
        } => {
            let config = load_config(&cli, None)?;
            init_logging("warn");
            index_stats(&config)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let backends = Backends::open(config).await?;
    let state = backends.state.clone();
    let router = crate::web::router(
        state.clone(),
        backends.session_store.clone(),
        backends.session_key,
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let scheduler = crate::sync::spawn_scheduler(
        state.sync.clone(),
        state.next_runs.clone(),
        shutdown_rx.clone(),
    );
    let sessions = backends.session_store.clone();
    let throttle = state.login_throttle.clone();
    let mut cleanup_shutdown = shutdown_rx.clone();
    let cleanup = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(600)) => {
                    if let Err(e) = sessions.delete_expired().await {
                        tracing::warn!(error = %e, "cannot delete expired sessions");
                    }
                    throttle.forget_idle();
                }
                _ = cleanup_shutdown.changed() => return,
            }
        }
    });

    println!("Samle is running at http://{addr}/");
    if state.directory.kind() == "demo" {
        println!(
            "The demo directory is active: log in as mette, lars, anna, jonas or karen with the password samle-demo."
        );
    }
    println!("Stop it with Ctrl-C.");
    tracing::info!(%addr, sources = state.config.sources.len(), "serving");

    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    })
    .await?;
    for h in scheduler {
        h.abort();
    }
    cleanup.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn sync(config: Config, args: &SyncArgs) -> anyhow::Result<i32> {
    let ids: Vec<String> = match &args.source {
        Some(id) => {
            if config.source(id).is_none() {
                let known: Vec<&str> = config.sources.iter().map(|s| s.id.as_str()).collect();
                bail!(
                    "there is no source `{id}` in {}; the sources are: {}",
                    config.file.display(),
                    known.join(", ")
                );
            }
            vec![id.clone()]
        }
        None => config
            .sources
            .iter()
            .filter(|s| s.enabled)
            .map(|s| s.id.clone())
            .collect(),
    };
    if ids.is_empty() {
        println!("No sources are configured in {}.", config.file.display());
        return Ok(0);
    }
    let backends = Backends::open(config).await?;
    let engine = backends.state.sync.clone();
    let mut reports = Vec::new();
    for id in &ids {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(id.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        let bar_for_progress = bar.clone();
        let on_progress = move |p: &Progress| {
            bar_for_progress.set_message(progress_line(p));
        };
        let result = engine.run(id, "cli", args.full, &on_progress).await;
        bar.finish_and_clear();
        match result {
            Ok(report) => {
                eprintln!("{}", report_line(&report));
                // The first problems, with the document each concerns, so that a failed
                // file is found without opening the database.
                let errors = backends.state.store.run_errors(report.run_id).await?;
                for e in errors.iter().take(SHOWN_ERRORS) {
                    match &e.document {
                        Some(doc) => eprintln!("    {doc}: {}", e.message),
                        None => eprintln!("    {}", e.message),
                    }
                }
                if errors.len() > SHOWN_ERRORS {
                    eprintln!("    … and {} more", errors.len() - SHOWN_ERRORS);
                }
                reports.push(report);
            }
            Err(e) => {
                eprintln!("✗ {id}: {e}");
                return Ok(1);
            }
        }
    }
    print_summary(&reports);
    Ok(if reports.iter().all(|r| r.status == RunStatus::Ok) {
        0
    } else {
        1
    })
}

/// How many of a run's errors `samle sync` prints.
const SHOWN_ERRORS: usize = 5;

fn progress_line(p: &Progress) -> String {
    format!(
        "seen {} · added {} · updated {} · unchanged {} · deleted {} · failed {} · {:.0} docs/s",
        p.counts.seen,
        p.counts.added,
        p.counts.updated,
        p.counts.unchanged,
        p.counts.deleted,
        p.counts.failed,
        p.rate()
    )
}

fn report_line(r: &RunReport) -> String {
    let mark = if r.status == RunStatus::Ok {
        "✓"
    } else {
        "✗"
    };
    let mut line = format!(
        "{mark} {}: {} in {:.1}s",
        r.source,
        r.status.as_str(),
        r.elapsed.as_secs_f64()
    );
    if let Some(m) = &r.message {
        line.push_str(&format!(" — {m}"));
    }
    line
}

fn print_summary(reports: &[RunReport]) {
    println!(
        "{:<24} {:<8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>7} {:>8} {:>9}",
        "source",
        "status",
        "seen",
        "added",
        "updated",
        "unchanged",
        "deleted",
        "failed",
        "time",
        "docs/s"
    );
    for r in reports {
        let secs = r.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            r.counts.seen as f64 / secs
        } else {
            0.0
        };
        println!(
            "{:<24} {:<8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>7} {:>7.1}s {:>9.0}",
            r.source,
            r.status.as_str(),
            r.counts.seen,
            r.counts.added,
            r.counts.updated,
            r.counts.unchanged,
            r.counts.deleted,
            r.counts.failed,
            secs,
            rate
        );
    }
}

async fn check(config: Config, user: Option<&str>) -> anyhow::Result<i32> {
    let mut problems = 0;
    println!(
        "✓ configuration {}: {} source(s)",
        config.file.display(),
        config.sources.len()
    );
    match app::open_directory(&config) {
        Ok(dir) => {
            match tokio::time::timeout(Duration::from_secs(30), dir.check()).await {
                Ok(Ok(notes)) => {
                    println!("✓ directory ({})", dir.kind());
                    for n in notes {
                        println!("    {n}");
                    }
                }
                Ok(Err(e)) => {
                    problems += 1;
                    println!("✗ directory ({}): {e}", dir.kind());
                }
                Err(_) => {
                    problems += 1;
                    println!("✗ directory ({}): no answer within 30 seconds", dir.kind());
                }
            }
            if let Some(login) = user {
                problems += check_user(&config, dir.as_ref(), login).await;
            }
        }
        Err(e) => {
            problems += 1;
            println!("✗ directory: {e:#}");
        }
    }
    let data_dir = &config.server.data_dir;
    match std::fs::create_dir_all(data_dir).and_then(|()| {
        let probe = data_dir.join(".samle-write-test");
        std::fs::write(&probe, b"ok")?;
        std::fs::remove_file(&probe)
    }) {
        Ok(()) => println!("✓ data directory {}: writable", data_dir.display()),
        Err(e) => {
            problems += 1;
            println!("✗ data directory {}: {e}", data_dir.display());
        }
    }
    for source in &config.sources {
        let label = format!(
            "source {} ({}, {}{})",
            source.id,
            source.kind,
            source.schedule.describe(),
            if source.enabled { "" } else { ", disabled" }
        );
        let connector = match crate::sources::build(&config, source) {
            Ok(c) => c,
            Err(e) => {
                problems += 1;
                println!("✗ {label}: {e}");
                continue;
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), connector.check()).await {
            Ok(Ok(notes)) => {
                println!("✓ {label}");
                for n in notes {
                    println!("    {n}");
                }
            }
            Ok(Err(e)) => {
                problems += 1;
                println!("✗ {label}: {e}");
            }
            Err(_) => {
                problems += 1;
                println!("✗ {label}: no answer within 30 seconds");
            }
        }
    }
    if problems > 0 {
        println!("{problems} problem(s) found.");
        Ok(1)
    } else {
        println!("Everything looks fine.");
        Ok(0)
    }
}

async fn search_as(config: &Config, args: &SearchArgs) -> anyhow::Result<i32> {
    let dir = app::open_directory(config)?;
    let Some(info) = dir.lookup(&args.as_user).await? else {
        bail!(
            "user `{}` was not found in the directory, or is disabled",
            args.as_user
        );
    };
    let Some(user) = crate::auth::SessionUser::from_directory(&info, &config.auth, 0) else {
        bail!(
            "user `{}` may not log in (not in auth.employee_groups)",
            args.as_user
        );
    };
    let path = config.index_path();
    if !path.join("meta.json").exists() {
        bail!(
            "there is no index at {} yet: run `samle sync` first",
            path.display()
        );
    }
    let index = samle_index::SearchIndex::open(&path)?;
    let mut filters = Vec::new();
    if let Some(s) = &args.source {
        filters.push(samle_index::FacetFilter::Source(s.clone()));
    }
    let req = samle_index::SearchRequest {
        query: args.query.clone(),
        filters,
        limit: args.limit.clamp(1, 50),
        sort: if args.query.trim().is_empty() {
            samle_index::SortOrder::Newest
        } else {
            samle_index::SortOrder::Relevance
        },
        ..Default::default()
    };
    let principals = user.principals();
    let results = tokio::task::spawn_blocking(move || index.search(&principals, &req)).await??;
    println!(
        "{} result(s) for {} ({}), with principals: {}",
        results.total,
        user.id,
        user.display_name,
        user.principals.join(", ")
    );
    for (i, h) in results.hits.iter().enumerate() {
        let date = h
            .updated
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        println!("{:>3}. {}  [{} · {}]", i + 1, h.title, h.source, date);
        println!("     {}", crate::web::search_view::hit_link(h));
    }
    if !results.facets.source.is_empty() {
        let per: Vec<String> = results
            .facets
            .source
            .iter()
            .map(|f| format!("{} {}", f.value, f.count))
            .collect();
        println!("by source: {}", per.join(", "));
    }
    Ok(0)
}

/// Looks a user up as a login would, and shows what the portal makes of them.
async fn check_user(config: &Config, dir: &dyn crate::directory::Directory, login: &str) -> usize {
    match dir.lookup(login).await {
        Ok(Some(info)) => match crate::auth::SessionUser::from_directory(&info, &config.auth, 0) {
            Some(u) => {
                let mut roles = vec!["employee"];
                if u.publisher {
                    roles.push("publisher");
                }
                if u.admin {
                    roles.push("admin");
                }
                println!("✓ user {} ({})", u.id, u.display_name);
                println!("    groups: {}", u.groups.join(", "));
                println!("    principals: {}", u.principals.join(", "));
                println!("    roles: {}", roles.join(", "));
                0
            }
            None => {
                println!(
                    "✗ user {login}: found, but not in any of auth.employee_groups, so cannot log in"
                );
                1
            }
        },
        Ok(None) => {
            println!("✗ user {login}: not found, or disabled");
            1
        }
        Err(e) => {
            println!("✗ user {login}: {e}");
            1
        }
    }
}

fn index_stats(config: &Config) -> anyhow::Result<i32> {
    let path = config.index_path();
    if !path.join("meta.json").exists() {
        println!(
            "There is no index at {} yet: run `samle sync` or `samle serve` first.",
            path.display()
        );
        return Ok(0);
    }
    let index = samle_index::SearchIndex::open(&path)
        .with_context(|| format!("cannot open the index at {}", path.display()))?;
    let stats = index.stats()?;
    let names: BTreeMap<&str, &str> = config
        .sources
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    println!("index       {}", path.display());
    println!("documents   {}", stats.documents);
    println!(
        "size        {:.1} MB",
        stats.size_bytes as f64 / 1_000_000.0
    );
    println!("segments    {}", stats.segments);
    match stats.last_commit_at {
        Some(at) => println!(
            "last commit {} (opstamp {})",
            at.to_rfc3339(),
            stats.last_commit_opstamp
        ),
        None => println!("last commit none"),
    }
    println!();
    println!("{:<24} {:<32} {:>10}", "source", "name", "documents");
    for (source, n) in &stats.per_source {
        let name = names
            .get(source.as_str())
            .copied()
            .unwrap_or("(not configured)");
        println!("{source:<24} {name:<32} {n:>10}");
    }
    Ok(0)
}
