//! The HTTP behaviour every web connector shares: user agent, timeouts, retries with capped
//! exponential back-off, `Retry-After` on 429 and 503, per-host politeness, a response size cap
//! enforced while the body streams in, gzip, redirects only to allowed hosts, credentials from
//! the environment (HTTP Basic, a bearer token, or cookies), a cookie jar for APIs that log in
//! (MediaWiki's bot passwords), conditional requests, and counters of requests and bytes for
//! the benchmarks.
//!
//! Link-local addresses (169.254.0.0/16, fe80::/10, where cloud metadata services live) are
//! refused always: as a URL's literal host, after a redirect, and after name resolution, so a
//! host name that resolves to a metadata address does not get through either.
//!
//! TLS is rustls with the ring provider, the one crypto provider of the whole binary, and the
//! system's root certificates, or the organisation's own CA from `ca_file` (intranet servers
//! often carry certificates from an internal CA).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::cookie::Jar;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, redirect};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;
use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use tokio::time::Instant;
use tracing::{debug, warn};
use url::Url;

use crate::error::ConnectorError;

/// The user agent every request carries.
pub const USER_AGENT: &str = concat!("Samle/", env!("CARGO_PKG_VERSION"), " (+intranet search)");

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(120);
const DEFAULT_MAX_CONCURRENCY: usize = 2;
const DEFAULT_MIN_DELAY: Duration = Duration::from_millis(250);
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 20 * 1024 * 1024;
/// The first back-off; each further retry doubles it, up to `max_retry_wait`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Redirect chains longer than this are a loop or a trap.
const MAX_REDIRECTS: usize = 10;

/// The `http` table of a web connector (`[sources.feed.http]`). Every key is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpParams {
    /// Time to establish a connection, such as `"10s"` (default 10 s).
    pub connect_timeout: Option<String>,
    /// Time for a whole request including the body, such as `"60s"` (default 60 s); a server
    /// that trickles bytes hits it.
    pub timeout: Option<String>,
    /// Retries after a connection error, a timeout, a 5xx or a 429 (default 3).
    pub retries: Option<u32>,
    /// The longest wait before a retry, whether from back-off or `Retry-After` (default 120 s).
    pub max_retry_wait: Option<String>,
    /// Requests in flight to one host at a time (default 2).
    pub max_concurrency: Option<usize>,
    /// The least time between the starts of two requests to one host (default 250 ms).
    pub min_delay: Option<String>,
    /// Larger responses are refused while they stream in (default 20 MiB).
    pub max_response_bytes: Option<u64>,
    /// Hosts that requests and redirects may go to, besides the source's own host.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// HTTP Basic user name; the password comes from the variable `password_env`.
    pub username: Option<String>,
    /// The environment variable holding the Basic password.
    pub password_env: Option<String>,
    /// The environment variable holding a bearer token.
    pub token_env: Option<String>,
    /// The environment variable holding cookies to send to the source's host, as a browser's
    /// `Cookie` header writes them (`"name=value; other=value"`), for portals behind a single
    /// sign-on cookie.
    pub cookie_env: Option<String>,
    /// A PEM file of CA certificates to trust instead of the system's, for servers with
    /// certificates from the organisation's own CA. Relative to the configuration file.
    pub ca_file: Option<PathBuf>,
}

/// Parses durations such as `"500ms"`, `"30s"`, `"10m"`, `"2h"` and `"365d"`.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => return Some(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(seconds).map(Duration::from_secs)
}

fn duration_param(
    value: Option<&str>,
    field: &str,
    default: Duration,
) -> Result<Duration, ConnectorError> {
    match value {
        None => Ok(default),
        Some(v) => parse_duration(v).ok_or_else(|| {
            ConnectorError::Config(format!(
                "http {field} {v:?} is not a duration such as \"500ms\", \"30s\", \"10m\" or \"1h\""
            ))
        }),
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url}: {reason}")]
    Refused { url: String, reason: String },

    #[error("redirect from {from} to {to} refused: {reason}")]
    RedirectRefused {
        from: String,
        to: String,
        reason: String,
    },

    #[error("{url} answered {status}")]
    Status { url: String, status: StatusCode },

    #[error("{url}: response larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },

    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
}

