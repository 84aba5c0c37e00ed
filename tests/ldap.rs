//! The LDAP directory against a real OpenLDAP: a private `slapd` per test (see
//! `common/slapd.rs`) loaded with a Danish municipality (`tests/fixtures/ldap/kommune.ldif`).
//! Covers plain LDAP, LDAPS and StartTLS, every login failure, blank passwords, filter
//! injection, nested groups, principal refresh, a directory that is down or hung, the
//! example configurations, and a login through the real `samle serve`.

// Test helpers panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::slapd::{self, PASSWORD, SERVICE_DN, SERVICE_PASSWORD, Slapd};
use common::{Portal, repo};
use samle::config::{Config, DirectoryConfig, LdapGroupMode, Overrides};
use samle::directory::ldap::LdapDirectory;
use samle::directory::{AuthError, Directory, FailureReason, UserInfo};
use serde_json::Value;

const PASSWORD_VAR: &str = "TEST_LDAP_BIND_PASSWORD";

/// A `[directory]` table for the test slapd; each line of `extra` (`key = value`) adds a key
/// or replaces the default one.
fn directory_toml(slapd: &Slapd, url: &str, extra: &str) -> String {
    let suffix = slapd::SUFFIX;
    let defaults = [
        ("kind", "\"openldap\"".to_string()),
        ("urls", format!("[\"{url}\"]")),
        ("ca_file", format!("\"{}\"", slapd.ca_file.display())),
        ("bind_dn", format!("\"{SERVICE_DN}\"")),
        ("bind_password_env", format!("\"{PASSWORD_VAR}\"")),
        ("base_dn", format!("\"{suffix}\"")),
        ("user_base", format!("\"ou=people,{suffix}\"")),
        ("group_base", format!("\"ou=groups,{suffix}\"")),
        ("connect_timeout", "\"2s\"".to_string()),
        ("timeout", "\"2s\"".to_string()),
        // Smaller than the server's size limit (3) and than many users' group counts: every
        // group search must page to see everything.
        ("page_size", "2".to_string()),
    ];
    let overridden: Vec<&str> = extra
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let mut text = String::from("[directory]\n");
    for (key, value) in defaults {
        if !overridden.contains(&key) {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    text.push_str(extra);
    text.push('\n');
    text
}

/// The same without one of the default keys.
fn without(text: &str, key: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with(&format!("{key} = ")))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([(PASSWORD_VAR.to_string(), SERVICE_PASSWORD.to_string())])
}

fn open_with(text: &str, env: &BTreeMap<String, String>) -> LdapDirectory {
    let config = Config::from_str(
        text,
        Path::new("/tmp/samle.toml"),
        env,
        &Overrides::default(),
    )
    .unwrap();
    let DirectoryConfig::Ldap(ldap) = &config.directory else {
        panic!("not an LDAP directory: {:?}", config.directory);
    };
    LdapDirectory::new(ldap).unwrap()
}

fn open(slapd: &Slapd, extra: &str) -> LdapDirectory {
    open_with(&directory_toml(slapd, &slapd.url(), extra), &env())
}

fn refused(r: Result<UserInfo, AuthError>) -> FailureReason {
    match r {
        Err(AuthError::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn unavailable<T: std::fmt::Debug>(r: Result<T, AuthError>) -> String {
    match r {
        Err(AuthError::Unavailable(message)) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Bounds a call that must return even when the directory does not: generous, because the
/// assertion is that it returns at all, not how fast.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the directory call did not return within 60 s")
}

#[tokio::test]
async fn plain_ldaps_and_starttls_log_in_with_the_private_ca() {
    let slapd = Slapd::start();
    let plain = open(&slapd, "");
    let ldaps = open_with(&directory_toml(&slapd, &slapd.ldaps_url(), ""), &env());
    let starttls = open(&slapd, "starttls = true");
    for dir in [&plain, &ldaps, &starttls] {
        assert_eq!(dir.kind(), "ldap");
        let mette = dir.authenticate("mette", PASSWORD).await.unwrap();
        assert_eq!(
            mette,
            UserInfo {
                id: "mette".into(),
                display_name: "Mette Sørensen".into(),
                mail: Some("mette.sorensen@kommune.example".into()),
                department: Some("Borgerservice".into()),
                title: Some("Sagsbehandler".into()),
                groups: vec!["all-employees".into(), "borgerservice".into()],
            }
        );
    }

    // A certificate from a CA the portal was not told to trust is refused, on both kinds
    // of TLS, and says so.
    let wrong = format!("ca_file = \"{}\"", slapd.wrong_ca_file.display());
    for (url, extra) in [
        (slapd.ldaps_url(), wrong.clone()),
        (slapd.url(), format!("{wrong}\nstarttls = true")),
    ] {
        let dir = open_with(&directory_toml(&slapd, &url, &extra), &env());
        let message = unavailable(bounded(dir.authenticate("mette", PASSWORD)).await);
        assert!(message.contains("TLS"), "{url}: {message}");
    }
}

/// A server that refuses simple binds without TLS (as Active Directory does by default):
/// the answer says to use ldaps or StartTLS, and StartTLS then works.
#[tokio::test]
async fn a_server_that_requires_encryption_says_so() {
    let slapd = Slapd::start_with("security simple_bind=128");
    let plain = open(&slapd, "");
    let message = unavailable(plain.authenticate("mette", PASSWORD).await);
    assert!(
        message.contains("ldaps://") && message.contains("starttls"),
        "{message}"
    );
    let starttls = open(&slapd, "starttls = true");
    assert_eq!(
        starttls.authenticate("mette", PASSWORD).await.unwrap().id,
        "mette"
    );
}

#[tokio::test]
async fn nested_groups_are_expanded_by_the_portal() {
    let slapd = Slapd::start();
    let dir = open(&slapd, "");
    // Niels's DN has an escaped comma and an ø; he is in more groups than the server's size
    // limit (3), so this also needs paging; portal-admins comes through it-admins and managers.
    let niels = dir.authenticate("niels", PASSWORD).await.unwrap();
    assert_eq!(niels.id, "niels");
    assert_eq!(niels.display_name, "Niels Brøndum");
    assert_eq!(
        niels.groups,
        [
            "all-employees",
            "it",
            "it-admins",
            "managers",
            "portal-admins"
        ]
    );
    let anna = dir.authenticate("anna", PASSWORD).await.unwrap();
    assert_eq!(
        anna.groups,
        ["all-employees", "it", "it-admins", "portal-admins"]
    );
    let lars = dir.authenticate("lars", PASSWORD).await.unwrap();
    assert_eq!(
        lars.groups,
        [
            "all-employees",
            "borgerservice",
            "managers",
            "portal-admins"
        ]
    );
    // Jonas's team is in a cycle of groups; no displayName, so cn is shown.
    let jonas = dir.authenticate("jonas", PASSWORD).await.unwrap();
    assert_eq!(jonas.display_name, "Jonas Ågård");
    assert_eq!(
        jonas.groups,
        ["all-employees", "børn-og-unge", "ring-a", "ring-b"]
    );

    // The same through memberOf (read from the user, then from each group).
    let member_of = open(&slapd, "groups = \"member-of\"");
    for (user, expected) in [(&niels, "niels"), (&jonas, "jonas")] {
        let again = member_of.authenticate(expected, PASSWORD).await.unwrap();
        assert_eq!(&again, user);
    }

    // Without nesting: only the direct groups.
    let flat = open(&slapd, "group_nesting_depth = 0");
    let niels = flat.authenticate("niels", PASSWORD).await.unwrap();
    assert_eq!(
        niels.groups,
        ["all-employees", "it", "it-admins", "managers"]
    );
}

#[tokio::test]
async fn users_log_in_by_uid_or_mail_and_get_their_uid_as_id() {
    let slapd = Slapd::start();
    let dir = open(&slapd, "");
    let by_mail = dir
        .authenticate("anna.ostergaard@kommune.example", PASSWORD)
        .await
        .unwrap();
    assert_eq!(by_mail.id, "anna");
    let upper = dir.authenticate(" ANNA ", PASSWORD).await.unwrap();
    assert_eq!(upper.id, "anna");
}

#[tokio::test]
async fn every_failure_has_its_reason() {
    use FailureReason::*;
    let slapd = Slapd::start();
    let dir = open(&slapd, "");
    assert_eq!(
        refused(dir.authenticate("nobody", PASSWORD).await),
        NoSuchUser
    );
    assert_eq!(
        refused(dir.authenticate("mette", "forkert").await),
        WrongPassword
    );
    // Disabled by an administrator (a permanent ppolicy lock), whatever the password.
    assert_eq!(refused(dir.authenticate("ole", PASSWORD).await), Disabled);
    assert_eq!(refused(dir.authenticate("ole", "forkert").await), Disabled);
    // A password reset by an administrator must be changed first.
    assert_eq!(refused(dir.authenticate("sofie", PASSWORD).await), Expired);
    // Two entries answer to "dobbelt": refused, not resolved to either.
    assert_eq!(
        refused(dir.authenticate("dobbelt", PASSWORD).await),
        NoSuchUser
    );
    // Three wrong passwords lock Tobias (his policy); then the right one is refused too.
    for _ in 0..3 {
        assert_eq!(
            refused(dir.authenticate("tobias", "forkert").await),
            WrongPassword
        );
    }
    assert_eq!(refused(dir.authenticate("tobias", PASSWORD).await), Locked);
    assert_eq!(dir.lookup("tobias").await.unwrap(), None);
    assert_eq!(dir.lookup("ole").await.unwrap(), None);
    // A UTF-8 password that is almost right is still wrong.
    assert_eq!(
        refused(dir.authenticate("mette", "Sommer-æøa-2026").await),
        WrongPassword
    );
}

#[tokio::test]
async fn blank_passwords_are_refused_without_a_bind() {
    let mut slapd = Slapd::start();
    let dir = open(&slapd, "");
    // Warm up: the pool's service connection is bound.
    dir.authenticate("mette", PASSWORD).await.unwrap();
    let before = slapd.binds();
    assert!(before >= 2, "the log counts binds:\n{}", slapd.log());
    for password in ["", " ", "\t\n", "\u{a0}", "\u{3000} "] {
        assert_eq!(
            refused(dir.authenticate("mette", password).await),
            FailureReason::EmptyPassword,
            "{password:?}"
        );
    }
    assert_eq!(
        slapd.binds(),
        before,
        "a blank password must never reach the server"
    );
    // With the server gone the answer is the same: nothing was going to be sent.
    slapd.stop();
    assert_eq!(
        refused(dir.authenticate("mette", "").await),
        FailureReason::EmptyPassword
    );
    assert_eq!(
        refused(dir.authenticate("mette", "   ").await),
        FailureReason::EmptyPassword
    );
}

#[tokio::test]
async fn injection_attempts_match_nobody() {
    let slapd = Slapd::start();
    let dir = open(&slapd, "");
    // Everyone in the fixture has the same password: any user name that matched someone
    // would log in.
    for login in [
        "*",
        "a)(uid=*",
        "(",
        ")",
        "\\",
        "\0",
        "mette\0",
        "*)(|(uid=*",
        "mette)(uid=*",
        "m*",
        "*@kommune.example",
        "uid=mette,ou=people,dc=kommune,dc=example",
        "cn=Brøndum\\, Niels",
    ] {
        assert_eq!(
            refused(dir.authenticate(login, PASSWORD).await),
            FailureReason::NoSuchUser,
            "{login:?}"
        );
        assert_eq!(dir.lookup(login).await.unwrap(), None, "{login:?}");
    }
    // Still fine for the real name afterwards.
    dir.authenticate("mette", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn lookup_sees_group_changes_and_removed_or_disabled_users() {
    let slapd = Slapd::start();
    let dir = open(&slapd, "");
    let lars = dir.lookup("LARS").await.unwrap().unwrap();
    assert_eq!(lars.id, "lars");
    assert_eq!(
        lars.groups,
        [
            "all-employees",
            "borgerservice",
            "managers",
            "portal-admins"
        ]
    );

    slapd.ldapmodify(
        "dn: cn=managers,ou=groups,dc=kommune,dc=example\n\
         changetype: modify\n\
         delete: member\n\
         member: uid=lars,ou=people,dc=kommune,dc=example\n",
    );
    let lars = dir.lookup("lars").await.unwrap().unwrap();
    assert_eq!(lars.groups, ["all-employees", "borgerservice"]);

    // Disabled by an administrator: gone for the portal.
    slapd.ldapmodify(
        "dn: uid=lars,ou=people,dc=kommune,dc=example\n\
         changetype: modify\n\
         add: pwdAccountLockedTime\n\
         pwdAccountLockedTime: 000001010000Z\n",
    );
    assert_eq!(dir.lookup("lars").await.unwrap(), None);

    // Removed from the directory.
    slapd.ldapmodify(
        "dn: uid=mette,ou=people,dc=kommune,dc=example\n\
         changetype: delete\n",
    );
    assert_eq!(dir.lookup("mette").await.unwrap(), None);
    assert_eq!(
        refused(dir.authenticate("mette", PASSWORD).await),
        FailureReason::NoSuchUser
    );
    assert!(dir.lookup("anna").await.unwrap().is_some());
}

#[tokio::test]
async fn a_directory_that_is_down_or_hung_is_unavailable_then_recovers() {
    let mut slapd = Slapd::start();
    let dir = open(&slapd, "timeout = \"1s\"\nconnect_timeout = \"1s\"");
    dir.authenticate("anna", PASSWORD).await.unwrap();

    // Hung: the kernel still accepts connections, nobody answers.
    slapd.freeze();
    let message = unavailable(bounded(dir.authenticate("anna", PASSWORD)).await);
    assert!(!message.is_empty());
    unavailable(bounded(dir.lookup("anna")).await);
    slapd.thaw();
    dir.authenticate("anna", PASSWORD).await.unwrap();

    // Down: connections are refused.
    slapd.stop();
    let message = unavailable(bounded(dir.authenticate("anna", PASSWORD)).await);
    assert!(
        message.contains("no directory server answered"),
        "{message}"
    );
    unavailable(bounded(dir.lookup("anna")).await);

    // Back: the pool's dead connections are replaced.
    slapd.restart();
    let anna = bounded(dir.authenticate("anna", PASSWORD)).await.unwrap();
    assert_eq!(anna.id, "anna");
    assert!(dir.lookup("anna").await.unwrap().is_some());
}

#[tokio::test]
async fn servers_are_tried_in_order() {
    let slapd = Slapd::start();
    // The first server refuses connections (a port nothing listens on); the second accepts
    // them and never answers (a listener nobody reads from); the third is the real one.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("ldap://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung = format!("ldap://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let extra = format!(
        "urls = [\"{dead}\", \"{hung}\", \"{}\"]\ntimeout = \"1s\"",
        slapd.url()
    );
    let dir = open_with(&directory_toml(&slapd, &dead, &extra), &env());
    let anna = bounded(dir.authenticate("anna", PASSWORD)).await.unwrap();
    assert_eq!(anna.id, "anna");
    assert!(bounded(dir.lookup("anna")).await.unwrap().is_some());
    drop(silent);
}

#[tokio::test]
async fn check_binds_and_resolves_a_user() {
    let slapd = Slapd::start();
    let dir = open(&slapd, "");
    assert_eq!(dir.check(None).await.unwrap(), Vec::<String>::new());
    assert_eq!(
        dir.check(Some("anna")).await.unwrap(),
        ["all-employees", "it", "it-admins", "portal-admins"]
    );
    assert!(matches!(
        dir.check(Some("nobody")).await,
        Err(AuthError::Refused(FailureReason::NoSuchUser))
    ));

    // A wrong service password is the administrator's problem, named as such.
    let wrong = BTreeMap::from([(PASSWORD_VAR.to_string(), "forkert".to_string())]);
    let bad = open_with(&directory_toml(&slapd, &slapd.url(), ""), &wrong);
    let message = unavailable(bad.check(None).await);
    assert!(message.contains("service account"), "{message}");
    let message = unavailable(bad.authenticate("anna", PASSWORD).await);
    assert!(message.contains("service account"), "{message}");

    // Anonymous searches are refused by this directory's ACLs: nobody is found.
    let text = directory_toml(&slapd, &slapd.url(), "");
    let anonymous = open_with(
        &without(&without(&text, "bind_dn"), "bind_password_env"),
        &env(),
    );
    assert!(anonymous.check(None).await.is_err());
    assert_eq!(
        refused(anonymous.authenticate("anna", PASSWORD).await),
        FailureReason::NoSuchUser
    );
}

#[test]
fn the_example_configurations_parse() {
    let env = BTreeMap::from([("SAMLE_LDAP_BIND_PASSWORD".to_string(), "x".to_string())]);
    for (file, group_mode) in [
        ("openldap.toml", LdapGroupMode::Search),
        ("active-directory.toml", LdapGroupMode::InChain),
    ] {
        let path = repo().join("config/examples").join(file);
        // The examples name a CA file and a share of a real installation: the test copies
        // each example with those two paths pointed at files of its own.
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let copy = dir.path().join(file);
        std::fs::write(&copy, example_with_local_paths(&text, dir.path())).unwrap();
        let config = Config::load(&copy, &env, &Overrides::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let DirectoryConfig::Ldap(ldap) = &config.directory else {
            panic!("{file}: not an LDAP directory");
        };
        assert_eq!(ldap.groups, group_mode, "{file}");
        assert!(ldap.bind_password.is_some(), "{file}");
        assert!(!config.sources.is_empty(), "{file}: an example source");
        LdapDirectory::new(ldap).unwrap();
        // Without the password in the environment, the error says where it should be.
        let e = Config::load(&copy, &BTreeMap::new(), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("SAMLE_LDAP_BIND_PASSWORD"), "{e}");
    }
}

/// The examples name absolute paths of a real installation (`/etc/ssl/...`, `/srv/...`):
/// point them at files that exist here, and check nothing else changes.
fn example_with_local_paths(text: &str, dir: &Path) -> String {
    let ca = dir.join("ca.pem");
    // Any PEM certificate will do for parsing: make one.
    let ok = std::process::Command::new("openssl")
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
        .arg(dir.join("ca.key"))
        .arg("-out")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let replaced = if line.starts_with("ca_file = ") {
            format!("ca_file = \"{}\"", ca.display())
        } else if line.starts_with("root = ") {
            format!("root = \"{}\"", share.display())
        } else {
            line.to_string()
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

/// The real portal with an LDAP directory: log in through the form as a directory user
/// whose DN has an escaped comma, search, see what the groups allow, and fail cleanly when
/// the directory stops.
#[tokio::test]
async fn the_portal_logs_in_against_ldap_and_searches() {
    let mut slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("ldap-password");
    std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
    let content = repo().join("config/demo/content");
    let config = dir.path().join("samle.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[directory]
kind = "ldap"
urls = ["{url}"]
starttls = true
ca_file = "{ca}"
bind_dn = "{SERVICE_DN}"
bind_password_file = "{password_file}"
base_dn = "{suffix}"
timeout = "2s"
connect_timeout = "2s"

[auth]
admin_groups = ["portal-admins"]
publisher_groups = ["managers"]

[[sources]]
id = "nyheder"
name = "Nyheder"
kind = "file-share"
schedule = "manual"

[sources.file-share]
root = "{nyheder}"
default_access = ["group:all-employees"]
language = "da"

[[sources]]
id = "borgerservice"
name = "Borgerservice"
kind = "file-share"
schedule = "manual"

[sources.file-share]
root = "{borgerservice}"
default_access = ["group:borgerservice"]
language = "da"
"#,
            url = slapd.url(),
            ca = slapd.ca_file.display(),
            password_file = password_file.display(),
            suffix = slapd::SUFFIX,
            nyheder = content.join("nyheder").display(),
            borgerservice = content.join("borgerservice").display(),
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let portal = Portal::start(&config, &data);

    let client = portal.client();
    let r = portal.post_login(&client, "niels", PASSWORD).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let html = client
        .get(portal.url("/search?q=kantine"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Niels Brøndum"), "{html}");
    assert!(
        !html.contains("class=\"demo-banner\""),
        "no demo banner with a real directory"
    );
    let me: Value = client
        .get(portal.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], "niels");
    assert_eq!(
        me["roles"]["admin"], true,
        "portal-admins through nesting: {me}"
    );
    assert_eq!(me["roles"]["publisher"], true);
    let hits: Value = client
        .get(portal.url("/api/v1/search?q=kantine"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(hits["total"].as_u64().unwrap() >= 1, "{hits}");
    // Niels is not in Borgerservice; Mette is.
    let (_, niels_bs) = total(&portal, &client, "q=&source=borgerservice").await;
    assert_eq!(niels_bs, 0);
    let mette = portal.client();
    let r = portal.post_login(&mette, "mette", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let (_, mette_bs) = total(&portal, &mette, "q=&source=borgerservice").await;
    assert!(mette_bs >= 1);

    // Failures all look alike to the visitor.
    for (user, password) in [
        ("mette", "forkert"),
        ("nobody", PASSWORD),
        ("ole", PASSWORD),
        ("*", PASSWORD),
    ] {
        let c = portal.client();
        let r = portal.post_login(&c, user, password).await;
        assert_eq!(r.status(), 401, "{user}");
    }

    // The directory stops: a login fails with the "unavailable" page within bounded time,
    // while the session already open keeps searching.
    slapd.stop();
    let c = portal.client();
    let r = bounded(portal.post_login(&c, "anna", PASSWORD)).await;
    assert_eq!(r.status(), 503);
    let (status, _) = total(&portal, &client, "q=kantine").await;
    assert_eq!(status, 200);
}

async fn total(portal: &Portal, client: &reqwest::Client, query: &str) -> (u16, u64) {
    let r = client
        .get(portal.url(&format!("/api/v1/search?{query}")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (status, v["total"].as_u64().unwrap_or(0))
}
