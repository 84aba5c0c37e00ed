//! The MediaWiki connector against a loopback Action API (`mediawiki/fixture.rs`): full
//! traversal with `continue`, rendering and categories, Danish titles, incremental sync through
//! recent changes (edits, creations, deletions, restorations, moves), late change rows, expired
//! cursors, private wikis with bot passwords and session cookies, failures mid-listing, rate
//! limits and HTTPS with the organisation's CA; and against a real MediaWiki 1.39
//! (`mediawiki/real.rs`).

mod fixture;
mod real;

use std::collections::HashMap;
use std::path::Path;

use chrono::Duration;
use samle_connectors::{Change, Connector, ConnectorError, ConnectorParams, MediaWiki, build};

use self::fixture::{API_PATH, BOT_PASSWORD, Shared, Wiki, router, serve};
use crate::common::{fingerprints, ids, is_unchanged, is_upsert, last_cursor, run_with, upserts};

/// The credentials' environment, passed in: tests never change the process environment.
fn env(name: &str) -> Option<String> {
    match name {
        "SAMLE_WIKI_BOT_PASSWORD" => Some(BOT_PASSWORD.to_owned()),
        "SAMLE_WIKI_WRONG_PASSWORD" => Some("0123456789abcdef0123456789abcdef".to_owned()),
        _ => None,
    }
}

/// A connector for `api` from the lines of its `[mediawiki]` table and of its `http` table,
/// with test-friendly HTTP settings.
fn connector(api: &str, table: &str, http: &str) -> MediaWiki {
    let text = format!(
        "[mediawiki]\napi = {api:?}\n{table}\n[mediawiki.http]\nmin_delay = \"0ms\"\nmax_retry_wait = \"2s\"\nretries = 1\ntimeout = \"10s\"\n{http}\n"
    );
    let params: ConnectorParams = toml::from_str(&text).unwrap();
    MediaWiki::with_env(params.mediawiki.as_ref().unwrap(), Path::new("/"), env).unwrap()
}

fn api(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}{API_PATH}")
}

/// A small Danish wiki: pages in the main and help namespaces, a user page, a redirect, a page
/// with two revisions; the last change two hours before the wiki's "now".
fn seed(wiki: &mut Wiki) {
    wiki.edit(
        "Forside",
        "MediaWiki default",
        "<p>Velkommen til Samles wiki.</p>",
        &[],
    );
    wiki.edit(
        "Medarbejderhåndbog",
        "Mette",
        "<p>Velkommen til <b>håndbogen</b>.</p>\n<h2>Ferie</h2>\n<p>Du har seks ugers ferie.</p>\n\
         <h2>Sygdom</h2>\n<p>Ring til din leder før kl. 9.</p>\n<h2>Pension</h2>\n<p>Se lønsedlen.</p>\n\
         <h2>Kontakt</h2>\n<p>HR på lokal 1234.</p>\n\
         <table class=\"navbox\"><tr><td>Personale · Løn · Ferie</td></tr></table>",
        &[
            "Personale",
            "Nye medarbejdere",
            "hidden:Sider med ødelagte filhenvisninger",
        ],
    );
    wiki.edit(
        "Kantine",
        "Lars",
        "<p>Kantinen har åbent 11–13.</p>",
        &["Kantine"],
    );
    wiki.edit(
        "Årsplan 2026",
        "Mette",
        "<p>Planen for året.</p>",
        &["Planlægning"],
    );
    wiki.edit("Hjælp:IT", "Admin", "<p>Ring til IT på 1000.</p>", &[]);
    wiki.edit("Bruger:Mette", "Mette", "<p>Min side.</p>", &[]);
    wiki.add_redirect("Håndbog", "Medarbejderhåndbog");
    wiki.edit(
        "Kantine",
        "Mette",
        "<p>Kantinen har åbent 11–13. Fredag er der grill.</p>",
        &["Kantine"],
    );
    wiki.advance(Duration::hours(2));
}

