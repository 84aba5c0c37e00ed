//! Cross-site request forgery protection, in two independent layers.
//!
//! 1. Every form carries a token that is kept in the visitor's server-side session and
//!    compared in constant time when the form comes back (the synchroniser token pattern).
//! 2. [`reject_cross_site`] refuses any state-changing request that a browser marks as
//!    coming from another site (`Sec-Fetch-Site`) or whose `Origin` is not this host.
//!
//! Cookies are also `SameSite=Lax`, and no GET request changes state.

use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rand::RngCore as _;
use tower_sessions::Session;

use crate::web::error::{AppError, ErrorCode};

pub const SESSION_CSRF: &str = "csrf";

/// The session's token, created on first use.
pub async fn token(session: &Session) -> Result<String, AppError> {
    if let Some(t) = session
        .get::<String>(SESSION_CSRF)
        .await
        .map_err(AppError::session)?
    {
        return Ok(t);
    }
    rotate(session).await
}

/// Replaces the token (after login, so a token seen before login is worthless after it).
pub async fn rotate(session: &Session) -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    session
        .insert(SESSION_CSRF, &t)
        .await
        .map_err(AppError::session)?;
    Ok(t)
}

/// Checks a submitted token against the session's.
pub async fn verify(session: &Session, submitted: &str) -> Result<(), AppError> {
    let expected = session
        .get::<String>(SESSION_CSRF)
        .await
        .map_err(AppError::session)?;
    match expected {
        Some(e) if constant_time_eq(e.as_bytes(), submitted.as_bytes()) => Ok(()),
        _ => Err(AppError::new(ErrorCode::CsrfRejected)),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses cross-site state-changing requests before they reach a handler.
pub async fn reject_cross_site(req: Request, next: Next) -> Response {
    let safe = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if !safe {
        let headers = req.headers();
        let fetch_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let cross_site = fetch_site == "cross-site" || fetch_site == "same-site";
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_mismatch = match (headers.get(header::ORIGIN), host) {
            (Some(origin), Some(host)) => {
                let origin = origin.to_str().unwrap_or("");
                // "null" origins (sandboxed frames, some redirects) are refused too.
                url::Url::parse(origin)
                    .ok()
                    .and_then(|u| {
                        u.host_str().map(|h| match u.port() {
                            Some(p) => format!("{h}:{p}"),
                            None => h.to_string(),
                        })
                    })
                    .is_none_or(|o| !o.eq_ignore_ascii_case(host))
            }
            _ => false,
        };
        if cross_site || origin_mismatch {
            tracing::warn!(method = %req.method(), path = %req.uri().path(), fetch_site, "cross-site request refused");
            return AppError::new(ErrorCode::CsrfRejected).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
