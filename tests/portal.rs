//! The portal end to end: a real `samle serve` on a free loopback port, over the bundled
//! demo configuration, driven over HTTP like a browser would.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, Portal, demo_config};
use serde_json::Value;

async fn portal() -> (Portal, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let portal = Portal::start(&demo_config(), data.path());
    (portal, data)
}

async fn api(portal: &Portal, client: &reqwest::Client, query: &str) -> (u16, Value) {
    let r = client
        .get(portal.url(&format!("/api/v1/search?{query}")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn q(text: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", text)
        .finish()
}

#[tokio::test]
async fn login_search_and_logout() {
    let (portal, _data) = portal().await;
    let client = portal.client();

    // Anonymous visitors are sent to the login page; the page is accessible.
    let r = client.get(portal.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let r = client
        .get(portal.url("/search?q=ferie"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Fsearch%3Fq%3Dferie");
    let html = portal.text(&client, "/login").await;
    for needle in [
        "<html lang=\"da\">",
        "<label for=\"username\">",
        "<label for=\"password\">",
        "autocomplete=\"current-password\"",
        "<main id=\"main\"",
        "class=\"demo-banner\"",
        "<h1",
    ] {
        assert!(html.contains(needle), "login page lacks {needle}");
    }

    // Every kind of failure looks the same to the visitor.
    let mut bodies = Vec::new();
    for (user, password) in [
        ("lars", "wrong"),
        ("nobody", "wrong"),
        ("lars", ""),
        ("lars", "   "),
        ("peter", PASSWORD),
    ] {
        let r = portal.post_login(&client, user, password).await;
        assert_eq!(r.status(), 401, "{user}/{password:?}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("Forkert brugernavn eller adgangskode."),
            "{user}"
        );
        bodies.push(body.contains("role=\"alert\""));
    }
    assert!(bodies.iter().all(|b| *b));

    // A successful login goes where the visitor was heading.
    let token = portal
        .csrf(&client, "/login?next=%2Fsearch%3Fq%3Dferie")
        .await;
    let r = portal
        .post_form(
            &client,
            "/login",
            &[
                ("username", "Lars"),
                ("password", PASSWORD),
                ("csrf", &token),
                ("next", "/search?q=ferie"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/search?q=ferie");

    let html = portal.text(&client, "/search?q=ferie").await;
    assert!(html.contains("Ferie og feriefridage"), "{html}");
    assert!(html.contains("<mark>"), "snippets highlight the terms");
    assert!(html.contains("Logget ind som Lars Ærenlund"));

    let (status, me) = {
        let r = client.get(portal.url("/api/v1/me")).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(me["roles"]["publisher"], true);
    assert_eq!(me["roles"]["admin"], false);

    // Logout ends the session on the server: the old cookie is worthless afterwards.
    let cookie = session_cookie(&portal, &client).await;
    let token = portal.csrf(&client, "/").await;
    let r = portal
        .post_form(&client, "/logout", &[("csrf", token.as_str())])
        .await;
    assert_eq!(r.status(), 303);
    let replay = common::raw_client();
    let r = replay
        .get(portal.url("/api/v1/me"))
        .header("cookie", format!("samle_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "a cookie replayed after logout must be refused"
    );
}

/// The signed session cookie's value, read through a request that echoes nothing: the
/// client's cookie store is not public, so log in a second client by hand instead.
async fn session_cookie(portal: &Portal, _client: &reqwest::Client) -> String {
    // Log in afresh with a raw client to see the Set-Cookie header.
    let raw = common::raw_client();
    let r = raw.get(portal.url("/login")).send().await.unwrap();
    let pre = common::set_cookie_value(&r, "samle_session").expect("login page sets a session");
    let html = r.text().await.unwrap();
    let token = common::csrf_in(&html).unwrap();
    let r = raw
        .post(portal.url("/login"))
        .header("cookie", format!("samle_session={pre}"))
        .form(&[
            ("username", "lars"),
            ("password", PASSWORD),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let line = set
        .iter()
        .find(|l| l.starts_with("samle_session="))
        .expect("login sets a new session cookie");
    assert!(line.contains("HttpOnly"), "{line}");
    assert!(line.contains("SameSite=Lax"), "{line}");
    assert!(!line.contains("Domain="), "host-only: {line}");
    let post = line
        .trim_start_matches("samle_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(pre, post, "the session id must change at login");
    // Log that session out and hand back its cookie for the replay check.
    let html = raw
        .get(portal.url("/"))
        .header("cookie", format!("samle_session={post}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = common::csrf_in(&html).unwrap();
    let r = raw
        .post(portal.url("/logout"))
        .header("cookie", format!("samle_session={post}"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    post
}

#[tokio::test]
async fn results_are_trimmed_to_what_each_user_may_see() {
    let (portal, _data) = portal().await;
    let mette = portal.login("mette").await;
    let lars = portal.login("lars").await;
    let anna = portal.login("anna").await;

    let (_, m) = api(&portal, &mette, &q("sygefravær")).await;
    let (_, l) = api(&portal, &lars, &q("sygefravær")).await;
    let mt = m["total"].as_u64().unwrap();
    let lt = l["total"].as_u64().unwrap();
    assert!(
        mt >= 1 && lt > mt,
        "a manager sees more: mette {mt}, lars {lt}"
    );
    let sources = |v: &Value| {
        v["facets"]["source"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["value"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        !sources(&m).contains(&"ledelse".to_string()),
        "facets leak: {:?}",
        sources(&m)
    );
    assert!(sources(&l).contains(&"ledelse".to_string()));
    let facet_sum: u64 = m["facets"]["source"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["count"].as_u64().unwrap())
        .sum();
    assert_eq!(facet_sum, mt, "facet counts add up to the trimmed total");
    for hit in m["hits"].as_array().unwrap() {
        assert_ne!(hit["source"], "ledelse");
    }

    // Filtering on a source the user cannot see gives nothing, not an error.
    let (status, f) = api(&portal, &mette, "q=&source=ledelse").await;
    assert_eq!(status, 200);
    assert_eq!(f["total"], 0);

    // Department portal: Borgerservice staff and managers only.
    // (Within the source: the staff directory, visible to everybody, has Mette's card.)
    let parking = format!("{}&source=borgerservice", q("parkeringstilladelser"));
    let (_, a) = api(&portal, &anna, &parking).await;
    let (_, m2) = api(&portal, &mette, &parking).await;
    assert_eq!(a["total"], 0, "anna is not in Borgerservice");
    assert!(m2["total"].as_u64().unwrap() >= 1);

    // A document the user may not see is "not found", exactly like a missing one.
    let link = l["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["source"] == "ledelse")
        .unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let r = lars.get(portal.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = mette.get(portal.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("sygefravær"),
        "the denial must not reveal the title"
    );
    let r = mette
        .get(portal.url("/doc/ledelse/does-not-exist.md"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Page 2 is trimmed too.
    let (_, p2) = api(&portal, &mette, "q=&limit=5&page=2").await;
    for hit in p2["hits"].as_array().unwrap() {
        assert_ne!(hit["source"], "ledelse");
    }
}

#[tokio::test]
async fn danish_search_features_work_through_the_portal() {
    let (portal, _data) = portal().await;
    let lars = portal.login("lars").await;
    // Stemming: no document has the form "bygningerne".
    let (_, b) = api(&portal, &lars, &q("bygningerne")).await;
    assert!(b["total"].as_u64().unwrap() >= 1, "{b}");
    // Folding: the legacy Windows-1252 page says "Århus" only.
    let (_, a) = api(&portal, &lars, &q("Aarhus")).await;
    let ids: Vec<&str> = a["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gammel-side-printer-i-aarhus.html"),
        "{ids:?}"
    );
    let hit = a["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == "gammel-side-printer-i-aarhus.html")
        .unwrap();
    let title = hit["title"].as_str().unwrap();
    assert!(
        !title.contains('\u{FFFD}'),
        "legacy encoding decoded: {title}"
    );
    // English content is found with English words.
    let (_, e) = api(&portal, &lars, &q("password")).await;
    assert!(e["total"].as_u64().unwrap() >= 1);
    // Sorting and filters.
    let (_, n) = api(&portal, &lars, "q=&source=nyheder&sort=newest").await;
    let dates: Vec<&str> = n["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["updated"].as_str())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "newest first");
}

#[tokio::test]
async fn security_headers_csrf_and_errors() {
    let (portal, _data) = portal().await;
    let client = portal.client();
    let r = client.get(portal.url("/login")).send().await.unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    for d in [
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(d), "{csp}");
    }
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.contains_key("x-request-id"));

    // A form without the session's token is refused, and so is a cross-site post.
    let r = portal
        .post_form(
            &client,
            "/login",
            &[
                ("username", "lars"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let token = portal.csrf(&client, "/login").await;
    let r = client
        .post(portal.url("/login"))
        .header("origin", "http://evil.example")
        .form(&[
            ("username", "lars"),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(portal.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("username", "lars"),
            ("password", PASSWORD),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The API answers anonymous callers and bad parameters with a stable error object.
    let r = client
        .get(portal.url("/api/v1/search?q=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(body["error"]["request_id"].as_str().unwrap().len() >= 8);
    let lars = portal.login("lars").await;
    for bad in ["page=abc", "sort=best", "limit=1000", "year=x"] {
        let r = lars
            .get(portal.url(&format!("/api/v1/search?q=x&{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request");
    }
    // Odd queries are not errors.
    for odd in ["\"unbalanced", "a AND", "*", ":", "ÆØÅ", "title:", "((("] {
        let (status, _) = api(&portal, &lars, &q(odd)).await;
        assert_eq!(status, 200, "{odd}");
    }

    // Error pages carry the request id, in the visitor's language.
    let r = lars
        .get(portal.url("/no/such/page"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let html = r.text().await.unwrap();
    assert!(html.contains(&rid), "the page shows the request id");
    assert!(html.contains("Error id"), "English error page");

    // Operational endpoints.
    assert_eq!(
        client
            .get(portal.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: Value = client
        .get(portal.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    let metrics = portal.text(&client, "/metrics").await;
    assert!(metrics.contains("samle_http_requests_total"), "{metrics}");
}

#[tokio::test]
async fn script_in_content_and_queries_renders_inert() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("xss.html"),
        "<html><head><title>&lt;script&gt;alert(1)&lt;/script&gt; Ferieplan</title></head><body><main><p>Ferieplan &lt;img src=x onerror=alert(1)&gt; for afdelingen.</p><a href=\"javascript:alert(1)\">klik</a></main></body></html>",
    )
    .unwrap();
    let config = common::file_share_config(dir.path(), &root, "");
    let portal = Portal::start(&config, &dir.path().join("data"));
    let mette = portal.login("mette").await;
    let html = portal.text(&mette, "/search?q=%3Cscript%3Eferieplan").await;
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "escaped, still readable");
    assert!(!html.contains("href=\"javascript:"), "{html}");
}

#[tokio::test]
async fn the_ui_speaks_english_on_request() {
    let (portal, _data) = portal().await;
    let client = portal.client();
    let html = client
        .get(portal.url("/login"))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("User name"));

    // The switch stores the choice in a cookie and wins over the browser's language.
    let token = common::csrf_in(&html).unwrap();
    let r = portal
        .post_form(
            &client,
            "/lang",
            &[("lang", "da"), ("csrf", token.as_str()), ("next", "/login")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let html = client
        .get(portal.url("/login"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Brugernavn"));
    // An open redirect through `next` is refused.
    let token = common::csrf_in(&html).unwrap();
    let r = portal
        .post_form(
            &client,
            "/lang",
            &[
                ("lang", "en"),
                ("csrf", token.as_str()),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.headers()["location"], "/");
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_without_locking_out_for_long() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.md"), "# Ferie\n\nFerieregler.\n").unwrap();
    let config = common::file_share_config(dir.path(), &root, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[index]",
        "[auth]\nlogin_burst_per_account = 5\nlogin_refill_per_account = \"2s\"\nlogin_burst_per_client = 1000\n\n[index]",
    );
    std::fs::write(&config, text).unwrap();
    let portal = Portal::start(&config, &dir.path().join("data"));
    let client = portal.client();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(
            portal
                .post_login(&client, "lars", "wrong")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = portal.post_login(&client, "lars", PASSWORD).await;
    assert_eq!(
        r.status(),
        429,
        "the right password does not bypass the throttle"
    );
    assert!(r.headers().contains_key("retry-after"));
    // Other accounts are unaffected, and the real user gets in once the noise stops.
    assert_eq!(
        portal
            .post_login(&portal.client(), "mette", PASSWORD)
            .await
            .status(),
        303
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        portal
            .post_login(&portal.client(), "lars", PASSWORD)
            .await
            .status(),
        303
    );
}

// ---- the staff directory -----------------------------------------------------------------------

/// The demo's staff-directory source: a question about a responsibility in a department finds
/// the person who has it, shown as a card with links to call and write, in both languages.
#[tokio::test]
async fn people_are_found_as_person_cards() {
    let (portal, _data) = portal().await;
    // Anna is in IT: she sees no Borgerservice documents, but every colleague.
    let anna = portal.login("anna").await;
    let search = format!("/search?{}", q("parkeringstilladelser borgerservice"));
    let html = portal.text(&anna, &search).await;
    for needle in [
        "<li class=\"hit person\">",
        ">Mette Sørensen</a>",
        "<dl class=\"person-card\">",
        "<dt>Stilling</dt><dd>Sagsbehandler</dd>",
        "<dt>Afdeling</dt><dd>Borgerservice</dd>",
        "<dt>Telefon</dt><dd><a href=\"tel:+4589401231\">+45 89 40 12 31</a></dd>",
        "<a href=\"mailto:mette.sorensen@kommune.example\">mette.sorensen@kommune.example</a>",
        "<dt>Nærmeste leder</dt><dd>Lars Ærenlund</dd>",
        "<dt>Kontor</dt><dd>Rådhuset, Borgerservice, skranke 3</dd>",
        "<mark>Parkeringstilladelser</mark>",
        // The kind filter names people in the plural.
        "Personer",
    ] {
        assert!(html.contains(needle), "{needle} missing: {html}");
    }

    let english = anna
        .get(portal.url(&search))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "<html lang=\"en\">",
        "<dt>Job title</dt><dd>Sagsbehandler</dd>",
        "<dt>Phone</dt><dd><a href=\"tel:+4589401231\">",
        "<dt>Email</dt>",
        "<dt>Manager</dt><dd>Lars Ærenlund</dd>",
        "People",
    ] {
        assert!(english.contains(needle), "{needle} missing: {english}");
    }

    // The person's own page shows the same card.
    let link = html
        .split("<li class=\"hit person\">")
        .nth(1)
        .and_then(|rest| rest.split("<a href=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let page = portal.text(&anna, &link).await;
    for needle in [
        "<h1 id=\"doc-title\">Mette Sørensen</h1>",
        "<dl class=\"person-card\">",
        "<a href=\"tel:+4589401231\">",
        "<dt>Nærmeste leder</dt><dd>Lars Ærenlund</dd>",
    ] {
        assert!(page.contains(needle), "{needle} missing on {link}: {page}");
    }

    // The API carries the facts as `properties`.
    let (status, v) = api(&portal, &anna, &q("parkeringstilladelser borgerservice")).await;
    assert_eq!(status, 200);
    let hits = v["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{v}");
    let mette = &hits[0];
    assert_eq!(mette["kind"], "person");
    assert_eq!(mette["source"], "medarbejdere");
    assert_eq!(mette["title"], "Mette Sørensen");
    let p = &mette["properties"];
    assert_eq!(p["phone"], "+45 89 40 12 31");
    assert_eq!(p["mail"], "mette.sorensen@kommune.example");
    assert_eq!(p["department"], "Borgerservice");
    assert_eq!(p["title"], "Sagsbehandler");
    assert_eq!(p["manager"], "Lars Ærenlund");
    let kinds = v["facets"]["kind"].as_array().unwrap();
    assert_eq!(kinds[0]["value"], "person");
    assert_eq!(kinds[0]["label"], "Personer");

    // Every active colleague is there; Peter, whose account is disabled, is not.
    let (_, people) = api(&portal, &anna, "q=&kind=person&limit=50").await;
    let names: Vec<&str> = people["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap())
        .collect();
    assert_eq!(people["total"], 5, "{names:?}");
    assert!(!names.contains(&"Peter Holm"), "{names:?}");
}

// ---- the sources page (admin role) ----------------------------------------------------------

/// Documents per source as `samle index stats` reports them.
fn index_counts(data: &std::path::Path) -> Vec<(String, u64)> {
    let config = demo_config();
    let out = common::samle(&[
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "index",
        "stats",
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    let text = common::text(&out);
    let table = text.split_once("\nsource ").unwrap().1;
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            Some((words.first()?.to_string(), words.last()?.parse().ok()?))
        })
        .collect()
}

/// The rows of the sources table: `(source id, the row's HTML)`.
fn source_rows(html: &str) -> Vec<(String, String)> {
    let body = html.split_once("<tbody>").unwrap().1;
    let body = body.split_once("</tbody>").unwrap().0;
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            let id = row.split_once("<code>").unwrap().1;
            let id = id.split_once("</code>").unwrap().0;
            (id.to_string(), row.to_string())
        })
        .collect()
}

/// Reloads a source's page until `done` says yes (runs happen in the background).
async fn wait_for_source_page(
    portal: &Portal,
    client: &reqwest::Client,
    id: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = portal.text(client, &format!("/admin/sources/{id}")).await;
        if done(&page) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page of {id} did not reach the expected state: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_sources_page_shows_every_source_and_runs_a_sync_on_request() {
    let data = tempfile::tempdir().unwrap();
    let config = demo_config();
    let (c, d) = (config.to_str().unwrap(), data.path().to_str().unwrap());
    let out = common::samle(&["--config", c, "--data-dir", d, "sync"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let counts = index_counts(data.path());
    assert_eq!(counts.len(), 6, "{counts:?}");
    let portal = Portal::serve(&config, data.path());

    // anna (admin) sees the link in the header and every source with its document count.
    let anna = portal.login("anna").await;
    let home = anna.get(portal.url("/")).send().await.unwrap();
    assert!(
        home.text()
            .await
            .unwrap()
            .contains("href=\"/admin/sources\"")
    );
    let r = anna.get(portal.url("/admin/sources")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    for needle in [
        "<caption",
        "<th scope=\"col\">",
        "<th scope=\"row\">",
        "<h1>Kilder</h1>",
    ] {
        assert!(html.contains(needle), "{needle} missing: {html}");
    }
    let rows = source_rows(&html);
    assert_eq!(rows.len(), 6, "{html}");
    for (id, n) in &counts {
        let (_, row) = rows
            .iter()
            .find(|(r, _)| r == id)
            .unwrap_or_else(|| panic!("no row for {id}: {html}"));
        assert!(
            row.contains(&format!("<td class=\"num\">{n}</td>")),
            "{id} should show {n} documents: {row}"
        );
        assert!(row.contains("status-"), "{id}: no status: {row}");
        // Synced moments ago on a 30-minute schedule: behind by seconds, not overdue.
        assert!(row.contains("komplet pr."), "{id}: no 'behind by': {row}");
        assert!(!row.contains("Forsinket"), "{id}: overdue: {row}");
    }

    // "Sync now" through the form on the source's page, once the start-up run has finished.
    let page = wait_for_source_page(&portal, &anna, "it-hjaelp", |page| {
        page.contains("<td class=\"trigger\">Opstart") && !page.contains("status-running")
    })
    .await;
    assert!(page.contains("/sync\">"), "no sync form: {page}");
    assert!(
        page.contains("/full-sync\">"),
        "no full re-sync form: {page}"
    );
    let manual_runs = |html: &str| html.matches("<td class=\"trigger\">Manuelt").count();
    assert_eq!(manual_runs(&page), 0, "{page}");
    let token = common::csrf_in(&page).unwrap();

    // Without the token, or with a wrong one: refused, nothing runs.
    for form in [vec![], vec![("csrf", "wrong")]] {
        let r = anna
            .post(portal.url("/admin/sources/it-hjaelp/sync"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "POST with {form:?}");
    }
    // An unknown source: 404.
    let r = portal
        .post_form(
            &anna,
            "/admin/sources/findes-ikke/sync",
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status(), 404);

    let r = portal
        .post_form(
            &anna,
            "/admin/sources/it-hjaelp/sync",
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "/admin/sources/it-hjaelp?notice=started");
    let after = portal.text(&anna, &location).await;
    assert!(after.contains("role=\"status\""), "no notice: {after}");

    // The run shows in the history (it runs in the background: wait for it).
    wait_for_source_page(&portal, &anna, "it-hjaelp", |page| {
        manual_runs(page) == 1 && !page.contains("status-running")
    })
    .await;

    // And in the audit log, with who and which source.
    let store = samle::store::Store::open(&data.path().join("samle.db")).unwrap();
    let audit = store.recent_audit(20).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "sync_now"
            && a.actor.as_deref() == Some("anna")
            && a.detail == "it-hjaelp"),
        "{audit:?}"
    );
    assert!(!audit.iter().any(|a| a.action == "full_sync"), "{audit:?}");

    // mette (employee) and lars (publisher): no link, and 403 for the pages and the forms.
    for user in ["mette", "lars"] {
        let client = portal.login(user).await;
        let home = client.get(portal.url("/")).send().await.unwrap();
        assert!(
            !home.text().await.unwrap().contains("/admin/sources"),
            "{user} sees the admin link"
        );
        let token = portal.csrf(&client, "/").await;
        for path in ["/admin/sources", "/admin/sources/it-hjaelp"] {
            let r = client.get(portal.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 403, "{user} GET {path}");
        }
        for path in [
            "/admin/sources/it-hjaelp/sync",
            "/admin/sources/it-hjaelp/full-sync",
        ] {
            let r = client
                .post(portal.url(path))
                .form(&[("csrf", token.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{user} POST {path}");
        }
    }
    let audit = store.recent_audit(50).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "sync_now" || a.action == "full_sync")
            .count(),
        1,
        "{audit:?}"
    );
}
