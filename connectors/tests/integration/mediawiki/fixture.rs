//! A MediaWiki Action API on 127.0.0.1 for the tests and the benchmark, answering as
//! MediaWiki 1.39 does with `format=json&formatversion=2` (shapes taken from a real 1.39 wiki):
//! `generator=allpages` with `prop=info|revisions` and `continue`, `pageids=` look-ups,
//! `list=recentchanges` with edit, new and log rows (delete, restore, move), `action=parse`
//! with edit-section links, a table of contents and categories, `curtimestamp`, the login
//! token flow with a bot password and a session cookie, and a private mode that answers
//! anonymous reads with `readapidenied`.
//!
//! The wiki keeps its own clock (advanced one second per change) so that tests can place
//! changes before or after a sync, and it can be told to fail: a 500 from a given listing
//! request on, 429 with `Retry-After`, "max" meaning a small limit so that every listing
//! pages, revisions split over two answers as MediaWiki does when a batch's properties do
//! not fit, and a legacy mode that ignores `disabletoc` / `disableeditsection` with the
//! "Unrecognized parameters" warning of older versions.

// Shared with the benchmark, which is not a test target: unwraps are how fixtures fail.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

/// The path of api.php on the fixture host.
pub const API_PATH: &str = "/w/api.php";
pub const BOT_USER: &str = "Samlebot@samle";
pub const BOT_PASSWORD: &str = "q3v0ld1b4h8n2m6k5j7g9f1d3s5a7p9o";
const SESSION_COOKIE: &str = "fixturewiki_session";

/// What MediaWiki leaves unescaped in page URLs (`wfUrlencode`).
const TITLE_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'-')
    .remove(b'.')
    .remove(b':')
    .remove(b'/')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'(')
    .remove(b')')
    .remove(b',')
    .remove(b';')
    .remove(b'@')
    .remove(b'$');

/// Namespace numbers and their Danish names.
const NAMESPACES: &[(i32, &str)] = &[
    (0, ""),
    (1, "Diskussion"),
    (2, "Bruger"),
    (4, "Samle"),
    (6, "Fil"),
    (12, "Hjælp"),
    (14, "Kategori"),
];

#[derive(Clone, Debug)]
pub struct Revision {
    pub revid: u64,
    pub timestamp: DateTime<Utc>,
    pub user: String,
    /// The page's rendered content without chrome: headings as plain `<h2>`.
    pub html: String,
    /// (name, hidden)
    pub categories: Vec<(String, bool)>,
}

#[derive(Clone, Debug)]
pub struct Page {
    pub id: u64,
    pub ns: i32,
    pub title: String,
    pub redirect: bool,
    pub revisions: Vec<Revision>,
}

#[derive(Clone, Debug)]
struct RecentChange {
    rcid: u64,
    kind: &'static str,
    ns: i32,
    title: String,
    pageid: u64,
    revid: u64,
    old_revid: u64,
    timestamp: DateTime<Utc>,
    log: Option<(u64, &'static str, &'static str, Value)>,
}

#[derive(Default)]
struct Session {
    token: Option<String>,
    user: Option<String>,
}

/// Everything the wiki holds and how it behaves.
pub struct Wiki {
    pub pages: BTreeMap<u64, Page>,
    /// Deleted pages by title.
    archive: BTreeMap<String, Page>,
    rc: Vec<RecentChange>,
    next_page: u64,
    next_rev: u64,
    next_rc: u64,
    next_log: u64,
    pub clock: DateTime<Utc>,
    /// The scheme and host the wiki puts in its URLs (`$wgCanonicalServer`).
    pub server: String,
    /// Anonymous users may not read.
    pub private: bool,
    /// What `limit=max` means (MediaWiki: 500, or 5000 with `apihighlimits`).
    pub max_limit: usize,
    /// Answer each listing batch's revisions in two parts.
    pub split_revisions: bool,
    /// Ignore `disabletoc` and `disableeditsection`, warning about them.
    pub legacy_parse: bool,
    /// Answer 500 to every listing request after this many.
    pub fail_listing_after: Option<usize>,
    /// Answer 429 with `Retry-After: 1` to this many requests.
    pub throttle: usize,
    listings: usize,
    sessions: HashMap<String, Session>,
    next_session: u64,
    /// Every request: `action` and the interesting parameters.
    pub log: Vec<String>,
    pub requests: u64,
    pub bytes: u64,
    pub logins: u64,
}

