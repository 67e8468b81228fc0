//! Undoing an instance: stopping its processes and removing its namespaces and folder,
//! each only while it is provably the one recorded.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Journal, ProcRecord, NETNS_DIR, TRASH_PREFIX};
use crate::named::{remove_owned, Removal};

/// What a teardown did: removed objects, objects left because they are not provably
/// this lab's, and failures (each with its object and OS error).
#[derive(Debug, Default)]
pub struct Teardown {
    pub removed: Vec<String>,
    pub left: Vec<String>,
    pub errors: Vec<TeardownError>,
}

impl Teardown {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The failures, one per line.
    pub fn error_lines(&self) -> String {
        self.errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One failure while undoing: the object (namespace path, pid, folder), the cause and
/// the OS error number behind it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{op} {object}: {detail}")]
pub struct TeardownError {
    pub op: &'static str,
    pub object: String,
    pub errno: Option<i32>,
    pub detail: String,
}

impl TeardownError {
    fn os(op: &'static str, object: String, e: &io::Error) -> TeardownError {
        TeardownError {
            op,
            object,
            errno: e.raw_os_error(),
            detail: e.to_string(),
        }
    }

    fn errno(op: &'static str, object: String, e: nix::errno::Errno) -> TeardownError {
        TeardownError {
            op,
            object,
            errno: Some(e as i32),
            detail: e.desc().to_string(),
        }
    }
}

impl Journal {
    /// Undoes everything the journal names that is provably this instance's: stops its
    /// processes (TERM, then KILL after a grace period), removes its namespaces, then the
    /// folder. Continues past failures and returns every one of them; the folder stays
    /// when something failed, so `down` can be run again.
    pub fn teardown(self) -> Teardown {
        let mut t = Teardown::default();
        for p in self.state.processes.iter().rev() {
            match stop_process(p) {
                Ok(true) => t.removed.push(format!("{} (pid {})", p.what, p.pid)),
                Ok(false) => {}
                Err(e) => t.errors.push(e),
            }
        }
        for ns in self.state.namespaces.iter().rev() {
            let Some(id) = ns.identity() else {
                if ns.path.exists() {
                    t.left.push(format!(
                        "{}: recorded without its identity (older lvslab?), so not removed; remove it by hand if it is this lab's",
                        ns.path.display()
                    ));
                }
                continue;
            };
            match remove_owned(&id) {
                Ok(Removal::Removed) => t.removed.push(ns.path.display().to_string()),
                Ok(Removal::Absent) => {}
                Ok(Removal::NotOurs { detail }) => t.left.push(format!("{detail}; left in place")),
                Err(e) => t.errors.push(TeardownError {
                    op: "remove namespace",
                    object: ns.path.display().to_string(),
                    errno: e.errno(),
                    detail: e.to_string(),
                }),
            }
        }
        if t.errors.is_empty() {
            // Renamed away first, in one step, so that a crash while deleting never leaves
            // a folder with half a journal under the instance's name.
            let trash = self.dir.parent().unwrap_or(Path::new("/")).join(format!(
                "{TRASH_PREFIX}{}-{}",
                self.state.instance,
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&trash);
            match fs::rename(&self.dir, &trash) {
                Ok(()) => {
                    if let Err(e) = fs::remove_dir_all(&trash) {
                        t.errors
                            .push(TeardownError::os("remove", trash.display().to_string(), &e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => t.errors.push(TeardownError::os(
                    "rename",
                    self.dir.display().to_string(),
                    &e,
                )),
            }
        }
        t
    }
}

/// Named namespaces of lvslab (`/run/netns/lvslab-*`) that no journal accounts for. They
/// are reported, never removed: without a journal nothing proves lvslab made them.
pub fn orphan_namespaces(journals: &[Journal]) -> Vec<PathBuf> {
    let known: std::collections::HashSet<&Path> = journals
        .iter()
        .flat_map(|j| j.state.namespaces.iter().map(|n| n.path.as_path()))
        .collect();
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("lvslab-"))
        })
        .filter(|p| !known.contains(p.as_path()))
        .collect();
    out.sort();
    out
}

/// Stops a recorded process if it is still the one recorded. `Ok(false)`: it was gone.
fn stop_process(p: &ProcRecord) -> Result<bool, TeardownError> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if !p.is_alive() {
        return Ok(false);
    }
    let pid = Pid::from_raw(p.pid);
    let object = format!("{} (pid {})", p.what, p.pid);
    kill(pid, Signal::SIGTERM).map_err(|e| TeardownError::errno("stop", object.clone(), e))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        // A child of ours must be reaped to disappear; others vanish by themselves.
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        if !p.is_alive() {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Checked again: the pid must still be the recorded process when it is killed.
    if p.is_alive() {
        kill(pid, Signal::SIGKILL).map_err(|e| TeardownError::errno("kill", object, e))?;
        let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
    }
    Ok(true)
}
