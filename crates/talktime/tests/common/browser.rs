//! A real browser for the console tests: Debian's chromium, headless, driven through
//! chromedriver's W3C WebDriver protocol (JSON over HTTP) with a few calls of our own.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::free_port;

/// The key W3C WebDriver gives an element reference under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    agent: ureq::Agent,
}

impl Browser {
    pub fn start() -> Browser {
        Browser::launch(&[])
    }

    /// A browser that trusts the certificate whose public key has this SPKI hash (base64
    /// SHA-256), as if it chained to a root.
    pub fn start_trusting(spki: &str) -> Browser {
        Browser::launch(&[format!("--ignore-certificate-errors-spki-list={spki}")])
    }

    fn launch(extra: &[String]) -> Browser {
        let port = free_port();
        let driver = Command::new("timeout")
            .args(["300", "chromedriver", &format!("--port={port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) is needed for the console tests");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(&format!("{root}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.extend_from_slice(extra);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
        }}});
        let mut browser = Browser {
            driver,
            base: root.clone(),
            agent,
        };
        let session = browser.send("POST", "/session", Some(capabilities));
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        browser.base = format!("{root}/session/{id}");
        browser
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, Some(body)) => self.agent.post(&url).send_json(&body),
            (_, None) => self.agent.post(&url).send_json(json!({})),
        }
        .unwrap();
        let value: Value = response.body_mut().read_json().unwrap();
        value["value"].clone()
    }

    pub fn go(&self, url: &str) {
        self.send("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.send("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn source(&self) -> String {
        self.send("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every element matching a CSS selector, as references.
    pub fn all(&self, css: &str) -> Vec<String> {
        let found = self.send(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|element| element[ELEMENT].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting up to `limit` for it.
    pub fn wait_for(&self, css: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(first) = self.all(css).into_iter().next() {
                return Some(first);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn find(&self, css: &str) -> String {
        self.wait_for(css, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no {css} on {}:\n{}", self.url(), self.source()))
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.send(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Empties a text field or text area.
    pub fn clear(&self, css: &str) {
        let element = self.find(css);
        self.send(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
    }

    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.send("POST", &format!("/element/{element}/click"), None);
    }

    /// Polls until `check` holds (ten seconds at most): a click does not wait for the next
    /// page, and the old one may hold the same element.
    pub fn until(&self, what: &str, check: impl Fn(&Browser) -> bool) {
        for _ in 0..100 {
            if check(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{what}: not so on {}:\n{}", self.url(), self.source());
    }

    /// Polls until the page's source holds `wanted`.
    pub fn until_page_says(&self, wanted: &str) {
        self.until(wanted, |browser| browser.source().contains(wanted));
    }

    /// The text of the first element matching `css`. An element found on the page a click is
    /// leaving goes stale as the next page loads (WebDriver then answers an error, not text):
    /// it is looked up again on the new page, for five seconds at most.
    pub fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let element = self.find(css);
            let answer = self.send("GET", &format!("/element/{element}/text"), None);
            if let Some(text) = answer.as_str() {
                return text.to_owned();
            }
            if Instant::now() > deadline {
                panic!("no text for {css} on {}: {answer}", self.url());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves the page as a PNG when `TALKTIME_SCREENSHOTS` names a folder (how the pictures
    /// in docs/console/ are made: `TALKTIME_SCREENSHOTS=docs/console cargo test --test
    /// console_browser`); otherwise does nothing.
    pub fn screenshot(&self, name: &str) {
        let Ok(folder) = std::env::var("TALKTIME_SCREENSHOTS") else {
            return;
        };
        use base64_decode::decode;
        let encoded = self.send("GET", "/screenshot", None);
        let png = decode(encoded.as_str().unwrap_or_default());
        let folder = super::repo_root().join(folder);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{name}.png")), png).unwrap();
    }

    /// Logs in on the console's login page.
    pub fn log_in(&self, console: &str, name: &str, password: &str) {
        self.go(&format!("{console}/console/login"));
        self.type_into("#name", name);
        self.type_into("#password", password);
        self.click("#login");
        // Wait for the dashboard (its log-out button): a page asked for before the login's
        // redirect has landed would be replaced by it on a loaded machine.
        for _ in 0..100 {
            if !self.all("#logout").is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (what WebDriver returns screenshots in), decoded without a dependency.
mod base64_decode {
    pub fn decode(text: &str) -> Vec<u8> {
        let value = |byte: u8| -> Option<u32> {
            match byte {
                b'A'..=b'Z' => Some(u32::from(byte - b'A')),
                b'a'..=b'z' => Some(u32::from(byte - b'a') + 26),
                b'0'..=b'9' => Some(u32::from(byte - b'0') + 52),
                b'+' => Some(62),
                b'/' => Some(63),
                _ => None,
            }
        };
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let mut bits = 0u32;
        let mut count = 0;
        for byte in text.bytes().filter_map(value) {
            bits = (bits << 6) | byte;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push(u8::try_from((bits >> count) & 0xff).unwrap_or(0));
            }
        }
        out
    }
}
