//! `lvslab status`: every instance of the run directory, with what is wrong with it.

use std::path::PathBuf;

use lvslab_netns::journal::{orphan_namespaces, Journal, JournalState};
use lvslab_spec::Dataplane;
use serde::Serialize;

use crate::InstanceError;

/// Where an instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Complete, its daemon running and every namespace present.
    Up,
    /// `lvslab up` is still building it.
    Starting,
    /// `up` stopped before finishing (killed): `lvslab down <instance>` cleans up.
    Interrupted,
    /// Complete, but its daemon is gone or a namespace is missing.
    Degraded,
}

#[derive(Debug, Clone, Serialize)]
pub struct NsStatus {
    pub node: String,
    pub path: PathBuf,
    /// Mounted, and the namespace the instance created.
    pub present: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcStatus {
    pub pid: i32,
    pub what: String,
    /// Still the recorded process (pid, start time and executable match).
    pub running: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub instance: String,
    pub lab: String,
    pub lab_file: PathBuf,
    pub params: Vec<(String, String)>,
    pub dataplane: Dataplane,
    pub state: InstanceState,
    /// Same as `state == up` or `degraded`, kept for scripts written against it.
    pub complete: bool,
    pub created_unix: u64,
    pub namespaces: Vec<NsStatus>,
    pub processes: Vec<ProcStatus>,
    /// What to do about it, when something is wrong.
    pub hint: Option<String>,
}

/// An instance folder that could not be read: reported beside the others.
#[derive(Debug, Clone, Serialize)]
pub struct StatusProblem {
    pub instance: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub instances: Vec<InstanceStatus>,
    pub problems: Vec<StatusProblem>,
    /// `lvslab-*` namespaces no journal accounts for (not lvslab's to remove).
    pub orphan_namespaces: Vec<PathBuf>,
}

fn describe(s: &JournalState) -> InstanceStatus {
    let namespaces: Vec<NsStatus> = s
        .namespaces
        .iter()
        .map(|n| NsStatus {
            node: n.node.clone(),
            path: n.path.clone(),
            present: n.is_present(),
        })
        .collect();
    let processes: Vec<ProcStatus> = s
        .processes
        .iter()
        .map(|p| ProcStatus {
            pid: p.pid,
            what: p.what.clone(),
            running: p.is_alive(),
        })
        .collect();
    let whole = namespaces.iter().all(|n| n.present) && processes.iter().all(|p| p.running);
    let name = &s.instance;
    let (state, hint) = if s.in_progress() {
        (InstanceState::Starting, None)
    } else if !s.complete {
        (
            InstanceState::Interrupted,
            Some(format!(
                "`lvslab up` was interrupted: run `lvslab down {name}`"
            )),
        )
    } else if whole {
        (InstanceState::Up, None)
    } else {
        let mut what = Vec::new();
        if processes.iter().any(|p| !p.running) {
            what.push(format!(
                "its background process died (see {}/daemon.log)",
                lvslab_netns::journal::run_dir().join(name).display()
            ));
        }
        let missing: Vec<&str> = namespaces
            .iter()
            .filter(|n| !n.present)
            .map(|n| n.node.as_str())
            .collect();
        if !missing.is_empty() {
            what.push(format!("namespaces missing: {}", missing.join(", ")));
        }
        (
            InstanceState::Degraded,
            Some(format!(
                "{}; `lvslab down {name}` removes the rest, then `lvslab up` it again",
                what.join("; ")
            )),
        )
    };
    InstanceStatus {
        instance: s.instance.clone(),
        lab: s.lab.clone(),
        lab_file: s.lab_file.clone(),
        params: s.params.clone(),
        dataplane: s.dataplane,
        state,
        complete: s.complete,
        created_unix: s.created_unix,
        namespaces,
        processes,
        hint,
    }
}

/// Every instance of the run directory; a journal that cannot be read or trusted is listed
/// as a problem of its own instance, never a failure of the whole listing.
pub fn status() -> Result<StatusReport, InstanceError> {
    let list = Journal::list()?;
    Ok(StatusReport {
        orphan_namespaces: orphan_namespaces(&list.journals),
        instances: list.journals.iter().map(|j| describe(&j.state)).collect(),
        problems: list
            .problems
            .into_iter()
            .map(|p| StatusProblem {
                instance: p.instance,
                error: p.error.to_string(),
            })
            .collect(),
    })
}
