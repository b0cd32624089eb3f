//! `custodian workspace init|member`: the team workspace on PostgreSQL.

use std::io::Write;

use clap::Subcommand;

use custodian::store::{Location, Store};
use custodian::workspace::Role;
use custodian::{ops, Result};

#[derive(Subcommand)]
pub enum WorkspaceCmd {
    /// Make the PostgreSQL database at --db a team workspace (migrations,
    /// then the workspace layer), with a first admin.
    Init {
        /// The first admin: a person of the inventory (email or id).
        #[arg(long, value_name = "PERSON")]
        admin: String,
        /// The admin's PostgreSQL login (default: the login running init).
        #[arg(long, value_name = "ROLE")]
        admin_login: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Workspace members (admin only; the database enforces it).
    #[command(subcommand)]
    Member(MemberCmd),
}

#[derive(Subcommand)]
pub enum MemberCmd {
    /// Map an existing PostgreSQL login to a person, with roles.
    Add {
        /// The person: email or id.
        person: String,
        #[arg(long, value_name = "ROLE")]
        login: String,
        /// admin | campaign_owner | reviewer | manager | auditor (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Every member, removed ones included.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a member: roles revoked, history kept.
    Remove { login: String },
    /// Replace a member's roles.
    Roles {
        login: String,
        #[arg(long = "set", required = true)]
        roles: Vec<String>,
    },
}

fn roles(list: &[String]) -> Result<Vec<Role>> {
    list.iter().map(|r| Role::parse(r)).collect()
}

pub fn run(cmd: WorkspaceCmd, location: &Location, out: &mut impl Write) -> Result<()> {
    match cmd {
        WorkspaceCmd::Init {
            admin,
            admin_login,
            json,
        } => {
            let r = ops::workspace_init(location, &admin, admin_login.as_deref())?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else if r.installed {
                writeln!(
                    out,
                    "workspace created: group roles {}*, first admin {} (person {})",
                    r.role_prefix,
                    custodian::sanitize::terminal(&r.admin_login),
                    r.admin_person
                )?;
            } else {
                writeln!(out, "already a workspace: nothing changed")?;
            }
        }
        WorkspaceCmd::Member(m) => {
            let store = Store::open_location(location)?;
            match m {
                MemberCmd::Add {
                    person,
                    login,
                    roles: r,
                } => {
                    ops::workspace_member_add(&store, &person, &login, &roles(&r)?)?;
                    writeln!(
                        out,
                        "member {} added",
                        custodian::sanitize::terminal(&login)
                    )?;
                }
                MemberCmd::List { json } => {
                    let members = store.workspace_members()?;
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&members)?)?;
                    } else {
                        for m in members {
                            writeln!(
                                out,
                                "{:<24} person {:<6} {:<40} {}",
                                custodian::sanitize::terminal(&m.login),
                                m.person_id,
                                m.roles.join(","),
                                if m.removed_at.is_some() {
                                    "removed"
                                } else {
                                    "active"
                                }
                            )?;
                        }
                    }
                }
                MemberCmd::Remove { login } => {
                    store.workspace_member_remove(&login)?;
                    writeln!(
                        out,
                        "member {} removed",
                        custodian::sanitize::terminal(&login)
                    )?;
                }
                MemberCmd::Roles { login, roles: r } => {
                    store.workspace_member_roles(&login, &roles(&r)?)?;
                    writeln!(
                        out,
                        "member {} roles set",
                        custodian::sanitize::terminal(&login)
                    )?;
                }
            }
        }
    }
    Ok(())
}
