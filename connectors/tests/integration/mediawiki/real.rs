//! The MediaWiki connector against a real MediaWiki 1.39 (Debian's `mediawiki` package) run
//! by PHP's built-in server on a free loopback port, with SQLite in a temporary folder.
//!
//! `install.php` runs once per test binary into a template folder; each test copies it,
//! points its own `LocalSettings.php` at the copy (through the `MW_CONFIG_FILE` variable, so
//! the package's `/etc/mediawiki` is never touched) and starts its own server. Pages are
//! created, edited, deleted, moved and restored with the wiki's own maintenance scripts.
//!
//! Both the template and each server are watched by a `sh` that holds a pipe from this
//! process: when the test binary ends, however it ends, the pipe closes and the shell stops the
//! server and removes the folder.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use samle_connectors::{Change, ConnectorParams, MediaWiki};

use crate::common::{fingerprints, ids, is_upsert, last_cursor, run_with, upserts};

const MEDIAWIKI: &str = "/usr/share/mediawiki";
const ADMIN_PASSWORD: &str = "Samle-test-kodeord-2026";
/// Bot passwords are exactly 32 characters.
const BOT_PASSWORD: &str = "samlebotsamlebotsamlebotsamlebot";
const BOT_USER: &str = "Admin@samle";
/// The server the template is installed for; each copy gets its own.
const TEMPLATE_SERVER: &str = "http://127.0.0.1:1";

