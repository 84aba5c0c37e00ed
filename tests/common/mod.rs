//! The test harness: runs the real `samle` binary, and starts a real `samle serve` on a free
//! loopback port with its own data directory, then stops it when the test ends.

// Each test binary uses part of the harness; test helpers panic on purpose.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "samle-demo";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn demo_config() -> PathBuf {
    repo().join("config/samle.toml")
}

/// Runs `samle ARGS` to the end.
pub fn samle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_samle"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run samle")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running `samle serve`.
pub struct Portal {
    child: Child,
    pub base: String,
}

impl Portal {
    /// Syncs the configuration's sources into `data_dir`, then serves it.
    pub fn start(config: &Path, data_dir: &Path) -> Portal {
        let c = config.to_str().unwrap();
        let d = data_dir.to_str().unwrap();
        let out = samle(&["--config", c, "--data-dir", d, "sync"]);
        assert!(out.status.success(), "sync failed: {}", text(&out));
        Portal::serve(config, data_dir)
    }

    /// Serves without syncing first.
    pub fn serve(config: &Path, data_dir: &Path) -> Portal {
        install_tls();
        let mut child = Command::new(env!("CARGO_BIN_EXE_samle"))
            .args(["--config", config.to_str().unwrap()])
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("SAMLE_LOG", "warn")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start samle serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            assert!(Instant::now() < deadline, "samle serve did not start");
            let line = lines
                .next()
                .expect("samle serve exited before it printed its address")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("Samle is running at ") {
                break rest.trim().trim_end_matches('/').to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Portal { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        install_tls();
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Fetches a page's body as text.
    pub async fn text(&self, client: &reqwest::Client, path: &str) -> String {
        client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Posts a form.
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client.post(self.url(path)).form(form).send().await.unwrap()
    }

    /// Fetches a page and returns the CSRF token in its forms.
    pub async fn csrf(&self, client: &reqwest::Client, path: &str) -> String {
        let html = self.text(client, path).await;
        csrf_in(&html).unwrap_or_else(|| panic!("no csrf token on {path}: {html}"))
    }

    /// Posts the login form; returns the response.
    pub async fn post_login(
        &self,
        client: &reqwest::Client,
        user: &str,
        password: &str,
    ) -> reqwest::Response {
        let token = self.csrf(client, "/login").await;
        client
            .post(self.url("/login"))
            .form(&[("username", user), ("password", password), ("csrf", &token)])
            .send()
            .await
            .unwrap()
    }

    /// A client logged in as `user`.
    pub async fn login(&self, user: &str) -> reqwest::Client {
        let client = self.client();
        let r = self.post_login(&client, user, PASSWORD).await;
        assert_eq!(r.status(), 303, "login as {user} failed");
        client
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn csrf_in(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Writes a configuration with one file-share source over `root`.
pub fn file_share_config(dir: &Path, root: &Path, extra: &str) -> PathBuf {
    let config = dir.join("samle.toml");
    let directory = repo().join("config/demo/directory.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[directory]
kind = "demo"
file = "{}"

[index]
commit_interval = "5s"

[[sources]]
id = "share"
name = "Fællesdrev"
kind = "file-share"
schedule = "manual"
{extra}

[sources.file-share]
root = "{}"
default_access = ["group:alle-medarbejdere"]
"#,
            directory.display(),
            root.display()
        ),
    )
    .unwrap();
    config
}
pub mod slapd;

/// A client that keeps no cookies and follows no redirects. Tests of session expiry hand it
/// the session cookie themselves: a cookie jar would drop a cookie whose `Max-Age` has run
/// out, and then only the client, not the server, would have ended the session.
pub fn raw_client() -> reqwest::Client {
    install_tls();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value a response's `Set-Cookie` gives the cookie `name`, if it sets it.
pub fn set_cookie_value(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|l| l.starts_with(&format!("{name}=")))
        .map(|l| {
            l[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or("")
                .to_string()
        })
}

impl Portal {
    /// Logs in through the form with a client that keeps no cookies. Returns the session
    /// cookie the login page handed out before the login and the one the login set.
    pub async fn login_cookies(&self, user: &str, password: &str) -> (String, String) {
        let raw = raw_client();
        let r = raw.get(self.url("/login")).send().await.unwrap();
        let before = set_cookie_value(&r, "samle_session").expect("the login page sets a session");
        let html = r.text().await.unwrap();
        let token = csrf_in(&html).expect("a csrf token on the login page");
        let r = raw
            .post(self.url("/login"))
            .header("cookie", format!("samle_session={before}"))
            .form(&[("username", user), ("password", password), ("csrf", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "login as {user} failed");
        let after = set_cookie_value(&r, "samle_session").expect("the login sets a session cookie");
        (before, after)
    }
}

/// reqwest is built with rustls and no crypto provider of its own (the binary uses ring
/// everywhere): a test process must install ring before it builds a client, as
/// `samle` does at start-up.
pub fn install_tls() {
    // Fails only when a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
