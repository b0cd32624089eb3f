//! Where the desktop app connects, and who it is there (no SQL; the store
//! answers the questions).
//!
//! - [`ConnectionSettings`]: solo (the local cache) or a team workspace
//!   (host, port, database, login, TLS mode, CA file), kept as a small JSON
//!   file in the platform config directory (`connection.json`, written
//!   atomically: a temporary file, then a rename). The file never holds a
//!   password: the password goes to the OS keyring under the same entry as
//!   `custodian db password` writes (service `org.custodian.desktop`,
//!   account `postgres:LOGIN@HOST:PORT/DB`), so the CLI and the app share it.
//! - `$CUSTODIAN_DB`, when set, wins over the file ([`app_location`]); the
//!   Settings view shows it read-only.
//! - [`WhoAmI`]: the acting person, their login and roles in a workspace;
//!   in solo mode the person chosen with "Who are you?" (claimed, every
//!   role).
//! - The offline snapshot: [`refresh_snapshot`] reads the workspace, as
//!   the member's login, into a local read-only copy
//!   ([`snapshot_path`]); `ops::open_or_snapshot` opens that copy when the
//!   workspace cannot be reached.
//! - [`test_connection`]: opens the workspace once with the given password
//!   and says who that login is, or why it cannot connect (the error's
//!   code: `database_auth`, `network` for TLS and unreachable servers,
//!   `forbidden` for a login that is not an active member).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};
use crate::sanitize::terminal;
use crate::store::pg::PgTarget;
use crate::store::snapshot::{SnapshotInfo, SnapshotOf};
use crate::store::{Engine, Location, Store};
use crate::views::PersonRef;
use crate::workspace::Role;

/// The settings file's name in the config directory.
pub const SETTINGS_FILE: &str = "connection.json";

/// Solo (the local cache, one person at the desk) or a team workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionMode {
    Solo,
    Workspace,
}

/// TLS to the workspace, as libpq names the modes. `disable` is accepted
/// for loopback hosts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    VerifyFull,
    VerifyCa,
    Require,
    Disable,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::VerifyFull => "verify-full",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::Require => "require",
            TlsMode::Disable => "disable",
        }
    }
}

/// Where the app connects. The workspace fields are kept in solo mode too
/// (switching back does not lose them) and checked only in workspace mode.
/// No password: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    pub mode: ConnectionMode,
    pub host: String,
    /// A number so that an out-of-range port gets a readable refusal.
    pub port: u32,
    pub database: String,
    pub login: String,
    pub tls: TlsMode,
    /// A PEM file of the CA that signed the server's certificate (else the
    /// system's roots).
    #[serde(default)]
    pub ca_file: Option<String>,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            mode: ConnectionMode::Solo,
            host: String::new(),
            port: 5432,
            database: "custodian".into(),
            login: String::new(),
            tls: TlsMode::VerifyFull,
            ca_file: None,
        }
    }
}

const HOST_MAX: usize = 253;
const IDENT_MAX: usize = 63;
const PATH_MAX: usize = 4096;

/// True for `localhost` and loopback addresses (`127.0.0.0/8`, `::1`).
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_ident(what: &str, v: &str, extra: &[char]) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= IDENT_MAX
        && v.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c));
    if ok {
        return Ok(());
    }
    let allowed: String = extra.iter().map(|c| format!(" {c}")).collect();
    Err(Error::invalid(if v.is_empty() {
        format!("{what}: enter the PostgreSQL {what} name")
    } else {
        format!(
            "{what}: {:?} is not a PostgreSQL name Custodian accepts (1-{IDENT_MAX} characters: a letter or _ first, then letters, digits, _{allowed})",
            terminal(&v.chars().take(80).collect::<String>())
        )
    }))
}

