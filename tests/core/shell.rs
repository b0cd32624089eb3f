//! The desktop shell's commands and the UI's calls agree: every
//! `invoke("name")` in `ui/src` names a command registered in
//! `tauri::generate_handler![...]` in `src-tauri/src`, and every registered
//! command is called by the UI (or listed below, with why). And the UI keeps
//! no catalogue of its own: kinds of source and posture checks come from the
//! core (`source_kinds`, `finding_checks`), not from lists in ui/src.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Commands the shell registers that the UI does not call. Keep each with a
/// reason; the test also fails when an entry is stale (the command is gone,
/// or the UI now calls it), so the list only shrinks by deleting lines.
const NOT_CALLED_BY_THE_UI: &[(&str, &str)] = &[
    // Registered before this test existed and never called by the UI (its
    // views use other commands for these); each is either a view to build
    // or a command to drop.
    ("authorization", "no authorization-report view yet"),
    (
        "blast_rank",
        "the Posture view gets its top ranks inside `posture`",
    ),
    (
        "campaign_items",
        "the Campaigns view reads progress, not raw items",
    ),
    ("export_tasks", "no task-export button yet"),
    ("item_history", "no item-history panel yet"),
    ("link_identities", "documenting an edge is CLI-only so far"),
    ("mark_departing", "marking a departure is CLI-only so far"),
    ("offboarding_cases", "My team lists cases through `my_team`"),
    ("paths_to_admin", "no paths-to-admin view yet"),
    ("tasks", "no task list view yet"),
    ("who_can_reach", "no who-can-reach view yet"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "node_modules") {
                files(&p, exts, out);
            }
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| exts.iter().any(|e| n.ends_with(e)))
        {
            out.push(p);
        }
    }
}

/// Command names in every `generate_handler![...]` of a Rust source: the
/// last segment of each path (`posture::blast_radius` -> `blast_radius`).
fn handler_names(src: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = src;
    while let Some(i) = rest.find("generate_handler![") {
        let body = &rest[i + "generate_handler![".len()..];
        let end = body
            .find(']')
            .expect("generate_handler! without a closing ]");
        for item in body[..end].split(',') {
            let item: String = item
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" ");
            let item = item.trim();
            if !item.is_empty() {
                out.push(item.rsplit("::").next().unwrap_or(item).trim().to_string());
            }
        }
        rest = &body[end..];
    }
    out
}

/// A call found in TypeScript: the command name, or `Err` with what stood
/// there when the name is not a string literal (it cannot be checked).
type Call = (usize, Result<String, String>);

