//! The shared HTTP client against real servers on 127.0.0.1: retries, `Retry-After`,
//! redirects, size caps, conditional requests, credentials and politeness.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use samle_connectors::http::{Fetch, HttpClient, HttpError, HttpParams, USER_AGENT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// Serves `router` on 127.0.0.1 and returns its address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Parameters suitable for tests: no politeness delay, short back-off caps.
pub fn fast_params() -> HttpParams {
    HttpParams {
        min_delay: Some("0ms".to_owned()),
        max_retry_wait: Some("2s".to_owned()),
        retries: Some(2),
        timeout: Some("10s".to_owned()),
        ..HttpParams::default()
    }
}

fn make_client(addr: SocketAddr, params: &HttpParams) -> (HttpClient, Url) {
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    (HttpClient::new(params, &base).unwrap(), base)
}

/// A log of the requests a fixture server saw, in order.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn sends_the_user_agent_and_reads_the_body() {
    let router = Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            headers[header::USER_AGENT].to_str().unwrap().to_owned()
        }),
    );
    let addr = serve(router).await;
    let (client, base) = make_client(addr, &fast_params());
    let fetched = client.get(&base).await.unwrap();
    assert_eq!(String::from_utf8(fetched.body).unwrap(), USER_AGENT);
    assert!(USER_AGENT.starts_with("Samle/"));
    assert!(USER_AGENT.ends_with("(+intranet search)"));
}

#[tokio::test]
async fn honours_retry_after_on_429_and_503() {
    let log = Log::default();
    let router = Router::new()
        .route(
            "/seconds",
            get(|State(log): State<Log>| async move {
                let n = log.entries().iter().filter(|e| *e == "seconds").count();
                log.push("seconds");
                if n == 0 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "1")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    "ok".into_response()
                }
            }),
        )
        .route(
            "/date",
            get(|State(log): State<Log>| async move {
                let n = log.entries().iter().filter(|e| *e == "date").count();
                log.push("date");
                if n == 0 {
                    let when = (chrono::Utc::now() + chrono::Duration::seconds(1))
                        .format("%a, %d %b %Y %H:%M:%S GMT")
                        .to_string();
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, when)],
                        "busy",
                    )
                        .into_response()
                } else {
                    "ok".into_response()
                }
            }),
        )
        .with_state(log.clone());
    let addr = serve(router).await;
    let (client, base) = make_client(addr, &fast_params());

    let fetched = client.get(&base.join("seconds").unwrap()).await.unwrap();
    assert_eq!(fetched.body, b"ok");
    let fetched = client.get(&base.join("date").unwrap()).await.unwrap();
    assert_eq!(fetched.body, b"ok");
    assert_eq!(log.entries(), ["seconds", "seconds", "date", "date"]);
}

#[tokio::test]
async fn a_persistent_500_fails_after_the_retries() {
    let hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/",
            get(|State(hits): State<Arc<AtomicUsize>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .with_state(Arc::clone(&hits));
    let addr = serve(router).await;
    let params = HttpParams {
        retries: Some(1),
        ..fast_params()
    };
    let (client, base) = make_client(addr, &params);
    let err = client.get(&base).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one try and one retry");
}

#[tokio::test]
async fn a_401_is_not_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/",
            get(|State(hits): State<Arc<AtomicUsize>>| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                StatusCode::UNAUTHORIZED
            }),
        )
        .with_state(Arc::clone(&hits));
    let addr = serve(router).await;
    let (client, base) = make_client(addr, &fast_params());
    let err = client.get(&base).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

fn redirect_to(location: String) -> Router {
    Router::new().route(
        "/",
        get(move || {
            let location = location.clone();
            async move { (StatusCode::FOUND, [(header::LOCATION, location)]).into_response() }
        }),
    )
}