/// A seeded wiki whose listings page every two pages, with revisions split over two answers.
async fn seeded() -> (Shared, String) {
    let mut wiki = Wiki::new();
    wiki.max_limit = 2;
    wiki.split_revisions = true;
    seed(&mut wiki);
    let shared = wiki.shared();
    let addr = serve(shared.clone()).await;
    (shared, api(addr))
}

const MAIN_AND_HELP: &str =
    "namespaces = [0, 12]\naccess = [\"group:alle\"]\nnamespace_access = { 12 = [\"group:it\"] }";

fn id_of(wiki: &Shared, title: &str) -> String {
    wiki.lock().unwrap().id_of(title).unwrap().to_string()
}

fn log_len(wiki: &Shared) -> usize {
    wiki.lock().unwrap().log.len()
}

fn log_since(wiki: &Shared, from: usize) -> Vec<String> {
    wiki.lock().unwrap().log[from..].to_vec()
}

/// The fingerprints after applying `changes` to `known`, as the index would hold them.
fn apply(mut known: HashMap<String, String>, changes: &[Change]) -> HashMap<String, String> {
    for change in changes {
        if let Change::Delete { external_id } = change {
            known.remove(external_id);
        }
    }
    known.extend(fingerprints(changes));
    known
}

fn deleted(changes: &[Change]) -> Vec<String> {
    ids(changes, |c| matches!(c, Change::Delete { .. }))
}

#[tokio::test]
async fn a_full_sync_lists_every_namespace_and_renders_each_page() {
    let (wiki, api) = seeded().await;
    let mw = connector(&api, MAIN_AND_HELP, "");
    let (result, changes) = run_with(&mw, HashMap::new(), None, false).await;
    result.unwrap();

    // A complete traversal: its cursor is committed, then mark-and-sweep may run.
    let n = changes.len();
    assert!(
        matches!(changes[n - 2], Change::Checkpoint { .. }),
        "{changes:?}"
    );
    assert_eq!(changes[n - 1], Change::TraversalComplete);
    let docs = upserts(&changes);
    let mut titles: Vec<&str> = docs.values().map(|d| d.title.as_str()).collect();
    titles.sort();
    // Not the user page (namespace 2) and not the redirect.
    assert_eq!(
        titles,
        [
            "Forside",
            "Hjælp:IT",
            "Kantine",
            "Medarbejderhåndbog",
            "Årsplan 2026"
        ]
    );

    let handbook = &docs[&id_of(&wiki, "Medarbejderhåndbog")];
    assert_eq!(
        handbook.body,
        "Velkommen til håndbogen.\n\nFerie\n\nDu har seks ugers ferie.\n\nSygdom\n\n\
         Ring til din leder før kl. 9.\n\nPension\n\nSe lønsedlen.\n\nKontakt\n\nHR på lokal 1234."
    );
    // Hidden maintenance categories are not topics; underscores are spaces.
    assert_eq!(handbook.tags, ["Personale", "Nye medarbejdere"]);
    let server = wiki.lock().unwrap().server.clone();
    assert_eq!(
        handbook.url.as_deref(),
        Some(format!("{server}/wiki/Medarbejderh%C3%A5ndbog").as_str())
    );
    assert_eq!(handbook.kind, "wiki");
    assert_eq!(handbook.acl, ["group:alle"]);
    assert_eq!(handbook.language.as_deref(), Some("da"));
    assert_eq!(handbook.author.as_deref(), Some("Mette"));
    assert_eq!(
        handbook.updated.unwrap().to_rfc3339(),
        "2025-10-01T08:00:02+00:00"
    );

    let canteen = &docs[&id_of(&wiki, "Kantine")];
    assert_eq!(
        canteen.body,
        "Kantinen har åbent 11–13. Fredag er der grill."
    );
    assert_eq!(canteen.author.as_deref(), Some("Mette"));
    let plan = &docs[&id_of(&wiki, "Årsplan 2026")];
    assert_eq!(
        plan.url.as_deref(),
        Some(format!("{server}/wiki/%C3%85rsplan_2026").as_str())
    );
    let help = &docs[&id_of(&wiki, "Hjælp:IT")];
    assert_eq!(help.acl, ["group:it"], "namespace_access replaces access");
    assert_eq!(help.body, "Ring til IT på 1000.");

    // Listings paged (two pages per answer, revisions in two parts each), one parse per page.
    let log = log_since(&wiki, 0);
    let listings = log
        .iter()
        .filter(|l| l.contains("generator=allpages"))
        .count();
    assert!(listings >= 5, "{log:#?}");
    let parses = log.iter().filter(|l| l.starts_with("action=parse")).count();
    assert_eq!(parses, 5, "{log:#?}");
}

