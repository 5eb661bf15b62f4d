//! Headless Chromium and Firefox driven over W3C WebDriver, with just the commands the tests use.
//!
//! Each [`Browser`] owns its driver process (chromedriver or geckodriver on a free port) and one
//! session; both end when it is dropped. One driver per browser keeps tests independent and lets
//! them run in parallel (one geckodriver drives one Firefox at a time anyway).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

/// The browsers Shoal supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chromium,
    Firefox,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Chromium, Kind::Firefox];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Chromium => "chromium",
            Kind::Firefox => "firefox",
        }
    }
}

pub struct Browser {
    pub kind: Kind,
    driver: Child,
    base: String,
    session: String,
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Finds a program on PATH or in cargo's bin directory (where `cargo install` puts geckodriver).
fn find_program(name: &str) -> Option<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|p| p.join("bin"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Chromium flags for root, headless, no network but loopback, media allowed to autoplay, and
/// WebRTC on loopback (../shared/toolchain.md explains each).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
    "--window-size=1280,900",
];

impl Browser {
    /// Starts the driver and a fresh headless browser session.
    pub fn launch(kind: Kind) -> Result<Self> {
        let port = crate::free_port();
        let (program, caps) = match kind {
            Kind::Chromium => {
                let driver = env_or("CHROMEDRIVER", "chromedriver");
                let binary = env_or("SHOAL_CHROMIUM", "/usr/bin/chromium");
                let profile = tempfile::tempdir()?.keep();
                let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| s.to_string()).collect();
                args.push(format!("--user-data-dir={}", profile.display()));
                // Extra flags for investigations, e.g. `--js-flags=--perf-basic-prof` so that
                // `perf` can name JIT and wasm frames.
                if let Ok(extra) = std::env::var("SHOAL_CHROMIUM_ARGS") {
                    args.extend(extra.split_whitespace().map(str::to_owned));
                }
                let mut caps = json!({
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": binary, "args": args },
                    "goog:loggingPrefs": { "browser": "ALL" },
                });
                // A trace of these categories (e.g. `devtools.timeline,v8.execute`), read with
                // `performance_log`: where a page's main thread spends its time.
                if let Ok(categories) = std::env::var("SHOAL_CHROMIUM_TRACE") {
                    caps["goog:chromeOptions"]["perfLoggingPrefs"] =
                        json!({ "traceCategories": categories });
                    caps["goog:loggingPrefs"]["performance"] = json!("ALL");
                }
                (driver, caps)
            }
            Kind::Firefox => {
                let driver = std::env::var("GECKODRIVER").ok().unwrap_or_else(|| {
                    find_program("geckodriver")
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "geckodriver".into())
                });
                let binary = env_or("SHOAL_FIREFOX", "/usr/bin/firefox-esr");
                let caps = json!({
                    "browserName": "firefox",
                    "moz:firefoxOptions": {
                        "binary": binary,
                        "args": ["-headless", "--width=1280", "--height=900"],
                        "prefs": {
                            "media.autoplay.default": 0,
                            "media.autoplay.blocking_policy": 0,
                            "media.peerconnection.ice.loopback": true,
                            "media.peerconnection.ice.obfuscate_host_addresses": false,
                            "network.proxy.type": 0,
                            "app.update.enabled": false,
                            "browser.shell.checkDefaultBrowser": false,
                            "datareporting.policy.dataSubmissionEnabled": false,
                            "toolkit.telemetry.enabled": false,
                        }
                    }
                });
                (driver, caps)
            }
        };
        let driver = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {program}: install it with the README's test command (`./shoal test`)"
                )
            })?;
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            kind,
            driver,
            base,
            session: String::new(),
        };
        browser.wait_for_driver()?;
        let answer = browser.post(
            "/session",
            json!({ "capabilities": { "alwaysMatch": caps } }),
        )?;
        browser.session = answer["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id in {answer}"))?
            .to_owned();
        Ok(browser)
    }

    fn wait_for_driver(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = ureq::get(&format!("{}/status", self.base)).call() {
                if let Ok(v) = r.into_json::<Value>() {
                    if v["value"]["ready"].as_bool() == Some(true) {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{} driver did not start", self.kind.name())
    }

    fn post(&self, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let answer = match ureq::post(&url).send_json(body) {
            Ok(r) => r.into_json::<Value>()?,
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                bail!("WebDriver {path} answered {code}: {text}")
            }
            Err(e) => return Err(e).context(format!("WebDriver {path}")),
        };
        Ok(answer["value"].clone())
    }

    fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let answer: Value = ureq::get(&url).call()?.into_json()?;
        Ok(answer["value"].clone())
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) -> Result<()> {
        self.post(&self.session_path("/url"), json!({ "url": url }))?;
        Ok(())
    }

    /// Runs a synchronous script in the page and returns its result.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post(
            &self.session_path("/execute/sync"),
            json!({ "script": script, "args": args }),
        )
    }

    /// Runs a script that calls its last argument (the callback) with a result.
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post(
            &self.session_path("/execute/async"),
            json!({ "script": script, "args": args }),
        )
    }

    /// Waits until an element matching `css` exists and its text contains `needle`; returns the
    /// text. Polls, because the app renders after its wasm loads and its API calls answer.
    pub fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            let text = self.execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(css)],
            )?;
            if let Some(t) = text.as_str() {
                if t.contains(needle) {
                    return Ok(t.to_owned());
                }
                last = t.to_owned();
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: no `{css}` containing {needle:?} after {timeout:?} (last text: {last:?})",
                    self.kind.name()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls a script (a function body) until it returns something truthy and returns that;
    /// on timeout, fails saying what was awaited and the page state `state` reports (a script
    /// too), for this browser and `others`. Waits are bounded; a timeout means broken behaviour.
    pub fn wait_until(
        &self,
        what: &str,
        script: &str,
        timeout: Duration,
        state: &str,
        others: &[&Browser],
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.execute(script, vec![]).unwrap_or(Value::Null);
            if is_truthy(&value) {
                return value;
            }
            if Instant::now() > deadline {
                let states: Vec<String> = std::iter::once(self)
                    .chain(others.iter().copied())
                    .map(|b| {
                        format!(
                            "{}: {}",
                            b.kind.name(),
                            b.execute(state, vec![]).unwrap_or(Value::Null)
                        )
                    })
                    .collect();
                panic!(
                    "{}: timed out after {timeout:?} waiting for {what}; pages: {}",
                    self.kind.name(),
                    states.join("; ")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Fails if the page met any error (see [`Browser::page_errors`]), except entries that
    /// contain `expected` (Chromium logs every HTTP error answer, even one the page handles).
    pub fn assert_no_errors(&self, page: &str, expected: Option<&str>) {
        let mut errors = self.page_errors().unwrap();
        if let Some(expected) = expected {
            errors.retain(|e| !e.contains(expected));
        }
        assert!(
            errors.is_empty(),
            "{} console errors on {page}: {errors:?}",
            self.kind.name()
        );
    }

    /// `window.shoalTorrent.stats()`: the stats of the torrent a Shoal page is playing.
    pub fn torrent_stats(&self) -> Result<Value> {
        self.execute("return window.shoalTorrent.stats();", vec![])
    }

    /// Errors the page met: script errors, failed loads, rejected promises, console.error (the
    /// hook in www/index.html), plus Chromium's own SEVERE console entries.
    pub fn page_errors(&self) -> Result<Vec<String>> {
        let mut errors: Vec<String> = self
            .execute(
                "return window.__shoalErrors || ['error hook missing'];",
                vec![],
            )?
            .as_array()
            .map(|a| a.iter().map(|v| v.to_string()).collect())
            .unwrap_or_default();
        if self.kind == Kind::Chromium {
            let log = self.post(&self.session_path("/se/log"), json!({ "type": "browser" }))?;
            for entry in log.as_array().into_iter().flatten() {
                if entry["level"] == "SEVERE" {
                    errors.push(entry["message"].to_string());
                }
            }
        }
        Ok(errors)
    }

    /// Chromium's performance log since the last call (DevTools events, and trace events when
    /// `SHOAL_CHROMIUM_TRACE` named categories at launch). Each entry's `message` is JSON.
    pub fn performance_log(&self) -> Result<Value> {
        self.post(
            &self.session_path("/se/log"),
            json!({ "type": "performance" }),
        )
    }

    /// Sends a DevTools protocol command to the page (Chromium only), e.g. `Profiler.start`.
    pub fn devtools(&self, command: &str, params: Value) -> Result<Value> {
        self.post(
            &self.session_path("/goog/cdp/execute"),
            json!({ "cmd": command, "params": params }),
        )
    }

    /// Resizes the window (CSS pixels of the viewport are close to this on headless browsers).
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.post(
            &self.session_path("/window/rect"),
            json!({ "width": width, "height": height }),
        )?;
        Ok(())
    }

    /// Saves a PNG screenshot of the viewport.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let data = self.get(&self.session_path("/screenshot"))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().ok_or_else(|| anyhow!("no screenshot data"))?)?;
        std::fs::write(path, png)?;
        Ok(())
    }
}

/// The W3C WebDriver key of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Finds the first element matching `css`; returns its WebDriver reference (the JSON object
    /// commands and scripts take).
    pub fn find_element(&self, css: &str) -> Result<Value> {
        let found = self.post(
            &self.session_path("/element"),
            json!({ "using": "css selector", "value": css }),
        )?;
        if found.get(ELEMENT_KEY).and_then(Value::as_str).is_none() {
            bail!(
                "{}: no element reference for `{css}` in {found}",
                self.kind.name()
            );
        }
        Ok(found)
    }

    /// Waits until an element matching `css` exists (the app renders after its wasm loads).
    pub fn wait_for_element(&self, css: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find_element(css) {
                Ok(found) => return Ok(found),
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context(format!("waited {timeout:?} for `{css}`")))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn element_path(&self, element: &Value, rest: &str) -> Result<String> {
        let id = element[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| anyhow!("not an element reference: {element}"))?;
        Ok(self.session_path(&format!("/element/{id}{rest}")))
    }

    /// Types `text` into the element matching `css` as a user would (key events, `input`
    /// events). For `<input type=file>` the text is a file path, which selects that file.
    pub fn send_keys(&self, css: &str, text: &str) -> Result<()> {
        let element = self.wait_for_element(css, Duration::from_secs(10))?;
        self.post(
            &self.element_path(&element, "/value")?,
            json!({ "text": text }),
        )?;
        Ok(())
    }

    /// Clicks the element matching `css` (scrolled into view first, as WebDriver does).
    pub fn click(&self, css: &str) -> Result<()> {
        let element = self.wait_for_element(css, Duration::from_secs(10))?;
        self.post(&self.element_path(&element, "/click")?, json!({}))?;
        Ok(())
    }

    /// Commands go to the document of the `<iframe>` matching `css` until
    /// [`Browser::switch_to_parent_frame`].
    pub fn switch_to_frame(&self, css: &str) -> Result<()> {
        let frame = self.wait_for_element(css, Duration::from_secs(10))?;
        self.post(&self.session_path("/frame"), json!({ "id": frame }))?;
        Ok(())
    }

    pub fn switch_to_parent_frame(&self) -> Result<()> {
        self.post(&self.session_path("/frame/parent"), json!({}))?;
        Ok(())
    }

    /// The address of the top-level page.
    pub fn current_url(&self) -> Result<String> {
        Ok(self
            .get(&self.session_path("/url"))?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// JavaScript truthiness of a returned value (what `wait_until` waits for).
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}
