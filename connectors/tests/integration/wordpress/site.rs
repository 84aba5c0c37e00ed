//! A WordPress site on 127.0.0.1 that answers the REST API as WordPress 6.1 does: the
//! `/wp-json/` index and the `?rest_route=` form, `per_page`/`page` with `X-WP-Total`,
//! `X-WP-TotalPages` and `Link`, `_fields`, `status`, `modified_after` and `after` (compared,
//! as WordPress does, with the local time of the site's Europe/Copenhagen time zone, which
//! repeats an hour when clocks go back), `orderby`/`order`, `include`, `users/me`, terms and
//! users by id, application passwords over HTTP Basic (a wrong one reads as anonymous),
//! `rest_forbidden_status` for statuses the caller may not read, "Privat: " before private
//! titles, password-protected content hidden from the public, scheduled (`future`) posts that
//! the cron publishes without touching `modified`, and the errors of a real installation
//! (`rest_no_route`, `rest_post_invalid_page_number`).
//!
//! Faults are switched on in [`Faults`]; every request and response byte is counted. Shared
//! by the integration tests and the benchmark (through `#[path]`), so it depends on nothing of
//! either.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc, Weekday};
use serde_json::{Map, Value, json};

/// `Authorization` of the editor `redaktoer` with the application password
/// `abcd EFGH 1234 ijkl MNOP 6789`.
pub const EDITOR_AUTH: &str = "Basic cmVkYWt0b2VyOmFiY2QgRUZHSCAxMjM0IGlqa2wgTU5PUCA2Nzg5";
pub const EDITOR_PASSWORD: &str = "abcd EFGH 1234 ijkl MNOP 6789";
/// `Authorization` of the subscriber `abonnent` (`wxyz QRST 5678 uvwx YZAB 4321`), who may
/// read nothing private.
pub const SUBSCRIBER_AUTH: &str = "Basic YWJvbm5lbnQ6d3h5eiBRUlNUIDU2NzggdXZ3eCBZWkFCIDQzMjE=";
pub const SUBSCRIBER_PASSWORD: &str = "wxyz QRST 5678 uvwx YZAB 4321";

/// One post of any type, as stored.
#[derive(Clone, Debug)]
pub struct Post {
    pub id: u64,
    /// The REST base of its type: "posts", "pages", "nyheder".
    pub base: &'static str,
    pub status: &'static str,
    /// The title as WordPress renders it (with `wptexturize`'s entities).
    pub title: String,
    pub content: String,
    pub excerpt: String,
    pub slug: String,
    pub date: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub author: u64,
    pub categories: Vec<u64>,
    pub tags: Vec<u64>,
    pub password: bool,
    /// Readable by the administrator only, like the privacy policy draft WordPress creates:
    /// counted in `X-WP-Total` but dropped from the page for anyone else.
    pub admin_only: bool,
}

/// A user: id, display name, whether they may read private posts.
#[derive(Clone, Debug)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub roles: Vec<&'static str>,
    pub auth: Option<&'static str>,
    pub can_read_private: bool,
}

/// Misbehaviour switched on by a test.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Answer 500 to requests of this REST base and page, this many times.
    pub fail_page: Option<(&'static str, u32, u32)>,
    /// Answer 429 with `Retry-After: 1` to this many requests.
    pub rate_limited: u32,
    /// Drop the `Authorization` header, as Apache with PHP-CGI does unless told otherwise.
    pub ignore_auth: bool,
    /// Print a PHP warning before the JSON of listings, as a broken plugin does.
    pub php_warning: bool,
    /// Redirect every request to the same path on another host.
    pub redirect_to: Option<String>,
    /// Trash this post just before answering this page of any listing, as an editor working
    /// while the connector pages through the site.
    pub trash_during: Option<(u32, u64)>,
    /// Edit this post (its `modified` becomes now) just before answering this page.
    pub edit_during: Option<(u32, u64)>,
    /// Drop `X-WP-Total` and `X-WP-TotalPages`, as some caching proxies do; `Link` stays.
    pub no_totals: bool,
    /// Answer 500 to listings with this query parameter (such as `after`), this many times.
    pub fail_with_param: Option<(&'static str, u32)>,
}

/// The site's state.
#[derive(Debug, Default)]
pub struct Site {
    pub name: String,
    /// Served over HTTPS: links start with `https://`.
    pub https: bool,
    pub posts: Vec<Post>,
    pub categories: Vec<(u64, String)>,
    pub tags: Vec<(u64, String)>,
    pub users: Vec<User>,
    pub faults: Faults,
    /// Every request's path and query, in order.
    pub log: Vec<String>,
    pub requests: u64,
    /// Response body bytes sent.
    pub bytes: u64,
    next_id: u64,
}

/// The site, shared between the server and the test.
#[derive(Clone, Debug, Default)]
pub struct Shared(pub Arc<Mutex<Site>>);

impl Shared {
    pub fn new(site: Site) -> Self {
        Self(Arc::new(Mutex::new(site)))
    }

    pub fn lock(&self) -> MutexGuard<'_, Site> {
        self.0.lock().unwrap()
    }

    /// Requests and bytes so far.
    pub fn counters(&self) -> (u64, u64) {
        let site = self.lock();
        (site.requests, site.bytes)
    }

    /// The request log since the last call.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().log)
    }
}