#[tokio::test]
async fn an_unchanged_wiki_costs_two_requests() {
    let (wiki, api) = seeded().await;
    let mw = connector(&api, MAIN_AND_HELP, "");
    let (result, first) = run_with(&mw, HashMap::new(), None, false).await;
    result.unwrap();
    let cursor = last_cursor(&first);

    let before = log_len(&wiki);
    let (result, second) = run_with(&mw, fingerprints(&first), Some(&cursor), false).await;
    result.unwrap();
    assert_eq!(second, [Change::Checkpoint { cursor }]);
    let log = log_since(&wiki, before);
    assert_eq!(
        log,
        [
            "action=query&list=recentchanges",
            "action=query&list=recentchanges"
        ],
        "the probe and one page of recent changes"
    );

    // Without a cursor the wiki is listed again, but nothing unchanged is rendered.
    let before = log_len(&wiki);
    let (result, third) = run_with(&mw, fingerprints(&first), None, false).await;
    result.unwrap();
    assert!(upserts(&third).is_empty(), "{third:?}");
    assert_eq!(third.iter().filter(|c| is_unchanged(c)).count(), 5);
    assert_eq!(third.last(), Some(&Change::TraversalComplete));
    assert!(
        log_since(&wiki, before)
            .iter()
            .all(|l| !l.starts_with("action=parse"))
    );

    // A full sync renders everything again.
    let (result, full) =
        run_with(&mw, fingerprints(&first), Some(&last_cursor(&first)), true).await;
    result.unwrap();
    assert_eq!(upserts(&full).len(), 5);
    assert_eq!(full.last(), Some(&Change::TraversalComplete));
}

