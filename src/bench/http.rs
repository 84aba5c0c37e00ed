//! `samle bench --http`: the real server under load.
//!
//! The index is built by the caller (the whole pipeline, in process). This module writes a
//! demo directory with three users who see 100 %, 10 % and 1 % of the documents and a
//! configuration without sources (so nothing re-syncs or sweeps the benchmark's documents),
//! starts `samle serve` from this very executable as a child process, times its start-up
//! (spawn → `/readyz` answers 200), logs in through the form like a browser, and drives it
//! with `wrk`: `/healthz` (the floor of the HTTP stack), the JSON API and the HTML page at
//! several client counts, then the three users. Memory is read from `/proc` after the load.
//! Each run starts a fresh server; the figures printed are medians over the runs.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, SaltString};

use super::GROUPS;

/// What the HTTP benchmark runs.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// How long `wrk` runs for each figure.
    pub duration: Duration,
    /// The connection counts of the sweep.
    pub clients: Vec<usize>,
    /// How many times the server is started and the whole sweep run (medians are printed).
    pub runs: usize,
}

/// What the caller has built for the server.
pub(super) struct Setup {
    pub work: PathBuf,
    pub data_dir: PathBuf,
    pub directory: PathBuf,
    pub queries: Vec<String>,
}

const PASSWORD: &str = "bench-password";
/// The benchmark's users and how many of the hundred groups each is in.
const USERS: [(&str, usize); 3] = [
    ("sees-100", GROUPS),
    ("sees-10", GROUPS / 10),
    ("sees-1", 1),
];
/// The client count at which the three users are compared: one, so that the figures are
/// latencies, not queueing.
const USER_CLIENTS: usize = 1;
const WARM_UP: Duration = Duration::from_secs(2);

/// Checks that `wrk` is there, installing the Debian package when running as root.
pub(super) fn ensure_wrk() -> anyhow::Result<()> {
    if wrk_version().is_some() {
        return Ok(());
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if root && Path::new("/usr/bin/apt-get").exists() {
        eprintln!("wrk is missing: running `apt-get install -y wrk`…");
        let status = Command::new("apt-get")
            .args(["install", "-y", "wrk"])
            .stdout(Stdio::null())
            .status()
            .context("cannot run apt-get")?;
        if status.success() && wrk_version().is_some() {
            return Ok(());
        }
    }
    bail!(
        "the HTTP benchmark needs the load generator wrk: install it with `sudo apt-get install -y wrk` (Debian, Ubuntu) and run again"
    )
}

fn wrk_version() -> Option<String> {
    // `wrk --version` prints its banner and exits with status 1.
    let out = Command::new("wrk").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.starts_with("wrk").then_some(text)
}

/// Writes the demo directory of the benchmark's users and the hundred groups, with real
/// argon2 hashes (the default parameters, as for real demo users).
pub(super) fn write_directory(work: &Path) -> anyhow::Result<PathBuf> {
    let mut toml = String::from(
        "# Written by `samle bench --http`: the benchmark's users, who see 100 %, 10 % and 1 %\n# of the documents. Password: bench-password\n",
    );
    for (id, groups) in USERS {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| anyhow::anyhow!("cannot make a salt: {e}"))?;
        let hash = Argon2::default()
            .hash_password(PASSWORD.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("cannot hash the benchmark password: {e}"))?;
        let groups: Vec<String> = (0..groups).map(|g| format!("\"g-{g:02}\"")).collect();
        writeln!(
            toml,
            "\n[[users]]\nid = \"{id}\"\nname = \"Bench {id}\"\npassword_hash = \"{hash}\"\ngroups = [{}]",
            groups.join(", ")
        )?;
    }
    for g in 0..GROUPS {
        writeln!(toml, "\n[[groups]]\nname = \"g-{g:02}\"")?;
    }
    let path = work.join("directory.toml");
    std::fs::write(&path, toml).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Waits until the in-process writer has let go of the index, so the server can take it.
pub(super) fn wait_for_writer_lock(index_dir: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let index = samle_index::SearchIndex::open(index_dir)?;
    loop {
        match index.writer(samle_index::MIN_WRITER_HEAP_BYTES) {
            Ok(writer) => {
                drop(writer);
                return Ok(());
            }
            Err(samle_index::IndexError::WriterBusy) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e).context("the index writer was not released"),
        }
    }
}

