//! Connecting to PostgreSQL the way libpq users expect.
//!
//! A location is a `postgres://` or `postgresql://` URL. What the URL leaves
//! out comes, as in libpq, from a service (`?service=` or `PGSERVICE`, read
//! from `PGSERVICEFILE` / `~/.pg_service.conf`, then
//! `PGSYSCONFDIR/pg_service.conf`), then the `PG*` environment variables
//! (`PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGSSLMODE`,
//! `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`).
//!
//! The password, in libpq's order: the URL (accepted, never shown),
//! `PGPASSWORD`, the password file (`PGPASSFILE` or `~/.pgpass`, ignored
//! when others can read it), then the OS keyring (service
//! `org.custodian.desktop`, account `postgres:USER@HOST:PORT/DB`, written by
//! `custodian db password`). Without one the server may still accept the
//! login (certificate, peer, Kerberos).
//!
//! TLS follows `sslmode`: `disable`; `prefer` (libpq's default: TLS when
//! the server offers it, unverified); `require` (TLS, unverified);
//! `verify-ca` (the chain is checked against `sslrootcert` or the system's
//! roots); `verify-full` (the chain and the host name). A client
//! certificate (`sslcert` + `sslkey`: a PEM certificate and its unencrypted
//! PKCS#8 PEM key, which native-tls requires; another key form is refused
//! with the `openssl pkcs8` command that converts it) logs in with `cert`
//! in `pg_hba.conf`.
//!
//! [`PgTarget::display`] never contains a password: it is what is shown,
//! logged and stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::db::Db;
use crate::error::{Error, ErrorCode, Result};

/// The keyring service under which database passwords are kept.
pub const KEYRING_SERVICE: &str = "org.custodian.desktop";

