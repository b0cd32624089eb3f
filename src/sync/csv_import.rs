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
//!
//! Limits on outside input ([`Limits::DEFAULT`]): the file is at most 64 MiB,
//! at most 200,000 rows, a cell at most 16 KiB, a workbook's cells at most
//! 128 MiB of text in all (shared strings are counted each time a cell
//! uses them), and an error lists its first 100 problems (each cut to 300
//! characters) then counts the rest. Past a limit the import stops with an
//! error naming it, and nothing is imported.

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

/// Bounds on what one spreadsheet may make Custodian read, hold and say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The file's size on disk (CSV text, or the XLSX zip).
    pub file_bytes: u64,
    /// Data rows (the header not counted; bad rows counted).
    pub rows: usize,
    /// One cell's text, in bytes.
    pub cell_bytes: usize,
    /// All cells' text together, in bytes (what a workbook expands to).
    pub total_bytes: usize,
    /// Problems listed in an error before the rest are counted.
    pub listed: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        file_bytes: 64 << 20,
        rows: 200_000,
        cell_bytes: 16 << 10,
        total_bytes: 128 << 20,
        listed: 100,
    };
}

/// The most characters of one problem line kept in an error message.
const MAX_PROBLEM_CHARS: usize = 300;

fn too_big(what: &str, size: u64, limits: &Limits) -> Error {
    Error::invalid(format!(
        "{what} is {size} bytes; the registry import reads at most {} bytes: split the registry",
        limits.file_bytes
    ))
}

fn cell_too_big(line: u64, bytes: usize, limits: &Limits) -> Error {
    Error::invalid(format!(
        "line {line}: a cell holds {bytes} bytes; a registry cell may hold at most {} bytes: nothing was imported",
        limits.cell_bytes
    ))
}

fn too_many_rows(limits: &Limits) -> Error {
    Error::invalid(format!(
        "the spreadsheet has more than {} rows, the most one registry import takes: split it; nothing was imported",
        limits.rows
    ))
}

/// Cuts one problem line for an error message.
fn clip(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_PROBLEM_CHARS) {
        s.truncate(i);
        s.push('…');
    }
    s
}

/// A reader that fails once more than `left` bytes have been read, so a
/// file that grows, or a pipe, cannot exceed the size limit either.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(CAPPED_MESSAGE));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

const CAPPED_MESSAGE: &str = "the size limit of the registry import was reached";

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
            let limits = Limits::DEFAULT;
            if let Ok(m) = file.metadata() {
                if m.len() > limits.file_bytes {
                    return Err(too_big(&path, m.len(), &limits));
                }
            }
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
    parse_registry_with(input, &Limits::DEFAULT)
}

/// [`parse_registry`] under other limits.
pub fn parse_registry_with<R: Read>(input: R, limits: &Limits) -> Result<Fetched> {
    let limits = *limits;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(Capped {
            inner: input,
            left: limits.file_bytes,
        });
    let fatal_io = |e: &csv::Error| -> Option<Error> {
        match e.kind() {
            csv::ErrorKind::Io(io) if io.to_string() == CAPPED_MESSAGE => Some(Error::invalid(
                format!(
                    "the spreadsheet is larger than {} bytes, the most the registry import reads: split it; nothing was imported",
                    limits.file_bytes
                ),
            )),
            csv::ErrorKind::Io(io) => Some(Error::invalid(format!(
                "cannot read the spreadsheet: {io}"
            ))),
            _ => None,
        }
    };
    let header = reader.headers().map_err(|e| {
        fatal_io(&e)
            .unwrap_or_else(|| Error::invalid(format!("line 1: cannot read the header row: {e}")))
    })?;
    if let Some(big) = header.iter().map(str::len).find(|&n| n > limits.cell_bytes) {
        return Err(cell_too_big(1, big, &limits));
    }
    let headers: Vec<String> = header.iter().map(str::to_string).collect();
    let rows = reader
        .into_records()
        .enumerate()
        .map(move |(n, rec)| match rec {
            Ok(r) => {
                let line = r.position().map_or(n as u64 + 2, |p| p.line());
                if let Some(big) = r.iter().map(str::len).find(|&n| n > limits.cell_bytes) {
                    return Err(cell_too_big(line, big, &limits));
                }
                Ok((line, Ok(r.iter().map(str::to_string).collect())))
            }
            Err(e) => match fatal_io(&e) {
                Some(fatal) => Err(fatal),
                None => Ok((
                    e.position().map_or(n as u64 + 2, |p| p.line()),
                    Err(e.to_string()),
                )),
            },
        });
    parse_rows(&headers, rows, &limits)
}

