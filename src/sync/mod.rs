//! The sync engine: fetch a source into memory (staging), then apply it to the
//! cache in one transaction (`Store::apply_fetch`).
//!
//! A run is three steps so that a host never holds the cache while the
//! network is slow: [`prepare`] (store: record the run, read the config and
//! cursor), [`Prepared::fetch`] (network only), [`Fetch::apply`] (store).
//! A failed, cancelled or interrupted fetch never touches the snapshot.
//! `ops::run_sync` is the one runner that drives the three steps for every
//! host (CLI, desktop, headless passes); this module imports `store` and
//! `writeback` (rules), never `ops`.

pub mod aws;
pub mod aws_auth;
pub mod aws_org;
pub mod aws_policy;
pub mod csv_import;
pub mod entra;
pub mod github;
pub mod graph_batch;
pub mod http;
pub mod jwt;
pub mod ldap;
pub mod okta;
/// What a source fetched lives below both the store and the connectors
/// ([`crate::records`]); re-exported here for the connectors' paths.
pub use crate::records;
pub mod scim;
pub mod secrets;
pub mod settings;
pub mod transport;
pub mod writeback;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorCode, Result};
use crate::model::SourceId;
use crate::store::sync::{ApplyReport, RunId, SourceView};
use crate::store::Store;
use http::{Cancel, HttpClient, HttpPolicy};
use records::Fetched;
use secrets::SecretStore;

/// Progress of a running sync, streamed to the UI and the CLI.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SyncProgress {
    pub source_id: i64,
    /// connecting | people | identities | groups | applying | done
    pub phase: String,
    pub pages: u64,
    pub items: u64,
    /// Total items when the source says so (SCIM `totalResults`).
    pub total: Option<u64>,
}

/// Receives progress reports.
pub type ProgressFn = Arc<dyn Fn(&SyncProgress) + Send + Sync>;

/// What a source needs while fetching.
pub struct SyncContext {
    pub source: SourceView,
    pub http: HttpClient,
    pub secret: Option<String>,
    pub progress: ProgressFn,
    /// The cursor of the last successful incremental-capable run.
    pub cursor: Option<String>,
}

impl SyncContext {
    pub fn report(&self, phase: &str, pages: u64, items: u64, total: Option<u64>) {
        (self.progress)(&SyncProgress {
            source_id: self.source.id,
            phase: phase.into(),
            pages,
            items,
            total,
        });
    }

    /// A string setting, required.
    pub fn setting(&self, key: &str) -> Result<String> {
        self.source
            .settings
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "source '{}' has no '{key}' setting",
                    self.source.name
                ))
            })
    }

    pub fn secret(&self) -> Result<&str> {
        self.secret.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::SecretMissing,
                format!("no secret is stored for source '{}'; add it in Sources (it is kept in the OS keyring), or pass --secrets-from on a server", self.source.name),
            )
        })
    }
}

/// An identity source.
pub trait Source {
    /// Fetches everything, or only the changes since `ctx.cursor` when the
    /// source supports it. Errors with `CursorExpired` when the cursor is too
    /// old; the engine then resyncs in full.
    fn fetch(&self, ctx: &SyncContext)
        -> impl std::future::Future<Output = Result<Fetched>> + Send;
}

/// The kinds of source this build knows.
pub const SOURCE_KINDS: &[&str] = &["scim", "csv", "entra", "okta", "aws", "ldap", "github"];

/// Does the kind keep a secret in the keyring?
pub fn kind_needs_secret(kind: &str) -> bool {
    matches!(kind, "scim" | "entra" | "okta" | "aws" | "ldap" | "github")
}

/// Does this source read a secret? Its kind keeps one, unless it signs in
/// with a key file instead (`private_key_file`, GitHub App or Okta service
/// app): such a source runs headless with no secret provisioned.
pub fn source_needs_secret(kind: &str, settings: &serde_json::Value) -> bool {
    let key_file = matches!(kind, "github" | "okta")
        && settings
            .get("private_key_file")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|f| !f.trim().is_empty());
    // An AWS source reads one only to sign in with an access key.
    let keyless_aws = kind == "aws" && !aws_auth::needs_secret(settings);
    // An LDAP source reads none to bind with a Kerberos ticket.
    let krb = keyless_ldap(kind, settings);
    kind_needs_secret(kind) && !key_file && !keyless_aws && !keyless_entra(kind, settings) && !krb
}

/// An LDAP source that binds with the user's own Kerberos ticket reads no secret.
fn keyless_ldap(kind: &str, settings: &serde_json::Value) -> bool {
    kind == "ldap" && !ldap::needs_secret(settings)
}

