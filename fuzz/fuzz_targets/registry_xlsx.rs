//! The XLSX registry parser never panics: any bytes are rows or an error that says why.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = custodian::sync::csv_import::parse_registry_xlsx_bytes(data, "fuzz.xlsx") {
        assert!(!e.message.is_empty());
    }
});
