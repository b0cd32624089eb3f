//! Logging for the CLI and the app: `tracing` to standard error (filtered by
//! `CUSTODIAN_LOG`, default `warn` for the CLI) and to daily-rotated files in
//! `CUSTODIAN_LOG_DIR` (default: the data directory's `logs/`, seven files
//! kept) at `info` or `CUSTODIAN_LOG`. Sync runs and commands open spans, so
//! every line names its run or command. Secrets are never logged: they are
//! not in any span or event field, and URLs lose their query strings.

use std::path::PathBuf;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

pub const LOG_ENV: &str = "CUSTODIAN_LOG";
pub const LOG_DIR_ENV: &str = "CUSTODIAN_LOG_DIR";

/// Where log files go: `CUSTODIAN_LOG_DIR`, else `logs/` beside the cache
/// (`db`, or the default cache path).
pub fn log_dir(db: Option<&std::path::Path>) -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(LOG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let db = match db {
        Some(p) => p.to_path_buf(),
        None => crate::paths::default_db_path().ok()?,
    };
    db.parent().map(|d| d.join("logs"))
}

/// Keeps the file writer flushing; hold it for the life of the process.
pub struct LogGuard {
    _guard: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the subscriber. `stderr_default`: the stderr filter when
/// `CUSTODIAN_LOG` is unset. A log directory that cannot be created only
/// loses the file log (said once on stderr).
pub fn init(stderr_default: &str, db: Option<&std::path::Path>) -> LogGuard {
    let stderr_filter =
        EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(stderr_default));
    // No ANSI colours: every line passes through `Redacting`, which shows
    // escape sequences (from source data in messages) instead of obeying them.
    let stderr = fmt::layer()
        .with_ansi(false)
        .with_writer(Redacting(std::io::stderr))
        .with_filter(stderr_filter);
    let mut guard = None;
    let file = log_dir(db).and_then(|dir| {
        std::fs::create_dir_all(&dir).ok()?;
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("custodian")
            .filename_suffix("log")
            .max_log_files(7)
            .build(&dir)
            .ok()?;
        let (writer, g) = tracing_appender::non_blocking(appender);
        guard = Some(g);
        let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
        Some(
            fmt::layer()
                .with_ansi(false)
                .with_writer(Redacting(writer))
                .with_filter(filter),
        )
    });
    // A second initialisation (tests) is harmless.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    LogGuard { _guard: guard }
}

/// A log writer that passes each line through [`redact_line`] and makes
/// hidden controls visible (`crate::sanitize::terminal`), for the file and
/// standard error alike: a URL's query or a `token=` value never reaches a
/// log file, and no escape sequence from source data reaches the terminal.
#[derive(Clone)]
pub struct Redacting<M>(pub M);

impl<'a, M: fmt::MakeWriter<'a>> fmt::MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

/// See [`Redacting`]. The fmt layer writes one whole event per call.
pub struct RedactingWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut out = String::with_capacity(text.len());
        for piece in text.split_inclusive('\n') {
            let (line, nl) = match piece.strip_suffix('\n') {
                Some(l) => (l, "\n"),
                None => (piece, ""),
            };
            out.push_str(&crate::sanitize::terminal(&redact_line(line)));
            out.push_str(nl);
        }
        self.0.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Removes what could be a secret from a log line: authorization header
/// values, bearer/SSWS tokens, query strings, `secret=`/`password=`/`token=`
/// values, and long opaque strings.
pub fn redact_line(line: &str) -> String {
    let mut out = Vec::new();
    let mut redact_next = false;
    for word in line.split(' ') {
        let lower = word.to_ascii_lowercase();
        if redact_next {
            if matches!(lower.as_str(), "bearer" | "ssws" | "basic" | "token") {
                // The scheme stays; its value follows.
                out.push(word.to_string());
                continue;
            }
            out.push("[redacted]".to_string());
            redact_next = false;
            continue;
        }
        if lower == "bearer" || lower == "ssws" || lower.ends_with("authorization:") {
            out.push(word.to_string());
            redact_next = true;
            continue;
        }
        // Wider than `sanitize::is_secret_key` on purpose: in a log line,
        // redacting `key_id=...` too costs nothing.
        let secret_key = |k: &str| {
            let k = k.to_ascii_lowercase();
            crate::sanitize::is_secret_key(&k)
                || ["secret", "password", "passwd", "token", "key", "credential"]
                    .iter()
                    .any(|s| k.contains(s))
        };
        let w = if let Some((base, _)) = word.split_once('?').filter(|(b, _)| b.contains("://")) {
            format!("{base}?[redacted]")
        } else if let Some((k, _)) = word.split_once('=').filter(|(k, _)| secret_key(k)) {
            format!("{k}=[redacted]")
        } else if word.len() >= 32
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+/=.".contains(c))
            && word.chars().any(|c| c.is_ascii_digit())
        {
            "[redacted]".to_string()
        } else {
            word.to_string()
        };
        out.push(w);
    }
    out.join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::redact_line;

    #[test]
    fn log_writers_redact_queries_and_show_escapes() {
        use std::io::Write;
        let mut w = super::RedactingWriter(Vec::new());
        w.write_all(
            b"INFO fetch url=https://idp.example/scim/v2/Users?access_token=abc page=2\n\
              WARN name \x1b]0;owned\x07 \xe2\x80\xae\n",
        )
        .unwrap();
        let out = String::from_utf8(w.0).unwrap();
        assert_eq!(
            out,
            "INFO fetch url=https://idp.example/scim/v2/Users?[redacted] page=2\n\
             WARN name \\u001b]0;owned\\u0007 \\u202e\n"
        );
    }

    #[test]
    fn secrets_in_log_lines_are_redacted() {
        assert_eq!(
            redact_line("GET https://x/api?token=abc done"),
            "GET https://x/api?[redacted] done"
        );
        assert_eq!(
            redact_line("authorization: Bearer abc.def"),
            "authorization: Bearer [redacted]"
        );
        assert_eq!(
            redact_line("client_secret=hunter2 ok"),
            "client_secret=[redacted] ok"
        );
        assert_eq!(
            redact_line("key ghp_0123456789abcdefABCDEF0123456789ab"),
            "key [redacted]"
        );
        assert_eq!(
            redact_line("sync applied items=42"),
            "sync applied items=42"
        );
    }
}
