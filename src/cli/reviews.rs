//! `custodian campaign …`, `whoami`, `tasks`, `task`, `audit`: access reviews
//! from the command line. Who acts is `--as <person>` (id, email or name),
//! else the acting person chosen in the app or with `whoami --set`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use custodian::campaigns::*;
use custodian::model::{AgentClass, IdentityKind, IdentityStatus, Severity};
use custodian::store::Store;
use custodian::views::OwnerState;
use custodian::{ops, Error, Result};

#[derive(Subcommand)]
pub enum CampaignCmd {
    /// Create a campaign; it starts at once unless --start is later.
    Create(Box<CreateArgs>),
    /// All campaigns with their progress.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One campaign: progress by reviewer and by decision, tasks.
    Show {
        campaign: CampaignId,
        #[arg(long)]
        json: bool,
    },
    /// A campaign's items (every reviewer).
    Items {
        campaign: CampaignId,
        /// Include decided items.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
        #[arg(long)]
        json: bool,
    },
    /// My review queue: pending items assigned to the acting person.
    Queue {
        #[arg(long)]
        campaign: Option<CampaignId>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
        #[arg(long)]
        json: bool,
    },
    /// Decide items assigned to you: keep, revoke, rotate, retire, reassign.
    Decide {
        /// Item ids (see `campaign queue`).
        #[arg(required = true)]
        items: Vec<ReviewItemId>,
        /// keep, revoke, rotate, retire or reassign.
        #[arg(long, required_unless_present = "follow_recommendation")]
        decision: Option<String>,
        #[arg(long, default_value = "")]
        justification: String,
        /// For reassign: the new owner (id, email or name).
        #[arg(long)]
        new_owner: Option<String>,
        /// Record each item's recommendation.
        #[arg(long)]
        follow_recommendation: bool,
    },
    /// Move undecided items to another reviewer (campaign owner or the items' reviewer).
    Reassign {
        #[arg(required = true)]
        items: Vec<ReviewItemId>,
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason: String,
    },
    /// Move pending items (of one reviewer, or all) to the fallback reviewer.
    Escalate {
        campaign: CampaignId,
        #[arg(long)]
        reviewer: Option<String>,
    },
    /// Move a reviewer's undecided items to another person (say why).
    Delegate {
        campaign: CampaignId,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason: String,
    },
    /// Record that a reviewer was reminded.
    Remind {
        campaign: CampaignId,
        #[arg(long)]
        reviewer: String,
    },
    /// Close: decide undecided items by policy and create remediation tasks.
    Close {
        campaign: CampaignId,
        /// keep, revoke or recommendation.
        #[arg(long)]
        undecided: String,
        #[arg(long)]
        json: bool,
    },
    /// Write the evidence (CSV, JSON, print-ready HTML).
    Export {
        campaign: CampaignId,
        /// Folder (default: Documents/Custodian).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "")]
    description: String,
    /// owner, owner_manager, resource_owner or named.
    #[arg(long, default_value = "owner")]
    rule: String,
    /// For the named rule.
    #[arg(long)]
    named: Option<String>,
    /// Who reviews when the rule yields nobody or someone inactive.
    #[arg(long)]
    fallback: String,
    /// Optional second-stage reviewer.
    #[arg(long)]
    second: Option<String>,
    /// identities, access or all.
    #[arg(long, default_value = "all")]
    granularity: String,
    /// none, monthly, quarterly, semi_annual, annual.
    #[arg(long, default_value = "none")]
    recurrence: String,
    /// YYYY-MM-DD or RFC 3339 (default: now).
    #[arg(long)]
    start: Option<String>,
    /// YYYY-MM-DD or RFC 3339.
    #[arg(long)]
    due: String,
    // Scope.
    #[arg(long, value_delimiter = ',')]
    kind: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    class: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    source: Vec<i64>,
    /// owned, departed or none.
    #[arg(long)]
    owner_state: Option<String>,
    #[arg(long)]
    has_findings: bool,
    /// low, medium, high, critical.
    #[arg(long)]
    min_severity: Option<String>,
    #[arg(long)]
    not_reviewed_days: Option<i64>,
    #[arg(long)]
    search: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum TaskCmd {
    /// Mark a remediation task done.
    Done {
        task: TaskId,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Mark a remediation task failed (say why).
    Failed {
        task: TaskId,
        #[arg(long)]
        note: String,
    },
    /// Carry the task out in its source (needs `source write-back <source> on`):
    /// marks it done, or failed with the source's answer.
    WriteBack {
        task: TaskId,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain of the audit log (or of an exported file).
    Verify {
        /// An export (JSON Lines) to check instead of the cache.
        #[arg(long)]
        file: Option<PathBuf>,
        /// A head hash published elsewhere: the log must contain it.
        #[arg(long)]
        head: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Export the log with its chain (JSON Lines) for offline verification.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// The newest entries.
    Log {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

fn parse_list<T>(values: &[String], parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    values.iter().map(|v| parse(v)).collect()
}

fn person(store: &Store, r: &str) -> Result<i64> {
    store.resolve_person(r)
}

fn owner_state(s: &str) -> Result<OwnerState> {
    match s.trim() {
        "owned" => Ok(OwnerState::Owned),
        "departed" => Ok(OwnerState::Departed),
        "none" => Ok(OwnerState::None),
        other => Err(Error::invalid(format!(
            "'{other}' is not an owner state: owned, departed or none"
        ))),
    }
}

pub fn create(
    store: &mut Store,
    actor: i64,
    a: CreateArgs,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    let scope = CampaignScope {
        search: a.search.unwrap_or_default(),
        kinds: parse_list(&a.kind, |s| s.parse::<IdentityKind>())?,
        statuses: parse_list(&a.status, |s| s.parse::<IdentityStatus>())?,
        classes: parse_list(&a.class, |s| s.parse::<AgentClass>())?,
        sources: a.source,
        owner_state: a.owner_state.as_deref().map(owner_state).transpose()?,
        has_findings: a.has_findings.then_some(true),
        min_severity: a
            .min_severity
            .as_deref()
            .map(|s| s.parse::<Severity>())
            .transpose()?,
        not_reviewed_days: a.not_reviewed_days,
    };
    let c = NewCampaign {
        name: a.name,
        description: a.description,
        scope,
        granularity: Granularity::parse(&a.granularity)?,
        reviewer_rule: ReviewerRule::parse(&a.rule)?,
        named_reviewer: a.named.as_deref().map(|r| person(store, r)).transpose()?,
        fallback_reviewer: person(store, &a.fallback)?,
        second_reviewer: a.second.as_deref().map(|r| person(store, r)).transpose()?,
        recurrence: Recurrence::parse(&a.recurrence)?,
        start_at: a.start,
        due_at: a.due,
    };
    let tty = !a.json && std::io::stderr().is_terminal();
    let progress = move |done: u64, total: u64| {
        if tty && total > 0 {
            eprint!("\rgenerating items: {done}/{total}   ");
        }
    };
    let v = ops::create_campaign(store, actor, &c, now, &progress)?;
    if tty {
        eprintln!();
    }
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(
            out,
            "Campaign #{} '{}' {}: {} items, due {}",
            v.id,
            v.name,
            v.status.as_str(),
            v.items,
            v.due_at
        )?;
    }
    Ok(())
}

fn print_items(out: &mut impl Write, q: &ReviewQueue) -> Result<()> {
    writeln!(
        out,
        "{} items, {} pending (showing {} from {})",
        q.total,
        q.pending,
        q.items.len(),
        q.offset
    )?;
    for i in &q.items {
        let decision = match (i.decision, i.proposed) {
            (Some(d), _) => format!(
                "{}{}",
                d.as_str(),
                if i.by_policy { " (policy)" } else { "" }
            ),
            (None, Some(p)) => format!("stage 2: {} proposed", p.as_str()),
            (None, None) => "pending".into(),
        };
        writeln!(
            out,
            "#{:<7} {:<6} {:<10} {} {} rec {:<8} {:<22} {} {}",
            i.id,
            i.risk,
            i.item_type.as_str(),
            cell(&i.subject, 28),
            cell(&i.detail, 44),
            i.recommendation.as_str(),
            decision,
            cell(i.reviewer.as_deref().unwrap_or("-"), 16),
            i.reasons.join("; ")
        )?;
    }
    Ok(())
}

/// A table cell of outside text: escaped, cut and padded by display width.
fn cell(s: &str, n: usize) -> String {
    custodian::sanitize::cell(s, n)
}

#[allow(clippy::too_many_lines)]
pub fn campaign(
    store: &mut Store,
    as_person: Option<&str>,
    cmd: CampaignCmd,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    match cmd {
        CampaignCmd::Create(a) => {
            let actor = ops::actor(store, as_person)?;
            create(store, actor, *a, now, out)?;
        }
        CampaignCmd::List { json } => {
            let list = ops::campaigns(store, now)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for c in list {
                    writeln!(
                        out,
                        "#{:<4} {:<9} {} due {}  {}/{} decided{}  owner {}",
                        c.id,
                        c.status.as_str(),
                        cell(&c.name, 36),
                        &c.due_at[..10.min(c.due_at.len())],
                        c.decided,
                        c.items,
                        if c.overdue > 0 {
                            format!(", {} overdue", c.overdue)
                        } else {
                            String::new()
                        },
                        c.owner
                    )?;
                }
            }
        }
        CampaignCmd::Show { campaign, json } => {
            let p = ops::campaign_progress(store, campaign, now)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&p)?)?;
            } else {
                let c = &p.campaign;
                writeln!(out, "Campaign #{} {} ({})", c.id, c.name, c.status.as_str())?;
                writeln!(
                    out,
                    "  owner {}, rule {}, fallback {}",
                    c.owner,
                    c.reviewer_rule.as_str(),
                    c.fallback_reviewer
                )?;
                writeln!(
                    out,
                    "  {} to {}; {}/{} decided, {} overdue, {} vanished",
                    c.start_at, c.due_at, c.decided, c.items, c.overdue, p.vanished
                )?;
                writeln!(out, "By reviewer:")?;
                for r in &p.by_reviewer {
                    writeln!(
                        out,
                        "  {} pending {:<6} decided {:<6}{}",
                        custodian::sanitize::pad(&r.reviewer, 28),
                        r.pending,
                        r.decided,
                        if r.reminder_due { "  reminder due" } else { "" }
                    )?;
                }
                writeln!(out, "By decision:")?;
                for d in &p.by_decision {
                    writeln!(
                        out,
                        "  {:<10} {}",
                        d.decision.map_or("undecided", |d| d.as_str()),
                        d.count
                    )?;
                }
                if !p.tasks.is_empty() {
                    writeln!(out, "Tasks:")?;
                    for t in &p.tasks {
                        writeln!(
                            out,
                            "  #{:<5} {:<18} {:<7} {}",
                            t.id,
                            t.kind.as_str(),
                            t.status.as_str(),
                            t.target
                        )?;
                    }
                }
            }
        }
        CampaignCmd::Items {
            campaign,
            all,
            limit,
            offset,
            json,
        } => {
            let q = QueueQuery {
                include_decided: all,
                limit,
                offset,
                ..Default::default()
            };
            let page = ops::campaign_items(store, campaign, &q)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&page)?)?;
            } else {
                print_items(out, &page)?;
            }
        }
        CampaignCmd::Queue {
            campaign,
            limit,
            offset,
            json,
        } => {
            let actor = ops::actor(store, as_person)?;
            let q = QueueQuery {
                campaign,
                limit,
                offset,
                ..Default::default()
            };
            let page = ops::review_queue(store, actor, &q)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&page)?)?;
            } else {
                print_items(out, &page)?;
            }
        }
        CampaignCmd::Decide {
            items,
            decision,
            justification,
            new_owner,
            follow_recommendation,
        } => {
            let actor = ops::actor(store, as_person)?;
            let input = DecisionInput {
                items,
                decision: match decision {
                    Some(d) => Decision::parse(&d)?,
                    None => Decision::Keep,
                },
                justification,
                new_owner: new_owner.as_deref().map(|r| person(store, r)).transpose()?,
                follow_recommendation,
            };
            let n = ops::decide(store, actor, &input, now)?;
            writeln!(out, "Recorded {n} decision(s)")?;
        }
        CampaignCmd::Reassign { items, to, reason } => {
            let actor = ops::actor(store, as_person)?;
            let to = person(store, &to)?;
            let n = ops::reassign_reviewer(store, actor, &items, to, &reason, now)?;
            writeln!(out, "Moved {n} item(s)")?;
        }
        CampaignCmd::Escalate { campaign, reviewer } => {
            let actor = ops::actor(store, as_person)?;
            let reviewer = reviewer.as_deref().map(|r| person(store, r)).transpose()?;
            let n = ops::escalate(store, actor, campaign, reviewer, now)?;
            writeln!(out, "Escalated {n} item(s) to the fallback reviewer")?;
        }
        CampaignCmd::Delegate {
            campaign,
            from,
            to,
            reason,
        } => {
            let actor = ops::actor(store, as_person)?;
            let (from, to) = (person(store, &from)?, person(store, &to)?);
            let n = ops::delegate_reviewer(store, actor, campaign, from, to, &reason, now)?;
            writeln!(out, "Delegated {n} item(s)")?;
        }
        CampaignCmd::Remind { campaign, reviewer } => {
            let actor = ops::actor(store, as_person)?;
            let reviewer = person(store, &reviewer)?;
            ops::remind(store, actor, campaign, reviewer, now)?;
            writeln!(out, "Reminder recorded")?;
        }
        CampaignCmd::Close {
            campaign,
            undecided,
            json,
        } => {
            let actor = ops::actor(store, as_person)?;
            let r = ops::close_campaign(
                store,
                actor,
                campaign,
                UndecidedPolicy::parse(&undecided)?,
                now,
            )?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
            } else {
                writeln!(
                    out,
                    "Closed campaign #{}: {} decided by reviewers, {} by the '{}' policy, {} remediation task(s){}",
                    r.campaign_id,
                    r.decided_by_people,
                    r.decided_by_policy,
                    undecided,
                    r.tasks,
                    r.next_campaign.map(|n| format!("; next run scheduled as #{n}")).unwrap_or_default()
                )?;
            }
        }
        CampaignCmd::Export { campaign, dir } => {
            let dir = match dir {
                Some(d) => d,
                None => ops::default_export_dir()?,
            };
            for f in ops::export_campaign(store, campaign, &dir, now)? {
                writeln!(out, "{}", f.display())?;
            }
        }
    }
    Ok(())
}

