#![allow(clippy::unwrap_used)]
//! Sessions end to end, against a real `samle serve`: idle and absolute timeouts enforced by
//! the server (the tests replay the cookie themselves, so no client-side expiry helps), a new
//! session id at login (fixation), principals re-read from a real `slapd` after a group
//! change, a disabled or removed user losing the session, a directory that stops or hangs
//! mid-session, and the route table walked by an anonymous visitor.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::slapd::{self, Slapd};
use common::{PASSWORD, Portal, csrf_in, raw_client, set_cookie_value};
use serde_json::Value;

/// The longest the tests wait for something that should happen within the configured
/// refresh interval (1 s): generous, because the machine may be busy.
const REFRESH_WAIT: Duration = Duration::from_secs(10);

/// The demo configuration's roles: lars is a publisher, anna an administrator.
const DEMO_ROLES: &str = "publisher_groups = [\"publicister\"]\nadmin_groups = [\"portal-admins\"]";

/// A portal on the demo directory over a small share, with `server` added to `[server]`.
fn demo_portal(server: &str) -> (Portal, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("ferie.md"), "# Ferieplan\n\nFerie for alle.\n").unwrap();
    let config = common::file_share_config(dir.path(), &root, "run_on_start = false");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[index]",
        &format!("[server]\n{server}\n\n[auth]\n{DEMO_ROLES}\n\n[index]"),
    );
    std::fs::write(&config, text).unwrap();
    let portal = Portal::start(&config, &dir.path().join("data"));
    (portal, dir)
}

/// `GET path` with only this session cookie; returns the status and the `Location`.
async fn get_with(portal: &Portal, cookie: &str, path: &str) -> (u16, String) {
    let r = raw_client()
        .get(portal.url(path))
        .header("cookie", format!("samle_session={cookie}"))
        .send()
        .await
        .unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), location)
}