#[tokio::test]
async fn recent_changes_bring_edits_creations_deletions_moves_and_restorations() {
    let (wiki, api) = seeded().await;
    let mw = connector(&api, MAIN_AND_HELP, "");
    let (result, first) = run_with(&mw, HashMap::new(), None, false).await;
    result.unwrap();
    let known = apply(HashMap::new(), &first);
    let cursor = last_cursor(&first);

    let (front, help, plan, user_page, handbook) = (
        id_of(&wiki, "Forside"),
        id_of(&wiki, "Hjælp:IT"),
        id_of(&wiki, "Årsplan 2026"),
        id_of(&wiki, "Bruger:Mette"),
        id_of(&wiki, "Medarbejderhåndbog"),
    );
    let new_page = {
        let mut w = wiki.lock().unwrap();
        w.advance(Duration::minutes(10));
        w.edit(
            "Kantine",
            "Lars",
            "<p>Kantinen holder lukket i uge 42.</p>",
            &["Kantine"],
        );
        let new_page = w.edit(
            "Nyt projekt",
            "Mette",
            "<p>Projektet om æbler.</p>",
            &["Projekter"],
        );
        w.delete("Forside");
        // A page moved within the indexed namespaces keeps its id.
        w.move_page("Hjælp:IT", "Hjælp:Computere");
        // Deleted and restored in one interval: the same page, unchanged.
        w.delete("Årsplan 2026");
        w.restore("Årsplan 2026");
        // Edits outside the indexed namespaces are not fetched...
        w.edit("Bruger:Mette", "Mette", "<p>Min nye side.</p>", &[]);
        // ...but a page moved into them is.
        w.move_page("Bruger:Mette", "Mettes noter");
        // And one moved out of them leaves the index.
        w.move_page("Medarbejderhåndbog", "Bruger:Mette/Håndbog");
        new_page.to_string()
    };

    let before = log_len(&wiki);
    let (result, second) = run_with(&mw, known.clone(), Some(&cursor), false).await;
    result.unwrap();
    assert!(!second.contains(&Change::TraversalComplete));
    let docs = upserts(&second);
    let mut got: Vec<&str> = docs.keys().map(String::as_str).collect();
    got.sort();
    let kantine = id_of(&wiki, "Kantine");
    let mut expected = vec![
        kantine.as_str(),
        new_page.as_str(),
        help.as_str(),
        user_page.as_str(),
    ];
    expected.sort();
    assert_eq!(got, expected, "{second:#?}");
    assert_eq!(docs[&kantine].body, "Kantinen holder lukket i uge 42.");
    assert_eq!(docs[&new_page].title, "Nyt projekt");
    assert_eq!(docs[&new_page].tags, ["Projekter"]);
    let moved = &docs[&help];
    assert_eq!(moved.title, "Hjælp:Computere");
    assert!(
        moved
            .url
            .as_deref()
            .unwrap()
            .ends_with("/wiki/Hj%C3%A6lp:Computere"),
        "{:?}",
        moved.url
    );
    assert_eq!(moved.acl, ["group:it"]);
    assert_eq!(docs[&user_page].title, "Mettes noter");
    assert_eq!(docs[&user_page].acl, ["group:alle"]);

    let mut gone = vec![front.clone(), handbook.clone()];
    gone.sort();
    assert_eq!(deleted(&second), gone);
    assert!(
        ids(&second, is_unchanged).contains(&plan),
        "the restored page is still indexed: {second:#?}"
    );
    // Recent changes paged two at a time, each page of them checkpointed.
    let checkpoints = second
        .iter()
        .filter(|c| matches!(c, Change::Checkpoint { .. }))
        .count();
    assert!(checkpoints > 1, "{second:#?}");
    let parses = log_since(&wiki, before)
        .iter()
        .filter(|l| l.starts_with("action=parse"))
        .count();
    assert_eq!(parses, 4, "only changed pages are rendered");

    // The next run has nothing to do.
    let known = apply(known, &second);
    let (result, third) = run_with(&mw, known, Some(&last_cursor(&second)), false).await;
    result.unwrap();
    assert!(
        third
            .iter()
            .all(|c| matches!(c, Change::Checkpoint { .. } | Change::Unchanged { .. })),
        "{third:#?}"
    );
}

#[tokio::test]
async fn change_rows_written_late_are_still_picked_up_once() {
    let (wiki, api) = seeded().await;
    let mw = connector(&api, "access = [\"group:alle\"]", "");
    let (result, first) = run_with(&mw, HashMap::new(), None, false).await;
    result.unwrap();
    let known = apply(HashMap::new(), &first);
    // The wiki records an edit a minute in the past, after the cursor was taken.
    {
        let mut w = wiki.lock().unwrap();
        w.edit("Kantine", "Lars", "<p>Sen ændring.</p>", &[]);
        w.backdate_last_change(Duration::minutes(1));
    }
    let (result, second) = run_with(&mw, known.clone(), Some(&last_cursor(&first)), false).await;
    result.unwrap();
    let docs = upserts(&second);
    assert_eq!(docs.len(), 1, "{second:#?}");
    assert_eq!(docs[&id_of(&wiki, "Kantine")].body, "Sen ændring.");

    // Read again in the overlap, but not processed twice.
    let before = log_len(&wiki);
    let known = apply(known, &second);
    let (result, third) = run_with(&mw, known, Some(&last_cursor(&second)), false).await;
    result.unwrap();
    assert!(upserts(&third).is_empty() && ids(&third, is_unchanged).is_empty());
    assert_eq!(log_since(&wiki, before).len(), 2);
}

