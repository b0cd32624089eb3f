//! The registry spreadsheet parser never panics: any input is rows or an error naming a line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = custodian::sync::csv_import::parse_registry(data) {
        assert!(!e.message.is_empty());
    }
});