pub type Shared = Arc<Mutex<Wiki>>;

impl Wiki {
    pub fn new() -> Wiki {
        Wiki {
            pages: BTreeMap::new(),
            archive: BTreeMap::new(),
            rc: Vec::new(),
            next_page: 1,
            next_rev: 1,
            next_rc: 1,
            next_log: 1,
            clock: DateTime::parse_from_rfc3339("2025-10-01T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            server: "http://wiki.invalid".to_owned(),
            private: false,
            max_limit: 500,
            split_revisions: false,
            legacy_parse: false,
            fail_listing_after: None,
            throttle: 0,
            listings: 0,
            sessions: HashMap::new(),
            next_session: 1,
            log: Vec::new(),
            requests: 0,
            bytes: 0,
            logins: 0,
        }
    }

    pub fn shared(self) -> Shared {
        Arc::new(Mutex::new(self))
    }

    /// Moves the wiki's clock on.
    pub fn advance(&mut self, by: Duration) {
        self.clock += by;
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.clock += Duration::seconds(1);
        self.clock
    }

    pub fn id_of(&self, title: &str) -> Option<u64> {
        self.pages.values().find(|p| p.title == title).map(|p| p.id)
    }

    /// Creates or edits a page; `html` is its rendered content, headings as plain `<h2>`.
    pub fn edit(&mut self, title: &str, user: &str, html: &str, categories: &[&str]) -> u64 {
        let timestamp = self.tick();
        let revid = self.next_rev;
        self.next_rev += 1;
        let revision = Revision {
            revid,
            timestamp,
            user: user.to_owned(),
            html: html.to_owned(),
            categories: categories
                .iter()
                .map(|c| match c.strip_prefix("hidden:") {
                    Some(name) => (name.to_owned(), true),
                    None => ((*c).to_owned(), false),
                })
                .collect(),
        };
        let (ns, _) = split_title(title);
        let (id, old_revid, kind) = match self.id_of(title) {
            Some(id) => {
                let page = self.pages.get_mut(&id).unwrap();
                let old = page.revisions.last().map_or(0, |r| r.revid);
                page.revisions.push(revision);
                page.redirect = false;
                (id, old, "edit")
            }
            None => {
                let id = self.next_page;
                self.next_page += 1;
                self.pages.insert(
                    id,
                    Page {
                        id,
                        ns,
                        title: title.to_owned(),
                        redirect: false,
                        revisions: vec![revision],
                    },
                );
                (id, 0, "new")
            }
        };
        self.push_rc(kind, ns, title, id, revid, old_revid, timestamp, None);
        id
    }

    /// Deletes a page: its recent changes go with it, as in MediaWiki, and a log row stays.
    pub fn delete(&mut self, title: &str) {
        let id = self.id_of(title).unwrap();
        let page = self.pages.remove(&id).unwrap();
        self.rc.retain(|rc| rc.pageid != id || rc.log.is_some());
        let timestamp = self.tick();
        let log = self.next_log();
        self.push_rc(
            "log",
            page.ns,
            title,
            id,
            0,
            0,
            timestamp,
            Some((log, "delete", "delete", json!({}))),
        );
        self.archive.insert(title.to_owned(), page);
    }

    /// Restores a deleted page with its old page id (MediaWiki 1.28 and later).
    pub fn restore(&mut self, title: &str) {
        let page = self.archive.remove(title).unwrap();
        let (id, ns) = (page.id, page.ns);
        let revisions = page.revisions.len();
        self.pages.insert(id, page);
        let timestamp = self.tick();
        let log = self.next_log();
        self.push_rc(
            "log",
            ns,
            title,
            id,
            0,
            0,
            timestamp,
            Some((
                log,
                "delete",
                "restore",
                json!({"count": {"revisions": revisions, "files": 0}}),
            )),
        );
    }

    /// Moves a page, leaving a redirect (a new page, with no recent change of its own).
    pub fn move_page(&mut self, from: &str, to: &str) {
        let id = self.id_of(from).unwrap();
        let (to_ns, _) = split_title(to);
        let timestamp = self.tick();
        // The moved page gets a null revision (same content, the move as its comment).
        let null_rev = self.next_rev;
        let redirect_rev = self.next_rev + 1;
        self.next_rev += 2;
        let old_ns = {
            let page = self.pages.get_mut(&id).unwrap();
            let old_ns = page.ns;
            page.title = to.to_owned();
            page.ns = to_ns;
            let mut null = page.revisions.last().unwrap().clone();
            null.revid = null_rev;
            null.timestamp = timestamp;
            null.user = "Admin".to_owned();
            page.revisions.push(null);
            old_ns
        };
        let redirect_id = self.next_page;
        self.next_page += 1;
        self.pages.insert(
            redirect_id,
            Page {
                id: redirect_id,
                ns: old_ns,
                title: from.to_owned(),
                redirect: true,
                revisions: vec![Revision {
                    revid: redirect_rev,
                    timestamp,
                    user: "Admin".to_owned(),
                    html: format!("<div class=\"redirectMsg\"><p>Omdiriger til:</p><ul class=\"redirectText\"><li><a href=\"/wiki/{to}\">{to}</a></li></ul></div>"),
                    categories: Vec::new(),
                }],
            },
        );
        let log = self.next_log();
        self.push_rc(
            "log",
            old_ns,
            from,
            id,
            null_rev,
            0,
            timestamp,
            Some((
                log,
                "move",
                "move",
                json!({"target_ns": to_ns, "target_title": to, "suppressredirect": false}),
            )),
        );
    }

    /// Adds a redirect page directly (as an import would).
    pub fn add_redirect(&mut self, title: &str, to: &str) -> u64 {
        let id = self.edit(title, "Admin", &format!("<p>Omdiriger til {to}</p>"), &[]);
        self.pages.get_mut(&id).unwrap().redirect = true;
        id
    }

    /// Moves the newest recent change (and its revision) back in time, as MediaWiki's deferred
    /// updates can write a change row after newer ones are already visible.
    pub fn backdate_last_change(&mut self, by: Duration) {
        let rc = self.rc.last_mut().unwrap();
        rc.timestamp -= by;
        let (pageid, revid, at) = (rc.pageid, rc.revid, rc.timestamp);
        if let Some(rev) = self
            .pages
            .get_mut(&pageid)
            .and_then(|p| p.revisions.iter_mut().find(|r| r.revid == revid))
        {
            rev.timestamp = at;
        }
    }

    /// Forgets recent changes older than `before`, as `$wgRCMaxAge` does.
    pub fn purge_recent_changes(&mut self, before: DateTime<Utc>) {
        self.rc.retain(|rc| rc.timestamp >= before);
    }

    /// Ends every session, as an expired session cookie would.
    pub fn expire_sessions(&mut self) {
        self.sessions.clear();
    }

    fn next_log(&mut self) -> u64 {
        let id = self.next_log;
        self.next_log += 1;
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn push_rc(
        &mut self,
        kind: &'static str,
        ns: i32,
        title: &str,
        pageid: u64,
        revid: u64,
        old_revid: u64,
        timestamp: DateTime<Utc>,
        log: Option<(u64, &'static str, &'static str, Value)>,
    ) {
        let rcid = self.next_rc;
        self.next_rc += 1;
        self.rc.push(RecentChange {
            rcid,
            kind,
            ns,
            title: title.to_owned(),
            pageid,
            revid,
            old_revid,
            timestamp,
            log,
        });
    }

    fn url_of(&self, title: &str) -> String {
        format!(
            "{}/wiki/{}",
            self.server,
            utf8_percent_encode(&title.replace(' ', "_"), TITLE_ESCAPE)
        )
    }

    fn page_info(&self, page: &Page) -> Value {
        let last = page.revisions.last().unwrap();
        let mut info = json!({
            "pageid": page.id,
            "ns": page.ns,
            "title": page.title,
            "contentmodel": "wikitext",
            "pagelanguage": "da",
            "pagelanguagehtmlcode": "da",
            "pagelanguagedir": "ltr",
            "touched": ts(last.timestamp),
            "lastrevid": last.revid,
            "length": last.html.len(),
            "fullurl": self.url_of(&page.title),
            "editurl": format!("{}/w/index.php?title={}&action=edit", self.server, utf8_percent_encode(&page.title.replace(' ', "_"), TITLE_ESCAPE)),
            "canonicalurl": self.url_of(&page.title),
        });
        if page.redirect {
            info["redirect"] = json!(true);
        }
        info
    }
}

impl Default for Wiki {
    fn default() -> Self {
        Wiki::new()
    }
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The namespace number and the title without its prefix.
fn split_title(title: &str) -> (i32, &str) {
    if let Some((prefix, rest)) = title.split_once(':') {
        for &(ns, name) in NAMESPACES {
            if ns != 0 && name == prefix {
                return (ns, rest);
            }
        }
    }
    (0, title)
}

/// The sort key of `list=allpages`: the title without prefix, with underscores.
fn db_key(title: &str) -> String {
    split_title(title).1.replace(' ', "_")
}

/// The router of the wiki: api.php only.
pub fn router(wiki: Shared) -> Router {
    Router::new().route(API_PATH, any(api)).with_state(wiki)
}

/// Serves the wiki on 127.0.0.1 over plain HTTP; the wiki's URLs name this address.
pub async fn serve(wiki: Shared) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    wiki.lock().unwrap().server = format!("http://{addr}");
    let app = router(wiki);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn api(
    State(wiki): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: String,
) -> Response {
    let mut params: BTreeMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    if method == Method::POST {
        params.extend(url::form_urlencoded::parse(body.as_bytes()).into_owned());
    }
    let session = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned());

    let mut wiki = wiki.lock().unwrap();
    wiki.requests += 1;
    let summary = ["action", "list", "generator", "meta", "pageids", "pageid"]
        .iter()
        .filter_map(|k| params.get(*k).map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join("&");
    wiki.log.push(summary);
    if wiki.throttle > 0 {
        wiki.throttle -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "Too many requests",
        )
            .into_response();
    }
    let (status, mut extra, answer) = answer(&mut wiki, &method, &params, session);
    let text = answer.to_string();
    wiki.bytes += text.len() as u64;
    extra.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    (status, extra, text).into_response()
}

fn error(code: &str, info: &str) -> Value {
    json!({"error": {"code": code, "info": info, "docref": "See /w/api.php for API usage."}})
}

fn answer(
    wiki: &mut Wiki,
    method: &Method,
    params: &BTreeMap<String, String>,
    session: Option<String>,
) -> (StatusCode, HeaderMap, Value) {
    let mut headers = HeaderMap::new();
    let get = |k: &str| params.get(k).map(String::as_str);
    if get("format") != Some("json") || get("formatversion") != Some("2") {
        return (
            StatusCode::OK,
            headers,
            error(
                "fixture",
                "this fixture only speaks format=json&formatversion=2",
            ),
        );
    }
    let user = session
        .as_ref()
        .and_then(|s| wiki.sessions.get(s))
        .and_then(|s| s.user.clone());
    let mut value = match get("action") {
        Some("login") => {
            if *method != Method::POST {
                return (
                    StatusCode::OK,
                    headers,
                    error(
                        "mustpostparams",
                        "The following parameters were found in the query string, but must be in the POST body: lgpassword, lgtoken.",
                    ),
                );
            }
            let token = session
                .as_ref()
                .and_then(|s| wiki.sessions.get(s))
                .and_then(|s| s.token.clone());
            if token.is_none() || token.as_deref() != get("lgtoken") {
                json!({"login": {"result": "WrongToken"}})
            } else if get("lgname") == Some(BOT_USER) && get("lgpassword") == Some(BOT_PASSWORD) {
                // MediaWiki gives a logged-in session a new id.
                wiki.logins += 1;
                if let Some(old) = &session {
                    wiki.sessions.remove(old);
                }
                let id = new_session(wiki, &mut headers);
                wiki.sessions.get_mut(&id).unwrap().user = Some("Samlebot".to_owned());
                json!({"login": {"result": "Success", "lguserid": 2, "lgusername": "Samlebot"}})
            } else {
                json!({"login": {"result": "Failed", "reason": "Incorrect username or password entered. Please try again."}})
            }
        }
        Some("query") if get("meta") == Some("tokens") && get("type") == Some("login") => {
            let id = match session.filter(|s| wiki.sessions.contains_key(s)) {
                Some(id) => id,
                None => new_session(wiki, &mut headers),
            };
            let token = format!("{:040x}+\\", wiki.next_session * 7919);
            wiki.sessions.get_mut(&id).unwrap().token = Some(token.clone());
            json!({"batchcomplete": true, "query": {"tokens": {"logintoken": token}}})
        }
        Some(_) if get("assert") == Some("user") && user.is_none() => error(
            "assertuserfailed",
            "You are no longer logged in, so the action could not be completed.",
        ),
        Some(_) if wiki.private && user.is_none() => error(
            "readapidenied",
            "You need read permission to use this module.",
        ),
        Some("query") => match query(wiki, params) {
            Ok(value) => value,
            Err(status) => return (status, headers, json!({})),
        },
        Some("parse") => parse(wiki, params),
        Some(other) => error(
            "badvalue",
            &format!("Unrecognized value for parameter \"action\": {other}."),
        ),
        None => error("noaction", "No action given."),
    };
    if get("curtimestamp") == Some("1") {
        value["curtimestamp"] = json!(ts(wiki.clock));
    }
    (StatusCode::OK, headers, value)
}

fn new_session(wiki: &mut Wiki, headers: &mut HeaderMap) -> String {
    let id = format!("s{:032x}", wiki.next_session);
    wiki.next_session += 1;
    wiki.sessions.insert(id.clone(), Session::default());
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!("{SESSION_COOKIE}={id}; path=/; HttpOnly")).unwrap(),
    );
    id
}

