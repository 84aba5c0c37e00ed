//! The staff-directory source against a real, local OpenLDAP with 10,000 people, the size the
//! re-sync target is set for (`cargo bench --bench staff_directory`; `STAFF_PEOPLE=N` for
//! another size).
//!
//! Starts the tests' private `slapd` (with `index modifyTimestamp eq`, as the example
//! configuration advises), adds generated people (`inetOrgPerson` with title, department,
//! phone, mail, office, room, responsibilities and a manager) under a branch of their own,
//! each last changed seven minutes after the one before, as in a directory that has been in
//! use for a while (the change times are set with the Relax Rules control). Then it runs the
//! connector and prints the median of five runs of each kind: a first run (everybody, with
//! every attribute), an unchanged re-sync from its cursor, a re-sync after a manager was
//! renamed (the manager and their reports are sent again), an unchanged re-sync that is due
//! for the listing of ids, and as the floor a bare connection, bind and the same change
//! search. The connector is built once and its changes are collected, not indexed: the
//! figures are what the directory costs. Searches and entries are read from slapd's log;
//! bytes are counted by a loopback proxy between the connector and slapd. It prints figures
//! and asserts nothing.

// A benchmark binary: a failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use samle::config::{Config, Overrides};
use samle_connectors::{Change, ChangeSink, Connector, RunContext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../tests/common/slapd.rs"]
#[allow(dead_code)]
mod slapd;

/// Used by the slapd harness to find its fixtures.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How many people the directory holds: `STAFF_PEOPLE`, else 10,000.
fn people() -> usize {
    std::env::var("STAFF_PEOPLE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}
const ROUNDS: usize = 5;
/// People under one manager.
const TEAM: usize = 12;
const RELAX_OID: &str = "1.3.6.1.4.1.4203.666.5.12";

/// The service account may set change times (Relax Rules); the database skips fsync, which
/// only speeds up loading.
fn extra_config() -> String {
    format!(
        "dbnosync\nindex modifyTimestamp eq\naccess to * by dn.exact=\"{}\" manage by * break",
        slapd::SERVICE_DN
    )
}

fn staff_base() -> String {
    format!("ou=staff,{}", slapd::SUFFIX)
}

fn dn(i: usize) -> String {
    format!("uid=p{i:05},{}", staff_base())
}

/// Who manages person `i`: a tree with `TEAM` people per manager; person 0 has none.
fn manager_of(i: usize) -> Option<usize> {
    (i > 0).then(|| (i - 1) / TEAM)
}

fn generalized(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%SZ").to_string()
}

async fn bind_to(url: &str) -> ldap3::Ldap {
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(slapd::SERVICE_DN, slapd::SERVICE_PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap
}

fn relax() -> ldap3::controls::RawControl {
    ldap3::controls::RawControl {
        ctype: RELAX_OID.to_string(),
        crit: true,
        val: None,
    }
}

/// Adds the branch and the people, person `i` last changed `i × 7` minutes before `newest`.
async fn load(url: &str, newest: DateTime<Utc>) {
    let mut ldap = bind_to(url).await;
    let set = |name: &str, v: &[&str]| {
        let values = v.iter().map(|s| s.to_string()).collect::<HashSet<String>>();
        (name.to_string(), values)
    };
    ldap.add(
        &staff_base(),
        vec![
            set("objectClass", &["organizationalUnit"]),
            set("ou", &["staff"]),
        ],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    let first = [
        "Mette", "Lars", "Anna", "Jonas", "Søren", "Åse", "Niels", "Birgitte",
    ];
    let last = [
        "Sørensen",
        "Ærenlund",
        "Østergaard",
        "Ågård",
        "Brøndum",
        "Kjær",
        "Bæk",
    ];
    let departments = [
        "Borgerservice",
        "Børn og Unge",
        "IT",
        "Teknik og Miljø",
        "Økonomi",
        "Ældreplejen",
    ];
    let titles = [
        "Sagsbehandler",
        "Pædagog",
        "IT-supporter",
        "Konsulent",
        "Leder",
    ];
    for i in 0..people() {
        let given = first[i % first.len()];
        let family = last[(i / first.len()) % last.len()];
        let name = format!("{given} {family} {i}");
        let stamped = generalized(newest - chrono::Duration::minutes(7 * i as i64));
        let uid = format!("p{i:05}");
        let mail = format!("{uid}@kommune.example");
        let phone = format!(
            "+45 89 {:02} {:02} {:02}",
            i / 10_000,
            (i / 100) % 100,
            i % 100
        );
        let room = format!("{}.{:02}", i % 4, i % 50);
        let office = format!("Rådhuset, {}", departments[i % departments.len()]);
        let description = format!(
            "Ansvar for sager om {} og {}; træffes mandag til torsdag",
            titles[i % titles.len()].to_lowercase(),
            departments[(i + 1) % departments.len()]
        );
        let mut attrs = vec![
            set("objectClass", &["inetOrgPerson"]),
            set("uid", &[&uid]),
            set("cn", &[&name]),
            set("sn", &[family]),
            set("givenName", &[given]),
            set("displayName", &[&name]),
            set("title", &[titles[i % titles.len()]]),
            set("ou", &[departments[i % departments.len()]]),
            set("telephoneNumber", &[&phone]),
            set("mail", &[&mail]),
            set("physicalDeliveryOfficeName", &[&office]),
            set("roomNumber", &[&room]),
            set("description", &[&description]),
            set("createTimestamp", &[&stamped]),
            set("modifyTimestamp", &[&stamped]),
        ];
        let manager = manager_of(i).map(dn);
        if let Some(m) = &manager {
            attrs.push(set("manager", &[m]));
        }
        ldap.with_controls(relax())
            .add(&dn(i), attrs)
            .await
            .unwrap()
            .success()
            .unwrap();
    }
    let _ = ldap.unbind().await;
}

/// A loopback proxy in front of slapd that counts the bytes slapd sends.
async fn proxy(target: u16, received: Arc<AtomicU64>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let received = received.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                // Without TCP_NODELAY the proxy itself would add delayed-ACK stalls.
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = async {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    let _ = server_write.shutdown().await;
                };
                let down = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                received.fetch_add(n as u64, Ordering::Relaxed);
                                if client_write.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = client_write.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    port
}

/// What one run cost.
#[derive(Clone, Debug, Default)]
struct Cost {
    time: Duration,
    searches: usize,
    entries: usize,
    bytes: u64,
    upserts: usize,
    unchanged: usize,
    complete: bool,
}

struct Bench {
    slapd: slapd::Slapd,
    received: Arc<AtomicU64>,
}

impl Bench {
    /// Runs the connector once and measures it.
    async fn run(
        &self,
        connector: &dyn Connector,
        known: &HashMap<String, String>,
        cursor: Option<&str>,
    ) -> (Cost, Vec<Change>) {
        let log_from = self.slapd.log().len();
        let bytes_from = self.received.load(Ordering::Relaxed);
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let ctx = RunContext {
            source_id: "medarbejdere".into(),
            cursor: cursor.map(str::to_owned),
            full: false,
            known: Arc::new(known.clone()),
            sink: ChangeSink::new(tx),
        };
        let collect = async {
            let mut changes = Vec::new();
            while let Some(change) = rx.recv().await {
                changes.push(change);
            }
            changes
        };
        let started = Instant::now();
        let (result, changes) = tokio::join!(connector.run(ctx), collect);
        let time = started.elapsed();
        result.unwrap();
        // The proxy may still be passing the last bytes on, and slapd logs a result just
        // after sending it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (searches, entries) = log_counts(&self.slapd.log()[log_from..]);
        let cost = Cost {
            time,
            searches,
            entries,
            bytes: self.received.load(Ordering::Relaxed) - bytes_from,
            upserts: changes
                .iter()
                .filter(|c| matches!(c, Change::Upsert(_)))
                .count(),
            unchanged: changes
                .iter()
                .filter(|c| matches!(c, Change::Unchanged { .. }))
                .count(),
            complete: changes.contains(&Change::TraversalComplete),
        };
        (cost, changes)
    }
}

impl Bench {
    /// The least any incremental run can cost: a new connection, a bind and the same search
    /// for the people changed since the cursor (less the overlap).
    async fn baseline(&self, port: u16, newest: DateTime<Utc>) -> Cost {
        let filter = format!(
            "(&(objectClass=inetOrgPerson)(modifyTimestamp>={}))",
            generalized(newest - chrono::Duration::minutes(5))
        );
        let log_from = self.slapd.log().len();
        let bytes_from = self.received.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut ldap = bind_to(&format!("ldap://127.0.0.1:{port}")).await;
        ldap.search(&staff_base(), ldap3::Scope::Subtree, &filter, vec!["*"])
            .await
            .unwrap()
            .success()
            .unwrap();
        drop(ldap);
        let time = started.elapsed();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (searches, entries) = log_counts(&self.slapd.log()[log_from..]);
        Cost {
            time,
            searches,
            entries,
            bytes: self.received.load(Ordering::Relaxed) - bytes_from,
            ..Cost::default()
        }
    }
}

/// Search requests (a paged search counts once per page) and entries returned, from the
/// `-d stats` lines of slapd's log.
fn log_counts(log: &str) -> (usize, usize) {
    let searches = log.matches(" SRCH base=").count();
    let entries = log
        .lines()
        .filter(|l| l.contains(" SEARCH RESULT "))
        .filter_map(|l| l.split(" nentries=").nth(1)?.split_whitespace().next())
        .filter_map(|n| n.parse::<usize>().ok())
        .sum();
    (searches, entries)
}

fn cursor_of(changes: &[Change]) -> String {
    changes
        .iter()
        .rev()
        .find_map(Change::cursor)
        .unwrap()
        .to_owned()
}

fn fingerprints(changes: &[Change]) -> HashMap<String, String> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert(d) => Some((d.external_id.clone(), d.fingerprint.clone()?)),
            _ => None,
        })
        .collect()
}

fn median(mut costs: Vec<Cost>) -> Cost {
    costs.sort_by_key(|c| c.time);
    costs[costs.len() / 2].clone()
}

fn config(port: u16, table: &str) -> Config {
    let s = slapd::SUFFIX;
    let text = format!(
        "[directory]\nkind = \"openldap\"\nurls = [\"ldap://127.0.0.1:{port}\"]\nbind_dn = \"{}\"\n\
         bind_password_env = \"BENCH_BIND\"\nbase_dn = \"{s}\"\n\n\
         [[sources]]\nid = \"medarbejdere\"\nname = \"Medarbejdere\"\nkind = \"staff-directory\"\n\
         schedule = \"manual\"\n\n[sources.staff-directory]\nbase_dn = \"{}\"\n{table}\n",
        slapd::SERVICE_DN,
        staff_base(),
    );
    let env = BTreeMap::from([(
        "BENCH_BIND".to_string(),
        slapd::SERVICE_PASSWORD.to_string(),
    )]);
    Config::from_str(&text, Path::new("bench.toml"), &env, &Overrides::default()).unwrap()
}

fn connector(config: &Config) -> Box<dyn Connector> {
    let source = config.source("medarbejdere").unwrap();
    samle::sources::build(config, source).unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let slapd = slapd::Slapd::start_with(&extra_config());
    let direct = slapd.url();
    let newest =
        DateTime::from_timestamp((Utc::now() - chrono::Duration::hours(1)).timestamp(), 0).unwrap();
    let t = Instant::now();
    load(&direct, newest).await;
    let loaded = t.elapsed();

    let received = Arc::new(AtomicU64::new(0));
    let port = proxy(slapd.ldap_port, received.clone()).await;
    let bench = Bench { slapd, received };
    let plain = connector(&config(port, ""));
    let listing = connector(&config(port, "full_listing_every = \"0s\""));

    // Warm up slapd's caches and the connections.
    let (_, first) = bench.run(plain.as_ref(), &HashMap::new(), None).await;
    let mut known = fingerprints(&first);
    let cursor = cursor_of(&first);

    // Each kind of run is measured in a phase of its own, after one unmeasured run of the
    // same kind. A small run right after a large one in the same process pays a few
    // milliseconds for the large one (freed memory, cold caches), which runs scheduled
    // minutes apart never see; it is shown on a line of its own.
    let mut full = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..ROUNDS {
        full.push(bench.run(plain.as_ref(), &HashMap::new(), None).await.0);
        cold.push(bench.run(plain.as_ref(), &known, Some(&cursor)).await.0);
    }
    let mut unchanged = Vec::new();
    let mut ids = Vec::new();
    let mut floor = Vec::new();
    for round in 0..=ROUNDS {
        let cost = bench.run(plain.as_ref(), &known, Some(&cursor)).await.0;
        if round > 0 {
            unchanged.push(cost);
        }
    }
    for round in 0..=ROUNDS {
        let cost = bench.baseline(port, newest).await;
        if round > 0 {
            floor.push(cost);
        }
    }
    for round in 0..=ROUNDS {
        let cost = bench.run(listing.as_ref(), &known, Some(&cursor)).await.0;
        if round > 0 {
            ids.push(cost);
        }
    }
    // A manager gets a new name: they and their reports are sent again.
    let mut renamed = Vec::new();
    let manager = 7;
    let mut ldap = bind_to(&direct).await;
    for round in 0..=ROUNDS {
        let name = format!("Leder {manager} navn {round}");
        ldap.modify(
            &dn(manager),
            vec![ldap3::Mod::Replace(
                "displayName".to_string(),
                HashSet::from([name]),
            )],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let (cost, changes) = bench.run(plain.as_ref(), &known, Some(&cursor)).await;
        known.extend(fingerprints(&changes));
        if round > 0 {
            renamed.push(cost);
        }
    }
    let _ = ldap.unbind().await;

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "staff directory against a local slapd: {} people (loaded in {:.1} s), median of {ROUNDS} runs; load {}",
        people(),
        loaded.as_secs_f64(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<44} {:>9} {:>9} {:>8} {:>11} {:>8} {:>9} {:>9}",
        "run", "ms", "searches", "entries", "bytes", "upserts", "unchanged", "complete"
    );
    let full = median(full);
    let unchanged = median(unchanged);
    let rows = [
        ("first run: everybody, every attribute", full.clone()),
        (
            "unchanged re-sync (changes since cursor)",
            unchanged.clone(),
        ),
        ("  the same, right after a first run", median(cold)),
        ("re-sync after a manager was renamed", median(renamed)),
        ("unchanged re-sync + listing of ids", median(ids)),
        ("baseline: connect, bind, the same search", median(floor)),
    ];
    for (name, c) in rows {
        println!(
            "{name:<44} {:>9.2} {:>9} {:>8} {:>11} {:>8} {:>9} {:>9}",
            c.time.as_secs_f64() * 1000.0,
            c.searches,
            c.entries,
            c.bytes,
            c.upserts,
            c.unchanged,
            if c.complete { "yes" } else { "no" }
        );
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
    println!(
        "unchanged re-sync / first run: time {:.2} %, bytes {:.2} %, entries {:.2} % (target ≤ 2 % of the time)",
        ratio(unchanged.time.as_secs_f64(), full.time.as_secs_f64()),
        ratio(unchanged.bytes as f64, full.bytes as f64),
        ratio(unchanged.entries as f64, full.entries as f64),
    );
}
