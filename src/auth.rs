//! Who the visitor is: the session's user, their principals and roles, and the extractors
//! that guard routes ([`CurrentUser`] for employees, [`Publisher`], [`Admin`]).
//!
//! A handler's signature says who may call it: a page that takes `Admin` cannot be reached
//! by anyone else. Pages reject with a redirect to the login page (or 403), the JSON API with
//! 401/403 and a stable error object.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::app::AppState;
use crate::config::AuthConfig;
use crate::directory::UserInfo;
use crate::web::error::{AppError, ErrorCode};

/// The session keys this module owns.
pub const SESSION_USER: &str = "user";

/// What the session remembers about a logged-in user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SessionUser {
    pub id: String,
    pub display_name: String,
    pub department: Option<String>,
    pub title: Option<String>,
    pub groups: Vec<String>,
    pub principals: Vec<String>,
    pub publisher: bool,
    pub admin: bool,
    /// Unix seconds of the login, for the absolute timeout.
    pub login_at: i64,
    /// Unix seconds of the last time the groups were read from the directory.
    pub refreshed_at: i64,
    /// Unix seconds of the last request that extended the session (see `TOUCH_INTERVAL`).
    #[serde(default)]
    pub last_seen: i64,
}

/// A session's idle expiry is extended only when the session is saved, and saving on every
/// request would cost a synchronous database write per search. Touching it at most once a
/// minute keeps the idle timeout accurate to a minute for a fraction of the writes.
const TOUCH_INTERVAL: i64 = 60;

/// After a failed principal refresh, seconds until the next try.
const REFRESH_RETRY: i64 = 30;

impl SessionUser {
    /// Builds the session user from the directory's answer, or `None` when the configuration
    /// does not let this user log in at all.
    pub fn from_directory(user: &UserInfo, auth: &AuthConfig, now: i64) -> Option<SessionUser> {
        let in_any = |groups: &[String]| groups.iter().any(|g| user.groups.contains(g));
        if !auth.employee_groups.is_empty() && !in_any(&auth.employee_groups) {
            return None;
        }
        Some(SessionUser {
            id: user.id.clone(),
            display_name: user.display_name.clone(),
            department: user.department.clone(),
            title: user.title.clone(),
            groups: user.groups.clone(),
            principals: principals_for(user, auth),
            publisher: in_any(&auth.publisher_groups) || in_any(&auth.admin_groups),
            admin: in_any(&auth.admin_groups),
            login_at: now,
            refreshed_at: now,
            last_seen: now,
        })
    }

    pub fn principals(&self) -> samle_index::Principals {
        samle_index::Principals::new(self.principals.iter().cloned())
    }
}

/// The principals a user's documents may name: everyone's, the user's own, each group's,
/// and whatever `auth.group_principals` adds for the user's groups (so that a long
/// directory group name can grant the short principal the sources use).
pub fn principals_for(user: &UserInfo, auth: &AuthConfig) -> Vec<String> {
    let mut p = vec![
        samle_index::Principals::PUBLIC.to_string(),
        samle_index::Principals::AUTHENTICATED.to_string(),
        format!("user:{}", user.id),
    ];
    p.extend(user.groups.iter().map(|g| format!("group:{g}")));
    for g in &user.groups {
        if let Some(extra) = auth.group_principals.get(g) {
            p.extend(extra.iter().cloned());
        }
    }
    p.sort();
    p.dedup();
    p
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A logged-in employee. Enforces the absolute session timeout and refreshes the user's
/// groups from the directory when they are older than the configured interval.
#[derive(Clone, Debug)]
pub struct CurrentUser(pub SessionUser);

/// A logged-in user with the publisher role.
#[derive(Clone, Debug)]
pub struct Publisher(pub SessionUser);

/// A logged-in user with the admin role.
#[derive(Clone, Debug)]
pub struct Admin(pub SessionUser);

/// The visitor, logged in or not (for pages that work either way, like the login page).
#[derive(Clone, Debug)]
pub struct MaybeUser(pub Option<SessionUser>);

async fn session_of(parts: &mut Parts, state: &AppState) -> Result<Session, AppError> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, msg)| AppError::internal(format!("session layer missing: {msg}")))
}