pub fn utc(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc()
}

impl Site {
    /// An empty site with the standard users, categories and tags of a Danish municipality.
    pub fn new(name: &str) -> Self {
        let users = vec![
            User {
                id: 1,
                name: "Mette Hansen".to_owned(),
                roles: vec!["administrator"],
                auth: None,
                can_read_private: true,
            },
            User {
                id: 2,
                name: "Lars Jensen".to_owned(),
                roles: vec!["author"],
                auth: None,
                can_read_private: false,
            },
            User {
                id: 3,
                name: "Redaktør Kim".to_owned(),
                roles: vec!["editor"],
                auth: Some(EDITOR_AUTH),
                can_read_private: true,
            },
            User {
                id: 4,
                name: "Abonnent Ib".to_owned(),
                roles: vec!["subscriber"],
                auth: Some(SUBSCRIBER_AUTH),
                can_read_private: false,
            },
        ];
        Self {
            name: name.to_owned(),
            categories: vec![
                (1, "Ikke kategoriseret".to_owned()),
                (5, "Personale &amp; HR".to_owned()),
                (6, "IT".to_owned()),
                (7, "Økonomi".to_owned()),
            ],
            tags: vec![
                (11, "ferie".to_owned()),
                (12, "løn".to_owned()),
                (13, "sikkerhed".to_owned()),
            ],
            users,
            next_id: 100,
            ..Self::default()
        }
    }

    /// Adds a post and returns its id.
    pub fn add(&mut self, mut post: Post) -> u64 {
        if post.id == 0 {
            self.next_id += 1;
            post.id = self.next_id;
        }
        self.next_id = self.next_id.max(post.id);
        let id = post.id;
        self.posts.push(post);
        id
    }

    pub fn post(&mut self, id: u64) -> &mut Post {
        self.posts.iter_mut().find(|p| p.id == id).unwrap()
    }

    /// Edits a post as the editor does: `modified` moves to `at`.
    pub fn edit(&mut self, id: u64, at: DateTime<Utc>, change: impl FnOnce(&mut Post)) {
        let post = self.post(id);
        change(post);
        post.modified = at;
    }

    /// Moves a post to the trash: it vanishes from every listing the connector may read.
    pub fn trash(&mut self, id: u64, at: DateTime<Utc>) {
        self.edit(id, at, |p| p.status = "trash");
    }

    /// Publishes a scheduled (`future`) post as WordPress's cron does (`wp_publish_post`): only
    /// its status changes; `modified` stays at when it was scheduled, `date` at the time it
    /// was scheduled for.
    pub fn publish_scheduled(&mut self, id: u64) {
        let post = self.post(id);
        assert_eq!(
            post.status, "future",
            "only a scheduled post is published by the cron"
        );
        post.status = "publish";
    }
}

