//! Browser-level tests: a real headless Chromium, driven over WebDriver by Debian's
//! `chromedriver`, against a real `samle serve` with the bundled demo content. They check that
//! the portal works with the keyboard alone and that every page passes basic accessibility
//! checks (names, headings, landmarks, contrast, no scripts, no sideways scrolling on a phone),
//! in Danish and in English.
//!
//! The WebDriver client is the small one below, speaking the W3C WebDriver protocol (JSON over
//! HTTP) through `reqwest`. fantoccini with `default-features = false` has neither
//! `ClientBuilder::native` nor `rustls`, and its `ClientBuilder::new` wants a `hyper-util`
//! connector, which this package does not depend on; plain HTTP on loopback is all we need.

// Test helpers may unwrap: a failure is a test failure (clippy.toml allows it only inside
// `#[test]` functions themselves).
#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, Portal, demo_config};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The WebDriver identifier of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// WebDriver key codes (W3C WebDriver, "Keyboard actions").
const TAB: char = '\u{E004}';
const ENTER: char = '\u{E007}';

/// How long to wait for chromedriver to start, or for a navigation to land.
const PATIENCE: Duration = Duration::from_secs(30);

// ---- the harness ----------------------------------------------------------------------------

/// A running `chromedriver`; stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
    /// Chromium's profile; removed after chromedriver (and so the browser) is gone.
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// An element found in the current page.
#[derive(Clone, Debug)]
struct Element(String);

impl Element {
    fn json(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

/// One WebDriver session in a headless Chromium. Dropping it ends the session (which closes
/// the browser) and then stops chromedriver, even when a test panics half-way.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    session_id: String,
    driver: Driver,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Blocking on purpose: Drop cannot await, and the browser must be gone before its
        // profile directory is removed.
        delete_session_blocking(self.driver.port, &self.session_id);
    }
}

fn delete_session_blocking(port: u16, session_id: &str) {
    use std::io::{Read as _, Write as _};
    let addr = (Ipv4Addr::LOCALHOST, port).into();
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = write!(
        stream,
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session.
    async fn start() -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing: run scripts/test, which installs \
             chromium and chromium-driver"
        );
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            port,
            profile: tempfile::tempdir().unwrap(),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");

        let deadline = Instant::now() + PATIENCE;
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let profile = driver.profile.path().to_str().unwrap().to_string();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    // Headless Chromium ignores `--lang` for `Accept-Language`; the
                    // preference sets it, so the portal's language negotiation is exercised.
                    "prefs": { "intl.accept_languages": "da-DK,da" },
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-quic",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--disable-dev-shm-usage",
                        "--window-size=1280,900",
                        "--lang=da-DK",
                        format!("--user-data-dir={profile}"),
                    ],
                },
            }},
        });
        let r = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("ask chromedriver for a session");
        let status = r.status();
        let body: Value = r.json().await.expect("session answer");
        assert!(
            status.is_success(),
            "chromedriver refused the session ({status}): {body}"
        );
        let session_id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {body}"))
            .to_string();
        Browser {
            http,
            session: format!("{base}/session/{session_id}"),
            session_id,
            driver,
        }
    }

    /// Sends one WebDriver command; returns its `value`, or the driver's error.
    async fn try_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = r.status();
        let mut answer: Value = r
            .json()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let value = answer["value"].take();
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!(
                "{method} {path}: {status} {}: {}",
                value["error"], value["message"]
            ))
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("webdriver: {e}"))
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn current_url(&self) -> url::Url {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        url::Url::parse(v.as_str().unwrap()).unwrap()
    }

    /// Runs a function body in the page; `arguments` holds `args`.
    async fn try_execute(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.try_cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.try_execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("webdriver: {e}"))
    }

    async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        element_list(&v)
    }

    async fn find(&self, css: &str) -> Element {
        let mut found = self.find_all(css).await;
        assert!(
            !found.is_empty(),
            "no `{css}` on {}",
            self.current_url().await
        );
        found.swap_remove(0)
    }

    async fn active_element(&self) -> Element {
        let v = self
            .cmd(reqwest::Method::GET, "/element/active", None)
            .await;
        element(&v)
    }

    async fn attr(&self, e: &Element, name: &str) -> Option<String> {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/attribute/{name}", e.0),
                None,
            )
            .await;
        v.as_str().map(str::to_string)
    }

    /// A DOM property, e.g. `href` (absolute) rather than the `href` attribute.
    async fn prop(&self, e: &Element, name: &str) -> Option<String> {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/property/{name}", e.0),
                None,
            )
            .await;
        v.as_str().map(str::to_string)
    }

    async fn text(&self, e: &Element) -> String {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/text", e.0),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn outer_html(&self, e: &Element) -> String {
        let v = self
            .execute("return arguments[0].outerHTML;", vec![e.json()])
            .await;
        prefix(v.as_str().unwrap_or_default())
    }

    /// Types into one element (WebDriver "Element Send Keys": focuses it first).
    async fn send_keys(&self, e: &Element, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, e: &Element) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// Presses keys on the keyboard, whatever has the focus, as a person would.
    async fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for c in keys.chars() {
            actions.push(json!({ "type": "keyDown", "value": c.to_string() }));
            actions.push(json!({ "type": "keyUp", "value": c.to_string() }));
        }
        self.cmd(
            reqwest::Method::POST,
            "/actions",
            Some(json!({ "actions": [
                { "type": "key", "id": "keyboard", "actions": actions }
            ]})),
        )
        .await;
        self.cmd(reqwest::Method::DELETE, "/actions", None).await;
    }

    async fn set_window_size(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    async fn is_active(&self, e: &Element) -> bool {
        self.execute(
            "return document.activeElement === arguments[0];",
            vec![e.json()],
        )
        .await
            == true
    }

    /// Describes the focused element, for assertion messages.
    async fn focus_description(&self) -> String {
        let v = self
            .execute(
                "const a = document.activeElement; return a ? a.outerHTML : 'nothing';",
                vec![],
            )
            .await;
        prefix(v.as_str().unwrap_or_default())
    }

    /// Waits until the page at a URL matching `wanted` has loaded (after a form submit or a
    /// followed link, which WebDriver does not wait for by itself).
    async fn wait_for_page(&self, what: &str, wanted: impl Fn(&url::Url) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Value::String(u)) = self.try_cmd(reqwest::Method::GET, "/url", None).await
                && url::Url::parse(&u).is_ok_and(|u| wanted(&u))
                && self
                    .try_execute("return document.readyState;", vec![])
                    .await
                    .is_ok_and(|s| s == "complete")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never reached {what}; the browser is at {}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `lang` of the page's root element.
    async fn page_lang(&self) -> String {
        let v = self
            .execute("return document.documentElement.lang;", vec![])
            .await;
        v.as_str().unwrap_or_default().to_string()
    }
}

