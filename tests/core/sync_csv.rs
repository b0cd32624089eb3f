//! Spreadsheet (CSV) registry import.

use std::io::Write;
use std::sync::Arc;

use custodian::model::{IdentityKind, PersonStatus, SourceId};
use custodian::ops;
use custodian::store::Store;
use custodian::sync::csv_import::parse_registry;
use custodian::sync::http::Cancel;
use custodian::sync::secrets::MemorySecrets;
use custodian::sync::SyncProgress;
use custodian::ErrorCode;
use serde_json::json;

use crate::util::{now, OrgBuilder};

const GOOD: &str = "\
name,kind,class,purpose,owner_email,team,environment,intended_blast_radius,review_interval_days,created_at,credential_kind,credential_name,credential_created_at,credential_expires_at
invoice-triage,ai_agent,digital_worker,Triages supplier invoices,ada.okafor@example.test,Finance,production,Reads invoices; drafts approvals; never pays,90,2025-01-15,client_secret,prod-secret,2025-01-15,
support-summariser,ai_agent,workforce_assistant,Summarises tickets,nobody@example.test,Support,production,Reads tickets,180,2025-06-01,,,,
etl-nightly,service_account,,Nightly ETL,ada.okafor@example.test,Data,production,,,2024-03-01,password,etl-pw,2024-03-01,2027-03-01
";

fn store_with_people() -> Store {
    let mut b = OrgBuilder::new();
    b.person("Ada Okafor", PersonStatus::Active);
    let mut store = crate::util::test_store();
    store.replace_org(&b.org, now()).unwrap();
    store
}

fn import(
    store: &mut Store,
    path: &std::path::Path,
) -> custodian::Result<custodian::sync::SyncOutcome> {
    let id = match ops::resolve_source(store, "registry") {
        Ok(id) => id,
        Err(_) => {
            let s = ops::add_source(
                store,
                &MemorySecrets::default(),
                "csv",
                "registry",
                json!({"path": path.display().to_string()}),
                None,
                now(),
            )
            .unwrap();
            SourceId(s.id)
        }
    };
    ops::sync_source(
        store,
        id,
        &MemorySecrets::default(),
        Arc::new(|_: &SyncProgress| {}),
        Cancel::new(),
    )
}

#[test]
fn a_good_registry_registers_identities_with_owners_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.csv");
    std::fs::write(&path, GOOD).unwrap();
    let mut store = store_with_people();
    let out = import(&mut store, &path).unwrap();
    assert_eq!(out.report.joiners, 3);

    let d = ops::show(&store, "invoice-triage", now()).unwrap();
    assert!(d.registered);
    assert_eq!(d.kind, IdentityKind::AiAgent);
    assert_eq!(d.purpose, "Triages supplier invoices");
    assert_eq!(
        d.intended_blast_radius,
        "Reads invoices; drafts approvals; never pays"
    );
    assert_eq!(
        d.owner.as_ref().unwrap().display_name,
        "Ada Okafor",
        "owner matched by email across sources"
    );
    assert_eq!(d.credentials.len(), 1);
    assert_eq!(d.credentials[0].expires_in_days, None);
    let unknown_owner = ops::show(&store, "support-summariser", now()).unwrap();
    assert!(unknown_owner.owner.is_none());
    assert!(unknown_owner
        .findings
        .iter()
        .any(|f| f.check_id == "no-owner"));
}

