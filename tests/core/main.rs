//! Integration tests of the core (one binary, ripgrep style).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod peers;
mod util;

#[cfg(feature = "ts")]
mod bindings;
mod audit;
mod blast;
mod campaigns;
mod cli;
mod demo;
mod faults;
mod findings;
mod inventory;
mod offboarding;
mod keyring;
mod store;
mod sync_csv;
mod sync_scim;
mod sync_entra;
mod sync_okta;
mod sync_aws;
mod sync_ldap;
mod sync_github;