/// `invoke("name"`, `invoke<T>('name'` and `invoke<A<B> | null>(\n "name"`
/// calls with their line numbers. `invoke` must be a whole identifier and
/// not a method (`x.invoke(` is someone else's).
fn invoke_calls(src: &str) -> Vec<Call> {
    let b = src.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let mut out = vec![];
    let mut from = 0;
    while let Some(off) = src[from..].find("invoke") {
        let start = from + off;
        from = start + "invoke".len();
        if start > 0 && (ident(b[start - 1]) || b[start - 1] == b'.') {
            continue;
        }
        let mut i = from;
        if i < b.len() && ident(b[i]) {
            continue;
        }
        let skip_ws = |mut i: usize| {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        };
        i = skip_ws(i);
        if i < b.len() && b[i] == b'<' {
            // The type argument, balanced; `=>` inside it is not a bracket.
            let mut depth = 0i32;
            while i < b.len() {
                match b[i] {
                    b'<' => depth += 1,
                    b'>' if i > 0 && b[i - 1] == b'=' => {}
                    b'>' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            i = skip_ws(i);
        }
        if i >= b.len() || b[i] != b'(' {
            continue; // an import, a type, a word in a comment
        }
        i = skip_ws(i + 1);
        let line = src[..start].matches('\n').count() + 1;
        let q = b.get(i).copied().unwrap_or(b' ');
        if matches!(q, b'\'' | b'"' | b'`') {
            if let Some(len) = src[i + 1..].find(q as char) {
                let name = &src[i + 1..i + 1 + len];
                if q != b'`' || !name.contains("${") {
                    out.push((line, Ok(name.to_string())));
                    continue;
                }
            }
        }
        let what: String = src[i..]
            .chars()
            .take(30)
            .take_while(|c| *c != '\n')
            .collect();
        out.push((line, Err(what)));
    }
    out
}

#[test]
fn every_ui_call_has_a_command_and_every_command_is_called() {
    let mut rust = vec![];
    files(&root().join("src-tauri/src"), &[".rs"], &mut rust);
    let mut commands = BTreeSet::new();
    for f in &rust {
        commands.extend(handler_names(&std::fs::read_to_string(f).unwrap()));
    }
    assert!(
        commands.len() > 10,
        "no generate_handler! list found in src-tauri/src"
    );

    let mut ts = vec![];
    files(&root().join("ui/src"), &[".ts", ".tsx"], &mut ts);
    let mut called = BTreeSet::new();
    let mut problems = vec![];
    for f in &ts {
        let rel = f.strip_prefix(root()).unwrap_or(f).display().to_string();
        for (line, call) in invoke_calls(&std::fs::read_to_string(f).unwrap()) {
            match call {
                Ok(name) => {
                    if !commands.contains(&name) {
                        problems.push(format!(
                            "{rel}:{line}: invoke(\"{name}\") has no command in src-tauri's generate_handler!"
                        ));
                    }
                    called.insert(name);
                }
                Err(what) => problems.push(format!(
                    "{rel}:{line}: invoke({what}...) does not name its command with a string literal, so it cannot be checked"
                )),
            }
        }
    }
    assert!(called.len() > 10, "no invoke calls found in ui/src");

    let excused: BTreeSet<&str> = NOT_CALLED_BY_THE_UI.iter().map(|(n, _)| *n).collect();
    for c in &commands {
        if !called.contains(c) && !excused.contains(c.as_str()) {
            problems.push(format!(
                "command `{c}` is registered but the UI never invokes it (call it, drop it, or add it to NOT_CALLED_BY_THE_UI with why)"
            ));
        }
    }
    for e in &excused {
        if !commands.contains(*e) {
            problems.push(format!(
                "NOT_CALLED_BY_THE_UI lists `{e}`, which is not a command: remove it"
            ));
        } else if called.contains(*e) {
            problems.push(format!(
                "NOT_CALLED_BY_THE_UI lists `{e}`, which the UI now calls: remove it"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "shell and UI disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn handler_lists_are_read_with_paths_and_comments() {
    let src = "fn a() {}\n tauri::generate_handler![\n  summary,\n  posture::blast_radius, // the graph\n  reviews::decide\n ]";
    assert_eq!(handler_names(src), ["summary", "blast_radius", "decide"]);
}

#[test]
fn invoke_calls_are_found_in_their_forms() {
    let src = "import { invoke } from '@tauri-apps/api/core';\n\
               // every call goes through `invoke`.\n\
               a: () => invoke('summary'),\n\
               b: () => invoke<[number, number] | null>(\"launch\", {}),\n\
               c: () => invoke<Array<X>>(\n    `multi`),\n\
               d: () => invoke<(x: number) => void>('arrow'),\n\
               e: () => other.invoke('not_ours'), reinvoke('nor_this'),\n\
               f: () => invoke(cmd),\n\
               kinds: ['invoke', 'assume_role'], invoke: 'Invoke',";
    let calls = invoke_calls(src);
    let names: Vec<_> = calls.iter().map(|(l, c)| (*l, c.clone())).collect();
    assert_eq!(
        names,
        [
            (3, Ok("summary".to_string())),
            (4, Ok("launch".to_string())),
            (5, Ok("multi".to_string())),
            (7, Ok("arrow".to_string())),
            (9, Err("cmd),".to_string())),
        ]
    );
}

/// The generated snapshot of the core's catalogues, for the in-browser mock.
const GENERATED: &[&str] = &["ui/src/bindings.ts", "ui/src/lib/catalogue.gen.ts"];
/// The only files that may import the snapshot: the mocks (views ask the backend).
const MAY_IMPORT_THE_SNAPSHOT: &[&str] = &[
    "ui/src/lib/mock.ts",
    "ui/src/lib/mockSources.ts",
    "ui/src/lib/offboarding.ts",
    "ui/src/lib/posture.ts",
];

/// String literals (`'x'`, `"x"`, `` `x` `` without `${`) with their byte
/// offsets; comments (`//`, `/* */`) are skipped.
fn string_literals(src: &str) -> Vec<(usize, String)> {
    let b = src.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            i = src[i..].find('\n').map_or(b.len(), |n| i + n);
            continue;
        }
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i = src[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
            continue;
        }
        let q = b[i];
        if matches!(q, b'\'' | b'"' | b'`') {
            let mut j = i + 1;
            while j < b.len() && b[j] != q && (q == b'`' || b[j] != b'\n') {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            if j < b.len() && b[j] == q {
                let text = &src[i + 1..j];
                if !text.contains("${") {
                    out.push((i, text.to_string()));
                }
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Why `src` looks like it keeps its own list of the catalogue's `kinds`
/// (ids) or `texts` (titles and fixes), one line each; empty when it does not.
fn own_catalogue(src: &str, kinds: &[String], texts: &[String]) -> Vec<String> {
    let mut why = vec![];
    let lits = string_literals(src);
    // An array literal naming two or more kinds: `['scim', 'aws']`.
    let b = src.as_bytes();
    let mut stack = vec![];
    for (i, c) in b.iter().enumerate() {
        match c {
            b'[' => stack.push(i),
            b']' => {
                if let Some(open) = stack.pop() {
                    let mut named: Vec<&str> = lits
                        .iter()
                        .filter(|(at, t)| *at > open && *at < i && kinds.contains(t))
                        .map(|(_, t)| t.as_str())
                        .collect();
                    named.sort_unstable();
                    named.dedup();
                    if named.len() >= 2 {
                        let line = src[..open].matches('\n').count() + 1;
                        why.push(format!(
                            "line {line}: a list of source kinds ({})",
                            named.join(", ")
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    // Objects describing two or more kinds: `kind: 'csv'`, or kinds as keys.
    let mut described = BTreeSet::new();
    let mut keyed = BTreeSet::new();
    for k in kinds {
        for q in ["'", "\"", "`"] {
            for sep in [": ", ":"] {
                if src.contains(&format!("kind{sep}{q}{k}{q}")) {
                    described.insert(k.as_str());
                }
            }
        }
        let mut from = 0;
        while let Some(off) = src[from..].find(k.as_str()) {
            let at = from + off;
            from = at + k.len();
            let before = src[..at].chars().next_back();
            let after = src[from..].trim_start_matches(['\'', '"']);
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                || src[from..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            if after.trim_start().starts_with(':') && !after.trim_start().starts_with("::") {
                keyed.insert(k.as_str());
            }
        }
    }
    if described.len() >= 2 {
        why.push(format!(
            "describes source kinds itself (kind: {})",
            described.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if keyed.len() >= 2 {
        why.push(format!(
            "keys something by source kind ({})",
            keyed.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    // A check's title or fix, or a category's title, written out.
    for (at, t) in &lits {
        if texts.contains(t) {
            let line = src[..*at].matches('\n').count() + 1;
            why.push(format!("line {line}: the catalogue's text \"{t}\""));
        }
    }
    why
}

fn catalogue_words() -> (Vec<String>, Vec<String>) {
    let kinds: Vec<String> = custodian::ops::source_kinds()
        .into_iter()
        .map(|k| k.kind)
        .collect();
    let cat = custodian::ops::finding_checks();
    let mut texts: Vec<String> = cat
        .checks
        .iter()
        .flat_map(|c| [c.title.clone(), c.fix.clone()])
        .collect();
    texts.extend(cat.categories.iter().map(|c| c.title.clone()));
    // Kinds' descriptions (not their labels: "Okta" is also a fine name for a source).
    texts.extend(custodian::ops::source_kinds().into_iter().map(|k| k.about));
    (kinds, texts)
}

#[test]
fn the_ui_keeps_no_catalogue_of_its_own() {
    let (kinds, texts) = catalogue_words();
    assert!(
        kinds.len() >= 7 && texts.len() > 30,
        "the catalogues are empty"
    );
    let mut ts = vec![];
    files(&root().join("ui/src"), &[".ts", ".tsx"], &mut ts);
    let mut problems = vec![];
    let mut scanned = 0;
    for f in &ts {
        let rel = f
            .strip_prefix(root())
            .unwrap_or(f)
            .display()
            .to_string()
            .replace('\\', "/");
        // Tests hold examples (made-up catalogues, or a kind or two), not the app's lists.
        if GENERATED.contains(&rel.as_str())
            || rel.contains(".test.")
            || rel.starts_with("ui/src/test/")
        {
            continue;
        }
        let src = std::fs::read_to_string(f).unwrap();
        scanned += 1;
        for why in own_catalogue(&src, &kinds, &texts) {
            problems.push(format!(
                "{rel}: {why}: take it from the `source_kinds` / `finding_checks` catalogue"
            ));
        }
        if src.contains("catalogue.gen") && !MAY_IMPORT_THE_SNAPSHOT.contains(&rel.as_str()) {
            problems.push(format!(
                "{rel}: imports the mock's catalogue snapshot; views ask the backend (lib/catalogue.ts)"
            ));
        }
    }
    assert!(scanned > 20, "no ui/src files scanned");
    assert!(
        problems.is_empty(),
        "the UI keeps its own catalogue:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn hand_kept_catalogues_are_recognised() {
    let (kinds, texts) = catalogue_words();
    let flagged = |src: &str| !own_catalogue(src, &kinds, &texts).is_empty();
    // What ui/src held before the catalogues were served.
    assert!(flagged("export const WRITE_BACK_KINDS = ['scim', 'aws'];"));
    assert!(flagged(
        "const NEEDS_SECRET = new Set([\n  'scim',\n  \"entra\", 'okta']);"
    ));
    assert!(flagged(
        "const REQUIRED = { scim: ['base_url'], csv: ['path'] };"
    ));
    assert!(flagged(
        "const KINDS = [{\n kind: 'csv', label: 'Sheet' }, { kind: 'scim', label: 'SCIM' }];"
    ));
    let check = &custodian::ops::finding_checks().checks[0];
    assert!(flagged(&format!(
        "const CHECKS = {{ 'x': ['NHI1', 'high', '{}'] }};",
        check.title
    )));
    assert!(flagged(&format!(
        "preview: {{ findings: [\"{}\"] }}",
        check.fix
    )));
    assert!(!flagged(&format!(
        "/** e.g. `{}` */ // '{}'",
        check.title, check.fix
    )));
    assert!(flagged("const OWASP = { NHI7: 'Long-Lived Secrets' };"));
    // What it may hold: one kind, kinds in unrelated places, other lists.
    assert!(!flagged("const [kind, setKind] = useState('csv');"));
    assert!(!flagged(
        "create('csv', 'Agent registry', {}); if (s.kind === 'entra') {}"
    ));
    assert!(!flagged(
        "kinds: ['ai_agent', 'service_account'], x: a ? scimx : b, y: s.csv"
    ));
    assert!(!flagged("m.add({ kind: 'okta', name: 'Okta' })"));
}