#[test]
fn every_bad_row_is_named_and_nothing_is_imported() {
    let csv = "\
name,kind,class,review_interval_days,created_at
ok-agent,ai_agent,personal,30,2025-01-01
bad-kind,robot,,,
bad-class,service_account,personal,,
,bot,,,
bad-date,bot,,,31/12/2025
bad-interval,bot,,-4,
ok-agent,bot,,,
";
    let err = parse_registry(csv.as_bytes()).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let m = err.message;
    assert!(m.contains("6 bad row(s)"), "{m}");
    for (line, needle) in [
        (3, "'robot' is not a valid IdentityKind"),
        (4, "class applies only to kind ai_agent"),
        (5, "name is empty"),
        (6, "'31/12/2025' is not a date"),
        (7, "review_interval_days"),
        (8, "already used on line 2"),
    ] {
        let l = m
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("line {line}:")))
            .unwrap_or_else(|| panic!("line {line} missing in {m}"));
        assert!(l.contains(needle), "line {line}: {l}");
    }

    // Through the engine: the cache is untouched and the run says why.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.csv");
    std::fs::write(&path, GOOD).unwrap();
    let mut store = store_with_people();
    import(&mut store, &path).unwrap();
    let before = store.summary().unwrap();
    std::fs::write(&path, csv).unwrap();
    let err = import(&mut store, &path).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert_eq!(store.summary().unwrap(), before);
    let run = &store.sync_runs(None, 1).unwrap()[0];
    assert_eq!(run.status, "failed");
    assert!(run.error_message.as_deref().unwrap().contains("line 3"));
}

#[test]
fn header_problems_are_reported_on_line_one() {
    let err = parse_registry("name,flavour\nx,y\n".as_bytes()).unwrap_err();
    assert!(
        err.message.contains("line 1: unknown column 'flavour'"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("required column 'kind' is missing"),
        "{}",
        err.message
    );
    let err = parse_registry("name,kind\n\"unterminated,bot\n".as_bytes());
    assert!(err.is_err());
    let ragged = parse_registry("name,kind\na,bot,extra\n".as_bytes()).unwrap_err();
    assert!(ragged.message.contains("line 2"), "{}", ragged.message);
}

#[test]
fn reimport_updates_in_place_and_rows_removed_become_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.csv");
    std::fs::write(&path, GOOD).unwrap();
    let mut store = store_with_people();
    import(&mut store, &path).unwrap();
    let id = ops::show(&store, "etl-nightly", now()).unwrap().id;
    let mut f = std::fs::File::create(&path).unwrap();
    let without_etl: String = GOOD
        .lines()
        .filter(|l| !l.starts_with("etl-nightly"))
        .map(|l| format!("{l}\n"))
        .collect();
    f.write_all(without_etl.as_bytes()).unwrap();
    drop(f);
    let out = import(&mut store, &path).unwrap();
    assert_eq!(out.report.leavers, 1);
    let etl = ops::identity(&store, id, now()).unwrap();
    assert_eq!(etl.status.as_str(), "deleted");
    assert!(etl.credentials.is_empty());
}

