//! The desktop shell's commands and the UI's calls agree: every
//! `invoke("name")` in `ui/src` names a command registered in
//! `tauri::generate_handler![...]` in `src-tauri/src`, and every registered
//! command is called by the UI (or listed below, with why).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Commands the shell registers that the UI does not call. Keep each with a
/// reason; the test also fails when an entry is stale (the command is gone,
/// or the UI now calls it), so the list only shrinks by deleting lines.
const NOT_CALLED_BY_THE_UI: &[(&str, &str)] = &[
    // The catalogue of checks for the UI (titles, OWASP categories, fixes);
    // no view reads it yet: findings arrive with their titles.
    ("finding_checks", "catalogue for views to come"),
    // Registered before this test existed and never called by the UI (its
    // views use other commands for these); each is either a view to build
    // or a command to drop.
    ("authorization", "no authorization-report view yet"),
    ("blast_rank", "the Posture view gets its top ranks inside `posture`"),
    ("campaign_items", "the Campaigns view reads progress, not raw items"),
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
        let end = body.find(']').expect("generate_handler! without a closing ]");
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
        let what: String = src[i..].chars().take(30).take_while(|c| *c != '\n').collect();
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
    assert!(commands.len() > 10, "no generate_handler! list found in src-tauri/src");

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
            problems.push(format!("NOT_CALLED_BY_THE_UI lists `{e}`, which is not a command: remove it"));
        } else if called.contains(*e) {
            problems.push(format!("NOT_CALLED_BY_THE_UI lists `{e}`, which the UI now calls: remove it"));
        }
    }
    assert!(problems.is_empty(), "shell and UI disagree:\n  {}", problems.join("\n  "));
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
