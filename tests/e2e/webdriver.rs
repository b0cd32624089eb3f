//! A small W3C WebDriver client over `reqwest::blocking`: just what the e2e
//! tests use (sessions, elements, keys, scripts, screenshots).

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

/// The W3C key code of Escape.
pub const ESCAPE: &str = "\u{E00C}";

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An element reference of the current session.
pub struct Element(String);

/// A WebDriver session; deleted on drop (which closes the app).
pub struct Session {
    http: Client,
    /// `http://host:port/session/<id>`
    url: String,
}

impl Session {
    /// Waits until the driver at `base` answers `/status` with `ready`.
    pub fn wait_ready(base: &str, timeout: Duration) -> Result<(), String> {
        let http = client(Duration::from_secs(5))?;
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match http
                .get(format!("{base}/status"))
                .send()
                .and_then(|r| r.json::<Value>())
            {
                Ok(v) if v.pointer("/value/ready").and_then(Value::as_bool) == Some(true) => {
                    return Ok(())
                }
                Ok(v) => last = v.to_string(),
                Err(e) => last = e.to_string(),
            }
            sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the WebDriver at {base} was not ready after {timeout:?} (last: {last})"
        ))
    }

    /// Starts `application` through tauri-driver.
    pub fn new(base: &str, application: &Path) -> Result<Session, String> {
        let http = client(Duration::from_secs(30))?;
        let caps = json!({
            "capabilities": {
                "alwaysMatch": { "tauri:options": { "application": application } }
            }
        });
        // Starting the app takes a few seconds, more on a busy machine.
        let reply = send(
            http.post(format!("{base}/session"))
                .json(&caps)
                .timeout(Duration::from_secs(120)),
        )
        .map_err(|e| {
            format!(
                "cannot start {} through tauri-driver: {e}",
                application.display()
            )
        })?;
        let id = reply
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no sessionId in {reply}"))?;
        let session = Session {
            http,
            url: format!("{base}/session/{id}"),
        };
        // Searches wait for nothing: the tests poll themselves.
        session.post("/timeouts", &json!({"implicit": 0, "script": 30_000}))?;
        Ok(session)
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        send(self.http.get(format!("{}{path}", self.url))).map_err(|e| format!("GET {path}: {e}"))
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        send(self.http.post(format!("{}{path}", self.url)).json(body))
            .map_err(|e| format!("POST {path}: {e}"))
    }

    pub fn find(&self, css: &str) -> Result<Element, String> {
        let v = self.post("/element", &json!({"using": "css selector", "value": css}))?;
        element(&v).ok_or_else(|| format!("no element reference for {css} in {v}"))
    }

    pub fn find_all(&self, css: &str) -> Result<Vec<Element>, String> {
        let v = self.post("/elements", &json!({"using": "css selector", "value": css}))?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(element).collect())
            .unwrap_or_default())
    }

    pub fn click(&self, el: &Element) -> Result<(), String> {
        self.post(&format!("/element/{}/click", el.0), &json!({}))
            .map(drop)
    }

    pub fn send_keys(&self, el: &Element, text: &str) -> Result<(), String> {
        self.post(&format!("/element/{}/value", el.0), &json!({"text": text}))
            .map(drop)
    }

    /// Presses and releases one key on whatever has the focus.
    pub fn press_key(&self, key: &str) -> Result<(), String> {
        let actions = json!({"actions": [{
            "type": "key",
            "id": "keyboard",
            "actions": [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        }]});
        self.post("/actions", &actions)?;
        let _ = send(self.http.delete(format!("{}/actions", self.url)));
        Ok(())
    }

    /// The element's rendered text (`innerText`). Not WebDriver's Get Element
    /// Text: WebKitWebDriver's version drops the text of the inventory's cells
    /// (text nodes directly inside clipped grid cells), although it is on screen.
    pub fn text(&self, el: &Element) -> Result<String, String> {
        let v = self.execute(
            "return arguments[0].innerText;",
            &json!([{ ELEMENT_KEY: el.0 }]),
        )?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub fn attribute(&self, el: &Element, name: &str) -> Result<Option<String>, String> {
        let v = self.get(&format!("/element/{}/attribute/{name}", el.0))?;
        Ok(v.as_str().map(str::to_string))
    }

    pub fn execute(&self, script: &str, args: &Value) -> Result<Value, String> {
        self.post("/execute/sync", &json!({"script": script, "args": args}))
    }

    pub fn execute_async(&self, script: &str, args: &Value) -> Result<Value, String> {
        self.post("/execute/async", &json!({"script": script, "args": args}))
    }

    pub fn source(&self) -> Result<String, String> {
        Ok(self
            .get("/source")?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Saves a PNG screenshot of the window.
    pub fn screenshot_to(&self, path: &Path) -> Result<(), String> {
        // Let the page paint what the DOM already shows: the snapshot is of
        // the last painted frame.
        self.execute_async(
            "const done = arguments[arguments.length - 1];\
             requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 50)));",
            &json!([]),
        )?;
        let v = self.get("/screenshot")?;
        let b64 = v
            .as_str()
            .ok_or_else(|| format!("screenshot is not a string: {v}"))?;
        let png = base64_decode(b64)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("write {}: {e}", path.display()))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = send(self.http.delete(&self.url));
    }
}

fn client(timeout: Duration) -> Result<Client, String> {
    Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Sends a WebDriver request; returns its `value`, or the WebDriver error.
fn send(req: reqwest::blocking::RequestBuilder) -> Result<Value, String> {
    let resp = req.send().map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .map_err(|e| format!("HTTP {status}, body is not JSON: {e}"))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        let error = value
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Err(format!("HTTP {status}: {error}: {message}"))
    }
}

fn element(v: &Value) -> Option<Element> {
    v.get(ELEMENT_KEY)
        .and_then(Value::as_str)
        .map(|s| Element(s.to_string()))
}

/// Standard base64 (RFC 4648, padded; whitespace ignored).
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid base64 byte {c:#x}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
