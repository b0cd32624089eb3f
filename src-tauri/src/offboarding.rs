//! Offboarding and lifecycle commands: cases, plans, apply, the manager's
//! team view, registration, retirement, review flags and the identity
//! timeline. The actor is always the acting person chosen in the app.

use custodian::campaigns::CaseId;
use custodian::offboarding::{
    ApplyReport, OffboardPlan, OffboardingCase, OffboardingCaseSummary, Registration, TeamView,
    TimelineEntry,
};
use custodian::{ops, Error, Result};
use tauri::State;

use crate::AppState;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn offboarding_cases(
    state: State<'_, AppState>,
    status: Option<String>,
) -> Result<Vec<OffboardingCaseSummary>> {
    if let Some(s) = status.as_deref() {
        if !matches!(s, "open" | "closed") {
            return Err(Error::invalid("status is open or closed"));
        }
    }
    state.with(|s| ops::offboarding_cases(s, status.as_deref(), None))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn offboarding_case(state: State<'_, AppState>, case: i64) -> Result<OffboardingCase> {
    state.with(|s| ops::offboarding_case(s, CaseId(case)))
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn mark_departing(
    state: State<'_, AppState>,
    person: i64,
    on: String,
    note: String,
) -> Result<Option<CaseId>> {
    if note.len() > 2000 {
        return Err(Error::invalid("the note is too long"));
    }
    state.with_mut(|s| {
        let who = ops::actor(s, None)?;
        ops::mark_departing(s, who, &person.to_string(), &on, &note, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn plan_offboarding(
    state: State<'_, AppState>,
    case: i64,
    plan: OffboardPlan,
) -> Result<usize> {
    state.with_mut(|s| {
        let who = ops::actor(s, None)?;
        ops::plan_offboarding(s, who, CaseId(case), &plan, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn apply_offboarding(state: State<'_, AppState>, case: i64) -> Result<ApplyReport> {
    state.with_mut(|s| {
        let who = ops::actor(s, None)?;
        ops::apply_offboarding(s, who, CaseId(case), now())
    })
}

/// The acting person's team.
#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn my_team(state: State<'_, AppState>) -> Result<TeamView> {
    state.with(|s| {
        let who = ops::actor(s, None)?;
        ops::team(s, who)
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn register_identity(
    state: State<'_, AppState>,
    identity: i64,
    registration: Registration,
) -> Result<()> {
    if registration.purpose.len() > 4000
        || registration.intended_blast_radius.len() > 4000
        || registration.data_touched.len() > 4000
    {
        return Err(Error::invalid(
            "a registration text is too long (4,000 characters at most)",
        ));
    }
    state.with_mut(|s| {
        let who = ops::actor(s, None)?;
        ops::register_identity(s, who, &identity.to_string(), &registration, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn retire_identity(state: State<'_, AppState>, identity: i64, reason: String) -> Result<usize> {
    state.with_mut(|s| {
        let who = ops::actor(s, None)?;
        ops::retire_identity(s, who, &identity.to_string(), &reason, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn confirm_access_change(
    state: State<'_, AppState>,
    identity: i64,
    note: String,
) -> Result<()> {
    state.with_mut(|s| {
        let who = ops::actor(s, None)?;
        ops::clear_review_flag(s, who, identity, &note, now())
    })
}

#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn identity_timeline(state: State<'_, AppState>, identity: i64) -> Result<Vec<TimelineEntry>> {
    state.with(|s| ops::identity_timeline(s, identity))
}

/// Open remediation tasks as a ticket list (CSV or JSON text) for another system.
#[tauri::command(async)]
#[tracing::instrument(skip(state), err(Debug))]
pub fn export_tasks(state: State<'_, AppState>, format: String) -> Result<String> {
    state.with(|s| ops::tasks_export(s, Some(custodian::campaigns::TaskStatus::Open), &format))
}
