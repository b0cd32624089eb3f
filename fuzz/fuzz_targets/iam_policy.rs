//! IAM policy documents (URL-encoded or not) and action/resource wildcards:
//! parsing and matching never panic and stay fast on hostile patterns.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(doc) = custodian::sync::aws::decode_document(text) {
        let stmts = custodian::sync::aws::statements(&doc);
        let refs: Vec<_> = stmts.iter().collect();
        let _ = custodian::sync::aws::permissions(&refs);
    }
    if let Some((pattern, subject)) = text.split_once('\n') {
        let _ = custodian::sync::aws::covers(pattern, subject);
        let _ = custodian::sync::aws::action_privilege(pattern);
        let _ = custodian::sync::aws::resource_sensitivity(subject);
    }
});