impl ConnectionSettings {
    /// Checks the settings; in workspace mode every connection field. The
    /// message starts with the field's name (`host:`, `port:`, ...).
    pub fn validate(&self) -> Result<()> {
        if self.host.len() > HOST_MAX {
            return Err(Error::invalid(format!(
                "host: longer than {HOST_MAX} characters"
            )));
        }
        if self.database.len() > IDENT_MAX * 4 || self.login.len() > IDENT_MAX * 4 {
            return Err(Error::invalid(format!(
                "database and login: at most {IDENT_MAX} characters"
            )));
        }
        if let Some(ca) = &self.ca_file {
            if ca.len() > PATH_MAX || ca.contains('\0') {
                return Err(Error::invalid(format!(
                    "ca_file: not a usable path (at most {PATH_MAX} characters)"
                )));
            }
        }
        if self.mode == ConnectionMode::Solo {
            return Ok(());
        }
        let host = self.host.trim();
        if host.is_empty() {
            return Err(Error::invalid(
                "host: enter the PostgreSQL server's name or address",
            ));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let host_ok = bare.parse::<std::net::Ipv6Addr>().is_ok()
            || bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
        if !host_ok {
            return Err(Error::invalid(format!(
                "host: {:?} is not a host name or IP address (a Unix socket or a service: set {} instead)",
                terminal(&bare.chars().take(80).collect::<String>()),
                crate::paths::DB_ENV
            )));
        }
        if self.port == 0 || self.port > 65535 {
            return Err(Error::invalid(format!(
                "port: {} is not a port number (1 to 65535)",
                self.port
            )));
        }
        check_ident("database", &self.database, &['-', '.'])?;
        check_ident("login", &self.login, &['-', '.', '@'])?;
        if self.tls == TlsMode::Disable && !is_loopback(host) {
            return Err(Error::invalid(format!(
                "tls: TLS can be turned off only for this computer (localhost, 127.0.0.1, ::1), not for {}: \
                 the password and every decision would cross the network in clear",
                terminal(bare)
            )));
        }
        if let Some(ca) = self.ca_file.as_deref() {
            let p = Path::new(ca);
            if ca.trim().is_empty() || !p.is_absolute() {
                return Err(Error::invalid(
                    "ca_file: give the CA certificate's full path, or leave it empty for the system's roots",
                ));
            }
            if !p.is_file() {
                return Err(Error::invalid(format!(
                    "ca_file: {} is not a file",
                    terminal(ca)
                )));
            }
        }
        Ok(())
    }

    /// The workspace's URL, with `password` when given (it never reaches
    /// [`PgTarget::display`], which is what is shown and logged).
    fn url(&self, password: Option<&str>) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let host = self.host.trim();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let host = if bare.contains(':') {
            format!("[{bare}]")
        } else {
            bare.to_string()
        };
        let auth = match password {
            Some(p) => format!("{}:{}@", enc(&self.login), enc(p)),
            None => format!("{}@", enc(&self.login)),
        };
        let mut q = format!("sslmode={}", self.tls.as_str());
        if let Some(ca) = self.ca_file.as_deref().filter(|c| !c.trim().is_empty()) {
            q.push_str(&format!("&sslrootcert={}", enc(ca)));
        }
        format!(
            "postgresql://{auth}{host}:{}/{}?{q}",
            self.port,
            enc(&self.database)
        )
    }

    /// The workspace as a PostgreSQL target (validated; workspace mode only).
    pub fn target(&self, password: Option<&str>) -> Result<PgTarget> {
        if self.mode != ConnectionMode::Workspace {
            return Err(Error::invalid(
                "choose Team workspace to connect to a PostgreSQL server",
            ));
        }
        self.validate()?;
        PgTarget::parse(&self.url(password))
    }

    /// The keyring account of this workspace's password: the one
    /// `custodian db password --db postgresql://LOGIN@HOST:PORT/DB` writes.
    pub fn keyring_account(&self) -> Result<String> {
        Ok(self.target(None)?.keyring_account())
    }
}

/// The settings file: `connection.json` in the platform config directory
/// (`~/.config/custodian/` on Linux).
pub fn settings_file() -> Result<PathBuf> {
    let dirs =
        directories::ProjectDirs::from("org", "Custodian", "custodian").ok_or_else(|| {
            Error::new(
                ErrorCode::Storage,
                format!(
                    "no home directory found for the settings; set {}",
                    crate::paths::DB_ENV
                ),
            )
        })?;
    Ok(dirs.config_dir().join(SETTINGS_FILE))
}

