//! The MediaWiki connector: a wiki's pages through the Action API (`api.php`), with
//! `format=json&formatversion=2`.
//!
//! A page's identity is its page id, which stays the same when the page is moved (renamed) and,
//! since MediaWiki 1.28, when a deleted page is restored. A move is therefore a re-fetch of the
//! same document with its new title and URL, never a delete plus a new document.
//!
//! **Full traversal** (the first run, `full`, a cursor older than the recent changes the wiki
//! keeps, or a change of `namespaces`): `generator=allpages` per configured namespace, with
//! `prop=info|revisions` so that one request lists up to 500 pages (5000 for bots) with each
//! page's last revision id, timestamp, last editor and canonical URL. Only pages whose
//! revision id differs from the indexed fingerprint are fetched, rendered, with `action=parse`
//! (what readers see: templates expanded; edit links, tables of contents and navigation boxes
//! left out). It ends with `TraversalComplete`, so pages deleted while no change history was
//! available are swept.
//!
//! **Incremental runs** read `list=recentchanges` from the cursor on (`rcdir=newer`, ordered by
//! timestamp). Every page an edit, creation, deletion, restoration, move or import touched is
//! looked up again by page id, in batches, and its *current* state decides: missing → `Delete`,
//! a redirect or outside the configured namespaces → `Delete`, same revision as indexed →
//! `Unchanged`, else fetched. Because the current state decides, the order and repetition of
//! events cannot produce a wrong result (a page deleted and restored in one interval is simply
//! re-fetched). Change rows can be written with a timestamp a little older than rows already
//! visible (MediaWiki records them in deferred updates), so each run reads again a few minutes
//! before the cursor and skips the change ids it has already processed.
//!
//! **Private wikis** answer anonymous reads with `readapidenied`: the connector then logs in
//! with a bot password (`action=login`, token from `meta=tokens&type=login`) and keeps the
//! session cookies in the HTTP client's jar. Requests carry `assert=user`, so an expired
//! session gives `assertuserfailed`, and the connector logs in again once.
//!
//! Namespace names are localised (`Kategori:`, `Hjælp:`), so namespaces are configured and
//! compared by number only. Titles travel percent-encoded in query strings.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use scraper::{Html, Selector};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex as AsyncMutex;
use tracing::{debug, info, warn};
use url::Url;

use crate::connector::{Connector, RunContext};
use crate::error::ConnectorError;
use crate::extract::{self, fragment_text, normalise_whitespace, one_line, truncate_chars};
use crate::http::{HttpClient, HttpError, HttpParams, parse_duration};
use crate::model::{Change, Document};

/// Bump when the conversion of pages changes enough to re-emit every page once.
const CONVERSION_VERSION: u32 = 1;
const DEFAULT_KIND: &str = "wiki";
const DEFAULT_BATCH: usize = 50;
/// MediaWiki's own ceiling for page ids per request (with the `apihighlimits` right).
const MAX_BATCH: usize = 500;
/// MediaWiki's default `$wgRCMaxAge`.
const DEFAULT_RC_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);
/// How far before the cursor each incremental run reads again, for change rows written late.
const RC_OVERLAP_SECONDS: i64 = 300;
/// Pages in a row that could not be fetched before the run gives up on the wiki: one broken
/// page is reported and skipped, but a wiki that fails every request is down.
const MAX_CONSECUTIVE_FAILURES: usize = 10;
/// The longest text kept per page, as for every other extracted document.
const MAX_TEXT_CHARS: usize = 2_000_000;
/// Parts of rendered pages that are not content: edit links, tables of contents, navigation
/// boxes and other chrome MediaWiki and common templates mark as such (`noprint`, `metadata`),
/// footnote markers, and styles.
const NOT_CONTENT: &str = ".mw-editsection, #toc, .toc, .navbox, .vertical-navbox, \
     .navbox-styles, .metadata, .noprint, .mw-empty-elt, sup.reference, .mw-cite-backlink, \
     .printfooter, .catlinks, .mw-jump-link, style, script, link, meta";
/// Log types whose events can change what a page shows or whether it exists.
const PAGE_LOG_TYPES: &[&str] = &[
    "delete",
    "move",
    "import",
    "merge",
    "pagelang",
    "contentmodel",
    "suppress",
];

/// The `[sources.mediawiki]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaWikiParams {
    /// The address of the wiki's `api.php`, such as `"https://wiki.example.dk/w/api.php"`.
    pub api: String,
    /// The namespaces to index, by number (names are localised): 0 is the main namespace, 4
    /// the project namespace, 12 help; default `[0]`.
    pub namespaces: Option<Vec<i32>>,
    /// Principals who may see the pages of every namespace without its own entry in
    /// `namespace_access`; empty means nobody (and each run reports it).
    #[serde(default)]
    pub access: Vec<String>,
    /// Principals per namespace number (`4 = ["group:it"]`), replacing `access` for that
    /// namespace's pages.
    #[serde(default)]
    pub namespace_access: BTreeMap<String, Vec<String>>,
    /// The document kind of the pages: lowercase letters, digits and `-` (default `"wiki"`).
    pub kind: Option<String>,
    /// The language of every page ("da", "en"); otherwise each page's language as the wiki
    /// reports it.
    pub language: Option<String>,
    /// The bot password's login name, `User@botname` (from `Special:BotPasswords`), for wikis
    /// that anonymous users may not read.
    pub bot_user: Option<String>,
    /// The environment variable holding the bot password.
    pub bot_password_env: Option<String>,
    /// Page ids per lookup request, 1 to 500 (default 50; more than 50 needs the bot's
    /// `highvolume` grant).
    pub batch: Option<usize>,
    /// How long the wiki keeps recent changes (its `$wgRCMaxAge`, default `"90d"`); a cursor
    /// older than that starts a full traversal.
    pub rc_max_age: Option<String>,
    /// Timeouts, retries, politeness, allowed hosts and credentials.
    #[serde(default)]
    pub http: HttpParams,
}