/// The local time of `at` in the site's time zone, Europe/Copenhagen, as WordPress stores it in
/// `post_date` and `post_modified`: summer time (UTC+2) from 01:00 UTC on the last Sunday of
/// March to 01:00 UTC on the last Sunday of October, UTC+1 otherwise. From 01:00 to 02:00 UTC
/// on that Sunday in October the local times 02:00–03:00 repeat those of the hour before.
fn local(at: DateTime<Utc>) -> NaiveDateTime {
    let last_sunday_1am = |month: u32| {
        let mut day = NaiveDate::from_ymd_opt(at.year(), month, 31).unwrap();
        while day.weekday() != Weekday::Sun {
            day = day.pred_opt().unwrap();
        }
        day.and_hms_opt(1, 0, 0).unwrap().and_utc()
    };
    let summer = at >= last_sunday_1am(3) && at < last_sunday_1am(10);
    let offset = if summer { 2 } else { 1 };
    (at + chrono::Duration::hours(offset)).naive_utc()
}

/// A post of `base` with the usual defaults.
pub fn post(base: &'static str, title: &str, content: &str, at: &str) -> Post {
    let at = utc(at);
    Post {
        id: 0,
        base,
        status: "publish",
        title: title.to_owned(),
        content: content.to_owned(),
        excerpt: String::new(),
        slug: slug(title),
        date: at,
        modified: at,
        author: 2,
        categories: Vec::new(),
        tags: Vec::new(),
        password: false,
        admin_only: false,
    }
}

