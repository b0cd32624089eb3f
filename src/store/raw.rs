//! The raw connection, for integration tests and benchmarks only: they seed
//! and inspect the cache with plain SQL. Everything else reads and writes
//! through typed `Store` methods (no SQL outside `src/store/`).

use crate::store::{Db, Store};

impl Store {
    /// The connection, for tests and benchmarks. Not part of the API.
    #[doc(hidden)]
    pub fn raw_db(&self) -> &Db {
        &self.db
    }
}
