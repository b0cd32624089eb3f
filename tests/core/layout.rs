//! The code map's invariant that all SQL lives in `src/store/`: no string
//! literal outside it (the core, the CLI, the desktop shell) holds a SQL
//! statement. Benchmarks (`src/bin/bench/`) read the cache through
//! `raw_db()` and are exempt, as tests are.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The statements found in `text`'s string literals, as `line: excerpt`.
/// Literals may span lines; `//` comment lines, char literals of a quote and
/// escaped quotes are set aside first so the quotes pair up.
fn sql_in(text: &str) -> Vec<String> {
    const STARTS: &[&str] = &[
        "INSERT INTO ",
        "DELETE FROM ",
        "CREATE TABLE ",
        "CREATE INDEX ",
        "ALTER TABLE ",
        "DROP TABLE ",
        "WITH RECURSIVE ",
    ];
    let code: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace("'\"'", "''")
        .replace("\\\"", "");
    let mut found = Vec::new();
    let mut line = 1;
    for (k, part) in code.split('"').enumerate() {
        if k % 2 == 1 {
            let upper = part.trim_start().to_ascii_uppercase();
            let select = upper.starts_with("SELECT ") && upper.contains(" FROM ");
            let update = upper.starts_with("UPDATE ") && upper.contains(" SET ");
            if select || update || STARTS.iter().any(|s| upper.starts_with(s)) {
                let excerpt: String = part.trim_start().chars().take(60).collect();
                found.push(format!("{line}: {excerpt}"));
            }
        }
        line += part.matches('\n').count();
    }
    found
}

#[test]
fn no_sql_outside_the_store() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("src-tauri/src"), &mut files);
    let store = root.join("src/store");
    let bench = root.join("src/bin/bench");
    let mut offenders = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.starts_with(&store) && !f.starts_with(&bench))
    {
        for hit in sql_in(&std::fs::read_to_string(f).unwrap()) {
            offenders.push(format!("{}:{hit}", f.strip_prefix(root).unwrap().display()));
        }
    }
    assert!(
        files.len() > 50,
        "the scan found too few files: {}",
        files.len()
    );
    assert!(
        offenders.is_empty(),
        "SQL outside src/store/:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_scan_recognises_statements_and_leaves_prose_alone() {
    let code = r#"
        let q = "SELECT i.id,
                 i.name FROM identities i";
        tx.execute("UPDATE campaigns SET status = 'closed'", [])?;
        let s = "insert into grants(identity) values (1)";
        // "SELECT in a comment" is not code
        let msg = "select a source first";
        let other = "update the owner";
        let quote = '"'; let escaped = "a \"SELECT x FROM y\" b";
    "#;
    let hits = sql_in(code);
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert!(hits[0].starts_with("2: SELECT"));
    assert!(hits[1].starts_with("4: UPDATE"));
    assert!(hits[2].starts_with("5: insert"));
}
