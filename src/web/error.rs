//! The one place that turns errors into responses.
//!
//! Handlers and extractors return [`AppError`]. Its `IntoResponse` only records the error in
//! the response's extensions; the [`render_errors`] middleware, which knows the request (page
//! or API, language, request id), renders it as the HTML error page, a redirect to the login
//! page, or the JSON API's stable error object. Internal details go to the log with the
//! request id, never to the visitor.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use crate::app::AppState;
use crate::web::i18n::UiLang;

/// The small, stable set of error codes the portal answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    CsrfRejected,
    TooManyRequests,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::CsrfRejected => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::CsrfRejected => "csrf_rejected",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error on its way to the visitor.
#[derive(Clone, Debug)]
pub struct AppError {
    pub code: ErrorCode,
    /// A message safe to show (already user-facing); the catalogue's text is used otherwise.
    pub public_detail: Option<String>,
    /// Logged, never shown.
    pub internal: Option<String>,
    /// For `Unauthenticated` pages: where to go after logging in.
    pub return_to: Option<String>,
}

impl AppError {
    pub fn new(code: ErrorCode) -> AppError {
        AppError {
            code,
            public_detail: None,
            internal: None,
            return_to: None,
        }
    }

    pub fn internal(detail: impl Into<String>) -> AppError {
        AppError {
            internal: Some(detail.into()),
            ..AppError::new(ErrorCode::Internal)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> AppError {
        AppError {
            public_detail: Some(detail.into()),
            ..AppError::new(ErrorCode::BadRequest)
        }
    }

    pub fn session(e: tower_sessions::session::Error) -> AppError {
        AppError::internal(format!("session store: {e}"))
    }

    pub fn with_return_to(mut self, path: String) -> AppError {
        self.return_to = Some(path);
        self
    }
}

impl From<samle_index::IndexError> for AppError {
    fn from(e: samle_index::IndexError) -> Self {
        if e.is_user_error() {
            AppError::bad_request(e.to_string())
        } else {
            AppError::internal(format!("index: {e:?}"))
        }
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::internal(format!("store: {e}"))
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::internal(format!("task: {e}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = self.code.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The JSON API's error object: `{"error": {"code", "message", "request_id"}}`.
#[derive(Serialize)]
struct ApiErrorBody<'a> {
    error: ApiErrorInner<'a>,
}

#[derive(Serialize)]
struct ApiErrorInner<'a> {
    code: &'a str,
    message: String,
    request_id: &'a str,
}

pub fn request_id(req_headers: &axum::http::HeaderMap) -> String {
    req_headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

/// Renders errors recorded by [`AppError`], and the bare 404/405 answers of the router.
pub async fn render_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let is_api = path.starts_with("/api/");
    let rid = request_id(req.headers());
    let lang = UiLang::negotiate(req.headers(), &state.config.server.default_language);
    let session = req.extensions().get::<tower_sessions::Session>().cloned();
    let mut response = next.run(req).await;

    let error = match response.extensions_mut().remove::<AppError>() {
        Some(e) => e,
        None if response.status() == StatusCode::NOT_FOUND
            && response.headers().get(header::CONTENT_TYPE).is_none() =>
        {
            AppError::new(ErrorCode::NotFound)
        }
        None if response.status() == StatusCode::METHOD_NOT_ALLOWED => AppError {
            public_detail: Some("method not allowed".into()),
            ..AppError::new(ErrorCode::BadRequest)
        },
        None => return response,
    };
    if let Some(detail) = &error.internal {
        tracing::error!(request_id = %rid, path = %path, code = error.code.as_str(), detail = %detail, "request failed");
    } else {
        tracing::debug!(request_id = %rid, path = %path, code = error.code.as_str(), "request refused");
    }
    let status = if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        error.code.status()
    };
    let message = error.public_detail.clone().unwrap_or_else(|| {
        state
            .templates
            .catalog(lang)
            .text(&format!("error.{}.text", error.code.as_str()))
    });

    if is_api {
        let body = ApiErrorBody {
            error: ApiErrorInner {
                code: error.code.as_str(),
                message,
                request_id: &rid,
            },
        };
        let mut r = (status, axum::Json(body)).into_response();
        copy_retry_after(&response, &mut r);
        return r;
    }
    if error.code == ErrorCode::Unauthenticated {
        let target = match error.return_to.as_deref() {
            Some(p) if p != "/" && crate::web::pages::is_local_path(p) => {
                format!("/login?next={}", urlencode(p))
            }
            _ => "/login".to_string(),
        };
        return Redirect::to(&target).into_response();
    }
    // The error page keeps the normal header (who is logged in, log out, language), so a
    // visitor is never stranded on it.
    let base = match &session {
        Some(s) => {
            let user = s
                .get::<crate::auth::SessionUser>(crate::auth::SESSION_USER)
                .await
                .ok()
                .flatten();
            crate::web::pages::layout(&state, s, lang, user.as_ref(), "/")
                .await
                .ok()
        }
        None => None,
    };
    let ctx = minijinja::context! {
        lang => lang.as_str(),
        code => error.code.as_str(),
        status => status.as_u16(),
        message => message,
        request_id => rid.clone(),
        demo => state.directory.kind() == "demo",
        ..base.unwrap_or_default()
    };
    let mut r = match state.templates.render("error.html", ctx) {
        Ok(html) => (status, axum::response::Html(html)).into_response(),
        Err(e) => {
            tracing::error!(request_id = %rid, error = %e, "cannot render the error page");
            (status, format!("error {} (request {rid})", status.as_u16())).into_response()
        }
    };
    copy_retry_after(&response, &mut r);
    r
}

fn copy_retry_after(from: &Response, to: &mut Response) {
    if let Some(v) = from.headers().get(header::RETRY_AFTER) {
        to.headers_mut().insert(header::RETRY_AFTER, v.clone());
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A header value that is known to be valid.
pub fn static_header(v: &'static str) -> HeaderValue {
    HeaderValue::from_static(v)
}
