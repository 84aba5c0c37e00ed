//! The WordPress connector against a WordPress REST API served on 127.0.0.1 (see
//! `wordpress/site.rs`): conversion, incremental sync, private content and credentials,
//! deletions through the periodic listing, failures mid-listing, rate limits, redirects,
//! broken JSON, HTTPS with the organisation's CA, and what an unchanged re-sync costs.

mod real;
mod site;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use samle_connectors::{Change, Connector, ConnectorParams, Document, WordPress, build};

use self::site::{EDITOR_PASSWORD, SUBSCRIBER_PASSWORD, Shared, Site, post, router, serve, utc};
use crate::common::{fingerprints, last_cursor, run, run_with, upserts};

/// The credentials' environment, passed in: tests never change the process environment.
fn env(name: &str) -> Option<String> {
    match name {
        "SAMLE_WP_PASSWORD" => Some(EDITOR_PASSWORD.to_owned()),
        "SAMLE_WP_SUBSCRIBER_PASSWORD" => Some(SUBSCRIBER_PASSWORD.to_owned()),
        "SAMLE_WP_WRONG_PASSWORD" => Some("aaaa bbbb cccc dddd eeee ffff".to_owned()),
        _ => None,
    }
}

/// The `[wordpress]` parameters from the lines of its table and of its `http` table, with
/// test-friendly HTTP settings.
fn params(url: &str, table: &str, http: &str) -> ConnectorParams {
    let text = format!(
        "[wordpress]\nurl = \"{url}\"\n{table}\n[wordpress.http]\nmin_delay = \"0ms\"\nmax_retry_wait = \"2s\"\nretries = 1\n{http}\n"
    );
    toml::from_str(&text).unwrap()
}

fn connector(url: &str, table: &str, http: &str) -> WordPress {
    let params = params(url, table, http);
    WordPress::with_env(params.wordpress.as_ref().unwrap(), Path::new("/"), env).unwrap()
}

/// A municipality's intranet: posts with Danish, entity-encoded titles, pages, a custom post
/// type, a private post, a draft and a password-protected post.
fn municipality() -> Site {
    let mut site = Site::new("Intranettet &#8211; Kommunen");
    site.add(site::Post {
        id: 101,
        categories: vec![5],
        tags: vec![11],
        excerpt: "<p>Sådan søger du ferie.</p>\n".to_owned(),
        ..post(
            "posts",
            "Ferie &#8211; regler &amp; frister",
            "<!-- wp:paragraph -->\n<p>Du skal holde mindst tre ugers sommerferie i perioden 1. maj &#8211; 30. september.</p>\n<!-- /wp:paragraph -->\n\n<!-- wp:list -->\n<ul><li>Søg i god tid</li><li>Aftal med din leder</li></ul>\n<!-- /wp:list -->\n",
            "2025-03-01T08:00:00",
        )
    });
    site.add(site::Post {
        id: 102,
        categories: vec![5, 7],
        tags: vec![12],
        author: 1,
        ..post(
            "posts",
            "Ny lønaftale for 2025 &#038; 2026",
            "<p>Lønnen stiger med 2,5&nbsp;% fra 1. april.</p>\n",
            "2025-04-02T09:15:00",
        )
    });
    site.add(site::Post {
        id: 103,
        categories: vec![6],
        tags: vec![13],
        ..post(
            "posts",
            "IT-sikkerhed: skift din adgangskode",
            "<p>Skift adgangskode hver 90. dag. Brug aldrig &#8220;sommer2025&#8221;.</p>\n",
            "2025-05-10T12:00:00",
        )
    });
    site.add(site::Post {
        id: 104,
        status: "private",
        author: 1,
        categories: vec![7],
        ..post(
            "posts",
            "Lønplan for ledere",
            "<p>Fortroligt: lønrammer for 2026.</p>\n",
            "2025-06-01T10:00:00",
        )
    });
    site.add(site::Post {
        id: 105,
        status: "draft",
        author: 3,
        ..post(
            "posts",
            "Omorganisering af Teknik &amp; Miljø",
            "<p>Udkast, ikke offentliggjort.</p>\n",
            "2025-06-02T10:00:00",
        )
    });
    site.add(site::Post {
        id: 106,
        password: true,
        ..post(
            "posts",
            "Referat fra chefgruppen",
            "<p>Hemmeligt referat.</p>\n",
            "2025-06-03T10:00:00",
        )
    });
    site.add(site::Post {
        id: 201,
        ..post(
            "pages",
            "Om kommunen",
            "<h2>Organisation</h2>\n<p>Kommunen har 4.000 medarbejdere.</p>\n",
            "2024-01-10T07:00:00",
        )
    });
    site.add(site::Post {
        id: 202,
        ..post(
            "pages",
            "Kontakt &amp; åbningstider",
            "<p>Rådhuset har åbent 10&#8211;15.</p>\n",
            "2024-02-10T07:00:00",
        )
    });
    // Created by the installer as a draft: an editor is counted it but may not read it.
    site.add(site::Post {
        id: 3,
        status: "draft",
        admin_only: true,
        author: 1,
        ..post(
            "pages",
            "Privatlivspolitik",
            "<p>Hvem vi er.</p>\n",
            "2024-01-01T07:00:00",
        )
    });
    site.add(site::Post {
        id: 301,
        ..post(
            "nyheder",
            "Julefrokost &#8220;2025&#8221; er aflyst",
            "<p>Vi ses til sommerfesten i stedet.</p>\n",
            "2025-11-01T08:00:00",
        )
    });
    site
}

