//! `--entra N[,N...]`: a full Entra sync of N service principals from a
//! loopback Graph fixture server that enforces Graph's documented throttling,
//! once reading each SP's relations directly (`batch=false`) and once through
//! JSON batching (`$batch`, 20 per request), for the comparison.
//!
//! The server's throttle is the "Identity and access" limit of
//! https://learn.microsoft.com/graph/throttling-limits for a large tenant:
//! 8,000 resource units per 10 seconds per app and tenant, a sliding window,
//! each request costing 1 unit (the cost of an endpoint the table does not
//! list). Requests in a batch are evaluated individually
//! (https://learn.microsoft.com/graph/json-batching): each sub-request costs
//! its unit and may be answered 429 with its own `Retry-After` while the
//! others succeed; a direct request over the limit is answered 429 with
//! `Retry-After` (seconds until the window has room). `--entra-latency-ms`
//! adds a fixed delay to every HTTP response, standing in for the network
//! round trip to Graph (0 by default: loopback).
//!
//! The tenant: N SPs (one client secret each, on the application object
//! too), 100 users, each SP owned by a user and holding one application
//! permission on Microsoft Graph; every 100th SP is Global Administrator and
//! every 50th owns the next one.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use custodian::store::Store;
use custodian::Result;
use serde_json::{json, Value};

use super::{peak_rss_mib, Report};

const TENANT: &str = "bench-tenant";
const MS_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
/// Graph's large-tenant quota: resource units per window.
const QUOTA: usize = 8_000;
const WINDOW: Duration = Duration::from_secs(10);
const USERS: usize = 100;
const PAGE: usize = 999;

#[derive(Default)]
struct Counts {
    http: AtomicU64,
    sub: AtomicU64,
    throttled_http: AtomicU64,
    throttled_sub: AtomicU64,
}

struct Tenant {
    sps: usize,
    base: String,
    latency: Duration,
    window: Mutex<VecDeque<Instant>>,
    counts: Counts,
}

