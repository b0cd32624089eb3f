//! Hostile text followed the whole way: names, purposes, group names and
//! justifications that a real identity source (scim2-server) delivers, then
//! campaign evidence (CSV, JSON, HTML), the task CSV, the blast-radius
//! Markdown and the CLI's aligned tables. Nothing may come out raw: no
//! formula cell, no HTML tag, no Markdown link or broken table row, no
//! hidden control, and the terminal's columns still line up.

use std::process::{Command, Output};

use custodian::campaigns::{DecisionInput, UndecidedPolicy};
use custodian::model::SourceId;
use custodian::ops;
use custodian::sanitize::{csv_cell, display_width, html, md_text};
use custodian::store::{Location, Store};
use custodian::sync::http::Cancel;
use custodian::sync::secrets::MemorySecrets;
use serde_json::{json, Value};

use crate::peers::ScimServer;
use crate::util::{identities_campaign, now};

/// The agent's name (SCIM userName).
const NAME: &str = "=HYPERLINK(\"http://x\")<script>alert(1)</script>\u{202e}gpj.exe";
/// Its purpose (SCIM title).
const PURPOSE: &str =
    "\"><img src=x onerror=alert(1)> [a](javascript:alert(1)) | # h\n\u{1b}[31mred\u{1b}[0m";
/// Its owner's display name: a formula, wide characters, a bidi override, BEL.
const OWNER: &str = "@SUM(1+1) 名前\u{202e}\u{7}";
/// A group it is in (a resource it holds a grant on).
const GROUP: &str = "<b>prod</b> | admins [x](javascript:alert(1)) \u{1b}]0;t\u{7}";
/// The reviewer's justification.
const JUST: &str = "-2+3 <script>alert(1)</script> \"><img src=x onerror=alert(1)> javascript:alert(1) \u{202e}\u{1b}]0;t\u{7}";
/// The campaign's name and description, typed by a person.
const CAMPAIGN: &str = "Q4 <script>alert(1)</script> \u{202e}";
/// A short machine name: fits its column once escaped.
const SHORT: &str = "svc-\u{202e}kcab 日本\u{1b}[2J";
const SOURCE: &str = "HR \u{202e}SCIM\tsource";

const HIDDEN: &[char] = &['\u{1b}', '\u{202e}', '\u{7}'];

fn no_hidden(what: &str, text: &str) {
    for c in HIDDEN {
        assert!(!text.contains(*c), "{what} holds {c:?} raw: {text}");
    }
}