/// TLS modes, as libpq names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode> {
        Ok(match s.trim() {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::invalid(format!(
                    "sslmode '{other}' is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A PostgreSQL database to connect to. Holds the URL's password, if it had
/// one, apart from everything that is shown.
#[derive(Clone, PartialEq)]
pub struct PgTarget {
    /// Host name, IP address, or a Unix-socket directory (starts with `/`).
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub service: Option<String>,
    pub connect_timeout: Option<u64>,
    url_password: Option<String>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl PgTarget {
    /// Parses a `postgres://` / `postgresql://` URL.
    pub fn parse(s: &str) -> Result<PgTarget> {
        if s.len() > 4096 {
            return Err(Error::invalid(
                "the database URL is longer than 4096 characters",
            ));
        }
        // libpq allows an empty host (`postgres://user@/db`: the default
        // socket or PGHOST); the URL parser does not, so stand one in.
        const NO_HOST: &str = "custodian-no-host.invalid";
        let raw = s.trim();
        let fixed;
        let raw = match raw.find("://") {
            Some(i) => {
                let rest = &raw[i + 3..];
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                let authority = &rest[..end];
                if authority.is_empty() || authority.ends_with('@') {
                    fixed = format!("{}{authority}{NO_HOST}{}", &raw[..i + 3], &rest[end..]);
                    fixed.as_str()
                } else {
                    raw
                }
            }
            None => raw,
        };
        let url = url::Url::parse(raw).map_err(|e| {
            Error::invalid(format!(
                "the database location is not a valid PostgreSQL URL: {e}"
            ))
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(Error::invalid(
                "a PostgreSQL location starts with postgres:// or postgresql://",
            ));
        }
        let decode = |v: &str| -> String {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut t = PgTarget {
            host: url
                .host_str()
                .filter(|h| !h.is_empty() && *h != NO_HOST)
                .map(|h| {
                    let h = decode(h);
                    h.trim_start_matches('[').trim_end_matches(']').to_string()
                }),
            port: url.port(),
            user: Some(decode(url.username())).filter(|u| !u.is_empty()),
            dbname: Some(decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty()),
            sslmode: None,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
            service: None,
            connect_timeout: None,
            url_password: url.password().map(decode),
        };
        for (k, v) in url.query_pairs() {
            let v = v.into_owned();
            match k.as_ref() {
                "sslmode" => t.sslmode = Some(SslMode::parse(&v)?),
                "sslrootcert" => t.sslrootcert = Some(v),
                "sslcert" => t.sslcert = Some(v),
                "sslkey" => t.sslkey = Some(v),
                "service" => t.service = Some(v),
                "host" => t.host = Some(v),
                "port" => t.port = Some(parse_port(&v)?),
                "user" => t.user = Some(v),
                "dbname" => t.dbname = Some(v),
                "connect_timeout" => {
                    t.connect_timeout = Some(v.trim().parse().map_err(|_| {
                        Error::invalid(format!("connect_timeout '{v}' is not a number of seconds"))
                    })?)
                }
                "password" => t.url_password = Some(v),
                "application_name" | "options" | "target_session_attrs" => {}
                other => {
                    return Err(Error::invalid(format!(
                        "the database URL has an unknown parameter '{other}' (known: sslmode, sslrootcert, sslcert, \
                         sslkey, service, host, port, user, dbname, connect_timeout)"
                    )))
                }
            }
        }
        Ok(t)
    }

    /// The URL without its password: what is shown, logged and stored.
    pub fn display(&self) -> String {
        let mut s = String::from("postgresql://");
        if let Some(u) = &self.user {
            s.push_str(&enc(u));
            s.push('@');
        }
        match &self.host {
            Some(h) if !h.starts_with('/') => {
                if h.contains(':') {
                    s.push_str(&format!("[{h}]"));
                } else {
                    s.push_str(&enc(h));
                }
            }
            _ => {}
        }
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s.push('/');
        if let Some(d) = &self.dbname {
            s.push_str(&enc(d));
        }
        let mut q = Vec::new();
        if let Some(h) = self.host.as_ref().filter(|h| h.starts_with('/')) {
            q.push(format!("host={}", enc(h)));
        }
        if let Some(m) = self.sslmode {
            q.push(format!("sslmode={}", m.as_str()));
        }
        if let Some(v) = &self.service {
            q.push(format!("service={}", enc(v)));
        }
        if !q.is_empty() {
            s.push('?');
            s.push_str(&q.join("&"));
        }
        s
    }

    /// The target with what the URL leaves out filled in from the service
    /// file and the environment.
    pub fn resolved(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<PgTarget> {
        let mut t = self.clone();
        let service = t.service.clone().or_else(|| env("PGSERVICE"));
        if let Some(name) = service {
            let fields = find_service(&name, env)?;
            let get = |k: &str| fields.get(k).cloned();
            t.host = t.host.or_else(|| get("host"));
            if t.port.is_none() {
                t.port = get("port").map(|p| parse_port(&p)).transpose()?;
            }
            t.user = t.user.or_else(|| get("user"));
            t.dbname = t.dbname.or_else(|| get("dbname"));
            if t.sslmode.is_none() {
                t.sslmode = get("sslmode").map(|m| SslMode::parse(&m)).transpose()?;
            }
            t.sslrootcert = t.sslrootcert.or_else(|| get("sslrootcert"));
            t.sslcert = t.sslcert.or_else(|| get("sslcert"));
            t.sslkey = t.sslkey.or_else(|| get("sslkey"));
            if t.url_password.is_none() {
                t.url_password = get("password");
            }
        }
        t.host = t.host.or_else(|| env("PGHOST"));
        if t.port.is_none() {
            t.port = env("PGPORT").map(|p| parse_port(&p)).transpose()?;
        }
        t.user = t.user.or_else(|| env("PGUSER")).or_else(|| env("USER"));
        t.dbname = t
            .dbname
            .or_else(|| env("PGDATABASE"))
            .or_else(|| t.user.clone());
        if t.sslmode.is_none() {
            t.sslmode = env("PGSSLMODE").map(|m| SslMode::parse(&m)).transpose()?;
        }
        t.sslrootcert = t.sslrootcert.or_else(|| env("PGSSLROOTCERT"));
        t.sslcert = t.sslcert.or_else(|| env("PGSSLCERT"));
        t.sslkey = t.sslkey.or_else(|| env("PGSSLKEY"));
        Ok(t)
    }

    /// The keyring account of this database's password.
    /// The same target with `password` (a sign-in's), as if in the URL.
    pub fn with_password(&self, password: &str) -> PgTarget {
        PgTarget {
            url_password: Some(password.to_string()),
            ..self.clone()
        }
    }

    /// Is a password part of the target itself (the URL's)?
    pub fn has_password(&self) -> bool {
        self.url_password.is_some()
    }

    pub fn keyring_account(&self) -> String {
        format!(
            "postgres:{}@{}:{}/{}",
            self.user.as_deref().unwrap_or(""),
            self.host.as_deref().unwrap_or("localhost"),
            self.port.unwrap_or(5432),
            self.dbname.as_deref().unwrap_or("")
        )
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5F", "_")
}

fn parse_port(p: &str) -> Result<u16> {
    p.trim()
        .parse()
        .map_err(|_| Error::invalid(format!("port '{p}' is not a port number")))
}

/// One connection service from a `pg_service.conf`-style file.
pub fn parse_service_file(text: &str, name: &str) -> Option<BTreeMap<String, String>> {
    let mut current: Option<String> = None;
    let mut found: Option<BTreeMap<String, String>> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(section.trim().to_string());
            if current.as_deref() == Some(name) && found.is_none() {
                found = Some(BTreeMap::new());
            }
            continue;
        }
        if current.as_deref() == Some(name) {
            if let (Some(map), Some((k, v))) = (found.as_mut(), line.split_once('=')) {
                map.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    found
}

fn find_service(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(f) = env("PGSERVICEFILE") {
        files.push(f.into());
    } else if let Some(home) = env("HOME") {
        files.push(Path::new(&home).join(".pg_service.conf"));
    }
    if let Some(dir) = env("PGSYSCONFDIR") {
        files.push(Path::new(&dir).join("pg_service.conf"));
    } else {
        files.push("/etc/postgresql-common/pg_service.conf".into());
    }
    for f in &files {
        if let Ok(text) = std::fs::read_to_string(f) {
            if let Some(map) = parse_service_file(&text, name) {
                return Ok(map);
            }
        }
    }
    Err(Error::invalid(format!(
        "the PostgreSQL service '{name}' is in none of {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The password for (host, port, db, user) from `.pgpass` text: the first
/// line whose fields match, `*` matching anything, `\:` and `\\` escaped.
pub fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let ok = |f: &str, v: &str| f == "*" || f == v;
        if ok(&fields[0], host)
            && ok(&fields[1], &port)
            && ok(&fields[2], db)
            && ok(&fields[3], user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if let Some(last) = out.last_mut() {
                        last.push(n);
                    }
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// The password for `t` (already resolved), in libpq's order, then the keyring.
fn password_for(t: &PgTarget) -> Option<String> {
    if let Some(p) = &t.url_password {
        return Some(p.clone());
    }
    if let Some(p) = env_var("PGPASSWORD") {
        return Some(p);
    }
    let file = env_var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env_var("HOME").map(|h| Path::new(&h).join(".pgpass")));
    if let Some(file) = file {
        if let Ok(text) = read_private(&file) {
            let host = match t.host.as_deref() {
                None => "localhost",
                Some(h) if h.starts_with('/') => "localhost",
                Some(h) => h,
            };
            if let Some(p) = pgpass_lookup(
                &text,
                host,
                t.port.unwrap_or(5432),
                t.dbname.as_deref().unwrap_or(""),
                t.user.as_deref().unwrap_or(""),
            ) {
                return Some(p);
            }
        }
    }
    if let Some(p) = session_password(&t.keyring_account()) {
        return Some(p);
    }
    match keyring::Entry::new(KEYRING_SERVICE, &t.keyring_account()).and_then(|e| e.get_password())
    {
        Ok(p) => Some(p),
        Err(keyring::Error::NoEntry) => None,
        Err(e) => {
            tracing::debug!(error = %e, "no keyring for the database password");
            None
        }
    }
}

/// Passwords typed at a sign-in for this process only ("remember" off),
/// by keyring account: never written anywhere, gone when Custodian quits.
static SESSION_PASSWORDS: std::sync::Mutex<Vec<(String, String)>> =
    std::sync::Mutex::new(Vec::new());

fn session_password(account: &str) -> Option<String> {
    let held = SESSION_PASSWORDS.lock().ok()?;
    held.iter()
        .find(|(a, _)| a == account)
        .map(|(_, p)| p.clone())
}

/// Keeps `password` for `target`'s login in this process only, consulted
/// after the password file and before the keyring (a sign-in typed now wins
/// over an older keyring entry).
pub fn remember_for_session(target: &PgTarget, password: &str) -> Result<()> {
    let account = target.resolved(&env_var)?.keyring_account();
    let mut held = SESSION_PASSWORDS.lock().map_err(|_| {
        Error::internal("the session's passwords are unavailable; restart Custodian")
    })?;
    held.retain(|(a, _)| *a != account);
    held.push((account, password.to_string()));
    Ok(())
}

/// Forgets a password [`remember_for_session`] kept (a sign-in that is
/// remembered in the keyring instead, or a refused one).
pub fn forget_for_session(target: &PgTarget) {
    if let (Ok(t), Ok(mut held)) = (target.resolved(&env_var), SESSION_PASSWORDS.lock()) {
        let account = t.keyring_account();
        held.retain(|(a, _)| *a != account);
    }
}

/// Reads a password file, ignoring it (as libpq does) when group or others
/// may read it.
fn read_private(path: &Path) -> std::io::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "password file has group or world access; ignored (chmod 0600)");
            return Err(std::io::Error::other("password file readable by others"));
        }
    }
    std::fs::read_to_string(path)
}

/// Keeps a database password in the OS keyring (for `custodian db password`).
pub fn store_password(target: &PgTarget, password: &str) -> Result<()> {
    let t = target.resolved(&env_var)?;
    keyring::Entry::new(KEYRING_SERVICE, &t.keyring_account())
        .and_then(|e| e.set_password(password))
        .map_err(|e| {
            Error::new(
                ErrorCode::Keyring,
                format!("cannot keep the database password in the OS keyring: {e}"),
            )
        })
}

fn read_file(what: &str, path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::invalid(format!("cannot read the {what} {path}: {e}")))
}

fn tls_connector(t: &PgTarget, mode: SslMode) -> Result<postgres_native_tls::MakeTlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    match mode {
        SslMode::Prefer | SslMode::Require => {
            b.danger_accept_invalid_certs(true);
            b.danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyCa => {
            b.danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyFull | SslMode::Disable => {}
    }
    if let Some(root) = t.sslrootcert.as_deref().filter(|r| *r != "system") {
        let pem = read_file("root certificate (sslrootcert)", root)?;
        let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| {
            Error::invalid(format!("sslrootcert {root} is not a PEM certificate: {e}"))
        })?;
        b.add_root_certificate(cert);
        b.disable_built_in_roots(true);
    }
    match (&t.sslcert, &t.sslkey) {
        (Some(cert), Some(key)) => {
            let cert_pem = read_file("client certificate (sslcert)", cert)?;
            let key_pem = read_file("client key (sslkey)", key)?;
            // The TLS library takes an unencrypted PKCS#8 key only; libpq
            // users often hold the traditional forms (PKCS#1 RSA, SEC1 EC)
            // or an encrypted one: say how to convert rather than fail vaguely.
            if !String::from_utf8_lossy(&key_pem)
                .trim_start()
                .starts_with("-----BEGIN PRIVATE KEY-----")
            {
                return Err(Error::invalid(format!(
                    "the client key (sslkey) {key} is not an unencrypted PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----); \
                     convert it with: openssl pkcs8 -topk8 -nocrypt -in {key} -out client.pk8.key"
                )));
            }
            let id = native_tls::Identity::from_pkcs8(&cert_pem, &key_pem).map_err(|e| {
                Error::invalid(format!(
                    "the client certificate {cert} with key {key} cannot be used: {e}"
                ))
            })?;
            b.identity(id);
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::invalid(
                "a client certificate needs both sslcert and sslkey",
            ))
        }
        (None, None) => {}
    }
    let c = b
        .build()
        .map_err(|e| Error::new(ErrorCode::Network, format!("cannot set up TLS: {e}")))?;
    Ok(postgres_native_tls::MakeTlsConnector::new(c))
}

/// Connects to the database `target` names, ready for the store (search
/// path on Custodian's schema, UTC).
pub fn connect(target: &PgTarget) -> Result<Db> {
    let t = target.resolved(&env_var)?;
    let mut cfg = postgres::Config::new();
    let host = t.host.clone().unwrap_or_else(|| "localhost".into());
    cfg.host(&host);
    cfg.port(t.port.unwrap_or(5432));
    if let Some(u) = &t.user {
        cfg.user(u);
    }
    if let Some(d) = &t.dbname {
        cfg.dbname(d);
    }
    cfg.application_name("custodian");
    cfg.connect_timeout(Duration::from_secs(t.connect_timeout.unwrap_or(10)));
    let password = password_for(&t);
    if let Some(p) = &password {
        cfg.password(p);
    }
    let mode = t.sslmode.unwrap_or(SslMode::Prefer);
    let shown = t.display();
    // The synchronous client drives its own runtime: from inside another
    // (an app command reopening the store) it connects on a thread of its own.
    let client = if mode == SslMode::Disable || host.starts_with('/') {
        cfg.ssl_mode(postgres::config::SslMode::Disable);
        super::db::off_runtime(|| cfg.connect(postgres::NoTls))
    } else {
        cfg.ssl_mode(if mode == SslMode::Prefer {
            postgres::config::SslMode::Prefer
        } else {
            postgres::config::SslMode::Require
        });
        let tls = tls_connector(&t, mode)?;
        super::db::off_runtime(|| cfg.connect(tls))
    }
    .map_err(|e| connect_error(e, &shown, password.is_some()))?;
    let db = Db::postgres(client);
    // Cursors ([`Db::for_each`]) always read every row: plan for that, not
    // for the first tenth. No JIT: its compile cost (0.1–0.15 s a query at
    // L) exceeds what it saves on queries of tens to hundreds of ms; at L
    // without it the posture page took 264 ms instead of 445, facets 46
    // instead of 89 and a 100k-item campaign 2.7 s instead of 3.4.
    db.execute_batch(
        "SET search_path = custodian, pg_temp; SET TIME ZONE 'UTC'; SET cursor_tuple_fraction = 1; SET jit = off;",
    )?;
    let version: i64 = db.query_row(
        "SELECT current_setting('server_version_num')::bigint",
        [],
        |r| r.get(0),
    )?;
    if version < 150_000 {
        return Err(Error::new(
            ErrorCode::Storage,
            format!(
                "{shown}: PostgreSQL {} is too old; Custodian needs 15 or newer",
                version / 10_000
            ),
        ));
    }
    tracing::info!(location = %shown, "connected to PostgreSQL");
    Ok(db)
}

fn connect_error(e: postgres::Error, shown: &str, had_password: bool) -> Error {
    // The TLS layer's reason (an unknown CA, a name the certificate does
    // not carry) is in the error's sources, not in its own text.
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let base = super::db::pg_error(e);
    // A missing password is a configuration error of the client ("invalid
    // configuration", its cause "password missing"): a refused login to
    // the user, never "unreachable" (which would open the offline snapshot).
    let says_password =
        base.message.contains("password") || causes.iter().any(|c| c.contains("password"));
    let code = if says_password && base.code == ErrorCode::Network {
        ErrorCode::DatabaseAuth
    } else {
        base.code
    };
    let hint = match code {
        ErrorCode::DatabaseAuth if !had_password => {
            " (no password was found: put it in ~/.pgpass or PGPASSFILE, or keep it in the keyring with `custodian db password`)"
        }
        _ => "",
    };
    let cause: String = causes
        .iter()
        .filter(|c| !c.is_empty() && !base.message.contains(c.as_str()))
        .map(|c| format!(": {}", crate::sanitize::terminal(c)))
        .collect();
    Error::new(
        code,
        format!("cannot connect to {shown}: {}{cause}{hint}", base.message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_parts_and_display_without_password() {
        let t = PgTarget::parse(
            "postgres://maya:s3cr%40t@db.example.com:6543/team?sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(t.host.as_deref(), Some("db.example.com"));
        assert_eq!(t.port, Some(6543));
        assert_eq!(t.user.as_deref(), Some("maya"));
        assert_eq!(t.dbname.as_deref(), Some("team"));
        assert_eq!(t.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(t.url_password.as_deref(), Some("s3cr@t"));
        let shown = t.display();
        assert_eq!(
            shown,
            "postgresql://maya@db.example.com:6543/team?sslmode=verify-full"
        );
        assert!(!format!("{t:?}").contains("s3cr"));
        let p = PgTarget::parse("postgresql://u@/db?host=/run/pg&password=x").unwrap();
        assert_eq!(p.host.as_deref(), Some("/run/pg"));
        assert!(!p.display().contains('x') || !p.display().contains("password"));
        assert_eq!(p.display(), "postgresql://u@/db?host=%2Frun%2Fpg");
    }

    #[test]
    fn bad_urls_are_refused_with_reasons() {
        assert!(PgTarget::parse("postgres://h/db?sslmode=maybe")
            .unwrap_err()
            .message
            .contains("sslmode"));
        assert!(PgTarget::parse("postgres://h/db?colour=blue")
            .unwrap_err()
            .message
            .contains("colour"));
        assert!(PgTarget::parse("postgres://h:99999/db").is_err());
    }

    #[test]
    fn environment_fills_what_the_url_leaves_out() {
        let env = |k: &str| match k {
            "PGHOST" => Some("envhost".to_string()),
            "PGPORT" => Some("5999".to_string()),
            "PGUSER" => Some("envuser".to_string()),
            "PGSSLMODE" => Some("require".to_string()),
            _ => None,
        };
        let t = PgTarget::parse("postgres:///mydb")
            .unwrap()
            .resolved(&env)
            .unwrap();
        assert_eq!(t.host.as_deref(), Some("envhost"));
        assert_eq!(t.port, Some(5999));
        assert_eq!(t.user.as_deref(), Some("envuser"));
        assert_eq!(t.dbname.as_deref(), Some("mydb"));
        assert_eq!(t.sslmode, Some(SslMode::Require));
        // The URL wins over the environment.
        let t = PgTarget::parse("postgres://u@h:1/d")
            .unwrap()
            .resolved(&env)
            .unwrap();
        assert_eq!(
            (t.host.as_deref(), t.port, t.user.as_deref()),
            (Some("h"), Some(1), Some("u"))
        );
        // dbname defaults to the user, as in libpq.
        let t = PgTarget::parse("postgres://u@h")
            .unwrap()
            .resolved(&no_env)
            .unwrap();
        assert_eq!(t.dbname.as_deref(), Some("u"));
    }

    #[test]
    fn services_are_read_from_the_service_file() {
        let text = "# comment\n[other]\nhost=wrong\n\n[team]\nhost = pg.internal\nport=5433\ndbname=custodian\nsslmode=verify-full\n";
        let m = parse_service_file(text, "team").unwrap();
        assert_eq!(m.get("host").map(String::as_str), Some("pg.internal"));
        assert_eq!(m.get("port").map(String::as_str), Some("5433"));
        assert!(parse_service_file(text, "missing").is_none());
        let dir = std::env::temp_dir().join(format!("custodian-pgsvc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("svc.conf");
        std::fs::write(&file, text).unwrap();
        let f = file.display().to_string();
        let env = move |k: &str| {
            if k == "PGSERVICEFILE" {
                Some(f.clone())
            } else {
                None
            }
        };
        let t = PgTarget::parse("postgres://me@/?service=team")
            .unwrap()
            .resolved(&env)
            .unwrap();
        assert_eq!(t.host.as_deref(), Some("pg.internal"));
        assert_eq!(t.port, Some(5433));
        assert_eq!(t.dbname.as_deref(), Some("custodian"));
        assert_eq!(t.user.as_deref(), Some("me"));
        assert_eq!(t.sslmode, Some(SslMode::VerifyFull));
        let err = PgTarget::parse("postgres:///?service=nope")
            .unwrap()
            .resolved(&env)
            .unwrap_err();
        assert!(err.message.contains("nope"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn pgpass_matches_like_libpq() {
        let text = "# hosts\nother:5432:*:maya:wrong\ndb.example.com:5432:team:maya:first\n*:*:*:maya:fallback\nh\\:x:*:*:*:esc\\:aped\n";
        assert_eq!(
            pgpass_lookup(text, "db.example.com", 5432, "team", "maya").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup(text, "elsewhere", 6000, "x", "maya").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            pgpass_lookup(text, "h:x", 1, "d", "u").as_deref(),
            Some("esc:aped")
        );
        assert_eq!(
            pgpass_lookup(text, "db.example.com", 5432, "team", "nobody"),
            None
        );
    }
}
