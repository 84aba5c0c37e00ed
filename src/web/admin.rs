//! Pages for administrators: the sources page (every source's status, last run, documents,
//! next run and first errors), a source's run history, and "sync now" / "full re-sync".
//! Every handler takes `Admin`; the forms are CSRF-protected and audit-logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use minijinja::{Value, context};
use serde::Deserialize;
use tower_sessions::Session;

use crate::app::AppState;
use crate::auth::Admin;
use crate::config::{Schedule, SourceConfig};
use crate::store::{RunErrorRecord, RunRecord, RunStatus};
use crate::sync::SyncError;
use crate::web::csrf;
use crate::web::error::{AppError, ErrorCode, urlencode};
use crate::web::i18n::UiLang;
use crate::web::pages::{client_ip, layout, render};

/// How many errors of the last run the overview shows per source.
const OVERVIEW_ERRORS: usize = 5;
/// How many runs a source's page lists.
const HISTORY: usize = 50;

/// What the overview and a source's page show about the source's state: `ok`, `failed`,
/// `running`, `waiting` (never run, a run is scheduled), `interrupted` or `never`.
fn status(state: &AppState, source: &SourceConfig, last: Option<&RunRecord>) -> &'static str {
    if state.sync.is_running(&source.id) {
        return "running";
    }
    match last.map(|r| r.status) {
        Some(RunStatus::Ok) => "ok",
        Some(RunStatus::Failed) => "failed",
        Some(RunStatus::Interrupted) => "interrupted",
        // Marked running in the store but not by this process: a `samle sync` elsewhere.
        Some(RunStatus::Running) => "running",
        None if next_run(state, &source.id).is_some() => "waiting",
        None => "never",
    }
}

fn next_run(state: &AppState, source: &str) -> Option<DateTime<Utc>> {
    state
        .next_runs
        .lock()
        .ok()
        .and_then(|m| m.get(source).copied())
}