fn custodian(db: &std::path::Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_custodian"))
        .arg("--db")
        .arg(crate::util::cli_location(db))
        .args(args)
        .env_remove("CUSTODIAN_DB")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn scim_post(server: &ScimServer, path: &str, body: Value) -> String {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/{path}", server.base))
        .bearer_auth(&server.token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = resp.status();
    let text = resp.text().unwrap();
    assert!(status.is_success(), "POST {path}: {status} {text}");
    serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn scim_user(
    server: &ScimServer,
    user_name: &str,
    display: &str,
    user_type: Option<&str>,
    title: &str,
    manager: Option<&str>,
) -> String {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": user_name,
        "displayName": display,
        "title": title,
        "active": true,
        "emails": [{"value": format!("u{}@example.test", user_name.len()), "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Finance"},
    });
    if let Some(t) = user_type {
        body["userType"] = json!(t);
    }
    if let Some(m) = manager {
        body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"] =
            json!({"value": m});
    }
    scim_post(server, "Users", body)
}

/// The rest of `line` after its first `cols` display columns (a column
/// boundary must fall between characters).
fn after_cols(line: &str, cols: usize) -> &str {
    let mut used = 0;
    for (i, c) in line.char_indices() {
        if used == cols {
            return &line[i..];
        }
        used += custodian::sanitize::char_width(c);
        assert!(used <= cols, "column {cols} falls inside {c:?}: {line}");
    }
    assert_eq!(
        used, cols,
        "the line is shorter than {cols} columns: {line}"
    );
    ""
}

/// Every tag in an HTML document, by name (`/td` for a closing one).
fn tags(doc: &str) -> Vec<String> {
    doc.split('<')
        .skip(1)
        .map(|t| {
            t.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '!')
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .collect()
}

#[test]
fn hostile_text_from_scim_stays_inert_through_evidence_tasks_blast_and_the_terminal() {
    let server = ScimServer::start();
    let boss = server.user("grace.moreau", None, None, "Finance");
    let owner = scim_user(&server, "owner.person", OWNER, None, "Lead", Some(&boss));
    let agent = scim_user(&server, NAME, NAME, Some("Agent"), PURPOSE, Some(&owner));
    // Two more machines: a short name with a bidi override, wide characters
    // and an escape sequence (shown whole in its cell), and a plain one.
    scim_user(
        &server,
        SHORT,
        SHORT,
        Some("Service"),
        "Backups",
        Some(&owner),
    );
    scim_user(
        &server,
        "svc-plain",
        "svc-plain",
        Some("Service"),
        "Plain",
        Some(&boss),
    );
    scim_post(
        &server,
        "Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "displayName": GROUP, "members": [{"value": agent}]}),
    );

    // A new cache (the demo), then the real source replaces it.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.db");
    let loc = Location::parse(&crate::util::cli_location(&db).to_string_lossy()).unwrap();
    let mut store: Store = ops::open_or_demo(&loc, now()).unwrap();
    let secrets = MemorySecrets::default();
    let src = ops::add_source(
        &mut store,
        &secrets,
        "scim",
        SOURCE,
        json!({"base_url": server.base}),
        Some(&server.token),
        now(),
    )
    .unwrap();
    ops::sync_blocking(
        &mut store,
        SourceId(src.id),
        &secrets,
        std::sync::Arc::new(|_| {}),
        Cancel::new(),
        crate::harness::fast_policy(),
    )
    .unwrap();
    let id = store.resolve_identity(&agent).unwrap();
    let detail = store.identity_detail(id, now()).unwrap();
    assert_eq!(detail.name, NAME, "stored as the source sent it");
    assert_eq!(detail.purpose, PURPOSE);
    assert_eq!(detail.owner.as_ref().unwrap().display_name, OWNER);
    assert_eq!(detail.grants[0].resource_name, GROUP);

    // A campaign over it; its owner (the hostile person) retires it with a
    // hostile justification; the close opens a remediation task.
    let grace = store.resolve_person("grace moreau").unwrap();
    let reviewer = store
        .resolve_person("owner.person")
        .unwrap_or_else(|_| detail.owner.as_ref().unwrap().id);
    let c = custodian::campaigns::NewCampaign {
        description: CAMPAIGN.into(),
        ..identities_campaign(CAMPAIGN, grace, 14)
    };
    let campaign = store.create_campaign(grace, &c, now()).unwrap();
    let items: Vec<i64> = store
        .raw_db()
        .query_map(
            "SELECT id FROM campaign_items WHERE campaign_id = ?1 AND identity_id = ?2",
            custodian::store::db::params![campaign, id.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(items.len(), 1);
    store
        .decide(
            reviewer,
            &DecisionInput {
                items: vec![custodian::campaigns::ReviewItemId(items[0])],
                decision: custodian::campaigns::Decision::Retire,
                justification: JUST.into(),
                new_owner: None,
                follow_recommendation: false,
            },
            now(),
        )
        .unwrap();
    let closed = store
        .close_campaign(grace, campaign, UndecidedPolicy::Recommendation, now())
        .unwrap();
    assert!(closed.tasks >= 1);
    drop(store);

    // --- Campaign evidence, as an auditor receives it.
    let store = Store::open_location(&loc).unwrap();
    let files =
        custodian::evidence::write_all(&store, campaign, dir.path(), now(), &|_, _| {}).unwrap();
    drop(store);
    // CSV: parses, the hostile cells neutralised, nothing hidden.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    no_hidden("the evidence CSV", &text);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, custodian::evidence::CSV_COLUMNS);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    let row = rows
        .iter()
        .find(|r| r[col("item_id")] == items[0].to_string())
        .unwrap();
    assert_eq!(row[col("identity")], csv_cell(NAME));
    assert!(row[col("identity")].starts_with("'=HYPERLINK"));
    assert_eq!(row[col("owner")], csv_cell(OWNER));
    assert!(row[col("owner")].starts_with("'@SUM"));
    assert_eq!(row[col("justification")], csv_cell(JUST));
    assert!(row[col("justification")].starts_with("'-2+3"));
    assert_eq!(row[col("campaign")], csv_cell(CAMPAIGN));
    assert_eq!(&row[col("decision")], "retire");
    for r in &rows {
        for c in r.iter() {
            assert!(!c.starts_with(['=', '+', '-', '@', '\t', '\r']), "{c:?}");
        }
    }
    // JSON: the same strings, escaped, never raw.
    let text = std::fs::read_to_string(&files[1]).unwrap();
    no_hidden("the evidence JSON", &text);
    let v: Value = serde_json::from_str(&text).unwrap();
    let item = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == items[0])
        .unwrap();
    assert_eq!(item["subject"], NAME);
    assert_eq!(item["justification"], JUST);
    // HTML: only the report's own tags, the hostile text as entities.
    let doc = std::fs::read_to_string(&files[2]).unwrap();
    no_hidden("the evidence HTML", &doc);
    assert!(
        doc.starts_with("<!doctype html><html lang=\"en\">"),
        "{doc}"
    );
    assert!(doc.ends_with("</table></body></html>\n"), "{doc}");
    const ALLOWED: &[&str] = &[
        "!doctype", "html", "/html", "head", "/head", "meta", "title", "/title", "style", "/style",
        "body", "/body", "h1", "/h1", "h2", "/h2", "p", "/p", "table", "/table", "tr", "/tr", "td",
        "/td", "th", "/th", "b", "/b", "br", "small", "/small",
    ];
    let found = tags(&doc);
    for t in &found {
        assert!(ALLOWED.contains(&t.as_str()), "tag <{t}> in the report");
    }
    let n = |t: &str| found.iter().filter(|f| f.as_str() == t).count();
    for t in ["table", "tr", "td", "b", "small", "p", "h2"] {
        assert_eq!(n(t), n(&format!("/{t}")), "<{t}> balanced");
    }
    assert_eq!(n("html"), 1);
    assert_eq!(n("/html"), 1);
    for bad in [
        "<script",
        "<img",
        "onerror=\"",
        "href",
        "src=\"",
        "javascript:alert(1)\"",
    ] {
        assert!(!doc.contains(bad), "{bad:?} in the report");
    }
    assert!(doc.contains(&format!(
        "<title>Access review evidence: {}</title>",
        html(CAMPAIGN)
    )));
    assert!(
        doc.contains(&format!("<b>{}</b>", html(NAME))),
        "the item's subject"
    );
    assert!(
        doc.contains(&format!("<td>{}</td></tr>", html(JUST))),
        "the justification"
    );
    assert!(doc.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(doc.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(doc.contains("\\u202e") && doc.contains("\\u001b]0;t\\u0007"));
    // One row per item in the items table.
    let items_table = doc.split("<h2>Items</h2>").nth(1).unwrap();
    let item_rows = items_table.matches("<tr><td>").count();
    assert_eq!(item_rows, rows.len());

    // --- The task CSV, from the CLI.
    let out = custodian(&db, &["tasks", "--export", "csv"]);
    let text = String::from_utf8(out.stdout).unwrap();
    no_hidden("the task CSV", &text);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    let mine: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| {
            r[col("campaign")] == campaign.to_string() && r[col("identity")] == csv_cell(NAME)
        })
        .collect();
    assert!(!mine.is_empty(), "{text}");
    for r in &rows {
        for c in r.iter() {
            assert!(!c.starts_with(['=', '+', '-', '@', '\t', '\r']), "{c:?}");
        }
    }

    // --- The blast-radius document, from the CLI.
    let out = custodian(&db, &["blast", &id.0.to_string(), "--format", "md"]);
    let md = String::from_utf8(out.stdout).unwrap();
    no_hidden("the blast document", &md);
    assert!(
        md.starts_with(&format!("# Blast radius: {}\n", md_text(NAME))),
        "{md}"
    );
    for bad in [
        "<script",
        "<img",
        "<b>",
        "](javascript",
        "\n# h",
        "http://x",
    ] {
        assert!(!md.contains(bad), "{bad:?} in {md}");
    }
    let resources = md.split("## Resources in reach\n\n").nth(1).unwrap();
    let rows: Vec<&str> = resources
        .lines()
        .skip(2)
        .filter(|l| l.starts_with("| "))
        .collect();
    assert_eq!(rows.len(), 1, "{md}");
    assert!(
        rows[0].starts_with(&format!("| {} | ", md_text(GROUP))),
        "{md}"
    );
    for l in md.lines().filter(|l| l.starts_with("| ")) {
        let cells = l.replace("\\|", "").matches('|').count();
        assert!(cells == 6 || cells == 8, "a broken table row: {l}");
    }

    // --- The terminal: escapes shown, and the columns line up.
    let out = custodian(&db, &["show", &id.0.to_string()]);
    let text = String::from_utf8(out.stdout).unwrap();
    no_hidden("show", &text);
    assert!(text.contains("\\u202egpj.exe") && text.contains("\\u001b[31mred"));
    assert_inventory_aligned(&db);
    assert_source_list_aligned(&db);
}

/// `custodian inventory`: every row's columns start where the header's do
/// (display columns: ID 7, two spaces, NAME 36, KIND 16, STATUS 9, OWNER 24,
/// CREDS 5), whatever the names and owners hold.
fn assert_inventory_aligned(db: &std::path::Path) {
    let out = custodian(db, &["inventory"]);
    let text = String::from_utf8(out.stdout).unwrap();
    no_hidden("inventory", &text);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (kind, status, owner, creds) = (46, 63, 73, 98);
    assert!(after_cols(header, kind).starts_with("KIND"), "{header}");
    assert!(after_cols(header, status).starts_with("STATUS"), "{header}");
    assert!(after_cols(header, owner).starts_with("OWNER"), "{header}");
    assert!(after_cols(header, creds).starts_with("CREDS"), "{header}");
    let rows: Vec<&str> = lines.filter(|l| !l.starts_with("-- ")).collect();
    assert_eq!(rows.len(), 3, "{text}");
    let mut hostile = 0;
    for l in &rows {
        let k = after_cols(l, kind);
        assert!(
            ["ai_agent ", "service_account ", "bot "]
                .iter()
                .any(|p| k.starts_with(p)),
            "KIND out of place: {l}\n{text}"
        );
        assert!(after_cols(l, status).starts_with("active "), "{l}\n{text}");
        let c = after_cols(l, creds);
        assert!(
            c.trim_start().starts_with(|ch: char| ch.is_ascii_digit()) && c.len() >= 5,
            "CREDS out of place: {l}\n{text}"
        );
        assert_eq!(display_width(&l[..l.len() - c.len()]), creds);
        if l.contains("HYPERLINK") || l.contains("kcab") {
            hostile += 1;
            // The owner cell is the owner's name, escaped and cut to 24.
            let o = after_cols(l, owner);
            assert!(o.starts_with("@SUM(1+1) 名前\\u202e\\u0…"), "{l}");
        }
        if l.contains("kcab") {
            // Shown whole: escaped, then padded to the column.
            let name = after_cols(l, 9);
            assert!(name.starts_with("svc-\\u202ekcab 日本\\u001b[2J "), "{l}");
        }
    }
    assert_eq!(
        hostile, 2,
        "the hostile machines are listed once each: {text}"
    );
}

/// `custodian source list`: the kind column starts at the same place for a
/// source whose name holds a bidi override and a tab.
fn assert_source_list_aligned(db: &std::path::Path) {
    let out = custodian(db, &["source", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    no_hidden("source list", &text);
    assert!(!text.contains('\t'), "a tab in a table: {text}");
    let line = text.lines().find(|l| l.contains("SCIM")).unwrap();
    assert!(
        after_cols(line, 6).starts_with("HR \\u202eSCIM\\u0009source "),
        "{line}"
    );
    assert!(after_cols(line, 6 + 32 + 1).starts_with("scim "), "{line}");
}