#[tokio::test]
async fn redirects_to_other_hosts_are_refused() {
    let other = serve(Router::new().route("/", get(|| async { "other" }))).await;
    // "localhost" is another host than "127.0.0.1" as far as the allow-list is concerned.
    let addr = serve(redirect_to(format!("http://localhost:{}/", other.port()))).await;
    let (client, base) = make_client(addr, &fast_params());
    let err = client.get(&base).await.unwrap_err();
    assert!(matches!(err, HttpError::RedirectRefused { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("redirect from"), "{message}");
    assert!(message.contains("localhost"), "{message}");
    assert!(message.contains("allowed_hosts"), "{message}");
}

#[tokio::test]
async fn redirects_within_the_allow_list_are_followed() {
    let addr = serve(
        Router::new()
            .route(
                "/",
                get(|| async {
                    (StatusCode::FOUND, [(header::LOCATION, "/moved")]).into_response()
                }),
            )
            .route("/moved", get(|| async { "here" })),
    )
    .await;
    let (client, base) = make_client(addr, &fast_params());
    let fetched = client.get(&base).await.unwrap();
    assert_eq!(fetched.body, b"here");
    assert_eq!(fetched.url.path(), "/moved");
}

#[tokio::test]
async fn redirects_to_link_local_addresses_are_refused_even_when_allowed() {
    let addr = serve(redirect_to(
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ))
    .await;
    let params = HttpParams {
        allowed_hosts: vec!["169.254.169.254".to_owned()],
        ..fast_params()
    };
    let (client, base) = make_client(addr, &params);
    let err = client.get(&base).await.unwrap_err();
    assert!(matches!(err, HttpError::RedirectRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("link-local"), "{err}");

    let direct = Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
    let err = client.get(&direct).await.unwrap_err();
    assert!(err.to_string().contains("link-local"), "{err}");
}

#[tokio::test]
async fn a_response_over_the_cap_is_refused() {
    let addr = serve(Router::new().route("/", get(|| async { "x".repeat(64 * 1024) }))).await;
    let params = HttpParams {
        max_response_bytes: Some(16 * 1024),
        ..fast_params()
    };
    let (client, base) = make_client(addr, &params);
    let err = client.get(&base).await.unwrap_err();
    assert!(matches!(err, HttpError::TooLarge { .. }), "{err:?}");
}

/// A server that sends a chunked body without end: only a cap enforced while streaming stops it.
#[tokio::test]
async fn an_endless_chunked_response_is_cut_off_while_streaming() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("{:x}\r\n{}\r\n", 8192, "y".repeat(8192));
        while socket.write_all(chunk.as_bytes()).await.is_ok() {}
    });
    let params = HttpParams {
        max_response_bytes: Some(100 * 1024),
        ..fast_params()
    };
    let (client, base) = make_client(addr, &params);
    let err = client.get(&base).await.unwrap_err();
    assert!(
        matches!(err, HttpError::TooLarge { limit: 102_400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn conditional_requests() {
    let router = Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                == Some("\"v1\"")
            {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                (
                    [
                        (header::ETAG, "\"v1\""),
                        (header::LAST_MODIFIED, "Tue, 14 Oct 2025 07:30:00 GMT"),
                        (header::CONTENT_TYPE, "text/html; charset=windows-1252"),
                    ],
                    "body",
                )
                    .into_response()
            }
        }),
    );
    let addr = serve(router).await;
    let (client, base) = make_client(addr, &fast_params());
    let Fetch::Fetched(fetched) = client.get_conditional(&base, None, None).await.unwrap() else {
        panic!("expected a body");
    };
    assert_eq!(fetched.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        fetched.last_modified.as_deref(),
        Some("Tue, 14 Oct 2025 07:30:00 GMT")
    );
    assert_eq!(fetched.charset(), Some("windows-1252"));
    let again = client
        .get_conditional(
            &base,
            fetched.etag.as_deref(),
            fetched.last_modified.as_deref(),
        )
        .await
        .unwrap();
    assert_eq!(again, Fetch::NotModified);
}

#[tokio::test]
async fn credentials_come_from_the_environment() {
    let router = Router::new().route(
        "/",
        get(|headers: HeaderMap| async move {
            match headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
            {
                // "u:samle-connectors": cargo sets CARGO_PKG_NAME for test runs.
                Some("Basic dTpzYW1sZS1jb25uZWN0b3Jz") => "basic".into_response(),
                Some("Bearer samle-connectors") => "bearer".into_response(),
                _ => StatusCode::UNAUTHORIZED.into_response(),
            }
        }),
    );
    let addr = serve(router).await;
    let basic = HttpParams {
        username: Some("u".to_owned()),
        password_env: Some("CARGO_PKG_NAME".to_owned()),
        ..fast_params()
    };
    let (client, base) = make_client(addr, &basic);
    assert_eq!(client.get(&base).await.unwrap().body, b"basic");

    let bearer = HttpParams {
        token_env: Some("CARGO_PKG_NAME".to_owned()),
        ..fast_params()
    };
    let (client, base) = make_client(addr, &bearer);
    assert_eq!(client.get(&base).await.unwrap().body, b"bearer");

    let (anonymous, base) = make_client(addr, &fast_params());
    let err = anonymous.get(&base).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));

    let missing = HttpParams {
        token_env: Some("SAMLE_TEST_SURELY_UNSET_TOKEN".to_owned()),
        ..fast_params()
    };
    let err = HttpClient::new(&missing, &base).unwrap_err();
    assert!(err.is_config());
    assert!(
        err.to_string().contains("SAMLE_TEST_SURELY_UNSET_TOKEN"),
        "{err}"
    );
}