/// The MediaWiki connector. Build it with [`crate::build`] or [`MediaWiki::new`].
pub struct MediaWiki {
    api: Url,
    namespaces: Vec<i32>,
    access: Vec<String>,
    namespace_access: BTreeMap<i32, Vec<String>>,
    kind: String,
    language: Option<String>,
    login: Option<Login>,
    batch: usize,
    rc_max_age: Duration,
    client: Arc<HttpClient>,
    /// Set once a login succeeded; cleared when the wiki says the session is gone.
    logged_in: AtomicBool,
    /// One login at a time.
    login_lock: AsyncMutex<()>,
    /// API warnings already logged, so that one deprecation does not flood the log.
    warned: std::sync::Mutex<HashSet<String>>,
}

/// A bot password. Deliberately without `Debug`, so the password cannot end up in a log.
struct Login {
    user: String,
    password: String,
}

/// What the cursor remembers between runs.
#[derive(Debug, Deserialize, Serialize)]
struct Cursor {
    /// Every recent change up to this server time has been processed.
    since: DateTime<Utc>,
    /// Recent changes already processed in the overlap window before `since`, by change id.
    #[serde(default)]
    seen: BTreeMap<u64, DateTime<Utc>>,
    /// The namespaces the cursor covers; a new namespace needs a full traversal.
    namespaces: Vec<i32>,
}

/// Why an API call failed.
#[derive(Debug)]
enum CallError {
    Http(HttpError),
    /// The API's own `error` object.
    Api {
        code: String,
        info: String,
    },
    /// Not JSON, or not the shape the API documents.
    Malformed(String),
    Connector(ConnectorError),
}

impl From<HttpError> for CallError {
    fn from(e: HttpError) -> Self {
        CallError::Http(e)
    }
}

impl From<ConnectorError> for CallError {
    fn from(e: ConnectorError) -> Self {
        CallError::Connector(e)
    }
}

/// A page as `prop=info|revisions` describes it.
#[derive(Clone, Debug, Default, Deserialize)]
struct RawPage {
    pageid: Option<u64>,
    ns: Option<i32>,
    title: Option<String>,
    #[serde(default)]
    missing: bool,
    #[serde(default)]
    invalid: bool,
    #[serde(default)]
    redirect: bool,
    lastrevid: Option<u64>,
    canonicalurl: Option<String>,
    fullurl: Option<String>,
    pagelanguage: Option<String>,
    #[serde(default)]
    revisions: Vec<RawRevision>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RawRevision {
    revid: Option<u64>,
    timestamp: Option<String>,
    user: Option<String>,
    #[serde(default)]
    userhidden: bool,
}

/// One row of `list=recentchanges`.
#[derive(Debug, Default, Deserialize)]
struct RawChange {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    ns: i32,
    #[serde(default)]
    title: String,
    #[serde(default)]
    pageid: u64,
    #[serde(default)]
    rcid: u64,
    timestamp: Option<String>,
    logtype: Option<String>,
    logaction: Option<String>,
    #[serde(default)]
    logparams: Value,
}

#[derive(Debug, Default, Deserialize)]
struct Parsed {
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    displaytitle: String,
    #[serde(default)]
    categories: Vec<ParsedCategory>,
}

#[derive(Debug, Default, Deserialize)]
struct ParsedCategory {
    #[serde(default)]
    category: String,
    #[serde(default)]
    hidden: bool,
}

/// Why one page could not be fetched.
enum Failure {
    /// For a reason that says nothing about the wiki as a whole.
    Page,
    /// The wiki itself failed to answer.
    Wiki,
}

#[derive(Debug, Default)]
struct Counts {
    upserted: usize,
    unchanged: usize,
    deleted: usize,
    failed: usize,
    /// Pages in a row whose fetch failed at the HTTP level.
    consecutive_failures: usize,
}

/// Current server time and the oldest recent change the wiki still has.
struct Probe {
    now: DateTime<Utc>,
    oldest_change: Option<DateTime<Utc>>,
}

impl MediaWiki {
    /// Validates the parameters and reads the bot password from the environment; the wiki is
    /// not contacted until `check` or `run`. A relative `http.ca_file` is resolved against
    /// `base_dir`.
    pub fn new(params: &MediaWikiParams, base_dir: &Path) -> Result<Self, ConnectorError> {
        Self::with_env(params, base_dir, |name| std::env::var(name).ok())
    }

