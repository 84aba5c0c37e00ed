//! The staff-directory source against a real OpenLDAP (a private `slapd` per test, see
//! `common/slapd.rs`, loaded with `tests/fixtures/ldap/kommune.ldif`): people with their
//! facts and managers' names, paging past the server's size limit of 3, incremental runs
//! (an unchanged directory costs one small search; changed people, and the reports of a
//! renamed manager, are sent again; a clock that lags within the overlap loses nothing),
//! departed people deleted only by the periodic listing of ids, the demo directory, and a
//! directory that is down failing the run without deleting anything.
//!
//! The searches a run sends, and how many entries each returned, are read from slapd's own
//! log (`-d stats`).

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::slapd::{self, SERVICE_DN, SERVICE_PASSWORD, Slapd};
use common::{samle, text};
use samle::config::{Config, Overrides};
use samle_connectors::{Change, ChangeSink, ConnectorError, Document, RunContext};

/// Everybody in the fixture but `ole`, whose account is disabled (a permanent lock).
const PEOPLE: [&str; 9] = [
    "anna", "dobbelt", "dobbelt2", "jonas", "lars", "mette", "niels", "sofie", "tobias",
];

/// Writes a configuration with the test slapd as `[directory]` (StartTLS, the service
/// account) and one staff-directory source; `directory_extra` adds keys to `[directory]`,
/// `table` is the `[sources.staff-directory]` table's body.
fn write_config(slapd: &Slapd, dir: &Path, directory_extra: &str, table: &str) -> PathBuf {
    let path = dir.join("samle.toml");
    std::fs::write(
        &path,
        format!(
            "{directory}{directory_extra}\n\
             [[sources]]\nid = \"personer\"\nname = \"Medarbejdere\"\nkind = \"staff-directory\"\n\
             schedule = \"manual\"\n\n[sources.staff-directory]\n{table}\n",
            directory = slapd.portal_directory_toml(dir),
        ),
    )
    .unwrap();
    path
}

fn load(path: &Path) -> Config {
    Config::load(path, &BTreeMap::new(), &Overrides::default()).unwrap()
}

/// Runs the source's connector to the end without a cursor and returns what it sent, and how
/// it ended.
async fn run(
    config: &Config,
    known: &HashMap<String, String>,
) -> (Vec<Change>, Result<(), ConnectorError>) {
    run_from(config, known, None, false).await
}

/// The same, continuing from `cursor` (or listing everything when `full`).
async fn run_from(
    config: &Config,
    known: &HashMap<String, String>,
    cursor: Option<&str>,
    full: bool,
) -> (Vec<Change>, Result<(), ConnectorError>) {
    let source = config.source("personer").unwrap();
    let connector = samle::sources::build(config, source).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let ctx = RunContext {
        source_id: source.id.clone(),
        cursor: cursor.map(str::to_owned),
        full,
        known: std::sync::Arc::new(known.clone()),
        sink: ChangeSink::new(tx),
    };
    let collect = async {
        let mut changes = Vec::new();
        while let Some(change) = rx.recv().await {
            changes.push(change);
        }
        changes
    };
    let (result, changes) = tokio::join!(connector.run(ctx), collect);
    (changes, result)
}

/// The cursor of the run's last checkpoint.
fn cursor(changes: &[Change]) -> String {
    let cursor = changes.iter().rev().find_map(Change::cursor);
    cursor
        .unwrap_or_else(|| panic!("no checkpoint in {changes:?}"))
        .to_owned()
}

fn traversal_complete(changes: &[Change]) -> bool {
    changes.contains(&Change::TraversalComplete)
}

fn upserts(changes: &[Change]) -> BTreeMap<String, Document> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(doc) => Some((doc.external_id.clone(), Document::clone(doc))),
            _ => None,
        })
        .collect()
}