/// The slug WordPress would make of a rendered title: entities dropped, words joined by `-`.
pub fn slug(title: &str) -> String {
    let mut text = String::new();
    let mut rest = title;
    while let Some(start) = rest.find('&') {
        text.push_str(&rest[..start]);
        rest = &rest[start..];
        rest = rest.find(';').map_or("", |end| &rest[end + 1..]);
        text.push(' ');
    }
    text.push_str(rest);
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Serves `router` on 127.0.0.1 and returns its address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// The router answering for `site`.
pub fn router(site: Shared) -> Router {
    Router::new().fallback(handle).with_state(site)
}

fn wp_error(status: StatusCode, code: &str, message: &str, extra: Value) -> (StatusCode, Value) {
    let mut data = json!({ "status": status.as_u16() });
    if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    (
        status,
        json!({ "code": code, "message": message, "data": data }),
    )
}

async fn handle(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let mut site = shared.lock();
    site.requests += 1;
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    site.log.push(path_and_query.clone());
    let response = answer(&mut site, &uri, &headers);
    let (status, mut extra_headers, body) = match response {
        Answer::Json {
            status,
            headers,
            body,
        } => {
            let mut text = body.to_string();
            if site.faults.php_warning && status.is_success() {
                text = format!(
                    "<br />\n<b>Warning</b>:  Undefined array key \"menu\" in <b>/var/www/intra/wp-content/plugins/intra-menu/menu.php</b> on line <b>42</b><br />\n{text}"
                );
            }
            (status, headers, text)
        }
        Answer::Raw {
            status,
            headers,
            body,
        } => (status, headers, body),
    };
    site.bytes += body.len() as u64;
    extra_headers.push((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    ));
    let mut response = (status, body).into_response();
    for (name, value) in extra_headers {
        response.headers_mut().append(name, value);
    }
    response
}

enum Answer {
    Json {
        status: StatusCode,
        headers: Vec<(header::HeaderName, HeaderValue)>,
        body: Value,
    },
    Raw {
        status: StatusCode,
        headers: Vec<(header::HeaderName, HeaderValue)>,
        body: String,
    },
}

fn json_answer((status, body): (StatusCode, Value)) -> Answer {
    Answer::Json {
        status,
        headers: Vec::new(),
        body,
    }
}

fn answer(site: &mut Site, uri: &Uri, headers: &HeaderMap) -> Answer {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();

    if let Some(target) = &site.faults.redirect_to {
        let location = format!("{target}{}", uri.path_and_query().unwrap().as_str());
        return Answer::Raw {
            status: StatusCode::MOVED_PERMANENTLY,
            headers: vec![(header::LOCATION, HeaderValue::from_str(&location).unwrap())],
            body: String::new(),
        };
    }
    if site.faults.rate_limited > 0 {
        site.faults.rate_limited -= 1;
        let (status, body) = wp_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "For mange forespørgsler.",
            json!({}),
        );
        return Answer::Json {
            status,
            headers: vec![(header::RETRY_AFTER, HeaderValue::from_static("1"))],
            body,
        };
    }

    // Application passwords. WordPress 6.1 (Debian's package, checked against a real
    // installation) decides who the caller is only when an endpoint first asks, after the
    // authentication errors were collected: a wrong password is served as anonymous, and only
    // `users/me` answers 401.
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|_| !site.faults.ignore_auth)
        .and_then(|auth| site.users.iter().find(|u| u.auth == Some(auth)))
        .cloned();

    let route = if uri.path() == "/" || uri.path() == "/index.php" {
        param("rest_route").map(str::to_owned)
    } else {
        uri.path().strip_prefix("/wp-json").map(str::to_owned)
    };
    let Some(route) = route else {
        return Answer::Raw {
            status: StatusCode::NOT_FOUND,
            headers: Vec::new(),
            body: "<html><body>Siden blev ikke fundet</body></html>".to_owned(),
        };
    };
    let route = route.trim_end_matches('/');
    let scheme = if site.https { "https" } else { "http" };
    let base_url = format!("{scheme}://{host}/wp-json");
    match route {
        "" => json_answer((
            StatusCode::OK,
            json!({
                "name": site.name,
                "description": "Kommunens intranet",
                "url": format!("{scheme}://{host}"),
                "home": format!("{scheme}://{host}"),
                "gmt_offset": "2",
                "timezone_string": "Europe/Copenhagen",
                "namespaces": ["oembed/1.0", "wp/v2", "wp-site-health/v1", "wp-block-editor/v1"],
                "authentication": {
                    "application-passwords": {
                        "endpoints": {
                            "authorization": format!("{scheme}://{host}/wp-admin/authorize-application.php")
                        }
                    }
                },
                "routes": {},
            }),
        )),
        "/wp/v2/users/me" => match user {
            None => json_answer(wp_error(
                StatusCode::UNAUTHORIZED,
                "rest_not_logged_in",
                "Du er ikke logget ind.",
                json!({}),
            )),
            Some(user) => {
                let mut me = json!({ "id": user.id, "name": user.name, "slug": "x" });
                if param("context") == Some("edit") {
                    me["roles"] = json!(user.roles);
                }
                json_answer((StatusCode::OK, select_fields(me, param("_fields"))))
            }
        },
        "/wp/v2/categories" | "/wp/v2/tags" | "/wp/v2/users" => {
            let include: Option<Vec<u64>> = param("include").map(|v| {
                v.split(',')
                    .filter_map(|id| id.trim().parse().ok())
                    .collect()
            });
            let items: Vec<(u64, String)> = match route {
                "/wp/v2/categories" => site.categories.clone(),
                "/wp/v2/tags" => site.tags.clone(),
                _ => site
                    .users
                    .iter()
                    // Anonymous callers see only users with published posts.
                    .filter(|u| {
                        user.is_some()
                            || site
                                .posts
                                .iter()
                                .any(|p| p.author == u.id && p.status == "publish")
                    })
                    .map(|u| (u.id, u.name.clone()))
                    .collect(),
            };
            let items: Vec<Value> = items
                .into_iter()
                .filter(|(id, _)| include.as_ref().is_none_or(|ids| ids.contains(id)))
                .map(|(id, name)| {
                    select_fields(
                        json!({ "id": id, "name": name, "count": 1, "slug": "s", "link": "l" }),
                        param("_fields"),
                    )
                })
                .collect();
            let total = items.len();
            Answer::Json {
                status: StatusCode::OK,
                headers: vec![
                    (
                        header::HeaderName::from_static("x-wp-total"),
                        total.to_string().parse().unwrap(),
                    ),
                    (
                        header::HeaderName::from_static("x-wp-totalpages"),
                        HeaderValue::from_static("1"),
                    ),
                ],
                body: Value::Array(items),
            }
        }
        _ => {
            let base = route.strip_prefix("/wp/v2/").unwrap_or("");
            if !["posts", "pages", "nyheder"].contains(&base) {
                return json_answer(wp_error(
                    StatusCode::NOT_FOUND,
                    "rest_no_route",
                    "Ingen rute blev fundet, der matcher URL'en og forespørgselsmetoden.",
                    json!({}),
                ));
            }
            listing(site, base, &query, user.as_ref(), &base_url)
        }
    }
}