fn element(v: &Value) -> Element {
    Element(
        v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element: {v}"))
            .to_string(),
    )
}

fn element_list(v: &Value) -> Vec<Element> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list of elements: {v}"))
        .iter()
        .map(element)
        .collect()
}

/// The start of some markup, enough to recognise an element in a failure message.
fn prefix(html: &str) -> String {
    const MAX: usize = 160;
    match html.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &html[..i]),
        None => html.to_string(),
    }
}

async fn portal() -> (Portal, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let portal = Portal::start(&demo_config(), data.path());
    (portal, data)
}

// ---- keyboard only --------------------------------------------------------------------------

/// On a freshly loaded page, the first Tab reaches the skip link, and Enter on it moves the
/// focus to `main`.
async fn check_skip_link(b: &Browser, page: &str) {
    b.press(&TAB.to_string()).await;
    let focused = b.active_element().await;
    let class = b.attr(&focused, "class").await.unwrap_or_default();
    assert!(
        class.split_whitespace().any(|c| c == "skip"),
        "on {page}, the first Tab stop is {}, not the skip link `a.skip`",
        b.focus_description().await
    );
    let href = b.attr(&focused, "href").await.unwrap_or_default();
    assert_eq!(href, "#main", "on {page}, the skip link points elsewhere");
    b.press(&ENTER.to_string()).await;
    let main = b.find("main").await;
    assert!(
        b.is_active(&main).await,
        "on {page}, Enter on the skip link left the focus on {}, not on `main`",
        b.focus_description().await
    );
}