/// An Entra source with a certificate key file or a federated token reads no secret.
fn keyless_entra(kind: &str, settings: &serde_json::Value) -> bool {
    kind == "entra" && !entra::auth::needs_secret(settings)
}

/// How a source signs in, as `source show` says it: the mode, and the
/// identity Custodian signs in as (never a secret: settings only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignIn {
    pub mode: String,
    pub identity: String,
}

/// The sign-in of a source of `kind` with these settings; `None` for a
/// kind that signs in nowhere (a registry file).
pub fn sign_in(kind: &str, settings: &serde_json::Value) -> Option<SignIn> {
    let (mode, identity) = match kind {
        "github" => github::sign_in(settings),
        "okta" => okta::sign_in(settings),
        "entra" => entra::auth::sign_in(settings),
        "scim" => (
            "bearer token (the secret)".into(),
            "whoever the token was issued to".into(),
        ),
        "aws" => aws_auth::sign_in(settings),
        "ldap" => ldap::sign_in(settings),
        _ => return None,
    };
    Some(SignIn { mode, identity })
}

/// Fetches with the connector of the source's kind, after the transport
/// rules ([`transport::check_source`]): nothing is sent to a source whose
/// stored settings would carry its secret unencrypted.
pub async fn fetch_kind(ctx: &SyncContext) -> Result<Fetched> {
    transport::check_source(&ctx.source)?;
    match ctx.source.kind.as_str() {
        "scim" => scim::ScimSource.fetch(ctx).await,
        "csv" => csv_import::CsvSource.fetch(ctx).await,
        "entra" => entra::EntraSource.fetch(ctx).await,
        "okta" => okta::OktaSource.fetch(ctx).await,
        "aws" => aws::AwsIamSource.fetch(ctx).await,
        "ldap" => ldap::LdapSource.fetch(ctx).await,
        "github" => github::GithubSource.fetch(ctx).await,
        other => Err(Error::invalid(format!(
            "unknown source kind '{other}'; known: {}",
            SOURCE_KINDS.join(", ")
        ))),
    }
}

/// Runs `work` over `items`, at most `limit` at a time (the shared HTTP
/// client bounds requests too); results come in completion order.
pub(crate) async fn bounded<T, R, F, Fut>(
    limit: usize,
    what: &str,
    items: Vec<T>,
    work: F,
) -> Result<Vec<R>>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<R>> + Send + 'static,
    R: Send + 'static,
{
    let mut out = Vec::with_capacity(items.len());
    let mut pending = items.into_iter();
    let mut set = tokio::task::JoinSet::new();
    loop {
        while set.len() < limit.max(1) {
            let Some(item) = pending.next() else { break };
            set.spawn(work(item));
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        out.push(joined.map_err(|e| Error::internal(format!("a {what} task failed: {e}")))??);
    }
    Ok(out)
}

/// A run that has been recorded and can fetch.
pub struct Prepared {
    pub run: RunId,
    pub source: SourceView,
    cursor: Option<String>,
    /// Items of the last run that applied (for the empty-import warning).
    previous_items: Option<i64>,
}

/// A fetched source, ready to apply.
pub struct Fetch {
    pub run: RunId,
    pub source: SourceId,
    pub fetched: Fetched,
}

/// The outcome of a whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    pub run: RunId,
    pub report: ApplyReport,
    pub full: bool,
}

/// Step 1 (store): records a `running` run and reads what the fetch needs.
pub fn prepare(store: &mut Store, source: SourceId, now: DateTime<Utc>) -> Result<Prepared> {
    let view = store.source(source)?;
    let cursor = store.source_cursor(source)?;
    let previous_items = store
        .sync_runs(Some(source), 50)?
        .into_iter()
        .find(|r| r.status.starts_with("succeeded"))
        .map(|r| r.items);
    let run = store.begin_sync_run(source, now)?;
    Ok(Prepared {
        run,
        source: view,
        cursor,
        previous_items,
    })
}