#[tokio::test]
async fn an_expired_cursor_or_new_namespaces_start_a_traversal() {
    let (wiki, api) = seeded().await;
    let mw = connector(&api, "access = [\"group:alle\"]", "");
    let (result, first) = run_with(&mw, HashMap::new(), None, false).await;
    result.unwrap();
    let known = apply(HashMap::new(), &first);
    let cursor = last_cursor(&first);

    // A page deleted while the wiki forgot its recent changes (it keeps them for less than
    // rc_max_age): only a traversal finds out.
    let canteen = id_of(&wiki, "Kantine");
    {
        let mut w = wiki.lock().unwrap();
        w.delete("Kantine");
        w.advance(Duration::days(10));
        w.edit("Forside", "Admin", "<p>Ny forside.</p>", &[]);
        let keep_from = w.clock;
        w.purge_recent_changes(keep_from);
    }
    let (result, second) = run_with(&mw, known.clone(), Some(&cursor), false).await;
    result.unwrap();
    assert_eq!(second.last(), Some(&Change::TraversalComplete));
    let seen: Vec<String> = [ids(&second, is_upsert), ids(&second, is_unchanged)].concat();
    assert!(!seen.contains(&canteen), "{second:#?}");
    assert_eq!(
        upserts(&second)[&id_of(&wiki, "Forside")].body,
        "Ny forside."
    );

    // rc_max_age: the wiki keeps changes for a day only.
    let short = connector(&api, "access = [\"group:alle\"]\nrc_max_age = \"1d\"", "");
    let known = apply(known, &second);
    let cursor = last_cursor(&second);
    wiki.lock().unwrap().advance(Duration::days(2));
    let (result, third) = run_with(&short, known.clone(), Some(&cursor), false).await;
    result.unwrap();
    assert_eq!(third.last(), Some(&Change::TraversalComplete));

    // A namespace added to the configuration: its pages are only found by listing them.
    let wider = connector(&api, MAIN_AND_HELP, "");
    let (result, fourth) = run_with(&wider, known, Some(&last_cursor(&third)), false).await;
    result.unwrap();
    assert_eq!(fourth.last(), Some(&Change::TraversalComplete));
    assert_eq!(
        upserts(&fourth)[&id_of(&wiki, "Hjælp:IT")].title,
        "Hjælp:IT"
    );
}

