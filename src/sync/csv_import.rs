//! Spreadsheet import: the agent registry many teams keep today, as CSV or
//! XLSX (the first worksheet; the first row holds the column names).
//!
//! One row per identity. Columns (header names, case-insensitive, any order):
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `name` | yes | display name |
//! | `kind` | yes | ai_agent, service_account, oauth_app, api_key, workload, bot |
//! | `external_id` | no | stable id in the registry (default: `name`) |
//! | `class` | no | personal, consumer_assistant, workforce_assistant, digital_worker |
//! | `status` | no | active (default), disabled, deleted |
//! | `purpose` | no | what it is for |
//! | `owner_email`, `builder_email` | no | matched to people from any source |
//! | `team`, `environment` | no | free text |
//! | `intended_blast_radius` | no | the owner's words for what it may do |
//! | `review_interval_days` | no | whole number of days |
//! | `created_at`, `last_used_at` | no | `YYYY-MM-DD` or RFC 3339 |
//! | `credential_kind` | no | client_secret, certificate, access_key, api_token, password, ssh_key, personal_access_token, federated_credential |
//! | `credential_name`, `credential_created_at`, `credential_expires_at`, `credential_last_rotated_at`, `credential_last_used_at` | no | the identity's credential, when `credential_kind` is set |
//!
//! Every bad row is reported with its line number, and nothing is imported
//! unless every row is good. Rows are registrations: imported identities
//! count as registered.

use std::collections::HashMap;
use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};

use super::records::*;
use super::{Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{AgentClass, CredentialKind, IdentityKind, IdentityStatus};

pub struct CsvSource;

const KNOWN: &[&str] = &[
    "name",
    "kind",
    "external_id",
    "class",
    "status",
    "purpose",
    "owner_email",
    "builder_email",
    "team",
    "environment",
    "intended_blast_radius",
    "review_interval_days",
    "created_at",
    "last_used_at",
    "credential_kind",
    "credential_name",
    "credential_created_at",
    "credential_expires_at",
    "credential_last_rotated_at",
    "credential_last_used_at",
];

/// How many row errors are listed before the rest are counted.
const MAX_LISTED: usize = 50;

impl Source for CsvSource {
    async fn fetch(&self, ctx: &SyncContext) -> Result<Fetched> {
        let path = ctx.setting("path")?;
        ctx.report("identities", 0, 0, None);
        let is_xlsx = path.to_ascii_lowercase().ends_with(".xlsx");
        let f = if is_xlsx {
            parse_registry_xlsx(std::path::Path::new(&path))?
        } else {
            let file = std::fs::File::open(&path)
                .map_err(|e| Error::invalid(format!("cannot read the spreadsheet {path}: {e}")))?;
            parse_registry(file)?
        };
        ctx.report(
            "identities",
            1,
            f.identities.len() as u64,
            Some(f.identities.len() as u64),
        );
        Ok(f)
    }
}

fn parse_time(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("'{s}' is not a date (YYYY-MM-DD or RFC 3339)"))
}

/// Parses a registry CSV. All-or-nothing: any bad row fails the whole import
/// with every problem listed by line.
pub fn parse_registry<R: Read>(input: R) -> Result<Fetched> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::invalid(format!("line 1: cannot read the header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader.into_records().enumerate().map(|(n, rec)| match rec {
        Ok(r) => (
            r.position().map_or(n as u64 + 2, |p| p.line()),
            Ok(r.iter().map(str::to_string).collect()),
        ),
        Err(e) => (
            e.position().map_or(n as u64 + 2, |p| p.line()),
            Err(e.to_string()),
        ),
    });
    parse_rows(&headers, rows)
}

/// Parses the first worksheet of an XLSX workbook; row numbers are the
/// sheet's own.
pub fn parse_registry_xlsx(path: &std::path::Path) -> Result<Fetched> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::invalid(format!("cannot read the workbook {}: {e}", path.display())))?;
    parse_registry_xlsx_from(std::io::BufReader::new(file), &path.display().to_string())
}

/// [`parse_registry_xlsx`] over bytes already read (`what` names them in
/// errors).
pub fn parse_registry_xlsx_bytes(data: &[u8], what: &str) -> Result<Fetched> {
    parse_registry_xlsx_from(std::io::Cursor::new(data), what)
}

/// The most columns a registry sheet may use: far more than the registry
/// has, and a bound on what one row can allocate.
const XLSX_MAX_COLUMNS: u32 = 256;
/// The most non-empty cells read from one sheet.
const XLSX_MAX_CELLS: usize = 5_000_000;

