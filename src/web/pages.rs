//! HTML pages. Handlers are thin: they validate input, call the index, the directory or the
//! store, and render a template. They all work without JavaScript.

use axum::Form;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Deserialize;
use tower_sessions::Session;

use crate::app::AppState;
use crate::auth::{CurrentUser, MaybeUser, SESSION_USER, SessionUser, now_unix};
use crate::directory::{AuthError, password_is_blank};
use crate::web::csrf;
use crate::web::error::{AppError, ErrorCode, request_id};
use crate::web::i18n::{LANG_COOKIE, UiLang};
use crate::web::search_view::{self, SearchParams};
use crate::web::templates::STYLESHEET;

/// A path inside this portal (never `//host` or a scheme): the only redirect targets.
pub fn is_local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") && !p.contains("\\")
}

/// What every page's layout needs.
pub(crate) async fn layout(
    state: &AppState,
    session: &Session,
    lang: UiLang,
    user: Option<&SessionUser>,
    path: &str,
) -> Result<Value, AppError> {
    let csrf = csrf::token(session).await?;
    Ok(context! {
        lang => lang.as_str(),
        other_lang => match lang { UiLang::Da => "en", UiLang::En => "da" },
        user => user.map(|u| context! {
            id => u.id.clone(),
            name => u.display_name.clone(),
            department => u.department.clone(),
            title => u.title.clone(),
            publisher => u.publisher,
            admin => u.admin,
        }),
        csrf => csrf,
        demo => state.directory.kind() == "demo",
        path => path,
    })
}

pub(crate) fn render(state: &AppState, name: &str, ctx: Value) -> Result<Html<String>, AppError> {
    state
        .templates
        .render(name, ctx)
        .map(Html)
        .map_err(|e| AppError::internal(format!("template {name}: {e:#}")))
}

pub async fn stylesheet_get() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

// ---- login and logout ---------------------------------------------------------------------

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_get(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    lang: UiLang,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let next = q.next.filter(|n| is_local_path(n));
    if user.is_some() {
        return Ok(Redirect::to(next.as_deref().unwrap_or("/")).into_response());
    }
    login_page(&state, &session, lang, next, None, StatusCode::OK, "").await
}