#[tokio::test]
async fn a_private_wiki_needs_a_bot_password_and_keeps_its_session() {
    let (wiki, api) = seeded().await;
    wiki.lock().unwrap().private = true;

    let anonymous = connector(&api, "access = [\"group:alle\"]", "");
    for err in [
        anonymous.check().await.unwrap_err(),
        run_with(&anonymous, HashMap::new(), None, false)
            .await
            .0
            .unwrap_err(),
    ] {
        assert!(err.is_config(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("readapidenied") && text.contains("bot_user"),
            "{text}"
        );
    }
    let (_, changes) = run_with(&anonymous, HashMap::new(), None, false).await;
    assert!(changes.is_empty(), "{changes:?}");

    let wrong = connector(
        &api,
        "access = [\"group:alle\"]\nbot_user = \"Samlebot@samle\"\nbot_password_env = \"SAMLE_WIKI_WRONG_PASSWORD\"",
        "",
    );
    let err = run_with(&wrong, HashMap::new(), None, false)
        .await
        .0
        .unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(
        err.to_string()
            .contains("Failed: Incorrect username or password"),
        "{err}"
    );

    let bot = connector(
        &api,
        "access = [\"group:alle\"]\nbot_user = \"Samlebot@samle\"\nbot_password_env = \"SAMLE_WIKI_BOT_PASSWORD\"",
        "",
    );
    let notes = bot.check().await.unwrap();
    assert!(
        notes.iter().any(|n| n == "logged in as Samlebot@samle"),
        "{notes:?}"
    );
    let (result, first) = run_with(&bot, HashMap::new(), None, false).await;
    result.unwrap();
    assert_eq!(upserts(&first).len(), 4);
    assert_eq!(wiki.lock().unwrap().logins, 1, "one login, then the cookie");

    // The session expires: the connector notices (assert=user) and logs in again.
    wiki.lock().unwrap().expire_sessions();
    wiki.lock()
        .unwrap()
        .edit("Kantine", "Lars", "<p>Privat nyt.</p>", &[]);
    let (result, second) = run_with(
        &bot,
        fingerprints(&first),
        Some(&last_cursor(&first)),
        false,
    )
    .await;
    result.unwrap();
    assert_eq!(
        upserts(&second)[&id_of(&wiki, "Kantine")].body,
        "Privat nyt."
    );
    assert_eq!(wiki.lock().unwrap().logins, 2);
}

#[tokio::test]
async fn a_failure_mid_listing_fails_the_run_and_deletes_nothing() {
    let (wiki, api) = seeded().await;
    wiki.lock().unwrap().fail_listing_after = Some(2);
    let mw = connector(&api, "access = [\"group:alle\"]", "");
    let (result, changes) = run_with(&mw, HashMap::new(), None, false).await;
    let err = result.unwrap_err();
    assert!(matches!(err, ConnectorError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("500"), "{err}");
    assert!(
        changes.iter().all(|c| matches!(c, Change::Upsert(_))),
        "no delete, checkpoint or traversal complete: {changes:#?}"
    );
}

#[tokio::test]
async fn a_rate_limit_is_waited_out() {
    let (wiki, api) = seeded().await;
    wiki.lock().unwrap().throttle = 1;
    let mw = connector(&api, "access = [\"group:alle\"]", "");
    let (result, changes) = run_with(&mw, HashMap::new(), None, false).await;
    result.unwrap();
    assert_eq!(upserts(&changes).len(), 4);
    let log = log_since(&wiki, 0);
    // The 429 and its retry (after Retry-After) are the same request.
    assert_eq!(log[0], log[1]);
}

#[tokio::test]
async fn https_with_the_organisations_ca() {
    let mut wiki = Wiki::new();
    seed(&mut wiki);
    let shared = wiki.shared();
    let server = crate::common::serve_tls(router(shared.clone())).await;
    let origin = server.url.as_str().trim_end_matches('/').to_owned();
    shared.lock().unwrap().server = origin.clone();
    let api = format!("{origin}{API_PATH}");

    let trusting = connector(
        &api,
        "access = [\"group:alle\"]",
        &format!("ca_file = {:?}", server.ca_file.to_str().unwrap()),
    );
    let (result, changes) = run_with(&trusting, HashMap::new(), None, false).await;
    result.unwrap();
    let docs = upserts(&changes);
    assert_eq!(docs.len(), 4);
    assert!(
        docs.values()
            .all(|d| d.url.as_deref().unwrap().starts_with("https://127.0.0.1:"))
    );

    let untrusting = connector(&api, "access = [\"group:alle\"]", "");
    let err = untrusting.check().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn older_wikis_that_ignore_the_chrome_switches_are_cleaned_too() {
    let (wiki, api) = seeded().await;
    wiki.lock().unwrap().legacy_parse = true;
    let mw = connector(&api, "access = [\"group:alle\"]", "");
    let (result, changes) = run_with(&mw, HashMap::new(), None, false).await;
    result.unwrap();
    let handbook = &upserts(&changes)[&id_of(&wiki, "Medarbejderhåndbog")];
    for chrome in ["redigér", "Indholdsfortegnelse", "Løn · Ferie", "[", "]"] {
        assert!(
            !handbook.body.contains(chrome),
            "{chrome}: {:?}",
            handbook.body
        );
    }
    assert!(
        handbook
            .body
            .starts_with("Velkommen til håndbogen.\n\nFerie")
    );
}

#[tokio::test]
async fn check_reports_the_wiki_and_who_sees_what() {
    let (_wiki, api) = seeded().await;
    let mw = connector(
        &api,
        "namespaces = [0, 12]\nnamespace_access = { 0 = [\"group:alle\"] }",
        "",
    );
    let notes = mw.check().await.unwrap();
    assert!(
        notes[0].contains("Samle Fixture") && notes[0].contains("MediaWiki 1.39"),
        "{notes:?}"
    );
    assert!(
        notes.contains(&"namespace 0 (main) is visible to group:alle".to_owned()),
        "{notes:?}"
    );
    assert!(
        notes.contains(
            &"namespace 12 (Hjælp) has no access principals: its pages are visible to nobody"
                .to_owned()
        ),
        "{notes:?}"
    );

    let unknown = connector(&api, "namespaces = [0, 3000]", "");
    let err = unknown.check().await.unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(
        err.to_string().contains("[3000]") && err.to_string().contains("12 (Hjælp)"),
        "{err}"
    );

    let nowhere = connector("http://127.0.0.1:9/nowhere/api.php", "", "");
    let err = nowhere.check().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_wrong_api_address_is_named() {
    let router = axum::Router::new().route(
        "/w/index.php",
        axum::routing::get(|| async { "<html>Forside</html>" }),
    );
    let addr = crate::http::serve(router).await;
    let not_found = connector(&format!("http://{addr}/api.php"), "", "");
    let err = not_found.check().await.unwrap_err();
    assert!(
        err.to_string().contains("is api the address of api.php"),
        "{err}"
    );
    let html = connector(&format!("http://{addr}/w/index.php"), "", "");
    let err = html.check().await.unwrap_err();
    assert!(
        err.to_string().contains("did not answer with JSON"),
        "{err}"
    );
}

#[test]
fn configuration_mistakes_are_named() {
    let cases = [
        ("api = \"ftp://wiki/api.php\"", "must start with http"),
        ("api = \"not a url\"", "mediawiki api"),
        (
            "api = \"https://wiki/api.php?action=query\"",
            "without ?query",
        ),
        (
            "api = \"https://wiki/api.php\"\nnamespaces = []",
            "namespaces is empty",
        ),
        (
            "api = \"https://wiki/api.php\"\nnamespaces = [-1]",
            "special",
        ),
        (
            "api = \"https://wiki/api.php\"\nnamespaces = [0, 0]",
            "listed twice",
        ),
        (
            "api = \"https://wiki/api.php\"\nnamespace_access = { 4 = [\"group:it\"] }",
            "not in namespaces",
        ),
        (
            "api = \"https://wiki/api.php\"\nnamespace_access = { main = [\"group:it\"] }",
            "not a namespace number",
        ),
        (
            "api = \"https://wiki/api.php\"\naccess = [\" \"]",
            "empty principal",
        ),
        ("api = \"https://wiki/api.php\"\nkind = \"Wiki\"", "kind"),
        (
            "api = \"https://wiki/api.php\"\nlanguage = \"dansk\"",
            "language",
        ),
        ("api = \"https://wiki/api.php\"\nbatch = 0", "batch"),
        (
            "api = \"https://wiki/api.php\"\nrc_max_age = \"forever\"",
            "rc_max_age",
        ),
        (
            "api = \"https://wiki/api.php\"\nbot_user = \"Samlebot@samle\"",
            "go together",
        ),
        (
            "api = \"https://wiki/api.php\"\nbot_user = \"Samlebot@samle\"\nbot_password_env = \"SAMLE_TEST_UNSET_MW_PASSWORD\"",
            "SAMLE_TEST_UNSET_MW_PASSWORD is not set",
        ),
    ];
    crate::common::assert_config_errors("mediawiki", &cases);
    let err = toml::from_str::<ConnectorParams>(
        "[mediawiki]\napi = \"https://wiki/api.php\"\nnamespace = [0]",
    )
    .unwrap_err();
    assert!(err.to_string().contains("namespace"), "{err}");
    let err = build("mediawiki", &ConnectorParams::default(), Path::new("/"))
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("[sources.mediawiki]"), "{err}");
}
