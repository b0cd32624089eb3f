//! `custodian offboard|depart|cases|team|register|retire|timeline|confirm`:
//! offboarding and the identity lifecycle from the command line.

use std::io::Write;

use chrono::{DateTime, Utc};

use custodian::model::AgentClass;
use custodian::offboarding::{OffboardAction, OffboardPlan, OffboardingCase, Registration};
use custodian::store::Store;
use custodian::{ops, Error, Result};

#[derive(clap::Args)]
pub struct OffboardArgs {
    /// The departing person (id, email or name).
    person: String,
    /// Plan: transfer to this person (id, email or name).
    #[arg(long, conflicts_with_all = ["retire", "keep_with"])]
    transfer_to: Option<String>,
    /// Plan: retire (disable, revoke credentials).
    #[arg(long)]
    retire: bool,
    /// Plan: keep under this temporary owner (with --until).
    #[arg(long, requires = "until")]
    keep_with: Option<String>,
    /// Deadline for the temporary owner (YYYY-MM-DD).
    #[arg(long)]
    until: Option<String>,
    /// With --transfer-to: rotate the secrets the leaver could know.
    #[arg(long)]
    rotate: bool,
    /// Limit the plan to these identities (names, comma-separated); default: every undecided item.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Apply every planned item (after recording this plan).
    #[arg(long)]
    apply: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct RegisterArgs {
    /// The identity (id, external id or exact name).
    identity: String,
    #[arg(long)]
    purpose: String,
    /// personal, consumer_assistant, workforce_assistant, digital_worker.
    #[arg(long)]
    class: Option<String>,
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    builder: Option<String>,
    /// The data it reads or changes, in words.
    #[arg(long, default_value = "")]
    data: String,
    /// What it may do, in words.
    #[arg(long, default_value = "")]
    intended: String,
    #[arg(long)]
    review_days: Option<i64>,
}

fn print_case(out: &mut impl Write, c: &OffboardingCase) -> Result<()> {
    let s = &c.summary;
    writeln!(
        out,
        "Offboarding case #{} for {} <{}> ({}): {}",
        s.id, s.person, s.email, s.status, s.reason
    )?;
    writeln!(
        out,
        "  decided by {}; {} items, {} decided, {} applied; {} review items still assigned to them",
        s.manager.as_deref().unwrap_or("(no active manager)"),
        s.items,
        s.decided,
        s.applied,
        s.pending_reviews
    )?;
    for i in &c.items {
        let plan = match i.action {
            None => "undecided".to_string(),
            Some(OffboardAction::Transfer) => format!(
                "transfer to {}{}",
                i.new_owner.as_deref().unwrap_or("?"),
                if i.rotate { " + rotate secrets" } else { "" }
            ),
            Some(OffboardAction::Keep) => format!(
                "keep with {} until {}",
                i.new_owner.as_deref().unwrap_or("?"),
                i.until.as_deref().map_or("?", |u| &u[..10.min(u.len())])
            ),
            Some(OffboardAction::Retire) => "retire".into(),
        };
        let applied = if i.applied_at.is_some() {
            " (applied)"
        } else {
            ""
        };
        writeln!(
            out,
            "  #{:<6} {} {:<16} {:<14} {plan}{applied}",
            i.id,
            custodian::sanitize::pad(&i.name, 36),
            i.kind.as_str(),
            i.relation
        )?;
        let p = &i.preview;
        writeln!(
            out,
            "          {} grants ({} high-consequence), {} delegations, {} findings, {} secrets{}",
            p.grants,
            p.high_consequence_grants,
            p.delegations_out,
            p.findings.len(),
            p.secrets.len(),
            if p.sensitive_resources.is_empty() {
                String::new()
            } else {
                format!("; reaches {}", p.sensitive_resources.join(", "))
            }
        )?;
        if i.action.is_none() && !i.suggestions.is_empty() {
            let s: Vec<String> = i
                .suggestions
                .iter()
                .map(|s| format!("{} ({})", s.name, s.reason))
                .collect();
            writeln!(out, "          suggested owners: {}", s.join("; "))?;
        }
    }
    for t in &c.tasks {
        writeln!(
            out,
            "  task #{:<5} {:<18} {:<7} {}",
            t.id,
            t.kind.as_str(),
            t.status.as_str(),
            t.target
        )?;
    }
    Ok(())
}

pub fn offboard(
    store: &mut Store,
    as_person: Option<&str>,
    a: OffboardArgs,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    let case = ops::offboard_person(store, &a.person, now)?;
    let id = case.summary.id;
    let action = if a.retire {
        Some(OffboardAction::Retire)
    } else if a.transfer_to.is_some() {
        Some(OffboardAction::Transfer)
    } else if a.keep_with.is_some() {
        Some(OffboardAction::Keep)
    } else {
        None
    };
    if let Some(action) = action {
        let actor = ops::actor(store, as_person)?;
        let owner = match a.transfer_to.as_deref().or(a.keep_with.as_deref()) {
            Some(r) => Some(store.resolve_person(r)?),
            None => None,
        };
        let items = a
            .only
            .iter()
            .map(|name| {
                case.items
                    .iter()
                    .find(|i| i.name.eq_ignore_ascii_case(name.trim()))
                    .map(|i| i.id)
                    .ok_or_else(|| Error::invalid(format!("'{name}' is not an item of case {id}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let n = ops::plan_offboarding(
            store,
            actor,
            id,
            &OffboardPlan {
                items,
                action,
                owner,
                until: a.until,
                rotate: a.rotate,
            },
            now,
        )?;
        if !a.json {
            writeln!(out, "Planned {n} item(s): {}", action.as_str())?;
        }
    }
    if a.apply {
        let actor = ops::actor(store, as_person)?;
        let r = ops::apply_offboarding(store, actor, id, now)?;
        if a.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            return Ok(());
        }
        writeln!(
            out,
            "Applied: {} transferred, {} kept with a temporary owner, {} retired; {} task(s); {} review item(s) moved{}",
            r.transferred,
            r.kept,
            r.retired,
            r.tasks,
            r.reviews_moved,
            if r.closed { "; case closed" } else { "" }
        )?;
    }
    let case = ops::offboarding_case(store, id)?;
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&case)?)?;
    } else {
        print_case(out, &case)?;
    }
    Ok(())
}

pub fn cases(store: &Store, status: Option<&str>, json: bool, out: &mut impl Write) -> Result<()> {
    let list = ops::offboarding_cases(store, status, None)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
    } else {
        for c in list {
            writeln!(
                out,
                "#{:<5} {:<6} {} {:>4} items ({} decided, {} applied)  {}",
                c.id,
                c.status,
                custodian::sanitize::pad(&c.person, 28),
                c.items,
                c.decided,
                c.applied,
                c.reason
            )?;
        }
    }
    Ok(())
}