impl HttpError {
    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<HttpError> for ConnectorError {
    fn from(e: HttpError) -> Self {
        ConnectorError::Unavailable {
            reason: e.to_string(),
        }
    }
}

/// A redirect the policy refused; found again in the error chain to give a clear message.
#[derive(Debug)]
struct RedirectRefusal {
    from: String,
    to: String,
    reason: String,
}

impl fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "redirect from {} to {} refused: {}",
            self.from, self.to, self.reason
        )
    }
}

impl std::error::Error for RedirectRefusal {}

/// The result of a (conditional) GET.
// One value per request, moved once: boxing the response would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Fetch {
    /// 304: what the caller has is current.
    NotModified,
    Fetched(Fetched),
}

/// A successful response, read in full within the size cap.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    /// The URL after redirects.
    pub url: Url,
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    /// Every response header, for APIs that page with them (`X-WP-TotalPages`, `Link`).
    pub headers: HeaderMap,
}

impl Fetched {
    /// The `charset` parameter of the `Content-Type`, if any.
    pub fn charset(&self) -> Option<&str> {
        let content_type = self.content_type.as_deref()?;
        content_type.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"'))
        })
    }
}

enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
}

/// Per-host politeness: a bound on requests in flight and a least delay between starts.
struct HostGate {
    permits: Semaphore,
    next_start: AsyncMutex<Instant>,
}

/// What a client has sent and received so far (the benchmarks report these).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Response body bytes received (after gzip is undone, as the extractors see them).
    pub bytes: u64,
}

/// An HTTP client with the shared behaviour; cheap to share behind an `Arc`.
pub struct HttpClient {
    client: reqwest::Client,
    requests: AtomicU64,
    bytes: AtomicU64,
    allowed: Arc<HashSet<String>>,
    auth: Option<Auth>,
    retries: u32,
    max_retry_wait: Duration,
    max_concurrency: usize,
    min_delay: Duration,
    max_response_bytes: u64,
    hosts: Mutex<HashMap<String, Arc<HostGate>>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("allowed", &self.allowed)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds a client whose requests may go to `source`'s host and the configured
    /// `allowed_hosts`. Credentials are read from the process environment; a relative
    /// `ca_file` is resolved against the working directory.
    pub fn new(params: &HttpParams, source: &Url) -> Result<Self, ConnectorError> {
        Self::with_env(params, source, Path::new("."), |name| {
            std::env::var(name).ok()
        })
    }

    /// As [`HttpClient::new`], resolving a relative `ca_file` against `base_dir` (the
    /// configuration file's folder).
    pub fn in_dir(
        params: &HttpParams,
        source: &Url,
        base_dir: &Path,
    ) -> Result<Self, ConnectorError> {
        Self::with_env(params, source, base_dir, |name| std::env::var(name).ok())
    }

    /// As [`HttpClient::in_dir`], reading environment variables through `env`.
    pub fn with_env(
        params: &HttpParams,
        source: &Url,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnectorError> {
        let connect_timeout = duration_param(
            params.connect_timeout.as_deref(),
            "connect_timeout",
            DEFAULT_CONNECT_TIMEOUT,
        )?;
        let timeout = duration_param(params.timeout.as_deref(), "timeout", DEFAULT_TIMEOUT)?;
        let max_retry_wait = duration_param(
            params.max_retry_wait.as_deref(),
            "max_retry_wait",
            DEFAULT_MAX_RETRY_WAIT,
        )?;
        let min_delay =
            duration_param(params.min_delay.as_deref(), "min_delay", DEFAULT_MIN_DELAY)?;
        let max_concurrency = params.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
        if max_concurrency == 0 {
            return Err(ConnectorError::Config(
                "http max_concurrency must be at least 1".to_owned(),
            ));
        }
        let max_response_bytes = params
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        if max_response_bytes == 0 {
            return Err(ConnectorError::Config(
                "http max_response_bytes must be greater than 0".to_owned(),
            ));
        }

        let mut allowed = HashSet::new();
        let own = source
            .host_str()
            .ok_or_else(|| ConnectorError::Config(format!("url {source} has no host")))?;
        allowed.insert(normalise_host(own));
        for host in &params.allowed_hosts {
            let host = normalise_host(host);
            if host.is_empty() || (host.contains(['/', ':']) && !host.starts_with('[')) {
                return Err(ConnectorError::Config(format!(
                    "http allowed_hosts entry {host:?} must be a bare host name such as \"intra.example.dk\""
                )));
            }
            allowed.insert(host);
        }
        let allowed = Arc::new(allowed);

        let auth = auth(params, &env)?;
        // One jar per client: cookies from `cookie_env` for the source's host, and whatever an
        // API login sets (MediaWiki keeps its session in cookies).
        let jar = Arc::new(Jar::default());
        if let Some(name) = &params.cookie_env {
            let value = env(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                ConnectorError::Config(format!(
                    "http cookie_env: environment variable {name} is not set or empty"
                ))
            })?;
            for pair in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                if !pair.contains('=') {
                    return Err(ConnectorError::Config(format!(
                        "http cookie_env: {name} holds {:?}, which is not a name=value cookie",
                        pair.split('=').next().unwrap_or_default()
                    )));
                }
                jar.add_cookie_str(pair, source);
            }
        }
        let ca_file = params.ca_file.as_ref().map(|file| base_dir.join(file));

