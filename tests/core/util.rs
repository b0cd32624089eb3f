//! Shared helpers for the core tests.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};

/// A fixed "now" so generated data and ages are reproducible.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).single().unwrap()
}
