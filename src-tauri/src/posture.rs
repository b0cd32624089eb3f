//! Posture and blast-radius commands: the CISO dashboard, one identity's
//! blast radius (and its Markdown document), the ranking, who-can-reach,
//! paths to admin, documenting an edge.

use custodian::blast::{AdminPath, BlastRadius, BlastRank, Reacher};
use custodian::model::DelegationKind;
use custodian::posture::PostureView;
use custodian::views::FindingCatalogue;
use custodian::{ops, Error, Result};
use tauri::State;

use crate::AppState;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn posture(state: State<'_, AppState>) -> Result<PostureView> {
    state.with(|s| ops::posture(s, now()))
}

/// Every posture check and OWASP NHI category (titles, severities, fixes).
#[tauri::command]
pub fn finding_checks() -> FindingCatalogue {
    ops::finding_checks()
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn blast_radius(state: State<'_, AppState>, identity: i64) -> Result<BlastRadius> {
    state.with(|s| ops::blast_by_id(s, identity))
}

/// The blast-radius document (Markdown) to save or print.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn blast_document(state: State<'_, AppState>, identity: i64) -> Result<String> {
    state.with(|s| {
        let b = ops::blast_by_id(s, identity)?;
        Ok(custodian::blast::to_markdown(
            &b,
            &now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ))
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn blast_rank(state: State<'_, AppState>, limit: usize) -> Result<Vec<BlastRank>> {
    state.with(|s| ops::blast_rank(s, limit.min(10_000)))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn who_can_reach(state: State<'_, AppState>, resource: i64) -> Result<Vec<Reacher>> {
    state.with(|s| ops::who_can_reach(s, &resource.to_string()))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn paths_to_admin(state: State<'_, AppState>, limit: usize) -> Result<Vec<AdminPath>> {
    state.with(|s| ops::paths_to_admin(s, limit.min(10_000)))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn link_identities(
    state: State<'_, AppState>,
    from: i64,
    to: i64,
    kind: DelegationKind,
    note: String,
) -> Result<()> {
    if note.len() > 2000 {
        return Err(Error::invalid("the note is too long"));
    }
    state.with_mut(|s| {
        let who = ops::actor(s, None)?;
        ops::link_identities(
            s,
            who,
            &from.to_string(),
            &to.to_string(),
            kind,
            &note,
            now(),
        )
    })
}

/// Authorised by whom, under which policy, via which chain.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn authorization(
    state: State<'_, AppState>,
    identity: i64,
) -> Result<custodian::blast::AuthorizationReport> {
    state.with(|s| ops::authorization(s, &identity.to_string()))
}