/// What WordPress answers when PHP fails fatally while serving a request.
fn critical_error() -> Answer {
    Answer::Raw {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers: Vec::new(),
        body: json!({
            "code": "internal_server_error",
            "message": "<p>Der er opstået en kritisk fejl på dette websted.</p>",
            "data": { "status": 500 },
            "additional_errors": []
        })
        .to_string(),
    }
}

/// `_fields` as WordPress applies it: only the named top-level fields.
fn select_fields(item: Value, fields: Option<&str>) -> Value {
    let (Some(fields), Value::Object(map)) = (fields, &item) else {
        return item;
    };
    let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
    let selected: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| wanted.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(selected)
}

fn listing(
    site: &mut Site,
    base: &str,
    query: &[(String, String)],
    user: Option<&User>,
    base_url: &str,
) -> Answer {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let invalid = |name: &str, message: &str| {
        json_answer(wp_error(
            StatusCode::BAD_REQUEST,
            "rest_invalid_param",
            &format!("Ugyldig(e) parameter(e): {name}"),
            json!({ "params": { name: message } }),
        ))
    };
    let per_page: usize = match param("per_page").map(str::parse) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return invalid(
                "per_page",
                "per_page skal være mellem 1 (inklusive) og 100 (inklusive)",
            );
        }
    };
    let page: usize = match param("page").map(str::parse) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return invalid("page", "page skal være større end eller lig med 1"),
    };
    let statuses: Vec<&str> = param("status")
        .unwrap_or("publish")
        .split(',')
        .map(str::trim)
        .collect();
    let may_read_private = user.is_some_and(|u| u.can_read_private);
    if statuses.iter().any(|s| *s != "publish") && !may_read_private {
        // What WP_REST_Posts_Controller::sanitize_post_statuses answers, wrapped by the
        // parameter validation.
        let inner = if user.is_some() { 403 } else { 401 };
        return json_answer(wp_error(
            StatusCode::BAD_REQUEST,
            "rest_invalid_param",
            "Ugyldig(e) parameter(e): status",
            json!({
                "params": { "status": "Status er forbudt." },
                "details": { "status": {
                    "code": "rest_forbidden_status",
                    "message": "Status er forbudt.",
                    "data": { "status": inner }
                }}
            }),
        ));
    }
    // WP_Date_Query turns a date with a zone into the site's local time, takes one without as
    // local time already, and compares it with the local `post_modified` (`post_date`).
    let local_date = |name: &str| {
        param(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|d| local(d.with_timezone(&Utc)))
                    .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
            })
            .transpose()
    };
    let Ok(modified_after) = local_date("modified_after") else {
        return invalid("modified_after", "Ugyldig dato.");
    };
    let Ok(published_after) = local_date("after") else {
        return invalid("after", "Ugyldig dato.");
    };
    let include: Option<Vec<u64>> = param("include").map(|v| {
        v.split(',')
            .filter_map(|id| id.trim().parse().ok())
            .collect()
    });

    if let Some((at_page, id)) = site.faults.trash_during
        && at_page as usize == page
    {
        site.faults.trash_during = None;
        let now = Utc::now();
        site.trash(id, now);
    }
    if let Some((at_page, id)) = site.faults.edit_during
        && at_page as usize == page
    {
        site.faults.edit_during = None;
        site.edit(id, Utc::now(), |p| p.title.push_str(" (rettet)"));
    }
    let mut posts: Vec<&Post> = site
        .posts
        .iter()
        .filter(|p| p.base == base && statuses.contains(&p.status))
        .filter(|p| modified_after.is_none_or(|after| local(p.modified) > after))
        .filter(|p| published_after.is_none_or(|after| local(p.date) > after))
        .filter(|p| include.as_ref().is_none_or(|ids| ids.contains(&p.id)))
        .collect();
    let orderby = param("orderby").unwrap_or("date");
    match orderby {
        "date" => posts.sort_by_key(|p| (p.date, p.id)),
        "modified" => posts.sort_by_key(|p| (p.modified, p.id)),
        "id" => posts.sort_by_key(|p| p.id),
        "include" => {}
        _ => {
            return invalid(
                "orderby",
                "orderby er ikke en af date, modified, id, include.",
            );
        }
    }
    if param("order").unwrap_or("desc") == "desc" && orderby != "include" {
        posts.reverse();
    }
    let total = posts.len();
    let total_pages = total.div_ceil(per_page);
    if page > total_pages && total > 0 {
        return json_answer(wp_error(
            StatusCode::BAD_REQUEST,
            "rest_post_invalid_page_number",
            "Det ønskede sidenummer er større end antallet af tilgængelige sider.",
            json!({}),
        ));
    }
    if let Some((fail_base, fail_page, times)) = &mut site.faults.fail_page
        && *fail_base == base
        && *fail_page as usize == page
        && *times > 0
    {
        *times -= 1;
        return critical_error();
    }
    if let Some((name, times)) = &mut site.faults.fail_with_param
        && param(name).is_some()
        && *times > 0
    {
        *times -= 1;
        return critical_error();
    }
    let users: HashMap<u64, ()> = site.users.iter().map(|u| (u.id, ())).collect();
    let items: Vec<Value> = posts
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        // WordPress checks each post's read permission after the query has counted it.
        .filter(|p| !p.admin_only || user.is_some_and(|u| u.id == 1))
        .map(|p| {
            let wp_type = match p.base {
                "posts" => "post",
                "pages" => "page",
                _ => "nyhed",
            };
            let title = if p.status == "private" {
                format!("Privat: {}", p.title)
            } else {
                p.title.clone()
            };
            // Protected content is shown only to those who may edit the post.
            let hide = p.password && !may_read_private;
            let gmt = |d: DateTime<Utc>| d.format("%Y-%m-%dT%H:%M:%S").to_string();
            let local = |d: DateTime<Utc>| local(d).format("%Y-%m-%dT%H:%M:%S").to_string();
            let link = if p.status == "publish" {
                format!("{}/{}/{}/", base_url.trim_end_matches("/wp-json"), p.date.format("%Y/%m"), p.slug)
            } else {
                format!("{}/?p={}", base_url.trim_end_matches("/wp-json"), p.id)
            };
            let mut item = json!({
                "id": p.id,
                "date": local(p.date),
                "date_gmt": gmt(p.date),
                "guid": { "rendered": format!("{}/?p={}", base_url.trim_end_matches("/wp-json"), p.id) },
                "modified": local(p.modified),
                "modified_gmt": gmt(p.modified),
                "slug": p.slug,
                "status": p.status,
                "type": wp_type,
                "link": link,
                "title": { "rendered": title },
                "content": {
                    "rendered": if hide { String::new() } else { p.content.clone() },
                    "protected": p.password
                },
                "excerpt": {
                    "rendered": if hide { String::new() } else { p.excerpt.clone() },
                    "protected": p.password
                },
                "author": if users.contains_key(&p.author) { p.author } else { 0 },
                "featured_media": 0,
                "comment_status": "closed",
                "meta": [],
                "_links": { "self": [{ "href": format!("{base_url}/wp/v2/{base}/{}", p.id) }] },
            });
            if p.base == "posts" {
                item["categories"] = json!(p.categories);
                item["tags"] = json!(p.tags);
                item["sticky"] = json!(false);
                item["format"] = json!("standard");
            } else {
                item["parent"] = json!(0);
                item["menu_order"] = json!(0);
            }
            select_fields(item, param("_fields"))
        })
        .collect();

    let mut headers = Vec::new();
    if !site.faults.no_totals {
        headers.push((
            header::HeaderName::from_static("x-wp-total"),
            total.to_string().parse().unwrap(),
        ));
        headers.push((
            header::HeaderName::from_static("x-wp-totalpages"),
            total_pages.to_string().parse().unwrap(),
        ));
    }
    let page_link = |n: usize| {
        let mut pairs: Vec<(String, String)> =
            query.iter().filter(|(k, _)| k != "page").cloned().collect();
        pairs.push(("page".to_owned(), n.to_string()));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("{base_url}/wp/v2/{base}?{query}")
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", page_link(page - 1)));
    }
    if page < total_pages {
        links.push(format!("<{}>; rel=\"next\"", page_link(page + 1)));
    }
    if !links.is_empty() {
        headers.push((header::LINK, links.join(", ").parse().unwrap()));
    }
    Answer::Json {
        status: StatusCode::OK,
        headers,
        body: Value::Array(items),
    }
}