        let policy_allowed = Arc::clone(&allowed);
        let policy = redirect::Policy::custom(move |attempt| {
            let from = attempt
                .previous()
                .last()
                .map(Url::to_string)
                .unwrap_or_default();
            let to = attempt.url().to_string();
            if attempt.previous().len() > MAX_REDIRECTS {
                let reason = format!("more than {MAX_REDIRECTS} redirects");
                return attempt.error(RedirectRefusal { from, to, reason });
            }
            match check_url(attempt.url(), &policy_allowed) {
                Ok(()) => attempt.follow(),
                Err(reason) => attempt.error(RedirectRefusal { from, to, reason }),
            }
        });

        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(ca_file.as_deref())?)
            .cookie_provider(jar)
            .user_agent(USER_AGENT)
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(policy)
            .dns_resolver(Arc::new(NoLinkLocal))
            .gzip(true)
            .build()
            .map_err(|e| ConnectorError::Internal(format!("cannot build http client: {e}")))?;

        Ok(Self {
            client,
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            allowed,
            auth,
            retries: params.retries.unwrap_or(DEFAULT_RETRIES),
            max_retry_wait,
            max_concurrency,
            min_delay,
            max_response_bytes,
            hosts: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `url` passes the host rules (allowed host, not link-local, http or https).
    pub fn check(&self, url: &Url) -> Result<(), HttpError> {
        check_url(url, &self.allowed).map_err(|reason| HttpError::Refused {
            url: url.to_string(),
            reason,
        })
    }

    /// GET `url` and read the whole body within the size cap.
    pub async fn get(&self, url: &Url) -> Result<Fetched, HttpError> {
        match self.get_conditional(url, None, None).await? {
            Fetch::Fetched(fetched) => Ok(fetched),
            Fetch::NotModified => Err(HttpError::Refused {
                url: url.to_string(),
                reason: "answered 304 to an unconditional request".to_owned(),
            }),
        }
    }

    /// GET `url` with `If-None-Match` / `If-Modified-Since` when given.
    pub async fn get_conditional(
        &self,
        url: &Url,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Fetch, HttpError> {
        let mut headers = HeaderMap::new();
        if let Some(value) = etag.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(header::IF_NONE_MATCH, value);
        }
        if let Some(value) = last_modified.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(header::IF_MODIFIED_SINCE, value);
        }
        self.send(Method::GET, url, headers, None).await
    }

    /// POST `form` URL-encoded to `url` (an API's login or a query too long for a URL),
    /// with the same host rules, politeness, retries and size cap as a GET.
    pub async fn post_form(&self, url: &Url, form: &[(&str, &str)]) -> Result<Fetched, HttpError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        match self.send(Method::POST, url, headers, Some(body)).await? {
            Fetch::Fetched(fetched) => Ok(fetched),
            Fetch::NotModified => Err(HttpError::Refused {
                url: url.to_string(),
                reason: "answered 304 to a POST".to_owned(),
            }),
        }
    }

    /// Requests sent and bytes received so far.
    pub fn stats(&self) -> HttpStats {
        HttpStats {
            requests: self.requests.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<String>,
    ) -> Result<Fetch, HttpError> {
        self.check(url)?;
        let gate = self.gate(url);
        let _permit = gate
            .permits
            .acquire()
            .await
            .map_err(|_| HttpError::Transport {
                url: url.to_string(),
                reason: "http client closed".to_owned(),
            })?;

        let mut attempt = 0;
        loop {
            self.wait_turn(&gate).await;
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            request = match &self.auth {
                Some(Auth::Basic { user, password }) => request.basic_auth(user, Some(password)),
                Some(Auth::Bearer(token)) => request.bearer_auth(token),
                None => request,
            };
            let retry_after = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::NOT_MODIFIED {
                        return Ok(Fetch::NotModified);
                    }
                    if status.is_success() {
                        return self.read(url, response).await.map(Fetch::Fetched);
                    }
                    let retryable =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retryable || attempt >= self.retries {
                        return Err(HttpError::Status {
                            url: url.to_string(),
                            status,
                        });
                    }
                    if status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE
                    {
                        response
                            .headers()
                            .get(header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| parse_retry_after(v, Utc::now()))
                    } else {
                        None
                    }
                }
                Err(e) => {
                    let error = transport_error(url, &e);
                    // A refused certificate will be refused again: not worth a retry.
                    let retryable = (e.is_connect() || e.is_timeout() || e.is_request())
                        && !e.is_redirect()
                        && !is_tls_refusal(&e)
                        && !matches!(error, HttpError::RedirectRefused { .. });
                    if !retryable || attempt >= self.retries {
                        return Err(error);
                    }
                    None
                }
            };
            let backoff = FIRST_BACKOFF.saturating_mul(1 << attempt.min(16));
            let wait = retry_after.unwrap_or(backoff).min(self.max_retry_wait);
            attempt += 1;
            debug!(%url, attempt, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "retrying request");
            tokio::time::sleep(wait).await;
        }
    }

    /// Reads the body chunk by chunk, refusing it as soon as it passes the cap.
    async fn read(&self, url: &Url, mut response: reqwest::Response) -> Result<Fetched, HttpError> {
        let limit = self.max_response_bytes;
        let too_large = || HttpError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let header_value = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header_value(header::ETAG);
        let last_modified = header_value(header::LAST_MODIFIED);
        let content_type = header_value(header::CONTENT_TYPE);
        let headers = response.headers().clone();
        let final_url = response.url().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(url, &e))?
        {
            self.bytes.fetch_add(
                u64::try_from(chunk.len()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            if u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX) > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            url: final_url,
            body,
            etag,
            last_modified,
            content_type,
            headers,
        })
    }

    fn gate(&self, url: &Url) -> Arc<HostGate> {
        let host = url.host_str().map(normalise_host).unwrap_or_default();
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(hosts.entry(host).or_insert_with(|| {
            Arc::new(HostGate {
                permits: Semaphore::new(self.max_concurrency),
                next_start: AsyncMutex::new(Instant::now()),
            })
        }))
    }

    /// Waits until the host's least delay since the previous request start has passed.
    async fn wait_turn(&self, gate: &HostGate) {
        let now = Instant::now();
        let start = {
            let mut next = gate.next_start.lock().await;
            let start = (*next).max(now);
            *next = start + self.min_delay;
            start
        };
        // Timers tick in milliseconds: sleeping until a moment already passed would still
        // cost up to one tick per request.
        if start > now {
            tokio::time::sleep_until(start).await;
        }
    }
}