#[tokio::test]
async fn keyboard_only_login_and_search() {
    let (portal, _data) = portal().await;
    let b = Browser::start().await;

    // The login page puts the focus in the user name field by itself.
    b.goto(&portal.url("/login")).await;
    let focused = b.active_element().await;
    assert_eq!(
        b.attr(&focused, "id").await.as_deref(),
        Some("username"),
        "the login page should focus the user name field, not {}",
        b.focus_description().await
    );

    // User name, Tab, password, Enter: logged in, on the front page.
    b.press(&format!("mette{TAB}")).await;
    let focused = b.active_element().await;
    assert_eq!(
        b.attr(&focused, "id").await.as_deref(),
        Some("password"),
        "Tab from the user name should reach the password, not {}",
        b.focus_description().await
    );
    b.press(&format!("{PASSWORD}{ENTER}")).await;
    b.wait_for_page("the front page after logging in", |u| u.path() == "/")
        .await;

    // The front page puts the focus in the search box; typing and Enter searches.
    let focused = b.active_element().await;
    assert_eq!(
        b.attr(&focused, "id").await.as_deref(),
        Some("q"),
        "the front page should focus the search box, not {}",
        b.focus_description().await
    );
    b.press(&format!("sygefravær{ENTER}")).await;
    b.wait_for_page("the results for sygefravær", |u| {
        u.path() == "/search" && u.query_pairs().any(|(k, v)| k == "q" && v == "sygefravær")
    })
    .await;

    let hits = b.find_all("ol.hits li.hit").await;
    assert!(!hits.is_empty(), "sygefravær found nothing for mette");
    let links = b.find_all("ol.hits li.hit .hit-title a[href]").await;
    assert_eq!(
        links.len(),
        hits.len(),
        "every hit's title should be a link"
    );
    for link in &links {
        let href = b.attr(link, "href").await.unwrap_or_default();
        let title = b.text(link).await;
        assert!(
            !href.is_empty() && href != "#" && !title.trim().is_empty(),
            "a hit's title links nowhere: {}",
            b.outer_html(link).await
        );
    }

    // A freshly loaded page: the first Tab stop is the skip link, and it moves the focus to
    // the main content.
    check_skip_link(&b, "the results page").await;

    // From the main content, Tab on to the first hit and follow it with Enter.
    let first = links[0].clone();
    let target = b.prop(&first, "href").await.unwrap();
    let mut tabs = 0;
    while !b.is_active(&first).await {
        tabs += 1;
        assert!(
            tabs <= 40,
            "40 Tabs from the main content never reached the first hit {}",
            b.outer_html(&first).await
        );
        b.press(&TAB.to_string()).await;
    }
    b.press(&ENTER.to_string()).await;
    b.wait_for_page("the first hit's document", |u| u.as_str() == target)
        .await;

    let h1 = b.find_all("h1").await;
    assert_eq!(h1.len(), 1, "the document page should have one h1");
    assert!(
        !b.text(&h1[0]).await.trim().is_empty(),
        "the document page's h1 is empty"
    );
    check_skip_link(&b, "the document page").await;
}

// ---- accessibility --------------------------------------------------------------------------

/// Checks the current page in the browser. Returns `[{rule, html}]`, one per failure.
const CHECKS: &str = r#"
const out = [];
const add = (rule, el) => out.push({ rule, html: el ? el.outerHTML.slice(0, 160) : '' });
const visible = el => {
  const s = getComputedStyle(el);
  return el.getClientRects().length > 0 && s.visibility !== 'hidden' && s.display !== 'none';
};
const text = el => (el ? el.textContent || '' : '').trim();

// One h1.
const h1s = document.querySelectorAll('h1');
if (h1s.length !== 1) add(`exactly one h1 (found ${h1s.length})`, h1s[1] || null);

// Landmarks.
for (const [tag, role] of [['header', 'banner'], ['nav', 'navigation'], ['main', 'main'],
                           ['footer', 'contentinfo']]) {
  if (!document.querySelector(`${tag}, [role=${role}]`)) add(`landmark <${tag}> missing`, null);
}
const mains = document.querySelectorAll('main, [role=main]');
if (mains.length > 1) add(`more than one main (${mains.length})`, mains[1]);

// Every visible form field has an accessible name.
for (const el of document.querySelectorAll('input, select, textarea')) {
  const type = (el.getAttribute('type') || '').toLowerCase();
  if (el.tagName === 'INPUT' && ['hidden', 'submit', 'reset', 'button', 'image'].includes(type)) continue;
  if (!visible(el)) continue;
  let named = false;
  if (el.id) {
    for (const label of document.querySelectorAll('label')) {
      if (label.htmlFor === el.id && text(label)) named = true;
    }
  }
  if (text(el.closest('label'))) named = true;
  if ((el.getAttribute('aria-label') || '').trim()) named = true;
  for (const id of (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)) {
    if (text(document.getElementById(id))) named = true;
  }
  if (!named) add('form field without an accessible name', el);
}

// Images have alternative text.
for (const el of document.querySelectorAll('img:not([alt])')) add('img without alt', el);

// Headings do not skip levels.
let level = 0;
for (const el of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
  const l = Number(el.tagName[1]);
  if (l > level + 1) add(`heading skips a level (h${l} after ${level ? 'h' + level : 'the start'})`, el);
  level = l;
}