fn unchanged(changes: &[Change]) -> Vec<String> {
    let mut ids: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Unchanged { external_id } => Some(external_id.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids
}

/// What the index would hold after the run: external id → fingerprint.
fn fingerprints(changes: &[Change]) -> HashMap<String, String> {
    upserts(changes)
        .into_values()
        .map(|d| (d.external_id, d.fingerprint.unwrap()))
        .collect()
}

/// Lets the service account set operational attributes with the Relax Rules control, so that
/// a test can give an entry the change time a lagging server would have stamped. Put before
/// the fixture's own access rules (`Slapd::start_with`).
const MANAGE: &str = "access to * by dn.exact=\"cn=samle-service,ou=services,dc=kommune,dc=example\" manage by * break";
const RELAX_OID: &str = "1.3.6.1.4.1.4203.666.5.12";

fn person_dn(id: &str) -> String {
    match id {
        "niels" => format!(r"cn=Brøndum\, Niels,ou=people,{}", slapd::SUFFIX),
        _ => format!("uid={id},ou=people,{}", slapd::SUFFIX),
    }
}

/// GeneralizedTime as OpenLDAP writes it.
fn generalized(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%SZ").to_string()
}

/// Replaces attributes of an entry as the service account, with `modifyTimestamp` set to
/// `stamped` (Relax Rules) instead of the server's clock.
async fn modify_stamped(slapd: &Slapd, dn: &str, stamped: DateTime<Utc>, values: &[(&str, &str)]) {
    common::install_tls();
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&slapd.url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(SERVICE_DN, SERVICE_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let time = generalized(stamped);
    let mut mods = vec![ldap3::Mod::Replace(
        "modifyTimestamp".to_string(),
        HashSet::from([time]),
    )];
    for (attr, value) in values {
        mods.push(ldap3::Mod::Replace(
            (*attr).to_string(),
            HashSet::from([(*value).to_string()]),
        ));
    }
    let relax = ldap3::controls::RawControl {
        ctype: RELAX_OID.to_string(),
        crit: true,
        val: None,
    };
    ldap.with_controls(relax)
        .modify(dn, mods)
        .await
        .unwrap()
        .success()
        .unwrap();
    let _ = ldap.unbind().await;
}

/// Starts slapd with the fixture as a directory that has been in use for a while: each
/// person last changed hours apart (more than any overlap), Niels most recently, at the
/// returned time. Niels has no manager, so re-reading him costs no other search.
async fn start_settled() -> (Slapd, DateTime<Utc>) {
    let slapd = Slapd::start_with(MANAGE);
    let newest = floor_second(Utc::now() - chrono::Duration::days(2));
    let oldest_first = [
        "ole", "dobbelt2", "dobbelt", "sofie", "tobias", "jonas", "anna", "mette", "lars", "niels",
    ];
    for (n, id) in oldest_first.iter().rev().enumerate() {
        let stamped = newest - chrono::Duration::hours(n as i64);
        modify_stamped(&slapd, &person_dn(id), stamped, &[]).await;
    }
    (slapd, newest)
}

fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

/// One search slapd received, as its log tells it.
#[derive(Debug, Default)]
struct Search {
    base: String,
    scope: String,
    filter: String,
    attrs: String,
    entries: Option<usize>,
}

/// The searches slapd received after `from` bytes of its log, waiting briefly for the result
/// lines (slapd logs a result just after sending it).
fn searches(slapd: &Slapd, from: usize) -> Vec<Search> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = slapd.log();
        let tail = String::from_utf8_lossy(&log.as_bytes()[from.min(log.len())..]).into_owned();
        let mut order: Vec<String> = Vec::new();
        let mut found: HashMap<String, Search> = HashMap::new();
        for line in tail.lines() {
            let (Some(conn), Some(op)) = (field(line, "conn="), field(line, "op=")) else {
                continue;
            };
            let key = format!("{conn}/{op}");
            if let Some(rest) = line.split(" SRCH base=").nth(1) {
                order.push(key.clone());
                let search = found.entry(key).or_default();
                search.base = rest.split('"').nth(1).unwrap_or_default().to_string();
                search.scope = field(line, "scope=").unwrap_or_default().to_string();
                search.filter = rest
                    .split_once("filter=\"")
                    .map(|(_, f)| f.trim_end().trim_end_matches('"').to_string())
                    .unwrap_or_default();
            } else if let Some(attrs) = line.split(" SRCH attr=").nth(1) {
                found.entry(key).or_default().attrs = attrs.trim().to_string();
            } else if line.contains(" SEARCH RESULT ") {
                found.entry(key).or_default().entries =
                    field(line, "nentries=").and_then(|n| n.parse().ok());
            }
        }
        let all: Vec<Search> = order.iter().filter_map(|k| found.remove(k)).collect();
        if all.iter().all(|s| s.entries.is_some()) || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value after `name` in a log line, up to the next space.
fn field<'l>(line: &'l str, name: &str) -> Option<&'l str> {
    let at = line.find(&format!(" {name}"))? + 1 + name.len();
    line[at..].split_whitespace().next()
}

