//! The one HTTP client every HTTP source shares: bounded concurrency,
//! timeouts, retries with exponential backoff and full jitter, and respect for
//! the throttling signals of each API (`Retry-After`, Okta's
//! `X-Rate-Limit-Reset`, GitHub's `x-ratelimit-remaining`/`-reset`).
//!
//! Every request a source sends carries its secret, so the client itself
//! refuses a plain `http://` URL to anything but a loopback host before
//! connecting, and follows no redirect to one
//! ([`super::transport::require_https`]); the settings are checked earlier
//! with the setting's name.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;

use crate::error::{Error, ErrorCode, Result};

/// Retry and concurrency policy.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    pub max_concurrency: usize,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest server-requested wait we accept before giving up.
    pub max_retry_after: Duration,
    /// How long to wait after a secondary rate limit that names no time
    /// (GitHub: "at least one minute").
    pub secondary_wait: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// The largest response body accepted, in bytes. A source that sends
    /// more (a runaway page, a hostile server) fails the request instead of
    /// exhausting memory.
    pub max_response_bytes: usize,
}

/// The default [`HttpPolicy::max_response_bytes`]: far above the largest
/// documented page (AWS GetAccountAuthorizationDetails pages run to a few
/// MiB), far below what would hurt a desktop.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            max_concurrency: 4,
            max_attempts: 6,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            secondary_wait: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }
}

/// A cancellation flag shared between the UI and a running sync.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::new(
                ErrorCode::Cancelled,
                "the sync was cancelled; the previous snapshot was kept",
            ))
        } else {
            Ok(())
        }
    }
}

/// A response body with its headers.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                ErrorCode::MalformedResponse,
                format!("{what}: the response is not the documented JSON ({e})"),
            )
        })
    }

    /// All values of a header (Okta sends several `link` headers).
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    }
}

/// Counts shared across requests, for progress and tests.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: HttpPolicy,
    permits: Arc<Semaphore>,
    pub stats: Arc<HttpStats>,
    cancel: Cancel,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .finish()
    }
}

/// Headers computed afresh for every attempt of a request, such as an AWS
/// SigV4 signature: it covers a timestamp, so a retry after a long backoff
/// must not reuse the first attempt's.
pub type Signer<'a> = dyn Fn() -> Result<Vec<(String, String)>> + Send + Sync + 'a;

/// What to do after a failed attempt.
enum Verdict {
    Retry(Option<Duration>),
    Fail(Error),
}