// No positive tabindex.
for (const el of document.querySelectorAll('[tabindex]')) {
  if (parseInt(el.getAttribute('tabindex'), 10) > 0) add('positive tabindex', el);
}

// No scripts: the pages must work without JavaScript.
for (const el of document.querySelectorAll('script')) add('script element', el);

// Text contrast (WCAG 2 AA).
const parse = c => {
  const m = /^rgba?\(([^)]*)\)$/.exec((c || '').trim());
  if (!m) return null;
  const p = m[1].split(/[\s,\/]+/).filter(Boolean)
    .map(v => v.endsWith('%') ? parseFloat(v) / 100 : parseFloat(v));
  if (p.length < 3 || p.some(Number.isNaN)) return null;
  return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
};
const over = (top, bottom) => ({
  r: top.r * top.a + bottom.r * (1 - top.a),
  g: top.g * top.a + bottom.g * (1 - top.a),
  b: top.b * top.a + bottom.b * (1 - top.a),
  a: 1,
});
const background = el => {
  const layers = [];
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
    const c = parse(getComputedStyle(n).backgroundColor);
    if (c && c.a > 0) {
      layers.push(c);
      if (c.a >= 1) break;
    }
  }
  let bg = { r: 255, g: 255, b: 255, a: 1 };
  for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
  return bg;
};
const luminance = c => {
  const f = v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
};
const rgb = c => `rgb(${Math.round(c.r)}, ${Math.round(c.g)}, ${Math.round(c.b)})`;
for (const el of [document.body, ...document.body.querySelectorAll('*')]) {
  const ownText = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!ownText || !visible(el)) continue;
  const s = getComputedStyle(el);
  const fg0 = parse(s.color);
  if (!fg0) { add(`cannot read the text colour ${s.color}`, el); continue; }
  const bg = background(el);
  const fg = over(fg0, bg);
  const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const size = parseFloat(s.fontSize);
  const bold = parseInt(s.fontWeight, 10) >= 700;
  const large = size >= 24 || (bold && size >= 18.66);
  const needed = large ? 3 : 4.5;
  if (ratio < needed) {
    add(`text contrast ${ratio.toFixed(2)}:1 < ${needed}:1 (${rgb(fg)} on ${rgb(bg)}, ${size}px)`, el);
  }
}
return out;
"#;

/// Measures sideways overflow; names the innermost elements that stick out on the right.
const OVERFLOW: &str = r#"
const width = window.innerWidth;
const sticksOut = el => el.getBoundingClientRect().right > width + 0.5;
const offenders = [];
for (const el of document.body.querySelectorAll('*')) {
  if (sticksOut(el) && ![...el.children].some(sticksOut)) offenders.push(el.outerHTML.slice(0, 160));
}
return {
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: width,
  offenders: offenders.slice(0, 5),
};
"#;

/// Runs every check on the page the browser shows; returns one line per failure.
async fn audit(b: &Browser, lang: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let actual = b.page_lang().await;
    if actual != lang {
        failures.push(format!("html[lang] is {actual:?}, expected {lang:?}"));
    }
    let found = b.execute(CHECKS, vec![]).await;
    for f in found.as_array().expect("the checks return a list") {
        failures.push(format!(
            "{}: {}",
            f["rule"].as_str().unwrap_or_default(),
            f["html"].as_str().unwrap_or_default()
        ));
    }

    // At a phone's width, nothing scrolls sideways.
    b.set_window_size(360, 740).await;
    let m = b.execute(OVERFLOW, vec![]).await;
    b.set_window_size(1280, 900).await;
    let inner = m["innerWidth"].as_u64().unwrap();
    let scroll = m["scrollWidth"].as_u64().unwrap();
    assert!(
        inner <= 400,
        "the window did not shrink to a phone's width (innerWidth {inner})"
    );
    if scroll > inner {
        failures.push(format!(
            "scrolls sideways at 360 px (scrollWidth {scroll} > innerWidth {inner}); sticking out: {}",
            m["offenders"]
        ));
    }
    failures
}