/// `GET /api/v1/me` with only this session cookie: the status and the body.
async fn me_with(portal: &Portal, cookie: &str) -> (u16, Value) {
    let r = raw_client()
        .get(portal.url("/api/v1/me"))
        .header("cookie", format!("samle_session={cookie}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The session was refused: the API says 401 with its error object, a page sends the visitor
/// to the login page.
async fn assert_refused(portal: &Portal, cookie: &str, why: &str) {
    let (status, body) = me_with(portal, cookie).await;
    assert_eq!(status, 401, "{why}: the API still answers: {body}");
    assert_eq!(body["error"]["code"], "unauthenticated", "{why}: {body}");
    let (status, location) = get_with(portal, cookie, "/").await;
    assert_eq!((status, location.as_str()), (303, "/login"), "{why}: /");
    let (status, location) = get_with(portal, cookie, "/search?q=ferie").await;
    assert_eq!(status, 303, "{why}: /search");
    assert!(
        location.starts_with("/login"),
        "{why}: /search → {location}"
    );
}

#[tokio::test]
async fn the_idle_timeout_is_enforced_on_the_server() {
    let (portal, _dir) = demo_portal("session_idle_timeout = \"2s\"");
    let (_, cookie) = portal.login_cookies("mette", PASSWORD).await;
    let (status, me) = me_with(&portal, &cookie).await;
    assert_eq!((status, me["id"].as_str()), (200, Some("mette")));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_refused(&portal, &cookie, "3 s idle with a 2 s idle timeout").await;
}

/// An idle timeout ends a session after that long *without a request*: a user who keeps
/// working must not be logged out by it.
#[tokio::test]
async fn activity_keeps_a_session_alive_past_the_idle_timeout() {
    let (portal, _dir) = demo_portal("session_idle_timeout = \"3s\"");
    let (_, cookie) = portal.login_cookies("mette", PASSWORD).await;
    let started = Instant::now();
    // Twice the idle timeout, a request every half second: never 3 s without one.
    while started.elapsed() < Duration::from_secs(6) {
        let (status, body) = me_with(&portal, &cookie).await;
        assert_eq!(
            status,
            200,
            "an active session ended {:?} after login: {body}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn the_absolute_timeout_ends_even_an_active_session() {
    let (portal, _dir) =
        demo_portal("session_idle_timeout = \"1h\"\nsession_absolute_timeout = \"3s\"");
    let started = Instant::now();
    let (_, cookie) = portal.login_cookies("mette", PASSWORD).await;
    let mut accepted = 0;
    let refused_after = loop {
        let (status, body) = me_with(&portal, &cookie).await;
        match status {
            200 => accepted += 1,
            401 => break started.elapsed(),
            other => panic!("unexpected {other}: {body}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the session was still accepted {:?} after login with a 3 s absolute timeout",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(accepted >= 1, "the session never worked");
    // Never before the timeout (the server counts from the login, which came after `started`).
    assert!(
        refused_after > Duration::from_secs(3),
        "refused after only {refused_after:?}"
    );
    // Ended for good, on pages too.
    assert_refused(&portal, &cookie, "after the absolute timeout").await;
}

#[tokio::test]
async fn login_issues_a_new_session_id_and_the_old_one_grants_nothing() {
    let (portal, _dir) = demo_portal("");
    let raw = raw_client();
    // The session an attacker could have planted: the one the login page hands out.
    let r = raw.get(portal.url("/login")).send().await.unwrap();
    let before = set_cookie_value(&r, "samle_session").expect("the login page sets a session");
    let token_before = csrf_in(&r.text().await.unwrap()).unwrap();
    let r = raw
        .post(portal.url("/login"))
        .header("cookie", format!("samle_session={before}"))
        .form(&[
            ("username", "mette"),
            ("password", PASSWORD),
            ("csrf", &token_before),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let after = set_cookie_value(&r, "samle_session").expect("the login sets a new cookie");
    assert_ne!(before, after, "the session id must change at login");

    let (status, me) = me_with(&portal, &after).await;
    assert_eq!((status, me["id"].as_str()), (200, Some("mette")));
    assert_refused(&portal, &before, "the pre-login session").await;
    // Still nothing after the new session has been used.
    let (status, _) = me_with(&portal, &before).await;
    assert_eq!(status, 401);

    // The CSRF token seen before the login is worthless after it; the new one works.
    let logout = |token: String| {
        let raw = raw.clone();
        let (url, after) = (portal.url("/logout"), after.clone());
        async move {
            raw.post(url)
                .header("cookie", format!("samle_session={after}"))
                .form(&[("csrf", token)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(logout(token_before).await, 403);
    let home = raw
        .get(portal.url("/"))
        .header("cookie", format!("samle_session={after}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(logout(csrf_in(&home).unwrap()).await, 303);
    assert_refused(&portal, &after, "after logout").await;
}

// ---- the route table, anonymously ----------------------------------------------------------

/// Routes anyone may use, and what an anonymous `GET` gets.
const PUBLIC_GET: [&str; 5] = [
    "/login",
    "/healthz",
    "/readyz",
    "/metrics",
    "/static/samle.css",
];
/// Public routes that only take a form post (with the session's CSRF token).
const PUBLIC_POST: [&str; 2] = ["/login", "/lang"];

/// Every `(method, path pattern)` in the route table, read from its source: a route added
/// later is walked too, and fails this test until it refuses anonymous visitors or is listed
/// as public here.
fn route_table() -> BTreeSet<(String, String)> {
    let source = route_source();
    let mut routes = BTreeSet::new();
    for chunk in source.split(".route(\"").skip(1) {
        let (path, rest) = chunk.split_once('"').unwrap();
        let handlers = rest.split([';']).next().unwrap();
        let handlers = handlers.split(".route(").next().unwrap();
        let mut word = String::new();
        for c in handlers.chars() {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if c == '(' && ["get", "post", "put", "patch", "delete"].contains(&word.as_str()) {
                routes.insert((word.to_uppercase(), path.to_string()));
            }
            word.clear();
        }
    }
    routes
}

/// src/web/mod.rs with rustfmt's line breaks inside `.route(` calls taken out, so that
/// `.route(\n    "/long/path",` reads like `.route("/long/path",`.
fn route_source() -> String {
    let source = std::fs::read_to_string(common::repo().join("src/web/mod.rs")).unwrap();
    let mut out = String::with_capacity(source.len());
    let mut rest = source.as_str();
    while let Some(i) = rest.find(".route(") {
        let (before, after) = rest.split_at(i + ".route(".len());
        out.push_str(before);
        rest = after.trim_start();
    }
    out.push_str(rest);
    out
}

/// The section of the route table each path pattern is in: the name of the
/// `let <section> = Router::new()` it is registered under (`public`, `employee`, `admin`).
fn route_sections() -> BTreeMap<String, String> {
    let source = route_source();
    let mut sections = BTreeMap::new();
    let mut section = String::new();
    for line in source.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("let ")
            && let Some((name, init)) = rest.split_once('=')
            && init.trim().starts_with("Router::new()")
        {
            section = name.trim().to_string();
        }
        for chunk in line.split(".route(\"").skip(1) {
            let (path, _) = chunk.split_once('"').unwrap();
            assert!(!section.is_empty(), "{path} is outside a section");
            sections.insert(path.to_string(), section.clone());
        }
    }
    sections
}

/// A concrete path for a pattern: `/doc/{source}/{*id}` → `/doc/b/c`, plus a query for the
/// search routes.
fn concrete(pattern: &str) -> String {
    let mut path: String = pattern
        .split('/')
        .enumerate()
        .map(|(i, seg)| {
            if seg.starts_with('{') {
                char::from(b'a' + (i % 26) as u8).to_string()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if pattern.ends_with("search") {
        path.push_str("?q=x");
    }
    path
}

#[tokio::test]
async fn every_route_but_the_public_ones_refuses_an_anonymous_visitor() {
    let (portal, _dir) = demo_portal("");
    let table = route_table();
    let listed = [
        ("GET", "/"),
        ("GET", "/search"),
        ("GET", "/doc/{source}/{*id}"),
        ("GET", "/api/v1/search"),
        ("GET", "/api/v1/me"),
        ("POST", "/logout"),
        ("GET", "/admin/sources"),
        ("GET", "/admin/sources/{id}"),
        ("POST", "/admin/sources/{id}/sync"),
        ("POST", "/admin/sources/{id}/full-sync"),
    ];
    let public = PUBLIC_GET.iter().map(|p| ("GET", *p));
    for (method, path) in listed.into_iter().chain(public) {
        assert!(
            table.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not in the route table as read from src/web/mod.rs: {table:?}"
        );
    }

    // The walk, without a cookie and with a forged one.
    for cookie in [None, Some("samle_session=forged.value")] {
        let client = raw_client();
        let send = |method: &str, path: &str| {
            let mut rb = match method {
                "GET" => client.get(portal.url(path)),
                "POST" => client.post(portal.url(path)).form(&[("csrf", "x")]),
                "PUT" => client.put(portal.url(path)),
                "PATCH" => client.patch(portal.url(path)),
                _ => client.delete(portal.url(path)),
            };
            if let Some(c) = cookie {
                rb = rb.header("cookie", c);
            }
            rb.send()
        };
        for (method, pattern) in &table {
            if (method == "GET" && PUBLIC_GET.contains(&pattern.as_str()))
                || (method == "POST" && PUBLIC_POST.contains(&pattern.as_str()))
            {
                continue;
            }
            let path = concrete(pattern);
            let what = format!("anonymous {method} {path} (cookie {cookie:?})");
            let r = send(method, &path).await.unwrap();
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string())
                .unwrap_or_default();
            let content_type = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = r.text().await.unwrap();
            if path.starts_with("/api/") {
                assert_eq!(status, 401, "{what}: {body}");
                assert!(
                    content_type.starts_with("application/json"),
                    "{what}: {content_type}"
                );
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["error"]["code"], "unauthenticated", "{what}: {body}");
            } else if method == "GET" || pattern == "/logout" {
                assert_eq!(status, 303, "{what}: {body}");
                assert!(
                    location == "/login" || location.starts_with("/login?next="),
                    "{what} → {location}"
                );
            } else {
                // Any other state-changing route: refused one way or another, never done.
                assert!(
                    status == 401
                        || status == 403
                        || (status == 303 && location.starts_with("/login")),
                    "{what}: {status} {location}"
                );
            }
        }
    }

    // The public routes answer anyone.
    let client = raw_client();
    for path in PUBLIC_GET {
        let r = client.get(portal.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "anonymous GET {path}");
    }
    // And the public forms work with the session's token.
    let r = client.get(portal.url("/login")).send().await.unwrap();
    let cookie = set_cookie_value(&r, "samle_session").unwrap();
    let token = csrf_in(&r.text().await.unwrap()).unwrap();
    let r = client
        .post(portal.url("/lang"))
        .header("cookie", format!("samle_session={cookie}"))
        .form(&[("lang", "en"), ("csrf", token.as_str()), ("next", "/login")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "anonymous POST /lang");
}

// ---- the route table, as each role ---------------------------------------------------------

/// The error page's text for `code` (Danish, the default), as the page shows it.
fn error_message(code: &str) -> String {
    let path = common::repo().join("templates/i18n/da.toml");
    let catalog: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    html_escape(catalog["error"][code]["text"].as_str().unwrap())
}

/// Every route of every section, walked as an employee (mette), a publisher (lars) and an
/// administrator (anna). The section comes from src/web/mod.rs, so a route added later is
/// walked with the rule of its section; a new section fails here until it gets a rule.
#[tokio::test]
async fn every_route_is_walked_as_each_role() {
    let (portal, _dir) = demo_portal("");
    let table = route_table();
    let sections = route_sections();
    for (_, pattern) in &table {
        assert!(
            sections.contains_key(pattern),
            "{pattern} has no section: {sections:?}"
        );
    }
    assert_eq!(sections["/admin/sources"], "admin", "{sections:?}");
    assert_eq!(sections["/search"], "employee", "{sections:?}");
    assert_eq!(sections["/login"], "public", "{sections:?}");

    let forbidden = error_message("forbidden");
    let mut walked = 0;
    for (user, admin) in [("mette", false), ("lars", false), ("anna", true)] {
        let client = portal.login(user).await;
        let token = portal.csrf(&client, "/").await;
        for (method, pattern) in &table {
            let section = sections[pattern].as_str();
            // The public routes are walked anonymously above; logging out would end the walk.
            if section == "public" || pattern == "/logout" {
                continue;
            }
            let path = concrete(pattern);
            let what = format!("{user} {method} {path} ({section})");
            let rb = match method.as_str() {
                "GET" => client.get(portal.url(&path)),
                "POST" => client
                    .post(portal.url(&path))
                    .form(&[("csrf", token.as_str())]),
                other => panic!("{what}: no rule for method {other}"),
            };
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string())
                .unwrap_or_default();
            let content_type = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = r.text().await.unwrap();
            let allowed = match section {
                "employee" => true,
                "admin" => admin,
                other => panic!("{what}: the walk has no rule for section {other:?}"),
            };
            walked += 1;
            if allowed {
                assert!(
                    ![401, 403].contains(&status) && !location.starts_with("/login"),
                    "{what} was refused: {status} {location} {body}"
                );
            } else if path.starts_with("/api/") {
                assert_eq!(status, 403, "{what}: {body}");
                assert!(
                    content_type.starts_with("application/json"),
                    "{what}: {content_type}"
                );
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["error"]["code"], "forbidden", "{what}: {body}");
            } else {
                assert_eq!(status, 403, "{what}: {body}");
                assert!(
                    content_type.starts_with("text/html"),
                    "{what}: {content_type}"
                );
                assert!(
                    body.contains(&forbidden),
                    "{what}: not the 403 page: {body}"
                );
            }
        }
    }
    assert!(walked >= 3 * 9, "only {walked} requests walked");
}

// ---- against a real directory --------------------------------------------------------------

/// A share with one document per audience, each containing `zorbaku`:
/// `borger/plan.md` for group borgerservice, `ledelse/plan.md` for portal-admins (a nested
/// group: lars through managers, anna through it-admins), `alle/plan.md` for everyone.
fn ldap_portal(slapd: &Slapd, auth: &str) -> (Portal, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    for folder in ["borger", "ledelse", "alle"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
        std::fs::write(
            root.join(folder).join("plan.md"),
            format!("# Plan for {folder}\n\nZorbaku kvilmo.\n"),
        )
        .unwrap();
    }
    let config = dir.path().join("samle.toml");
    std::fs::write(
        &config,
        format!(
            r#"{directory}
[auth]
{auth}

[[sources]]
id = "share"
name = "Fællesdrev"
kind = "file-share"
schedule = "manual"
run_on_start = false

[sources.file-share]
root = "{root}"
language = "da"
access = [
  {{ path = "borger/**", principals = ["group:borgerservice"] }},
  {{ path = "ledelse/**", principals = ["group:portal-admins"] }},
  {{ path = "alle/**", principals = ["authenticated"] }},
]
"#,
            directory = slapd.portal_directory_toml(dir.path()),
            root = root.display(),
        ),
    )
    .unwrap();
    let portal = Portal::start(&config, &dir.path().join("data"));
    (portal, dir)
}

async fn ldap_login(portal: &Portal, user: &str) -> reqwest::Client {
    let client = portal.client();
    let r = portal.post_login(&client, user, slapd::PASSWORD).await;
    assert_eq!(
        r.status(),
        303,
        "login as {user}: {}",
        r.text().await.unwrap()
    );
    client
}

/// The ids the user finds for `zorbaku`, or the status when the search is refused.
async fn found(portal: &Portal, client: &reqwest::Client) -> Result<BTreeSet<String>, u16> {
    let r = client
        .get(portal.url("/api/v1/search?q=zorbaku"))
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let v: Value = r.json().await.unwrap();
    let ids: BTreeSet<String> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(v["total"].as_u64().unwrap() as usize, ids.len(), "{v}");
    Ok(ids)
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Polls `found` until `done` holds (at most [`REFRESH_WAIT`]); returns the last answer.
async fn poll_until(
    portal: &Portal,
    client: &reqwest::Client,
    done: impl Fn(&Result<BTreeSet<String>, u16>) -> bool,
) -> Result<BTreeSet<String>, u16> {
    let deadline = Instant::now() + REFRESH_WAIT;
    loop {
        let now = found(portal, client).await;
        if done(&now) || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_group_change_in_the_directory_takes_effect_within_the_refresh_interval() {
    let slapd = Slapd::start();
    let (portal, _dir) = ldap_portal(&slapd, "principal_refresh = \"1s\"");
    let mette = ldap_login(&portal, "mette").await;
    let lars = ldap_login(&portal, "lars").await;
    let anna = ldap_login(&portal, "anna").await;
    let (borger, ledelse, alle) = ("borger/plan.md", "ledelse/plan.md", "alle/plan.md");
    assert_eq!(found(&portal, &mette).await, Ok(ids(&[alle, borger])));
    assert_eq!(
        found(&portal, &lars).await,
        Ok(ids(&[alle, borger, ledelse]))
    );
    assert_eq!(found(&portal, &anna).await, Ok(ids(&[alle, ledelse])));

    // Mette leaves borgerservice.
    slapd.ldapmodify(&format!(
        "dn: cn=borgerservice,ou=groups,{s}\nchangetype: modify\ndelete: member\n\
         member: uid=mette,ou=people,{s}\n",
        s = slapd::SUFFIX
    ));
    let now = poll_until(&portal, &mette, |r| r == &Ok(ids(&[alle]))).await;
    assert_eq!(
        now,
        Ok(ids(&[alle])),
        "mette still sees borgerservice's document"
    );

    // managers stop being a member of portal-admins: lars loses what came through the
    // nesting, anna (through it-admins) keeps it.
    slapd.ldapmodify(&format!(
        "dn: cn=portal-admins,ou=groups,{s}\nchangetype: modify\ndelete: member\n\
         member: cn=managers,ou=groups,{s}\n",
        s = slapd::SUFFIX
    ));
    let now = poll_until(&portal, &lars, |r| r == &Ok(ids(&[alle, borger]))).await;
    assert_eq!(
        now,
        Ok(ids(&[alle, borger])),
        "lars still sees portal-admins' document"
    );
    let me: Value = lars
        .get(portal.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"]["admin"], false, "{me}");
    assert_eq!(found(&portal, &anna).await, Ok(ids(&[alle, ledelse])));
    assert_eq!(found(&portal, &mette).await, Ok(ids(&[alle])));
}

#[tokio::test]
async fn a_user_disabled_or_removed_in_the_directory_loses_the_session() {
    let slapd = Slapd::start();
    let (portal, _dir) = ldap_portal(&slapd, "principal_refresh = \"1s\"");
    let mette = ldap_login(&portal, "mette").await;
    let lars = ldap_login(&portal, "lars").await;
    let anna = ldap_login(&portal, "anna").await;
    for client in [&mette, &lars, &anna] {
        assert!(found(&portal, client).await.is_ok());
    }

    // Disabled by an administrator (a permanent ppolicy lock).
    slapd.ldapmodify(&format!(
        "dn: uid=lars,ou=people,{}\nchangetype: modify\nadd: pwdAccountLockedTime\n\
         pwdAccountLockedTime: 000001010000Z\n",
        slapd::SUFFIX
    ));
    let now = poll_until(&portal, &lars, |r| r.is_err()).await;
    assert_eq!(now, Err(401), "a disabled user keeps searching");
    let r = lars.get(portal.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");

    // Removed from the directory.
    slapd.ldapmodify(&format!(
        "dn: uid=mette,ou=people,{}\nchangetype: delete\n",
        slapd::SUFFIX
    ));
    let now = poll_until(&portal, &mette, |r| r.is_err()).await;
    assert_eq!(now, Err(401), "a removed user keeps searching");

    // Nobody else was logged out.
    assert_eq!(
        found(&portal, &anna).await,
        Ok(ids(&["alle/plan.md", "ledelse/plan.md"]))
    );
}

/// A message of the login page (Danish, the default), as the page shows it.
fn login_message(key: &str) -> String {
    let path = common::repo().join("templates/i18n/da.toml");
    let catalog: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    html_escape(catalog["login"][key].as_str().unwrap())
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// Bounds what must return even when the directory does not answer.
async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within 30 s"))
}

/// While the directory is down or hung, an open session keeps its principals and searches;
/// a new login fails with the "directory unavailable" page (503), not "wrong password".
async fn assert_outage_is_contained(portal: &Portal, session: &reqwest::Client, what: &str) {
    // Past the refresh interval: the next request tries the directory and fails.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..2 {
        let now = bounded(what, found(portal, session)).await;
        assert_eq!(
            now,
            Ok(ids(&["alle/plan.md", "ledelse/plan.md"])),
            "{what}: the open session lost its search"
        );
    }
    let r = bounded(what, session.get(portal.url("/search?q=zorbaku")).send())
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{what}: the search page");
    let client = portal.client();
    let r = bounded(what, portal.post_login(&client, "mette", slapd::PASSWORD)).await;
    assert_eq!(r.status(), 503, "{what}: a new login");
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&login_message("unavailable")),
        "{what}: {body}"
    );
    assert!(
        !body.contains(&login_message("failed")),
        "{what}: says wrong password"
    );
}

#[tokio::test]
async fn a_directory_that_stops_or_hangs_mid_session_leaves_open_sessions_working() {
    let mut slapd = Slapd::start();
    let (portal, _dir) = ldap_portal(&slapd, "principal_refresh = \"1s\"");
    let anna = ldap_login(&portal, "anna").await;
    assert_eq!(
        found(&portal, &anna).await,
        Ok(ids(&["alle/plan.md", "ledelse/plan.md"]))
    );

    slapd.stop();
    assert_outage_is_contained(&portal, &anna, "directory stopped").await;

    // Back: logins work again.
    slapd.restart();
    let client = portal.client();
    let r = bounded(
        "login",
        portal.post_login(&client, "mette", slapd::PASSWORD),
    )
    .await;
    assert_eq!(r.status(), 303, "login after the directory came back");

    // Hung: connections are accepted and never answered.
    slapd.freeze();
    assert_outage_is_contained(&portal, &anna, "directory hung").await;
    slapd.thaw();
}