impl Tenant {
    /// Takes one resource unit, or says how many seconds until there is one.
    fn admit(&self) -> std::result::Result<(), u64> {
        let now = Instant::now();
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        while w.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            w.pop_front();
        }
        if w.len() < QUOTA {
            w.push_back(now);
            Ok(())
        } else {
            let oldest = w.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            Err(wait.as_secs_f64().ceil().max(1.0) as u64)
        }
    }

    fn sp(&self, i: usize) -> Value {
        json!({"id": format!("sp-{i}"), "appId": format!("app-{i}"), "displayName": format!("bench-app-{i}"),
            "servicePrincipalType": "Application", "accountEnabled": true, "appOwnerOrganizationId": TENANT,
            "tags": [], "appRoles": [], "keyCredentials": [],
            "passwordCredentials": [{"keyId": format!("k-{i}"), "displayName": "ci",
                "startDateTime": "2025-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}]})
    }

    fn page(&self, items: Vec<Value>, next: Option<String>) -> Value {
        match next {
            Some(n) => json!({"@odata.nextLink": n, "value": items}),
            None => json!({"value": items}),
        }
    }

    /// A GET of `path?query` under `/{version}`: (status, body).
    fn route(&self, version: &str, path: &str, query: &str) -> (u16, Value) {
        let skip = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("$skiptoken="))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let paged = |all: usize, item: &dyn Fn(usize) -> Value, coll: &str| {
            let end = (skip + PAGE).min(all);
            let items = (skip..end).map(item).collect();
            let next =
                (end < all).then(|| format!("{}/{version}/{coll}?$skiptoken={end}", self.base));
            (200, self.page(items, next))
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (version, parts.as_slice()) {
            ("v1.0", ["users", "delta"]) | ("v1.0", ["servicePrincipals", "delta"]) => (
                200,
                json!({"@odata.deltaLink": format!("{}/v1.0/{path}?$deltatoken=1", self.base), "value": []}),
            ),
            ("v1.0", ["users"]) => paged(
                USERS,
                &|i| {
                    json!({"id": format!("u-{i}"), "displayName": format!("User {i}"),
                    "userPrincipalName": format!("u{i}@bench.test"), "mail": format!("u{i}@bench.test"), "accountEnabled": true})
                },
                "users",
            ),
            ("v1.0", ["servicePrincipals"]) => {
                // Microsoft Graph's own SP (first-party: a resource) first.
                let (code, mut body) = paged(self.sps, &|i| self.sp(i), "servicePrincipals");
                if skip == 0 {
                    if let Some(v) = body["value"].as_array_mut() {
                        v.insert(0, json!({"id": "sp-graph", "appId": "00000003-0000-0000-c000-000000000000",
                            "displayName": "Microsoft Graph", "servicePrincipalType": "Application",
                            "appOwnerOrganizationId": MS_TENANT, "tags": [], "passwordCredentials": [],
                            "keyCredentials": [], "appRoles": [{"id": "r-ur", "value": "User.Read.All"}]}));
                    }
                }
                (code, body)
            }
            ("v1.0", ["applications"]) => paged(
                self.sps,
                &|i| {
                    json!({"id": format!("a-{i}"), "appId": format!("app-{i}"), "displayName": format!("bench-app-{i}"),
                    "keyCredentials": [], "passwordCredentials": [{"keyId": format!("ak-{i}"),
                    "startDateTime": "2025-01-01T00:00:00Z", "endDateTime": "2026-12-01T00:00:00Z"}]})
                },
                "applications",
            ),
            ("v1.0", ["servicePrincipals", id, rel]) => {
                let Some(i) = id.strip_prefix("sp-").and_then(|n| n.parse::<usize>().ok()) else {
                    return not_found();
                };
                if i >= self.sps {
                    return not_found();
                }
                match *rel {
                    "owners" => (
                        200,
                        json!({"value": [{"@odata.type": "#microsoft.graph.user", "id": format!("u-{}", i % USERS)}]}),
                    ),
                    "appRoleAssignments" => (
                        200,
                        json!({"value": [{"appRoleId": "r-ur", "resourceId": "sp-graph", "principalType": "ServicePrincipal"}]}),
                    ),
                    "oauth2PermissionGrants" => (200, json!({"value": []})),
                    "ownedObjects" if i % 50 == 0 && i + 1 < self.sps => (
                        200,
                        json!({"value": [{"@odata.type": "#microsoft.graph.servicePrincipal", "id": format!("sp-{}", i + 1)}]}),
                    ),
                    "ownedObjects" => (200, json!({"value": []})),
                    _ => not_found(),
                }
            }
            ("v1.0", ["roleManagement", "directory", "roleAssignments"]) => {
                // $filter=principalId eq 'sp-N' (percent-encoded or not).
                let i = query
                    .find("sp-")
                    .map(|at| &query[at + 3..])
                    .map(|rest| {
                        rest.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                    })
                    .and_then(|n| n.parse::<usize>().ok());
                let value = match i {
                    Some(i) if i % 100 == 0 => vec![
                        json!({"id": format!("ra-{i}"), "principalId": format!("sp-{i}"),
                        "directoryScopeId": "/", "roleDefinitionId": GA}),
                    ],
                    _ => vec![],
                };
                (200, json!({ "value": value }))
            }
            _ => not_found(),
        }
    }

    fn batch(&self, version: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Value) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return (400, vec![], json!({"error": {"code": "BadRequest"}}));
        };
        let requests = v["requests"].as_array().cloned().unwrap_or_default();
        if requests.len() > 20 {
            return (
                400,
                vec![],
                json!({"error": {"code": "BadRequest", "message": "more than 20 requests"}}),
            );
        }
        let mut responses = Vec::with_capacity(requests.len());
        for r in requests {
            self.counts.sub.fetch_add(1, Ordering::Relaxed);
            let id = r["id"].clone();
            if let Err(secs) = self.admit() {
                self.counts.throttled_sub.fetch_add(1, Ordering::Relaxed);
                responses.push(json!({"id": id, "status": 429,
                    "headers": {"Retry-After": secs.to_string(), "Content-Type": "application/json"},
                    "body": {"error": {"code": "TooManyRequests", "message": "Too many requests"}}}));
                continue;
            }
            let url = r["url"].as_str().unwrap_or("");
            let (p, q) = url.split_once('?').unwrap_or((url, ""));
            let (status, body) = self.route(version, p, q);
            responses.push(json!({"id": id, "status": status, "headers": {"Content-Type": "application/json"}, "body": body}));
        }
        (200, vec![], json!({ "responses": responses }))
    }

    fn handle(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Value) {
        self.counts.http.fetch_add(1, Ordering::Relaxed);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if method == "POST" && path.ends_with("/oauth2/v2.0/token") {
            return (
                200,
                vec![],
                json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "bench"}),
            );
        }
        let (version, rest) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", ""));
        if method == "POST" && rest == "$batch" {
            return self.batch(version, body);
        }
        if let Err(secs) = self.admit() {
            self.counts.throttled_http.fetch_add(1, Ordering::Relaxed);
            return (
                429,
                vec![("Retry-After".into(), secs.to_string())],
                json!({"error": {"code": "TooManyRequests"}}),
            );
        }
        let (status, body) = self.route(version, rest, query);
        (status, vec![], body)
    }
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"error": {"code": "Request_ResourceNotFound", "message": "not found"}}),
    )
}