pub fn team(
    store: &Store,
    as_person: Option<&str>,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let who = ops::actor(store, as_person)?;
    let t = ops::team(store, who)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&t)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} direct reports; {} open cases ({} items to decide); {} review items waiting for you",
        t.members.len(),
        t.cases.len(),
        t.undecided_items,
        t.pending_reviews
    )?;
    for m in &t.members {
        writeln!(
            out,
            "  {} {:<10} owns {:<4}{}",
            custodian::sanitize::pad(&m.name, 28),
            m.status.as_str(),
            m.owns,
            m.case_id.map(|c| format!(" case #{c}")).unwrap_or_default()
        )?;
    }
    Ok(())
}

pub fn register(
    store: &mut Store,
    as_person: Option<&str>,
    a: RegisterArgs,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    let actor = ops::actor(store, as_person)?;
    let reg = Registration {
        purpose: a.purpose,
        agent_class: a
            .class
            .as_deref()
            .map(|c| c.parse::<AgentClass>())
            .transpose()?,
        owner: a
            .owner
            .as_deref()
            .map(|r| store.resolve_person(r))
            .transpose()?,
        builder: a
            .builder
            .as_deref()
            .map(|r| store.resolve_person(r))
            .transpose()?,
        data_touched: a.data,
        intended_blast_radius: a.intended,
        review_interval_days: a.review_days,
    };
    ops::register_identity(store, actor, &a.identity, &reg, now)?;
    writeln!(out, "Registered {}", a.identity)?;
    Ok(())
}

pub fn timeline(store: &Store, identity: &str, json: bool, out: &mut impl Write) -> Result<()> {
    let id = store.resolve_identity(identity)?;
    let t = ops::identity_timeline(store, id.0)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&t)?)?;
    } else {
        for e in t {
            writeln!(
                out,
                "{}  {} {:<16} {} {}",
                &e.at[..19.min(e.at.len())],
                custodian::sanitize::pad(&e.source, 10),
                e.kind,
                custodian::sanitize::pad(&e.actor, 20),
                e.summary
            )?;
        }
    }
    Ok(())
}