/// Switches the language with the header's button and waits for the page to come back in it.
async fn switch_language(b: &Browser, to: &str) {
    let button = b
        .find("header form[action='/lang'] button[type=submit]")
        .await;
    b.click(&button).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(v) = b
            .try_execute(
                "return document.readyState === 'complete' ? document.documentElement.lang : '';",
                vec![],
            )
            .await
            && v == to
        {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "the language button did not switch the page to {to:?}; the browser is at {} \
                 in {:?}",
                b.current_url().await,
                b.page_lang().await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn pages_pass_basic_accessibility_checks() {
    let (portal, _data) = portal().await;
    let b = Browser::start().await;
    let mut report = String::new();
    let mut record = |page: &str, failures: Vec<String>| {
        if !failures.is_empty() {
            let _ = writeln!(report, "{page}:");
            for f in failures {
                let _ = writeln!(report, "  - {f}");
            }
        }
    };

    // Logged out: the login page, in Danish (the browser asks for Danish) and in English.
    b.goto(&portal.url("/login")).await;
    record("/login (da)", audit(&b, "da").await);
    switch_language(&b, "en").await;
    record("/login (en)", audit(&b, "en").await);

    // Logged in as lars.
    b.send_keys(&b.find("#username").await, "lars").await;
    b.send_keys(&b.find("#password").await, PASSWORD).await;
    b.click(&b.find("form[action='/login'] button[type=submit]").await)
        .await;
    b.wait_for_page("the front page after logging in", |u| u.path() == "/")
        .await;

    // A document to look at: the first hit for "ferie".
    b.goto(&portal.url("/search?q=ferie")).await;
    let first = b.find("ol.hits li.hit .hit-title a[href]").await;
    let doc = b.prop(&first, "href").await.unwrap();
    assert!(
        doc.starts_with(&portal.url("/doc/")),
        "the first hit for ferie is not a document page of Samle: {doc}"
    );
    let missing = portal.url("/findes-ikke/her");

    let pages = [
        ("/", portal.url("/")),
        ("/search?q=ferie", portal.url("/search?q=ferie")),
        ("a document page", doc.clone()),
        ("a 404 page", missing.clone()),
    ];
    for lang in ["en", "da"] {
        if lang == "da" {
            b.goto(&portal.url("/")).await;
            switch_language(&b, "da").await;
        }
        for (name, url) in &pages {
            b.goto(url).await;
            if url == &missing {
                let h1 = b.find("h1").await;
                let heading = b.text(&h1).await;
                assert!(
                    heading.contains("404"),
                    "{url} did not show the 404 page: {heading}"
                );
            }
            record(&format!("{name} as lars ({lang})"), audit(&b, lang).await);
        }
    }

    assert!(report.is_empty(), "accessibility failures:\n{report}");
}

/// The checks themselves find what they look for, so a page passing them means something.
#[tokio::test]
async fn the_checks_catch_known_defects() {
    use base64::Engine as _;
    let b = Browser::start().await;
    let page = r##"<!doctype html>
<html><head><meta charset="utf-8"><title>defects</title></head><body>
<h1>One</h1><h1>Two</h1><h4>Skipped two levels</h4>
<p style="color:#aaaaaa">faint small text</p>
<p style="color:#888888;font-size:24px">large grey text</p>
<p style="background:#000"><span style="color:#222">dark on black</span></p>
<input type="text" id="nameless"><label>Wrapped <input type="text"></label>
<input type="hidden" name="h"><input type="submit" value="Send">
<img src="data:,"><img src="data:," alt="">
<a href="#x" tabindex="2">jumps the queue</a>
<script></script>
<div style="width:2000px">too wide</div>
</body></html>"##;
    let url = format!(
        "data:text/html;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(page)
    );
    b.goto(&url).await;
    let failures = audit(&b, "da").await;
    let all = failures.join("\n");
    let expected = [
        "html[lang] is \"\"",
        "exactly one h1 (found 2)",
        "landmark <header> missing",
        "landmark <nav> missing",
        "landmark <main> missing",
        "landmark <footer> missing",
        "form field without an accessible name: <input type=\"text\" id=\"nameless\">",
        "img without alt: <img src=\"data:,\">",
        "heading skips a level (h4 after h1)",
        "positive tabindex",
        "script element",
        "scrolls sideways at 360 px",
    ];
    for e in expected {
        assert!(
            all.contains(e),
            "the checks missed `{e}`; they found:\n{all}"
        );
    }
    let contrast: Vec<&String> = failures
        .iter()
        .filter(|f| f.starts_with("text contrast"))
        .collect();
    assert_eq!(
        contrast.len(),
        2,
        "expected the faint small text and the dark-on-black text to fail contrast, and \
         large grey text (3.5:1) to pass; found:\n{all}"
    );
    assert!(contrast.iter().any(|f| f.contains("faint small text")));
    assert!(contrast.iter().any(|f| f.contains("dark on black")));
    // Named fields and hidden/submit inputs are not reported.
    assert_eq!(
        failures
            .iter()
            .filter(|f| f.starts_with("form field without"))
            .count(),
        1,
        "{all}"
    );
}
