//! The JSON API (`/api/v1/...`) and the operational endpoints (`/healthz`, `/readyz`,
//! `/metrics`). The API takes the same parameters as the search page and is trimmed the
//! same way; errors are the stable object rendered by `error::render_errors`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::web::error::AppError;
use crate::web::i18n::UiLang;
use crate::web::pages::kind_facet_label;
use crate::web::search_view::{self, SearchParams};

pub async fn search_get(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    lang: UiLang,
    Query(params): Query<SearchParams>,
) -> Result<Response, AppError> {
    let q = params.validate(search_view::PAGE_SIZE)?;
    let principals = user.principals();
    let index = state.index.clone();
    let req = q.to_request();
    let started = std::time::Instant::now();
    let results = state
        .searches
        .run(move || index.search(&principals, &req))
        .await??;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    metrics::histogram!("samle_search_seconds", "surface" => "api").record(took / 1000.0);
    let catalog = state.templates.catalog(lang);
    let view = search_view::view(&state.config, &q, results, took, &|k: &str| {
        kind_facet_label(catalog, k)
    });
    Ok(Json(view).into_response())
}

/// Who the API caller is, with their roles (handy for scripts and for checking a login).
pub async fn me_get(CurrentUser(user): CurrentUser) -> Response {
    Json(json!({
        "id": user.id,
        "name": user.display_name,
        "department": user.department,
        "title": user.title,
        "groups": user.groups,
        "roles": {
            "employee": true,
            "publisher": user.publisher,
            "admin": user.admin,
        },
    }))
    .into_response()
}

/// Liveness: the process answers.
pub async fn healthz_get() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Readiness: the index can be searched and the database answers.
pub async fn readyz_get(State(state): State<AppState>) -> Response {
    let index = state.index.clone();
    let index_ok = tokio::task::spawn_blocking(move || index.stats())
        .await
        .ok()
        .and_then(Result::ok);
    let store_ok = state
        .store
        .call(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
        .await
        .is_ok();
    let ready = index_ok.is_some() && store_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "index": index_ok.is_some(),
        "database": store_ok,
        "documents": index_ok.map(|s| s.documents),
        "uptime_seconds": state.started_at.elapsed().as_secs(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics. They hold counts and latencies, never document data or user names.
pub async fn metrics_get(State(state): State<AppState>) -> Response {
    let index = state.index.clone();
    if let Ok(Ok(stats)) = tokio::task::spawn_blocking(move || index.stats()).await {
        for (source, n) in &stats.per_source {
            metrics::gauge!("samle_index_documents", "source" => source.clone()).set(*n as f64);
        }
        metrics::gauge!("samle_index_size_bytes").set(stats.size_bytes as f64);
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}