fn serve_conn(stream: TcpStream, t: &Tenant) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let mut it = line.split_whitespace();
        let (method, target) = (it.next().unwrap_or("GET"), it.next().unwrap_or("/"));
        let (status, headers, json) = t.handle(method, target, &body);
        if !t.latency.is_zero() {
            std::thread::sleep(t.latency);
        }
        let bytes = json.to_string().into_bytes();
        let reason = match status {
            200 => "OK",
            429 => "Too Many Requests",
            404 => "Not Found",
            _ => "Error",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            bytes.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        out.write_all(&bytes)?;
        out.flush()?;
    }
}

fn serve(sps: usize, latency: Duration) -> std::io::Result<Arc<Tenant>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let t = Arc::new(Tenant {
        sps,
        base,
        latency,
        window: Mutex::new(VecDeque::new()),
        counts: Counts::default(),
    });
    let served = t.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let t = served.clone();
            std::thread::spawn(move || {
                let _ = serve_conn(stream, &t);
            });
        }
    });
    Ok(t)
}

/// One full sync of `sps` SPs, batched or not; the report line and JSON.
fn one(sps: usize, batch: bool, latency: Duration) -> Result<(String, Value)> {
    use custodian::sync::http::{Cancel, HttpPolicy};
    use custodian::sync::secrets::{MemorySecrets, SecretStore};

    let tenant = serve(sps, latency)?;
    let dir = std::env::temp_dir().join(format!(
        "custodian-bench-entra-{}-{sps}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("entra-{batch}.db"));
    let _ = std::fs::remove_file(&path);
    let mut store = Store::open(&path)?;
    let secrets = MemorySecrets::default();
    let src = store.add_source(
        "entra",
        "bench",
        &json!({"tenant_id": TENANT, "client_id": "bench", "graph_base": tenant.base,
                "login_base": tenant.base, "batch": batch}),
        Utc::now(),
    )?;
    secrets.set(src, "bench-secret")?;
    let quiet: custodian::sync::ProgressFn = Arc::new(|_: &custodian::sync::SyncProgress| {});
    let t = Instant::now();
    let out = custodian::ops::sync_blocking(
        &mut store,
        src,
        &secrets,
        quiet,
        Cancel::new(),
        HttpPolicy::default(),
    )?;
    let secs = t.elapsed().as_secs_f64();
    let count = |sql: &str| -> Result<i64> { store.raw_db().query_row(sql, [], |r| r.get(0)) };
    let (idents, grants, dels) = (
        count("SELECT count(*) FROM identities")?,
        count("SELECT count(*) FROM grants")?,
        count("SELECT count(*) FROM delegations")?,
    );
    let c = &tenant.counts;
    let (http, sub, th, ts) = (
        c.http.load(Ordering::Relaxed),
        c.sub.load(Ordering::Relaxed),
        c.throttled_http.load(Ordering::Relaxed),
        c.throttled_sub.load(Ordering::Relaxed),
    );
    let mode = if batch { "$batch  " } else { "direct  " };
    let line = format!(
        "{mode}: {secs:.1}s wall; {http} HTTP requests ({sub} batched sub-requests); 429s: {th} requests, {ts} sub-requests; \
         {} items ({idents} identities, {grants} grants, {dels} ownership edges); peak RSS {:.0} MiB",
        out.report.items,
        peak_rss_mib()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        line,
        json!({"batch": batch, "wall_s": secs, "http_requests": http, "sub_requests": sub,
               "throttled_requests": th, "throttled_sub_requests": ts, "identities": idents,
               "grants": grants, "delegations": dels, "items": out.report.items}),
    ))
}

pub fn run_entra(sps: usize, latency_ms: u64) -> Result<Report> {
    let latency = Duration::from_millis(latency_ms);
    let mut lines = vec![format!(
        "## Entra: {sps} service principals, Graph throttling {QUOTA} RU / {}s, {latency_ms} ms per response",
        WINDOW.as_secs()
    )];
    let mut runs = vec![];
    for batch in [false, true] {
        let (line, j) = one(sps, batch, latency)?;
        lines.push(line);
        runs.push(j);
    }
    Ok(Report {
        json: json!({"entra": {"service_principals": sps, "latency_ms": latency_ms, "runs": runs}}),
        lines,
    })
}
