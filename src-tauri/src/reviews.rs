//! Access-review commands: the acting person, campaigns (create with
//! progress, progress, items, reassign, escalate, remind, close, evidence),
//! the reviewer's queue and decisions, remediation tasks, the audit check.
//!
//! Who acts is always the acting person chosen in the app (kept in the
//! cache), never a value the page sends: a command cannot act as someone else.

use std::sync::{Arc, Mutex};

use custodian::campaigns::{
    CampaignId, CampaignProgress, CampaignView, CloseReport, DecisionInput, NewCampaign,
    QueueQuery, ReviewItemId, ReviewQueue, TaskId, TaskStatus, TaskView, UndecidedPolicy,
};
use custodian::store::audit::AuditVerification;
use custodian::store::campaigns::CampaignEvent;
use custodian::views::PersonRef;
use custodian::{ops, Error, Result};
use tauri::State;

use crate::AppState;

/// Progress of the campaign being generated: (items generated, expected).
pub type LaunchState = Arc<Mutex<Option<(u64, u64)>>>;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn actor(s: &custodian::store::Store) -> Result<i64> {
    ops::actor(s, None)
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn acting_person(state: State<'_, AppState>) -> Result<Option<PersonRef>> {
    state.with(ops::acting_person)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn set_acting_person(state: State<'_, AppState>, person: i64) -> Result<PersonRef> {
    state.with_mut(|s| ops::set_acting_person(s, &person.to_string(), now()))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn find_people(
    state: State<'_, AppState>,
    search: String,
    limit: Option<i64>,
) -> Result<Vec<PersonRef>> {
    if search.len() > 200 {
        return Err(Error::invalid("the search is too long"));
    }
    state.with(|s| ops::find_people(s, &search, limit.unwrap_or(20)))
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn campaigns(state: State<'_, AppState>) -> Result<Vec<CampaignView>> {
    state.with_mut(|s| ops::campaigns(s, now()))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn create_campaign(state: State<'_, AppState>, campaign: NewCampaign) -> Result<CampaignView> {
    let launch = state.launch.clone();
    if let Ok(mut g) = launch.lock() {
        *g = Some((0, 0));
    }
    let report = {
        let launch = launch.clone();
        move |done: u64, total: u64| {
            if let Ok(mut g) = launch.lock() {
                *g = Some((done, total));
            }
        }
    };
    let result = state.with_mut(|s| {
        let who = actor(s)?;
        ops::create_campaign(s, who, &campaign, now(), &report)
    });
    if let Ok(mut g) = launch.lock() {
        *g = None;
    }
    result
}

/// (generated, expected) while a campaign is being generated; null otherwise.
#[tauri::command]
pub fn campaign_launch_progress(state: State<'_, AppState>) -> Option<(u64, u64)> {
    state.launch.lock().ok().and_then(|g| *g)
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn campaign_progress(state: State<'_, AppState>, campaign: i64) -> Result<CampaignProgress> {
    state.with(|s| ops::campaign_progress(s, CampaignId(campaign), now()))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn campaign_items(
    state: State<'_, AppState>,
    campaign: i64,
    query: QueueQuery,
) -> Result<ReviewQueue> {
    state.with(|s| ops::campaign_items(s, CampaignId(campaign), &query))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn review_queue(state: State<'_, AppState>, query: QueueQuery) -> Result<ReviewQueue> {
    state.with(|s| {
        let who = actor(s)?;
        ops::review_queue(s, who, &query)
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn item_history(state: State<'_, AppState>, item: i64) -> Result<Vec<CampaignEvent>> {
    state.with(|s| ops::item_history(s, ReviewItemId(item)))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn decide(state: State<'_, AppState>, input: DecisionInput) -> Result<usize> {
    if input.items.len() > 100_000 || input.justification.len() > 4000 {
        return Err(Error::invalid(
            "too many items or too long a justification in one decision",
        ));
    }
    state.with_mut(|s| {
        let who = actor(s)?;
        ops::decide(s, who, &input, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn reassign_reviewer(
    state: State<'_, AppState>,
    items: Vec<i64>,
    to: i64,
    reason: String,
) -> Result<usize> {
    let items: Vec<ReviewItemId> = items.into_iter().map(ReviewItemId).collect();
    state.with_mut(|s| {
        let who = actor(s)?;
        ops::reassign_reviewer(s, who, &items, to, &reason, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn escalate(state: State<'_, AppState>, campaign: i64, reviewer: Option<i64>) -> Result<usize> {
    state.with_mut(|s| {
        let who = actor(s)?;
        ops::escalate(s, who, CampaignId(campaign), reviewer, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn delegate_reviewer(
    state: State<'_, AppState>,
    campaign: i64,
    from: i64,
    to: i64,
    reason: String,
) -> Result<usize> {
    state.with_mut(|s| {
        let who = actor(s)?;
        ops::delegate_reviewer(s, who, CampaignId(campaign), from, to, &reason, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn remind(state: State<'_, AppState>, campaign: i64, reviewer: i64) -> Result<()> {
    state.with_mut(|s| {
        let who = actor(s)?;
        ops::remind(s, who, CampaignId(campaign), reviewer, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn close_campaign(
    state: State<'_, AppState>,
    campaign: i64,
    policy: UndecidedPolicy,
) -> Result<CloseReport> {
    state.with_mut(|s| {
        let who = actor(s)?;
        ops::close_campaign(s, who, CampaignId(campaign), policy, now())
    })
}

/// Writes the evidence files into the default export folder; returns their paths.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn export_campaign(state: State<'_, AppState>, campaign: i64) -> Result<Vec<String>> {
    let dir = ops::default_export_dir()?;
    state.with(|s| {
        ops::export_campaign(s, CampaignId(campaign), &dir, now())
            .map(|v| v.into_iter().map(|p| p.display().to_string()).collect())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn tasks(
    state: State<'_, AppState>,
    campaign: Option<i64>,
    status: Option<TaskStatus>,
) -> Result<Vec<TaskView>> {
    state.with(|s| ops::tasks(s, campaign.map(CampaignId), status))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn set_task_status(
    state: State<'_, AppState>,
    task: i64,
    status: TaskStatus,
    note: String,
) -> Result<()> {
    state.with_mut(|s| {
        let who = actor(s)?;
        ops::set_task_status(s, who, TaskId(task), status, &note, now())
    })
}

/// Carries a task out in its source (when the source can and is opted in).
/// The cache is held only to prepare and to record; the source's answer is
/// awaited on a thread of its own (the core runs its own runtime for it),
/// so other commands are not blocked meanwhile.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn write_back_task(state: State<'_, AppState>, task: i64) -> Result<ops::WriteBackReport> {
    let secrets = custodian::sync::secrets::KeyringSecrets::default();
    // Who acts is settled before the source is called.
    let (who, job) = state.with(|s| {
        let who = actor(s)?;
        let job = ops::write_back_prepare(
            s,
            &secrets,
            TaskId(task),
            custodian::sync::http::HttpPolicy::default(),
        )?;
        Ok((who, job))
    })?;
    let outcome = std::thread::scope(|scope| {
        scope
            .spawn(|| job.run())
            .join()
            .map_err(|_| Error::internal("the write-back stopped unexpectedly"))
    })?;
    state.with_mut(|s| ops::write_back_record(s, who, TaskId(task), outcome, now()))
}

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn verify_audit(state: State<'_, AppState>) -> Result<AuditVerification> {
    state.with(ops::verify_audit)
}