fn auth(
    params: &HttpParams,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Auth>, ConnectorError> {
    let read = |name: &str, field: &str| {
        env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            ConnectorError::Config(format!(
                "http {field}: environment variable {name} is not set or empty"
            ))
        })
    };
    match (&params.username, &params.password_env, &params.token_env) {
        (None, None, None) => Ok(None),
        (Some(user), Some(password_env), None) => Ok(Some(Auth::Basic {
            user: user.clone(),
            password: read(password_env, "password_env")?,
        })),
        (None, None, Some(token_env)) => Ok(Some(Auth::Bearer(read(token_env, "token_env")?))),
        (_, _, Some(_)) => Err(ConnectorError::Config(
            "http token_env cannot be combined with username or password_env".to_owned(),
        )),
        _ => Err(ConnectorError::Config(
            "http username and password_env go together".to_owned(),
        )),
    }
}

/// The error with its causes, and a redirect refusal found among them reported as such.
fn transport_error(url: &Url, e: &reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<RedirectRefusal>() {
            return HttpError::RedirectRefused {
                from: refusal.from.clone(),
                to: refusal.to.clone(),
                reason: refusal.reason.clone(),
            };
        }
        source = cause.source();
    }
    HttpError::Transport {
        url: url.to_string(),
        reason: error_chain(e),
    }
}

