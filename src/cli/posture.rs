//! `custodian blast|who-can-reach|paths-to-admin|link|findings|check|posture`.

use std::io::Write;

use chrono::{DateTime, Utc};

use custodian::model::{DelegationKind, Severity};
use custodian::store::Store;
use custodian::{ops, Error, Result};

/// A chain on one terminal line, each link with its kind, reason and
/// condition: `a -assume_role (only if …)-> b`. Names, reasons and
/// conditions are outside text: every hidden character, newlines and tabs
/// included, is written visibly so the line stays one line.
fn chain_text(chain: &[custodian::blast::Hop]) -> String {
    custodian::blast::chain_text(chain, |s| custodian::sanitize::visible(s, &[]).into_owned())
}

/// A grant's condition after its permission: `; unless …` (outside text,
/// made visible like the chain's).
fn qualifier(condition: Option<&str>) -> String {
    condition
        .map(|c| format!("; {}", custodian::sanitize::visible(c, &[])))
        .unwrap_or_default()
}

pub fn blast(
    store: &Store,
    identity: Option<&str>,
    top: Option<usize>,
    format: &str,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    if let Some(n) = top {
        let rank = ops::blast_rank(store, n)?;
        if format == "json" {
            writeln!(out, "{}", serde_json::to_string_pretty(&rank)?)?;
        } else {
            for (i, r) in rank.iter().enumerate() {
                writeln!(
                    out,
                    "{:>4}. {} {:<16} score {:>8.1}  {} identities, {} resources, {} high-consequence",
                    i + 1,
                    custodian::sanitize::pad(&r.name, 40),
                    r.kind.as_str(),
                    r.score,
                    r.reachable_identities,
                    r.resources,
                    r.high_consequence
                )?;
            }
        }
        return Ok(());
    }
    let identity = identity
        .ok_or_else(|| Error::invalid("name an identity, or use --top N for the ranking"))?;
    let b = ops::blast(store, identity)?;
    match format {
        "json" => writeln!(out, "{}", serde_json::to_string_pretty(&b)?)?,
        "md" | "markdown" => write!(
            out,
            "{}",
            custodian::blast::to_markdown(
                &b,
                &now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        )?,
        "text" => {
            writeln!(
                out,
                "{} ({}): blast-radius score {:.1}",
                b.name,
                b.kind.as_str(),
                b.score
            )?;
            for e in &b.explanation {
                writeln!(out, "  {e}")?;
            }
            writeln!(out, "Reaches {} identities:", b.reachable.len())?;
            for r in &b.reachable {
                writeln!(out, "  {}", chain_text(&r.chain))?;
            }
            writeln!(
                out,
                "High-consequence actions ({}):",
                b.high_consequence.len()
            )?;
            for h in b.high_consequence.iter().take(20) {
                writeln!(
                    out,
                    "  {:<10} {} on {} (held by {}, {} hop(s))",
                    h.category, h.permission, h.resource, h.holder, h.hops
                )?;
            }
            writeln!(
                out,
                "Intended: {}",
                if b.intended.is_empty() {
                    "(nothing documented)"
                } else {
                    &b.intended
                }
            )?;
            for d in &b.differences {
                writeln!(out, "  ! {d}")?;
            }
        }
        other => {
            return Err(Error::invalid(format!(
                "'{other}' is not a format: text, md or json"
            )))
        }
    }
    Ok(())
}

pub fn who_can_reach(
    store: &Store,
    resource: &str,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let v = ops::who_can_reach(store, resource)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for r in v {
            writeln!(
                out,
                "{} {:<16} {} hop(s)  {} ({}{})  via {}",
                custodian::sanitize::pad(&r.name, 40),
                r.kind.as_str(),
                r.hops,
                r.permission,
                r.privilege.as_str(),
                qualifier(r.condition.as_deref()),
                chain_text(&r.chain)
            )?;
        }
    }
    Ok(())
}