/// The installed template, and the watcher that removes it when the test binary ends.
struct Template {
    dir: PathBuf,
    /// Never waited for: it ends with this process.
    _watcher: Mutex<Child>,
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let php = Command::new("php").arg("--version").output();
        assert!(
            php.is_ok_and(|o| o.status.success()),
            "php is not installed: run scripts/test, which installs mediawiki, php-cli and php-sqlite3"
        );
        assert!(
            Path::new(MEDIAWIKI).join("maintenance/install.php").exists(),
            "MediaWiki is not installed in {MEDIAWIKI}: run scripts/test, which installs Debian's mediawiki package"
        );
        let dir = std::env::temp_dir().join(format!("samle-mediawiki-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let watcher = watch(&dir, None);
        let output = Command::new("php")
            .arg(format!("{MEDIAWIKI}/maintenance/install.php"))
            .args([
                "--dbtype=sqlite",
                &format!("--dbpath={}", dir.join("db").display()),
                "--dbname=samle",
                &format!("--server={TEMPLATE_SERVER}"),
                "--scriptpath=",
                "--lang=da",
                &format!("--pass={ADMIN_PASSWORD}"),
                &format!("--confpath={}", dir.display()),
                "Samle Test",
                "Admin",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success() && dir.join("LocalSettings.php").exists(),
            "install.php failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Template {
            dir,
            _watcher: Mutex::new(watcher),
        }
    })
}

/// Starts `sh`, which runs `command` (if any) in the background and, once this process closes
/// the pipe to its stdin, stops the command and removes `dir`.
fn watch(dir: &Path, command: Option<(&[String], &Path, &Path)>) -> Child {
    let mut sh = Command::new("sh");
    match command {
        None => {
            sh.args(["-c", "cat >/dev/null; rm -rf \"$0\""]).arg(dir);
        }
        Some((argv, config, log)) => {
            sh.args([
                "-c",
                "dir=$1; log=$2; shift 2; \"$@\" >\"$log\" 2>&1 & pid=$!; cat >/dev/null; kill $pid; wait $pid; rm -rf \"$dir\"",
                "sh",
            ])
            .arg(dir)
            .arg(log)
            .args(argv)
            .env("MW_CONFIG_FILE", config);
        }
    }
    sh.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A running private copy of the template wiki.
pub struct RealWiki {
    dir: PathBuf,
    config: PathBuf,
    pub port: u16,
    watcher: Option<Child>,
}

impl RealWiki {
    /// Starts a wiki; a private one lets only logged-in users read.
    pub fn start(private: bool) -> RealWiki {
        let template = template();
        let dir = std::env::temp_dir().join(format!(
            "samle-mediawiki-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        for entry in std::fs::read_dir(template.dir.join("db")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.join("db").join(entry.file_name())).unwrap();
            }
        }
        let port = free_port();
        let settings = std::fs::read_to_string(template.dir.join("LocalSettings.php"))
            .unwrap()
            .replace(template.dir.to_str().unwrap(), dir.to_str().unwrap())
            .replace(TEMPLATE_SERVER, &format!("http://127.0.0.1:{port}"));
        let mut settings = settings
            + "\n# Samle's tests\n\
               $wgJobRunRate = 0;\n\
               $wgShowExceptionDetails = true;\n\
               $wgPasswordAttemptThrottle = false;\n\
               $wgEnableBotPasswords = true;\n";
        if private {
            settings += "$wgGroupPermissions['*']['read'] = false;\n\
                         $wgGroupPermissions['*']['edit'] = false;\n\
                         $wgGroupPermissions['*']['createaccount'] = false;\n";
        }
        let config = dir.join("LocalSettings.php");
        std::fs::write(&config, settings).unwrap();
        let argv: Vec<String> = [
            "php",
            "-d",
            "opcache.enable_cli=1",
            "-S",
            &format!("127.0.0.1:{port}"),
            "-t",
            MEDIAWIKI,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let watcher = watch(&dir, Some((&argv, &config, &dir.join("server.log"))));
        let wiki = RealWiki {
            dir,
            config,
            port,
            watcher: Some(watcher),
        };
        wiki.wait_until_up();
        wiki
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "php -S on port {} did not start: {}",
                self.port,
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}/api.php", self.port)
    }

    pub fn page_url(&self, encoded_title: &str) -> String {
        format!("http://127.0.0.1:{}/index.php/{encoded_title}", self.port)
    }

    /// Runs a maintenance script with this wiki's settings and returns its output.
    pub fn maintenance(&self, script: &str, args: &[&str], input: Option<&str>) -> String {
        let mut child = Command::new("php")
            .arg(format!("{MEDIAWIKI}/maintenance/{script}.php"))
            .args(args)
            .env("MW_CONFIG_FILE", &self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).unwrap();
        }
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{script} {args:?} failed: {text}");
        text
    }

    pub fn edit(&self, title: &str, wikitext: &str) {
        self.maintenance(
            "edit",
            &["-u", "Admin", "-s", "test", title],
            Some(wikitext),
        );
    }

    pub fn delete(&self, title: &str) {
        let list = self.dir.join("delete.txt");
        std::fs::write(&list, format!("{title}\n")).unwrap();
        self.maintenance(
            "deleteBatch",
            &["-u", "Admin", "-r", "test", list.to_str().unwrap()],
            None,
        );
    }

    pub fn move_page(&self, from: &str, to: &str) {
        let list = self.dir.join("move.txt");
        std::fs::write(&list, format!("{from}|{to}\n")).unwrap();
        self.maintenance(
            "moveBatch",
            &["-u", "Admin", "-r", "test", list.to_str().unwrap()],
            None,
        );
    }

    pub fn undelete(&self, title: &str) {
        self.maintenance("undelete", &["-u", "Admin", "-r", "test", title], None);
    }

    /// A bot password for Admin (`Admin@samle`) with the basic and high-volume grants.
    pub fn create_bot_password(&self) {
        let out = self.maintenance(
            "createBotPassword",
            &[
                "--grants",
                "basic,highvolume",
                "--appid",
                "samle",
                "Admin",
                BOT_PASSWORD,
            ],
            None,
        );
        assert!(out.contains("Success"), "{out}");
    }
}

impl Drop for RealWiki {
    fn drop(&mut self) {
        // Closing the pipe makes the watcher stop the server and remove the folder.
        if let Some(mut watcher) = self.watcher.take() {
            drop(watcher.stdin.take());
            let _ = watcher.wait();
        }
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env(name: &str) -> Option<String> {
    match name {
        "SAMLE_WIKI_BOT_PASSWORD" => Some(BOT_PASSWORD.to_owned()),
        "SAMLE_WIKI_WRONG_PASSWORD" => Some("x".repeat(32)),
        _ => None,
    }
}

fn connector(api: &str, table: &str) -> MediaWiki {
    let text = format!(
        "[mediawiki]\napi = {api:?}\n{table}\n[mediawiki.http]\nmin_delay = \"0ms\"\nmax_retry_wait = \"2s\"\nretries = 1\ntimeout = \"30s\"\n"
    );
    let params: ConnectorParams = toml::from_str(&text).unwrap();
    MediaWiki::with_env(params.mediawiki.as_ref().unwrap(), Path::new("/"), env).unwrap()
}

fn apply(mut known: HashMap<String, String>, changes: &[Change]) -> HashMap<String, String> {
    for change in changes {
        if let Change::Delete { external_id } = change {
            known.remove(external_id);
        }
    }
    known.extend(fingerprints(changes));
    known
}

/// The id of the upserted page titled `title`.
fn id_titled(changes: &[Change], title: &str) -> String {
    upserts(changes)
        .values()
        .find(|d| d.title == title)
        .unwrap_or_else(|| panic!("no upsert titled {title}: {changes:#?}"))
        .external_id
        .clone()
}

const HANDBOOK: &str = "Velkommen til '''håndbogen'''.
== Ferie ==
Du har seks ugers ferie.
== Sygdom ==
Ring til din leder før kl. 9.
== Pension ==
Se lønsedlen.
== Kontakt ==
HR på lokal 1234.
[[Kategori:Personale]] [[Kategori:Nye medarbejdere]]";

#[tokio::test]
async fn a_real_mediawiki_edits_deletions_moves_and_restorations() {
    let wiki = RealWiki::start(false);
    wiki.edit("Medarbejderhåndbog", HANDBOOK);
    wiki.edit("Kantine", "Kantinen har åbent 11–13. [[Kategori:Kantine]]");
    wiki.edit("Hjælp:IT", "Ring til IT på 1000.");
    wiki.edit("Bruger:Admin", "Min side.");
    wiki.edit("Håndbog", "#REDIRECT [[Medarbejderhåndbog]]");
    let mw = connector(
        &wiki.api(),
        "namespaces = [0, 12]\naccess = [\"group:alle\"]\nnamespace_access = { 12 = [\"group:it\"] }",
    );
    let notes = samle_connectors::Connector::check(&mw).await.unwrap();
    assert!(notes[0].contains("MediaWiki 1.39"), "{notes:?}");

    let (result, first) = run_with(&mw, HashMap::new(), None, false).await;
    result.unwrap();
    assert_eq!(first.last(), Some(&Change::TraversalComplete));
    let docs = upserts(&first);
    let mut titles: Vec<&str> = docs.values().map(|d| d.title.as_str()).collect();
    titles.sort();
    // The installer's main page is "Forside" in a Danish wiki; no redirect, no user page.
    assert_eq!(
        titles,
        ["Forside", "Hjælp:IT", "Kantine", "Medarbejderhåndbog"]
    );
    let handbook = &docs[&id_titled(&first, "Medarbejderhåndbog")];
    assert_eq!(
        handbook.body,
        "Velkommen til håndbogen.\n\nFerie\n\nDu har seks ugers ferie.\n\nSygdom\n\n\
         Ring til din leder før kl. 9.\n\nPension\n\nSe lønsedlen.\n\nKontakt\n\nHR på lokal 1234."
    );
    assert_eq!(handbook.tags, ["Personale", "Nye medarbejdere"]);
    assert_eq!(
        handbook.url.as_deref(),
        Some(wiki.page_url("Medarbejderh%C3%A5ndbog").as_str())
    );
    assert_eq!(handbook.author.as_deref(), Some("Admin"));
    assert_eq!(handbook.language.as_deref(), Some("da"));
    assert!(handbook.updated.is_some());
    let help_id = id_titled(&first, "Hjælp:IT");
    assert_eq!(docs[&help_id].acl, ["group:it"]);
    let front_id = id_titled(&first, "Forside");
    let canteen_id = id_titled(&first, "Kantine");
    let known = apply(HashMap::new(), &first);

    // Nothing changed: nothing is rendered again.
    let (result, second) = run_with(&mw, known.clone(), Some(&last_cursor(&first)), false).await;
    result.unwrap();
    assert!(ids(&second, is_upsert).is_empty(), "{second:#?}");
    assert!(!second.contains(&Change::TraversalComplete));

    wiki.edit(
        "Kantine",
        "Kantinen holder lukket i uge 42. [[Kategori:Kantine]]",
    );
    wiki.edit("Nyt projekt", "Projektet om æbler.");
    wiki.delete("Forside");
    wiki.move_page("Hjælp:IT", "Hjælp:Computere");
    let (result, third) = run_with(&mw, known.clone(), Some(&last_cursor(&second)), false).await;
    result.unwrap();
    let docs = upserts(&third);
    assert_eq!(docs[&canteen_id].body, "Kantinen holder lukket i uge 42.");
    let moved = &docs[&help_id];
    assert_eq!(moved.title, "Hjælp:Computere", "a move keeps the page id");
    assert_eq!(
        moved.url.as_deref(),
        Some(wiki.page_url("Hj%C3%A6lp:Computere").as_str())
    );
    assert!(
        docs.values().any(|d| d.title == "Nyt projekt"),
        "{third:#?}"
    );
    let deleted = ids(&third, |c| matches!(c, Change::Delete { .. }));
    assert_eq!(deleted, std::slice::from_ref(&front_id));
    let known = apply(known, &third);

    wiki.undelete("Forside");
    let (result, fourth) = run_with(&mw, known.clone(), Some(&last_cursor(&third)), false).await;
    result.unwrap();
    let restored = &upserts(&fourth)[&front_id];
    assert_eq!(restored.title, "Forside", "restored under its old page id");
    let known = apply(known, &fourth);

    // A traversal now lists exactly what the incremental runs arrived at.
    let (result, fifth) = run_with(&mw, known.clone(), None, false).await;
    result.unwrap();
    assert!(ids(&fifth, is_upsert).is_empty(), "{fifth:#?}");
    let mut listed = ids(&fifth, crate::common::is_unchanged);
    let mut indexed: Vec<String> = known.keys().cloned().collect();
    listed.sort();
    indexed.sort();
    assert_eq!(listed, indexed);
}

#[tokio::test]
async fn a_real_private_mediawiki_with_a_bot_password() {
    let wiki = RealWiki::start(true);
    wiki.edit("Medarbejderhåndbog", HANDBOOK);
    wiki.create_bot_password();

    let anonymous = connector(&wiki.api(), "access = [\"group:alle\"]");
    let (result, changes) = run_with(&anonymous, HashMap::new(), None, false).await;
    let err = result.unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("readapidenied"), "{err}");
    assert!(changes.is_empty());

    let wrong = connector(
        &wiki.api(),
        &format!(
            "access = [\"group:alle\"]\nbot_user = \"{BOT_USER}\"\nbot_password_env = \"SAMLE_WIKI_WRONG_PASSWORD\""
        ),
    );
    let err = run_with(&wrong, HashMap::new(), None, false)
        .await
        .0
        .unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("failed: Failed"), "{err}");

    let bot = connector(
        &wiki.api(),
        &format!(
            "access = [\"group:alle\"]\nbot_user = \"{BOT_USER}\"\nbot_password_env = \"SAMLE_WIKI_BOT_PASSWORD\""
        ),
    );
    let (result, first) = run_with(&bot, HashMap::new(), None, false).await;
    result.unwrap();
    let handbook = &upserts(&first)[&id_titled(&first, "Medarbejderhåndbog")];
    assert!(
        handbook.body.starts_with("Velkommen til håndbogen."),
        "{:?}",
        handbook.body
    );

    wiki.edit("Medarbejderhåndbog", "Ny udgave af håndbogen.");
    let (result, second) = run_with(
        &bot,
        fingerprints(&first),
        Some(&last_cursor(&first)),
        false,
    )
    .await;
    result.unwrap();
    assert_eq!(
        upserts(&second)[&handbook.external_id].body,
        "Ny udgave af håndbogen."
    );
}