fn parse_registry_xlsx_from<R: std::io::Read + std::io::Seek>(
    reader: R,
    what: &str,
) -> Result<Fetched> {
    // calamine overflows on absurd cell references ("A99999999999"), which
    // panics in debug builds; a damaged workbook must be an error, never a
    // crash.
    let rows = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_xlsx_cells(reader, what)
    }))
    .map_err(|_| {
        Error::invalid(format!(
            "the workbook {what} is damaged: a cell reference is out of range"
        ))
    })??;
    let mut it = rows.into_iter();
    let dense = |cells: Vec<(u32, String)>| -> Vec<String> {
        let width = cells
            .iter()
            .map(|(c, _)| *c as usize + 1)
            .max()
            .unwrap_or(0);
        let mut row = vec![String::new(); width];
        for (c, v) in cells {
            row[c as usize] = v;
        }
        row
    };
    let headers: Vec<String> = it.next().map(|(_, cells)| dense(cells)).unwrap_or_default();
    let body = it.map(|(r, cells)| (u64::from(r) + 1, Ok(dense(cells))));
    parse_rows(&headers, body)
}

/// The first worksheet's non-empty cells as text, by row (0-based) then
/// column, streamed: memory follows the cells present, not the sheet's
/// extent (one cell at XFD1048576 must not allocate 17 billion).
fn read_xlsx_cells<R: std::io::Read + std::io::Seek>(
    reader: R,
    what: &str,
) -> Result<std::collections::BTreeMap<u32, Vec<(u32, String)>>> {
    use calamine::{DataRef, Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(reader)
        .map_err(|e| Error::invalid(format!("cannot read the workbook {what}: {e}")))?;
    let first = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid(format!("{what} has no worksheet")))?;
    let bad_sheet = |e: calamine::XlsxError| {
        Error::invalid(format!("cannot read the first worksheet of {what}: {e}"))
    };
    let mut cells = book.worksheet_cells_reader(&first).map_err(bad_sheet)?;
    let text = |d: &DataRef<'_>| -> String {
        match d {
            DataRef::Empty => String::new(),
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
            DataRef::SharedString(s) => (*s).to_string(),
            DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
            DataRef::Float(f) => f.to_string(),
            DataRef::Int(i) => i.to_string(),
            DataRef::Bool(b) => b.to_string(),
            DataRef::DateTime(dt) => dt
                .as_datetime()
                .map(|t| {
                    if t.time() == chrono::NaiveTime::MIN {
                        t.format("%Y-%m-%d").to_string()
                    } else {
                        t.and_utc().to_rfc3339()
                    }
                })
                .unwrap_or_else(|| dt.to_string()),
            DataRef::Error(e) => format!("#ERROR {e:?}"),
        }
    };
    let mut rows: std::collections::BTreeMap<u32, Vec<(u32, String)>> = Default::default();
    let mut count = 0usize;
    while let Some(cell) = cells.next_cell().map_err(bad_sheet)? {
        let (r, c) = cell.get_position();
        let v = text(cell.get_value());
        if v.trim().is_empty() {
            continue;
        }
        if c >= XLSX_MAX_COLUMNS {
            return Err(Error::invalid(format!(
                "line {}: {what} has a value in column {} (more than {XLSX_MAX_COLUMNS} columns; the registry has {})",
                u64::from(r) + 1,
                u64::from(c) + 1,
                KNOWN.len()
            )));
        }
        count += 1;
        if count > XLSX_MAX_CELLS {
            return Err(Error::invalid(format!(
                "{what} has more than {XLSX_MAX_CELLS} filled cells: split the registry"
            )));
        }
        rows.entry(r).or_default().push((c, v));
    }
    Ok(rows)
}