/// One `wrk` figure: latencies in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Cell {
    p50: f64,
    p90: f64,
    p99: f64,
    qps: f64,
    /// Socket errors and timeouts (error statuses abort the benchmark instead).
    errors: u64,
    /// The one-minute load average right after the run.
    load: f64,
}

/// The three figures of one client count.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    healthz: Cell,
    api: Cell,
    html: Cell,
}

/// One start of the server and its whole sweep.
#[derive(Debug, Default)]
struct RunFigures {
    startup: Duration,
    rss_ready_mb: f64,
    rss_after_mb: f64,
    /// Of `rss_after_mb`: the process's own memory, and pages of mapped index files (the
    /// kernel's page cache, shared and reclaimable).
    anon_after_mb: f64,
    file_after_mb: f64,
    hwm_mb: f64,
    rows: Vec<(usize, Row)>,
    users: Vec<Cell>,
}

pub(super) struct Report {
    opts: HttpOptions,
    runs: Vec<RunFigures>,
}

/// Starts the server `opts.runs` times and measures it.
pub(super) fn run(setup: &Setup, opts: &HttpOptions) -> anyhow::Result<Report> {
    if opts.clients.is_empty() || opts.clients.contains(&0) {
        bail!("--clients needs one or more connection counts above zero, e.g. 1,2,4,8,16");
    }
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let config = setup.work.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "# Written by `samle bench --http`. No sources: nothing re-syncs or sweeps the\n# benchmark's documents, which belong to a source this file does not name.\n[server]\nlisten = \"{addr}\"\ndata_dir = \"{}\"\n[directory]\nkind = \"demo\"\nfile = \"{}\"\n",
            setup.data_dir.display(),
            setup.directory.display()
        ),
    )?;
    let script = setup.work.join("bench-wrk.lua");
    std::fs::write(&script, WRK_SCRIPT)?;
    let encode = |q: &str| url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let paths = |name: &str, prefix: &str| -> anyhow::Result<PathBuf> {
        let path = setup.work.join(format!("paths-{name}.txt"));
        let mut text = String::new();
        for q in &setup.queries {
            text.push_str(prefix);
            text.push_str(&encode(q));
            text.push('\n');
        }
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let api_paths = paths("api", "/api/v1/search?q=")?;
    let html_paths = paths("html", "/search?q=")?;
    let healthz_paths = setup.work.join("paths-healthz.txt");
    std::fs::write(&healthz_paths, "/healthz\n")?;

    let mut runs = Vec::new();
    for run in 1..=opts.runs {
        eprintln!("run {run} of {}: starting `samle serve`…", opts.runs);
        let log = setup.work.join(format!("serve-{run}.log"));
        let (server, startup) = Server::start(&config, addr, &log)?;
        let rss_ready_mb = server.memory()?.rss;
        let mut cookies = Vec::new();
        for (user, _) in USERS {
            cookies.push(login(addr, user).with_context(|| server.log_hint())?);
        }
        let first = setup.queries.first().map_or("", String::as_str);
        for (path, kind) in [
            (format!("/api/v1/search?q={}", encode(first)), "{"),
            (format!("/search?q={}", encode(first)), "<"),
        ] {
            let reply = request(addr, "GET", &path, &[("Cookie", &cookies[0])], "")?;
            if reply.status != 200 || !reply.body.trim_start().starts_with(kind) {
                bail!(
                    "GET {path} gave HTTP {}, not a search page; {}",
                    reply.status,
                    server.log_hint()
                );
            }
        }
        let wrk = |paths: &Path, cookie: &str, clients: usize, duration: Duration| {
            run_wrk(&script, addr, paths, cookie, clients, duration)
                .with_context(|| server.log_hint())
        };
        // Warm-up: the page cache, the allocator and the searcher's caches.
        wrk(&api_paths, &cookies[0], 2, WARM_UP)?;
        wrk(&html_paths, &cookies[0], 2, WARM_UP)?;
        let mut rows = Vec::new();
        for &clients in &opts.clients {
            eprintln!("  {clients} client(s)…");
            // Interleaved, so that the baseline sees the same machine load as the search.
            let row = Row {
                healthz: wrk(&healthz_paths, "", clients, opts.duration)?,
                api: wrk(&api_paths, &cookies[0], clients, opts.duration)?,
                html: wrk(&html_paths, &cookies[0], clients, opts.duration)?,
            };
            rows.push((clients, row));
        }
        eprintln!("  users who see 100 %, 10 %, 1 %…");
        let mut users = Vec::new();
        for cookie in &cookies {
            users.push(wrk(&api_paths, cookie, USER_CLIENTS, opts.duration)?);
        }
        let after = server.memory()?;
        server.stop();
        runs.push(RunFigures {
            startup,
            rss_ready_mb,
            rss_after_mb: after.rss,
            anon_after_mb: after.anon,
            file_after_mb: after.file,
            hwm_mb: after.hwm,
            rows,
            users,
        });
    }
    Ok(Report {
        opts: opts.clone(),
        runs,
    })
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A process's memory from `/proc/PID/status`, in MB.
struct Memory {
    rss: f64,
    anon: f64,
    file: f64,
    hwm: f64,
}

/// `samle serve` as a child process; stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(config: &Path, addr: SocketAddr, log: &Path) -> anyhow::Result<(Server, Duration)> {
        let exe = std::env::current_exe().context("cannot find the samle executable")?;
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--config")
            .arg(config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // The benchmark's configuration must be the one that counts.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SAMLE_")) {
            cmd.env_remove(key);
        }
        let started = Instant::now();
        let child = cmd.spawn().context("cannot start `samle serve`")?;
        let mut server = Server {
            child,
            log: log.to_path_buf(),
        };
        let deadline = started + Duration::from_secs(600);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "`samle serve` exited ({status}) before it was ready; {}",
                    server.log_hint()
                );
            }
            if let Ok(reply) = request(addr, "GET", "/readyz", &[], "")
                && reply.status == 200
            {
                return Ok((server, started.elapsed()));
            }
            if Instant::now() > deadline {
                bail!(
                    "`samle serve` was not ready after ten minutes; {}",
                    server.log_hint()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn log_hint(&self) -> String {
        format!("the server's log is {}", self.log.display())
    }

    fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.child.id());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        };
        match (
            field("VmRSS:"),
            field("RssAnon:"),
            field("RssFile:"),
            field("VmHWM:"),
        ) {
            (Some(rss), Some(anon), Some(file), Some(hwm)) => Ok(Memory {
                rss,
                anon,
                file,
                hwm,
            }),
            _ => bail!("{path} has no VmRSS, RssAnon, RssFile or VmHWM"),
        }
    }

    fn stop(self) {
        // Drop does it.
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // A graceful stop first, as an operator would; std only knows SIGKILL.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response, read whole.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// One HTTP/1.1 request on a fresh connection. Enough for logging in and polling readiness;
/// the load itself is `wrk`'s.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        write!(req, "{name}: {value}\r\n")?;
    }
    if !body.is_empty() {
        write!(req, "Content-Length: {}\r\n", body.len())?;
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> anyhow::Result<Reply> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the server's answer has no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("the server's answer has no status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a broken chunked answer")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("a broken chunk size")?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).context("a truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// The `samle_session=…` pair a response sets, ready for a Cookie header.
fn session_cookie(reply: &Reply) -> Option<String> {
    let prefix = format!("{}=", crate::web::SESSION_COOKIE);
    reply
        .headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| {
            v.starts_with(&prefix)
                .then(|| v.split(';').next().unwrap_or("").to_string())
        })
}

