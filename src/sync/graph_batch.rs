//! Microsoft Graph JSON batching: many GETs in one `POST /{version}/$batch`.
//!
//! As documented (https://learn.microsoft.com/graph/json-batching):
//! - at most [`MAX_PER_BATCH`] (20) requests per batch; each has an `id`, a
//!   `method` and a `url` relative to the version (`/servicePrincipals/{id}/owners`);
//! - the batch answers `200` with one entry in `responses` per request, in any
//!   order, each with its own `status`, `headers` and `body`;
//! - each request in a batch is evaluated against the throttling limits on its
//!   own, so some entries may be `429` with their own `Retry-After` (seconds)
//!   while the others succeed (https://learn.microsoft.com/graph/throttling):
//!   only those are sent again, in a new batch, after the longest wait any of
//!   them asked for. `503`/`504` entries are retried the same way (with
//!   backoff when they name no wait).
//!
//! [`run`] drives one batch to completion over any transport (the caller
//! posts the body); the retry budget is the HTTP policy's: at most
//! `max_attempts` rounds in a row that answer nothing finally (a batch that
//! makes progress under throttling goes on), no wait longer than
//! `max_retry_after`.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};

use super::http::{backoff, HttpPolicy};
use crate::error::{Error, ErrorCode, Result};

/// The most requests one batch may hold.
pub const MAX_PER_BATCH: usize = 20;

/// One entry of a batch's `responses`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubResponse {
    pub status: u16,
    /// The entry's own `Retry-After`, in seconds.
    pub retry_after: Option<Duration>,
    pub body: Value,
}

/// The JSON body of a batch of GETs; each request's id is its index.
pub fn request_body(urls: &[(usize, &str)]) -> String {
    let requests: Vec<Value> = urls
        .iter()
        .map(|(i, url)| json!({"id": i.to_string(), "method": "GET", "url": url}))
        .collect();
    json!({ "requests": requests }).to_string()
}

/// The entries of a batch response by request id. An entry whose id is not a
/// number is ignored (it cannot be one of ours).
pub fn parse_responses(body: &Value) -> Result<HashMap<usize, SubResponse>> {
    let Some(items) = body.get("responses").and_then(Value::as_array) else {
        return Err(Error::new(
            ErrorCode::MalformedResponse,
            "Graph $batch: the response has no 'responses' list",
        ));
    };
    let mut out = HashMap::with_capacity(items.len());
    for r in items {
        let Some(id) = r.get("id").and_then(|v| match v {
            Value::String(s) => s.trim().parse::<usize>().ok(),
            Value::Number(n) => n.as_u64().map(|n| n as usize),
            _ => None,
        }) else {
            continue;
        };
        let status = r
            .get("status")
            .and_then(|s| match s {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0);
        let retry_after = r
            .get("headers")
            .and_then(Value::as_object)
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                    .map(|(_, v)| v)
            })
            .and_then(|v| match v {
                Value::String(s) => s.trim().parse::<u64>().ok(),
                Value::Number(n) => n.as_u64(),
                _ => None,
            })
            .map(Duration::from_secs);
        out.insert(
            id,
            SubResponse {
                status,
                retry_after,
                body: r.get("body").cloned().unwrap_or(Value::Null),
            },
        );
    }
    Ok(out)
}

fn retryable(status: u16) -> bool {
    matches!(status, 429 | 503 | 504)
}

/// What one batch did: the final entry of each request, and how many
/// sub-requests were sent again after throttling.
#[derive(Debug, Default)]
pub struct Outcome {
    pub responses: HashMap<usize, SubResponse>,
    pub retried: u64,
}

