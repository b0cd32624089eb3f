//! The committed TypeScript bindings match the Rust DTOs, and the mock's
//! generated catalogues match the core's.

use std::path::Path;

#[test]
fn committed_file_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/bindings.ts");
    let generated = custodian::bindings::typescript();
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ui/src/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test --features ts bindings` and commit it"
    );
}

#[test]
fn committed_mock_catalogue_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/lib/catalogue.gen.ts");
    let generated = custodian::bindings::mock_catalogue();
    assert!(
        generated.contains("\"kind\": \"scim\"")
            && generated.contains("\"id\": \"owner-departed\"")
    );
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ui/src/lib/catalogue.gen.ts is stale: run `UPDATE_BINDINGS=1 cargo test --features ts bindings` and commit it"
    );
}