    /// As [`MediaWiki::new`], reading environment variables through `env`.
    pub fn with_env(
        params: &MediaWikiParams,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnectorError> {
        let config = |m: String| ConnectorError::Config(format!("mediawiki {m}"));
        let api = Url::parse(params.api.trim())
            .map_err(|e| config(format!("api {:?}: {e}", params.api)))?;
        if !matches!(api.scheme(), "http" | "https") {
            return Err(config(format!(
                "api {api} must start with http:// or https://"
            )));
        }
        if api.query().is_some() || api.fragment().is_some() {
            return Err(config(format!(
                "api {api} must be the address of api.php itself, without ?query or #fragment"
            )));
        }

        let namespaces = params.namespaces.clone().unwrap_or_else(|| vec![0]);
        if namespaces.is_empty() {
            return Err(config(
                "namespaces is empty; list at least one namespace number, such as [0]".to_owned(),
            ));
        }
        let mut unique = HashSet::new();
        for &ns in &namespaces {
            if ns < 0 {
                return Err(config(format!(
                    "namespace {ns} cannot be indexed: the special (-1) and media (-2) namespaces hold no pages"
                )));
            }
            if !unique.insert(ns) {
                return Err(config(format!("namespace {ns} is listed twice")));
            }
        }

        let principals = |list: &[String], field: &str| {
            crate::params::principals(list, &format!("mediawiki {field}"))
        };
        let access = principals(&params.access, "access")?;
        let mut namespace_access = BTreeMap::new();
        for (key, list) in &params.namespace_access {
            let ns: i32 = key.trim().parse().map_err(|_| {
                config(format!(
                    "namespace_access key {key:?} is not a namespace number such as 0 or 4"
                ))
            })?;
            if !namespaces.contains(&ns) {
                return Err(config(format!(
                    "namespace_access names namespace {ns}, which is not in namespaces {namespaces:?}"
                )));
            }
            namespace_access.insert(ns, principals(list, &format!("namespace_access.{ns}"))?);
        }

        let kind = match params.kind.as_deref() {
            None => DEFAULT_KIND.to_owned(),
            Some(kind) => crate::params::document_kind(kind, "mediawiki", DEFAULT_KIND)?,
        };
        let language = match params.language.as_deref() {
            None => None,
            Some(tag) => Some(extract::primary_language(tag).ok_or_else(|| {
                config(format!(
                    "language {tag:?} is not a language code such as \"da\" or \"en\""
                ))
            })?),
        };

        let login = match (&params.bot_user, &params.bot_password_env) {
            (None, None) => None,
            (Some(user), Some(var)) => {
                let user = user.trim();
                if user.is_empty() {
                    return Err(config("bot_user is empty".to_owned()));
                }
                let password = env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    config(format!(
                        "bot_password_env: environment variable {var} is not set or empty"
                    ))
                })?;
                Some(Login {
                    user: user.to_owned(),
                    password,
                })
            }
            _ => {
                return Err(config(
                    "bot_user and bot_password_env go together (a bot password from Special:BotPasswords)"
                        .to_owned(),
                ));
            }
        };

        let batch = params.batch.unwrap_or(DEFAULT_BATCH);
        if !(1..=MAX_BATCH).contains(&batch) {
            return Err(config(format!(
                "batch {batch} must be from 1 to {MAX_BATCH}"
            )));
        }
        let rc_max_age = match params.rc_max_age.as_deref() {
            None => DEFAULT_RC_MAX_AGE,
            Some(value) => parse_duration(value).ok_or_else(|| {
                config(format!(
                    "rc_max_age {value:?} is not a duration such as \"90d\""
                ))
            })?,
        };
        let client = Arc::new(HttpClient::in_dir(&params.http, &api, base_dir)?);
        Ok(Self {
            api,
            namespaces,
            access,
            namespace_access,
            kind,
            language,
            login,
            batch,
            rc_max_age,
            client,
            logged_in: AtomicBool::new(false),
            login_lock: AsyncMutex::new(()),
            warned: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// Requests and bytes so far (the benchmark reports them).
    pub fn http_stats(&self) -> crate::http::HttpStats {
        self.client.stats()
    }

    /// The principals for pages of namespace `ns`.
    fn acl(&self, ns: i32) -> &[String] {
        self.namespace_access.get(&ns).unwrap_or(&self.access)
    }

    /// The fingerprint of revision `revid` of page `title` in namespace `ns`: the revision; the
    /// title, because a move changes title and URL (MediaWiki adds a null revision then, but
    /// the connector does not rely on it); and the settings that shape the document, so that a
    /// change of access re-emits the pages.
    fn fingerprint(&self, ns: i32, title: &str, revid: u64) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [
            CONVERSION_VERSION.to_string().as_str(),
            &self.kind,
            self.language.as_deref().unwrap_or(""),
            &self.acl(ns).join("\u{1f}"),
            title,
        ] {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        let digest = hasher.finalize().to_hex();
        format!("{revid}:{}", &digest.as_str()[..16])
    }

    /// The API URL with `params`, in JSON format version 2.
    fn url(&self, params: &[(&str, &str)], assert_user: bool) -> Url {
        let mut url = self.api.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("format", "json");
            query.append_pair("formatversion", "2");
            for (key, value) in params {
                query.append_pair(key, value);
            }
            if assert_user {
                query.append_pair("assert", "user");
            }
        }
        url
    }

    /// The response body as JSON, with the API's `error` turned into [`CallError::Api`] and its
    /// `warnings` logged.
    fn decode(&self, body: &[u8], context: &str) -> Result<Value, CallError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            let start = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            CallError::Malformed(format!(
                "{context} did not answer with JSON ({e}); it starts with {start:?} (is api the address of api.php?)"
            ))
        })?;
        if let Some(error) = value.get("error") {
            let code = error
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            let info = error
                .get("info")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            return Err(CallError::Api { code, info });
        }
        // errorformat=plaintext and friends report errors as a list.
        if let Some(error) = value
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            let code = error
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            let info = error
                .get("text")
                .or_else(|| error.get("*"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            return Err(CallError::Api { code, info });
        }
        if let Some(warnings) = value.get("warnings") {
            self.log_warnings(warnings);
        }
        Ok(value)
    }