#[test]
fn xlsx_workbooks_import_like_csv_with_sheet_row_numbers() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (c, h) in [
        "name",
        "kind",
        "class",
        "owner_email",
        "review_interval_days",
        "created_at",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "xlsx-agent").unwrap();
    sheet.write_string(1, 1, "ai_agent").unwrap();
    sheet.write_string(1, 2, "personal").unwrap();
    sheet.write_string(1, 3, "ada.okafor@example.test").unwrap();
    sheet.write_number(1, 4, 30.0).unwrap();
    sheet
        .write_datetime_with_format(1, 5, ExcelDateTime::from_ymd(2025, 3, 14).unwrap(), &date)
        .unwrap();
    book.save(&path).unwrap();

    let f = custodian::sync::csv_import::parse_registry_xlsx(&path).unwrap();
    assert_eq!(f.identities.len(), 1);
    let i = &f.identities[0];
    assert_eq!(
        i.registration.as_ref().unwrap().review_interval_days,
        Some(30)
    );
    assert_eq!(
        i.created_at.unwrap().to_rfc3339(),
        "2025-03-14T00:00:00+00:00"
    );

    let mut store = store_with_people();
    let s = ops::add_source(
        &mut store,
        &MemorySecrets::default(),
        "csv",
        "sheet",
        json!({"path": path.display().to_string()}),
        None,
        now(),
    )
    .unwrap();
    ops::sync_source(
        &mut store,
        SourceId(s.id),
        &MemorySecrets::default(),
        Arc::new(|_: &SyncProgress| {}),
        Cancel::new(),
    )
    .unwrap();
    assert_eq!(
        ops::show(&store, "xlsx-agent", now())
            .unwrap()
            .owner
            .unwrap()
            .display_name,
        "Ada Okafor"
    );

    // A bad row is named by its sheet row.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "name").unwrap();
    sheet.write_string(0, 1, "kind").unwrap();
    sheet.write_string(1, 0, "fine").unwrap();
    sheet.write_string(1, 1, "bot").unwrap();
    sheet.write_string(2, 0, "broken").unwrap();
    sheet.write_string(2, 1, "robot").unwrap();
    book.save(&path).unwrap();
    let err = custodian::sync::csv_import::parse_registry_xlsx(&path).unwrap_err();
    assert!(
        err.message.contains("line 3:") && err.message.contains("robot"),
        "{}",
        err.message
    );

    // Damaged workbooks (cut short, or not a workbook at all) are refused
    // with a reason, never a panic; the same bytes in memory parse alike.
    let bytes = std::fs::read(&path).unwrap();
    let err = custodian::sync::csv_import::parse_registry_xlsx_bytes(&bytes, "registry.xlsx")
        .unwrap_err();
    assert!(err.message.contains("line 3:"), "{}", err.message);
    for (what, data) in [
        ("cut short", &bytes[..bytes.len() / 2]),
        ("plain text", &b"name,kind\nx,bot\n"[..]),
    ] {
        let err = custodian::sync::csv_import::parse_registry_xlsx_bytes(data, "registry.xlsx")
            .unwrap_err();
        assert_eq!(
            err.code,
            custodian::error::ErrorCode::InvalidInput,
            "{what}"
        );
        assert!(
            err.message
                .contains("cannot read the workbook registry.xlsx"),
            "{what}: {}",
            err.message
        );
    }
}

/// Found by `cargo fuzz run registry_xlsx`: a cell reference whose row
/// overflows u32 panicked inside calamine (debug builds). It is an error.
#[test]
fn a_workbook_with_an_overflowing_cell_reference_is_an_error_not_a_crash() {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/xlsx/cell-reference-overflow.xlsx"
    ))
    .unwrap();
    let err =
        custodian::sync::csv_import::parse_registry_xlsx_bytes(&data, "fuzzed.xlsx").unwrap_err();
    assert_eq!(err.code, custodian::error::ErrorCode::InvalidInput);
    assert!(err.message.contains("fuzzed.xlsx"), "{}", err.message);
}

/// A sheet whose extent is the whole grid (one value at XFD1048576) is read
/// cell by cell: refused for its stray column, without allocating the grid
/// (17 billion cells: a dense read runs out of memory).
#[test]
fn a_workbook_spanning_the_whole_grid_is_refused_without_reading_the_grid() {
    use rust_xlsxwriter::Workbook;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "name").unwrap();
    sheet.write_string(0, 1, "kind").unwrap();
    sheet.write_string(1, 0, "far-agent").unwrap();
    sheet.write_string(1, 1, "ai_agent").unwrap();
    sheet.write_string(1_048_575, 16_383, "stray").unwrap();
    book.save(&path).unwrap();
    let err = custodian::sync::csv_import::parse_registry_xlsx(&path).unwrap_err();
    assert!(
        err.message.contains("line 1048576") && err.message.contains("column 16384"),
        "{}",
        err.message
    );

    // Far down but within the columns: read, and named by its own row.
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "name").unwrap();
    sheet.write_string(0, 1, "kind").unwrap();
    sheet.write_string(999_999, 0, "deep-agent").unwrap();
    sheet.write_string(999_999, 1, "robot").unwrap();
    book.save(&path).unwrap();
    let err = custodian::sync::csv_import::parse_registry_xlsx(&path).unwrap_err();
    assert!(
        err.message.contains("line 1000000:") && err.message.contains("robot"),
        "{}",
        err.message
    );
}

