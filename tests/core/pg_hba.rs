//! Test-only edits of the shared test cluster's `pg_hba.conf` (and of files
//! next to it), for tests of PostgreSQL's own authentication methods
//! (`workspace_ldap.rs`, `workspace_tls.rs`).
//!
//! A test adds its own lines, each matching only its database and one of
//! its logins, before the generic lines, tagged with a marker
//! (`custodian-test-hba:<pid>:<tag>`) so that exactly those lines are
//! removed at the end (even on failure: [`HbaLines`] is a drop guard);
//! every other test's logins keep matching the generic lines. Edits are
//! serialized across test processes with a lock file next to `pg_hba.conf`
//! and written atomically (a temporary file renamed over it, owner and mode
//! kept). Shared files in the data directory (a CA bundle) hold one tagged
//! block per test; the last test out removes them. Lines and blocks of a
//! test process that died are dropped by the next edit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use custodian::store::pg::PgTarget;

use crate::pg::{admin_client, url_of};

/// Tags a test's `pg_hba.conf` lines and blocks: `<MARK><pid>:<tag>`.
pub const MARK: &str = "custodian-test-hba:";
/// The mark of earlier builds of these tests (their leftovers are stale too).
const OLD_MARK: &str = "custodian-test-ldap:";

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A lock file next to `pg_hba.conf`, held while one test process edits it.
pub struct HbaLock(PathBuf);