impl Prepared {
    /// Step 2 (network only). Falls back to a full fetch when the cursor expired.
    pub async fn fetch(
        self,
        secrets: &dyn SecretStore,
        progress: ProgressFn,
        cancel: Cancel,
        policy: HttpPolicy,
    ) -> std::result::Result<Fetch, (RunId, Error)> {
        let run = self.run;
        let source = SourceId(self.source.id);
        let previous_items = self.previous_items;
        let result = async {
            // Cancelled before it began (a host stopping): no secret read,
            // no connection; recorded `cancelled` like any cancel.
            cancel.check()?;
            let secret = if source_needs_secret(&self.source.kind, &self.source.settings) {
                secrets.get_source(source, &self.source.name)?
            } else {
                None
            };
            let http = HttpClient::new(policy, cancel)?;
            let mut ctx = SyncContext {
                source: self.source,
                http,
                secret,
                progress,
                cursor: self.cursor,
            };
            ctx.report("connecting", 0, 0, None);
            match fetch_kind(&ctx).await {
                Err(e) if e.code == ErrorCode::CursorExpired && ctx.cursor.is_some() => {
                    tracing::info!(source = %source, "cursor expired; full resync");
                    ctx.cursor = None;
                    fetch_kind(&ctx).await
                }
                other => other,
            }
        }
        .await;
        match result {
            Ok(mut fetched) => {
                // A secret the source replaced (a refresh token) is kept for
                // the next run; the one stored still works if this fails.
                if let Some(s) = fetched.rotated_secret.take() {
                    if let Err(e) = secrets.set(source, s.expose()) {
                        tracing::warn!(source = %source, error = %e, "could not keep the secret the source handed back; the stored one is used next time");
                    }
                }
                warn_if_empty(&mut fetched, previous_items);
                Ok(Fetch {
                    run,
                    source,
                    fetched,
                })
            }
            Err(e) => Err((run, e)),
        }
    }
}

/// A full fetch that brings nothing where the last run applied something is
/// suspect (a revoked permission, a filter gone wrong): never a plain success.
pub fn warn_if_empty(f: &mut Fetched, previous_items: Option<i64>) {
    if f.mode != records::FetchMode::Full || !f.people.is_empty() || !f.identities.is_empty() {
        return;
    }
    if let Some(n) = previous_items.filter(|n| *n > 0) {
        f.warn(format!(
            "the source returned nothing, where the last successful run imported {n} item(s): \
             everything it held is now marked deleted; check the source's permissions and filters"
        ));
    }
}

impl Fetch {
    /// Step 3 (store): applies in one transaction.
    pub fn apply(self, store: &mut Store, now: DateTime<Utc>) -> Result<SyncOutcome> {
        let full = self.fetched.mode == records::FetchMode::Full;
        match store.apply_fetch(self.source, self.run, &self.fetched, now) {
            Ok(report) => {
                // The trend's data point; the sync itself has landed either way.
                if let Err(e) = crate::posture::record_after_sync(store, report.graph_changed, now)
                {
                    tracing::warn!(error = %e, "could not record the posture snapshot");
                }
                Ok(SyncOutcome {
                    run: self.run,
                    report,
                    full,
                })
            }
            Err(e) => {
                record_failure(store, self.run, &e, now);
                Err(e)
            }
        }
    }
}

/// Records why a run ended without applying (best effort: the error that
/// caused it is what the caller reports).
pub fn record_failure(store: &mut Store, run: RunId, e: &Error, now: DateTime<Utc>) {
    let status = if e.code == ErrorCode::Cancelled {
        "cancelled"
    } else {
        "failed"
    };
    if let Err(rec) = store.end_sync_run_unapplied(run, status, e, now) {
        tracing::error!(error = %rec, "could not record the failed run");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use records::{FetchMode, PersonRecord};

    #[test]
    fn an_empty_full_fetch_after_a_run_with_data_is_a_warning() {
        let mut f = Fetched::new(FetchMode::Full);
        warn_if_empty(&mut f, Some(12));
        assert_eq!(f.warnings.len(), 1);
        assert!(f.warnings[0].contains("12 item(s)"), "{:?}", f.warnings);

        let mut first = Fetched::new(FetchMode::Full);
        warn_if_empty(&mut first, None);
        warn_if_empty(&mut first, Some(0));
        assert!(
            first.warnings.is_empty(),
            "a first or empty-before run is not suspect"
        );

        let mut inc = Fetched::new(FetchMode::Incremental);
        warn_if_empty(&mut inc, Some(12));
        assert!(
            inc.warnings.is_empty(),
            "an increment with no changes is normal"
        );

        let mut some = Fetched::new(FetchMode::Full);
        some.people.push(PersonRecord {
            external_id: "p".into(),
            display_name: "P".into(),
            email: String::new(),
            department: String::new(),
            title: String::new(),
            manager: None,
            status: crate::model::PersonStatus::Active,
            left_at: None,
        });
        warn_if_empty(&mut some, Some(12));
        assert!(some.warnings.is_empty());
    }
}