/// Logs in through the form like a browser: the login page's session and CSRF token, then
/// the form. Returns the Cookie header of the logged-in session.
fn login(addr: SocketAddr, user: &str) -> anyhow::Result<String> {
    let page = request(addr, "GET", "/login", &[], "")?;
    if page.status != 200 {
        bail!("GET /login gave HTTP {}", page.status);
    }
    let before = session_cookie(&page).context("the login page set no session cookie")?;
    const MARK: &str = "name=\"csrf\" value=\"";
    let token = page
        .body
        .find(MARK)
        .map(|i| &page.body[i + MARK.len()..])
        .and_then(|rest| rest.split('"').next())
        .context("the login page has no CSRF token")?;
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let form = format!(
        "username={}&password={}&csrf={}",
        encode(user),
        encode(PASSWORD),
        encode(token)
    );
    let reply = request(
        addr,
        "POST",
        "/login",
        &[
            ("Cookie", &before),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    )?;
    if reply.status != 303 {
        bail!(
            "logging in as {user} gave HTTP {}, not the redirect of a successful login",
            reply.status
        );
    }
    session_cookie(&reply).context("the login set no session cookie")
}

/// Rotates through the paths of the file named by the first argument (each thread starting
/// elsewhere), with the Cookie header given as the second (empty: none). The requests are
/// formatted once in `init`, so that wrk's own Lua work per request stays small on a machine
/// where wrk and the server share the cores. `done` prints exact percentiles on one line.
const WRK_SCRIPT: &str = r#"-- Written by `samle bench --http`.
local reqs = {}
local n = 0
local i = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads * 997)
  threads = threads + 1