async fn start(site: Site) -> (Shared, SocketAddr) {
    let shared = Shared::new(site);
    let addr = serve(router(shared.clone())).await;
    (shared, addr)
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

/// The ids a mark-and-sweep would count as seen.
fn seen(changes: &[Change]) -> Vec<String> {
    let mut ids: Vec<String> = changes
        .iter()
        .filter(|c| !matches!(c, Change::Delete { .. }))
        .filter_map(|c| c.external_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn unchanged_count(changes: &[Change]) -> usize {
    changes
        .iter()
        .filter(|c| matches!(c, Change::Unchanged { .. }))
        .count()
}

#[tokio::test]
async fn a_full_sync_converts_every_type_with_names_dates_and_access() {
    let (site, addr) = start(municipality()).await;
    let wp = connector(
        &url(addr),
        "types = [\"posts\", \"pages\", \"nyheder\"]\naccess = [\"group:alle\"]\nlanguage = \"da\"\nper_page = 2\nkind = { nyheder = \"news\" }",
        "",
    );
    let (result, changes) = run(&wp, HashMap::new()).await;
    result.unwrap();
    assert!(changes.contains(&Change::TraversalComplete));
    let docs = upserts(&changes);
    let mut ids: Vec<&str> = docs.keys().map(String::as_str).collect();
    ids.sort();
    // No credentials: the private post and the draft are not even asked for.
    assert_eq!(
        ids,
        [
            "nyheder/301",
            "pages/201",
            "pages/202",
            "posts/101",
            "posts/102",
            "posts/103",
            "posts/106"
        ]
    );

    let ferie = &docs["posts/101"];
    assert_eq!(ferie.title, "Ferie – regler & frister");
    assert_eq!(
        ferie.body,
        "Du skal holde mindst tre ugers sommerferie i perioden 1. maj – 30. september.\n\nSøg i god tid\n\nAftal med din leder"
    );
    assert_eq!(ferie.kind, "article");
    assert_eq!(ferie.acl, ["group:alle"]);
    assert_eq!(ferie.language.as_deref(), Some("da"));
    assert_eq!(ferie.author.as_deref(), Some("Lars Jensen"));
    assert_eq!(ferie.tags, ["Personale & HR", "ferie"]);
    assert_eq!(ferie.created, Some(utc("2025-03-01T08:00:00")));
    assert_eq!(ferie.updated, Some(utc("2025-03-01T08:00:00")));
    assert_eq!(
        ferie.url,
        Some(format!("http://{addr}/2025/03/ferie-regler-frister/"))
    );

    let loen = &docs["posts/102"];
    assert_eq!(loen.title, "Ny lønaftale for 2025 & 2026");
    assert_eq!(loen.body, "Lønnen stiger med 2,5 % fra 1. april.");
    assert_eq!(loen.tags, ["Personale & HR", "Økonomi", "løn"]);
    assert_eq!(loen.author.as_deref(), Some("Mette Hansen"));
    assert_eq!(
        docs["posts/103"].body,
        "Skift adgangskode hver 90. dag. Brug aldrig “sommer2025”."
    );
    // Password-protected: the title is public, the content is not there to index.
    assert_eq!(docs["posts/106"].title, "Referat fra chefgruppen");
    assert_eq!(docs["posts/106"].body, "");
    let page = &docs["pages/202"];
    assert_eq!(page.kind, "page");
    assert_eq!(page.title, "Kontakt & åbningstider");
    assert!(page.tags.is_empty());
    let news = &docs["nyheder/301"];
    assert_eq!(news.kind, "news");
    assert_eq!(news.title, "Julefrokost “2025” er aflyst");

    // Only the needed fields, 2 per page as configured, oldest change first.
    let log = site.take_log();
    let listings: Vec<&String> = log.iter().filter(|l| l.contains("/wp/v2/posts")).collect();
    assert_eq!(listings.len(), 2, "{log:#?}");
    for request in &listings {
        assert!(
            request.contains("_fields=id%2Cdate_gmt%2Cmodified_gmt%2Cslug%2Cstatus%2Ctype%2Clink%2Ctitle%2Ccontent%2Cexcerpt%2Cauthor%2Ccategories%2Ctags"),
            "{request}"
        );
        assert!(request.contains("orderby=modified&order=asc&per_page=2"));
        assert!(request.contains("status=publish"));
    }
    assert!(
        log.iter()
            .any(|l| l.contains("/wp/v2/users?include=1%2C2")
                || l.contains("/wp/v2/users?include=2")),
        "{log:#?}"
    );
}

#[tokio::test]
async fn an_unchanged_resync_costs_two_small_requests_per_type() {
    let mut base = municipality();
    for i in 0..30 {
        base.add(post(
            "posts",
            &format!("Nyhedsbrev nummer {i}"),
            &"<p>Et afsnit om kommunens arbejde, som ingen har ændret siden.</p>\n".repeat(10),
            &format!("2024-03-{:02}T08:00:00", i % 28 + 1),
        ));
    }
    let (site, addr) = start(base).await;
    let wp = connector(
        &url(addr),
        "types = [\"posts\", \"pages\", \"nyheder\"]\naccess = [\"group:alle\"]",
        "",
    );
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let (first_requests, first_bytes) = site.counters();
    site.take_log();

    let cursor = last_cursor(&first);
    let (result, second) = run_with(&wp, fingerprints(&first), Some(&cursor), false).await;
    result.unwrap();
    let (requests, bytes) = site.counters();
    let (requests, bytes) = (requests - first_requests, bytes - first_bytes);
    assert!(upserts(&second).is_empty(), "{second:?}");
    // The newest post of each type is inside the overlap and comes back unchanged.
    assert_eq!(unchanged_count(&second), 3, "{second:?}");
    // The id listing is not due yet: nothing may be swept after this run.
    assert!(!second.contains(&Change::TraversalComplete));
    // Per type, what was modified since the cursor, and the ids of what was published since
    // (the same newest post, already emitted: not fetched again).
    assert_eq!(requests, 6, "{:#?}", site.take_log());
    assert!(bytes * 10 < first_bytes, "{bytes} of {first_bytes}");
    let log = site.take_log();
    let (modified, published): (Vec<&String>, Vec<&String>) =
        log.iter().partition(|r| r.contains("modified_after="));
    assert_eq!(modified.len(), 3, "{log:#?}");
    for request in published {
        assert!(
            request.contains("after=") && request.contains("_fields=id%2Cmodified_gmt%2Cstatus"),
            "{request}"
        );
    }
    assert_eq!(
        last_cursor(&second),
        cursor,
        "nothing newer seen: the same cursor"
    );
}

#[tokio::test]
async fn edits_and_a_change_to_private_are_picked_up_incrementally() {
    let (site, addr) = start(municipality()).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\nprivate_access = [\"group:ledere\"]\ntypes = [\"posts\"]",
        "username = \"redaktoer\"\npassword_env = \"SAMLE_WP_PASSWORD\"",
    );
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&first);
    assert_eq!(docs["posts/104"].acl, ["group:ledere"]);
    // WordPress renders "Privat: " before a private title; the title is the post's own.
    assert_eq!(docs["posts/104"].title, "Lønplan for ledere");
    assert!(!docs.contains_key("posts/105"), "drafts are not included");

    {
        let mut site = site.lock();
        site.edit(101, utc("2025-12-01T09:00:00"), |p| {
            p.title = "Ferie &#8211; nye regler".to_owned();
        });
        site.edit(103, utc("2025-12-01T09:05:00"), |p| p.status = "private");
    }
    site.take_log();
    let cursor = last_cursor(&first);
    let (result, second) = run_with(&wp, fingerprints(&first), Some(&cursor), false).await;
    result.unwrap();
    let docs = upserts(&second);
    assert_eq!(docs.len(), 2, "{second:?}");
    assert_eq!(docs["posts/101"].title, "Ferie – nye regler");
    assert_eq!(docs["posts/101"].acl, ["group:alle"]);
    let made_private = &docs["posts/103"];
    assert_eq!(made_private.acl, ["group:ledere"]);
    assert_eq!(made_private.title, "IT-sikkerhed: skift din adgangskode");
    let log = site.take_log();
    assert!(
        log.iter()
            .any(|l| l.contains("status=private&") && l.contains("modified_after=")),
        "{log:#?}"
    );
    assert_ne!(last_cursor(&second), cursor);
}

fn upserted(changes: &[Change]) -> Vec<String> {
    crate::common::ids(changes, |c| matches!(c, Change::Upsert(_)))
}

/// The cursor as JSON, to look into.
fn cursor_json(changes: &[Change]) -> serde_json::Value {
    serde_json::from_str(&last_cursor(changes)).unwrap()
}

#[tokio::test]
async fn an_edit_in_the_hour_clocks_go_back_is_found() {
    // Copenhagen, 26 October 2025: at 01:00 UTC, 03:00 summer time becomes 02:00 winter time,
    // and WordPress compares modified_after with the local post_modified.
    let mut base = Site::new("Intranettet");
    let summer = base.add(post(
        "posts",
        "Sommertid",
        "<p>Gemt 02:30 sommertid.</p>",
        "2025-10-26T00:30:00",
    ));
    let winter = base.add(post(
        "posts",
        "Vintertid",
        "<p>Første udgave.</p>",
        "2025-10-01T07:00:00",
    ));
    let (site, addr) = start(base).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\ntypes = [\"posts\"]",
        "",
    );
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let cursor = last_cursor(&first);
    assert!(cursor.contains("2025-10-26T00:30:00Z"), "{cursor}");

    // Forty minutes later, at 02:10 winter time, the other post is saved: in local time,
    // twenty minutes before the newest one seen.
    site.lock().edit(winter, utc("2025-10-26T01:10:00"), |p| {
        p.content = "<p>Anden udgave.</p>".to_owned();
    });
    site.take_log();
    let (result, second) = run_with(&wp, fingerprints(&first), Some(&cursor), false).await;
    result.unwrap();
    assert_eq!(upserted(&second), [format!("posts/{winter}")], "{second:?}");
    assert_eq!(
        upserts(&second)[&format!("posts/{winter}")].body,
        "Anden udgave."
    );
    assert!(seen(&second).contains(&format!("posts/{summer}")));
    // An hour and a minute before the cursor is 01:29 summer time, before 02:10 winter time;
    // a minute before would have been 02:29 summer time, after it.
    let log = site.take_log();
    assert!(
        log[0].contains("modified_after=2025-10-25T23%3A29%3A00Z"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn a_post_the_cron_publishes_is_found_by_the_next_run() {
    let mut base = municipality();
    // Scheduled on 30 November for 5 December: saving it set its modification time.
    let on_time = base.add(site::Post {
        status: "future",
        modified: utc("2025-11-30T12:00:00"),
        ..post(
            "posts",
            "Julefrokosten er flyttet",
            "<p>Den holdes fredag.</p>",
            "2025-12-05T08:00:00",
        )
    });
    // Scheduled for 15 November, but WordPress's cron runs on page visits, and this one runs
    // only after the second run below: the post's publication time is before that run's cursor.
    let late = base.add(site::Post {
        status: "future",
        modified: utc("2025-11-10T12:00:00"),
        ..post(
            "posts",
            "Ny parkeringsordning",
            "<p>Gælder fra 1. december.</p>",
            "2025-11-15T08:00:00",
        )
    });
    let (site, addr) = start(base).await;
    let table = "access = [\"group:alle\"]\ntypes = [\"posts\"]";
    let wp = connector(&url(addr), table, "");
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    assert_eq!(
        upserted(&first).len(),
        4,
        "scheduled posts are not published yet"
    );

    // An edit on 1 December moves the cursor past both schedulings.
    site.lock().edit(101, utc("2025-12-01T09:00:00"), |p| {
        p.title = "Ferie &#8211; nye regler".to_owned();
    });
    let (result, second) =
        run_with(&wp, fingerprints(&first), Some(&last_cursor(&first)), false).await;
    result.unwrap();
    assert_eq!(upserted(&second), ["posts/101"]);

    // The cron publishes both by changing their status only.
    {
        let mut site = site.lock();
        site.publish_scheduled(on_time);
        site.publish_scheduled(late);
    }
    site.take_log();
    let mut known = fingerprints(&first);
    known.extend(fingerprints(&second));
    let (result, third) = run_with(&wp, known.clone(), Some(&last_cursor(&second)), false).await;
    result.unwrap();
    assert_eq!(upserted(&third), [format!("posts/{on_time}")], "{third:?}");
    let doc = &upserts(&third)[&format!("posts/{on_time}")];
    assert_eq!(doc.title, "Julefrokosten er flyttet");
    assert_eq!(doc.acl, ["group:alle"]);
    assert!(!third.contains(&Change::TraversalComplete));
    // What was modified since the cursor, the ids of what was published since, the one new
    // post by id, and its author's name.
    let log = site.take_log();
    assert_eq!(log.len(), 4, "{log:#?}");
    assert!(log[0].contains("modified_after=2025-12-01T07%3A59%3A00Z"));
    assert!(
        log[1].contains("after=2025-12-01T07%3A59%3A00Z")
            && log[1].contains("_fields=id%2Cmodified_gmt%2Cstatus")
            && !log[1].contains("modified_after"),
        "{log:#?}"
    );
    assert!(log[2].contains(&format!("include={on_time}&")), "{log:#?}");

    // The late one was published at a time before the cursor: the next id listing finds it.
    known.extend(fingerprints(&third));
    let listing = connector(
        &url(addr),
        &format!("{table}\nfull_listing_every = \"0s\""),
        "",
    );
    let (result, fourth) = run_with(&listing, known, Some(&last_cursor(&third)), false).await;
    result.unwrap();
    assert_eq!(upserted(&fourth), [format!("posts/{late}")], "{fourth:?}");
    assert!(fourth.contains(&Change::TraversalComplete));
}

#[tokio::test]
async fn a_failing_published_listing_fails_the_run_and_the_next_run_asks_again() {
    let mut base = municipality();
    // Scheduled in May, before the newest edit the first run sees, for 1 November.
    let scheduled = base.add(site::Post {
        status: "future",
        modified: utc("2025-05-01T12:00:00"),
        ..post(
            "posts",
            "Ny parkeringsordning",
            "<p>Gælder fra 1. november.</p>",
            "2025-11-01T08:00:00",
        )
    });
    let (site, addr) = start(base).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\ntypes = [\"posts\"]",
        "",
    );
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    assert_eq!(
        cursor_json(&first)["modified"]["posts"],
        "2025-06-03T10:00:00Z"
    );
    {
        let mut site = site.lock();
        site.publish_scheduled(scheduled);
        site.edit(101, utc("2025-12-01T09:00:00"), |p| {
            p.title = "Ferie &#8211; nye regler".to_owned();
        });
        // More 500s than the client retries.
        site.faults.fail_with_param = Some(("after", 5));
    }
    let known = fingerprints(&first);
    let (result, second) = run_with(&wp, known.clone(), Some(&last_cursor(&first)), false).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("listing posts published since 2025-06-03T08:59:00Z"),
        "{err}"
    );
    assert!(err.contains("500"), "{err}");
    assert!(!second.contains(&Change::TraversalComplete));
    assert!(!second.iter().any(|c| matches!(c, Change::Delete { .. })));
    // The edit was emitted and its progress committed; where the published posts are asked
    // for from is not advanced.
    assert_eq!(upserted(&second), ["posts/101"]);
    let cursor = cursor_json(&second);
    assert_eq!(cursor["modified"]["posts"], "2025-12-01T09:00:00Z");
    assert_eq!(cursor["published"]["posts"], "2025-06-03T10:00:00Z");

    site.lock().faults.fail_with_param = None;
    site.take_log();
    let mut known = known;
    known.extend(fingerprints(&second));
    let (result, third) = run_with(&wp, known, Some(&last_cursor(&second)), false).await;
    result.unwrap();
    assert_eq!(
        upserted(&third),
        [format!("posts/{scheduled}")],
        "{third:?}"
    );
    let log = site.take_log();
    assert!(
        log.iter()
            .any(|l| l.contains("after=2025-06-03T08%3A59%3A00Z") && !l.contains("modified_after")),
        "{log:#?}"
    );
    let cursor = cursor_json(&third);
    assert!(cursor.get("published").is_none(), "{cursor}");
    assert_eq!(cursor["modified"]["posts"], "2025-12-01T09:00:00Z");
}

#[tokio::test]
async fn a_published_listing_that_shifts_is_asked_again() {
    let mut base = municipality();
    let scheduled: Vec<u64> = ["2025-11-01T08:00:00", "2025-11-02T08:00:00"]
        .into_iter()
        .enumerate()
        .map(|(i, at)| {
            base.add(site::Post {
                status: "future",
                modified: utc("2025-05-01T12:00:00"),
                ..post("posts", &format!("Planlagt nyhed {i}"), "<p>Tekst.</p>", at)
            })
        })
        .collect();
    let (site, addr) = start(base).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\ntypes = [\"posts\"]\nper_page = 1",
        "",
    );
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let known = fingerprints(&first);
    {
        let mut site = site.lock();
        for id in &scheduled {
            site.publish_scheduled(*id);
        }
        // Published since the cursor minus the overlap, by id: 106 (the newest edit, also
        // returned by modified_after), then the two. Trashing 106 while page 2 is asked for
        // moves the first of the two onto page 1, which was already read.
        site.faults.trash_during = Some((2, 106));
    }
    let (result, second) = run_with(&wp, known.clone(), Some(&last_cursor(&first)), false).await;
    result.unwrap();
    assert_eq!(upserted(&second), [format!("posts/{}", scheduled[1])]);
    assert_eq!(
        cursor_json(&second)["published"]["posts"],
        "2025-06-03T10:00:00Z",
        "X-WP-Total moved: the next run asks for the same posts again"
    );

    let mut known = known;
    known.extend(fingerprints(&second));
    let (result, third) = run_with(&wp, known, Some(&last_cursor(&second)), false).await;
    result.unwrap();
    assert_eq!(upserted(&third), [format!("posts/{}", scheduled[0])]);
    assert!(cursor_json(&third).get("published").is_none());
}

#[tokio::test]
async fn private_posts_and_drafts_with_an_editors_application_password() {
    let (site, addr) = start(municipality()).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\nprivate_access = [\"group:ledere\"]\ninclude_drafts = true",
        "username = \"redaktoer\"\npassword_env = \"SAMLE_WP_PASSWORD\"",
    );
    let (result, changes) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&changes);
    assert_eq!(docs["posts/104"].acl, ["group:ledere"]);
    assert_eq!(docs["posts/104"].body, "Fortroligt: lønrammer for 2026.");
    let draft = &docs["posts/105"];
    assert_eq!(draft.acl, ["group:ledere"]);
    assert_eq!(draft.title, "Omorganisering af Teknik & Miljø");
    assert_eq!(draft.author.as_deref(), Some("Redaktør Kim"));
    assert_eq!(docs["posts/101"].acl, ["group:alle"]);
    // The editor could read the protected post's content; it is public by title only.
    assert_eq!(docs["posts/106"].body, "");
    assert!(changes.contains(&Change::TraversalComplete));
    let log = site.take_log();
    assert!(
        log.iter().any(|l| l.contains("status=private%2Cdraft")),
        "{log:#?}"
    );
}

#[tokio::test]
async fn private_content_refused_or_credentials_rejected_fail_the_run_clearly() {
    let (site, addr) = start(municipality()).await;
    let table = "access = [\"group:alle\"]\nprivate_access = [\"group:ledere\"]";
    let cases = [
        // The web server drops the Authorization header: WordPress sees an anonymous request.
        (
            "SAMLE_WP_PASSWORD",
            true,
            "rest_forbidden_status",
            "Authorization header",
        ),
        // A subscriber may not read private posts.
        (
            "SAMLE_WP_SUBSCRIBER_PASSWORD",
            false,
            "HTTP 400",
            "editor's rights",
        ),
        // WordPress serves a wrong application password as anonymous: the private listing
        // is what fails, and the message names the password's variable.
        (
            "SAMLE_WP_WRONG_PASSWORD",
            false,
            "rest_forbidden_status",
            "SAMLE_WP_WRONG_PASSWORD",
        ),
    ];
    for (password_env, ignore_auth, expected, hint) in cases {
        site.lock().faults.ignore_auth = ignore_auth;
        let user = if password_env.contains("SUBSCRIBER") {
            "abonnent"
        } else {
            "redaktoer"
        };
        let wp = connector(
            &url(addr),
            table,
            &format!("username = \"{user}\"\npassword_env = \"{password_env}\""),
        );
        let (result, changes) = run(&wp, HashMap::new()).await;
        let err = result.unwrap_err().to_string();
        assert!(err.contains(expected), "{password_env}: {err}");
        assert!(err.contains(hint), "{password_env}: {err}");
        assert!(!changes.contains(&Change::TraversalComplete));
        assert!(
            !changes.iter().any(|c| matches!(c, Change::Delete { .. })),
            "{changes:?}"
        );
        // Never the private post with any access list.
        assert!(!upserts(&changes).contains_key("posts/104"));
    }

    // Private access without credentials is refused when the connector is built.
    let params = params(&url(addr), table, "");
    let err = build("wordpress", &params, Path::new("/"))
        .err()
        .expect("must fail");
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("needs credentials"), "{err}");
}

#[tokio::test]
async fn trashed_posts_are_deleted_only_through_a_complete_listing() {
    let (site, addr) = start(municipality()).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\nfull_listing_every = \"0s\"",
        "",
    );
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let known = fingerprints(&first);

    {
        let mut site = site.lock();
        site.trash(102, utc("2025-12-01T10:00:00"));
        // Imported with an old modification date: older than the cursor, so only the id
        // listing can find it.
        site.add(post(
            "posts",
            "Importeret: gammel personalepolitik",
            "<p>Fra det gamle intranet.</p>\n",
            "2020-01-01T00:00:00",
        ));
    }
    site.take_log();
    let (result, second) = run_with(&wp, known.clone(), Some(&last_cursor(&first)), false).await;
    result.unwrap();
    assert!(second.contains(&Change::TraversalComplete));
    let seen = seen(&second);
    assert!(!seen.contains(&"posts/102".to_owned()), "{seen:?}");
    for id in [
        "posts/101",
        "posts/103",
        "posts/106",
        "pages/201",
        "pages/202",
    ] {
        assert!(seen.contains(&id.to_owned()), "{id} must be seen: {seen:?}");
    }
    let docs = upserts(&second);
    assert_eq!(docs.len(), 1, "{second:?}");
    let imported = docs.values().next().unwrap();
    assert_eq!(imported.title, "Importeret: gammel personalepolitik");
    let log = site.take_log();
    assert!(
        log.iter()
            .any(|l| l.contains("_fields=id%2Cmodified_gmt%2Cstatus") && l.contains("orderby=id")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("include=")),
        "the new post is fetched by id: {log:#?}"
    );
}

#[tokio::test]
async fn an_id_listing_that_shifts_while_it_is_read_deletes_nothing() {
    let (site, addr) = start(municipality()).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\nper_page = 2\ntypes = [\"posts\"]\nfull_listing_every = \"0s\"",
        "",
    );
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    assert!(first.contains(&Change::TraversalComplete));
    // Post 101 is on the id listing's first page; trashing it while page 2 is asked for
    // moves post 103 onto page 1, which was already read: 103 is never listed this run.
    site.lock().faults.trash_during = Some((2, 101));
    let (result, second) =
        run_with(&wp, fingerprints(&first), Some(&last_cursor(&first)), false).await;
    result.unwrap();
    assert!(!seen(&second).contains(&"posts/103".to_owned()));
    assert!(!second.contains(&Change::TraversalComplete), "{second:?}");
    // The next run lists again, and that listing is complete.
    let (result, third) = run_with(
        &wp,
        fingerprints(&first),
        Some(&last_cursor(&second)),
        false,
    )
    .await;
    result.unwrap();
    assert!(third.contains(&Change::TraversalComplete), "{third:?}");
    assert_eq!(seen(&third), ["posts/102", "posts/103", "posts/106"]);
}

#[tokio::test]
async fn an_edit_while_a_full_listing_is_read_is_caught_by_the_id_listing() {
    let (shared_site, addr) = start(municipality()).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\nper_page = 2\ntypes = [\"posts\"]",
        "",
    );
    // Oldest change first: editing post 101 while page 2 is asked for moves it to the end
    // and post 103 onto page 1, which was already read; the total stays the same.
    shared_site.lock().faults.edit_during = Some((2, 101));
    let (result, changes) = run(&wp, HashMap::new()).await;
    result.unwrap();
    // The same run lists the ids, finds post 103 and completes the traversal.
    assert!(changes.contains(&Change::TraversalComplete), "{changes:?}");
    assert_eq!(
        seen(&changes),
        ["posts/101", "posts/102", "posts/103", "posts/106"]
    );
}

#[tokio::test]
async fn without_totals_pages_follow_link_headers_and_nothing_is_deleted() {
    let (site, addr) = start(municipality()).await;
    site.lock().faults.no_totals = true;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\nper_page = 3\ntypes = [\"posts\"]",
        "",
    );
    let (result, changes) = run(&wp, HashMap::new()).await;
    result.unwrap();
    assert_eq!(
        upserts(&changes).len(),
        4,
        "both pages read through rel=\"next\""
    );
    // A listing that cannot be verified never lets the sweep delete.
    assert!(!changes.contains(&Change::TraversalComplete));
}

#[tokio::test]
async fn a_server_error_mid_listing_fails_the_run_and_the_next_run_resumes() {
    let mut base = Site::new("Intranettet");
    for (i, day) in (1..=6).zip(10..) {
        base.add(post(
            "posts",
            &format!("Nyhed nummer {i}"),
            &format!("<p>Tekst {i}.</p>"),
            &format!("2025-09-{day}T08:00:00"),
        ));
    }
    let (site, addr) = start(base).await;
    let wp = connector(
        &url(addr),
        "access = [\"group:alle\"]\nper_page = 2\ntypes = [\"posts\"]",
        "",
    );
    // More 500s than the client retries.
    site.lock().faults.fail_page = Some(("posts", 2, 5));
    let (result, first) = run(&wp, HashMap::new()).await;
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("page 2 of 3"), "{message}");
    assert!(message.contains("500"), "{message}");
    assert!(!first.contains(&Change::TraversalComplete));
    assert!(!first.iter().any(|c| matches!(c, Change::Delete { .. })));
    // Page 1 was emitted and checkpointed before the failure.
    assert_eq!(upserts(&first).len(), 2);
    assert!(
        matches!(first.last(), Some(Change::Checkpoint { .. })),
        "{first:?}"
    );
    let cursor = last_cursor(&first);
    assert!(cursor.contains("2025-09-11T08:00:00"), "{cursor}");

    site.lock().faults.fail_page = None;
    site.take_log();
    let (result, second) = run_with(&wp, fingerprints(&first), Some(&cursor), false).await;
    result.unwrap();
    let log = site.take_log();
    assert!(
        log[0].contains("modified_after=2025-09-11T06%3A59%3A00Z"),
        "resumes from the cursor minus the overlap: {log:#?}"
    );
    let docs = upserts(&second);
    assert_eq!(docs.len(), 4, "{second:?}");
    // Never listed in full before: this run lists the ids and completes the traversal.
    assert!(second.contains(&Change::TraversalComplete));
    assert_eq!(seen(&second).len(), 6);
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let (site, addr) = start(municipality()).await;
    let wp = connector(&url(addr), "access = [\"group:alle\"]", "");
    site.lock().faults.rate_limited = 1;
    let (result, changes) = run(&wp, HashMap::new()).await;
    result.unwrap();
    assert_eq!(upserts(&changes).len(), 6);
    let log = site.take_log();
    assert_eq!(
        log[0], log[1],
        "the refused request is sent again: {log:#?}"
    );
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused() {
    let (site, addr) = start(municipality()).await;
    site.lock().faults.redirect_to = Some(format!("http://localhost:{}", addr.port()));
    let wp = connector(&url(addr), "access = [\"group:alle\"]", "");
    let (result, changes) = run(&wp, HashMap::new()).await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("redirect"), "{err}");
    assert!(err.contains("allowed_hosts"), "{err}");
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(site.counters().0, 1, "the redirect is not followed");
}