/// Reads the settings at `path`; a missing file is the default (solo).
pub fn load_from(path: &Path) -> Result<ConnectionSettings> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ConnectionSettings::default())
        }
        Err(e) => {
            return Err(Error::new(
                ErrorCode::Storage,
                format!("cannot read the settings {}: {e}", path.display()),
            ))
        }
    };
    if bytes.len() > 64 * 1024 {
        return Err(Error::invalid(format!(
            "the settings {} are larger than 64 KiB; save them again from Settings",
            path.display()
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid(format!(
            "the settings {} cannot be read ({}); save them again from Settings",
            path.display(),
            terminal(&e.to_string())
        ))
    })
}

/// Writes `settings` to `path` atomically (a temporary file in the same
/// directory, flushed, then renamed over it). Validates first.
pub fn save_to(path: &Path, settings: &ConnectionSettings) -> Result<()> {
    settings.validate()?;
    let dir = path
        .parent()
        .ok_or_else(|| Error::internal("the settings file has no directory"))?;
    let io = |what: &str, e: std::io::Error| {
        Error::new(
            ErrorCode::Storage,
            format!("cannot save the settings in {}: {what}: {e}", dir.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| io("create the directory", e))?;
    let mut json = serde_json::to_vec_pretty(settings)?;
    json.push(b'\n');
    let tmp = dir.join(format!(".{SETTINGS_FILE}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    Ok(())
}

/// Saves `settings` at `path`, then `password` (when given, workspace mode
/// only) through `keep` (the OS keyring in the app). The file is written
/// first and never holds the password.
pub fn save_with(
    path: &Path,
    settings: &ConnectionSettings,
    password: Option<&str>,
    keep: &dyn Fn(&PgTarget, &str) -> Result<()>,
) -> Result<()> {
    let password = password.filter(|p| !p.is_empty());
    if password.is_some() && settings.mode != ConnectionMode::Workspace {
        return Err(Error::invalid(
            "password: a password is kept only for a team workspace",
        ));
    }
    save_to(path, settings)?;
    if let Some(p) = password {
        keep(&settings.target(None)?, p).map_err(|e| {
            Error::new(
                e.code,
                format!(
                    "the settings are saved, but the password is not: {}",
                    e.message
                ),
            )
        })?;
    }
    Ok(())
}

/// What the Settings view shows: the saved settings, whether
/// `$CUSTODIAN_DB` overrides them, and whether a password is in the keyring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectionSettingsView {
    pub settings: ConnectionSettings,
    /// Where the settings are kept.
    pub file: Option<String>,
    /// `$CUSTODIAN_DB` (without any password) when it is set: it wins.
    pub env_override: Option<String>,
    /// A password for the workspace's login is in the OS keyring.
    pub password_saved: bool,
}

/// `$CUSTODIAN_DB`, shown without a password, when set.
pub fn env_override() -> Option<String> {
    match std::env::var(crate::paths::DB_ENV) {
        Ok(v) if !v.trim().is_empty() => Some(match Location::parse(&v) {
            Ok(l) => l.display(),
            Err(e) => format!("(not a usable location: {})", e.message),
        }),
        _ => None,
    }
}

/// Whether the keyring holds a password for the workspace in `settings`.
pub fn password_saved(settings: &ConnectionSettings) -> bool {
    let Ok(account) = settings.keyring_account() else {
        return false;
    };
    match keyring::Entry::new(crate::store::pg::KEYRING_SERVICE, &account)
        .and_then(|e| e.get_password())
    {
        Ok(p) => !p.is_empty(),
        Err(e) => {
            if !matches!(e, keyring::Error::NoEntry) {
                tracing::debug!(error = %e, "no keyring for the workspace password");
            }
            false
        }
    }
}

/// The settings view for the settings file at `path`.
pub fn view_at(path: &Path) -> Result<ConnectionSettingsView> {
    let settings = load_from(path)?;
    let password_saved = settings.mode == ConnectionMode::Workspace && password_saved(&settings);
    Ok(ConnectionSettingsView {
        settings,
        file: Some(path.display().to_string()),
        env_override: env_override(),
        password_saved,
    })
}

/// Where the app opens its store: `$CUSTODIAN_DB` when set, else the saved
/// settings (a workspace), else the local cache.
pub fn app_location() -> Result<Location> {
    let env = std::env::var(crate::paths::DB_ENV).ok();
    location_for(env.as_deref(), &settings_file()?)
}

/// [`app_location`] for a given `$CUSTODIAN_DB` value and settings file:
/// the variable, when set, wins (the settings file is not even read).
pub fn location_for(env_db: Option<&str>, settings: &Path) -> Result<Location> {
    if let Some(v) = env_db.filter(|v| !v.trim().is_empty()) {
        return Location::parse(v);
    }
    match load_from(settings)? {
        s if s.mode == ConnectionMode::Workspace => Ok(Location::Postgres(s.target(None)?)),
        _ => Ok(Location::File(crate::paths::default_db_path()?)),
    }
}

/// A workspace role, as the UI receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RoleView {
    Admin,
    CampaignOwner,
    Reviewer,
    Manager,
    Auditor,
}

impl From<Role> for RoleView {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleView::Admin,
            Role::CampaignOwner => RoleView::CampaignOwner,
            Role::Reviewer => RoleView::Reviewer,
            Role::Manager => RoleView::Manager,
            Role::Auditor => RoleView::Auditor,
        }
    }
}

impl From<RoleView> for Role {
    fn from(r: RoleView) -> Self {
        match r {
            RoleView::Admin => Role::Admin,
            RoleView::CampaignOwner => Role::CampaignOwner,
            RoleView::Reviewer => Role::Reviewer,
            RoleView::Manager => Role::Manager,
            RoleView::Auditor => Role::Auditor,
        }
    }
}

/// Who is using the app, and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WhoAmI {
    /// `workspace` when the store is a team workspace, else `solo`.
    pub mode: ConnectionMode,
    pub engine: Engine,
    /// The store's location, never with a password.
    pub location: String,
    /// The PostgreSQL login (PostgreSQL stores only).
    pub login: Option<String>,
    /// The acting person: the member behind the login, or (solo) the
    /// person chosen with "Who are you?"; null when nobody is.
    pub person: Option<PersonRef>,
    /// The member's roles; in solo mode every role.
    pub roles: Vec<RoleView>,
    /// Solo: the person is claimed at the desk, not authenticated.
    pub claimed: bool,
    /// Solo: the operating-system account making the claim.
    pub os_account: Option<String>,
    /// The store answered.
    pub reachable: bool,
    /// Set when the workspace was unreachable and this is its offline
    /// snapshot, read-only: when it was taken and of what.
    pub snapshot: Option<SnapshotInfo>,
}