#[test]
fn an_unchanged_reimport_records_no_lifecycle_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.csv");
    std::fs::write(&path, GOOD).unwrap();
    let mut store = store_with_people();
    import(&mut store, &path).unwrap();
    let before = ops::show(&store, "invoice-triage", now()).unwrap();
    let again = import(&mut store, &path).unwrap();
    assert_eq!(
        (
            again.report.joiners,
            again.report.movers,
            again.report.leavers
        ),
        (0, 0, 0)
    );
    assert!(store.lifecycle_events(again.run).unwrap().is_empty());
    assert_eq!(ops::show(&store, "invoice-triage", now()).unwrap(), before);
}

#[test]
fn shared_cache_sync_and_connection_test_for_the_desktop_host() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.csv");
    std::fs::write(&path, GOOD).unwrap();
    let mut store = store_with_people();
    let src = ops::add_source(
        &mut store,
        &MemorySecrets::default(),
        "csv",
        "registry",
        json!({"path": path.display().to_string()}),
        None,
        now(),
    )
    .unwrap();
    let shared = std::sync::Mutex::new(store);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let secrets = MemorySecrets::default();
    let phases = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = phases.clone();
    let progress: custodian::sync::ProgressFn =
        Arc::new(move |p: &SyncProgress| sink.lock().unwrap().push(p.phase.clone()));

    let msg = rt
        .block_on(assert_send(ops::test_source(
            &shared,
            SourceId(src.id),
            &secrets,
            Cancel::new(),
        )))
        .unwrap();
    assert_eq!(
        msg,
        "connected: 0 people, 3 identities, 0 resources, 0 grants"
    );
    assert_eq!(
        shared.lock().unwrap().summary().unwrap().identities,
        0,
        "a connection test changes nothing"
    );

    let run = rt
        .block_on(assert_send(ops::sync_source_shared(
            &shared,
            SourceId(src.id),
            &secrets,
            progress,
            Cancel::new(),
        )))
        .unwrap();
    assert_eq!((run.status.as_str(), run.joiners), ("succeeded", 3));
    assert_eq!(*phases.lock().unwrap().last().unwrap(), "done");
    assert!(phases.lock().unwrap().iter().any(|p| p == "applying"));
}

/// Everything a failed first import must leave as it was, as comparable
/// JSON: the dataset marker, the summary, every inventory row, every
/// identity's detail, campaigns, every audit entry, the sources (less
/// `except`), their runs, posture, and the row count of every table.
fn org_fingerprint(store: &mut Store, except: Option<i64>) -> serde_json::Value {
    use custodian::views::InventoryQuery;
    let mut rows = Vec::new();
    loop {
        let page = ops::inventory(
            store,
            &InventoryQuery {
                limit: 1000,
                offset: rows.len() as u32,
                ..Default::default()
            },
            now(),
        )
        .unwrap();
        if page.rows.is_empty() {
            break;
        }
        rows.extend(page.rows);
    }
    let details: Vec<_> = rows
        .iter()
        .step_by(7)
        .map(|r| {
            store
                .identity_detail(custodian::model::IdentityId(r.id), now())
                .unwrap()
        })
        .collect();
    let sources: Vec<_> = ops::sources(store)
        .unwrap()
        .into_iter()
        .filter(|s| Some(s.id) != except)
        .collect();
    let runs: Vec<_> = ops::sync_runs(store, None, 10_000)
        .unwrap()
        .into_iter()
        .filter(|r| Some(r.source_id) != except)
        .collect();
    let mut counts = serde_json::Map::new();
    for t in [
        "identities",
        "people",
        "credentials",
        "grants",
        "resources",
        "delegations",
        "findings",
        "lifecycle_events",
        "campaigns",
        "campaign_items",
        "campaign_events",
        "tasks",
        "meta",
    ] {
        let n: i64 = store
            .raw_db()
            .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap();
        counts.insert(t.into(), n.into());
    }
    let mut posture = serde_json::to_value(ops::posture(store, now()).unwrap()).unwrap();
    round_floats(&mut posture);
    json!({
        "dataset": store.meta("dataset").unwrap(),
        "summary": ops::summary(store).unwrap(),
        "rows": rows,
        "details": details,
        "campaigns": store.campaigns(now()).unwrap(),
        "audit": store.audit_entries(0, 1_000_000).unwrap(),
        "audit_head": store.audit_head().unwrap(),
        "sources": sources,
        "runs": runs,
        "posture": posture,
        "counts": counts,
    })
}