fn limit(wiki: &Wiki, value: Option<&str>, default: usize) -> usize {
    match value {
        Some("max") => wiki.max_limit,
        Some(n) => n.parse::<usize>().unwrap_or(default).min(wiki.max_limit),
        None => default,
    }
}

fn query(wiki: &mut Wiki, params: &BTreeMap<String, String>) -> Result<Value, StatusCode> {
    let get = |k: &str| params.get(k).map(String::as_str);
    if get("meta") == Some("siteinfo") {
        let namespaces: serde_json::Map<String, Value> = NAMESPACES
            .iter()
            .map(|(id, name)| {
                (
                    id.to_string(),
                    json!({"id": id, "case": "first-letter", "name": name, "subpages": *id != 0, "content": *id == 0}),
                )
            })
            .collect();
        return Ok(json!({"batchcomplete": true, "query": {
            "general": {
                "mainpage": "Forside",
                "sitename": "Samle Fixture",
                "generator": "MediaWiki 1.39.17",
                "server": wiki.server,
                "articlepath": "/wiki/$1",
                "scriptpath": "/w",
                "lang": "da",
                "time": ts(wiki.clock),
            },
            "namespaces": namespaces,
            "statistics": {"pages": wiki.pages.len(), "articles": wiki.pages.len()},
        }}));
    }
    if get("list") == Some("recentchanges") {
        return Ok(recent_changes(wiki, params));
    }
    if get("generator") == Some("allpages") {
        wiki.listings += 1;
        if wiki
            .fail_listing_after
            .is_some_and(|after| wiki.listings > after)
        {
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
        return Ok(all_pages(wiki, params));
    }
    if let Some(ids) = get("pageids") {
        let pages: Vec<Value> = ids
            .split('|')
            .filter_map(|id| id.parse::<u64>().ok())
            .map(|id| match wiki.pages.get(&id) {
                Some(page) => with_revision(wiki.page_info(page), page),
                None => json!({"pageid": id, "missing": true}),
            })
            .collect();
        return Ok(json!({"batchcomplete": true, "query": {"pages": pages}}));
    }
    Ok(json!({"batchcomplete": true}))
}

fn with_revision(mut info: Value, page: &Page) -> Value {
    let last = page.revisions.last().unwrap();
    let parent = page
        .revisions
        .len()
        .checked_sub(2)
        .map_or(0, |i| page.revisions[i].revid);
    info["revisions"] = json!([{
        "revid": last.revid,
        "parentid": parent,
        "user": last.user,
        "timestamp": ts(last.timestamp),
    }]);
    info
}

fn all_pages(wiki: &Wiki, params: &BTreeMap<String, String>) -> Value {
    let get = |k: &str| params.get(k).map(String::as_str);
    let ns: i32 = get("gapnamespace").unwrap_or("0").parse().unwrap_or(0);
    let limit = limit(wiki, get("gaplimit"), 10);
    let from = get("gapcontinue").unwrap_or("");
    let mut listed: Vec<&Page> = wiki
        .pages
        .values()
        .filter(|p| p.ns == ns)
        .filter(|p| match get("gapfilterredir") {
            Some("nonredirects") => !p.redirect,
            Some("redirects") => p.redirect,
            _ => true,
        })
        .filter(|p| db_key(&p.title).as_str() >= from)
        .collect();
    listed.sort_by_key(|p| db_key(&p.title));
    let next = listed.get(limit).map(|p| db_key(&p.title));
    listed.truncate(limit);

    let props = get("prop").unwrap_or("");
    let wants_info = props.split('|').any(|p| p == "info");
    let wants_revisions = props.split('|').any(|p| p == "revisions");
    // The second part of a split batch starts its revisions at this page id.
    let revisions_from: Option<u64> = get("rvcontinue").and_then(|v| v.parse().ok());
    let split_at = if wiki.split_revisions && revisions_from.is_none() && listed.len() > 1 {
        Some(listed[listed.len() / 2].id)
    } else {
        None
    };
    let mut ordered = listed.clone();
    ordered.sort_by_key(|p| p.id);
    let pages: Vec<Value> = ordered
        .iter()
        .map(|page| {
            let mut value = if wants_info {
                wiki.page_info(page)
            } else {
                json!({"pageid": page.id, "ns": page.ns, "title": page.title})
            };
            let in_part = match (split_at, revisions_from) {
                (Some(at), _) => page.id < at,
                (None, Some(from)) => page.id >= from,
                (None, None) => true,
            };
            if wants_revisions && in_part {
                value = with_revision(value, page);
            }
            value
        })
        .collect();
    let mut answer = json!({"query": {"pages": pages}});
    if let Some(at) = split_at {
        let mut cont = json!({"rvcontinue": at.to_string(), "continue": "gapcontinue||"});
        if !from.is_empty() {
            cont["gapcontinue"] = json!(from);
        }
        answer["continue"] = cont;
        return answer;
    }
    answer["batchcomplete"] = json!(true);
    if let Some(next) = next {
        answer["continue"] = json!({"gapcontinue": next, "continue": "gapcontinue||"});
    }
    answer
}

fn recent_changes(wiki: &Wiki, params: &BTreeMap<String, String>) -> Value {
    let get = |k: &str| params.get(k).map(String::as_str);
    let newer = get("rcdir") == Some("newer");
    let start =
        get("rcstart").map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
    let types: Vec<&str> = get("rctype")
        .map(|t| t.split('|').collect())
        .unwrap_or_else(|| vec!["edit", "new", "log", "categorize", "external"]);
    let props: Vec<&str> = get("rcprop")
        .unwrap_or("title|timestamp|ids")
        .split('|')
        .collect();
    let limit = limit(wiki, get("rclimit"), 10);
    // rccontinue is "YYYYMMDDHHMMSS|rcid" of the first row of the next page.
    let cont = get("rccontinue").and_then(|c| {
        let (at, id) = c.split_once('|')?;
        let at = chrono::NaiveDateTime::parse_from_str(at, "%Y%m%d%H%M%S")
            .ok()?
            .and_utc();
        Some((at, id.parse::<u64>().ok()?))
    });
    let mut rows: Vec<&RecentChange> = wiki
        .rc
        .iter()
        .filter(|rc| types.contains(&rc.kind))
        .filter(|rc| match (start, newer) {
            (Some(start), true) => rc.timestamp >= start,
            (Some(start), false) => rc.timestamp <= start,
            (None, _) => true,
        })
        .collect();
    rows.sort_by_key(|rc| (rc.timestamp, rc.rcid));
    if !newer {
        rows.reverse();
    }
    if let Some(cont) = cont {
        rows.retain(|rc| {
            if newer {
                (rc.timestamp, rc.rcid) >= cont
            } else {
                (rc.timestamp, rc.rcid) <= cont
            }
        });
    }
    let next = rows
        .get(limit)
        .map(|rc| format!("{}|{}", rc.timestamp.format("%Y%m%d%H%M%S"), rc.rcid));
    rows.truncate(limit);
    let list: Vec<Value> = rows
        .iter()
        .map(|rc| {
            let mut row = json!({"type": rc.kind});
            if props.contains(&"title") {
                row["ns"] = json!(rc.ns);
                row["title"] = json!(rc.title);
            }
            if props.contains(&"ids") {
                row["pageid"] = json!(rc.pageid);
                row["revid"] = json!(rc.revid);
                row["old_revid"] = json!(rc.old_revid);
                row["rcid"] = json!(rc.rcid);
            }
            if props.contains(&"timestamp") {
                row["timestamp"] = json!(ts(rc.timestamp));
            }
            if props.contains(&"loginfo")
                && let Some((logid, logtype, logaction, logparams)) = &rc.log
            {
                row["logid"] = json!(logid);
                row["logtype"] = json!(logtype);
                row["logaction"] = json!(logaction);
                row["logparams"] = logparams.clone();
            }
            row
        })
        .collect();
    let mut answer = json!({"batchcomplete": true, "query": {"recentchanges": list}});
    if let Some(next) = next {
        answer["continue"] = json!({"rccontinue": next, "continue": "-||"});
    }
    answer
}

fn parse(wiki: &Wiki, params: &BTreeMap<String, String>) -> Value {
    let get = |k: &str| params.get(k).map(String::as_str);
    let Some(page) = get("pageid")
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| wiki.pages.get(&id))
    else {
        return error(
            "nosuchpageid",
            &format!("There is no page with ID {}.", get("pageid").unwrap_or("")),
        );
    };
    let last = page.revisions.last().unwrap();
    let honour = !wiki.legacy_parse;
    let edit_links = !(honour && get("disableeditsection") == Some("1"));
    let toc = !(honour && get("disabletoc") == Some("1"));
    let text = render(&page.title, &last.html, edit_links, toc);
    let (ns, main) = split_title(&page.title);
    let displaytitle = if ns == 0 {
        format!("<span class=\"mw-page-title-main\">{main}</span>")
    } else {
        let prefix = NAMESPACES.iter().find(|(n, _)| *n == ns).unwrap().1;
        format!(
            "<span class=\"mw-page-title-namespace\">{prefix}</span><span class=\"mw-page-title-separator\">:</span><span class=\"mw-page-title-main\">{main}</span>"
        )
    };
    let categories: Vec<Value> = last
        .categories
        .iter()
        .map(|(name, hidden)| {
            let mut c = json!({"sortkey": "", "category": name.replace(' ', "_")});
            if *hidden {
                c["hidden"] = json!(true);
            }
            c
        })
        .collect();
    let mut answer = json!({"parse": {
        "title": page.title,
        "pageid": page.id,
        "revid": last.revid,
        "text": text,
        "categories": categories,
        "displaytitle": displaytitle,
    }});
    if wiki.legacy_parse {
        answer["warnings"] = json!({"main": {"warnings": "Unrecognized parameters: disabletoc, disableeditsection, disablelimitreport."}});
    }
    answer
}