/// A time as the pages show it: local time to the minute, and the exact instant for
/// `<time datetime>`.
fn time(t: DateTime<Utc>) -> Value {
    context! {
        iso => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        text => t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// `1 h 2 min`, `3 min 4 s`, `5 s`.
fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

fn schedule(s: &Schedule) -> Value {
    match s {
        Schedule::Every(d) => context! {
            kind => "every",
            text => humantime::format_duration(*d).to_string(),
        },
        Schedule::Cron(_, text) => context! { kind => "cron", text => text.clone() },
        Schedule::Manual => context! { kind => "manual", text => s.describe() },
    }
}

fn run_view(run: &RunRecord) -> Value {
    context! {
        id => run.id,
        trigger => run.trigger.clone(),
        full => run.full,
        status => run.status.as_str(),
        started => time(run.started_at),
        finished => run.finished_at.map(time),
        duration => run.finished_at.map(|f| duration((f - run.started_at).num_seconds())),
        added => run.counts.added,
        updated => run.counts.updated,
        unchanged => run.counts.unchanged,
        deleted => run.counts.deleted,
        failed => run.counts.failed,
        error_count => run.error_count,
        message => run.message.clone(),
    }
}

fn errors_view(errors: &[RunErrorRecord], limit: usize) -> Vec<Value> {
    errors
        .iter()
        .take(limit)
        .map(|e| {
            context! {
                document => e.document.clone(),
                message => e.message.clone(),
                at => time(e.at),
            }
        })
        .collect()
}

async fn documents_per_source(state: &AppState) -> Result<BTreeMap<String, u64>, AppError> {
    let index = state.index.clone();
    Ok(tokio::task::spawn_blocking(move || index.stats())
        .await??
        .per_source)
}

/// How far behind its source the index may be: the time since the start of the last
/// successful run (later changes are not in the index yet), and whether it is overdue.
fn behind_view(source: &SourceConfig, last_ok: Option<&RunRecord>, now: DateTime<Utc>) -> Value {
    match last_ok {
        Some(run) => context! {
            since => time(run.started_at),
            text => duration((now - run.started_at).num_seconds()),
            overdue => source.enabled && overdue(&source.schedule, run.started_at, now),
        },
        None => context! { overdue => false },
    }
}

/// Whether the second scheduled run after the last successful one is due: at least one
/// scheduled run has failed or not happened since, and the next has come too.
fn overdue(schedule: &Schedule, last_ok: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    schedule
        .next_after(last_ok)
        .and_then(|first| schedule.next_after(first))
        .is_some_and(|second| second < now)
}

fn source_view(
    state: &AppState,
    source: &SourceConfig,
    last: Option<&RunRecord>,
    last_ok: Option<&RunRecord>,
    documents: u64,
) -> Value {
    context! {
        behind => behind_view(source, last_ok, Utc::now()),
        id => source.id.clone(),
        name => source.name.clone(),
        kind => source.kind.clone(),
        enabled => source.enabled,
        schedule => schedule(&source.schedule),
        status => status(state, source, last),
        last_run => last.map(run_view),
        documents => documents,
        next_run => next_run(state, &source.id).map(time),
    }
}

pub async fn sources_get(
    State(state): State<AppState>,
    Admin(user): Admin,
    lang: UiLang,
    session: Session,
) -> Result<Html<String>, AppError> {
    let last_runs = state.store.last_runs().await?;
    let last_ok_runs = state.store.last_ok_runs().await?;
    let documents = documents_per_source(&state).await?;
    let mut sources = Vec::new();
    for source in &state.config.sources {
        let last = last_runs.get(&source.id);
        let errors = match last {
            Some(run) if run.error_count > 0 => state.store.run_errors(run.id).await?,
            _ => Vec::new(),
        };
        let count = documents.get(&source.id).copied().unwrap_or(0);
        sources.push(context! {
            errors => errors_view(&errors, OVERVIEW_ERRORS),
            ..source_view(&state, source, last, last_ok_runs.get(&source.id), count)
        });
    }
    let base = layout(&state, &session, lang, Some(&user), "/admin/sources").await?;
    render(
        &state,
        "admin_sources.html",
        context! { sources => sources, ..base },
    )
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// The notices a redirect back to a source's page may carry.
const NOTICES: &[&str] = &["started", "full_started", "already_running", "disabled"];

pub async fn source_get(
    State(state): State<AppState>,
    Admin(user): Admin,
    lang: UiLang,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Html<String>, AppError> {
    let source = state
        .config
        .source(&id)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))?
        .clone();
    let runs = state.store.recent_runs(Some(&source.id), HISTORY).await?;
    let latest = runs.first();
    let errors = match latest {
        Some(run) if run.error_count > 0 => state.store.run_errors(run.id).await?,
        _ => Vec::new(),
    };
    let last_ok = state.store.last_ok_runs().await?.remove(&source.id);
    let documents = documents_per_source(&state).await?;
    let count = documents.get(&source.id).copied().unwrap_or(0);
    let notice = q.notice.filter(|n| NOTICES.contains(&n.as_str()));
    let path = format!("/admin/sources/{}", urlencode(&source.id));
    let base = layout(&state, &session, lang, Some(&user), &path).await?;
    let ctx = context! {
        source => source_view(&state, &source, latest, last_ok.as_ref(), count),
        runs => runs.iter().map(run_view).collect::<Vec<_>>(),
        errors => errors_view(&errors, usize::MAX),
        notice => notice,
        self_path => path,
        ..base
    };
    render(&state, "admin_source.html", ctx)
}

/// A missing token is refused by `csrf::verify` like a wrong one (403), not as a bad form.
#[derive(Deserialize)]
pub struct SyncForm {
    #[serde(default)]
    csrf: String,
}

pub async fn source_sync_post(
    state: State<AppState>,
    admin: Admin,
    session: Session,
    headers: HeaderMap,
    peer: ConnectInfo<SocketAddr>,
    id: Path<String>,
    form: Form<SyncForm>,
) -> Result<Response, AppError> {
    start_sync(state, admin, session, headers, peer, id, form, false).await
}

pub async fn source_full_sync_post(
    state: State<AppState>,
    admin: Admin,
    session: Session,
    headers: HeaderMap,
    peer: ConnectInfo<SocketAddr>,
    id: Path<String>,
    form: Form<SyncForm>,
) -> Result<Response, AppError> {
    start_sync(state, admin, session, headers, peer, id, form, true).await
}

/// Starts a manual run in the background and sends the browser back to the source's page,
/// which says whether it started. A source already running is not started twice.
// The two POST handlers pass their extractors through unchanged, so that each route's
// signature still shows that it needs `Admin`; bundling them in a struct would hide that.
#[allow(clippy::too_many_arguments)]
async fn start_sync(
    State(state): State<AppState>,
    Admin(user): Admin,
    session: Session,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(form): Form<SyncForm>,
    full: bool,
) -> Result<Response, AppError> {
    csrf::verify(&session, &form.csrf).await?;
    let source = state
        .config
        .source(&id)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound))?
        .clone();
    let back = format!("/admin/sources/{}", urlencode(&source.id));
    if !source.enabled {
        return Ok(Redirect::to(&format!("{back}?notice=disabled")).into_response());
    }
    if state.sync.is_running(&source.id) {
        return Ok(Redirect::to(&format!("{back}?notice=already_running")).into_response());
    }
    let client = client_ip(peer.ip(), &headers, &state.config.server.trusted_proxies);
    let action = if full { "full_sync" } else { "sync_now" };
    state
        .store
        .audit(
            Some(&user.id),
            action,
            &source.id,
            Some(&client.to_string()),
        )
        .await?;
    tracing::info!(user = %user.id, source = %source.id, full, "manual sync requested");
    let engine = state.sync.clone();
    let source_id = source.id.clone();
    tokio::spawn(async move {
        match engine.run(&source_id, "manual", full, &|_| {}).await {
            Ok(_) => {}
            Err(SyncError::AlreadyRunning(_)) => {
                tracing::info!(source = %source_id, "manual run skipped: a run is already going")
            }
            Err(e) => tracing::error!(source = %source_id, error = %e, "manual sync could not run"),
        }
    });
    let notice = if full { "full_started" } else { "started" };
    Ok(Redirect::to(&format!("{back}?notice={notice}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdue_once_two_scheduled_runs_have_passed() {
        let start = DateTime::parse_from_rfc3339("2026-11-27T08:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let at = |minutes: i64| start + chrono::Duration::minutes(minutes);
        let every = Schedule::parse("every 30m").unwrap_or(Schedule::Manual);
        assert!(!overdue(&every, start, at(45)));
        assert!(!overdue(&every, start, at(59)));
        assert!(overdue(&every, start, at(61)));
        let hourly = Schedule::parse("0 * * * *").unwrap_or(Schedule::Manual);
        assert!(!overdue(&hourly, start, at(90)));
        assert!(overdue(&hourly, start, at(121)));
        assert!(!overdue(&Schedule::Manual, start, at(100_000)));
    }
}