impl HttpClient {
    pub fn new(policy: HttpPolicy, cancel: Cancel) -> Result<HttpClient> {
        let client = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.request_timeout)
            .user_agent(concat!("custodian/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.previous().len() >= 10 {
                    attempt.error("too many redirects")
                } else if let Err(e) =
                    super::transport::require_https("a redirect", attempt.url().as_str())
                {
                    attempt.error(e.message)
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            permits: Arc::new(Semaphore::new(policy.max_concurrency.max(1))),
            policy,
            stats: Arc::new(HttpStats::default()),
            cancel,
        })
    }

    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// Timeouts and retry budget, for sources that speak another protocol
    /// (LDAP) but follow the same policy.
    pub fn policy(&self) -> &HttpPolicy {
        &self.policy
    }

    /// GET with retries. `headers` are added to every attempt.
    pub async fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<Response> {
        self.send(Method::GET, url, headers, None, None).await
    }

    /// POST a form with retries.
    pub async fn post_form(
        &self,
        url: &str,
        headers: &[(&str, String)],
        form: &[(&str, &str)],
    ) -> Result<Response> {
        self.send_form(url, headers, form, false).await
    }

    /// POST a form with retries, answering a client error (400-499 but 429)
    /// as a response rather than an error: for OAuth token endpoints, whose
    /// 400 body (`{"error": "authorization_pending"}`) is the protocol.
    /// Throttling, server errors and network failures are retried as usual.
    pub async fn post_form_answer(
        &self,
        url: &str,
        headers: &[(&str, String)],
        form: &[(&str, &str)],
    ) -> Result<Response> {
        self.send_form(url, headers, form, true).await
    }

    /// POSTs `form` url-encoded with retries; with `answer_client_errors`
    /// a client error but 429 comes back as a response.
    async fn send_form(
        &self,
        url: &str,
        headers: &[(&str, String)],
        form: &[(&str, &str)],
        answer_client_errors: bool,
    ) -> Result<Response> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send_with(
            Method::POST,
            url,
            headers,
            Some(("application/x-www-form-urlencoded", body)),
            None,
            answer_client_errors,
        )
        .await
    }

    /// POST a prepared body with retries. `sign`, when given, is called before
    /// every attempt and its headers are added to that attempt only.
    pub async fn post_body(
        &self,
        url: &str,
        headers: &[(&str, String)],
        content_type: &str,
        body: String,
        sign: Option<&Signer<'_>>,
    ) -> Result<Response> {
        self.send(Method::POST, url, headers, Some((content_type, body)), sign)
            .await
    }

    /// Any method, with an optional `(content type, body)`, with retries.
    /// For idempotent requests only (write-back's PATCH and DELETE are).
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<(&str, String)>,
    ) -> Result<Response> {
        self.send(method, url, headers, body, None).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<(&str, String)>,
        sign: Option<&Signer<'_>>,
    ) -> Result<Response> {
        self.send_with(method, url, headers, body, sign, false)
            .await
    }

    async fn send_with(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<(&str, String)>,
        sign: Option<&Signer<'_>>,
        answer_client_errors: bool,
    ) -> Result<Response> {
        super::transport::require_https("a request URL", url)?;
        let mut attempt = 0u32;
        loop {
            self.cancel.check()?;
            attempt += 1;
            let outcome = {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .map_err(|_| Error::internal("the HTTP client was shut down"))?;
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                let mut rb = self.client.request(method.clone(), url);
                for (k, v) in headers {
                    rb = rb.header(*k, v);
                }
                if let Some(sign) = sign {
                    for (k, v) in sign()? {
                        rb = rb.header(k, v);
                    }
                }
                if let Some((content_type, b)) = &body {
                    rb = rb.header("content-type", *content_type).body(b.clone());
                }
                rb.send().await
            };
            let verdict = match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = match read_capped(resp, self.policy.max_response_bytes).await {
                        Ok(b) => b,
                        Err(BodyError::TooLarge(n)) => {
                            return Err(too_large(url, n, self.policy.max_response_bytes));
                        }
                        Err(BodyError::Read(e)) => {
                            let v = Verdict::Retry(None);
                            tracing::debug!(%url, error = %e, "body read failed");
                            if attempt >= self.policy.max_attempts {
                                return Err(Error::new(
                                    ErrorCode::Network,
                                    format!("reading {} failed: {e}", redact(url)),
                                ));
                            }
                            self.wait(v, attempt).await?;
                            continue;
                        }
                    };
                    let answered = answer_client_errors
                        && status.is_client_error()
                        && status != StatusCode::TOO_MANY_REQUESTS;
                    if status.is_success() || answered {
                        return Ok(Response {
                            status,
                            headers,
                            body,
                        });
                    }
                    self.classify(url, status, &headers, &body)
                }
                Err(e) => {
                    let msg = if e.is_timeout() {
                        format!("{} timed out", redact(url))
                    } else if e.is_connect() {
                        format!("cannot connect to {}", redact(url))
                    } else {
                        format!("request to {} failed: {}", redact(url), e.without_url())
                    };
                    if attempt >= self.policy.max_attempts {
                        return Err(Error::new(ErrorCode::Network, msg));
                    }
                    Verdict::Retry(None)
                }
            };
            match verdict {
                Verdict::Fail(e) => return Err(e),
                Verdict::Retry(_) if attempt >= self.policy.max_attempts => {
                    return Err(Error::new(
                        ErrorCode::RateLimited,
                        format!(
                            "{} kept failing or throttling after {attempt} attempts",
                            redact(url)
                        ),
                    ));
                }
                v => self.wait(v, attempt).await?,
            }
        }
    }

    fn classify(&self, url: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let snippet: String = String::from_utf8_lossy(body).chars().take(300).collect();
        let hint = server_wait(headers, Utc::now());
        match status.as_u16() {
            429 => Verdict::Retry(hint),
            // AWS Query APIs (IAM, STS) throttle with 400 and an error code.
            400 if is_aws_throttling(body) => Verdict::Retry(hint),
            // GitHub signals rate limits with 403 and remaining 0 / retry-after.
            403 if hint.is_some() || header_str(headers, "x-ratelimit-remaining") == Some("0") => {
                Verdict::Retry(hint)
            }
            // A secondary rate limit without a time: wait the documented minimum.
            403 if snippet
                .to_ascii_lowercase()
                .contains("secondary rate limit") =>
            {
                Verdict::Retry(Some(self.policy.secondary_wait))
            }
            401 | 403 => Verdict::Fail(Error::new(
                ErrorCode::SourceAuth,
                format!(
                    "{} refused the credentials (HTTP {status}): {snippet}",
                    redact(url)
                ),
            )),
            500..=599 => Verdict::Retry(hint),
            _ => Verdict::Fail(Error::new(
                ErrorCode::SourceError,
                format!("{} answered HTTP {status}: {snippet}", redact(url)),
            )),
        }
    }

    async fn wait(&self, v: Verdict, attempt: u32) -> Result<()> {
        let delay = match v {
            Verdict::Retry(Some(server)) => {
                if server > self.policy.max_retry_after {
                    return Err(Error::new(
                        ErrorCode::RateLimited,
                        format!("the source asked to wait {}s, longer than the {}s allowed; try again later", server.as_secs(), self.policy.max_retry_after.as_secs()),
                    ));
                }
                server
            }
            Verdict::Retry(None) => backoff(&self.policy, attempt),
            Verdict::Fail(e) => return Err(e),
        };
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "retrying");
        // Sleep in slices so a cancel is honoured promptly.
        let mut left = delay;
        while !left.is_zero() {
            self.cancel.check()?;
            let step = left.min(Duration::from_millis(200));
            tokio::time::sleep(step).await;
            left = left.saturating_sub(step);
        }
        Ok(())
    }
}