/// Reads the user from the session, enforcing timeouts and refreshing principals.
pub async fn load_user(
    session: &Session,
    state: &AppState,
) -> Result<Option<SessionUser>, AppError> {
    let Some(mut user) = session
        .get::<SessionUser>(SESSION_USER)
        .await
        .map_err(AppError::session)?
    else {
        return Ok(None);
    };
    let now = now_unix();
    let absolute = state.config.server.session_absolute_timeout.as_secs() as i64;
    if now - user.login_at > absolute {
        tracing::info!(user = %user.id, "session ended: absolute timeout");
        session.flush().await.map_err(AppError::session)?;
        return Ok(None);
    }
    let refresh = state.config.auth.principal_refresh.as_secs() as i64;
    if now - user.refreshed_at >= refresh {
        match state.directory.lookup(&user.id).await {
            Ok(Some(info)) => {
                match SessionUser::from_directory(&info, &state.config.auth, user.login_at) {
                    Some(mut fresh) => {
                        fresh.refreshed_at = now;
                        fresh.last_seen = now;
                        if fresh.principals != user.principals {
                            tracing::info!(user = %user.id, "principals changed on refresh");
                        }
                        user = fresh;
                        session
                            .insert(SESSION_USER, &user)
                            .await
                            .map_err(AppError::session)?;
                    }
                    None => {
                        tracing::info!(user = %user.id, "session ended: no longer allowed to log in");
                        session.flush().await.map_err(AppError::session)?;
                        return Ok(None);
                    }
                }
            }
            Ok(None) => {
                tracing::info!(user = %user.id, "session ended: user removed or disabled");
                session.flush().await.map_err(AppError::session)?;
                return Ok(None);
            }
            // The directory being down must not log everyone out or stop search: keep the
            // principals we have. Try again after a short back-off rather than on every
            // request, or each request of every session would wait for the directory's
            // timeout.
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "principal refresh failed; keeping the current ones");
                user.refreshed_at = now - refresh + refresh.min(REFRESH_RETRY);
                user.last_seen = now;
                session
                    .insert(SESSION_USER, &user)
                    .await
                    .map_err(AppError::session)?;
            }
        }
    }
    // Touch often enough that a short idle timeout is still extended by activity.
    let idle = state.config.server.session_idle_timeout.as_secs() as i64;
    if now - user.last_seen >= TOUCH_INTERVAL.min((idle / 2).max(1)) {
        user.last_seen = now;
        session
            .insert(SESSION_USER, &user)
            .await
            .map_err(AppError::session)?;
    }
    Ok(Some(user))
}

impl<S> FromRequestParts<S> for MaybeUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let session = session_of(parts, &state).await?;
        Ok(MaybeUser(load_user(&session, &state).await?))
    }
}

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let MaybeUser(user) = MaybeUser::from_request_parts(parts, state).await?;
        match user {
            Some(u) => Ok(CurrentUser(u)),
            None => Err(AppError::new(ErrorCode::Unauthenticated).with_return_to(
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into()),
            )),
        }
    }
}

/// The logged-in user if `has_role` says yes; 403 otherwise (after the login check, so an
/// anonymous visitor is still sent to the login page).
async fn user_with_role<S>(
    parts: &mut Parts,
    state: &S,
    has_role: fn(&SessionUser) -> bool,
) -> Result<SessionUser, AppError>
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
    if has_role(&user) {
        Ok(user)
    } else {
        Err(AppError::new(ErrorCode::Forbidden))
    }
}

impl<S> FromRequestParts<S> for Publisher
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        user_with_role(parts, state, |u| u.publisher)
            .await
            .map(Publisher)
    }
}

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        user_with_role(parts, state, |u| u.admin).await.map(Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn user(groups: &[&str]) -> UserInfo {
        UserInfo {
            id: "mette".into(),
            display_name: "Mette Sørensen".into(),
            mail: None,
            department: None,
            title: None,
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn auth(employee: &[&str]) -> AuthConfig {
        AuthConfig {
            employee_groups: employee.iter().map(|s| s.to_string()).collect(),
            publisher_groups: vec!["publicister".into()],
            admin_groups: vec!["portal-admins".into()],
            principal_refresh: Duration::from_secs(60),
            throttle: Default::default(),
            group_principals: Default::default(),
        }
    }

    #[test]
    fn roles_follow_groups() {
        let cases: &[(&[&str], bool, bool)] = &[
            (&["borgerservice"], false, false),
            (&["publicister"], true, false),
            (&["portal-admins"], true, true),
        ];
        for (groups, publisher, admin) in cases {
            let u = SessionUser::from_directory(&user(groups), &auth(&[]), 0).unwrap();
            assert_eq!((u.publisher, u.admin), (*publisher, *admin), "{groups:?}");
        }
    }

    #[test]
    fn employee_groups_restrict_login() {
        assert!(SessionUser::from_directory(&user(&["x"]), &auth(&["alle"]), 0).is_none());
        assert!(SessionUser::from_directory(&user(&["alle"]), &auth(&["alle"]), 0).is_some());
    }

    #[test]
    fn principals_name_user_and_groups() {
        let mut a = auth(&[]);
        a.group_principals
            .insert("GG-Samle-Ledere".into(), vec!["group:ledere".into()]);
        let p = principals_for(&user(&["GG-Samle-Ledere", "borgerservice"]), &a);
        assert_eq!(
            p,
            vec![
                "authenticated",
                "group:GG-Samle-Ledere",
                "group:borgerservice",
                "group:ledere",
                "public",
                "user:mette"
            ]
        );
    }
}