#[tokio::test]
async fn politeness_bounds_requests_in_flight_per_host() {
    #[derive(Clone, Default)]
    struct Gauge {
        now: Arc<AtomicUsize>,
        max: Arc<AtomicUsize>,
    }
    let gauge = Gauge::default();
    let router = Router::new()
        .route(
            "/{n}",
            get(|State(g): State<Gauge>| async move {
                let now = g.now.fetch_add(1, Ordering::SeqCst) + 1;
                g.max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                g.now.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }),
        )
        .with_state(gauge.clone());
    let addr = serve(router).await;
    let params = HttpParams {
        max_concurrency: Some(1),
        ..fast_params()
    };
    let (client, base) = make_client(addr, &params);
    let client = Arc::new(client);
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let client = Arc::clone(&client);
            let url = base.join(&n.to_string()).unwrap();
            tokio::spawn(async move { client.get(&url).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(gauge.max.load(Ordering::SeqCst), 1);
}

#[test]
fn bad_http_parameters_are_config_errors() {
    let base = Url::parse("https://intra.example.dk/").unwrap();
    for params in [
        HttpParams {
            timeout: Some("soon".to_owned()),
            ..HttpParams::default()
        },
        HttpParams {
            max_concurrency: Some(0),
            ..HttpParams::default()
        },
        HttpParams {
            username: Some("u".to_owned()),
            ..HttpParams::default()
        },
        HttpParams {
            allowed_hosts: vec!["https://x/".to_owned()],
            ..HttpParams::default()
        },
    ] {
        let err = HttpClient::new(&params, &base).unwrap_err();
        assert!(err.is_config(), "{err}");
    }
}

#[tokio::test]
async fn https_with_the_organisations_ca() {
    let router = Router::new().route("/", get(|| async { "over tls" }));
    let server = crate::common::serve_tls(router).await;

    let trusted = HttpParams {
        ca_file: Some(server.ca_file.clone()),
        ..fast_params()
    };
    let client = HttpClient::new(&trusted, &server.url).unwrap();
    let fetched = client.get(&server.url).await.unwrap();
    assert_eq!(fetched.body, b"over tls");

    // Without the CA the system roots do not know the certificate: a clear refusal, and no
    // retries (it would be refused again).
    let client = HttpClient::new(&fast_params(), &server.url).unwrap();
    let err = client.get(&server.url).await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(client.stats().requests, 1);

    // A CA file that is missing or not PEM is a configuration error naming the file.
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    for path in [dir.path().join("missing.pem"), not_pem] {
        let params = HttpParams {
            ca_file: Some(path.clone()),
            ..fast_params()
        };
        let err = HttpClient::new(&params, &server.url).unwrap_err();
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains("ca_file"), "{err}");
    }

    // Relative to the configuration's folder.
    let params = HttpParams {
        ca_file: Some("ca.pem".into()),
        ..fast_params()
    };
    let client =
        HttpClient::in_dir(&params, &server.url, server.ca_file.parent().unwrap()).unwrap();
    assert_eq!(client.get(&server.url).await.unwrap().body, b"over tls");
}

#[tokio::test]
async fn cookies_from_the_environment_and_from_a_login() {
    let router = Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move {
                headers
                    .get(header::COOKIE)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            }),
        )
        .route(
            "/login",
            axum::routing::post(|body: String| async move {
                assert_eq!(body, "user=bot&password=s%C3%A6t+%26+hemmelig");
                (
                    [(header::SET_COOKIE, "session=abc123; Path=/; HttpOnly")],
                    "logged in",
                )
            }),
        );
    let addr = serve(router).await;

    // The variable is read through `with_env`: tests must not change the process environment.
    let params = HttpParams {
        cookie_env: Some("SAMLE_TEST_COOKIE".to_owned()),
        ..fast_params()
    };
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let client = HttpClient::with_env(&params, &base, std::path::Path::new("."), |name| {
        (name == "SAMLE_TEST_COOKIE").then(|| "sso=tok; lang=da".to_owned())
    })
    .unwrap();
    let sent = String::from_utf8(client.get(&base).await.unwrap().body).unwrap();
    assert!(
        sent.contains("sso=tok") && sent.contains("lang=da"),
        "{sent}"
    );

    // An unset variable or a value that is no cookie is a configuration error.
    let err =
        HttpClient::with_env(&params, &base, std::path::Path::new("."), |_| None).unwrap_err();
    assert!(err.to_string().contains("SAMLE_TEST_COOKIE"), "{err}");
    let err = HttpClient::with_env(&params, &base, std::path::Path::new("."), |_| {
        Some("just-a-token".to_owned())
    })
    .unwrap_err();
    assert!(err.is_config(), "{err}");

    // A cookie set by a login answer is sent with the requests after it.
    let (client, base) = make_client(addr, &fast_params());
    let login = client
        .post_form(
            &base.join("login").unwrap(),
            &[("user", "bot"), ("password", "sæt & hemmelig")],
        )
        .await
        .unwrap();
    assert_eq!(login.body, b"logged in");
    let sent = String::from_utf8(client.get(&base).await.unwrap().body).unwrap();
    assert_eq!(sent, "session=abc123");
}

#[tokio::test]
async fn response_headers_and_counters() {
    let router = Router::new().route(
        "/",
        get(|| async { ([("x-wp-totalpages", "3")], "0123456789") }),
    );
    let addr = serve(router).await;
    let (client, base) = make_client(addr, &fast_params());
    assert_eq!(client.stats().requests, 0);
    let fetched = client.get(&base).await.unwrap();
    assert_eq!(fetched.headers["x-wp-totalpages"], "3");
    client.get(&base).await.unwrap();
    let stats = client.stats();
    assert_eq!((stats.requests, stats.bytes), (2, 20));
}
