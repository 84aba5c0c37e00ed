//! Browser-level tests: a real headless Chromium, driven over WebDriver by Debian's
//! `chromedriver`, against a real `samle serve` with the bundled demo content. They check that
//! the portal works with the keyboard alone and that every page passes basic accessibility
//! checks (names, headings, landmarks, contrast, no scripts, no sideways scrolling on a phone),
//! in Danish and in English.
//!
//! The WebDriver client is `fantoccini`, connecting over plain HTTP (`hyper-util`'s
//! `HttpConnector`) to chromedriver on loopback.

// Test helpers may unwrap: a failure is a test failure (clippy.toml allows it only inside
// `#[test]` functions themselves).
#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::Deref;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, Portal, demo_config};
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::error::NewSessionError;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

const TAB: Key = Key::Tab;
const ENTER: Key = Key::Enter;

/// How long to wait for chromedriver to start, or for a navigation to land.
const PATIENCE: Duration = Duration::from_secs(30);

// ---- the harness ----------------------------------------------------------------------------

/// A running `chromedriver`; stopped when dropped.
struct Driver {
    child: Child,
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

/// One WebDriver session in a headless Chromium. Dropping it ends the session (which closes
/// the browser) and then stops chromedriver, even when a test panics half-way.
///
/// fantoccini's session runs as a task on the test's runtime, so the tests use the
/// multi-threaded runtime: `Drop` blocks its own thread while a worker ends the session.
struct Browser {
    client: Client,
    /// Held for its `Drop`, which runs after the session has ended.
    _driver: Driver,
}

impl Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Blocking on purpose: Drop cannot await, and the browser must be gone before its
        // profile directory is removed.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let close = self.client.clone().close();
        tokio::task::block_in_place(|| {
            let _ = runtime.block_on(tokio::time::timeout(Duration::from_secs(20), close));
        });
    }
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
            profile: tempfile::tempdir().unwrap(),
        };

        let profile = driver.profile.path().to_str().unwrap().to_string();
        let Value::Object(capabilities) = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                // Headless Chromium ignores `--lang` for `Accept-Language`; the preference
                // sets it, so the portal's language negotiation is exercised.
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
        }) else {
            unreachable!("a JSON object literal")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let base = format!("http://127.0.0.1:{port}");

        // Until chromedriver listens, connecting fails; any other failure is final.
        let deadline = Instant::now() + PATIENCE;
        let client = loop {
            match builder.connect(&base).await {
                Ok(client) => break client,
                Err(NewSessionError::FailedC(e)) => {
                    assert!(
                        Instant::now() < deadline,
                        "chromedriver did not become ready on port {port}: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver refused the session: {e}"),
            }
        };
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Every element matching a CSS selector.
    async fn all(&self, css: &str) -> Vec<Element> {
        self.find_all(Locator::Css(css)).await.unwrap()
    }

    /// The first element matching a CSS selector; it must be there.
    async fn first(&self, css: &str) -> Element {
        let mut found = self.all(css).await;
        assert!(
            !found.is_empty(),
            "no `{css}` on {}",
            self.current_url().await.unwrap()
        );
        found.swap_remove(0)
    }

    /// Presses keys on the keyboard, whatever has the focus, as a person would.
    async fn press(&self, keys: &str) {
        let mut keyboard = KeyActions::new("keyboard".to_string());
        for value in keys.chars() {
            keyboard = keyboard
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.perform_actions(keyboard).await.unwrap();
        self.release_actions().await.unwrap();
    }

    async fn is_active(&self, e: &Element) -> bool {
        self.execute(
            "return document.activeElement === arguments[0];",
            vec![serde_json::to_value(e).unwrap()],
        )
        .await
        .unwrap()
            == true
    }

    /// Describes the focused element, for assertion messages.
    async fn focus_description(&self) -> String {
        let v = self
            .execute(
                "const a = document.activeElement; return a ? a.outerHTML : 'nothing';",
                vec![],
            )
            .await
            .unwrap();
        prefix(v.as_str().unwrap_or_default())
    }

    /// Waits until the page at a URL matching `wanted` has loaded (after a form submit or a
    /// followed link, which WebDriver does not wait for by itself).
    async fn wait_for_page(&self, what: &str, wanted: impl Fn(&url::Url) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(u) = self.current_url().await
                && wanted(&u)
                && self
                    .execute("return document.readyState;", vec![])
                    .await
                    .is_ok_and(|s| s == "complete")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never reached {what}; the browser is at {}",
                self.current_url().await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `lang` of the page's root element.
    async fn page_lang(&self) -> String {
        let v = self
            .execute("return document.documentElement.lang;", vec![])
            .await
            .unwrap();
        v.as_str().unwrap_or_default().to_string()
    }
}

/// The start of an element's markup, enough to recognise it in a failure message.
async fn outer_html(e: &Element) -> String {
    prefix(&e.html(false).await.unwrap())
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
    b.press(&TAB).await;
    let focused = b.active_element().await.unwrap();
    let class = focused.attr("class").await.unwrap().unwrap_or_default();
    assert!(
        class.split_whitespace().any(|c| c == "skip"),
        "on {page}, the first Tab stop is {}, not the skip link `a.skip`",
        b.focus_description().await
    );
    let href = focused.attr("href").await.unwrap().unwrap_or_default();
    assert_eq!(href, "#main", "on {page}, the skip link points elsewhere");
    b.press(&ENTER).await;
    let main = b.first("main").await;
    assert!(
        b.is_active(&main).await,
        "on {page}, Enter on the skip link left the focus on {}, not on `main`",
        b.focus_description().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keyboard_only_login_and_search() {
    let (portal, _data) = portal().await;
    let b = Browser::start().await;

    // The login page puts the focus in the user name field by itself.
    b.goto(&portal.url("/login")).await.unwrap();
    let focused = b.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("username"),
        "the login page should focus the user name field, not {}",
        b.focus_description().await
    );

    // User name, Tab, password, Enter: logged in, on the front page.
    b.press(&format!("mette{TAB}")).await;
    let focused = b.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("password"),
        "Tab from the user name should reach the password, not {}",
        b.focus_description().await
    );
    b.press(&format!("{PASSWORD}{ENTER}")).await;
    b.wait_for_page("the front page after logging in", |u| u.path() == "/")
        .await;

    // The front page puts the focus in the search box; typing and Enter searches.
    let focused = b.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("q"),
        "the front page should focus the search box, not {}",
        b.focus_description().await
    );
    b.press(&format!("sygefravær{ENTER}")).await;
    b.wait_for_page("the results for sygefravær", |u| {
        u.path() == "/search" && u.query_pairs().any(|(k, v)| k == "q" && v == "sygefravær")
    })
    .await;

    let hits = b.all("ol.hits li.hit").await;
    assert!(!hits.is_empty(), "sygefravær found nothing for mette");
    let links = b.all("ol.hits li.hit .hit-title a[href]").await;
    assert_eq!(
        links.len(),
        hits.len(),
        "every hit's title should be a link"
    );
    for link in &links {
        let href = link.attr("href").await.unwrap().unwrap_or_default();
        let title = link.text().await.unwrap();
        assert!(
            !href.is_empty() && href != "#" && !title.trim().is_empty(),
            "a hit's title links nowhere: {}",
            outer_html(link).await
        );
    }

    // A freshly loaded page: the first Tab stop is the skip link, and it moves the focus to
    // the main content.
    check_skip_link(&b, "the results page").await;

    // From the main content, Tab on to the first hit and follow it with Enter.
    let first = links[0].clone();
    let target = first.prop("href").await.unwrap().unwrap();
    let mut tabs = 0;
    while !b.is_active(&first).await {
        tabs += 1;
        assert!(
            tabs <= 40,
            "40 Tabs from the main content never reached the first hit {}",
            outer_html(&first).await
        );
        b.press(&TAB).await;
    }
    b.press(&ENTER).await;
    b.wait_for_page("the first hit's document", |u| u.as_str() == target)
        .await;

    let h1 = b.all("h1").await;
    assert_eq!(h1.len(), 1, "the document page should have one h1");
    assert!(
        !h1[0].text().await.unwrap().trim().is_empty(),
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
    let found = b.execute(CHECKS, vec![]).await.unwrap();
    for f in found.as_array().expect("the checks return a list") {
        failures.push(format!(
            "{}: {}",
            f["rule"].as_str().unwrap_or_default(),
            f["html"].as_str().unwrap_or_default()
        ));
    }

    // At a phone's width, nothing scrolls sideways.
    b.set_window_size(360, 740).await.unwrap();
    let m = b.execute(OVERFLOW, vec![]).await.unwrap();
    b.set_window_size(1280, 900).await.unwrap();
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
        .first("header form[action='/lang'] button[type=submit]")
        .await;
    button.click().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(v) = b
            .execute(
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
                b.current_url().await.unwrap(),
                b.page_lang().await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
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
    b.goto(&portal.url("/login")).await.unwrap();
    record("/login (da)", audit(&b, "da").await);
    switch_language(&b, "en").await;
    record("/login (en)", audit(&b, "en").await);

    // Logged in as lars.
    b.first("#username").await.send_keys("lars").await.unwrap();
    b.first("#password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    b.first("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_page("the front page after logging in", |u| u.path() == "/")
        .await;

    // A document to look at: the first hit for "ferie".
    b.goto(&portal.url("/search?q=ferie")).await.unwrap();
    let first = b.first("ol.hits li.hit .hit-title a[href]").await;
    let doc = first.prop("href").await.unwrap().unwrap();
    assert!(
        doc.starts_with(&portal.url("/doc/")),
        "the first hit for ferie is not a document page of Samle: {doc}"
    );
    let missing = portal.url("/findes-ikke/her");

    let pages = [
        ("/", portal.url("/")),
        ("/search?q=ferie", portal.url("/search?q=ferie")),
        // The staff directory's person cards among the results.
        (
            "a search with a person card",
            portal.url("/search?q=parkeringstilladelser+borgerservice"),
        ),
        ("a document page", doc.clone()),
        ("a 404 page", missing.clone()),
    ];
    for lang in ["en", "da"] {
        if lang == "da" {
            b.goto(&portal.url("/")).await.unwrap();
            switch_language(&b, "da").await;
        }
        for (name, url) in &pages {
            b.goto(url).await.unwrap();
            if url == &missing {
                let h1 = b.first("h1").await;
                let heading = h1.text().await.unwrap();
                assert!(
                    heading.contains("404"),
                    "{url} did not show the 404 page: {heading}"
                );
            }
            record(&format!("{name} as lars ({lang})"), audit(&b, lang).await);
        }
    }

    // Logged in as anna (admin): the sources page and a source's page. The language is
    // Danish now (switched above); the header's logout button ends lars's session.
    b.first("header form[action='/logout'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_page("the login page after logging out", |u| u.path() == "/login")
        .await;
    b.first("#username").await.send_keys("anna").await.unwrap();
    b.first("#password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    b.first("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_page("the front page after logging in as anna", |u| {
        u.path() == "/"
    })
    .await;
    let admin_pages = [
        ("/admin/sources", portal.url("/admin/sources")),
        ("a source's page", portal.url("/admin/sources/it-hjaelp")),
    ];
    for lang in ["da", "en"] {
        if lang == "en" {
            switch_language(&b, "en").await;
        }
        for (name, url) in &admin_pages {
            b.goto(url).await.unwrap();
            let rows = b.all("table.data tbody tr").await;
            assert!(!rows.is_empty(), "{name}: no table rows");
            record(&format!("{name} as anna ({lang})"), audit(&b, lang).await);
        }
    }

    assert!(report.is_empty(), "accessibility failures:\n{report}");
}

/// The checks themselves find what they look for, so a page passing them means something.
#[tokio::test(flavor = "multi_thread")]
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
    b.goto(&url).await.unwrap();
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