/// Whether rustls refused the connection (an unknown CA, a wrong name, an expired
/// certificate) somewhere in the error's causes.
fn is_tls_refusal(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if cause.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        // hyper wraps the TLS error in I/O errors, whose `source` skips the wrapped error.
        source = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => cause.source(),
        };
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn normalise_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The host rules, for the first request and every redirect.
fn check_url(url: &Url, allowed: &HashSet<String>) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", url.scheme()));
    }
    let host = match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            if is_link_local(IpAddr::V4(ip)) {
                return Err(format!("{ip} is a link-local address"));
            }
            ip.to_string()
        }
        Some(url::Host::Ipv6(ip)) => {
            if is_link_local(IpAddr::V6(ip)) {
                return Err(format!("{ip} is a link-local address"));
            }
            format!("[{ip}]")
        }
        Some(url::Host::Domain(domain)) => normalise_host(domain),
        None => return Err("the URL has no host".to_owned()),
    };
    if allowed.contains(&host) {
        Ok(())
    } else {
        Err(format!(
            "host {host} is not the source's host or in allowed_hosts"
        ))
    }
}

/// 169.254.0.0/16 and fe80::/10, including IPv4 addresses mapped into IPv6.
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves names with the system resolver and drops link-local addresses, so that a host
/// name pointing at a metadata service is refused too.
struct NoLinkLocal;

impl reqwest::dns::Resolve for NoLinkLocal {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| {
                    let refused = is_link_local(addr.ip());
                    if refused {
                        warn!(%host, ip = %addr.ip(), "refusing link-local address");
                    }
                    !refused
                })
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host} resolves to no usable (non link-local) address").into(),
                );
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// `Retry-After` as seconds or an HTTP date, as a wait from `now` (a past date is no wait).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// The rustls configuration with the ring provider, and the CA certificates of `ca_file` or
/// else the system's roots (read once).
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ConnectorError> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    let own_roots;
    let roots = match ca_file {
        Some(path) => {
            own_roots = Arc::new(ca_roots(path)?);
            &own_roots
        }
        None => ROOTS.get_or_init(system_roots),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ConnectorError::Internal(format!("tls configuration: {e}")))?
    .with_root_certificates(Arc::clone(roots))
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn system_roots() -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        warn!(%error, "cannot read a system root certificate");
    }
    let (_added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if ignored > 0 {
        debug!(ignored, "system root certificates ignored");
    }
    Arc::new(roots)
}

/// The certificates of a PEM file, each one required to be usable.
fn ca_roots(path: &Path) -> Result<rustls::RootCertStore, ConnectorError> {
    let error = |message: String| {
        ConnectorError::Config(format!("http ca_file {}: {message}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(error("it holds no PEM certificate".to_owned()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| error(format!("unusable certificate ({e})")))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("500ms", Some(Duration::from_millis(500))),
            ("30s", Some(Duration::from_secs(30))),
            ("10m", Some(Duration::from_secs(600))),
            ("2h", Some(Duration::from_secs(7200))),
            ("365d", Some(Duration::from_secs(365 * 86_400))),
            ("", None),
            ("d", None),
            ("5 weeks", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input), expected, "{input:?}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn link_local_addresses() {
        for ip in ["169.254.169.254", "fe80::1", "::ffff:169.254.1.1"] {
            assert!(is_link_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "::1", "fd00::1"] {
            assert!(!is_link_local(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn host_rules() {
        let allowed: HashSet<String> = ["intra.example.dk".to_owned()].into();
        let ok = Url::parse("https://Intra.Example.dk./x").unwrap();
        assert!(check_url(&ok, &allowed).is_ok());
        for bad in [
            "https://other.example.dk/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "file:///etc/passwd",
        ] {
            assert!(
                check_url(&Url::parse(bad).unwrap(), &allowed).is_err(),
                "{bad}"
            );
        }
    }
}