impl HbaLock {
    pub fn take(hba: &Path) -> std::io::Result<HbaLock> {
        let name = format!(
            "{}.custodian-test-lock",
            hba.file_name().and_then(|n| n.to_str()).unwrap_or("pg_hba")
        );
        let path = hba.with_file_name(name);
        let started = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id())?;
                    return Ok(HbaLock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock left by a process that died is taken over.
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if holder.is_some_and(|p| !pid_alive(p)) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if started.elapsed() > Duration::from_secs(30) {
                        return Err(std::io::Error::other(format!(
                            "{} is held by another test process",
                            path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for HbaLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes `text` to `path` atomically (a temporary file renamed over it)
/// with the owner and mode of `like`: as root the file stays the cluster
/// owner's (pg-cluster.sh runs the server as `postgres` then).
pub fn write_like(path: &Path, text: &str, like: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = path.with_file_name(format!(
        "{}.custodian-test-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let written = (|| {
        std::fs::write(&tmp, text)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(like.mode() & 0o7777))?;
        let mine = std::fs::metadata(&tmp)?;
        if (mine.uid(), mine.gid()) != (like.uid(), like.gid()) {
            std::os::unix::fs::chown(&tmp, Some(like.uid()), Some(like.gid()))?;
        }
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Rewrites `pg_hba.conf` with `edit` under the lock, atomically, keeping
/// its owner and mode, then has the server reload it.
fn rewrite_hba(hba: &Path, edit: impl FnOnce(&str) -> String) -> std::io::Result<()> {
    let _lock = HbaLock::take(hba)?;
    let meta = std::fs::metadata(hba)?;
    let text = std::fs::read_to_string(hba)?;
    write_like(hba, &edit(&text), &meta)?;
    reload()
}

/// Runs `sql` as the test superuser on `postgres`, without panicking (it
/// also runs from drop guards).
pub fn superuser(sql: &str) -> std::io::Result<()> {
    let t = PgTarget::parse(&url_of("postgres")).map_err(|e| std::io::Error::other(e.message))?;
    let db = custodian::store::pg::connect(&t).map_err(|e| std::io::Error::other(e.message))?;
    db.execute_batch(sql)
        .map_err(|e| std::io::Error::other(e.message))
}

/// `SELECT pg_reload_conf()` as the test superuser.
pub fn reload() -> std::io::Result<()> {
    superuser("SELECT pg_reload_conf()")
}

/// `text` without the `# begin <marker>` … `# end <marker>` blocks whose
/// begin line `drop` selects.
pub fn without_blocks(text: &str, drop: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if skipping {
            skipping = !line.starts_with("# end ");
            continue;
        }
        if line.starts_with("# begin ") && drop(line) {
            skipping = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A line (or block) of an earlier test process that is no longer running.
pub fn stale(line: &str) -> bool {
    let Some((at, mark)) = [MARK, OLD_MARK]
        .iter()
        .find_map(|m| line.find(m).map(|at| (at, *m)))
    else {
        return false;
    };
    let pid = line[at + mark.len()..]
        .split(':')
        .next()
        .and_then(|p| p.parse::<u32>().ok());
    pid.is_some_and(|p| !pid_alive(p))
}

/// The test cluster's `pg_hba.conf` (`SHOW hba_file`), which must be on
/// this machine.
pub fn hba_path() -> PathBuf {
    let hba: String = admin_client("postgres")
        .query_one("SHOW hba_file", &[])
        .unwrap()
        .get(0);
    let hba = PathBuf::from(hba);
    assert!(
        hba.exists(),
        "{} is not on this machine: this test needs the local test cluster (tests/support/pg-cluster.sh)",
        hba.display()
    );
    hba
}

/// Undoes what a test set up around a shared bundle once its last block
/// is gone (run under the lock, before the bundle file is removed).
pub type Teardown = Box<dyn FnOnce() -> std::io::Result<()>>;

/// This test's lines at the top of the cluster's `pg_hba.conf` (before the
/// generic ones), and its blocks in shared bundles; all removed on drop.
pub struct HbaLines {
    path: PathBuf,
    marker: String,
    active: bool,
    /// The bundles holding one of this test's blocks, and what the last
    /// test out undoes.
    bundles: Vec<(PathBuf, Option<Teardown>)>,
}

impl HbaLines {
    pub fn insert(path: &Path, tag: &str, lines: &[String]) -> HbaLines {
        let marker = format!("{MARK}{}:{tag}", std::process::id());
        let mut guard = HbaLines {
            path: path.to_path_buf(),
            marker: marker.clone(),
            active: true,
            bundles: Vec::new(),
        };
        let res = rewrite_hba(path, |text| {
            let mut out: String = lines.iter().map(|l| format!("{l} # {marker}\n")).collect();
            // Lines a crashed earlier run left behind go now.
            for line in text.lines() {
                if !stale(line) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out
        });
        if let Err(e) = res {
            guard.active = false;
            panic!(
                "cannot edit the test cluster's {} (the test process must be able to write the cluster's \
                 data directory: run the tests as the cluster's owner, or as root with tests/support/pg-cluster.sh): {e}",
                path.display()
            );
        }
        guard
    }

    /// Adds `body` as this test's tagged block to the shared `bundle`
    /// (created when missing, owned like `pg_hba.conf`), under the lock:
    /// `setup` runs first (it may refuse), and `teardown` runs when the
    /// last block leaves, before the bundle is removed.
    pub fn add_to_bundle(
        &mut self,
        bundle: &Path,
        body: &str,
        setup: impl FnOnce(&std::fs::Metadata) -> std::io::Result<()>,
        teardown: Teardown,
    ) -> std::io::Result<()> {
        let _lock = HbaLock::take(&self.path)?;
        let like = std::fs::metadata(&self.path)?;
        setup(&like)?;
        let old = std::fs::read_to_string(bundle).unwrap_or_default();
        let mut text = without_blocks(&old, stale);
        text.push_str(&format!(
            "# begin {}\n{}\n# end {}\n",
            self.marker,
            body.trim_end(),
            self.marker
        ));
        write_like(bundle, &text, &like)?;
        self.bundles.push((bundle.to_path_buf(), Some(teardown)));
        Ok(())
    }

    /// The marker that tags this test's lines and blocks.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// Removes exactly this test's lines (and blocks) and reloads.
    pub fn remove(&mut self) -> std::io::Result<()> {
        while let Some((bundle, teardown)) = self.bundles.pop() {
            let _lock = HbaLock::take(&self.path)?;
            let like = std::fs::metadata(&self.path)?;
            let old = std::fs::read_to_string(&bundle).unwrap_or_default();
            let begin = format!("# begin {}", self.marker);
            let text = without_blocks(&old, |l| l == begin || stale(l));
            if text.contains("# begin ") {
                write_like(&bundle, &text, &like)?;
            } else {
                // The last test out undoes the set-up and removes the file.
                if let Some(t) = teardown {
                    t()?;
                }
                std::fs::remove_file(&bundle)?;
            }
        }
        if !self.active {
            return Ok(());
        }
        let marker = format!(" # {}", self.marker);
        rewrite_hba(&self.path, |text| {
            text.lines()
                .filter(|l| !l.ends_with(&marker))
                .fold(String::new(), |mut s, l| {
                    s.push_str(l);
                    s.push('\n');
                    s
                })
        })?;
        self.active = false;
        Ok(())
    }
}

impl Drop for HbaLines {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!(
                "could not remove this test's lines from {}: {e}",
                self.path.display()
            );
        }
    }
}