#[tokio::test]
async fn garbage_instead_of_json_fails_the_run_clearly() {
    let (site, addr) = start(municipality()).await;
    site.lock().faults.php_warning = true;
    let wp = connector(&url(addr), "access = [\"group:alle\"]", "");
    let (result, changes) = run(&wp, HashMap::new()).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("did not answer with WordPress REST JSON"),
        "{err}"
    );
    assert!(err.contains("Warning"), "{err}");
    assert!(err.contains("page 1"), "{err}");
    assert!(changes.is_empty(), "{changes:?}");
}

#[tokio::test]
async fn https_with_the_organisations_ca() {
    let mut site = municipality();
    site.https = true;
    let shared = Shared::new(site);
    let server = crate::common::serve_tls(router(shared.clone())).await;
    let wp = connector(
        server.url.as_str(),
        "access = [\"group:alle\"]",
        &format!("ca_file = {:?}", server.ca_file.to_str().unwrap()),
    );
    let notes = wp.check().await.unwrap();
    assert!(notes[0].contains("Intranettet – Kommunen"), "{notes:?}");
    let (result, changes) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&changes);
    assert_eq!(docs["posts/101"].title, "Ferie – regler & frister");
    assert!(
        docs["posts/101"]
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://")
    );
}

#[tokio::test]
async fn sites_without_pretty_permalinks_use_rest_route() {
    let (site, addr) = start(municipality()).await;
    let wp = connector(
        &format!("http://{addr}/?rest_route=/"),
        "access = [\"group:alle\"]\ntypes = [\"pages\"]",
        "",
    );
    let (result, changes) = run(&wp, HashMap::new()).await;
    result.unwrap();
    assert_eq!(upserts(&changes).len(), 2);
    let log = site.take_log();
    assert!(
        log[0].starts_with("/?rest_route=%2Fwp%2Fv2%2Fpages&"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn check_reports_the_site_the_user_and_the_listings() {
    let (_site, addr) = start(municipality()).await;
    let wp = connector(
        &url(addr),
        "private_access = [\"group:ledere\"]\ninclude_drafts = true\ntypes = [\"posts\", \"nyheder\"]",
        "username = \"redaktoer\"\npassword_env = \"SAMLE_WP_PASSWORD\"",
    );
    let notes = wp.check().await.unwrap();
    let text = notes.join("\n");
    for expected in [
        "WordPress site \"Intranettet – Kommunen\"",
        "signed in as Redaktør Kim (roles: editor)",
        "posts: 4 published (kind \"article\")",
        "posts: 2 private or draft",
        "nyheder: 1 published",
        "access is empty: published posts are visible to nobody",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }

    let wrong = connector(
        &url(addr),
        "",
        "username = \"redaktoer\"\npassword_env = \"SAMLE_WP_WRONG_PASSWORD\"",
    );
    let err = wrong.check().await.unwrap_err().to_string();
    assert!(err.contains("rejected the credentials"), "{err}");

    let unknown_type = connector(&url(addr), "types = [\"arrangementer\"]", "");
    let err = unknown_type.check().await.unwrap_err().to_string();
    assert!(err.contains("listing arrangementer"), "{err}");
    assert!(err.contains("404"), "{err}");
    assert!(err.contains("REST base"), "{err}");

    let not_wordpress = connector(&format!("http://{addr}/nowhere/"), "", "");
    let err = not_wordpress.check().await.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");
}

#[tokio::test]
async fn an_unreadable_cursor_or_a_full_run_lists_everything_again() {
    let (_site, addr) = start(municipality()).await;
    let wp = connector(&url(addr), "access = [\"group:alle\"]", "");
    let (result, first) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let known = fingerprints(&first);
    let (result, garbled) = run_with(&wp, known.clone(), Some("{not json"), false).await;
    result.unwrap();
    assert!(garbled.contains(&Change::TraversalComplete));
    assert_eq!(unchanged_count(&garbled), 6, "known posts stay unchanged");
    let (result, full) = run_with(&wp, known, Some(&last_cursor(&first)), true).await;
    result.unwrap();
    assert!(full.contains(&Change::TraversalComplete));
    assert_eq!(upserts(&full).len(), 6, "a full run re-emits everything");
}

#[test]
fn configuration_mistakes_are_named() {
    let cases = [
        ("url = \"ftp://x/\"", "must start with http"),
        ("url = \"not a url\"", "wordpress url"),
        ("url = \"https://x/\"\ntypes = []", "types is empty"),
        (
            "url = \"https://x/\"\ntypes = [\"wp/v2/posts\"]",
            "REST base",
        ),
        (
            "url = \"https://x/\"\ntypes = [\"posts\", \"posts\"]",
            "listed twice",
        ),
        ("url = \"https://x/\"\nper_page = 0", "per_page"),
        ("url = \"https://x/\"\nper_page = 101", "per_page"),
        (
            "url = \"https://x/\"\nfull_listing_every = \"often\"",
            "full_listing_every",
        ),
        (
            "url = \"https://x/\"\nkind = { nyheder = \"news\" }",
            "not in types",
        ),
        ("url = \"https://x/\"\nkind = { posts = \"Nyhed\" }", "kind"),
        (
            "url = \"https://x/\"\ninclude_drafts = true",
            "include_drafts needs private_access",
        ),
        (
            "url = \"https://x/\"\nprivate_access = [\"group:ledere\"]",
            "needs credentials",
        ),
        ("url = \"https://x/\"\naccess = [\" \"]", "empty principal"),
    ];
    crate::common::assert_config_errors("wordpress", &cases);
    let err = toml::from_str::<ConnectorParams>(
        "[wordpress]\nurl = \"https://x/\"\ninclude_draft = true",
    )
    .unwrap_err();
    assert!(err.to_string().contains("include_draft"), "{err}");
    let err = build("wordpress", &ConnectorParams::default(), Path::new("/"))
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("[sources.wordpress]"), "{err}");
}

/// Documents compare whole, so a conversion change shows as one readable diff.
#[tokio::test]
async fn a_page_converts_to_exactly_this_document() {
    let (_site, addr) = start(municipality()).await;
    let wp = connector(
        &url(addr),
        "access = [\"authenticated\"]\ntypes = [\"pages\"]\nkind = { pages = \"page\" }",
        "",
    );
    let (result, changes) = run(&wp, HashMap::new()).await;
    result.unwrap();
    let mut doc = upserts(&changes).remove("pages/201").unwrap();
    assert!(doc.fingerprint.take().is_some());
    assert_eq!(
        doc,
        Document {
            external_id: "pages/201".to_owned(),
            kind: "page".to_owned(),
            title: "Om kommunen".to_owned(),
            body: "Organisation\n\nKommunen har 4.000 medarbejdere.".to_owned(),
            url: Some(format!("http://{addr}/2024/01/om-kommunen/")),
            author: Some("Lars Jensen".to_owned()),
            language: None,
            created: Some(utc("2024-01-10T07:00:00")),
            updated: Some(utc("2024-01-10T07:00:00")),
            acl: vec!["authenticated".to_owned()],
            tags: Vec::new(),
            fingerprint: None,
            properties: Default::default(),
        }
    );
}