    fn log_warnings(&self, warnings: &Value) {
        // formatversion=2: {"module": {"warnings": "text"}}; errorformat lists: [{"code", "text"}].
        let mut texts = Vec::new();
        match warnings {
            Value::Object(modules) => {
                for (module, body) in modules {
                    let text = body
                        .get("warnings")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| body.to_string());
                    texts.push(format!("{module}: {text}"));
                }
            }
            Value::Array(list) => {
                for item in list {
                    texts.push(
                        item.get("text")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| item.to_string()),
                    );
                }
            }
            other => texts.push(other.to_string()),
        }
        let mut warned = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for text in texts {
            if warned.insert(text.clone()) {
                warn!(api = %self.api, warning = %text, "mediawiki api warning");
            }
        }
    }

    /// One GET, without the login logic.
    async fn get_once(
        &self,
        params: &[(&str, &str)],
        assert_user: bool,
    ) -> Result<Value, CallError> {
        let url = self.url(params, assert_user);
        let fetched = self.client.get(&url).await?;
        self.decode(&fetched.body, &format!("the wiki at {}", self.api))
    }

    /// One GET. With a bot login configured it logs in first, asserts the session on every
    /// request, and logs in again once when the wiki says the session is gone.
    async fn call(&self, params: &[(&str, &str)]) -> Result<Value, CallError> {
        if self.login.is_none() {
            return self.get_once(params, false).await;
        }
        let mut fresh = false;
        if !self.logged_in.load(Ordering::Acquire) {
            self.login().await?;
            fresh = true;
        }
        match self.get_once(params, true).await {
            Err(CallError::Api { code, .. })
                if !fresh && matches!(code.as_str(), "assertuserfailed" | "readapidenied") =>
            {
                debug!(api = %self.api, %code, "mediawiki session gone, logging in again");
                self.logged_in.store(false, Ordering::Release);
                self.login().await?;
                self.get_once(params, true).await
            }
            other => other,
        }
    }

    /// As [`MediaWiki::call`], with errors that say what is wrong for the administrator.
    async fn query(&self, params: &[(&str, &str)]) -> Result<Value, ConnectorError> {
        self.call(params).await.map_err(|e| self.error(e))
    }

    /// Logs in with the bot password; the session cookies stay in the client's jar.
    async fn login(&self) -> Result<(), ConnectorError> {
        let Some(login) = &self.login else {
            return Ok(());
        };
        let _guard = self.login_lock.lock().await;
        if self.logged_in.load(Ordering::Acquire) {
            return Ok(());
        }
        let token = self
            .get_once(
                &[("action", "query"), ("meta", "tokens"), ("type", "login")],
                false,
            )
            .await
            .map_err(|e| self.error(e))?;
        let token = token
            .pointer("/query/tokens/logintoken")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::Unavailable {
                reason: format!(
                    "the wiki at {} gave no login token (meta=tokens&type=login)",
                    self.api
                ),
            })?
            .to_owned();
        let fetched = self
            .client
            .post_form(
                &self.api,
                &[
                    ("format", "json"),
                    ("formatversion", "2"),
                    ("action", "login"),
                    ("lgname", &login.user),
                    ("lgpassword", &login.password),
                    ("lgtoken", &token),
                ],
            )
            .await?;
        let answer = self
            .decode(&fetched.body, &format!("the wiki at {}", self.api))
            .map_err(|e| self.error(e))?;
        let result = answer
            .pointer("/login/result")
            .and_then(Value::as_str)
            .unwrap_or("no result");
        if result == "Success" {
            self.logged_in.store(true, Ordering::Release);
            debug!(api = %self.api, user = %login.user, "logged in to mediawiki");
            return Ok(());
        }
        let reason = answer
            .pointer("/login/reason")
            .and_then(|r| {
                r.as_str()
                    .map(str::to_owned)
                    .or_else(|| Some(r.to_string()))
            })
            .unwrap_or_default();
        let message = format!(
            "login to the wiki at {} as {} failed: {result}{}{}",
            self.api,
            login.user,
            if reason.is_empty() { "" } else { ": " },
            reason
        );
        if result == "Failed" {
            // Wrong name or password: the configuration (or the environment) must change.
            Err(ConnectorError::Config(format!(
                "{message} (bot_user must be the bot password's login name, User@botname, and bot_password_env the variable holding its password)"
            )))
        } else {
            Err(ConnectorError::Unavailable { reason: message })
        }
    }

    /// A call's failure as the administrator should read it.
    fn error(&self, error: CallError) -> ConnectorError {
        match error {
            CallError::Http(e) => {
                let hint = if e.status() == Some(reqwest::StatusCode::NOT_FOUND) {
                    " (is api the address of api.php?)"
                } else {
                    ""
                };
                ConnectorError::Unavailable {
                    reason: format!("{e}{hint}"),
                }
            }
            CallError::Malformed(reason) => ConnectorError::Unavailable { reason },
            CallError::Connector(e) => e,
            CallError::Api { code, info } => match (code.as_str(), &self.login) {
                ("readapidenied", None) => ConnectorError::Config(format!(
                    "the wiki at {} does not let anonymous users read (readapidenied): create a bot password with the \"basic\" grant on Special:BotPasswords and set bot_user and bot_password_env",
                    self.api
                )),
                ("readapidenied", Some(login)) => ConnectorError::Config(format!(
                    "the wiki at {} does not let {} read (readapidenied: {info}): give the bot password the \"basic\" grant",
                    self.api, login.user
                )),
                _ => ConnectorError::Unavailable {
                    reason: format!(
                        "the wiki at {} answered with error {code}: {info}",
                        self.api
                    ),
                },
            },
        }
    }

    /// Sends a query and follows `continue` until the wiki says the batch is complete,
    /// merging the pages' properties that arrive in parts. Returns the pages and the
    /// continuation for the next batch (`None` after the last).
    async fn page_batch(
        &self,
        params: &[(&str, &str)],
        mut cont: BTreeMap<String, String>,
    ) -> Result<(Vec<RawPage>, Option<BTreeMap<String, String>>), ConnectorError> {
        let mut pages: Vec<RawPage> = Vec::new();
        let mut index: BTreeMap<u64, usize> = BTreeMap::new();
        loop {
            let mut all: Vec<(&str, &str)> = params.to_vec();
            all.extend(cont.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let answer = self.query(&all).await?;
            let next = continuation(&answer);
            let batch: Vec<RawPage> = match answer.pointer("/query/pages") {
                None | Some(Value::Null) => Vec::new(),
                Some(list) => parse_json(list.clone(), &self.api, "query.pages")?,
            };
            for page in batch {
                match page.pageid.and_then(|id| index.get(&id).copied()) {
                    Some(at) => merge(&mut pages[at], page),
                    None => {
                        if let Some(id) = page.pageid {
                            index.insert(id, pages.len());
                        }
                        pages.push(page);
                    }
                }
            }
            let complete = answer
                .get("batchcomplete")
                .is_some_and(|v| v.as_bool().unwrap_or(true));
            match next {
                None => return Ok((pages, None)),
                Some(next) if next == cont => {
                    return Err(ConnectorError::Unavailable {
                        reason: format!(
                            "the wiki at {} repeats the same continuation {next:?}",
                            self.api
                        ),
                    });
                }
                Some(next) if complete => return Ok((pages, Some(next))),
                Some(next) => cont = next,
            }
        }
    }

    /// The server's time and the oldest recent change it still keeps, in one request.
    async fn probe(&self) -> Result<Probe, ConnectorError> {
        let answer = self
            .query(&[
                ("action", "query"),
                ("list", "recentchanges"),
                ("rcdir", "newer"),
                ("rcprop", "timestamp"),
                ("rclimit", "1"),
                ("curtimestamp", "1"),
            ])
            .await?;
        let now = answer
            .get("curtimestamp")
            .and_then(Value::as_str)
            .and_then(parse_timestamp)
            .ok_or_else(|| ConnectorError::Unavailable {
                reason: format!(
                    "the wiki at {} did not report its time (curtimestamp)",
                    self.api
                ),
            })?;
        let oldest_change = answer
            .pointer("/query/recentchanges/0/timestamp")
            .and_then(Value::as_str)
            .and_then(parse_timestamp);
        Ok(Probe { now, oldest_change })
    }

    /// Lists every configured namespace and emits each page; ends with a checkpoint at
    /// `started` and `TraversalComplete`.
    async fn traverse(
        &self,
        ctx: &RunContext,
        started: DateTime<Utc>,
        use_known: bool,
        counts: &mut Counts,
    ) -> Result<(), ConnectorError> {
        for &ns in &self.namespaces {
            let ns_text = ns.to_string();
            let params = [
                ("action", "query"),
                ("generator", "allpages"),
                ("gapnamespace", ns_text.as_str()),
                ("gapfilterredir", "nonredirects"),
                ("gaplimit", "max"),
                ("prop", "info|revisions"),
                ("inprop", "url"),
                ("rvprop", "ids|timestamp|user"),
            ];
            let mut cont = BTreeMap::new();
            loop {
                let (pages, next) = self.page_batch(&params, cont).await?;
                for page in pages {
                    self.emit(ctx, page, use_known, counts).await?;
                }
                match next {
                    Some(next) => cont = next,
                    None => break,
                }
            }
        }
        let cursor = Cursor {
            since: started,
            seen: BTreeMap::new(),
            namespaces: self.namespaces.clone(),
        };
        ctx.sink
            .send(Change::Checkpoint {
                cursor: write_cursor(&cursor)?,
            })
            .await?;
        ctx.sink.send(Change::TraversalComplete).await?;
        Ok(())
    }

    /// Reads the recent changes since `cursor` and emits the current state of every page they
    /// touched. Returns true when a deletion could not be tied to a page id, so that a
    /// traversal must find what was deleted.
    async fn follow_changes(
        &self,
        ctx: &RunContext,
        mut cursor: Cursor,
        now: DateTime<Utc>,
        counts: &mut Counts,
    ) -> Result<bool, ConnectorError> {
        let overlap = chrono::Duration::seconds(RC_OVERLAP_SECONDS);
        let rcstart = (cursor.since - overlap).to_rfc3339_opts(SecondsFormat::Secs, true);
        let params = [
            ("action", "query"),
            ("list", "recentchanges"),
            ("rcprop", "title|ids|timestamp|loginfo"),
            ("rcdir", "newer"),
            ("rcstart", rcstart.as_str()),
            ("rctype", "edit|new|log"),
            ("rclimit", "max"),
        ];
        let mut untied_deletion = false;
        let mut cont: BTreeMap<String, String> = BTreeMap::new();
        loop {
            let mut all: Vec<(&str, &str)> = params.to_vec();
            all.extend(cont.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let answer = self.query(&all).await?;
            let next = continuation(&answer);
            let changes: Vec<RawChange> = match answer.pointer("/query/recentchanges") {
                None | Some(Value::Null) => Vec::new(),
                Some(list) => parse_json(list.clone(), &self.api, "query.recentchanges")?,
            };
            let mut touched: Vec<u64> = Vec::new();
            let mut queued = HashSet::new();
            for change in changes {
                let Some(at) = change.timestamp.as_deref().and_then(parse_timestamp) else {
                    warn!(api = %self.api, rcid = change.rcid, "recent change without a timestamp skipped");
                    continue;
                };
                if cursor.seen.contains_key(&change.rcid) {
                    continue;
                }
                cursor.seen.insert(change.rcid, at);
                if at > cursor.since {
                    cursor.since = at;
                }
                match self.touched_page(&change) {
                    Touched::Page(id) => {
                        if queued.insert(id) {
                            touched.push(id);
                        }
                    }
                    Touched::UntiedDeletion => {
                        warn!(api = %self.api, title = %change.title, "deletion without a page id; a traversal will find it");
                        untied_deletion = true;
                    }
                    Touched::Nothing => {}
                }
            }
            for ids in touched.chunks(self.batch) {
                let ids = ids.iter().map(u64::to_string).collect::<Vec<_>>().join("|");
                let lookup = [
                    ("action", "query"),
                    ("pageids", ids.as_str()),
                    ("prop", "info|revisions"),
                    ("inprop", "url"),
                    ("rvprop", "ids|timestamp|user"),
                ];
                let (pages, _) = self.page_batch(&lookup, BTreeMap::new()).await?;
                for page in pages {
                    self.emit(ctx, page, true, counts).await?;
                }
            }
            if next.is_none() && now > cursor.since {
                // Everything up to the server's time at the start of the run has been read.
                cursor.since = now;
            }
            let floor = cursor.since - overlap;
            cursor.seen.retain(|_, at| *at >= floor);
            ctx.sink
                .send(Change::Checkpoint {
                    cursor: write_cursor(&cursor)?,
                })
                .await?;
            match next {
                Some(next) if next == cont => {
                    return Err(ConnectorError::Unavailable {
                        reason: format!(
                            "the wiki at {} repeats the same continuation {next:?}",
                            self.api
                        ),
                    });
                }
                Some(next) => cont = next,
                None => return Ok(untied_deletion),
            }
        }
    }

    /// Which page a recent change concerns, if it can change what is indexed.
    fn touched_page(&self, change: &RawChange) -> Touched {
        let target_ns = change
            .logparams
            .get("target_ns")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok());
        let relevant = self.namespaces.contains(&change.ns)
            || target_ns.is_some_and(|ns| self.namespaces.contains(&ns));
        if !relevant {
            return Touched::Nothing;
        }
        let counts = match change.kind.as_str() {
            "edit" | "new" => true,
            "log" => change
                .logtype
                .as_deref()
                .is_some_and(|t| PAGE_LOG_TYPES.contains(&t)),
            _ => false,
        };
        match (counts, change.pageid) {
            (false, _) => Touched::Nothing,
            (true, 0)
                if change.logtype.as_deref() == Some("delete")
                    && change.logaction.as_deref() == Some("delete") =>
            {
                Touched::UntiedDeletion
            }
            (true, 0) => Touched::Nothing,
            (true, id) => Touched::Page(id),
        }
    }

    /// Emits the change for one listed or looked-up page.
    async fn emit(
        &self,
        ctx: &RunContext,
        page: RawPage,
        use_known: bool,
        counts: &mut Counts,
    ) -> Result<(), ConnectorError> {
        let Some(pageid) = page.pageid else {
            return Ok(());
        };
        let id = pageid.to_string();
        let ns = page.ns.unwrap_or(i32::MIN);
        let revid = page
            .lastrevid
            .or_else(|| page.revisions.first().and_then(|r| r.revid));
        let gone = page.missing || page.invalid;
        let not_indexed = page.redirect || !self.namespaces.contains(&ns);
        let Some(revid) = revid.filter(|_| !gone && !not_indexed) else {
            if !gone && !not_indexed {
                // Exists, but without a revision: nothing to show yet; the next run looks again.
                warn!(api = %self.api, pageid, "page without a revision skipped");
                return Ok(());
            }
            counts.deleted += 1;
            ctx.sink.send(Change::Delete { external_id: id }).await?;
            return Ok(());
        };
        let fingerprint = self.fingerprint(ns, page.title.as_deref().unwrap_or(""), revid);
        if use_known {
            ctx.known.load().await?;
        }
        if use_known && ctx.known.fingerprint(&id) == Some(fingerprint.as_str()) {
            counts.unchanged += 1;
            ctx.sink.send(Change::Unchanged { external_id: id }).await?;
            return Ok(());
        }
        match self.document(&page, pageid, ns, fingerprint).await {
            Ok(Some(doc)) => {
                counts.upserted += 1;
                counts.consecutive_failures = 0;
                ctx.sink.send(Change::Upsert(Box::new(doc))).await?;
            }
            Ok(None) => {
                // Deleted between the listing and the fetch.
                counts.deleted += 1;
                counts.consecutive_failures = 0;
                ctx.sink.send(Change::Delete { external_id: id }).await?;
            }
            Err((failure, error)) => {
                counts.failed += 1;
                ctx.sink
                    .send(Change::Failed {
                        external_id: id,
                        error: error.clone(),
                    })
                    .await?;
                match failure {
                    Failure::Wiki => {
                        counts.consecutive_failures += 1;
                        if counts.consecutive_failures >= MAX_CONSECUTIVE_FAILURES {
                            return Err(ConnectorError::Unavailable {
                                reason: format!(
                                    "{MAX_CONSECUTIVE_FAILURES} pages in a row could not be fetched from the wiki at {}; the last: {error}",
                                    self.api
                                ),
                            });
                        }
                    }
                    Failure::Page => counts.consecutive_failures = 0,
                }
            }
        }
        Ok(())
    }

    /// Fetches and converts one page; `None` when it no longer exists.
    async fn document(
        &self,
        page: &RawPage,
        pageid: u64,
        ns: i32,
        fingerprint: String,
    ) -> Result<Option<Document>, (Failure, String)> {
        let pageid_text = pageid.to_string();
        let answer = self
            .call(&[
                ("action", "parse"),
                ("pageid", pageid_text.as_str()),
                ("prop", "text|categories|displaytitle|revid"),
                ("disabletoc", "1"),
                ("disableeditsection", "1"),
                ("disablelimitreport", "1"),
            ])
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(CallError::Api { code, .. })
                if matches!(code.as_str(), "nosuchpageid" | "missingtitle") =>
            {
                return Ok(None);
            }
            Err(CallError::Api { code, info }) => {
                return Err((
                    Failure::Page,
                    format!("the wiki cannot render page {pageid}: {code}: {info}"),
                ));
            }
            Err(CallError::Http(e)) if e.status().is_some_and(|s| s.is_client_error()) => {
                return Err((Failure::Page, e.to_string()));
            }
            Err(e) => {
                let message = self.error(e).to_string();
                return Err((Failure::Wiki, message));
            }
        };
        let parsed: Parsed = answer
            .get("parse")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| {
                (
                    Failure::Page,
                    format!("the wiki's rendering of page {pageid} has an unexpected shape: {e}"),
                )
            })?
            .ok_or_else(|| {
                (
                    Failure::Page,
                    format!("the wiki rendered nothing for page {pageid}"),
                )
            })?;

        let (title, body, categories) = tokio::task::spawn_blocking(move || {
            let title =
                one_line(&fragment_text(&parsed.displaytitle)).or_else(|| one_line(&parsed.title));
            (title, page_text(&parsed.text), parsed.categories)
        })
        .await
        .map_err(|e| {
            (
                Failure::Page,
                format!("rendering task for page {pageid} failed: {e}"),
            )
        })?;
        // Hidden categories are maintenance markers ("pages with broken links"), not topics.
        let tags = categories
            .into_iter()
            .filter(|c| !c.hidden)
            .filter_map(|c| one_line(&c.category.replace('_', " ")))
            .collect::<Vec<_>>();
        let title = title
            .or_else(|| page.title.clone())
            .unwrap_or_else(|| format!("page {pageid}"));
        let revision = page.revisions.first();
        let url = page
            .canonicalurl
            .as_deref()
            .or(page.fullurl.as_deref())
            .and_then(|u| self.api.join(u).ok())
            .map(String::from);
        Ok(Some(Document {
            external_id: pageid.to_string(),
            kind: self.kind.clone(),
            title,
            body,
            url,
            author: revision
                .filter(|r| !r.userhidden)
                .and_then(|r| r.user.as_deref())
                .and_then(one_line),
            language: self.language.clone().or_else(|| {
                page.pagelanguage
                    .as_deref()
                    .and_then(extract::primary_language)
            }),
            created: None,
            updated: revision
                .and_then(|r| r.timestamp.as_deref())
                .and_then(parse_timestamp),
            acl: self.acl(ns).to_vec(),
            tags,
            fingerprint: Some(fingerprint),
            properties: BTreeMap::new(),
        }))
    }
}

