//! What headless syncs read (`custodian sync --all`, `custodian worker`):
//! the configured sources, without the demo organisation's (the ones a load
//! wrote, `created_at` 0).

use super::Store;
use crate::error::Result;
use crate::model::SourceId;

impl Store {
    /// Every real (non-demo) source, by name: what `sync --all` syncs.
    pub fn scheduled_sources(&self) -> Result<Vec<(SourceId, String)>> {
        self.db.query_map(
            "SELECT id, name FROM sources WHERE created_at <> 0 ORDER BY name, id",
            [],
            |r| Ok((SourceId(r.get(0)?), r.get::<String>(1)?)),
        )
    }
}