fn os_account() -> Option<String> {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Who is acting in `store`. A store that stopped answering (network) gives
/// `reachable: false` rather than an error.
pub fn who_am_i(store: &Store) -> Result<WhoAmI> {
    let mut who = WhoAmI {
        mode: ConnectionMode::Solo,
        engine: store.engine(),
        location: store.location().to_string(),
        login: None,
        person: None,
        roles: Vec::new(),
        claimed: true,
        os_account: None,
        reachable: true,
        snapshot: None,
    };
    if let Some(snap) = store.snapshot() {
        // What the workspace said when the snapshot was taken; the
        // workspace itself did not answer.
        who.mode = ConnectionMode::Workspace;
        who.engine = Engine::Postgres;
        who.location = snap.of.clone();
        who.login = Some(snap.login.clone());
        who.claimed = false;
        who.reachable = false;
        if let Some(id) = snap.person_id {
            who.person = store.person_ref(id)?;
        }
        let mut roles: Vec<RoleView> = snap
            .roles
            .iter()
            .filter_map(|r| Role::parse(r).ok().map(RoleView::from))
            .collect();
        roles.sort();
        roles.dedup();
        who.roles = roles;
        who.snapshot = Some(snap.clone());
        return Ok(who);
    }
    match fill(store, &mut who) {
        Ok(()) => Ok(who),
        Err(e) if e.code == ErrorCode::Network => {
            who.reachable = false;
            Ok(who)
        }
        Err(e) => Err(e),
    }
}

fn fill(store: &Store, who: &mut WhoAmI) -> Result<()> {
    if store.engine() == Engine::Postgres {
        who.login = Some(store.workspace_session_login()?);
    }
    if store.is_workspace()? {
        who.mode = ConnectionMode::Workspace;
        who.claimed = false;
        if let Some(id) = store.workspace_current_person()? {
            who.person = store.person_ref(id)?;
        }
        let login = who.login.clone().unwrap_or_default();
        let mut roles: Vec<RoleView> = store
            .workspace_members()?
            .into_iter()
            .filter(|m| m.login == login && m.removed_at.is_none())
            .flat_map(|m| m.roles)
            .filter_map(|r| Role::parse(&r).ok().map(RoleView::from))
            .collect();
        roles.sort();
        roles.dedup();
        // A removed or departed member acts as nobody and holds nothing.
        if who.person.is_none() {
            roles.clear();
        }
        who.roles = roles;
    } else {
        who.os_account = os_account();
        who.roles = Role::ALL.into_iter().map(RoleView::from).collect();
        if let Some(id) = store.acting_person()? {
            who.person = store.person_ref(id)?;
        }
    }
    Ok(())
}

/// Says what kind of failure a connection error is, in words, before its
/// own message; the code is kept.
fn explain(e: Error, login: &str, shown: &str) -> Error {
    let login = terminal(login).into_owned();
    // The location itself (`?sslmode=…`) says nothing about what failed.
    let lower = e.message.replace(shown, "").to_ascii_lowercase();
    let kind = match e.code {
        ErrorCode::DatabaseAuth => format!("the server refused the login {login}"),
        ErrorCode::Network
            if ["tls", "ssl", "certificate", "handshake"]
                .iter()
                .any(|w| lower.contains(w)) =>
        {
            "TLS failure".to_string()
        }
        ErrorCode::Network => "the workspace is unreachable".to_string(),
        ErrorCode::Forbidden => {
            format!("the login {login} may not use this database (not a workspace member?)")
        }
        _ => return e,
    };
    Error::new(e.code, format!("{kind}: {}", e.message))
}

/// Connects once to the workspace in `settings` as its login, with
/// `password` (else the usual sources: PGPASSWORD, the password file, the
/// keyring), and says who that is. Refuses a database that is not a
/// workspace and a login that is not an active member (`forbidden`).
pub fn test_connection(settings: &ConnectionSettings, password: Option<&str>) -> Result<WhoAmI> {
    let target = settings.target(password.filter(|p| !p.is_empty()))?;
    member_at(&target, &settings.login)
}

/// Connects once to the workspace at `target` as `login` and says who that
/// is, refusing what is not a workspace and a login that is no member.
fn member_at(target: &PgTarget, login: &str) -> Result<WhoAmI> {
    let shown = target.display();
    let store = Store::open_postgres(target).map_err(|e| explain(e, login, &shown))?;
    let who = who_am_i(&store).map_err(|e| explain(e, login, &shown))?;
    if !who.reachable {
        return Err(Error::new(
            ErrorCode::Network,
            format!("the workspace is unreachable: {shown} stopped answering"),
        ));
    }
    if who.mode != ConnectionMode::Workspace {
        return Err(Error::invalid(format!(
            "{shown} is a Custodian database but not a team workspace: an admin creates one with `custodian workspace init`"
        )));
    }
    if who.person.is_none() {
        return Err(Error::new(
            ErrorCode::Forbidden,
            format!(
                "connected to {shown}, but the login {} is not an active workspace member (removed, departed, or never added): ask a workspace admin",
                terminal(login)
            ),
        ));
    }
    Ok(who)
}

/// The longest password a sign-in takes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Where the app signs in when it opens a team workspace: the login and the
/// server, for the sign-in form; `None` for a local cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SignInTarget {
    /// The PostgreSQL login (the workspace member).
    pub login: String,
    /// `host:port/database`, as people read it.
    pub address: String,
    /// Whether the location itself carries a password (a URL's): a sign-in
    /// cannot replace it.
    pub password_in_location: bool,
}