/// Which page a recent change concerns.
enum Touched {
    Page(u64),
    /// A deletion the wiki did not tie to a page id (very old MediaWiki versions).
    UntiedDeletion,
    Nothing,
}

#[async_trait::async_trait]
impl Connector for MediaWiki {
    fn kind(&self) -> &'static str {
        "mediawiki"
    }

    async fn check(&self) -> Result<Vec<String>, ConnectorError> {
        let answer = self
            .query(&[
                ("action", "query"),
                ("meta", "siteinfo"),
                ("siprop", "general|namespaces|statistics"),
            ])
            .await?;
        let text = |pointer: &str| {
            answer
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        let mut notes = vec![format!(
            "wiki {:?} at {} runs {}",
            text("/query/general/sitename"),
            self.api,
            text("/query/general/generator")
        )];
        if let Some(login) = &self.login {
            notes.push(format!("logged in as {}", login.user));
        }
        if let Some(pages) = answer
            .pointer("/query/statistics/pages")
            .and_then(Value::as_u64)
        {
            notes.push(format!("the wiki has {pages} pages in all namespaces"));
        }
        let known: BTreeMap<i32, String> = answer
            .pointer("/query/namespaces")
            .and_then(Value::as_object)
            .map(|map| {
                map.values()
                    .filter_map(|ns| {
                        let id = i32::try_from(ns.get("id")?.as_i64()?).ok()?;
                        let name = ns.get("name").and_then(Value::as_str).unwrap_or("");
                        Some((id, name.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<i32> = self
            .namespaces
            .iter()
            .copied()
            .filter(|ns| !known.is_empty() && !known.contains_key(ns))
            .collect();
        if !missing.is_empty() {
            return Err(ConnectorError::Config(format!(
                "namespaces {missing:?} do not exist on the wiki at {}; it has {}",
                self.api,
                known
                    .iter()
                    .map(|(id, name)| if name.is_empty() {
                        format!("{id} (main)")
                    } else {
                        format!("{id} ({name})")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for &ns in &self.namespaces {
            let name = match known.get(&ns).map(String::as_str) {
                Some("") => "main".to_owned(),
                Some(name) => name.to_owned(),
                None => "?".to_owned(),
            };
            if self.acl(ns).is_empty() {
                notes.push(format!(
                    "namespace {ns} ({name}) has no access principals: its pages are visible to nobody"
                ));
            } else {
                notes.push(format!(
                    "namespace {ns} ({name}) is visible to {}",
                    self.acl(ns).join(", ")
                ));
            }
        }
        Ok(notes)
    }

    async fn run(&self, ctx: RunContext) -> Result<(), ConnectorError> {
        let previous: Option<Cursor> = match ctx.cursor.as_deref() {
            None => None,
            Some(raw) => serde_json::from_str(raw)
                .map_err(|e| {
                    warn!(source = %ctx.source_id, error = %e, "unreadable mediawiki cursor, listing every page");
                })
                .ok(),
        };
        let probe = self.probe().await?;
        let mut counts = Counts::default();
        let reason = match (&previous, ctx.full) {
            (_, true) => Some("a full sync was asked for"),
            (None, false) => Some("there is no cursor"),
            (Some(cursor), false) if cursor.namespaces != self.namespaces => {
                Some("the configured namespaces changed")
            }
            (Some(cursor), false)
                if probe.now.signed_duration_since(cursor.since)
                    > chrono::Duration::from_std(self.rc_max_age)
                        .unwrap_or(chrono::Duration::MAX) =>
            {
                Some("the cursor is older than rc_max_age")
            }
            (Some(cursor), false)
                // The wiki forgets its oldest changes first: while one from before the
                // cursor survives, every later one does too.
                if probe.oldest_change.is_some_and(|oldest| oldest > cursor.since) =>
            {
                Some("the wiki no longer has the recent changes since the cursor")
            }
            _ => None,
        };
        let traversed = match (reason, previous) {
            (None, Some(cursor)) => {
                let untied = self
                    .follow_changes(&ctx, cursor, probe.now, &mut counts)
                    .await?;
                if untied {
                    self.traverse(&ctx, probe.now, true, &mut counts).await?;
                }
                untied
            }
            (reason, _) => {
                info!(source = %ctx.source_id, reason = reason.unwrap_or("no cursor"), "mediawiki full traversal");
                self.traverse(&ctx, probe.now, !ctx.full, &mut counts)
                    .await?;
                true
            }
        };
        let nobody: Vec<i32> = self
            .namespaces
            .iter()
            .copied()
            .filter(|&ns| self.acl(ns).is_empty())
            .collect();
        if !nobody.is_empty() && counts.upserted > 0 {
            warn!(source = %ctx.source_id, namespaces = ?nobody, "mediawiki namespaces without access: their pages are visible to nobody");
        }
        info!(
            source = %ctx.source_id,
            traversed,
            upserted = counts.upserted,
            unchanged = counts.unchanged,
            deleted = counts.deleted,
            failed = counts.failed,
            "mediawiki sync complete"
        );
        Ok(())
    }
}

/// The `continue` object of an answer, as strings.
fn continuation(answer: &Value) -> Option<BTreeMap<String, String>> {
    let object = answer.get("continue")?.as_object()?;
    Some(
        object
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect(),
    )
}

fn parse_json<T: DeserializeOwned>(
    value: Value,
    api: &Url,
    what: &str,
) -> Result<T, ConnectorError> {
    serde_json::from_value(value).map_err(|e| ConnectorError::Unavailable {
        reason: format!("the wiki at {api} answered {what} in an unexpected shape: {e}"),
    })
}

/// Adds what `more` knows to `page` (properties of one page can arrive in several parts).
fn merge(page: &mut RawPage, more: RawPage) {
    page.ns = page.ns.or(more.ns);
    page.title = page.title.take().or(more.title);
    page.missing |= more.missing;
    page.invalid |= more.invalid;
    page.redirect |= more.redirect;
    page.lastrevid = page.lastrevid.or(more.lastrevid);
    page.canonicalurl = page.canonicalurl.take().or(more.canonicalurl);
    page.fullurl = page.fullurl.take().or(more.fullurl);
    page.pagelanguage = page.pagelanguage.take().or(more.pagelanguage);
    if page.revisions.is_empty() {
        page.revisions = more.revisions;
    }
}

fn write_cursor(cursor: &Cursor) -> Result<String, ConnectorError> {
    serde_json::to_string(cursor)
        .map_err(|e| ConnectorError::Internal(format!("cannot write mediawiki cursor: {e}")))
}

/// MediaWiki's ISO 8601 timestamps ("2025-10-14T07:30:00Z").
fn parse_timestamp(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The text of a rendered page: the parser output without edit links, tables of contents,
/// navigation boxes and footnote markers. Blocking.
///
/// The HTML comes from MediaWiki's own HTML5 tree builder, which has already built this very
/// tree to render the page, so its nesting is as deep as the wiki could afford.
fn page_text(html: &str) -> String {
    let mut document = Html::parse_fragment(html);
    if let Ok(selector) = Selector::parse(NOT_CONTENT) {
        let chrome: Vec<_> = document.select(&selector).map(|e| e.id()).collect();
        for id in chrome {
            if let Some(mut node) = document.tree.get_mut(id) {
                node.detach();
            }
        }
    }
    let cleaned = document.root_element().inner_html();
    let mut text = normalise_whitespace(&fragment_text(&cleaned));
    truncate_chars(&mut text, MAX_TEXT_CHARS);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_pages_lose_their_chrome() {
        let html = r##"<div class="mw-parser-output"><p>Velkommen til <b>håndbogen</b>.</p>
<div id="toc" class="toc"><div class="toctitle"><h2>Indhold</h2></div><ul><li>1 Ferie</li></ul></div>
<h2><span class="mw-headline" id="Ferie">Ferie</span><span class="mw-editsection"><span class="mw-editsection-bracket">[</span><a href="/w/index.php?title=X&amp;action=edit&amp;section=1">redigér</a><span class="mw-editsection-bracket">]</span></span></h2>
<p>Seks uger<sup id="cite_ref-1" class="reference"><a href="#cite_note-1">[1]</a></sup> &amp; en dag.</p>
<table class="navbox"><tr><td>Personale · Løn · Ferie</td></tr></table>
<style>.x{color:red}</style>
</div>"##;
        assert_eq!(
            page_text(html),
            "Velkommen til håndbogen.\n\nFerie\n\nSeks uger & en dag."
        );
    }

    #[test]
    fn recent_changes_touch_pages_by_id() {
        let params: MediaWikiParams = serde_json::from_value(
            serde_json::json!({"api": "http://127.0.0.1:1/api.php", "namespaces": [0, 12]}),
        )
        .unwrap();
        let wiki = MediaWiki::with_env(&params, Path::new("/"), |_| None).unwrap();
        let change = |json: Value| -> RawChange { serde_json::from_value(json).unwrap() };
        let cases = [
            (
                serde_json::json!({"type": "edit", "ns": 0, "pageid": 7}),
                Some(7),
            ),
            (
                serde_json::json!({"type": "new", "ns": 2, "pageid": 8}),
                None,
            ),
            (
                serde_json::json!({"type": "log", "ns": 0, "pageid": 9, "logtype": "delete", "logaction": "delete"}),
                Some(9),
            ),
            (
                serde_json::json!({"type": "log", "ns": 2, "pageid": 10, "logtype": "move", "logaction": "move", "logparams": {"target_ns": 12, "target_title": "Hjælp:X"}}),
                Some(10),
            ),
            (
                serde_json::json!({"type": "log", "ns": 0, "pageid": 11, "logtype": "protect", "logaction": "protect"}),
                None,
            ),
        ];
        for (json, expected) in cases {
            let got = match wiki.touched_page(&change(json.clone())) {
                Touched::Page(id) => Some(id),
                _ => None,
            };
            assert_eq!(got, expected, "{json}");
        }
        let untied = change(
            serde_json::json!({"type": "log", "ns": 0, "pageid": 0, "logtype": "delete", "logaction": "delete"}),
        );
        assert!(matches!(
            wiki.touched_page(&untied),
            Touched::UntiedDeletion
        ));
    }
}