end

function init(args)
  local headers = {}
  if args[2] ~= nil and args[2] ~= "" then
    headers["Cookie"] = args[2]
  end
  for path in io.lines(args[1]) do
    n = n + 1
    reqs[n] = wrk.format("GET", path, headers)
  end
  i = (offset or 0) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "samle-wrk requests=%d duration_us=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"#;

fn run_wrk(
    script: &Path,
    addr: SocketAddr,
    paths: &Path,
    cookie: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Cell> {
    let threads = clients.min(2);
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{clients}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--timeout", "30s", "-s"])
        .arg(script)
        .arg(format!("http://{addr}"))
        .arg("--")
        .arg(paths)
        .arg(cookie)
        .stdin(Stdio::null())
        .output()
        .context("cannot run wrk")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find(|l| l.starts_with("samle-wrk ")) else {
        bail!(
            "wrk gave no figures: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    };
    let value = |key: &str| -> f64 {
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0.0)
    };
    if value("status") > 0.0 {
        bail!(
            "{} of wrk's responses for {} were errors (HTTP 4xx/5xx)",
            value("status"),
            paths.display()
        );
    }
    let seconds = value("duration_us") / 1e6;
    Ok(Cell {
        p50: value("p50_us") / 1000.0,
        p90: value("p90_us") / 1000.0,
        p99: value("p99_us") / 1000.0,
        qps: if seconds > 0.0 {
            value("requests") / seconds
        } else {
            0.0
        },
        errors: (value("connect") + value("read") + value("write") + value("timeout")) as u64,
        load: load_average_1m(),
    })
}

fn load_average_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Report {
    fn med(&self, f: impl Fn(&RunFigures) -> f64) -> f64 {
        median(self.runs.iter().map(f).collect())
    }

    fn all(&self, f: impl Fn(&RunFigures) -> f64, digits: usize) -> String {
        self.runs
            .iter()
            .map(|r| format!("{:.*}", digits, f(r)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(super) fn print(report: &Report) {
    let runs = report.runs.len();
    let secs = report.opts.duration.as_secs().max(1);
    println!();
    println!(
        "start-up, spawn → /readyz 200: {:.3} s (runs: {})",
        report.med(|r| r.startup.as_secs_f64()),
        report.all(|r| r.startup.as_secs_f64(), 3)
    );
    println!(
        "memory of the server: RSS when ready {:.0} MB, after the load {:.0} MB (runs: {}; of it {:.0} MB the process's own, {:.0} MB mapped index files), peak (VmHWM) {:.0} MB",
        report.med(|r| r.rss_ready_mb),
        report.med(|r| r.rss_after_mb),
        report.all(|r| r.rss_after_mb, 0),
        report.med(|r| r.anon_after_mb),
        report.med(|r| r.file_after_mb),
        report.med(|r| r.hwm_mb)
    );
    println!();
    println!(
        "search over HTTP as the user who sees 100 %, wrk {secs} s per figure, medians of {runs} run(s); latencies in ms"
    );
    println!(
        "{:>7} | {:>7} {:>7} {:>8} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} | {:>9} {:>8} {:>8} | {:>5}",
        "clients",
        "healthz",
        "p99",
        "q/s",
        "API p50",
        "p90",
        "p99",
        "q/s",
        "HTML p50",
        "p90",
        "p99",
        "q/s",
        "API/hz q/s",
        "HTML/API",
        "p99",
        "load"
    );
    let Some(first) = report.runs.first() else {
        return;
    };
    for (i, (clients, _)) in first.rows.iter().enumerate() {
        let cell = |f: &dyn Fn(&Row) -> f64| {
            report.med(|r| r.rows.get(i).map_or(f64::NAN, |(_, row)| f(row)))
        };
        let errors: u64 = report
            .runs
            .iter()
            .filter_map(|r| r.rows.get(i))
            .map(|(_, row)| row.healthz.errors + row.api.errors + row.html.errors)
            .sum();
        println!(
            "{:>7} | {:>7.3} {:>7.3} {:>8.0} | {:>7.3} {:>7.3} {:>7.3} {:>7.0} | {:>8.3} {:>7.3} {:>7.3} {:>7.0} | {:>10.3} {:>8.2} {:>8.2} | {:>5.1}{}",
            clients,
            cell(&|r| r.healthz.p50),
            cell(&|r| r.healthz.p99),
            cell(&|r| r.healthz.qps),
            cell(&|r| r.api.p50),
            cell(&|r| r.api.p90),
            cell(&|r| r.api.p99),
            cell(&|r| r.api.qps),
            cell(&|r| r.html.p50),
            cell(&|r| r.html.p90),
            cell(&|r| r.html.p99),
            cell(&|r| r.html.qps),
            cell(&|r| r.api.qps / r.healthz.qps),
            cell(&|r| r.html.p50 / r.api.p50),
            cell(&|r| r.html.p99 / r.api.p99),
            cell(&|r| r.api.load),
            if errors > 0 {
                format!("   ({errors} socket errors or timeouts)")
            } else {
                String::new()
            }
        );
    }
    println!();
    println!(
        "permission filter over HTTP (JSON API, {USER_CLIENTS} client), medians of {runs} run(s); ms"
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "", "p50", "p90", "p99", "q/s", "load"
    );
    for (i, (user, _)) in USERS.iter().enumerate() {
        let cell = |f: &dyn Fn(&Cell) -> f64| report.med(|r| r.users.get(i).map_or(f64::NAN, f));
        println!(
            "{:<28} {:>8.3} {:>8.3} {:>8.3} {:>8.0} {:>6.1}",
            format!("{user} (sees {} %)", USERS[i].1),
            cell(&|c| c.p50),
            cell(&|c| c.p90),
            cell(&|c| c.p99),
            cell(&|c| c.qps),
            cell(&|c| c.load)
        );
    }
    let ratio = |f: fn(&Cell) -> f64| {
        report.med(|r| match (r.users.last(), r.users.first()) {
            (Some(one), Some(all)) => f(one) / f(all),
            _ => f64::NAN,
        })
    };
    println!(
        "{:<28} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        "ratio 1 % / 100 %",
        ratio(|c| c.p50),
        ratio(|c| c.p90),
        ratio(|c| c.p99),
        ratio(|c| c.qps)
    );
    println!();
    println!(
        "targets at 100k documents: 1 client p50 ≤ 1 ms, p99 ≤ 8 ms (API), HTML within 1.5×; ≥ 2,000 q/s at 8 clients; ≤ 150 MB resident; 1 % no slower than 100 %. At 1M: p50 ≤ 5 ms, p99 ≤ 40 ms, ≤ 500 MB, start-up ≤ 1 s."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_parsed_with_and_without_chunks() {
        let plain = parse_reply(b"HTTP/1.1 303 See Other\r\nSet-Cookie: samle_session=abc; Path=/; HttpOnly\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!(plain.status, 303);
        assert_eq!(plain.body, "ok");
        assert_eq!(session_cookie(&plain).as_deref(), Some("samle_session=abc"));
        let chunked = parse_reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, "abcde");
        assert!(session_cookie(&chunked).is_none());
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