/// [`SignInTarget`] of `location`.
pub fn sign_in_target_of(location: &Location) -> Option<SignInTarget> {
    let Location::Postgres(t) = location else {
        return None;
    };
    Some(SignInTarget {
        login: t.user.clone().unwrap_or_default(),
        address: format!(
            "{}:{}/{}",
            t.host.as_deref().unwrap_or("localhost"),
            t.port.unwrap_or(5432),
            t.dbname.as_deref().unwrap_or("")
        ),
        password_in_location: t.has_password(),
    })
}

/// Signs in to the workspace at `location` with a typed password: checks
/// it by connecting as a member first (a refused password is kept nowhere),
/// then keeps it in the OS keyring (`remember`) or for this process only,
/// so the next open of the store uses it. A local cache has no sign-in.
pub fn sign_in(location: &Location, password: &str, remember: bool) -> Result<WhoAmI> {
    let Location::Postgres(target) = location else {
        return Err(Error::invalid(
            "this is a local cache: it has no sign-in (a team workspace is chosen in Settings)",
        ));
    };
    if password.is_empty() {
        return Err(Error::invalid("type the password of your workspace login"));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::invalid(format!(
            "the password is longer than {MAX_PASSWORD_LEN} characters"
        )));
    }
    if target.has_password() {
        return Err(Error::invalid(
            "the location in CUSTODIAN_DB carries its own password: change it there",
        ));
    }
    let login = target.user.clone().unwrap_or_default();
    let who = member_at(&target.with_password(password), &login)?;
    if remember {
        crate::store::pg::store_password(target, password)?;
        crate::store::pg::forget_for_session(target);
    } else {
        crate::store::pg::remember_for_session(target, password)?;
    }
    Ok(who)
}

