//! Output safety: the rules every piece of outside text (names, purposes,
//! justifications, settings, reasons: anything an identity source or a person
//! wrote) passes through when it leaves the program. Plain functions, no I/O
//! except [`VisibleWriter`], which applies [`terminal`] to a stream.
//!
//! - **Hidden controls** ([`visible`]): bidirectional overrides and isolates
//!   (U+202A–U+202E, U+2066–U+2069), marks (U+200E, U+200F, U+061C), C0
//!   controls (ESC included), DEL and C1 controls are written as `\uXXXX`
//!   (`\u202e`, `\u001b`), so they can neither reorder what a reader sees nor
//!   drive a terminal. The `\uXXXX` form is also a JSON string escape of the
//!   same character, so the rule can run over JSON output without changing
//!   its meaning. Each format keeps the whitespace it allows (newline, tab).
//! - **CSV** ([`csv_cell`]): OWASP's CSV-injection guidance: a cell starting
//!   with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`, so a
//!   spreadsheet shows it as text instead of evaluating it. Quoting stays the
//!   csv crate's job.
//! - **Markdown** ([`md_text`]): source text becomes one line of literal text:
//!   Markdown metacharacters are backslash-escaped (so no link, image, code
//!   span, emphasis, heading, list or table cell can be formed from it),
//!   `&`, `<`, `>` become entities (no raw HTML, no `<...>` autolink), `:`,
//!   `.` and `@` are escaped (no GFM bare-URL, `www.` or e-mail autolink),
//!   and line breaks become spaces (a table row cannot be broken).
//! - **HTML** ([`html`]): `&`, `<`, `>`, `"` and `'` become entities after
//!   hidden controls are made visible.
//! - **Secrets** ([`is_secret_key`], [`redact_settings`], [`redact_url`]):
//!   which setting names are secrets (refused by `source add --set`, redacted
//!   wherever settings are shown) and URLs without their query strings.

use std::borrow::Cow;
use std::io::Write;