/// Sends `urls` (at most [`MAX_PER_BATCH`]) through `post` (which POSTs a
/// batch body and returns the parsed response) until every entry has a
/// final status. Throttled entries are sent again after their `Retry-After`;
/// an entry missing from the response is sent again too.
pub async fn run<F, Fut>(policy: &HttpPolicy, urls: &[(usize, &str)], post: F) -> Result<Outcome>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    if urls.len() > MAX_PER_BATCH {
        return Err(Error::internal(format!(
            "a Graph batch of {} requests (at most {MAX_PER_BATCH})",
            urls.len()
        )));
    }
    let mut out = Outcome::default();
    let mut pending: Vec<(usize, &str)> = urls.to_vec();
    let rounds = policy.max_attempts.max(1);
    // Rounds in a row in which no entry got its final answer: a batch that
    // makes progress under throttling keeps going, one that makes none gives
    // up after `max_attempts`.
    let mut stalled = 0u32;
    loop {
        let mut got = parse_responses(&post(request_body(&pending)).await?)?;
        let mut again = Vec::new();
        let mut wait: Option<Duration> = None;
        let before = pending.len();
        for (i, url) in pending {
            match got.remove(&i) {
                Some(r) if retryable(r.status) => {
                    let w = r
                        .retry_after
                        .unwrap_or_else(|| backoff(policy, stalled + 1));
                    wait = Some(wait.map_or(w, |x| x.max(w)));
                    again.push((i, url));
                }
                Some(r) => {
                    out.responses.insert(i, r);
                }
                None => again.push((i, url)),
            }
        }
        if again.is_empty() {
            return Ok(out);
        }
        stalled = if again.len() < before { 0 } else { stalled + 1 };
        if stalled >= rounds {
            return Err(Error::new(
                ErrorCode::SourceError,
                format!(
                    "Graph $batch: {} request(s) still throttled or unanswered after {rounds} rounds without progress (first: {})",
                    again.len(),
                    super::http::redact(again[0].1)
                ),
            ));
        }
        let wait = wait.unwrap_or_else(|| backoff(policy, stalled + 1));
        if wait > policy.max_retry_after {
            return Err(Error::new(
                ErrorCode::SourceError,
                format!(
                    "Graph asked to wait {}s in a batch, longer than the {}s allowed; try again later",
                    wait.as_secs(),
                    policy.max_retry_after.as_secs()
                ),
            ));
        }
        out.retried += again.len() as u64;
        tokio::time::sleep(wait).await;
        pending = again;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn body_and_parse_follow_the_documented_shape() {
        let body: Value = serde_json::from_str(&request_body(&[(0, "/a"), (7, "/b?x=1")])).unwrap();
        assert_eq!(
            body["requests"][1],
            json!({"id": "7", "method": "GET", "url": "/b?x=1"})
        );
        // The documented response: entries in any order, headers per entry.
        let resp = json!({"responses": [
            {"id": "7", "status": 429, "headers": {"Retry-After": "3", "Content-Type": "application/json"},
             "body": {"error": {"code": "TooManyRequests"}}},
            {"id": "0", "status": 200, "body": {"value": []}},
            {"id": "x", "status": 200}]});
        let got = parse_responses(&resp).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[&7].status, 429);
        assert_eq!(got[&7].retry_after, Some(Duration::from_secs(3)));
        assert_eq!(got[&0].body, json!({"value": []}));
        assert!(parse_responses(&json!({"value": []})).is_err());
    }

    #[tokio::test]
    async fn only_throttled_entries_are_sent_again() {
        let policy = HttpPolicy::default();
        let sent: Mutex<Vec<Vec<String>>> = Mutex::new(vec![]);
        let urls = [(0, "/a"), (1, "/b"), (2, "/c")];
        let out = run(&policy, &urls, |body| {
            let v: Value = serde_json::from_str(&body).unwrap();
            let ids: Vec<String> = v["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect();
            let first = sent.lock().unwrap().is_empty();
            sent.lock().unwrap().push(ids.clone());
            let responses: Vec<Value> = ids
                .iter()
                .map(|id| {
                    if first && id == "1" {
                        json!({"id": id, "status": 429, "headers": {"Retry-After": "0"}, "body": {}})
                    } else {
                        json!({"id": id, "status": 200, "body": {"value": [id]}})
                    }
                })
                .collect();
            async move { Ok(json!({ "responses": responses })) }
        })
        .await
        .unwrap();
        let sent = sent.into_inner().unwrap();
        assert_eq!(sent, vec![vec!["0", "1", "2"], vec!["1"]]);
        assert_eq!(out.retried, 1);
        assert_eq!(out.responses.len(), 3);
        assert_eq!(out.responses[&1].body, json!({"value": ["1"]}));
    }

    #[tokio::test]
    async fn a_batch_that_stays_throttled_fails_and_says_so() {
        let policy = HttpPolicy {
            max_attempts: 2,
            ..HttpPolicy::default()
        };
        let err = run(&policy, &[(0, "/a")], |_| async {
            Ok(json!({"responses": [{"id": "0", "status": 429, "headers": {"Retry-After": "0"}}]}))
        })
        .await
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::SourceError);
        assert!(
            err.message.contains("after 2 rounds without progress"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn a_batch_making_progress_outlasts_the_round_budget() {
        // Two rounds without progress are allowed; each round answers one
        // entry finally, so four entries take four rounds and all succeed.
        let policy = HttpPolicy {
            max_attempts: 2,
            ..HttpPolicy::default()
        };
        let urls = [(0, "/a"), (1, "/b"), (2, "/c"), (3, "/d")];
        let out = run(&policy, &urls, |body| {
            let v: Value = serde_json::from_str(&body).unwrap();
            let responses: Vec<Value> = v["requests"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let status = if k == 0 { 200 } else { 429 };
                    json!({"id": r["id"], "status": status, "headers": {"Retry-After": "0"}, "body": {"value": []}})
                })
                .collect();
            async move { Ok(json!({ "responses": responses })) }
        })
        .await
        .unwrap();
        assert_eq!(out.responses.len(), 4);
        assert_eq!(out.retried, 3 + 2 + 1);
    }
}