pub fn whoami(
    store: &mut Store,
    set: Option<&str>,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    let p = match set {
        Some(r) => Some(ops::set_acting_person(store, r, now)?),
        None => ops::acting_person(store)?,
    };
    match p {
        Some(p) => writeln!(out, "{} <{}> (#{})", p.display_name, p.email, p.id)?,
        None => writeln!(
            out,
            "nobody chosen: `custodian whoami --set <email>` or pass --as"
        )?,
    }
    Ok(())
}

pub fn tasks(
    store: &Store,
    campaign: Option<CampaignId>,
    status: Option<&str>,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let status = status.map(TaskStatus::parse).transpose()?;
    let list = ops::tasks(store, campaign, status)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
    } else {
        for t in list {
            writeln!(
                out,
                "#{:<6} {:<18} {:<7} {} {}{}",
                t.id,
                t.kind.as_str(),
                t.status.as_str(),
                cell(&t.identity, 28),
                t.target,
                t.new_owner.map(|o| format!(" → {o}")).unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

pub fn task(
    store: &mut Store,
    as_person: Option<&str>,
    cmd: TaskCmd,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    let actor = ops::actor(store, as_person)?;
    let (task, status, note) = match cmd {
        TaskCmd::Done { task, note } => (task, TaskStatus::Done, note),
        TaskCmd::Failed { task, note } => (task, TaskStatus::Failed, note),
        TaskCmd::WriteBack { .. } => {
            return Err(custodian::Error::internal(
                "write-back is handled by the caller, which holds the keyring",
            ))
        }
    };
    ops::set_task_status(store, actor, task, status, &note, now)?;
    writeln!(out, "Task #{task} {}", status.as_str())?;
    Ok(())
}

/// Exits non-zero (through the error) when the chain does not verify.
pub fn audit(store: &Store, cmd: AuditCmd, now: DateTime<Utc>, out: &mut impl Write) -> Result<()> {
    match cmd {
        AuditCmd::Verify { file, head, json } => {
            use custodian::store::audit;
            let verifier = audit::Verifier::for_engine(store.engine());
            let v = match file {
                Some(f) => {
                    let text = std::fs::read_to_string(&f)
                        .map_err(|e| Error::invalid(format!("cannot read {}: {e}", f.display())))?;
                    audit::verify_export(&text, head.as_deref(), &verifier)?
                }
                None => {
                    let v = store.verify_audit_with(&verifier)?;
                    match head {
                        Some(h) if v.ok && !store.audit_contains(&h)? => audit::AuditVerification {
                            ok: false,
                            problem: Some(format!(
                                "the published head {h} is not in this log: it was truncated before that entry, or rewritten"
                            )),
                            ..v
                        },
                        _ => v,
                    }
                }
            };
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else if v.ok {
                let state = if v.signature == audit::SIG_VERIFIED {
                    "verified and signed"
                } else if v.signature == audit::SIG_UNSIGNED {
                    "chain intact, unsigned"
                } else {
                    "chain intact, signature not checked"
                };
                writeln!(
                    out,
                    "Audit log {state}: {} entries, head {}",
                    v.entries, v.head
                )?;
                if let Some(note) = &v.signature_note {
                    writeln!(out, "  {note}")?;
                }
            }
            if !v.ok {
                return Err(audit::broken_error(&v));
            }
        }
        AuditCmd::Export { out: path } => {
            let tmp = path.with_extension("partial");
            let file = std::fs::File::create(&tmp).map_err(|e| {
                Error::new(
                    custodian::ErrorCode::Storage,
                    format!("cannot write {}: {e}", tmp.display()),
                )
            })?;
            let mut w = std::io::BufWriter::new(file);
            let (n, head) = store.export_audit(&mut w, &now.to_rfc3339())?;
            w.flush()?;
            drop(w);
            std::fs::rename(&tmp, &path)?;
            writeln!(
                out,
                "Exported {n} entries to {} (head {head})",
                path.display()
            )?;
        }
        AuditCmd::Log { limit, json } => {
            let entries = store.audit_tail(limit)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
            } else {
                for e in entries {
                    let at = chrono::DateTime::from_timestamp(e.at, 0)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "#{:<6} {at}  {} {} {}  {}",
                        e.seq,
                        custodian::sanitize::pad(&e.actor, 20),
                        custodian::sanitize::pad(&e.action, 26),
                        e.subject,
                        e.details
                    )?;
                }
            }
        }
    }
    Ok(())
}