fn parse_rows(
    headers: &[String],
    rows: impl Iterator<Item = (u64, std::result::Result<Vec<String>, String>)>,
) -> Result<Fetched> {
    let mut col: HashMap<String, usize> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let key = h
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase()
            .replace([' ', '-'], "_");
        if !KNOWN.contains(&key.as_str()) {
            problems.push(format!(
                "line 1: unknown column '{h}' (known: {})",
                KNOWN.join(", ")
            ));
        } else if col.insert(key.clone(), i).is_some() {
            problems.push(format!("line 1: column '{key}' appears twice"));
        }
    }
    for required in ["name", "kind"] {
        if !col.contains_key(required) {
            problems.push(format!(
                "line 1: the required column '{required}' is missing"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::invalid(format!(
            "the spreadsheet was not imported:\n  {}",
            problems.join("\n  ")
        )));
    }

    let mut f = Fetched::new(FetchMode::Full);
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut bad_rows = 0usize;
    for (line, rec) in rows {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                bad_rows += 1;
                problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let get = |k: &str| {
            col.get(k)
                .and_then(|&i| rec.get(i))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let mut row_problems: Vec<String> = Vec::new();
        let mut time = |k: &str| -> Option<DateTime<Utc>> {
            get(k).and_then(|v| {
                parse_time(v)
                    .map_err(|e| row_problems.push(format!("{k}: {e}")))
                    .ok()
            })
        };
        let created_at = time("created_at");
        let last_used_at = time("last_used_at");
        let c_created = time("credential_created_at");
        let c_expires = time("credential_expires_at");
        let c_rotated = time("credential_last_rotated_at");
        let c_used = time("credential_last_used_at");
        let name = get("name");
        if name.is_none() {
            row_problems.push("name is empty".into());
        }
        let kind = match get("kind") {
            None => {
                row_problems.push("kind is empty".into());
                None
            }
            Some(k) => k
                .parse::<IdentityKind>()
                .map_err(|e| row_problems.push(e.message))
                .ok(),
        };
        let class = get("class").and_then(|c| {
            c.parse::<AgentClass>()
                .map_err(|e| row_problems.push(e.message))
                .ok()
        });
        let status = match get("status") {
            None => Some(IdentityStatus::Active),
            Some(s) => s
                .parse::<IdentityStatus>()
                .map_err(|e| row_problems.push(e.message))
                .ok(),
        };
        let interval = get("review_interval_days").and_then(|v| match v.parse::<i64>() {
            Ok(d) if d > 0 => Some(d),
            _ => {
                row_problems.push(format!(
                    "review_interval_days: '{v}' is not a positive whole number"
                ));
                None
            }
        });
        let cred_kind = get("credential_kind").and_then(|c| {
            c.parse::<CredentialKind>()
                .map_err(|e| row_problems.push(e.message))
                .ok()
        });
        if cred_kind.is_none() && get("credential_kind").is_none() {
            for k in [
                "credential_name",
                "credential_created_at",
                "credential_expires_at",
            ] {
                if get(k).is_some() {
                    row_problems.push(format!("{k} is set but credential_kind is empty"));
                }
            }
        }
        if class.is_some() && kind.is_some_and(|k| k != IdentityKind::AiAgent) {
            row_problems.push("class applies only to kind ai_agent".into());
        }
        let external_id = get("external_id").or(name).unwrap_or_default().to_string();
        if let Some(first) = seen.get(&external_id) {
            row_problems.push(format!(
                "external_id '{external_id}' is already used on line {first}"
            ));
        }
        if !row_problems.is_empty() {
            bad_rows += 1;
            if problems.len() < MAX_LISTED {
                problems.push(format!("line {line}: {}", row_problems.join("; ")));
            }
            continue;
        }
        seen.insert(external_id.clone(), line);
        let (Some(name), Some(kind), Some(status)) = (name, kind, status) else {
            continue;
        };
        let email = |k: &str| get(k).map(|e| PersonKey::Email(e.to_string()));
        let purpose = get("purpose").unwrap_or_default().to_string();
        f.identities.push(IdentityRecord {
            external_id: external_id.clone(),
            name: name.to_string(),
            kind,
            agent_class: class,
            status,
            description: purpose.clone(),
            owner: email("owner_email"),
            builder: email("builder_email"),
            team: get("team").unwrap_or_default().to_string(),
            environment: get("environment").unwrap_or_default().to_string(),
            registration: Some(Registration {
                purpose,
                agent_class: class,
                intended_blast_radius: get("intended_blast_radius").unwrap_or_default().to_string(),
                review_interval_days: interval,
            }),
            created_at,
            last_used_at,
        });
        if let Some(ck) = cred_kind {
            f.credentials.push(CredentialRecord {
                identity: external_id.clone(),
                external_id: format!("{external_id}#credential"),
                kind: ck,
                display_name: get("credential_name").unwrap_or(ck.as_str()).to_string(),
                created_at: c_created.or(created_at),
                expires_at: c_expires,
                last_rotated_at: c_rotated,
                last_used_at: c_used,
            });
        }
    }
    if !problems.is_empty() {
        let more = bad_rows.saturating_sub(problems.len());
        let tail = if more > 0 {
            format!("\n  ... and {more} more bad rows")
        } else {
            String::new()
        };
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "the spreadsheet was not imported: {bad_rows} bad row(s)\n  {}{tail}",
                problems.join("\n  ")
            ),
        ));
    }
    Ok(f)
}
