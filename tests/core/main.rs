//! Integration tests of the core (one binary, ripgrep style).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod peers;
mod pg;
mod pg_hba;
mod samba;
mod util;

mod audit;
#[cfg(feature = "ts")]
mod bindings;
mod blast;
mod campaigns;
mod cli;
mod connection;
mod copy;
mod demo;
mod faults;
mod findings;
mod headless;
mod history;
mod hostile;
mod inventory;
mod keyring;
mod ldap_ranged;
mod layout;
mod offboarding;
mod postgres;
mod shell;
mod store;
mod sync_aws;
mod sync_aws_keyless;
mod sync_csv;
mod sync_entra;
mod sync_entra_keyless;
mod sync_github;
mod sync_ldap;
mod sync_okta;
mod sync_samba;
mod sync_scim;
mod unlock;
mod workspace;
mod workspace_ldap;
mod workspace_tls;
mod workspace_snapshot;
mod writeback;