async fn login_page(
    state: &AppState,
    session: &Session,
    lang: UiLang,
    next: Option<String>,
    error_key: Option<&str>,
    status: StatusCode,
    username: &str,
) -> Result<Response, AppError> {
    let base = layout(state, session, lang, None, "/login").await?;
    let ctx = context! {
        next => next,
        error_key => error_key,
        username => username,
        ..base
    };
    Ok((status, render(state, "login.html", ctx)?).into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

pub async fn login_post(
    State(state): State<AppState>,
    lang: UiLang,
    session: Session,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    csrf::verify(&session, &form.csrf).await?;
    let next = form.next.filter(|n| is_local_path(n));
    let username = form.username.trim().to_lowercase();
    let client_ip = client_ip(peer.ip(), &headers, &state.config.server.trusted_proxies);
    let client = Some(client_ip.to_string());

    if let Err(t) = state.login_throttle.attempt(&username, Some(client_ip)) {
        let seconds = t.retry_after.as_secs().max(1);
        let by = if t.by_client {
            "client address"
        } else {
            "account"
        };
        tracing::warn!(user = %username, client = %client_ip, by, seconds, "login throttled");
        state
            .store
            .audit(
                Some(&username),
                "login_throttled",
                &format!("too many attempts for this {by}"),
                client.as_deref(),
            )
            .await?;
        metrics::counter!("samle_logins_total", "outcome" => "throttled").increment(1);
        let mut r = login_page(
            &state,
            &session,
            lang,
            next,
            Some("login.throttled"),
            StatusCode::TOO_MANY_REQUESTS,
            &username,
        )
        .await?;
        if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let fail = |reason: &str| {
        tracing::info!(user = %username, reason, "login refused");
        reason.to_string()
    };

    // Refused before any directory call: an empty password is an unauthenticated bind to
    // many LDAP servers, which some answer with success.
    let outcome = if username.is_empty() || password_is_blank(&form.password) {
        Err(fail("empty user name or password"))
    } else {
        match state
            .directory
            .authenticate(&username, &form.password)
            .await
        {
            Ok(info) => match SessionUser::from_directory(&info, &state.config.auth, now_unix()) {
                Some(user) => Ok(user),
                None => Err(fail("not in an employee group")),
            },
            Err(AuthError::Refused(reason)) => Err(fail(reason.as_str())),
            Err(AuthError::Unavailable(e)) => {
                tracing::error!(user = %username, error = %e, "directory unavailable at login");
                let _ = state
                    .store
                    .audit(
                        Some(&username),
                        "login_failed",
                        "directory unavailable",
                        client.as_deref(),
                    )
                    .await;
                metrics::counter!("samle_logins_total", "outcome" => "unavailable").increment(1);
                return login_page(
                    &state,
                    &session,
                    lang,
                    next,
                    Some("login.unavailable"),
                    StatusCode::SERVICE_UNAVAILABLE,
                    &username,
                )
                .await;
            }
        }
    };
    match outcome {
        Ok(user) => {
            // A new session id at login defeats session fixation; a new CSRF token makes any
            // token seen before login worthless.
            session.cycle_id().await.map_err(AppError::session)?;
            session
                .insert(SESSION_USER, &user)
                .await
                .map_err(AppError::session)?;
            csrf::rotate(&session).await?;
            state
                .store
                .audit(Some(&user.id), "login", "ok", client.as_deref())
                .await?;
            metrics::counter!("samle_logins_total", "outcome" => "ok").increment(1);
            tracing::info!(user = %user.id, "login");
            Ok(Redirect::to(next.as_deref().unwrap_or("/")).into_response())
        }
        Err(reason) => {
            state
                .store
                .audit(Some(&username), "login_failed", &reason, client.as_deref())
                .await?;
            metrics::counter!("samle_logins_total", "outcome" => "refused").increment(1);
            login_page(
                &state,
                &session,
                lang,
                next,
                Some("login.failed"),
                StatusCode::UNAUTHORIZED,
                &username,
            )
            .await
        }
    }
}

/// The visitor's address: the peer, or, when the peer is a trusted reverse proxy, the
/// right-most address in `X-Forwarded-For` that is not itself a trusted proxy (entries to
/// its left can be forged by the client).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout_post(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    csrf::verify(&session, &form.csrf).await?;
    // Deletes the server-side record: the old cookie is worthless from now on.
    session.flush().await.map_err(AppError::session)?;
    state
        .store
        .audit(Some(&user.id), "logout", "", None)
        .await?;
    tracing::info!(user = %user.id, "logout");
    Ok(Redirect::to("/login").into_response())
}

#[derive(Deserialize)]
pub struct LangForm {
    lang: String,
    csrf: String,
    next: Option<String>,
}

pub async fn lang_post(session: Session, Form(form): Form<LangForm>) -> Result<Response, AppError> {
    csrf::verify(&session, &form.csrf).await?;
    let lang =
        UiLang::parse(&form.lang).ok_or_else(|| AppError::bad_request("unsupported language"))?;
    let next = form.next.filter(|n| is_local_path(n));
    let mut response = Redirect::to(next.as_deref().unwrap_or("/")).into_response();
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly",
        lang.as_str()
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| AppError::internal(e.to_string()))?,
    );
    Ok(response)
}

// ---- search ---------------------------------------------------------------------------------

pub async fn home_get(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    lang: UiLang,
    session: Session,
) -> Result<Html<String>, AppError> {
    let principals = user.principals();
    let index = state.index.clone();
    // The newest documents this user may see, and how many each source holds for them.
    let results = state
        .searches
        .run(move || {
            index.search(
                &principals,
                &samle_index::SearchRequest {
                    sort: samle_index::SortOrder::Newest,
                    limit: 6,
                    ..Default::default()
                },
            )
        })
        .await??;
    let q = SearchParams::default().validate(6)?;
    let catalog = state.templates.catalog(lang);
    let view = search_view::view(&state.config, &q, results, 0.0, &|k: &str| {
        kind_label(catalog, k)
    });
    let base = layout(&state, &session, lang, Some(&user), "/").await?;
    render(
        &state,
        "home.html",
        context! { results => Value::from(Serde(&view)), ..base },
    )
}

pub fn kind_label(catalog: &crate::web::i18n::Catalog, kind: &str) -> String {
    catalog
        .get(&format!("kind.{kind}"))
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_string())
}

/// A kind as the filter list names it: in the plural ("Personer"), else as [`kind_label`].
pub fn kind_facet_label(catalog: &crate::web::i18n::Catalog, kind: &str) -> String {
    catalog
        .get(&format!("kinds.{kind}"))
        .map(str::to_string)
        .unwrap_or_else(|| kind_label(catalog, kind))
}

