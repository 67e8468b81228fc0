//! up and down: named instances that outlive the command, journalled so that a crash at any
//! point can be undone and nothing else is ever touched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lvslab_netns::apply::{build, preflight, required_features, LabInstance, Naming};
use lvslab_netns::journal::{orphan_namespaces, Journal, Teardown};
use lvslab_netns::plan::{plan, DecapImpl, PlanOptions};
use lvslab_spec::model::Lab;
use lvslab_spec::Dataplane;

use crate::balancer::Balancer;
use crate::{check_instance_name, InstanceError, DAEMON_LOG, READY_FILE};

/// How long `up` waits for the instance's background process to report ready.
const DAEMON_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// What `up` is asked to build.
pub struct UpOptions<'a> {
    pub lab: &'a Lab,
    /// The `--param` values the lab was loaded with (the daemon loads it again).
    pub params: &'a [(String, String)],
    /// Default: the lab's name.
    pub instance: Option<&'a str>,
    /// Default: kernel where this kernel has IPVS, else userspace.
    pub dataplane: Option<Dataplane>,
    /// The program whose `daemon <instance>` subcommand runs [`crate::daemon::run`]
    /// (the `lvslab` binary itself).
    pub daemon_program: &'a Path,
    /// Polled between steps: set by Ctrl-C; `up` then removes what it built.
    pub cancel: &'a AtomicBool,
}

/// What `up` built.
#[derive(Debug, Clone)]
pub struct UpReport {
    pub instance: String,
    pub lab: String,
    pub dataplane: Dataplane,
    pub namespaces: usize,
    pub elapsed: Duration,
}

/// Builds a lab instance in named namespaces, installs its load balancer and starts its
/// daemon; on any failure or Ctrl-C, removes everything again.
pub fn up(o: &UpOptions<'_>) -> Result<UpReport, InstanceError> {
    let l = o.lab;
    let instance = o.instance.unwrap_or(&l.name).to_string();
    check_instance_name(&instance)?;
    // Probe only what this lab can need (and IPVS, which picks the default dataplane).
    let mut candidates = Vec::new();
    for decap in [DecapImpl::Kernel, DecapImpl::Userspace] {
        candidates.push(plan(
            l,
            &PlanOptions {
                instance: instance.clone(),
                decap,
                run: None,
            },
        )?);
    }
    let mut wanted: Vec<&str> = candidates
        .iter()
        .flat_map(|p| required_features(p).into_iter().map(|(n, _)| n))
        .collect();
    wanted.push("ipvs");
    let features = lvslab_netns::probe::probe_some(&wanted);
    let kernel_ipvs = features.iter().any(|f| f.name == "ipvs" && f.available);
    let dataplane = o.dataplane.unwrap_or(if kernel_ipvs {
        Dataplane::Kernel
    } else {
        Dataplane::Userspace
    });
    if dataplane == Dataplane::Kernel && !kernel_ipvs {
        return Err(InstanceError::NoKernelIpvs {
            lab: l.name.clone(),
        });
    }
    let p = plan(
        l,
        &PlanOptions {
            instance: instance.clone(),
            decap: DecapImpl::for_dataplane(dataplane),
            run: None,
        },
    )?;
    preflight(&p, &features)?;

    let lab_file = std::fs::canonicalize(&l.source).unwrap_or_else(|_| l.source.clone());
    let journal = Journal::create(&instance, &l.name, &lab_file, o.params, dataplane)?;
    let started = Instant::now();
    let mut built = build(&p, Naming::Named(Box::new(journal)), o.cancel)?;
    if dataplane == Dataplane::Kernel {
        // Kernel IPVS state lives in the director's namespace and outlives this command.
        if let Err(e) = Balancer::install(l, &built, Dataplane::Kernel) {
            return Err(abandon(
                built,
                "installing the lab's services on kernel IPVS",
                e,
            ));
        }
    }
    if let Err(e) = start_daemon(&mut built, &instance, o.daemon_program) {
        return Err(abandon(
            built,
            "starting the instance's background process",
            e,
        ));
    }
    if o.cancel.load(Ordering::Relaxed) {
        return Err(InstanceError::Interrupted {
            teardown: built.teardown(),
        });
    }
    let mut journal = match built.detach() {
        Some(j) => j,
        None => {
            return Err(InstanceError::Daemon {
                instance,
                detail: "the lab was built without its journal".into(),
            })
        }
    };
    if let Err(e) = journal.mark_complete() {
        let teardown = journal.teardown();
        return Err(InstanceError::Abandoned {
            what: "recording that `up` finished".into(),
            detail: e.to_string(),
            teardown,
        });
    }
    Ok(UpReport {
        instance,
        lab: l.name.clone(),
        dataplane,
        namespaces: p.namespaces.len(),
        elapsed: started.elapsed(),
    })
}

/// Removes a half-started instance and says why it was given up.
fn abandon(built: LabInstance, what: &str, e: impl std::fmt::Display) -> InstanceError {
    InstanceError::Abandoned {
        what: what.to_string(),
        detail: e.to_string(),
        teardown: built.teardown(),
    }
}

