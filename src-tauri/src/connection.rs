//! Settings commands: who am I, the connection settings (solo or a team
//! workspace), a connection test and a reconnect. Each is one call into
//! `custodian::ops`. A password crosses IPC only inbound (to the keyring or
//! the test) and is never logged: `skip`ped in every `instrument`.

use custodian::ops::{ConnectionSettings, ConnectionSettingsView, SignInTarget, WhoAmI};
use custodian::{ops, Result};
use tauri::State;

use crate::AppState;

#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn who_am_i(state: State<'_, AppState>) -> Result<WhoAmI> {
    state.with(ops::who_am_i)
}

#[tauri::command(async)]
#[tracing::instrument(err(Debug))]
pub fn connection_settings() -> Result<ConnectionSettingsView> {
    ops::connection_settings()
}

#[tauri::command(async)]
#[tracing::instrument(skip(password), err(Debug))]
pub fn save_connection_settings(
    settings: ConnectionSettings,
    password: Option<String>,
) -> Result<ConnectionSettingsView> {
    ops::save_connection_settings(&settings, password.as_deref())
}

#[tauri::command(async)]
#[tracing::instrument(skip(password), err(Debug))]
pub fn test_connection(settings: ConnectionSettings, password: Option<String>) -> Result<WhoAmI> {
    ops::test_connection(&settings, password.as_deref())
}

/// Closes the store and opens it again where the settings now point.
#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn reconnect(state: State<'_, AppState>) -> Result<WhoAmI> {
    state.reopen()?;
    state.with(ops::who_am_i)
}

/// Where a sign-in goes (the workspace login and server), if the app opens one.
#[tauri::command(async)]
#[tracing::instrument(err(Debug))]
pub fn sign_in_target() -> Result<Option<SignInTarget>> {
    ops::workspace_sign_in_target()
}

/// Signs in to the workspace with a typed password (checked first; kept in
/// the keyring when `remember`, else until the app quits), then reopens the
/// store.
#[tauri::command(async)]
#[tracing::instrument(skip_all, err(Debug))]
pub fn sign_in(state: State<'_, AppState>, password: String, remember: bool) -> Result<WhoAmI> {
    ops::workspace_sign_in(&password, remember)?;
    state.reopen()?;
    state.with(ops::who_am_i)
}
