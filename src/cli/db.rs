//! `custodian db copy|password|info`: the store itself, on either engine.

use std::io::Write;

use clap::Subcommand;

use custodian::store::Location;
use custodian::{ops, Result};

#[derive(Subcommand)]
pub enum DbCmd {
    /// Copy a whole store into an empty one (a new cache file or an empty
    /// PostgreSQL database): solo to team, or team to an offline snapshot.
    Copy {
        /// The store to read: a cache file or a postgres:// URL.
        #[arg(long, value_name = "PATH|URL")]
        from: String,
        /// The empty store to write.
        #[arg(long, value_name = "PATH|URL")]
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Keep a PostgreSQL login's password in the OS keyring (read from
    /// standard input), for the URL given with --db.
    Password,
    /// Which engine and schema the store at --db is.
    Info {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: DbCmd, location: &Location, out: &mut impl Write) -> Result<()> {
    match cmd {
        DbCmd::Copy { from, to, json } => {
            let from = Location::parse(&from)?;
            let to = Location::parse(&to)?;
            let r = ops::copy_store(&from, &to)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                writeln!(out, "Copied {} rows from {} to {}:", r.rows, r.from, r.to)?;
                for (t, n) in r.tables.iter().filter(|(_, n)| *n > 0) {
                    writeln!(out, "  {t:<20} {n:>9}")?;
                }
                writeln!(
                    out,
                    "Audit log verified at the target: {} entries, head {}",
                    r.audit_entries, r.audit_head
                )?;
            }
        }
        DbCmd::Password => {
            let Location::Postgres(target) = location else {
                return Err(custodian::Error::invalid(
                    "db password is for a PostgreSQL store: give --db postgres://user@host/db",
                ));
            };
            let password = crate::read_secret()?;
            custodian::store::pg::store_password(target, &password)?;
            writeln!(
                out,
                "The password for {} is in the OS keyring.",
                location.display()
            )?;
        }
        DbCmd::Info { json } => {
            let info = ops::store_info(location)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?;
            } else {
                writeln!(
                    out,
                    "{} store at {}, schema {}",
                    info.engine.as_str(),
                    info.location,
                    info.schema_version
                )?;
            }
        }
    }
    Ok(())
}