pub fn paths_to_admin(store: &Store, limit: usize, json: bool, out: &mut impl Write) -> Result<()> {
    let v = ops::paths_to_admin(store, limit)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for p in v {
            writeln!(
                out,
                "{} -> admin on {} ({}{}) via {}",
                custodian::sanitize::pad(&p.name, 40),
                p.resource,
                p.permission,
                qualifier(p.condition.as_deref()),
                chain_text(&p.chain)
            )?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn link(
    store: &mut Store,
    actor: i64,
    from: &str,
    to: &str,
    kind: &str,
    note: &str,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<()> {
    let kind: DelegationKind = kind.parse()?;
    ops::link_identities(store, actor, from, to, kind, note, now)?;
    writeln!(out, "Documented: {from} can {} {to}", kind.as_str())?;
    Ok(())
}

pub fn findings(store: &Store, min: Option<&str>, json: bool, out: &mut impl Write) -> Result<()> {
    let min = min.map(|s| s.parse::<Severity>()).transpose()?;
    let counts: Vec<_> = ops::finding_counts(store)?
        .into_iter()
        .filter(|c| min.is_none_or(|m| c.severity >= m))
        .collect();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&counts)?)?;
    } else {
        for c in counts {
            writeln!(
                out,
                "{:<9} {:<6} {:<28} {:>6} identities  {}  — {}",
                c.severity.as_str(),
                c.owasp,
                c.check_id,
                c.identities,
                c.title,
                c.fix
            )?;
        }
    }
    Ok(())
}

/// For pipelines: exit 3 when any finding is at least `fail_on`.
pub fn check(store: &Store, fail_on: &str, out: &mut impl Write) -> Result<bool> {
    let min: Severity = fail_on.parse()?;
    let bad: Vec<_> = ops::finding_counts(store)?
        .into_iter()
        .filter(|c| c.severity >= min)
        .collect();
    let total: i64 = bad.iter().map(|c| c.identities).sum();
    if bad.is_empty() {
        writeln!(out, "ok: no findings at {} or above", min.as_str())?;
        Ok(true)
    } else {
        for c in &bad {
            writeln!(
                out,
                "{:<9} {:<28} {:>6} identities  {}",
                c.severity.as_str(),
                c.check_id,
                c.identities,
                c.title
            )?;
        }
        writeln!(out, "FAIL: {total} finding(s) at {} or above", min.as_str())?;
        Ok(false)
    }
}

pub fn posture(store: &Store, json: bool, now: DateTime<Utc>, out: &mut impl Write) -> Result<()> {
    let p = ops::posture(store, now)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&p)?)?;
        return Ok(());
    }
    let f = &p.figures;
    let opt = |v: Option<i64>| v.map_or("-".to_string(), |n| n.to_string());
    writeln!(
        out,
        "NHIs {} ({} AI agents); owned {:.1}%, orphaned {}; unregistered agents {}",
        f.nhis, f.ai_agents, f.owned_pct, f.orphaned, f.unregistered_agents
    )?;
    writeln!(
        out,
        "credentials: stale {}, never expiring {}, expired {}; unreviewed {}; high blast radius {}",
        opt(f.stale_credentials),
        f.never_expiring,
        f.expired_credentials,
        opt(f.unreviewed),
        opt(f.high_blast)
    )?;
    writeln!(
        out,
        "findings {} ({} critical, {} high)",
        f.findings, f.critical_findings, f.high_findings
    )?;
    if !p.fix_first.is_empty() {
        writeln!(out, "fix first (severity x blast radius):")?;
        for (i, x) in p.fix_first.iter().enumerate() {
            writeln!(
                out,
                "  {:>2}. {:<8} {}  {}: {} (blast {:.0})\n      fix: {}",
                i + 1,
                x.severity.as_str(),
                custodian::sanitize::terminal(&x.name),
                x.title,
                custodian::sanitize::terminal(&x.evidence),
                x.blast_score,
                x.fix
            )?;
        }
    }
    writeln!(out, "trend (orphaned / never expiring):")?;
    for s in &p.trend {
        writeln!(
            out,
            "  {}  {:<13} nhis {:>6}  orphaned {:>6}  never-expiring {:>6}",
            &s.at[..10.min(s.at.len())],
            s.origin,
            s.figures.nhis,
            s.figures.orphaned,
            s.figures.never_expiring
        )?;
    }
    Ok(())
}
