//! Custodian desktop shell.