#[tokio::test]
async fn people_come_with_their_facts_and_their_managers_names() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let config = load(&write_config(&slapd, dir.path(), "", ""));
    let (changes, result) = run(&config, &HashMap::new()).await;
    result.unwrap();
    assert_eq!(changes.last(), Some(&Change::TraversalComplete));
    let people = upserts(&changes);
    assert_eq!(people.keys().collect::<Vec<_>>(), PEOPLE, "ole is disabled");

    let mette = &people["mette"];
    assert_eq!(mette.kind, "person");
    assert_eq!(mette.title, "Mette Sørensen");
    assert_eq!(mette.acl, ["authenticated"], "every employee by default");
    let p = &mette.properties;
    assert_eq!(p["title"], "Sagsbehandler");
    assert_eq!(p["department"], "Borgerservice");
    assert_eq!(p["phone"], "+45 89 40 12 31");
    assert_eq!(p["mail"], "mette.sorensen@kommune.example");
    assert_eq!(
        p["manager"], "Lars Ærenlund",
        "resolved from the manager's DN"
    );
    assert_eq!(p["office"], "Rådhuset, Borgerservice");
    assert_eq!(p["room"], "Skranke 3");
    // What a search for "parking permits in Borgerservice" has to meet.
    for needle in [
        "Parkeringstilladelser",
        "Borgerservice",
        "Sagsbehandler",
        "+45 89 40 12 31",
    ] {
        assert!(mette.body.contains(needle), "{needle}: {}", mette.body);
    }

    let manager = |id: &str| people[id].properties.get("manager").cloned();
    // An escaped comma in the DN; the same DN spelt with hex escapes and other case.
    assert_eq!(manager("anna").as_deref(), Some("Niels Brøndum"));
    assert_eq!(manager("tobias").as_deref(), Some("Niels Brøndum"));
    // Not in the directory: the DN's first value.
    assert_eq!(manager("lars").as_deref(), Some("Karen Ågesen"));
    // A disabled manager still has a name.
    assert_eq!(manager("dobbelt").as_deref(), Some("Ole Gammelgård"));
    assert_eq!(manager("niels"), None);
    // Both phone numbers are searchable; the card shows the first.
    assert_eq!(people["anna"].properties["phone"], "+45 89 40 13 10");
    assert!(people["anna"].body.contains("+45 20 30 40 50"));
    // No displayName: the name is cn.
    assert_eq!(people["jonas"].title, "Jonas Ågård");

    // `samle check` binds and counts.
    let source = config.source("personer").unwrap();
    let notes = samle::sources::build(&config, source)
        .unwrap()
        .check()
        .await
        .unwrap();
    assert!(
        notes.iter().any(|n| n.contains("9 people")
            && n.contains(SERVICE_DN)
            && n.contains("1 disabled left out")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("by `modifyTimestamp`") && n.contains("every 1day")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn the_server_size_limit_is_met_by_paging() {
    let slapd = Slapd::start();
    // The server answers at most 3 entries to a search without paging.
    common::install_tls();
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&slapd.url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(SERVICE_DN, SERVICE_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let plain = ldap
        .search(
            &format!("ou=people,{}", slapd::SUFFIX),
            ldap3::Scope::Subtree,
            "(objectClass=inetOrgPerson)",
            vec!["uid"],
        )
        .await
        .unwrap();
    assert_eq!(plain.1.rc, 4, "sizeLimitExceeded: {:?}", plain.1);
    assert!(plain.0.len() <= 3);

    // Pages of 2 and the default of 500 both list everybody.
    for page_size in ["page_size = 2", ""] {
        let dir = tempfile::tempdir().unwrap();
        let config = load(&write_config(&slapd, dir.path(), page_size, ""));
        let (changes, result) = run(&config, &HashMap::new()).await;
        result.unwrap();
        assert_eq!(
            upserts(&changes).keys().collect::<Vec<_>>(),
            PEOPLE,
            "{page_size:?}"
        );
    }
}

#[tokio::test]
async fn an_unchanged_directory_costs_one_small_search() {
    let (slapd, newest) = start_settled().await;
    let dir = tempfile::tempdir().unwrap();
    let config = load(&write_config(&slapd, dir.path(), "", ""));
    let (first, result) = run(&config, &HashMap::new()).await;
    result.unwrap();
    assert_eq!(upserts(&first).keys().collect::<Vec<_>>(), PEOPLE);
    assert!(traversal_complete(&first));
    let known = fingerprints(&first);

    let from = slapd.log().len();
    let (second, result) = run_from(&config, &known, Some(&cursor(&first)), false).await;
    result.unwrap();
    // No document, no listing: only the newest change (Niels's), read again because of the
    // overlap, found unchanged.
    assert!(upserts(&second).is_empty(), "{second:?}");
    assert_eq!(unchanged(&second), ["niels"]);
    assert!(!traversal_complete(&second), "{second:?}");
    let sent = searches(&slapd, from);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let since = generalized(newest - chrono::Duration::minutes(5));
    assert!(
        sent[0]
            .filter
            .contains(&format!("(modifyTimestamp>={since})")),
        "{sent:#?}"
    );
    assert_eq!(sent[0].entries, Some(1), "{sent:#?}");
    // The cursor does not move when nothing changed.
    assert_eq!(cursor(&second), cursor(&first));

    // A full run ignores the cursor and sends everybody again.
    let (full, result) = run_from(&config, &known, Some(&cursor(&first)), true).await;
    result.unwrap();
    assert_eq!(upserts(&full).len(), PEOPLE.len());
    assert!(traversal_complete(&full));
}

#[tokio::test]
async fn changed_people_and_the_reports_of_a_renamed_manager_are_sent_again() {
    let (slapd, _) = start_settled().await;
    let dir = tempfile::tempdir().unwrap();
    let config = load(&write_config(&slapd, dir.path(), "", ""));
    let (first, result) = run(&config, &HashMap::new()).await;
    result.unwrap();
    let mut known = fingerprints(&first);
    let mut at = cursor(&first);
    let suffix = slapd::SUFFIX;

    // Jonas changes job: only he is sent again. Sofie reports to him and is read again, but
    // his name did not change, so neither did her card.
    slapd.ldapmodify(&format!(
        "dn: uid=jonas,ou=people,{suffix}\nchangetype: modify\nreplace: title\ntitle: Souschef\n"
    ));
    let (changes, result) = run_from(&config, &known, Some(&at), false).await;
    result.unwrap();
    let sent = upserts(&changes);
    assert_eq!(sent.keys().collect::<Vec<_>>(), ["jonas"], "{changes:?}");
    assert_eq!(sent["jonas"].properties["title"], "Souschef");
    assert!(unchanged(&changes).contains(&"sofie".to_string()));
    assert!(!traversal_complete(&changes));
    known.extend(fingerprints(&changes));
    assert_ne!(cursor(&changes), at, "the newest change moved on");
    at = cursor(&changes);

    // Lars gets a new name: his card changes, and so does Mette's, whose manager he is,
    // though her own entry did not change.
    slapd.ldapmodify(&format!(
        "dn: uid=lars,ou=people,{suffix}\nchangetype: modify\nreplace: displayName\ndisplayName: Lars Ærenlund Holm\n"
    ));
    let (changes, result) = run_from(&config, &known, Some(&at), false).await;
    result.unwrap();
    let sent = upserts(&changes);
    assert_eq!(
        sent.keys().collect::<Vec<_>>(),
        ["lars", "mette"],
        "{changes:?}"
    );
    assert_eq!(sent["mette"].properties["manager"], "Lars Ærenlund Holm");
    known.extend(fingerprints(&changes));
    at = cursor(&changes);

    // Niels's DN has an escaped comma, and Tobias names him with hex escapes in another
    // case: the `(manager=…)` search, escaped, finds both his reports.
    slapd.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: displayName\ndisplayName: Niels Brøndum (IT)\n",
        person_dn("niels")
    ));
    let (changes, result) = run_from(&config, &known, Some(&at), false).await;
    result.unwrap();
    let sent = upserts(&changes);
    assert_eq!(
        sent.keys().collect::<Vec<_>>(),
        ["anna", "niels", "tobias"],
        "{changes:?}"
    );
    assert_eq!(sent["anna"].properties["manager"], "Niels Brøndum (IT)");
    assert_eq!(sent["tobias"].properties["manager"], "Niels Brøndum (IT)");
    known.extend(fingerprints(&changes));
    at = cursor(&changes);

    // A moved entry is stamped as modified: Dobbelt To, moved to another branch, is read
    // again (and is still the same person).
    slapd.ldapmodify(&format!(
        "dn: uid=dobbelt2,ou=people,{suffix}\nchangetype: modrdn\nnewrdn: uid=dobbelt2\ndeleteoldrdn: 0\nnewsuperior: ou=services,{suffix}\n"
    ));
    let (changes, result) = run_from(&config, &known, Some(&at), false).await;
    result.unwrap();
    assert!(upserts(&changes).is_empty(), "{changes:?}");
    assert!(
        unchanged(&changes).contains(&"dobbelt2".to_string()),
        "{changes:?}"
    );
    at = cursor(&changes);

    // Ole's account was disabled all along; when a change disables Sofie's, she is deleted.
    slapd.ldapmodify(&format!(
        "dn: uid=sofie,ou=people,{suffix}\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    ));
    let (changes, result) = run_from(&config, &known, Some(&at), false).await;
    result.unwrap();
    assert!(
        changes.contains(&Change::Delete {
            external_id: "sofie".into()
        }),
        "{changes:?}"
    );
    assert!(upserts(&changes).is_empty(), "{changes:?}");
    at = cursor(&changes);

    // A different access list is a change to everybody: the cursor no longer holds, and the
    // run lists everybody.
    let restricted = load(&write_config(
        &slapd,
        dir.path(),
        "",
        "access = [\"group:all-employees\"]",
    ));
    let (changes, result) = run_from(&restricted, &known, Some(&at), false).await;
    result.unwrap();
    let all = upserts(&changes);
    assert_eq!(all.len(), PEOPLE.len() - 1, "everybody but Sofie");
    assert!(all.values().all(|d| d.acl == ["group:all-employees"]));
    assert!(traversal_complete(&changes));
}

#[tokio::test]
async fn a_change_stamped_by_a_lagging_clock_within_the_overlap_is_not_lost() {
    let (slapd, newest) = start_settled().await;
    let dir = tempfile::tempdir().unwrap();
    let config = load(&write_config(&slapd, dir.path(), "", ""));
    let (first, result) = run(&config, &HashMap::new()).await;
    result.unwrap();
    let known = fingerprints(&first);
    let at = cursor(&first);

    // Another server, whose clock is two minutes behind, changed Jonas; the change is
    // replicated after the last run, stamped earlier than the newest change that run saw.
    let lagging = newest - chrono::Duration::minutes(2);
    modify_stamped(
        &slapd,
        &person_dn("jonas"),
        lagging,
        &[("title", "Souschef")],
    )
    .await;
    let (changes, result) = run_from(&config, &known, Some(&at), false).await;
    result.unwrap();
    let sent = upserts(&changes);
    assert_eq!(sent.keys().collect::<Vec<_>>(), ["jonas"], "{changes:?}");
    assert_eq!(sent["jonas"].properties["title"], "Souschef");
    // The cursor is the directory's newest change, not the lagging one.
    assert_eq!(cursor(&changes), at);

    // The overlap is what found it: without one (the same cursor still holds, as the overlap
    // does not change what documents hold), the same run misses the change.
    let no_overlap = load(&write_config(&slapd, dir.path(), "", "overlap = \"0s\""));
    let (changes, result) = run_from(&no_overlap, &known, Some(&at), false).await;
    result.unwrap();
    assert!(upserts(&changes).is_empty(), "{changes:?}");

    // A person added by a server further behind than the overlap is missed by the
    // timestamps, but found by the next listing of ids, which reads whoever it lists that
    // is not indexed.
    let suffix = slapd::SUFFIX;
    slapd.ldapmodify(&format!(
        "dn: uid=ny,ou=people,{suffix}\nobjectClass: inetOrgPerson\nuid: ny\ncn: Ny Medarbejder\nsn: Medarbejder\nmanager: uid=lars,ou=people,{suffix}\n"
    ));
    let far_behind = newest - chrono::Duration::hours(3);
    modify_stamped(
        &slapd,
        &format!("uid=ny,ou=people,{suffix}"),
        far_behind,
        &[],
    )
    .await;
    let (changes, result) = run_from(&config, &known, Some(&at), false).await;
    result.unwrap();
    assert!(!upserts(&changes).contains_key("ny"), "{changes:?}");
    let listing = load(&write_config(
        &slapd,
        dir.path(),
        "",
        "full_listing_every = \"0s\"",
    ));
    let (changes, result) = run_from(&listing, &known, Some(&at), false).await;
    result.unwrap();
    let sent = upserts(&changes);
    assert!(sent.contains_key("ny"), "{changes:?}");
    assert_eq!(sent["ny"].properties["manager"], "Lars Ærenlund");
    assert!(traversal_complete(&changes));
}

/// Documents in the index, as `samle index stats` counts them.
fn indexed(config: &Path, data: &Path) -> u64 {
    let out = samle(&[
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "index",
        "stats",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
        .lines()
        .find_map(|l| l.strip_prefix("documents"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn sync(config: &Path, data: &Path) -> std::process::Output {
    samle(&[
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "sync",
    ])
}

#[tokio::test]
async fn departed_people_are_deleted_by_the_listing_of_ids_and_a_failed_run_deletes_nothing() {
    let (mut slapd, _) = start_settled().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(&slapd, dir.path(), "", "");
    let data = dir.path().join("data");

    let out = sync(&config_path, &data);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(indexed(&config_path, &data), PEOPLE.len() as u64);

    // Sofie leaves. Timestamps cannot show a deletion: the next (incremental) sync keeps her.
    slapd.ldapmodify(&format!(
        "dn: uid=sofie,ou=people,{}\nchangetype: delete\n",
        slapd::SUFFIX
    ));
    let out = sync(&config_path, &data);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(indexed(&config_path, &data), PEOPLE.len() as u64);

    // The listing of ids (due at every run here) lists everybody else, by id only, and
    // completes: the sync deletes her.
    let listing_path = write_config(&slapd, dir.path(), "", "full_listing_every = \"0s\"");
    let from = slapd.log().len();
    let out = sync(&listing_path, &data);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(indexed(&listing_path, &data), PEOPLE.len() as u64 - 1);
    let sent = searches(&slapd, from);
    let ids = sent
        .iter()
        .find(|s| s.filter == "(objectClass=inetOrgPerson)")
        .unwrap_or_else(|| panic!("no listing of ids: {sent:#?}"));
    assert_eq!(ids.attrs, "uid", "the id attribute only: {sent:#?}");

    // The same, through the connector: Unchanged for everybody listed, then the traversal.
    let config = load(&listing_path);
    let (first, result) = run(&config, &HashMap::new()).await;
    result.unwrap();
    let known = fingerprints(&first);
    let (changes, result) = run_from(&config, &known, Some(&cursor(&first)), false).await;
    result.unwrap();
    assert!(upserts(&changes).is_empty(), "{changes:?}");
    let everybody_else: Vec<&str> = PEOPLE.iter().copied().filter(|p| *p != "sofie").collect();
    assert_eq!(unchanged(&changes), everybody_else);
    assert_eq!(changes.last(), Some(&Change::TraversalComplete));

    // The directory stops: the run fails, says why, and deletes nobody, with a cursor due
    // for the listing of ids or not.
    slapd.stop();
    for c in [&config, &load(&config_path)] {
        let (changes, result) = run_from(c, &known, Some(&cursor(&first)), false).await;
        let error = result.unwrap_err().to_string();
        assert!(error.contains("no directory server answered"), "{error}");
        assert!(
            changes.is_empty(),
            "nothing is sent, not even a traversal: {changes:?}"
        );
    }
    for path in [&config_path, &listing_path] {
        let out = sync(path, &data);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("no directory server answered"),
            "{}",
            text(&out)
        );
        assert_eq!(indexed(path, &data), PEOPLE.len() as u64 - 1);
    }
}

#[tokio::test]
async fn the_demo_directory_is_read_whole_at_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samle.toml");
    std::fs::write(
        &path,
        format!(
            "[directory]\nkind = \"demo\"\nfile = \"{}\"\n\n\
             [[sources]]\nid = \"personer\"\nname = \"Medarbejdere\"\nkind = \"staff-directory\"\n\
             schedule = \"manual\"\n",
            common::repo().join("config/demo/directory.toml").display()
        ),
    )
    .unwrap();
    let config = load(&path);
    let (first, result) = run(&config, &HashMap::new()).await;
    result.unwrap();
    let people = upserts(&first);
    assert!(people.contains_key("lars"), "{people:?}");
    assert_eq!(people["mette"].properties["manager"], "Lars Ærenlund");
    assert_eq!(first.last(), Some(&Change::TraversalComplete));
    assert!(
        !first.iter().any(|c| matches!(c, Change::Checkpoint { .. })),
        "a local file needs no cursor"
    );
    // A second run lists everybody again, unchanged, and completes.
    let (second, result) = run_from(&config, &fingerprints(&first), Some("{}"), false).await;
    result.unwrap();
    assert!(upserts(&second).is_empty(), "{second:?}");
    assert_eq!(unchanged(&second).len(), people.len());
    assert_eq!(second.last(), Some(&Change::TraversalComplete));
}

#[tokio::test]
async fn check_says_what_is_wrong() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    for (table, expected) in [
        (
            "base_dn = \"ou=nobody,dc=kommune,dc=example\"",
            "`ou=nobody,dc=kommune,dc=example` does not exist",
        ),
        (
            "filter = \"(objectClass=groupOfNames)\"\nbase_dn = \"ou=people,dc=kommune,dc=example\"",
            "no entry under `ou=people,dc=kommune,dc=example` matches",
        ),
    ] {
        let config = load(&write_config(&slapd, dir.path(), "", table));
        let source = config.source("personer").unwrap();
        let e = samle::sources::build(&config, source)
            .unwrap()
            .check()
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{table}: {e}");
    }
    // A mistake in the table is named with its file, line and key when the file is read.
    let path = write_config(&slapd, dir.path(), "", "filter = \"(objectClass=person\"");
    let e = Config::load(&path, &BTreeMap::new(), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("samle.toml:") && e.contains("staff-directory") && e.contains("`filter`"),
        "{e}"
    );
}

#[test]
fn the_example_configuration_parses_and_builds() {
    let dir = tempfile::tempdir().unwrap();
    // The example names a CA file of a real installation: point it at a certificate made here.
    let ca = dir.path().join("ca.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=example",
            "-keyout",
        ])
        .arg(dir.path().join("ca.key"))
        .arg("-out")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let example =
        std::fs::read_to_string(common::repo().join("config/examples/staff-directory.toml"))
            .unwrap();
    let text: String = example
        .lines()
        .map(|l| {
            if l.starts_with("ca_file = ") {
                format!("ca_file = \"{}\"\n", ca.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let path = dir.path().join("samle.toml");
    std::fs::write(&path, text).unwrap();
    let env = BTreeMap::from([("SAMLE_LDAP_BIND_PASSWORD".to_string(), "x".to_string())]);
    let config = Config::load(&path, &env, &Overrides::default()).unwrap();
    let source = config.source("medarbejdere").unwrap();
    assert_eq!(source.kind, "staff-directory");
    let connector = samle::sources::build(&config, source).unwrap();
    assert_eq!(connector.kind(), "staff-directory");
}