/// Characters that must never reach an export or a terminal as themselves:
/// C0 controls (newline and tab are decided by the caller), DEL, C1
/// controls, and the bidirectional formatting characters.
pub fn is_hidden_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// `s` with every hidden control except those in `keep` written as `\uXXXX`.
/// When `\n` is kept, a CRLF pair becomes `\n`.
pub fn visible<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !s
        .chars()
        .any(|c| is_hidden_control(c) && !keep.contains(&c))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\r' && keep.contains(&'\n') && it.peek() == Some(&'\n') {
            continue;
        }
        if is_hidden_control(c) && !keep.contains(&c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text for the terminal (the CLI's aligned output and its error messages):
/// newline and tab stay, every other hidden control is made visible.
pub fn terminal(s: &str) -> Cow<'_, str> {
    visible(s, &['\n', '\t'])
}

/// How many terminal columns `c` takes: 0 for combining marks, zero-width
/// joiners and variation selectors, 2 for East Asian wide and fullwidth
/// characters and emoji, 1 otherwise. A small table, not all of Unicode's
/// East Asian Width data, covering the scripts and symbols names use.
pub fn char_width(c: char) -> usize {
    match c as u32 {
        0x0300..=0x036f
        | 0x0483..=0x0489
        | 0x0591..=0x05bd
        | 0x0610..=0x061a
        | 0x064b..=0x065f
        | 0x0e31
        | 0x0e34..=0x0e3a
        | 0x1ab0..=0x1aff
        | 0x1dc0..=0x1dff
        | 0x200b..=0x200d
        | 0x20d0..=0x20ff
        | 0xfe00..=0xfe0f
        | 0xfe20..=0xfe2f
        | 0xe0100..=0xe01ef => 0,
        0x1100..=0x115f
        | 0x231a..=0x231b
        | 0x2329..=0x232a
        | 0x23e9..=0x23ec
        | 0x23f0
        | 0x23f3
        | 0x25fd..=0x25fe
        | 0x2614..=0x2615
        | 0x2648..=0x2653
        | 0x267f
        | 0x2693
        | 0x26a1
        | 0x26aa..=0x26ab
        | 0x26bd..=0x26be
        | 0x26c4..=0x26c5
        | 0x26ce
        | 0x26d4
        | 0x26ea
        | 0x26f2..=0x26f3
        | 0x26f5
        | 0x26fa
        | 0x26fd
        | 0x2705
        | 0x270a..=0x270b
        | 0x2728
        | 0x274c
        | 0x274e
        | 0x2753..=0x2755
        | 0x2757
        | 0x2795..=0x2797
        | 0x27b0
        | 0x27bf
        | 0x2b1b..=0x2b1c
        | 0x2b50
        | 0x2b55
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xa960..=0xa97f
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe10..=0xfe19
        | 0xfe30..=0xfe6f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f004
        | 0x1f0cf
        | 0x1f18e
        | 0x1f191..=0x1f19a
        | 0x1f200..=0x1f251
        | 0x1f300..=0x1f64f
        | 0x1f680..=0x1f6ff
        | 0x1f7e0..=0x1f7eb
        | 0x1f900..=0x1f9ff
        | 0x1fa70..=0x1faff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}

/// How many terminal columns `s` takes (see [`char_width`]).
pub fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Outside text as one cell of an aligned terminal table, exactly `width`
/// columns wide: every hidden control, newline and tab included, is made
/// visible first (a cell is one line, and a tab would jump columns), then the
/// escaped text is cut to fit (ending in `…`) and padded with spaces, both
/// by display width, so the next column starts where it should whatever the
/// cell held. The result holds no hidden control, so [`VisibleWriter`] passes
/// it unchanged.
pub fn cell(s: &str, width: usize) -> String {
    let v = visible(s, &[]);
    let mut out = String::with_capacity(width + 8);
    let mut used = 0;
    if display_width(&v) <= width {
        out.push_str(&v);
        used = display_width(&v);
    } else if width > 0 {
        for c in v.chars() {
            let w = char_width(c);
            if used + w > width - 1 {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        used += 1;
    }
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// Like [`cell`] but never cut: escaped, then padded to at least `width`
/// columns (a longer text pushes the rest of its line, as `{:<width}` did).
pub fn pad(s: &str, width: usize) -> String {
    let v = visible(s, &[]);
    let used = display_width(&v);
    let mut out = v.into_owned();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    out
}

/// The characters that make a spreadsheet treat a cell as a formula (OWASP).
const CSV_FORMULA_START: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// One CSV cell: hidden controls made visible (newline and tab stay; the csv
/// crate quotes them), and a leading `'` when the cell starts with a formula
/// character.
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let v = visible(s, &['\n', '\t']);
    if s.starts_with(CSV_FORMULA_START) {
        Cow::Owned(format!("'{v}"))
    } else {
        v
    }
}

/// A CSV record with [`csv_cell`] applied to every cell.
pub fn csv_record<I, S>(cells: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    cells
        .into_iter()
        .map(|c| csv_cell(c.as_ref()).into_owned())
        .collect()
}

/// Outside text as one line of literal Markdown text, safe in a paragraph, a
/// heading, a list item or a table cell.
pub fn md_text(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let flat = visible(flat.trim(), &[]);
    let mut out = String::with_capacity(flat.len() + 8);
    for (i, c) in flat.chars().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '!' | '|' | '~'
            | ':' | '.' | '@' | '"' => {
                out.push('\\');
                out.push(c);
            }
            // Block markers only matter where a line starts: lists,
            // thematic breaks, setext underlines.
            '-' | '+' | '=' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Outside text for HTML element content or a double-quoted attribute.
pub fn html(s: &str) -> String {
    let v = visible(s, &['\n']);
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A writer that passes text through [`terminal`]: the CLI's stdout (so no
/// string from a source can print an escape sequence or a bidi override) and
/// the JSON evidence (where `\uXXXX` is the same character, escaped).
/// Complete UTF-8 sequences split across writes are held until they are
/// whole; bytes that are not UTF-8 are written as U+FFFD.
pub struct VisibleWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> VisibleWriter<W> {
    pub fn new(inner: W) -> Self {
        VisibleWriter {
            inner,
            pending: Vec::new(),
        }
    }

    /// The writer underneath (call [`Write::flush`] first).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    fn emit(&mut self, text: &str) -> std::io::Result<()> {
        self.inner.write_all(terminal(text).as_bytes())
    }
}

impl<W: Write> Write for VisibleWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            if let Ok(s) = std::str::from_utf8(buf) {
                self.inner.write_all(terminal(s).as_bytes())?;
                return Ok(buf.len());
            }
        }
        self.pending.extend_from_slice(buf);
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    let s = s.to_string();
                    self.pending.clear();
                    self.emit(&s)?;
                    break;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    let head = String::from_utf8_lossy(&self.pending[..good]).into_owned();
                    self.emit(&head)?;
                    match e.error_len() {
                        // An incomplete sequence at the end: wait for the rest.
                        None => {
                            self.pending.drain(..good);
                            break;
                        }
                        Some(n) => {
                            self.pending.drain(..good + n);
                            self.inner.write_all("\u{fffd}".as_bytes())?;
                        }
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let rest = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            self.emit(&rest)?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for VisibleWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

// ---------------------------------------------------------------- secrets ---

/// The words that make a setting name a secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "apikey",
    "credential",
];

/// Whether a setting name names a secret: its last word (words split on
/// `_`, `-`, `.`, spaces and lowerCamel boundaries, case-insensitive) is one
/// of password, passwd, pwd, passphrase, secret, token, key, apikey,
/// credential (singular: plurals name flags such as GitHub's `read_tokens`). So `password`, `bind_password`, `client_secret`, `api_key`,
/// `apiKey`, `private_key` and `auth_token` are secrets, and `key_id`,
/// `access_key_id`, `token_url`, `secret_arn` and `keystore_path` are not:
/// they name where a secret is or which one, not the secret itself (AWS's
/// required `access_key_id` is public).
pub fn is_secret_key(name: &str) -> bool {
    let mut words: Vec<String> = vec![String::new()];
    let mut prev_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.' | ' ') {
            words.push(String::new());
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            words.push(String::new());
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        if let Some(w) = words.last_mut() {
            w.extend(c.to_lowercase());
        }
    }
    words
        .iter()
        .rev()
        .find(|w| !w.is_empty())
        .is_some_and(|w| SECRET_WORDS.contains(&w.as_str()))
}

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// A URL without its query string and fragment (`https://x/a?[redacted]`);
/// anything that is not an absolute URL with a query is returned as it is.
pub fn redact_url(s: &str) -> Cow<'_, str> {
    match s.split_once('?') {
        Some((base, _)) if base.contains("://") => Cow::Owned(format!("{base}?{REDACTED}")),
        _ => Cow::Borrowed(s),
    }
}

/// Whether a URL's query has a parameter named like a secret
/// (`?token=...`, `?api_key=...`).
pub fn url_query_has_secret(s: &str) -> bool {
    let Some((base, query)) = s.split_once('?') else {
        return false;
    };
    base.contains("://")
        && query
            .split(['&', ';', '#'])
            .filter_map(|kv| kv.split('=').next())
            .any(is_secret_key)
}

/// Settings as they may be shown (source list, diagnostics, exports): values
/// of secret-named keys become `[redacted]`, URLs lose their query strings.
pub fn redact_settings(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) {
                    serde_json::Value::from(REDACTED)
                } else {
                    match v {
                        serde_json::Value::String(s) => {
                            serde_json::Value::from(redact_url(s).into_owned())
                        }
                        other => redact_settings(other),
                    }
                };
                (k.clone(), shown)
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(a) => a.iter().map(redact_settings).collect(),
        serde_json::Value::String(s) => serde_json::Value::from(redact_url(s).into_owned()),
        other => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "=HYPERLINK(\"http://x\")",
        "| # heading",
        "<img src=x onerror=alert(1)>",
        "[a](javascript:alert(1))",
        "evil\u{202e}fdp.exe",
        "red \u{1b}[31mALERT\u{1b}[0m",
    ];

    #[test]
    fn hidden_controls_become_visible_escapes() {
        assert_eq!(visible("a\u{202e}b", &[]), "a\\u202eb");
        assert_eq!(visible("\u{1b}[2J", &[]), "\\u001b[2J");
        assert_eq!(visible("x\u{85}y\u{7f}", &[]), "x\\u0085y\\u007f");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200e}', '\u{200f}', '\u{0}', '\u{7}', '\u{9b}',
        ] {
            assert!(!visible(&format!("a{c}b"), &[]).contains(c), "{c:?}");
        }
        // Kept whitespace stays; CRLF becomes LF when newlines are kept.
        assert_eq!(visible("a\nb\tc", &['\n', '\t']), "a\nb\tc");
        assert_eq!(visible("a\r\nb\rc", &['\n']), "a\nb\\u000dc");
        // Ordinary text, accents and emoji are untouched (and not copied).
        assert!(matches!(visible("Zoë 🚀 — ok", &[]), Cow::Borrowed(_)));
        // A JSON string with an escaped control still parses to the same text.
        let json = serde_json::to_string("a\u{202e}b\u{9b}").unwrap();
        let shown = terminal(&json);
        assert!(!shown.contains('\u{202e}'));
        assert_eq!(
            serde_json::from_str::<String>(&shown).unwrap(),
            "a\u{202e}b\u{9b}"
        );
    }

    #[test]
    fn csv_cells_starting_with_formula_characters_are_neutralised() {
        for s in ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            let c = csv_cell(s);
            assert!(c.starts_with('\''), "{s:?} -> {c:?}");
        }
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("x\u{1b}[1m"), "x\\u001b[1m");
        // The CSV still parses, and gives back the neutralised cells.
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(vec![]);
        w.write_record(csv_record(HOSTILE)).unwrap();
        w.write_record(csv_record([
            "line\nbreak",
            "tab\tinside",
            "quote \" , comma",
        ]))
        .unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&bytes[..]);
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][0], "'=HYPERLINK(\"http://x\")");
        assert_eq!(&rows[0][4], "evil\\u202efdp.exe");
        assert!(!rows[0][5].contains('\u{1b}'));
        assert_eq!(&rows[1][0], "line\nbreak");
        assert_eq!(&rows[1][2], "quote \" , comma");
    }

    #[test]
    fn markdown_text_cannot_form_links_html_headings_or_cells() {
        let link = md_text("[a](javascript:alert(1))");
        assert_eq!(link, "\\[a\\]\\(javascript\\:alert\\(1\\)\\)");
        assert!(!link.contains("](") && !link.contains("javascript:"));
        let img = md_text("<img src=x onerror=alert(1)>");
        assert_eq!(img, "&lt;img src=x onerror=alert\\(1\\)&gt;");
        assert_eq!(md_text("| # heading"), "\\| \\# heading");
        assert_eq!(md_text("# title"), "\\# title");
        assert_eq!(md_text("- item"), "\\- item");
        assert_eq!(md_text("a-b"), "a-b");
        assert_eq!(md_text("line one\nline | two\r\n"), "line one line \\| two");
        assert_eq!(md_text("<http://evil>"), "&lt;http\\://evil&gt;");
        assert_eq!(md_text("www.evil.example"), "www\\.evil\\.example");
        assert_eq!(md_text("a@b.example"), "a\\@b\\.example");
        assert_eq!(
            md_text("`code` **b** ~~s~~ _i_"),
            "\\`code\\` \\*\\*b\\*\\* \\~\\~s\\~\\~ \\_i\\_"
        );
        assert_eq!(md_text("&#106;avascript"), "&amp;\\#106;avascript");
        assert_eq!(md_text("back\\slash"), "back\\\\slash");
        assert_eq!(
            md_text("rtl\u{202e}x \u{1b}[31m"),
            "rtl\\\\u202ex \\\\u001b\\[31m"
        );
        for s in HOSTILE {
            let m = md_text(s);
            assert!(!m.contains('\n') && !m.contains('<') && !m.contains('\u{1b}'));
            assert!(!m.contains('\u{202e}'));
            // Every `|` is escaped, so a table cell cannot end early.
            assert!(!m.replace("\\|", "").contains('|'), "{m}");
        }
    }

    #[test]
    fn html_escapes_hostile_text() {
        assert_eq!(
            html("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            html("x\" onerror=\"alert(1)"),
            "x&quot; onerror=&quot;alert(1)"
        );
        assert_eq!(html("it's"), "it&#39;s");
        assert_eq!(html("a\u{202e}b\u{1b}"), "a\\u202eb\\u001b");
        // javascript: as text is harmless once no tag or attribute can open.
        assert_eq!(html("javascript:alert(1)"), "javascript:alert(1)");
    }

    #[test]
    fn the_terminal_writer_shows_escapes_even_across_split_writes() {
        let mut w = VisibleWriter::new(Vec::new());
        let text = "name \u{1b}]0;pwned\u{7} \u{202e}abc\n";
        let bytes = text.as_bytes();
        // Split inside the three-byte U+202E.
        let cut = text.find('\u{202e}').unwrap() + 1;
        w.write_all(&bytes[..cut]).unwrap();
        w.write_all(&bytes[cut..]).unwrap();
        w.write_all(&[0xff, b'\n']).unwrap();
        w.flush().unwrap();
        let out = String::from_utf8(std::mem::take(&mut w.inner)).unwrap();
        assert_eq!(out, "name \\u001b]0;pwned\\u0007 \\u202eabc\n\u{fffd}\n");
    }

    #[test]
    fn table_cells_are_escaped_then_cut_and_padded_by_display_width() {
        // Plain text: padded to the width.
        assert_eq!(cell("abc", 6), "abc   ");
        // Hidden controls, newline and tab are escaped before measuring, so
        // the padding counts what the terminal shows.
        assert_eq!(cell("a\u{202e}b", 12), "a\\u202eb    ");
        assert_eq!(cell("x\ny\tz", 16), "x\\u000ay\\u0009z ");
        // Cut by display width, escapes included, ending in an ellipsis.
        assert_eq!(cell("\u{1b}[31mred", 8), "\\u001b[…");
        assert_eq!(cell("abcdefgh", 5), "abcd…");
        // Wide characters take two columns; a cut never splits one.
        assert_eq!(display_width("日本語"), 6);
        assert_eq!(cell("日本語", 8), "日本語  ");
        assert_eq!(cell("日本語x", 6), "日本… ");
        assert_eq!(display_width("🚀ok"), 4);
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("a\u{202e}", 4), "a\\u202e");
        // Combining marks and joiners take none.
        assert_eq!(display_width("e\u{301}"), 1);
        for s in [
            "plain",
            "evil\u{202e}gpj.exe",
            "\u{1b}]0;t\u{7}x",
            "línea\nnueva",
            "名前🚀",
            "",
        ] {
            for w in [1, 4, 10, 30] {
                let c = cell(s, w);
                assert_eq!(display_width(&c), w, "{s:?} at {w}: {c:?}");
                assert!(!c.chars().any(is_hidden_control), "{c:?}");
                assert_eq!(terminal(&c), c, "the writer leaves it as it is");
            }
        }
    }

    #[test]
    fn secret_setting_names_follow_one_rule() {
        for k in [
            "password",
            "bind_password",
            "passwd",
            "client_secret",
            "secret",
            "api_key",
            "apiKey",
            "key",
            "private_key",
            "auth_token",
            "TOKEN",
            "aws_secret_access_key",
            "SecretAccessKey",
            "passphrase",
            "credential",
        ] {
            assert!(is_secret_key(k), "{k} is a secret");
        }
        // Names of where or which secret, not the secret: allowed.
        for k in [
            "key_id",
            "access_key_id",
            "token_url",
            "secret_arn",
            "keystore_path",
            "tenant_id",
            "client_id",
            "base_url",
            "monkey",
            "turkey_count",
            "read_tokens",
            "",
        ] {
            assert!(!is_secret_key(k), "{k} is not a secret");
        }
    }

    #[test]
    fn settings_and_urls_are_redacted() {
        let s = serde_json::json!({
            "base_url": "https://idp.example/scim?token=abc",
            "client_secret": "hunter2",
            "tenant_id": "t-1",
            "page_size": 100,
        });
        let r = redact_settings(&s);
        assert_eq!(r["base_url"], "https://idp.example/scim?[redacted]");
        assert_eq!(r["client_secret"], REDACTED);
        assert_eq!(r["tenant_id"], "t-1");
        assert_eq!(r["page_size"], 100);
        assert!(url_query_has_secret("https://x/a?api_key=1&b=2"));
        assert!(!url_query_has_secret("https://x/a?filter=active"));
        assert!(!url_query_has_secret("not a url?token=1"));
        assert_eq!(redact_url("ldaps://dc1/x?y"), "ldaps://dc1/x?[redacted]");
        assert_eq!(redact_url("no query"), "no query");
    }
}