/// Parses the first worksheet of an XLSX workbook; row numbers are the
/// sheet's own.
pub fn parse_registry_xlsx(path: &std::path::Path) -> Result<Fetched> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::invalid(format!("cannot read the workbook {}: {e}", path.display())))?;
    let limits = Limits::DEFAULT;
    let what = path.display().to_string();
    if let Ok(m) = file.metadata() {
        if m.len() > limits.file_bytes {
            return Err(too_big(&what, m.len(), &limits));
        }
    }
    parse_registry_xlsx_from(std::io::BufReader::new(file), &what, &limits)
}

/// [`parse_registry_xlsx`] over bytes already read (`what` names them in
/// errors).
pub fn parse_registry_xlsx_bytes(data: &[u8], what: &str) -> Result<Fetched> {
    parse_registry_xlsx_bytes_with(data, what, &Limits::DEFAULT)
}

/// [`parse_registry_xlsx_bytes`] under other limits.
pub fn parse_registry_xlsx_bytes_with(data: &[u8], what: &str, limits: &Limits) -> Result<Fetched> {
    if data.len() as u64 > limits.file_bytes {
        return Err(too_big(what, data.len() as u64, limits));
    }
    parse_registry_xlsx_from(std::io::Cursor::new(data), what, limits)
}

/// The most columns a registry sheet may use: far more than the registry
/// has, and a bound on what one row can allocate.
const XLSX_MAX_COLUMNS: u32 = 256;
/// The most non-empty cells read from one sheet.
const XLSX_MAX_CELLS: usize = 5_000_000;

fn parse_registry_xlsx_from<R: std::io::Read + std::io::Seek>(
    reader: R,
    what: &str,
    limits: &Limits,
) -> Result<Fetched> {
    // calamine overflows on absurd cell references ("A99999999999"), which
    // panics in debug builds; a damaged workbook must be an error, never a
    // crash.
    let rows = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_xlsx_cells(reader, what, limits)
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
    let body = it.map(|(r, cells)| Ok((u64::from(r) + 1, Ok(dense(cells)))));
    parse_rows(&headers, body, limits)
}

/// The first worksheet's non-empty cells as text, by row (0-based) then
/// column, streamed: memory follows the cells present, not the sheet's
/// extent (one cell at XFD1048576 must not allocate 17 billion).
fn read_xlsx_cells<R: std::io::Read + std::io::Seek>(
    reader: R,
    what: &str,
    limits: &Limits,
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
    // Text cells are measured before they are copied: a shared string is
    // held once by calamine, but would be copied for every cell using it.
    let text = |d: &DataRef<'_>| -> std::result::Result<String, usize> {
        let checked = |s: &str| {
            if s.len() > limits.cell_bytes {
                Err(s.len())
            } else {
                Ok(s.to_string())
            }
        };
        Ok(match d {
            DataRef::Empty => String::new(),
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => checked(s)?,
            DataRef::SharedString(s) => checked(s)?,
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
        })
    };
    let mut rows: std::collections::BTreeMap<u32, Vec<(u32, String)>> = Default::default();
    let mut count = 0usize;
    let mut total = 0usize;
    while let Some(cell) = cells.next_cell().map_err(bad_sheet)? {
        let (r, c) = cell.get_position();
        let v = text(cell.get_value())
            .map_err(|bytes| cell_too_big(u64::from(r) + 1, bytes, limits))?;
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
        total += v.len();
        if total > limits.total_bytes {
            return Err(Error::invalid(format!(
                "{what} holds more than {} bytes of text in its cells, the most one registry import reads: split it; nothing was imported",
                limits.total_bytes
            )));
        }
        if !rows.contains_key(&r) && rows.len() > limits.rows {
            // The header row plus `rows` data rows are already held.
            return Err(too_many_rows(limits));
        }
        rows.entry(r).or_default().push((c, v));
    }
    Ok(rows)
}