/// Exponential backoff with full jitter: uniform in `0..=min(max, base * 2^(attempt-1))`.
enum BodyError {
    /// At least this many bytes were announced or received.
    TooLarge(u64),
    Read(reqwest::Error),
}

/// Reads a body chunk by chunk, stopping as soon as it passes `cap` (or its
/// announced length does) rather than buffering whatever the server sends.
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> std::result::Result<Vec<u8>, BodyError> {
    let cap64 = cap as u64;
    if let Some(n) = resp.content_length().filter(|n| *n > cap64) {
        return Err(BodyError::TooLarge(n));
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(cap64) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge((body.len() + chunk.len()) as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(url: &str, got: u64, cap: usize) -> Error {
    Error::new(
        ErrorCode::MalformedResponse,
        format!(
            "{} sent a response of at least {} bytes, over the limit of {} bytes; nothing from it was imported",
            redact(url),
            got,
            cap
        ),
    )
}

pub fn backoff(policy: &HttpPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(policy.max_backoff);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut rng = crate::demo::Rng::new(u64::from(nanos) ^ u64::from(attempt).rotate_left(32));
    let frac = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    cap.mul_f64(frac)
}

/// An AWS error body that says the caller is throttled (`<Code>Throttling</Code>`
/// from the Query APIs, `ThrottlingException` from the JSON ones).
fn is_aws_throttling(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("<Code>Throttling</Code>") || text.contains("ThrottlingException")
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// How long the server asked us to wait, from the headers APIs use:
/// `Retry-After` (seconds or HTTP date), `X-Rate-Limit-Reset` (Okta, epoch
/// seconds) and `x-ratelimit-reset` with `x-ratelimit-remaining: 0` (GitHub).
pub fn server_wait(h: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(v) = header_str(h, "retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(t) = DateTime::parse_from_rfc2822(v) {
            return Some(
                (t.with_timezone(&Utc) - now)
                    .to_std()
                    .unwrap_or(Duration::ZERO),
            );
        }
    }
    let reset = header_str(h, "x-rate-limit-reset").or_else(|| {
        (header_str(h, "x-ratelimit-remaining") == Some("0"))
            .then(|| header_str(h, "x-ratelimit-reset"))
            .flatten()
    });
    if let Some(epoch) = reset.and_then(|v| v.parse::<i64>().ok()) {
        let wait = epoch - now.timestamp();
        return Some(Duration::from_secs(wait.clamp(0, i64::MAX) as u64 + 1));
    }
    None
}

/// A URL without its query string (tokens sometimes travel there).
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_stays_within_the_cap() {
        let p = HttpPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Default::default()
        };
        for attempt in 1..20 {
            let d = backoff(&p, attempt);
            let cap = Duration::from_millis(100)
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(Duration::from_secs(1));
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
    }

    #[test]
    fn server_wait_reads_each_apis_headers() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(server_wait(&h, now), Some(Duration::from_secs(7)));

        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Thu, 01 Jan 2026 00:00:30 GMT"),
        );
        assert_eq!(server_wait(&h, now), Some(Duration::from_secs(30)));

        let mut h = HeaderMap::new();
        h.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&(now.timestamp() + 10).to_string()).unwrap(),
        );
        assert_eq!(server_wait(&h, now), Some(Duration::from_secs(11)));

        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&(now.timestamp() + 5).to_string()).unwrap(),
        );
        assert_eq!(
            server_wait(&h, now),
            None,
            "GitHub reset counts only when remaining is 0"
        );
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        assert_eq!(server_wait(&h, now), Some(Duration::from_secs(6)));
    }

    #[test]
    fn aws_throttling_400_is_retried_other_400s_are_not() {
        let client = HttpClient::new(HttpPolicy::default(), Cancel::new()).unwrap();
        let h = HeaderMap::new();
        let throttled = br#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>
            <Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        assert!(matches!(
            client.classify("https://iam/", StatusCode::BAD_REQUEST, &h, throttled),
            Verdict::Retry(None)
        ));
        let json = br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        assert!(matches!(
            client.classify("https://iam/", StatusCode::BAD_REQUEST, &h, json),
            Verdict::Retry(None)
        ));
        let invalid = b"<ErrorResponse><Error><Code>InvalidInput</Code></Error></ErrorResponse>";
        match client.classify("https://iam/", StatusCode::BAD_REQUEST, &h, invalid) {
            Verdict::Fail(e) => assert_eq!(e.code, ErrorCode::SourceError),
            Verdict::Retry(_) => panic!("a plain 400 must not be retried"),
        }
    }

    #[tokio::test]
    async fn plain_http_leaves_loopback_neither_directly_nor_by_redirect() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let client = HttpClient::new(HttpPolicy::default(), Cancel::new()).unwrap();
        // Refused before any connection: nothing listens there anyway, and
        // no request was counted.
        let e = client
            .get(
                "http://example.com/v2/Users",
                &[("authorization", "Bearer t".into())],
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{e:?}");
        assert!(e.message.contains("plain http://"), "{}", e.message);
        assert_eq!(client.stats.requests.load(Ordering::Relaxed), 0);
        // A loopback server may redirect within loopback, not to plain HTTP
        // elsewhere: here the same server on this host's own non-loopback
        // address, which would answer if the redirect were followed.
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = MockServer::builder().listener(listener).start().await;
        let base = format!("http://127.0.0.1:{port}");
        let own = std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|u| u.connect("8.8.8.8:53").and_then(|_| u.local_addr()))
            .map(|a| a.ip())
            .ok()
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
        let Some(own) = own else {
            panic!("this test needs a non-loopback address on this host");
        };
        Mock::given(path("/away"))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", format!("http://{own}:{port}/steal")),
            )
            .mount(&server)
            .await;
        Mock::given(path("/steal"))
            .respond_with(ResponseTemplate::new(200).set_body_string("stolen"))
            .expect(0)
            .mount(&server)
            .await;
        Mock::given(path("/hop"))
            .respond_with(
                ResponseTemplate::new(302).insert_header("location", format!("{base}/ok")),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/ok"))
            .respond_with(ResponseTemplate::new(200).set_body_string("fine"))
            .mount(&server)
            .await;
        let ok = client.get(&format!("{base}/hop"), &[]).await.unwrap();
        assert_eq!(ok.body, b"fine");
        let policy = HttpPolicy {
            max_attempts: 1,
            ..HttpPolicy::default()
        };
        let once = HttpClient::new(policy, Cancel::new()).unwrap();
        let e = once.get(&format!("{base}/away"), &[]).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Network, "{e:?}");
        server.verify().await;
    }

    #[test]
    fn redact_drops_the_query() {
        assert_eq!(redact("https://x/y?token=s3cr3t"), "https://x/y?…");
        assert_eq!(redact("https://x/y"), "https://x/y");
    }

    fn capped(cap: usize) -> HttpClient {
        HttpClient::new(
            HttpPolicy {
                max_response_bytes: cap,
                base_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
                ..Default::default()
            },
            Cancel::new(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_body_over_the_cap_fails_once_without_retrying() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(2000)))
            .mount(&server)
            .await;
        let client = capped(1000);
        let e = client
            .get(&format!("{}/page", server.uri()), &[])
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedResponse, "{e:?}");
        assert!(e.message.contains("limit of 1000 bytes"), "{}", e.message);
        assert_eq!(
            client.stats.requests.load(Ordering::Relaxed),
            1,
            "not retried"
        );
        // The same body fits a larger cap, byte for byte.
        let ok = capped(2000)
            .get(&format!("{}/page", server.uri()), &[])
            .await
            .unwrap();
        assert_eq!(ok.body.len(), 2000);
    }

    #[tokio::test]
    async fn a_chunked_body_is_stopped_at_the_cap_without_a_length() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            // An endless body: the client must stop reading on its own.
            let chunk = format!("200\r\n{}\r\n", "y".repeat(0x200));
            for _ in 0..10_000 {
                if sock.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let e = capped(4096)
            .get(&format!("http://{addr}/stream"), &[])
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedResponse, "{e:?}");
        assert!(
            e.message.contains("over the limit of 4096 bytes"),
            "{}",
            e.message
        );
    }
}