/// Starts the daemon so that no moment exists where it runs unrecorded: it waits for a
/// line on its stdin before doing anything, and exits if stdin closes first (this process
/// died). The line is written only once its pid is in the journal.
fn start_daemon(
    built: &mut LabInstance,
    instance: &str,
    program: &Path,
) -> Result<(), InstanceError> {
    use std::os::unix::process::CommandExt;
    let journal = built.journal_mut().ok_or_else(|| InstanceError::Daemon {
        instance: instance.to_string(),
        detail: "named lab without a journal".into(),
    })?;
    let dir = journal.dir().to_path_buf();
    let log_path = dir.join(DAEMON_LOG);
    let log = private_file(&log_path)?;
    let err = |detail: String| InstanceError::Daemon {
        instance: instance.to_string(),
        detail,
    };
    let mut child = Command::new(program)
        .arg("daemon")
        .arg(instance)
        .stdin(Stdio::piped())
        .stdout(
            log.try_clone()
                .map_err(|e| err(format!("{}: {e}", log_path.display())))?,
        )
        .stderr(log)
        // Its own process group: a Ctrl-C at the terminal after `up` must not stop it.
        .process_group(0)
        .spawn()
        .map_err(|e| err(format!("start {}: {e}", program.display())))?;
    let pid = child.id() as i32;
    if let Err(e) = journal.record_process(pid, "lvslab daemon") {
        stop_child(&mut child);
        return Err(e.into());
    }
    let go = child
        .stdin
        .take()
        .ok_or_else(|| err("no pipe to the daemon".into()))
        .and_then(|mut stdin| {
            stdin
                .write_all(crate::daemon::GO)
                .map_err(|e| err(format!("start signal: {e}")))
        });
    if let Err(e) = go {
        stop_child(&mut child);
        return Err(e);
    }
    wait_ready(&dir, &mut child, instance)
}

fn private_file(path: &Path) -> Result<std::fs::File, InstanceError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            Ok(f)
        })
        .map_err(|source| InstanceError::Control {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(f)
}

fn stop_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_ready(dir: &Path, child: &mut Child, instance: &str) -> Result<(), InstanceError> {
    let deadline = Instant::now() + DAEMON_READY_TIMEOUT;
    let log = || std::fs::read_to_string(dir.join(DAEMON_LOG)).unwrap_or_default();
    while Instant::now() < deadline {
        if dir.join(READY_FILE).exists() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(InstanceError::Daemon {
                instance: instance.to_string(),
                detail: format!("its background process exited ({status}):\n{}", log()),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(InstanceError::Daemon {
        instance: instance.to_string(),
        detail: format!(
            "its background process did not get ready within {DAEMON_READY_TIMEOUT:?}; see {}",
            dir.join(DAEMON_LOG).display()
        ),
    })
}

/// What `down` did for one instance.
#[derive(Debug)]
pub struct DownReport {
    pub instance: String,
    pub teardown: Teardown,
}

/// Removes an instance: its daemon and namespaces, each only if provably its own. With no
/// journal, only the leftovers of an `up` or `down` that died in their first or last step
/// (folders that never had, or no longer have, anything but a journal) are removed.
pub fn down(name: &str) -> Result<DownReport, InstanceError> {
    check_instance_name(name)?;
    let j = match Journal::open(name) {
        Ok(j) => j,
        Err(e @ lvslab_netns::journal::JournalError::NotFound { .. }) => {
            let cleaned = Journal::clean_staging(Some(name));
            if cleaned.is_empty() {
                return Err(e.into());
            }
            let teardown = Teardown {
                removed: cleaned.iter().map(|p| p.display().to_string()).collect(),
                ..Teardown::default()
            };
            return Ok(DownReport {
                instance: name.to_string(),
                teardown,
            });
        }
        Err(e) => return Err(e.into()),
    };
    if j.state.in_progress() {
        return Err(InstanceError::InProgress {
            instance: name.to_string(),
            pid: j.state.creator.as_ref().map_or(0, |c| c.pid),
        });
    }
    Ok(DownReport {
        instance: name.to_string(),
        teardown: j.teardown(),
    })
}

/// What `down --all` did, and what it left alone and why.
#[derive(Debug, Default)]
pub struct DownAllReport {
    pub done: Vec<DownReport>,
    /// Instances whose `up` is still running: (instance, why).
    pub skipped: Vec<(String, String)>,
    /// Instance folders whose journal cannot be trusted or read: (instance, why).
    pub problems: Vec<(String, String)>,
    /// Folders of `up`s that died before their journal was whole.
    pub staging_removed: Vec<PathBuf>,
    /// `lvslab-*` namespaces no journal accounts for: reported, not removed.
    pub orphans: Vec<PathBuf>,
}

/// Removes every instance of this run directory that is finished or whose `up` died;
/// skips `up`s in progress and journals it cannot trust, and says so.
pub fn down_all() -> Result<DownAllReport, InstanceError> {
    let mut r = DownAllReport {
        staging_removed: Journal::clean_staging(None),
        ..DownAllReport::default()
    };
    let list = Journal::list()?;
    r.orphans = orphan_namespaces(&list.journals);
    for p in list.problems {
        r.problems.push((p.instance, p.error.to_string()));
    }
    for j in list.journals {
        let name = j.state.instance.clone();
        if j.state.in_progress() {
            let pid = j.state.creator.as_ref().map_or(0, |c| c.pid);
            r.skipped.push((
                name,
                format!("`lvslab up` (pid {pid}) is still building it"),
            ));
            continue;
        }
        r.done.push(DownReport {
            instance: name,
            teardown: j.teardown(),
        });
    }
    Ok(r)
}