/// One data row: its line, and its cells or why it could not be read. An
/// `Err` item is fatal (a limit, an I/O failure): parsing stops there.
type Row = Result<(u64, std::result::Result<Vec<String>, String>)>;

fn parse_rows(
    headers: &[String],
    rows: impl Iterator<Item = Row>,
    limits: &Limits,
) -> Result<Fetched> {
    let mut col: HashMap<String, usize> = HashMap::new();
    let mut problems: Vec<String> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let key = h
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase()
            .replace([' ', '-'], "_");
        if problems.len() >= limits.listed {
            problems.push(format!(
                "line 1: ... and {} more columns not checked",
                headers.len() - i
            ));
            break;
        }
        if !KNOWN.contains(&key.as_str()) {
            problems.push(clip(format!(
                "line 1: unknown column '{h}' (known: {})",
                KNOWN.join(", ")
            )));
        } else if col.insert(key.clone(), i).is_some() {
            problems.push(clip(format!("line 1: column '{key}' appears twice")));
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
    let mut count = 0usize;
    for row in rows {
        let (line, rec) = row?;
        count += 1;
        if count > limits.rows {
            return Err(too_many_rows(limits));
        }
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                bad_rows += 1;
                if problems.len() < limits.listed {
                    problems.push(clip(format!("line {line}: {e}")));
                }
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
            if problems.len() < limits.listed {
                problems.push(clip(format!("line {line}: {}", row_problems.join("; "))));
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
            format!("\n  ... and {more} more bad row(s) not listed")
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn csv_err(text: &str, limits: &Limits) -> Error {
        match parse_registry_with(text.as_bytes(), limits) {
            Ok(f) => panic!("imported {} identities", f.identities.len()),
            Err(e) => e,
        }
    }

    #[test]
    fn a_csv_over_the_row_cap_is_refused() {
        let mut text = String::from("name,kind\n");
        for i in 0..=Limits::DEFAULT.rows {
            text.push_str(&format!("agent-{i},bot\n"));
        }
        let e = csv_err(&text, &Limits::DEFAULT);
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("more than 200000 rows"), "{}", e.message);
        // At the cap exactly, it imports.
        let at_cap: String = text
            .lines()
            .take(Limits::DEFAULT.rows + 1)
            .collect::<Vec<_>>()
            .join("\n");
        let f = parse_registry(at_cap.as_bytes()).unwrap();
        assert_eq!(f.identities.len(), Limits::DEFAULT.rows);
    }

    #[test]
    fn a_ragged_csv_lists_the_first_problems_and_counts_the_rest() {
        let bad = 100_000;
        let mut text = String::from("name,kind\n");
        for i in 0..bad {
            text.push_str(&format!("agent-{i},bot,extra-{}\n", "x".repeat(10)));
        }
        let e = csv_err(&text, &Limits::DEFAULT);
        let m = &e.message;
        assert!(m.contains(&format!("{bad} bad row(s)")), "{}", &m[..200]);
        assert!(m.contains("line 2:") && m.contains("line 101:"), "{m}");
        assert!(!m.contains("line 102:"), "{m}");
        assert!(
            m.ends_with("... and 99900 more bad row(s) not listed"),
            "{m}"
        );
        // 100 lines of at most 300 characters, and a head and a tail.
        assert!(
            m.len() < 100 * (MAX_PROBLEM_CHARS * 4 + 8) + 200,
            "{}",
            m.len()
        );
    }

    #[test]
    fn a_huge_csv_cell_or_file_is_refused_naming_the_limit() {
        let text = format!("name,kind,purpose\na,bot,{}\n", "p".repeat(20_000));
        let e = csv_err(&text, &Limits::DEFAULT);
        assert!(
            e.message.contains("line 2: a cell holds 20000 bytes")
                && e.message.contains("at most 16384 bytes"),
            "{}",
            e.message
        );
        let small = Limits {
            file_bytes: 1_000,
            ..Limits::DEFAULT
        };
        let mut text = String::from("name,kind\n");
        for i in 0..200 {
            text.push_str(&format!("agent-{i},bot\n"));
        }
        let e = csv_err(&text, &small);
        assert!(
            e.message.contains("larger than 1000 bytes"),
            "{}",
            e.message
        );
        // A huge header cell, and a header with a million columns.
        let e = csv_err(&format!("{},kind\n", "h".repeat(20_000)), &Limits::DEFAULT);
        assert!(e.message.contains("line 1: a cell holds"), "{}", e.message);
        let wide = format!("name,kind{}\na,bot\n", ",c".repeat(1_000_000));
        let e = csv_err(&wide, &Limits::DEFAULT);
        assert!(e.message.len() < 64 * 1024, "{}", e.message.len());
        assert!(e.message.contains("more columns not checked"));
    }

    fn workbook(rows: &[Vec<String>]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                sheet.write_string(r as u32, c as u16, v).unwrap();
            }
        }
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn a_huge_cell_in_a_workbook_is_refused() {
        let head = vec!["name".to_string(), "kind".into(), "purpose".into()];
        let data = workbook(&[
            head.clone(),
            vec!["a".into(), "bot".into(), "p".repeat(20_000)],
        ]);
        let e = parse_registry_xlsx_bytes(&data, "big.xlsx").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(
            e.message.contains("line 2: a cell holds 20000 bytes")
                && e.message.contains("at most 16384 bytes"),
            "{}",
            e.message
        );
        // One shared string used by many cells: the total is bounded, so a
        // small workbook cannot expand into gigabytes.
        let shared = "s".repeat(10_000);
        let mut rows = vec![head];
        for i in 0..200 {
            rows.push(vec![format!("agent-{i}"), "bot".into(), shared.clone()]);
        }
        let data = workbook(&rows);
        assert!(data.len() < 100_000, "{}", data.len());
        let limits = Limits {
            total_bytes: 1 << 20,
            ..Limits::DEFAULT
        };
        let e = parse_registry_xlsx_bytes_with(&data, "shared.xlsx", &limits).unwrap_err();
        assert!(
            e.message.contains("more than 1048576 bytes of text"),
            "{}",
            e.message
        );
        // Under the default limits the same workbook imports.
        let f = parse_registry_xlsx_bytes(&data, "shared.xlsx").unwrap();
        assert_eq!(f.identities.len(), 200);
        // Rows past the cap, and a file past the size limit.
        let few = Limits {
            rows: 10,
            ..Limits::DEFAULT
        };
        let e = parse_registry_xlsx_bytes_with(&data, "shared.xlsx", &few).unwrap_err();
        assert!(e.message.contains("more than 10 rows"), "{}", e.message);
        let tiny = Limits {
            file_bytes: 1_000,
            ..Limits::DEFAULT
        };
        let e = parse_registry_xlsx_bytes_with(&data, "shared.xlsx", &tiny).unwrap_err();
        assert!(e.message.contains("at most 1000 bytes"), "{}", e.message);
    }
}