pub async fn search_get(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    lang: UiLang,
    session: Session,
    headers: HeaderMap,
    Query(params): Query<SearchParams>,
) -> Result<Response, AppError> {
    let q = params.validate(search_view::PAGE_SIZE)?;
    if q.q.is_empty()
        && q.source.is_none()
        && q.kind.is_none()
        && q.tag.is_none()
        && q.year.is_none()
    {
        return Ok(Redirect::to("/").into_response());
    }
    let principals = user.principals();
    let index = state.index.clone();
    let req = q.to_request();
    let started = std::time::Instant::now();
    let results = state
        .searches
        .run(move || index.search(&principals, &req))
        .await??;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    metrics::histogram!("samle_search_seconds", "surface" => "page").record(took / 1000.0);
    let catalog = state.templates.catalog(lang);
    let view = search_view::view(&state.config, &q, results, took, &|k: &str| {
        kind_facet_label(catalog, k)
    });
    let pagination = pagination(&q, view.pages);
    let base = layout(&state, &session, lang, Some(&user), "/search").await?;
    let sort_links = ["relevance", "newest", "oldest"]
        .iter()
        .map(|s| context! { name => *s, link => q.link_with("sort", Some(s)), selected => view.sort == *s })
        .collect::<Vec<_>>();
    let ctx = context! {
        results => Value::from(Serde(&view)),
        pagination => pagination,
        sort_links => sort_links,
        filters_active => q.source.is_some() || q.kind.is_some() || q.year.is_some() || q.tag.is_some(),
        clear_filters => format!("/search?q={}", crate::web::error::urlencode(&q.q)),
        request_id => request_id(&headers),
        ..base
    };
    Ok(render(&state, "search.html", ctx)?.into_response())
}

/// Links for the pager: previous, a window of pages, next.
fn pagination(q: &search_view::SearchQuery, pages: usize) -> Value {
    let page = q.page;
    let start = page.saturating_sub(3).max(1);
    let end = (page + 3).min(pages);
    let numbers: Vec<Value> = (start..=end)
        .map(|p| {
            context! {
                number => p,
                link => q.link_with("page", Some(&p.to_string())),
                current => p == page,
            }
        })
        .collect();
    context! {
        prev => (page > 1).then(|| q.link_with("page", Some(&(page - 1).to_string()))),
        next => (page < pages).then(|| q.link_with("page", Some(&(page + 1).to_string()))),
        numbers => numbers,
        show => pages > 1,
    }
}

pub async fn doc_get(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    lang: UiLang,
    session: Session,
    Path((source, id)): Path<(String, String)>,
) -> Result<Html<String>, AppError> {
    let principals = user.principals();
    let index = state.index.clone();
    let (s, i) = (source.clone(), id.clone());
    // A document the user may not see is "not found", exactly like one that does not exist.
    let doc = tokio::task::spawn_blocking(move || index.get(&principals, &s, &i))
        .await??
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))?;
    let names = search_view::source_names(&state.config);
    let paragraphs: Vec<String> = doc
        .body
        .split('\n')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let catalog = state.templates.catalog(lang);
    let base = layout(&state, &session, lang, Some(&user), "/doc").await?;
    let ctx = context! {
        doc => context! {
            title => doc.title,
            source => doc.source,
            source_name => names.get(&source).cloned().unwrap_or(source.clone()),
            kind => kind_label(catalog, &doc.kind),
            url => search_view::safe_link(doc.url.as_deref()),
            author => doc.author,
            updated => doc.updated.map(|d| d.to_rfc3339()),
            created => doc.created.map(|d| d.to_rfc3339()),
            tags => doc.tags,
            paragraphs => paragraphs,
            person => (doc.kind == search_view::PERSON_KIND)
                .then(|| Serde(search_view::PersonCard::from_properties(&doc.properties))),
        },
        ..base
    };
    render(&state, "doc.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_only() {
        for ok in ["/", "/search?q=x", "/doc/a/b"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "",
            "search",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn client_address_behind_trusted_proxies_only() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.4, 10.0.0.1"),
        );
        // Not trusted: the header is ignored.
        assert_eq!(
            client_ip("192.0.2.1".parse().unwrap(), &h, &[proxy]),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        // Trusted: the right-most address that is not a proxy; the forgeable left part is ignored.
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "198.51.100.4".parse::<IpAddr>().unwrap()
        );
        // Trusted but no header: the proxy itself.
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
