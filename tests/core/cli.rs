//! The `custodian` binary: friendly text, stable JSON, clear errors.

use std::process::{Command, Output};

use serde_json::Value;

fn custodian(db: &std::path::Path, args: &[&str]) -> Output {
    crate::util::test_key();
    Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--db")
        .arg(crate::util::cli_location(db))
        .args(args)
        .env_remove("CUSTODIAN_DB")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn demo_inventory_and_show_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let v = json(&custodian(&db, &["demo", "--size", "s", "--json"]));
    assert_eq!(v["identities"], 1000);
    assert_eq!(v["size"], "s");

    let v = json(&custodian(
        &db,
        &[
            "inventory",
            "--kind",
            "ai_agent,bot",
            "--sort",
            "risk",
            "--desc",
            "--limit",
            "5",
            "--json",
        ],
    ));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows
        .iter()
        .all(|r| r["kind"] == "ai_agent" || r["kind"] == "bot"));
    assert!(v["total"].as_i64().unwrap() > 5);

    let name = rows[0]["name"].as_str().unwrap().to_string();
    let d = json(&custodian(&db, &["show", &name, "--json"]));
    assert_eq!(d["name"], name);
    assert!(d["grants"].as_array().is_some());

    let text = custodian(&db, &["show", &name]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with(&name) && text.contains("Credentials (") && text.contains("Findings ("),
        "{text}"
    );

    let table = String::from_utf8(custodian(&db, &["inventory", "--limit", "3"]).stdout).unwrap();
    assert!(table.contains("of 1000 identities"), "{table}");
}

#[test]
fn an_empty_cache_opens_on_the_demo_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let v = json(&custodian(&db, &["summary", "--json"]));
    assert_eq!(v["dataset"], "demo-s");
    assert_eq!(v["identities"], 1000);
}

#[test]
fn bad_filter_value_names_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let out = custodian(&db, &["inventory", "--kind", "robot"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("error[invalid_input]") && err.contains("'robot'") && err.contains("ai_agent"),
        "{err}"
    );
}

