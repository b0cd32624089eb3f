//! Catalogue commands: what this build knows, independent of the cache (the
//! kinds of source and their settings). The finding checks' catalogue is
//! `posture::finding_checks`.

use custodian::ops;
use custodian::views::SourceKindView;

/// Every kind of source with its settings and write-back abilities: what the
/// Sources view builds its add form, labels and toggles from.
#[tauri::command]
pub fn source_kinds() -> Vec<SourceKindView> {
    ops::source_kinds()
}