/// The parser output for `html`: headings with anchors and edit links, a table of contents
/// when there are four or more headings, the limit report comment.
fn render(title: &str, html: &str, edit_links: bool, toc: bool) -> String {
    let mut out = String::new();
    let mut headings = Vec::new();
    let mut rest = html;
    let mut section = 0;
    while let Some(start) = rest.find("<h2>") {
        let Some(end) = rest[start..].find("</h2>") else {
            break;
        };
        let heading = &rest[start + 4..start + end];
        section += 1;
        out.push_str(&rest[..start]);
        let anchor = heading.replace(' ', "_");
        out.push_str(&format!(
            "<h2><span class=\"mw-headline\" id=\"{anchor}\">{heading}</span>"
        ));
        if edit_links {
            out.push_str(&format!(
                "<span class=\"mw-editsection\"><span class=\"mw-editsection-bracket\">[</span><a href=\"/w/index.php?title={}&amp;action=edit&amp;section={section}\" title=\"Redigér afsnit: {heading}\">redigér</a><span class=\"mw-editsection-bracket\">]</span></span>",
                utf8_percent_encode(&title.replace(' ', "_"), TITLE_ESCAPE)
            ));
        }
        out.push_str("</h2>");
        headings.push(heading.to_owned());
        rest = &rest[start + end + 5..];
    }
    out.push_str(rest);
    if toc && headings.len() >= 4 {
        let items: String = headings
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "<li class=\"toclevel-1 tocsection-{n}\"><a href=\"#{h}\"><span class=\"tocnumber\">{n}</span> <span class=\"toctext\">{h}</span></a></li>",
                    n = i + 1
                )
            })
            .collect();
        let table = format!(
            "<div id=\"toc\" class=\"toc\" role=\"navigation\" aria-labelledby=\"mw-toc-heading\"><input type=\"checkbox\" role=\"button\" id=\"toctogglecheckbox\" class=\"toctogglecheckbox\" style=\"display:none\" /><div class=\"toctitle\" lang=\"da\" dir=\"ltr\"><h2 id=\"mw-toc-heading\">Indholdsfortegnelse</h2></div><ul>{items}</ul></div>"
        );
        match out.find("<h2>") {
            Some(at) => out.insert_str(at, &table),
            None => out.push_str(&table),
        }
    }
    format!(
        "<div class=\"mw-parser-output\">{out}\n<!-- \nNewPP limit report\nParsed by fixture\n-->\n</div>"
    )
}
