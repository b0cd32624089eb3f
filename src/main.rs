//! `custodian`: the command-line face of the core. Every subcommand is a thin
//! call into `custodian::ops` plus formatting.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};

use custodian::demo::{DemoSize, DEFAULT_SEED};
use custodian::model::{AgentClass, IdentityKind, IdentityStatus};
use custodian::sync::http::Cancel;
use custodian::sync::secrets::{KeyringSecrets, MemorySecrets, SecretStore};
use custodian::sync::{ProgressFn, SyncProgress};
use custodian::views::{IdentityDetail, InventoryPage, InventoryQuery, OwnerState, SortKey};
use custodian::{ops, Error, ErrorCode, Result};
use std::sync::Arc;

#[path = "cli/db.rs"]
mod db;
#[path = "cli/lifecycle.rs"]
mod lifecycle;
#[path = "cli/posture.rs"]
mod posture;
#[path = "cli/reviews.rs"]
mod reviews;
#[path = "cli/sync.rs"]
mod sync_cmd;
#[path = "cli/workspace.rs"]
mod workspace_cmd;

#[derive(Parser)]
#[command(
    name = "custodian",
    version,
    about = "Governance console for AI agents and non-human identities"
)]
struct Cli {
    /// The store: a cache file, or a postgres:// URL for a team workspace
    /// (default: $CUSTODIAN_DB, else the platform data directory).
    #[arg(long, global = true, value_name = "PATH|URL")]
    db: Option<String>,
    /// Act as this person (id, email or name) instead of the one chosen with `whoami --set`.
    #[arg(long = "as", global = true, value_name = "PERSON")]
    as_person: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replace the cache content with the generated demo organisation.
    Demo {
        #[arg(long, value_enum, default_value = "s")]
        size: Size,
        #[arg(long, default_value_t = DEFAULT_SEED)]
        seed: u64,
        /// Replace a store that holds governance history (campaigns,
        /// decisions, cases, registrations, tasks, audit entries); audited.
        #[arg(long)]
        replace_history: bool,
        /// Remove the demo organisation without loading another (before a
        /// first real source when history was made on the demo: with
        /// --replace-history); audited.
        #[arg(long)]
        clear: bool,
        #[arg(long)]
        json: bool,
    },
    /// List identities, filtered and sorted.
    Inventory(InventoryArgs),
    /// Everything about one identity (by id, external id or exact name).
    Show {
        identity: String,
        #[arg(long)]
        json: bool,
    },
    /// Headline counts of the cache.
    Summary {
        #[arg(long)]
        json: bool,
    },
    /// Configure identity sources.
    #[command(subcommand)]
    Source(SourceCmd),
    /// Sync a source now (by name or id), or every source (--all, for cron).
    Sync {
        #[arg(required_unless_present = "all")]
        source: Option<String>,
        /// Sync every configured source in turn (not the demo's); exit 1 if any failed.
        #[arg(long, conflicts_with = "source")]
        all: bool,
        /// With --all: keep running, a pass every INTERVAL (30m, 1h, 1d) until SIGTERM/Ctrl-C.
        #[arg(long, requires = "all", value_name = "INTERVAL")]
        every: Option<String>,
        /// Read the source's secret from standard input for this run only,
        /// instead of the OS keyring (for pipelines).
        #[arg(long, conflicts_with_all = ["all", "secrets_from"])]
        secret_stdin: bool,
        /// Where source secrets come from: keyring (default), env
        /// (CUSTODIAN_SECRET_<NAME>), dir:/path (a file per source) or systemd
        /// ($CREDENTIALS_DIRECTORY).
        #[arg(long, value_name = "STORE", default_value = "keyring")]
        secrets_from: String,
        #[arg(long)]
        json: bool,
    },
    /// Sync every configured source on a schedule until SIGTERM/Ctrl-C (a server's long-running worker).
    Worker {
        /// Interval between passes (30m, 1h, 1d).
        #[arg(long, default_value = "1h", value_name = "INTERVAL")]
        every: String,
        /// keyring, env, dir:/path or systemd (see `sync --help`).
        #[arg(long, value_name = "STORE", default_value = "keyring")]
        secrets_from: String,
        /// One JSON line per pass.
        #[arg(long)]
        json: bool,
    },
    /// Import an agent registry spreadsheet (CSV); creates the source on first use.
    Import {
        file: PathBuf,
        /// Source name (default: "Registry <file name>").
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Recent sync runs, newest first.
    Runs {
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Lifecycle events (joiner, mover, leaver) of one sync run.
    Events {
        run: i64,
        #[arg(long)]
        json: bool,
    },
    /// Who is acting: show, or choose with --set (id, email or name).
    Whoami {
        #[arg(long)]
        set: Option<String>,
    },
    /// Access-review campaigns (certifications).
    #[command(subcommand)]
    Campaign(reviews::CampaignCmd),
    /// Remediation tasks from reviews and offboarding.
    Tasks {
        #[arg(long)]
        campaign: Option<custodian::campaigns::CampaignId>,
        /// open, done or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
        /// Print the open tasks as a ticket list for another system: csv or json.
        #[arg(long, conflicts_with_all = ["campaign", "status", "json"])]
        export: Option<String>,
    },
    /// Work a remediation task.
    #[command(subcommand)]
    Task(reviews::TaskCmd),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(reviews::AuditCmd),
    /// The store itself: copy it between engines, keep a database password, show what it is.
    #[command(subcommand)]
    Db(db::DbCmd),
    /// The team workspace on PostgreSQL: init, members.
    #[command(subcommand)]
    Workspace(workspace_cmd::WorkspaceCmd),
    /// Offboard a person: show their case; plan with --transfer-to / --retire / --keep-with; --apply.
    Offboard(Box<lifecycle::OffboardArgs>),
    /// Mark a person as departing on a date (opens their offboarding case).
    Depart {
        person: String,
        #[arg(long)]
        on: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Offboarding cases.
    Cases {
        /// open or closed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// My team: direct reports, their departures, what waits for me.
    Team {
        #[arg(long)]
        json: bool,
    },
    /// Register a (discovered) identity: purpose, class, owner, data, intended blast radius.
    Register(Box<lifecycle::RegisterArgs>),
    /// Retire an identity: deprovision tasks for it and its credentials.
    Retire {
        identity: String,
        #[arg(long)]
        reason: String,
    },
    /// Confirm an identity's new access (clears its permission-review flag).
    Confirm {
        identity: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// An identity's timeline: sync events, governance actions, reviews, tasks.
    Timeline {
        identity: String,
        #[arg(long)]
        json: bool,
    },
    /// Blast radius of an identity (its blast-radius document with --format md), or --top N ranking.
    Blast {
        identity: Option<String>,
        #[arg(long)]
        top: Option<usize>,
        /// text, md or json.
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Every identity that can reach a resource (id, external id or name), with its chain.
    WhoCanReach {
        resource: String,
        #[arg(long)]
        json: bool,
    },
    /// Identities that reach admin on critical resources only through delegation.
    PathsToAdmin {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Document an edge no source knows: FROM can act through TO.
    Link {
        from: String,
        to: String,
        /// assume_role, invoke, on_behalf_of, impersonate.
        #[arg(long)]
        kind: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Findings by check (OWASP NHI Top 10), optionally at least --severity.
    Findings {
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// For pipelines: exit 3 when any finding is at --fail-on severity or above.
    Check {
        #[arg(long, default_value = "high")]
        fail_on: String,
    },
    /// The CISO's posture: key figures and their trend.
    Posture {
        #[arg(long)]
        json: bool,
    },
    /// Write a support bundle (JSON, secrets redacted).
    Diagnostics {
        #[arg(long)]
        out: PathBuf,
    },
    /// Authorised by whom, under which policy, via which chain (an identity).
    Authz {
        identity: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SourceCmd {
    /// Add a source: `custodian source add scim --name hr --set base_url=https://... --secret-stdin`.
    Add {
        /// scim, csv, entra, okta, aws
        kind: String,
        #[arg(long)]
        name: String,
        /// A non-secret setting, KEY=VALUE (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Read the secret (token, client secret) from standard input and keep it in the OS keyring.
        #[arg(long)]
        secret_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List sources with their last run.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One source: how it signs in and as whom, its settings (redacted) and
    /// its last run.
    Show {
        /// Source id or name.
        source: String,
        #[arg(long)]
        json: bool,
    },
    /// Sign in as an administrator, for an Entra source with delegated=true:
    /// shows a code to enter at Microsoft's sign-in page, waits until you
    /// have signed in, and keeps the refresh token in the OS keyring (later
    /// syncs sign in with it; no app secret is created).
    SignIn {
        /// Source id or name.
        source: String,
        #[arg(long)]
        json: bool,
    },
    /// Let Custodian carry out remediation tasks in this source (`task
    /// write-back`); off by default. SCIM: disable users; AWS IAM: disable
    /// users, deactivate access keys. The source's secret must be allowed to.
    WriteBack {
        source: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Size {
    S,
    M,
    L,
    /// 1M NHIs, 10M grants: a benchmark scale (minutes to load, GiBs of disk).
    Xl,
}

#[derive(clap::Args)]
struct InventoryArgs {
    /// Full-text search over names, purposes, owners, external ids and teams.
    #[arg(long, short)]
    search: Option<String>,
    /// ai_agent, service_account, oauth_app, api_key, workload, bot (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    kind: Vec<String>,
    /// active, disabled, deleted.
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    /// personal, consumer_assistant, workforce_assistant, digital_worker.
    #[arg(long, value_delimiter = ',')]
    class: Vec<String>,
    /// Source id (see `custodian summary`).
    #[arg(long, value_delimiter = ',')]
    source: Vec<i64>,
    /// Owner person id.
    #[arg(long)]
    owner: Option<i64>,
    /// owned, departed or none.
    #[arg(long, value_enum)]
    owner_state: Option<OwnerStateArg>,
    /// Only identities with findings.
    #[arg(long, conflicts_with = "no_findings")]
    has_findings: bool,
    /// Only identities without findings.
    #[arg(long)]
    no_findings: bool,
    #[arg(long, value_enum, default_value = "name")]
    sort: SortArg,
    #[arg(long)]
    desc: bool,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[arg(long, default_value_t = 0)]
    offset: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum OwnerStateArg {
    Owned,
    Departed,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum SortArg {
    Name,
    Kind,
    Status,
    Owner,
    Source,
    Credentials,
    OldestCredential,
    Grants,
    Risk,
    LastUsed,
    Created,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_db = cli
        .db
        .as_deref()
        .and_then(|d| custodian::store::Location::parse(d).ok())
        .and_then(|l| l.file().map(|p| p.to_path_buf()));
    let _logs = custodian::logging::init("warn", log_db.as_deref());
    let span = tracing::info_span!("command", name = %std::env::args().nth(1).unwrap_or_default());
    let _entered = span.enter();
    match run(cli) {
        Ok(code) => code,
        // Output piped into `head` and closed early: not an error.
        Err(e) if e.message.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(e) => {
            // Messages quote outside text (names, cells): no escape
            // sequence or bidi override reaches the terminal.
            eprintln!(
                "error[{}]: {}",
                e.code.as_str(),
                custodian::sanitize::terminal(&e.message)
            );
            match e.code {
                ErrorCode::InvalidInput | ErrorCode::NotFound => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let path = match &cli.db {
        Some(p) => custodian::store::Location::parse(p)?,
        None => ops::default_location()?,
    };
    let now = Utc::now();
    // Everything printed passes through the output-safety rule for the
    // terminal: names, purposes, reasons... from sources and people cannot
    // print escape sequences or bidi overrides (in JSON the same rule writes
    // `\uXXXX`, the same string).
    let mut out = custodian::sanitize::VisibleWriter::new(std::io::stdout().lock());
    match cli.command {
        Command::Demo {
            size,
            seed,
            replace_history,
            clear,
            json,
        } => {
            if clear {
                let mut store = custodian::store::Store::open_location(&path)?;
                ops::clear_demo(&mut store, replace_history, now)?;
                writeln!(
                    out,
                    "Removed the demo organisation from {} (audited as demo.clear); the audit log is kept.",
                    path.display()
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let size = match size {
                Size::S => DemoSize::S,
                Size::M => DemoSize::M,
                Size::L => DemoSize::L,
                Size::Xl => DemoSize::Xl,
            };
            let mut store = custodian::store::Store::open_location(&path)?;
            let started = Instant::now();
            if !json && std::io::stderr().is_terminal() {
                eprintln!(
                    "Generating the {} demo organisation into {} ...",
                    size.as_str().to_uppercase(),
                    path.display()
                );
            }
            let counts = ops::load_demo_replacing(&mut store, size, seed, now, replace_history)?;
            let secs = started.elapsed().as_secs_f64();
            if json {
                let v = serde_json::json!({
                    "database": path.display().to_string(),
                    "size": size.as_str(),
                    "seed": seed,
                    "people": counts.people,
                    "identities": counts.identities,
                    "credentials": counts.credentials,
                    "resources": counts.resources,
                    "grants": counts.grants,
                    "delegations": counts.delegations,
                    "findings": counts.findings,
                    "seconds": secs,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(
                    out,
                    "Loaded demo organisation {} into {} in {secs:.1}s:\n  {} people, {} identities, {} credentials, \
                     {} resources, {} grants, {} delegations, {} findings",
                    size.as_str().to_uppercase(),
                    path.display(),
                    counts.people,
                    counts.identities,
                    counts.credentials,
                    counts.resources,
                    counts.grants,
                    counts.delegations,
                    counts.findings
                )?;
            }
        }
        Command::Inventory(args) => {
            let store = ops::open_or_demo(&path, now)?;
            let json = args.json;
            let q = inventory_query(args)?;
            let page = ops::inventory(&store, &q, now)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&page)?)?;
            } else {
                print_inventory(&mut out, &page)?;
            }
        }
        Command::Show { identity, json } => {
            let store = ops::open_or_demo(&path, now)?;
            let d = ops::show(&store, &identity, now)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&d)?)?;
            } else {
                print_detail(&mut out, &d)?;
            }
        }
        Command::Summary { json } => {
            let store = ops::open_or_demo(&path, now)?;
            let s = ops::summary(&store)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
            } else {
                writeln!(
                    out,
                    "Cache:        {}",
                    s.database.as_deref().unwrap_or("(in memory)")
                )?;
                writeln!(
                    out,
                    "Dataset:      {}",
                    s.dataset.as_deref().unwrap_or("synced sources")
                )?;
                writeln!(out, "Sources:      {}", s.sources.join(", "))?;
                writeln!(out, "People:       {}", s.people)?;
                writeln!(out, "Identities:   {}", s.identities)?;
                writeln!(out, "Credentials:  {}", s.credentials)?;
                writeln!(out, "Grants:       {}", s.grants)?;
                writeln!(out, "Delegations:  {}", s.delegations)?;
                writeln!(out, "Findings:     {}", s.findings)?;
            }
        }
        Command::Source(SourceCmd::Add {
            kind,
            name,
            settings,
            secret_stdin,
            json,
        }) => {
            let mut store = ops::open_or_demo(&path, now)?;
            let mut map = serde_json::Map::new();
            for kv in settings {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    Error::invalid(format!("--set expects KEY=VALUE, got '{kv}'"))
                })?;
                let value = v
                    .parse::<u64>()
                    .map_or_else(|_| serde_json::Value::from(v), serde_json::Value::from);
                map.insert(k.trim().to_string(), value);
            }
            let secret = if secret_stdin {
                Some(read_secret()?)
            } else {
                None
            };
            let keyring = KeyringSecrets::default();
            let src = ops::add_source(
                &mut store,
                &keyring,
                &kind,
                &name,
                map.into(),
                secret.as_deref(),
                now,
            )?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&src)?)?;
            } else {
                writeln!(out, "Added source #{} {} ({})", src.id, src.name, src.kind)?;
            }
        }
        Command::Source(SourceCmd::WriteBack { source, state }) => {
            let mut store = ops::open_or_demo(&path, now)?;
            let actor = ops::actor(&store, cli.as_person.as_deref())?;
            let s = ops::set_write_back(&mut store, actor, &source, state == "on", now)?;
            writeln!(out, "Write-back for {} is {state}", s.name)?;
        }
        Command::Source(SourceCmd::SignIn { source, json }) => {
            use custodian::sanitize::terminal;
            let store = ops::open_or_demo(&path, now)?;
            let id = ops::resolve_source(&store, &source)?;
            let view = store.source(id)?;
            drop(store);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
            let keyring = KeyringSecrets::default();
            let cancel = Cancel::new();
            let sign_in = rt.block_on(ops::begin_sign_in(
                &view,
                custodian::sync::http::HttpPolicy::default(),
                cancel,
            ))?;
            let p = sign_in.prompt().clone();
            if json {
                writeln!(out, "{}", serde_json::to_string(&p)?)?;
            } else {
                writeln!(out, "{}", terminal(&p.message))?;
                writeln!(
                    out,
                    "Waiting for the sign-in (code {}, valid {} minutes)...",
                    terminal(&p.user_code),
                    p.expires_in / 60
                )?;
            }
            out.flush()?;
            let user = rt.block_on(ops::finish_sign_in(&view, sign_in, &keyring))?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&serde_json::json!({"signed_in": true, "user": user}))?
                )?;
            } else {
                writeln!(
                    out,
                    "Signed in as {}; the refresh token is kept in the OS keyring. `custodian sync {}` now reads Entra as this administrator.",
                    terminal(user.as_deref().unwrap_or("the administrator")),
                    terminal(&view.name)
                )?;
            }
        }
        Command::Source(SourceCmd::Show { source, json }) => {
            let store = ops::open_or_demo(&path, now)?;
            let id = ops::resolve_source(&store, &source)?;
            let s = ops::sources(&store)?
                .into_iter()
                .find(|s| s.id == id.0)
                .ok_or_else(|| Error::not_found(format!("no source '{source}'")))?;
            let sign_in = custodian::sync::sign_in(&s.kind, &s.settings);
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"source": s, "sign_in": sign_in})
                    )?
                )?;
            } else {
                use custodian::sanitize::{pad, terminal};
                writeln!(out, "Source #{} {} ({})", s.id, terminal(&s.name), s.kind)?;
                if let Some(si) = &sign_in {
                    writeln!(out, "Signs in:   {}", terminal(&si.mode))?;
                    writeln!(out, "As:         {}", terminal(&si.identity))?;
                }
                match &s.signed_in_as {
                    Some(a) => match (a.identity_id, &a.name) {
                        (Some(id), Some(name)) => writeln!(
                            out,
                            "Signs in as identity #{id} {} ({}), in the inventory like any other",
                            terminal(name),
                            terminal(&a.external_id)
                        )?,
                        _ => writeln!(
                            out,
                            "Signs in as {} (not in the inventory: the sync did not import it)",
                            terminal(&a.external_id)
                        )?,
                    },
                    None if sign_in.is_some() => writeln!(
                        out,
                        "Signs in as: not known yet (a sync of this source may find it)"
                    )?,
                    None => {}
                }
                if let Some(map) = s.settings.as_object() {
                    for (k, v) in map {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        writeln!(
                            out,
                            "  {} {}",
                            pad(custodian::sync::settings::label(k), 24),
                            terminal(&v)
                        )?;
                    }
                }
                match &s.last_run {
                    Some(r) => writeln!(
                        out,
                        "Last run:   #{} {} at {}",
                        r.id,
                        r.status,
                        r.finished_at.as_deref().unwrap_or(&r.started_at)
                    )?,
                    None => writeln!(out, "Last run:   never synced")?,
                }
            }
        }
        Command::Source(SourceCmd::List { json }) => {
            let store = ops::open_or_demo(&path, now)?;
            let list = ops::sources(&store)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for s in list {
                    let last = s.last_run.as_ref().map_or("never synced".to_string(), |r| {
                        format!(
                            "last run #{} {} at {}",
                            r.id,
                            r.status,
                            r.finished_at.as_deref().unwrap_or(&r.started_at)
                        )
                    });
                    writeln!(
                        out,
                        "{:>4}  {} {:<6} {last}",
                        s.id,
                        custodian::sanitize::cell(&s.name, 32),
                        s.kind
                    )?;
                }
            }
        }
        Command::Sync {
            all: true,
            every,
            secrets_from,
            json,
            ..
        } => {
            let every = every.as_deref().map(sync_cmd::parse_every).transpose()?;
            let from = custodian::sync::secrets::SecretsFrom::parse(&secrets_from)?;
            return sync_cmd::run(&path, &from, every, json, &mut out);
        }
        Command::Worker {
            every,
            secrets_from,
            json,
        } => {
            let every = sync_cmd::parse_every(&every)?;
            let from = custodian::sync::secrets::SecretsFrom::parse(&secrets_from)?;
            return sync_cmd::run(&path, &from, Some(every), json, &mut out);
        }
        Command::Sync {
            source,
            secret_stdin,
            secrets_from,
            json,
            ..
        } => {
            let mut store = ops::open_or_demo(&path, now)?;
            let source = source.ok_or_else(|| Error::invalid("name a source, or pass --all"))?;
            let id = ops::resolve_source(&store, &source)?;
            let outcome = if secret_stdin {
                let secrets = MemorySecrets::default();
                secrets.set(id, &read_secret()?)?;
                ops::sync_source(
                    &mut store,
                    id,
                    &secrets,
                    progress_printer(json),
                    Cancel::new(),
                )
            } else {
                let secrets =
                    custodian::sync::secrets::SecretsFrom::parse(&secrets_from)?.open()?;
                ops::sync_source(
                    &mut store,
                    id,
                    &*secrets,
                    progress_printer(json),
                    Cancel::new(),
                )
            };
            let outcome = outcome?;
            let run = store.sync_run(outcome.run)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&run)?)?;
            } else {
                writeln!(
                    out,
                    "Run #{} {} ({}): {} items, {} joiners, {} movers, {} leavers",
                    run.id,
                    run.status,
                    run.mode.as_deref().unwrap_or("-"),
                    run.items,
                    run.joiners,
                    run.movers,
                    run.leavers
                )?;
                for w in &run.warnings {
                    writeln!(out, "  warning: {w}")?;
                }
            }
        }
        Command::Import { file, name, json } => {
            let mut store = ops::open_or_demo(&path, now)?;
            let abs = std::fs::canonicalize(&file)
                .map_err(|e| Error::invalid(format!("cannot read {}: {e}", file.display())))?;
            let name = name.unwrap_or_else(|| {
                format!(
                    "Registry {}",
                    abs.file_name()
                        .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
                )
            });
            let id = match ops::resolve_source(&store, &name) {
                Ok(id) => id,
                Err(_) => {
                    let settings = serde_json::json!({ "path": abs.display().to_string() });
                    let s = ops::add_source(
                        &mut store,
                        &MemorySecrets::default(),
                        "csv",
                        &name,
                        settings,
                        None,
                        now,
                    )?;
                    custodian::model::SourceId(s.id)
                }
            };
            let outcome = ops::sync_source(
                &mut store,
                id,
                &MemorySecrets::default(),
                progress_printer(json),
                Cancel::new(),
            )?;
            let run = store.sync_run(outcome.run)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&run)?)?;
            } else {
                writeln!(
                    out,
                    "Imported {} rows into '{name}': {} joiners, {} movers, {} leavers",
                    run.items, run.joiners, run.movers, run.leavers
                )?;
            }
        }
        Command::Runs {
            source,
            limit,
            json,
        } => {
            let store = ops::open_or_demo(&path, now)?;
            let source = source
                .map(|s| ops::resolve_source(&store, &s))
                .transpose()?;
            let runs = ops::sync_runs(&store, source, limit)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&runs)?)?;
            } else {
                for r in runs {
                    let err = r
                        .error_message
                        .as_deref()
                        .map(|m| format!("  {m}"))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "#{:<5} source {:<3} {:<11} {:<11} {}  items {} +{} ~{} -{}{err}{}",
                        r.id,
                        r.source_id,
                        r.status,
                        r.mode.as_deref().unwrap_or("-"),
                        r.started_at,
                        r.items,
                        r.joiners,
                        r.movers,
                        r.leavers,
                        if r.warnings.is_empty() {
                            String::new()
                        } else {
                            format!("  {} warning(s)", r.warnings.len())
                        }
                    )?;
                    for w in &r.warnings {
                        writeln!(out, "        warning: {w}")?;
                    }
                }
            }
        }
        Command::Events { run, json } => {
            let store = ops::open_or_demo(&path, now)?;
            let events = ops::run_events(&store, run)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&events)?)?;
            } else {
                for e in events {
                    writeln!(
                        out,
                        "{:<7} {:<10} #{:<7} {}  {}",
                        e.kind, e.subject, e.subject_id, e.name, e.detail
                    )?;
                }
            }
        }
        Command::Whoami { set } => {
            let mut store = ops::open_or_demo(&path, now)?;
            reviews::whoami(&mut store, set.as_deref(), now, &mut out)?;
        }
        Command::Campaign(cmd) => {
            let mut store = ops::open_or_demo(&path, now)?;
            reviews::campaign(&mut store, cli.as_person.as_deref(), cmd, now, &mut out)?;
        }
        Command::Tasks {
            campaign,
            status,
            json,
            export,
        } => {
            let store = ops::open_or_demo(&path, now)?;
            match export {
                Some(format) => write!(
                    out,
                    "{}",
                    ops::tasks_export(
                        &store,
                        Some(custodian::campaigns::TaskStatus::Open),
                        &format
                    )?
                )?,
                None => reviews::tasks(&store, campaign, status.as_deref(), json, &mut out)?,
            }
        }
        Command::Offboard(a) => {
            let mut store = ops::open_or_demo(&path, now)?;
            lifecycle::offboard(&mut store, cli.as_person.as_deref(), *a, now, &mut out)?;
        }
        Command::Depart { person, on, note } => {
            let mut store = ops::open_or_demo(&path, now)?;
            let actor = ops::actor(&store, cli.as_person.as_deref())?;
            match ops::mark_departing(&mut store, actor, &person, &on, &note, now)? {
                Some(c) => writeln!(out, "Marked departing; offboarding case #{c}")?,
                None => writeln!(
                    out,
                    "Marked departing; they own nothing, so no case is needed"
                )?,
            }
        }
        Command::Cases { status, json } => {
            let store = ops::open_or_demo(&path, now)?;
            lifecycle::cases(&store, status.as_deref(), json, &mut out)?;
        }
        Command::Team { json } => {
            let store = ops::open_or_demo(&path, now)?;
            lifecycle::team(&store, cli.as_person.as_deref(), json, &mut out)?;
        }
        Command::Register(a) => {
            let mut store = ops::open_or_demo(&path, now)?;
            lifecycle::register(&mut store, cli.as_person.as_deref(), *a, now, &mut out)?;
        }
        Command::Retire { identity, reason } => {
            let mut store = ops::open_or_demo(&path, now)?;
            let actor = ops::actor(&store, cli.as_person.as_deref())?;
            let n = ops::retire_identity(&mut store, actor, &identity, &reason, now)?;
            writeln!(out, "Retiring {identity}: {n} deprovision task(s) opened")?;
        }
        Command::Confirm { identity, note } => {
            let mut store = ops::open_or_demo(&path, now)?;
            let actor = ops::actor(&store, cli.as_person.as_deref())?;
            let id = store.resolve_identity(&identity)?;
            ops::clear_review_flag(&mut store, actor, id.0, &note, now)?;
            writeln!(out, "Confirmed the access of {identity}")?;
        }
        Command::Timeline { identity, json } => {
            let store = ops::open_or_demo(&path, now)?;
            lifecycle::timeline(&store, &identity, json, &mut out)?;
        }
        Command::Blast {
            identity,
            top,
            format,
        } => {
            let store = ops::open_or_demo(&path, now)?;
            posture::blast(&store, identity.as_deref(), top, &format, now, &mut out)?;
        }
        Command::WhoCanReach { resource, json } => {
            let store = ops::open_or_demo(&path, now)?;
            posture::who_can_reach(&store, &resource, json, &mut out)?;
        }
        Command::PathsToAdmin { limit, json } => {
            let store = ops::open_or_demo(&path, now)?;
            posture::paths_to_admin(&store, limit, json, &mut out)?;
        }
        Command::Link {
            from,
            to,
            kind,
            note,
        } => {
            let mut store = ops::open_or_demo(&path, now)?;
            let actor = ops::actor(&store, cli.as_person.as_deref())?;
            posture::link(&mut store, actor, &from, &to, &kind, &note, now, &mut out)?;
        }
        Command::Findings { severity, json } => {
            let store = ops::open_or_demo(&path, now)?;
            posture::findings(&store, severity.as_deref(), json, &mut out)?;
        }
        Command::Check { fail_on } => {
            let store = ops::open_or_demo(&path, now)?;
            if !posture::check(&store, &fail_on, &mut out)? {
                out.flush()?;
                return Ok(ExitCode::from(3));
            }
        }
        Command::Diagnostics { out: file } => {
            let store = ops::open_or_demo(&path, now)?;
            let d = ops::diagnostics(&store, custodian::logging::log_dir(path.file()).as_deref())?;
            std::fs::write(&file, serde_json::to_string_pretty(&d)?).map_err(|e| {
                Error::new(
                    ErrorCode::Storage,
                    format!("cannot write {}: {e}", file.display()),
                )
            })?;
            writeln!(out, "Wrote {}", file.display())?;
        }
        Command::Authz { identity, json } => {
            let store = ops::open_or_demo(&path, now)?;
            let r = ops::authorization(&store, &identity)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                writeln!(
                    out,
                    "{} ({}), owner {} ({})",
                    r.name,
                    r.source,
                    r.owner.as_deref().unwrap_or("none"),
                    r.ownership
                )?;
                writeln!(
                    out,
                    "  {}",
                    r.registered.as_deref().unwrap_or("not registered")
                )?;
                for c in &r.certifications {
                    writeln!(out, "  certified: {c}")?;
                }
                for e in &r.entries {
                    let chain: Vec<&str> = e.chain.iter().map(|h| h.name.as_str()).collect();
                    writeln!(
                        out,
                        "  {} {} via {} {}",
                        custodian::sanitize::pad(&e.resource, 36),
                        custodian::sanitize::pad(&e.permission, 32),
                        custodian::sanitize::pad(&chain.join(" -> "), 40),
                        e.certified.as_deref().unwrap_or("never certified")
                    )?;
                }
                writeln!(out, "  {} audit entries", r.audit.len())?;
            }
        }
        Command::Posture { json } => {
            let store = ops::open_or_demo(&path, now)?;
            posture::posture(&store, json, now, &mut out)?;
        }
        Command::Task(reviews::TaskCmd::WriteBack { task, json }) => {
            let mut store = ops::open_or_demo(&path, now)?;
            let actor = ops::actor(&store, cli.as_person.as_deref())?;
            let r = ops::write_back_task(
                &mut store,
                &KeyringSecrets::default(),
                actor,
                task,
                custodian::sync::http::HttpPolicy::default(),
                now,
            )?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                writeln!(out, "Task #{} {}: {}", r.task_id, r.status.as_str(), r.note)?;
            }
        }
        Command::Task(cmd) => {
            let mut store = ops::open_or_demo(&path, now)?;
            reviews::task(&mut store, cli.as_person.as_deref(), cmd, now, &mut out)?;
        }
        Command::Audit(cmd) => {
            let store = ops::open_or_demo(&path, now)?;
            reviews::audit(&store, cmd, now, &mut out)?;
        }
        Command::Db(cmd) => db::run(cmd, &path, &mut out)?,
        Command::Workspace(cmd) => workspace_cmd::run(cmd, &path, &mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one secret line from standard input (never echoed, never logged).
pub(crate) fn read_secret() -> Result<String> {
    // One line, or a whole PEM private key (keyless sources).
    custodian::sync::secrets::read_secret_from(&mut std::io::stdin().lock())
}

/// A progress bar on stderr when it is a terminal (and not in JSON mode).
fn progress_printer(json: bool) -> ProgressFn {
    let tty = !json && std::io::stderr().is_terminal();
    Arc::new(move |p: &SyncProgress| {
        if !tty {
            return;
        }
        let bar = match p.total {
            Some(t) if t > 0 => {
                let filled = ((p.items.min(t) * 30) / t) as usize;
                format!(
                    "[{}{}] {}/{}",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    p.items,
                    t
                )
            }
            _ => format!("{} items, {} pages", p.items, p.pages),
        };
        eprint!("\r\x1b[2K{:<11} {bar}", p.phase);
        if p.phase == "done" {
            eprintln!();
        }
    })
}

fn parse_all<T: std::str::FromStr<Err = Error>>(values: &[String]) -> Result<Vec<T>> {
    values.iter().map(|v| v.parse()).collect()
}

fn inventory_query(a: InventoryArgs) -> Result<InventoryQuery> {
    Ok(InventoryQuery {
        search: a.search.unwrap_or_default(),
        kinds: parse_all::<IdentityKind>(&a.kind)?,
        statuses: parse_all::<IdentityStatus>(&a.status)?,
        classes: parse_all::<AgentClass>(&a.class)?,
        sources: a.source,
        owner: a.owner,
        owner_state: a.owner_state.map(|s| match s {
            OwnerStateArg::Owned => OwnerState::Owned,
            OwnerStateArg::Departed => OwnerState::Departed,
            OwnerStateArg::None => OwnerState::None,
        }),
        has_findings: if a.has_findings {
            Some(true)
        } else if a.no_findings {
            Some(false)
        } else {
            None
        },
        sort: match a.sort {
            SortArg::Name => SortKey::Name,
            SortArg::Kind => SortKey::Kind,
            SortArg::Status => SortKey::Status,
            SortArg::Owner => SortKey::Owner,
            SortArg::Source => SortKey::Source,
            SortArg::Credentials => SortKey::Credentials,
            SortArg::OldestCredential => SortKey::OldestCredential,
            SortArg::Grants => SortKey::Grants,
            SortArg::Risk => SortKey::Risk,
            SortArg::LastUsed => SortKey::LastUsed,
            SortArg::Created => SortKey::Created,
        },
        descending: a.desc,
        offset: a.offset,
        limit: a.limit,
    })
}

fn print_inventory(out: &mut impl Write, page: &InventoryPage) -> Result<()> {
    writeln!(
        out,
        "{:>7}  {:<36} {:<16} {:<9} {:<24} {:>5} {:>6} {:<9}",
        "ID", "NAME", "KIND", "STATUS", "OWNER", "CREDS", "GRANTS", "RISK"
    )?;
    for r in &page.rows {
        let owner = match (&r.owner_name, r.owner_status) {
            (Some(n), Some(s)) if s != custodian::model::PersonStatus::Active => {
                format!("{n} ({s})")
            }
            (Some(n), _) => n.clone(),
            (None, _) => "-".into(),
        };
        let risk = r
            .max_severity
            .map_or("-".to_string(), |s| format!("{s}({})", r.finding_count));
        // Outside text is escaped, cut and padded by display width
        // (sanitize::cell), so the columns line up whatever a name holds.
        writeln!(
            out,
            "{:>7}  {} {:<16} {:<9} {} {:>5} {:>6} {:<9}",
            r.id,
            custodian::sanitize::cell(&r.name, 36),
            r.kind.as_str(),
            r.status.as_str(),
            custodian::sanitize::cell(&owner, 24),
            r.credential_count,
            r.grant_count,
            risk
        )?;
    }
    let shown_to = page.offset as usize + page.rows.len();
    writeln!(
        out,
        "-- {}-{} of {} identities",
        (page.offset as usize + 1).min(shown_to),
        shown_to,
        page.total
    )?;
    Ok(())
}

fn print_detail(out: &mut impl Write, d: &IdentityDetail) -> Result<()> {
    writeln!(out, "{} (#{}, {})", d.name, d.id, d.external_id)?;
    let class = d.agent_class.map(|c| format!(" / {c}")).unwrap_or_default();
    writeln!(out, "  kind:        {}{}", d.kind, class)?;
    writeln!(
        out,
        "  status:      {}{}",
        d.status,
        if d.registered {
            ", registered"
        } else {
            ", discovered (unregistered)"
        }
    )?;
    writeln!(out, "  source:      {}", d.source)?;
    writeln!(out, "  team:        {} ({})", d.team, d.environment)?;
    writeln!(out, "  purpose:     {}", d.purpose)?;
    let person = |p: &Option<custodian::views::PersonRef>| match p {
        Some(p) => format!("{} <{}> ({})", p.display_name, p.email, p.status),
        None => "none".into(),
    };
    writeln!(out, "  owner:       {}", person(&d.owner))?;
    writeln!(out, "  builder:     {}", person(&d.builder))?;
    if !d.intended_blast_radius.is_empty() {
        writeln!(out, "  intended:    {}", d.intended_blast_radius)?;
    }
    writeln!(
        out,
        "  last used:   {}",
        d.last_used_at.as_deref().unwrap_or("never")
    )?;
    writeln!(
        out,
        "  reviewed:    {}",
        d.last_reviewed_at.as_deref().unwrap_or("never")
    )?;
    writeln!(out, "Credentials ({}):", d.credentials.len())?;
    for c in &d.credentials {
        let expiry = match c.expires_in_days {
            None => "never expires".to_string(),
            Some(n) if n < 0 => format!("expired {} days ago", -n),
            Some(n) => format!("expires in {n} days"),
        };
        let used = c
            .last_used_days
            .map_or("never used".to_string(), |n| format!("used {n} days ago"));
        writeln!(
            out,
            "  - {} [{}] age {} days, {expiry}, {used}",
            c.display_name, c.kind, c.age_days
        )?;
    }
    writeln!(out, "Grants ({}):", d.grants.len())?;
    for g in &d.grants {
        writeln!(
            out,
            "  - {} {} on {} ({}, {}){}",
            g.privilege,
            g.permission,
            g.resource_name,
            g.resource_kind,
            g.sensitivity,
            if g.high_consequence {
                "  HIGH-CONSEQUENCE"
            } else {
                ""
            }
        )?;
    }
    writeln!(out, "Delegates to ({}):", d.delegations_out.len())?;
    for x in &d.delegations_out {
        writeln!(
            out,
            "  -> {} {} (#{}, {})",
            x.kind, x.other_name, x.other_id, x.other_kind
        )?;
    }
    writeln!(out, "Delegated from ({}):", d.delegations_in.len())?;
    for x in &d.delegations_in {
        writeln!(
            out,
            "  <- {} {} (#{}, {})",
            x.kind, x.other_name, x.other_id, x.other_kind
        )?;
    }
    writeln!(out, "Findings ({}):", d.findings.len())?;
    for f in &d.findings {
        writeln!(
            out,
            "  - [{}] {} ({} {}): {}",
            f.severity, f.title, f.owasp, f.owasp_title, f.evidence
        )?;
    }
    Ok(())
}