/// Where the offline snapshot of the workspace at `location` lives (one
/// per workspace and login), in the platform data directory; `None` for a
/// local cache.
pub fn snapshot_path(location: &Location) -> Result<Option<PathBuf>> {
    snapshot_path_in(&crate::paths::data_dir()?, location)
}

/// [`snapshot_path`] under the data directory `dir`.
pub fn snapshot_path_in(dir: &Path, location: &Location) -> Result<Option<PathBuf>> {
    let Location::Postgres(t) = location else {
        return Ok(None);
    };
    let name = format!(
        "{}\0{}\0{}\0{}",
        t.host.as_deref().unwrap_or(""),
        t.port.unwrap_or(5432),
        t.dbname.as_deref().unwrap_or(""),
        t.user.as_deref().unwrap_or("")
    );
    let digest = Sha256::digest(name.as_bytes());
    let id = crate::hex::encode(&digest[..8]);
    Ok(Some(
        dir.join("snapshots").join(format!("workspace-{id}.db")),
    ))
}

/// Reads the workspace at `location` again, as its login, into its offline
/// snapshot (see [`crate::store::snapshot`]): on its own connection, so
/// the app's store stays free while it runs.
pub fn refresh_snapshot(
    location: &Location,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<SnapshotInfo> {
    refresh_snapshot_in(&crate::paths::data_dir()?, location, now)
}

/// [`refresh_snapshot`] under the data directory `dir`.
pub fn refresh_snapshot_in(
    dir: &Path,
    location: &Location,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<SnapshotInfo> {
    let Some(dest) = snapshot_path_in(dir, location)? else {
        return Err(Error::invalid(
            "only a team workspace has an offline snapshot",
        ));
    };
    let store = Store::open_location(location)?;
    let who = who_am_i(&store)?;
    if !who.reachable {
        return Err(Error::new(
            ErrorCode::Network,
            format!(
                "the workspace is unreachable: {} stopped answering",
                store.location()
            ),
        ));
    }
    let of = SnapshotOf {
        login: who.login.unwrap_or_default(),
        person_id: who.person.map(|p| p.id),
        roles: who
            .roles
            .iter()
            .map(|r| Role::from(*r).as_str().to_string())
            .collect(),
    };
    crate::store::snapshot::take(&store, of, &dest, now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn workspace() -> ConnectionSettings {
        ConnectionSettings {
            mode: ConnectionMode::Workspace,
            host: "pg.example.com".into(),
            port: 5432,
            database: "custodian".into(),
            login: "maya.weber".into(),
            tls: TlsMode::VerifyFull,
            ca_file: None,
        }
    }

    fn refused(s: &ConnectionSettings, field: &str) {
        let e = s.validate().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{s:?}");
        assert!(e.message.starts_with(field), "{field}: {}", e.message);
    }

    #[test]
    fn connection_settings_are_validated_field_by_field() {
        assert!(workspace().validate().is_ok());
        refused(
            &ConnectionSettings {
                host: " ".into(),
                ..workspace()
            },
            "host:",
        );
        refused(
            &ConnectionSettings {
                host: "pg/../x".into(),
                ..workspace()
            },
            "host:",
        );
        refused(
            &ConnectionSettings {
                host: "h".repeat(254),
                ..workspace()
            },
            "host:",
        );
        refused(
            &ConnectionSettings {
                port: 0,
                ..workspace()
            },
            "port:",
        );
        refused(
            &ConnectionSettings {
                port: 65536,
                ..workspace()
            },
            "port:",
        );
        assert!(ConnectionSettings {
            port: 65535,
            ..workspace()
        }
        .validate()
        .is_ok());
        refused(
            &ConnectionSettings {
                database: "".into(),
                ..workspace()
            },
            "database:",
        );
        refused(
            &ConnectionSettings {
                database: "team\"; DROP".into(),
                ..workspace()
            },
            "database:",
        );
        refused(
            &ConnectionSettings {
                database: "d".repeat(64),
                ..workspace()
            },
            "database:",
        );
        assert!(ConnectionSettings {
            database: "d".repeat(63),
            ..workspace()
        }
        .validate()
        .is_ok());
        refused(
            &ConnectionSettings {
                login: "1maya".into(),
                ..workspace()
            },
            "login:",
        );
        refused(
            &ConnectionSettings {
                login: "maya weber".into(),
                ..workspace()
            },
            "login:",
        );
        assert!(ConnectionSettings {
            login: "maya@corp.example".into(),
            ..workspace()
        }
        .validate()
        .is_ok());
        refused(
            &ConnectionSettings {
                ca_file: Some("relative.pem".into()),
                ..workspace()
            },
            "ca_file:",
        );
        refused(
            &ConnectionSettings {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..workspace()
            },
            "ca_file:",
        );
        // Solo mode keeps half-filled workspace fields without complaint.
        assert!(ConnectionSettings {
            mode: ConnectionMode::Solo,
            host: "".into(),
            port: 0,
            ..workspace()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn tls_is_turned_off_only_for_loopback_hosts() {
        let off = |host: &str| ConnectionSettings {
            host: host.into(),
            tls: TlsMode::Disable,
            ..workspace()
        };
        for h in [
            "localhost",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(off(h).validate().is_ok(), "{h}");
        }
        for h in [
            "pg.example.com",
            "10.0.0.5",
            "localhost.evil.example",
            "::2",
        ] {
            refused(&off(h), "tls:");
        }
        for tls in [TlsMode::Require, TlsMode::VerifyCa, TlsMode::VerifyFull] {
            assert!(ConnectionSettings { tls, ..workspace() }.validate().is_ok());
        }
    }

    #[test]
    fn the_keyring_entry_is_the_one_the_cli_writes() {
        let s = workspace();
        let cli = PgTarget::parse("postgresql://maya.weber@pg.example.com:5432/custodian").unwrap();
        assert_eq!(s.keyring_account().unwrap(), cli.keyring_account());
        assert_eq!(
            s.keyring_account().unwrap(),
            "postgres:maya.weber@pg.example.com:5432/custodian"
        );
        let t = s.target(Some("s3cr:t@/x")).unwrap();
        assert_eq!(t.sslmode, Some(crate::store::pg::SslMode::VerifyFull));
        assert!(!t.display().contains("s3cr"), "{}", t.display());
        assert!(!format!("{t:?}").contains("s3cr"));
    }

    #[test]
    fn settings_round_trip_through_the_file_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(SETTINGS_FILE);
        assert_eq!(load_from(&path).unwrap(), ConnectionSettings::default());
        let s = workspace();
        let kept = RefCell::new(Vec::new());
        let keep = |t: &PgTarget, p: &str| {
            kept.borrow_mut().push((t.keyring_account(), p.to_string()));
            Ok(())
        };
        save_with(&path, &s, Some("hunter2-Secret!"), &keep).unwrap();
        assert_eq!(load_from(&path).unwrap(), s);
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.to_ascii_lowercase().contains("password"), "{text}");
        assert!(text.contains("\"login\": \"maya.weber\""), "{text}");
        assert_eq!(
            kept.into_inner(),
            vec![(
                "postgres:maya.weber@pg.example.com:5432/custodian".to_string(),
                "hunter2-Secret!".to_string()
            )]
        );
        // Atomic: only the file itself is left in the directory.
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![SETTINGS_FILE.to_string()]);
    }

    #[test]
    fn refused_settings_leave_the_saved_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        save_to(&path, &workspace()).unwrap();
        let before = std::fs::read(&path).unwrap();
        let never =
            |_: &PgTarget, _: &str| -> Result<()> { panic!("the keyring must not be asked") };
        let bad = ConnectionSettings {
            port: 70000,
            ..workspace()
        };
        assert_eq!(
            save_with(&path, &bad, Some("pw"), &never).unwrap_err().code,
            ErrorCode::InvalidInput
        );
        let solo = ConnectionSettings {
            mode: ConnectionMode::Solo,
            ..workspace()
        };
        assert!(save_with(&path, &solo, Some("pw"), &never)
            .unwrap_err()
            .message
            .starts_with("password:"));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn the_environment_wins_over_the_saved_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        // No file: the local cache.
        assert!(matches!(
            location_for(None, &path).unwrap(),
            Location::File(_)
        ));
        save_to(&path, &workspace()).unwrap();
        let ws = location_for(None, &path).unwrap();
        assert_eq!(
            ws.display(),
            "postgresql://maya.weber@pg.example.com:5432/custodian?sslmode=verify-full"
        );
        let env = location_for(Some("/tmp/elsewhere.db"), &path).unwrap();
        assert_eq!(env, Location::File(PathBuf::from("/tmp/elsewhere.db")));
        assert!(matches!(
            location_for(Some("  "), &path).unwrap(),
            Location::Postgres(_)
        ));
        // Solo settings: the cache again.
        save_to(
            &path,
            &ConnectionSettings {
                mode: ConnectionMode::Solo,
                ..workspace()
            },
        )
        .unwrap();
        assert!(matches!(
            location_for(None, &path).unwrap(),
            Location::File(_)
        ));
        // A broken file is an error, unless the variable is set.
        std::fs::write(&path, b"{").unwrap();
        assert_eq!(
            location_for(None, &path).unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert!(location_for(Some("/tmp/x.db"), &path).is_ok());
    }

    #[test]
    fn a_file_with_a_password_or_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        let mut v = serde_json::to_value(workspace()).unwrap();
        v["password"] = "leaked".into();
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let e = load_from(&path).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(!e.message.contains("leaked"), "{}", e.message);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(load_from(&path).unwrap_err().code, ErrorCode::InvalidInput);
    }
}
