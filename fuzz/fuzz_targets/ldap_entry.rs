//! LDAP search entries as the server sends them (BER): the entry reader and
//! the value parsers (FILETIME, GeneralizedTime, DNs, GUIDs) never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, tag)) = ldap3::asn1::parse_tag(data) {
        if let Ok(entry) = custodian::sync::ldap::parse_entry(tag) {
            let _ = custodian::sync::ldap::classify(&entry);
            let _ = entry.key();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = custodian::sync::ldap::generalized_time(text);
        let _ = custodian::sync::ldap::normalize_dn(text);
        if let Ok(n) = text.trim().parse::<i64>() {
            let _ = custodian::sync::ldap::filetime(n);
        }
    }
    let _ = custodian::sync::ldap::guid_string(data);
});
