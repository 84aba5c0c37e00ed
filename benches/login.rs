//! Login latency against a real, local OpenLDAP (`cargo bench --bench login`).
//!
//! Starts the tests' private `slapd` with the municipality fixture, then measures, in one
//! process: Samle's whole LDAP login (service search for the user, bind as the DN found,
//! group search with nesting expanded) and, as the baseline, the least any LDAP login can
//! cost: a new connection and one simple bind as the same user. It prints figures and
//! asserts nothing.

// A benchmark binary: a failed step should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use samle::config::{Config, DirectoryConfig, Overrides};
use samle::directory::Directory;
use samle::directory::ldap::LdapDirectory;

#[path = "../tests/common/slapd.rs"]
#[allow(dead_code)]
mod slapd;

/// Used by the slapd harness to find its fixtures.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const USER: &str = "anna";
const USER_DN: &str = "uid=anna,ou=people,dc=kommune,dc=example";
const ROUNDS: usize = 300;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let at = |p: f64| ms(times[((times.len() - 1) as f64 * p).round() as usize]);
    (at(0.5), at(0.9), at(0.99))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let slapd = slapd::Slapd::start();
    let url = slapd.url();
    let text = format!(
        "[directory]\nkind = \"openldap\"\nurls = [\"{url}\"]\nbind_dn = \"{}\"\nbind_password_env = \"BENCH_BIND\"\nbase_dn = \"{s}\"\nuser_base = \"ou=people,{s}\"\ngroup_base = \"ou=groups,{s}\"\n",
        slapd::SERVICE_DN,
        s = slapd::SUFFIX,
    );
    let env = BTreeMap::from([(
        "BENCH_BIND".to_string(),
        slapd::SERVICE_PASSWORD.to_string(),
    )]);
    let config =
        Config::from_str(&text, Path::new("bench.toml"), &env, &Overrides::default()).unwrap();
    let DirectoryConfig::Ldap(ldap) = &config.directory else {
        unreachable!("the text above is an LDAP directory")
    };
    let dir = LdapDirectory::new(ldap).unwrap();

    // Warm up both paths (connections, the server's caches).
    let user = dir.authenticate(USER, slapd::PASSWORD).await.unwrap();
    for _ in 0..20 {
        dir.authenticate(USER, slapd::PASSWORD).await.unwrap();
        bare_bind(&url).await;
    }

    let mut samle = Vec::with_capacity(ROUNDS);
    let mut bare = Vec::with_capacity(ROUNDS);
    let mut lookup = Vec::with_capacity(ROUNDS);
    // Interleaved, so that a burst of load on the machine hits both alike.
    for _ in 0..ROUNDS {
        let t = Instant::now();
        dir.authenticate(USER, slapd::PASSWORD).await.unwrap();
        samle.push(t.elapsed());
        let t = Instant::now();
        bare_bind(&url).await;
        bare.push(t.elapsed());
        let t = Instant::now();
        dir.lookup(USER).await.unwrap();
        lookup.push(t.elapsed());
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "login latency against a local slapd, {ROUNDS} rounds, user `{USER}` in {} groups (nested expanded); load {}",
        user.groups.len(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("{:<52} {:>8} {:>8} {:>8}", "ms", "p50", "p90", "p99");
    let rows = [
        (
            "samle: login (search, bind, groups)",
            summary(samle.clone()),
        ),
        ("samle: principal refresh (lookup)", summary(lookup)),
        (
            "baseline: new connection + one simple bind",
            summary(bare.clone()),
        ),
    ];
    for (name, (p50, p90, p99)) in rows {
        println!("{name:<52} {p50:>8.2} {p90:>8.2} {p99:>8.2}");
    }
    let (s50, _, s99) = summary(samle);
    let (b50, _, b99) = summary(bare);
    println!(
        "{:<52} {:>8.2} {:>8} {:>8.2}",
        "ratio login / baseline",
        s50 / b50,
        "",
        s99 / b99
    );
}

async fn bare_bind(url: &str) {
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(USER_DN, slapd::PASSWORD)
        .await
        .unwrap()
        .success()
        .unwrap();
    let _ = ldap.unbind().await;
}