#[test]
fn unknown_identity_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let out = custodian(&db, &["show", "no-such-agent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("error[not_found]"));
}

#[test]
fn unreadable_cache_is_reported_and_kept() {
    if crate::util::on_postgres() {
        return; // about the SQLite file itself: runs in the SQLite pass
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    std::fs::write(
        &db,
        b"this is not a database, it is a note to self\n".repeat(200),
    )
    .unwrap();
    let before = std::fs::read(&db).unwrap();
    let out = custodian(&db, &["inventory"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("error[database_unreadable]"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn the_first_real_source_replaces_the_demo_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let csv = dir.path().join("agents.csv");
    std::fs::write(&csv, "name,kind\nonly-agent,ai_agent\n").unwrap();
    assert_eq!(
        json(&custodian(&db, &["summary", "--json"]))["dataset"],
        "demo-s"
    );
    let v = json(&custodian(
        &db,
        &["import", csv.to_str().unwrap(), "--json"],
    ));
    assert_eq!(v["status"], "succeeded");
    let s = json(&custodian(&db, &["summary", "--json"]));
    assert_eq!(s["dataset"], Value::Null);
    assert_eq!(s["identities"], 1, "demo identities are gone");
    let sources = json(&custodian(&db, &["source", "list", "--json"]));
    assert_eq!(sources.as_array().unwrap().len(), 1);
    assert_eq!(sources[0]["last_run"]["status"], "succeeded");
    // Reopening does not bring the demo back.
    assert_eq!(
        json(&custodian(&db, &["summary", "--json"]))["identities"],
        1
    );
}

#[test]
fn a_campaign_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    json(&custodian(&db, &["demo", "--size", "s", "--json"]));
    // Nobody is acting yet: a clear error, exit 2.
    let out = custodian(&db, &["campaign", "queue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--as"));

    let c = json(&custodian(
        &db,
        &[
            "--as",
            "1",
            "campaign",
            "create",
            "--name",
            "Bots",
            "--kind",
            "bot",
            "--granularity",
            "identities",
            "--fallback",
            "2",
            "--due",
            "2030-01-31",
            "--json",
        ],
    ));
    let id = c["id"].as_i64().unwrap().to_string();
    let items = c["items"].as_i64().unwrap();
    assert!(items > 10);
    // The fallback reviewer's queue, and one decision as them.
    let q = json(&custodian(
        &db,
        &[
            "--as",
            "2",
            "campaign",
            "queue",
            "--campaign",
            &id,
            "--json",
        ],
    ));
    let first = q["items"][0]["id"].as_i64().unwrap().to_string();
    let out = custodian(
        &db,
        &[
            "--as",
            "2",
            "campaign",
            "decide",
            &first,
            "--decision",
            "retire",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "retire needs a justification");
    let out = custodian(
        &db,
        &[
            "--as",
            "2",
            "campaign",
            "decide",
            &first,
            "--decision",
            "retire",
            "--justification",
            "unused",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Close by recommendation; the tasks and the evidence follow.
    let r = json(&custodian(
        &db,
        &[
            "--as",
            "1",
            "campaign",
            "close",
            &id,
            "--undecided",
            "recommendation",
            "--json",
        ],
    ));
    assert_eq!(r["decided_by_people"], 1);
    assert_eq!(r["decided_by_policy"].as_i64().unwrap(), items - 1);
    let tasks = json(&custodian(&db, &["tasks", "--campaign", &id, "--json"]));
    assert_eq!(
        tasks.as_array().unwrap().len() as i64,
        r["tasks"].as_i64().unwrap()
    );
    let out = custodian(
        &db,
        &[
            "campaign",
            "export",
            &id,
            "--dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(dir
        .path()
        .join(format!("campaign-{id}-evidence.html"))
        .exists());
    // The evidence CSV: the documented columns and one row per item, the
    // person's decision with its justification, the rest by policy.
    let text =
        std::fs::read_to_string(dir.path().join(format!("campaign-{id}-evidence.csv"))).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, custodian::evidence::CSV_COLUMNS);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len() as i64, items);
    let by_person: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[col("decided_by_policy")] == "no")
        .collect();
    assert_eq!(by_person.len(), 1);
    assert_eq!(&by_person[0][col("item_id")], first.as_str());
    assert_eq!(&by_person[0][col("decision")], "retire");
    assert_eq!(&by_person[0][col("justification")], "unused");
    assert!(rows
        .iter()
        .all(|r| !r[col("decision")].is_empty() && &r[col("campaign")] == "Bots"));
    let v = json(&custodian(&db, &["audit", "verify", "--json"]));
    assert_eq!(v["ok"], true);

    // Editing a past audit entry is detected, and `audit verify` fails.
    let conn = crate::util::raw_store(&db);
    conn.execute(
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 2",
        [],
    )
    .unwrap();
    drop(conn);
    let out = custodian(&db, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("entry 2 was edited"));
}

#[test]
fn offboarding_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    json(&custodian(&db, &["demo", "--size", "s", "--json"]));
    // An active person who owns something: find one, and their manager.
    let conn = crate::util::raw_store(&db);
    let (person, manager): (i64, i64) = conn
        .query_row(
            "SELECT p.id, p.manager_id FROM people p JOIN people m ON m.id = p.manager_id
             WHERE p.status = 'active' AND m.status = 'active'
               AND (SELECT count(*) FROM identities i WHERE i.owner_id = p.id) >= 2
             ORDER BY p.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(conn);
    let (p, m) = (person.to_string(), manager.to_string());
    // Active people are not offboarded until marked.
    let out = custodian(&db, &["offboard", &p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mark them departing first"));
    let out = custodian(
        &db,
        &[
            "--as",
            &m,
            "depart",
            &p,
            "--on",
            "2030-01-15",
            "--note",
            "moving on",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let case = json(&custodian(&db, &["offboard", &p, "--json"]));
    let items = case["items"].as_array().unwrap().len();
    assert!(items >= 2);
    assert!(case["summary"]["reason"]
        .as_str()
        .unwrap()
        .contains("moving on"));
    // Transfer everything to the manager, rotating secrets, and apply.
    let r = json(&custodian(
        &db,
        &[
            "--as",
            &m,
            "offboard",
            &p,
            "--transfer-to",
            &m,
            "--rotate",
            "--apply",
            "--json",
        ],
    ));
    assert_eq!(r["transferred"].as_i64().unwrap() as usize, items);
    assert_eq!(r["closed"], true);
    // The task CSV: it parses, has the documented header, and holds one row
    // per task with that task's values (the JSON export is the reference).
    let out = custodian(&db, &["tasks", "--export", "csv"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        [
            "id",
            "origin",
            "campaign",
            "case",
            "kind",
            "identity",
            "target",
            "new_owner",
            "status",
            "created_at",
            "updated_at",
            "updated_by",
            "note"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    let tasks = json(&custodian(&db, &["tasks", "--export", "json"]));
    let tasks = tasks.as_array().unwrap();
    assert_eq!(rows.len(), tasks.len(), "one row per task: {text}");
    let s = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => custodian::sanitize::csv_cell(s).into_owned(),
        other => other.to_string(),
    };
    for (row, t) in rows.iter().zip(tasks) {
        let expected: Vec<String> = [
            "id",
            "origin",
            "campaign_id",
            "case_id",
            "kind",
            "identity",
            "target",
            "new_owner",
            "status",
            "created_at",
            "updated_at",
            "updated_by",
            "note",
        ]
        .iter()
        .map(|k| s(&t[*k]))
        .collect();
        let got: Vec<String> = row.iter().map(str::to_string).collect();
        assert_eq!(got, expected, "task {}", t["id"]);
    }
    // The case's transfers: one per item, each to the manager, open.
    let manager_name = case_manager_name(&db, manager);
    let case_id = case["summary"]["id"].to_string();
    let transfers: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[4] == "transfer_owner" && r[3] == case_id)
        .collect();
    assert_eq!(transfers.len(), items, "{text}");
    for t in &transfers {
        assert_eq!(&t[1], "offboarding");
        assert_eq!(t[7], manager_name, "{t:?}");
        assert_eq!(&t[8], "open");
    }
    let v = json(&custodian(&db, &["audit", "verify", "--json"]));
    assert_eq!(v["ok"], true);
}

/// A person's display name, read from the store behind `db`.
fn case_manager_name(db: &std::path::Path, person: i64) -> String {
    crate::util::raw_store(db)
        .query_row(
            "SELECT display_name FROM people WHERE id = ?1",
            [person],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn posture_blast_and_the_pipeline_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    json(&custodian(&db, &["demo", "--size", "s", "--json"]));
    let top = json(&custodian(
        &db,
        &["blast", "--top", "3", "--format", "json"],
    ));
    let first = top[0]["name"].as_str().unwrap().to_string();
    assert!(top[0]["score"].as_f64().unwrap() >= top[1]["score"].as_f64().unwrap());
    let md = custodian(&db, &["blast", &first, "--format", "md"]);
    assert!(md.status.success());
    let md = String::from_utf8(md.stdout).unwrap();
    // The document says what ops::blast computes for that identity: its
    // name, the counts in reach, and one table row per resource, in order.
    let expected = {
        let loc =
            custodian::store::Location::parse(&crate::util::cli_location(&db).to_string_lossy())
                .unwrap();
        let store = custodian::store::Store::open_location(&loc).unwrap();
        custodian::ops::blast(&store, &first).unwrap()
    };
    use custodian::sanitize::md_text;
    assert!(!expected.resources.is_empty() && !expected.reachable.is_empty());
    assert!(
        md.starts_with(&format!("# Blast radius: {}\n", md_text(&expected.name))),
        "{md}"
    );
    assert!(
        md.contains(&format!(
            "**Score {:.1}** ({} identities and {} resources in reach, {} high-consequence actions).",
            expected.score,
            expected.reachable.len(),
            expected.resources.len(),
            expected.high_consequence.len()
        )),
        "{md}"
    );
    let table: Vec<&str> = md
        .split("## Resources in reach\n\n")
        .nth(1)
        .unwrap()
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("| "))
        .collect();
    assert_eq!(table.len(), expected.resources.len(), "{md}");
    for (row, r) in table.iter().zip(&expected.resources) {
        let cells: Vec<&str> = row
            .trim_start_matches("| ")
            .trim_end_matches(" |")
            .split(" | ")
            .collect();
        assert_eq!(cells.len(), 7, "{row}");
        assert_eq!(cells[0], md_text(&r.name), "{row}");
        assert_eq!(cells[2], r.sensitivity.as_str(), "{row}");
        assert_eq!(cells[6], format!("{:.1}", r.contribution), "{row}");
        for p in &r.permissions {
            assert!(cells[4].contains(&md_text(&p.permission)), "{row}");
        }
    }
    let chains = md.split("## Delegation chains\n\n").nth(1).unwrap();
    let listed = chains.lines().take_while(|l| l.starts_with("- ")).count();
    assert_eq!(listed, expected.reachable.len(), "{md}");
    let b = json(&custodian(&db, &["blast", &first, "--format", "json"]));
    let resource = b["resources"][0]["name"].as_str().unwrap().to_string();
    let who = json(&custodian(&db, &["who-can-reach", &resource, "--json"]));
    assert!(
        who.as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == first.as_str()),
        "the top identity reaches its top resource"
    );
    // The demo has critical findings: the check fails with exit 3; nothing is above critical.
    let out = custodian(&db, &["check", "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
    let p = json(&custodian(&db, &["posture", "--json"]));
    assert!(p["figures"]["nhis"].as_i64().unwrap() > 500);
    assert_eq!(p["trend"].as_array().unwrap().len(), 13);
    // The text posture lists what to fix first, as the JSON has it.
    let text = String::from_utf8(custodian(&db, &["posture"]).stdout).unwrap();
    let fixes = p["fix_first"].as_array().unwrap();
    assert_eq!(fixes.len(), 10);
    let listed: Vec<&str> = text
        .split("fix first (severity x blast radius):\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim_start().starts_with("fix: "))
        .collect();
    assert_eq!(listed.len(), 10, "{text}");
    let first_line = format!(
        " 1. {:<8} {}  {}",
        fixes[0]["severity"].as_str().unwrap(),
        fixes[0]["name"].as_str().unwrap(),
        fixes[0]["title"].as_str().unwrap()
    );
    assert!(text.contains(&first_line), "{first_line} in {text}");
    // Fix what makes it fail (in the cache, for the test) and the check passes.
    let conn = crate::util::raw_store(&db);
    conn.execute("DELETE FROM findings WHERE severity = 4", [])
        .unwrap();
    drop(conn);
    let out = custodian(&db, &["check", "--fail-on", "critical"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn secret_looking_settings_are_refused_and_settings_shown_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    json(&custodian(&db, &["demo", "--size", "s", "--json"]));
    for set in [
        "bind_password=hunter2",
        "client_secret=hunter2",
        "api_key=hunter2",
        "base_url=https://idp.example/scim?access_token=hunter2",
    ] {
        let out = custodian(
            &db,
            &[
                "source",
                "add",
                "scim",
                "--name",
                "HR",
                "--set",
                "base_url=https://idp.example/scim",
                "--set",
                set,
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{set}: {err}");
        assert!(
            err.contains("error[invalid_input]") && err.contains("--secret-stdin"),
            "{set}: {err}"
        );
    }
    // A name that says which key, not the key itself, is a plain setting.
    let s = json(&custodian(
        &db,
        &[
            "source",
            "add",
            "aws",
            "--name",
            "AWS",
            "--set",
            "access_key_id=AKIAEXAMPLE",
            "--json",
        ],
    ));
    assert_eq!(s["settings"]["access_key_id"], "AKIAEXAMPLE");
    // A cache written before the rule may hold a secret in its settings: it
    // is never shown.
    let conn = crate::util::raw_store(&db);
    conn.execute(
        "UPDATE sources SET settings = '{\"access_key_id\":\"AKIAEXAMPLE\",\"secret_access_key\":\"hunter2\",\"endpoint\":\"https://iam.example/?token=hunter2\"}' WHERE name = 'AWS'",
        [],
    )
    .unwrap();
    drop(conn);
    let list = custodian(&db, &["source", "list", "--json"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(!text.contains("hunter2"), "{text}");
    let v = json(&list);
    let aws = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "AWS")
        .unwrap();
    assert_eq!(aws["settings"]["secret_access_key"], "[redacted]");
    assert_eq!(
        aws["settings"]["endpoint"],
        "https://iam.example/?[redacted]"
    );
    let bundle = dir.path().join("support.json");
    custodian(&db, &["diagnostics", "--out", bundle.to_str().unwrap()]);
    let d = std::fs::read_to_string(&bundle).unwrap();
    assert!(!d.contains("hunter2"), "{d}");
}

/// Outside text an attacker controls, as a source would deliver it.
const HOSTILE_NAME: &str = "=HYPERLINK(\"http://x\") \u{202e}gpj.exe \u{1b}[31mred";
const HOSTILE_INTENDED: &str =
    "| # heading\n<img src=x onerror=alert(1)> [a](javascript:alert(1)) \u{1b}]0;owned\u{7}";

fn no_hidden_controls(what: &str, text: &str) {
    for c in ['\u{1b}', '\u{202e}', '\u{7}'] {
        assert!(!text.contains(c), "{what} prints {c:?} raw: {text}");
    }
}

#[test]
fn hostile_names_come_out_neutralised_in_the_task_csv_the_blast_document_and_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    json(&custodian(&db, &["demo", "--size", "s", "--json"]));
    let top = json(&custodian(
        &db,
        &["blast", "--top", "1", "--format", "json"],
    ));
    let id = top[0]["identity_id"].as_i64().unwrap();
    // The source delivered a hostile name and intent (as a sync would write them).
    let conn = crate::util::raw_store(&db);
    conn.execute(
        "UPDATE identities SET name = ?1, intended_blast_radius = ?2 WHERE id = ?3",
        custodian::store::db::params![HOSTILE_NAME, HOSTILE_INTENDED, id],
    )
    .unwrap();
    let actor: i64 = conn
        .query_row(
            "SELECT id FROM people WHERE status = 'active' ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let id = id.to_string();
    let out = custodian(
        &db,
        &[
            "--as",
            &actor.to_string(),
            "retire",
            &id,
            "--reason",
            "@SUM(1+1) \u{202e}gone",
        ],
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    no_hidden_controls("retire", &shown);

    // The task CSV: parses, every cell is neutralised, nothing hidden.
    let out = custodian(&db, &["tasks", "--export", "csv"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    no_hidden_controls("the task CSV", &text);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    let mine: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|row| row[col("identity")].contains("HYPERLINK"))
        .collect();
    assert!(!mine.is_empty(), "{text}");
    for row in &mine {
        assert_eq!(
            &row[col("identity")],
            "'=HYPERLINK(\"http://x\") \\u202egpj.exe \\u001b[31mred"
        );
    }
    for row in &rows {
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula cell: {cell:?}"
            );
        }
    }

    // The blast-radius document: literal text, no link, HTML, heading or
    // broken table cell from the source.
    let out = custodian(&db, &["blast", &id, "--format", "md"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    no_hidden_controls("the blast document", &md);
    assert!(
        md.starts_with(
            "# Blast radius: \\=HYPERLINK\\(\\\"http\\://x\\\"\\) \\\\u202egpj\\.exe \\\\u001b\\[31mred\n"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "\\| \\# heading &lt;img src=x onerror=alert\\(1\\)&gt; \\[a\\]\\(javascript\\:alert\\(1\\)\\)"
        ),
        "{md}"
    );
    for bad in [
        "<img",
        "](javascript",
        "\n# heading",
        "\n| # heading",
        "http://x",
    ] {
        assert!(!md.contains(bad), "{bad:?} in {md}");
    }
    // Every table row keeps its column count.
    let unescaped_pipes = |l: &str| l.replace("\\|", "").matches('|').count();
    for l in md.lines().filter(|l| l.starts_with("| ")) {
        let n = unescaped_pipes(l);
        assert!(n == 6 || n == 8, "a broken table row: {l}");
    }

    // The aligned terminal output shows escapes instead of obeying them.
    for args in [
        vec!["show", id.as_str()],
        vec!["inventory", "--search", "HYPERLINK"],
        vec!["timeline", id.as_str()],
        vec!["blast", id.as_str()],
    ] {
        let out = custodian(&db, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        no_hidden_controls(&format!("{args:?}"), &text);
        assert!(text.contains("\\u202e"), "{args:?}: {text}");
    }
    // JSON keeps the same string (escaped, not altered).
    let v = json(&custodian(&db, &["show", &id, "--json"]));
    assert_eq!(v["name"], HOSTILE_NAME);
    // Error messages quoting outside text too.
    let out = custodian(&db, &["show", "no such \u{1b}[2J one"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains('\u{1b}') && err.contains("\\u001b[2J"),
        "{err}"
    );
}

#[test]
fn source_show_says_how_a_source_signs_in_and_as_whom() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let add = |args: &[&str]| {
        let out = custodian(&db, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    add(&[
        "source",
        "add",
        "github",
        "--name",
        "gh-app",
        "--set",
        "org=acme",
        "--set",
        "app_id=12345",
        "--set",
        "installation_id=77",
    ]);
    add(&[
        "source", "add", "github", "--name", "gh-pat", "--set", "org=acme",
    ]);
    add(&[
        "source",
        "add",
        "okta",
        "--name",
        "okta-app",
        "--set",
        "org_url=https://acme.okta.com",
        "--set",
        "client_id=0oa1svc",
        "--set",
        "key_id=k1",
    ]);
    let text = |name: &str| {
        let out = custodian(&db, &["source", "show", name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let app = text("gh-app");
    assert!(app.contains("Signs in:   GitHub App"), "{app}");
    assert!(
        app.contains("As:         GitHub App 12345, installation 77; private key in the secret"),
        "{app}"
    );
    let pat = text("gh-pat");
    assert!(pat.contains("Signs in:   token"), "{pat}");
    let okta = json(&custodian(&db, &["source", "show", "okta-app", "--json"]));
    assert!(
        okta["sign_in"]["mode"]
            .as_str()
            .unwrap()
            .contains("private_key_jwt"),
        "{okta}"
    );
    assert_eq!(
        okta["sign_in"]["identity"],
        "service app 0oa1svc, key k1; private key in the secret"
    );
    assert_eq!(okta["source"]["settings"]["client_id"], "0oa1svc");
    // A keyless setting without its mode is refused at add.
    let out = custodian(
        &db,
        &[
            "source",
            "add",
            "okta",
            "--name",
            "x",
            "--set",
            "org_url=https://o.okta.com",
            "--set",
            "key_id=k1",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("client_id"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
