//! The web portal: the whole route table in [`router`], and the layers around it.
//!
//! Who may call a route is in each handler's signature: `MaybeUser` (anyone), `CurrentUser`
//! (a logged-in employee), `Publisher`, `Admin` (see `auth`).

pub mod admin;
pub mod api;
pub mod csrf;
pub mod error;
pub mod i18n;
pub mod pages;
pub mod search_pool;
pub mod search_view;
pub mod session_cache;
pub mod templates;
pub mod throttle;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use rand::RngCore as _;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::app::AppState;
use crate::session_store::SqliteSessionStore;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "samle_session";

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Every route of the portal.
pub fn router(state: AppState, sessions: SqliteSessionStore, key: Key) -> Router {
    let secure = state
        .config
        .server
        .public_url
        .as_ref()
        .is_some_and(|u| u.scheme() == "https");
    let idle = time::Duration::seconds(
        i64::try_from(state.config.server.session_idle_timeout.as_secs()).unwrap_or(i64::MAX),
    );
    // Sessions are read from memory, written through to the database (see `session_cache`).
    let session_layer = SessionManagerLayer::new(session_cache::SessionCache::new(sessions))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
        .with_signed(key);

    // Anyone: the login page, health, metrics, the stylesheet and the language switch.
    let public = Router::new()
        .route("/login", get(pages::login_get).post(pages::login_post))
        .route("/lang", post(pages::lang_post))
        .route("/static/samle.css", get(pages::stylesheet_get))
        .route("/healthz", get(api::healthz_get))
        .route("/readyz", get(api::readyz_get))
        .route("/metrics", get(api::metrics_get));
    // Logged-in employees.
    let employee = Router::new()
        .route("/", get(pages::home_get))
        .route("/search", get(pages::search_get))
        .route("/doc/{source}/{*id}", get(pages::doc_get))
        .route("/logout", post(pages::logout_post))
        .route("/api/v1/search", get(api::search_get))
        .route("/api/v1/me", get(api::me_get));
    // Administrators.
    let admin = Router::new()
        .route("/admin/sources", get(admin::sources_get))
        .route("/admin/sources/{id}", get(admin::source_get))
        .route("/admin/sources/{id}/sync", post(admin::source_sync_post))
        .route(
            "/admin/sources/{id}/full-sync",
            post(admin::source_full_sync_post),
        );

    Router::new()
        .merge(public)
        .merge(employee)
        .merge(admin)
        .layer(middleware::from_fn(csrf::reject_cross_site))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::render_errors,
        ))
        .layer(session_layer)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(
            |req: &Request| {
                let rid = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %rid)
            },
        ))
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static(
            "x-request-id",
        )))
        .layer(SetRequestIdLayer::new(
            HeaderName::from_static("x-request-id"),
            RandomRequestId,
        ))
        .with_state(state)
}

/// Request ids: 64 random bits in hex, short enough to read out over the phone.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("{:016x}", rand::rng().next_u64());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Counts requests and their latency per route pattern (never per raw path: ids and
/// queries must not become metric labels).
async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed: Duration = start.elapsed();
    let status = response.status().as_u16().to_string();
    metrics::counter!("samle_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("samle_http_request_seconds", "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}