/// Blast scores are sums over hash-ordered chains: equal up to the last
/// bits between two computations over the same data. Compared at 1e-6.
fn round_floats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = (n.as_f64().unwrap() * 1e6).round() / 1e6;
            *v = json!(x);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(round_floats),
        serde_json::Value::Object(m) => m.values_mut().for_each(round_floats),
        _ => {}
    }
}

#[test]
fn a_failed_first_import_leaves_the_demo_organisation_exactly_as_it_was() {
    let ragged = format!("{}extra-agent,ai_agent,,,,,,,,,,,,,surplus,cells\n", GOOD);
    let invalid = "name,kind\ngood-agent,ai_agent\nbad-agent,robot\n".to_string();
    let oversize = format!(
        "name,kind,purpose\nbig-agent,ai_agent,{}\n",
        "x".repeat(17 * 1024)
    );
    for (what, body, says) in [
        ("ragged", ragged, "line 5"),
        ("invalid", invalid, "robot"),
        ("oversize", oversize, "16384"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.csv");
        std::fs::write(&path, &body).unwrap();
        // The demo with history on it: a campaign with items and its audit entry.
        let mut store = crate::util::test_store();
        ops::load_demo(
            &mut store,
            custodian::demo::DemoSize::S,
            custodian::demo::DEFAULT_SEED,
            now(),
        )
        .unwrap();
        let owner = store.resolve_person("1").unwrap();
        store
            .create_campaign(
                owner,
                &crate::util::identities_campaign("On the demo", owner, 14),
                now(),
            )
            .unwrap();
        let id = SourceId(
            ops::add_source(
                &mut store,
                &MemorySecrets::default(),
                "csv",
                "registry",
                json!({"path": path.display().to_string()}),
                None,
                now(),
            )
            .unwrap()
            .id,
        );
        let before = org_fingerprint(&mut store, Some(id.0));
        assert_eq!(before["dataset"], "demo-s");
        assert!(before["counts"]["campaign_items"].as_i64().unwrap() > 0);

        let err = import(&mut store, &path).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{what}: {err}");
        assert!(err.message.contains(says), "{what}: {err}");

        let after = org_fingerprint(&mut store, Some(id.0));
        for (k, v) in before.as_object().unwrap() {
            if matches!(k.as_str(), "audit" | "audit_head") {
                continue;
            }
            assert!(
                after[k] == *v,
                "{what}: {k} changed after a failed first import"
            );
        }
        // The audit log keeps every entry and gains one: the failed run.
        let (old, new) = (
            before["audit"].as_array().unwrap(),
            after["audit"].as_array().unwrap(),
        );
        assert_eq!(
            &new[..old.len()],
            &old[..],
            "{what}: the audit log was rewritten"
        );
        assert_eq!(new.len(), old.len() + 1, "{what}: {new:?}");
        let last = &new[old.len()];
        assert_eq!(last["action"], "sync.run", "{what}");
        assert_eq!(last["subject"], format!("source {} registry", id.0));
        assert!(
            last["details"]
                .as_str()
                .unwrap()
                .contains("\"status\":\"failed\""),
            "{what}: {last}"
        );
        // The source stays, clearly failed, with nothing of its own imported.
        let source = ops::sources(&store)
            .unwrap()
            .into_iter()
            .find(|s| s.id == id.0)
            .unwrap();
        let run = source.last_run.unwrap();
        assert_eq!(run.status, "failed", "{what}");
        assert_eq!(run.error_code.as_deref(), Some("invalid_input"), "{what}");
        assert!(
            run.error_message.as_deref().unwrap_or("").contains(says),
            "{what}: {run:?}"
        );
        let own: i64 = store
            .raw_db()
            .query_row(
                "SELECT count(*) FROM identities WHERE source_id = ?1",
                [id.0],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(own, 0, "{what}");
        assert!(store.verify_audit().unwrap().ok);
    }
}
