//! Network namespaces held by file descriptor, and ways to run code inside them.
//!
//! `setns` changes only the calling thread, so nothing here ever changes the caller's
//! thread: code that must run "inside" a namespace runs on a short-lived thread
//! ([`Netns::run`]) or on a dedicated worker ([`NsThread`]). Sockets created there stay
//! bound to the namespace and may be used from any thread afterwards. Nothing forks;
//! child processes are spawned from a thread that has entered the namespace, and inherit
//! that thread's namespace.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use nix::mount::{self, MsFlags};
use nix::sched::{self, CloneFlags};

use crate::error::{Error, Result};
use crate::rtnl::NsHandle;

/// Where `ip netns` keeps its bind mounts; named namespaces live here.
pub const NETNS_DIR: &str = "/run/netns";

/// A network namespace, kept alive by the file descriptor this value owns.
///
/// Anonymous namespaces vanish when the last descriptor (and the last socket or process
/// inside) goes away, so a crashed test leaks nothing. Named ones are also bind-mounted
/// on a file (normally under [`NETNS_DIR`]) and outlive the process until
/// [`crate::named::remove_owned`].
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    label: String,
    path: Option<PathBuf>,
    read_only: bool,
}

impl Netns {
    /// Creates a fresh, anonymous namespace with `lo` up
    /// (like `unshare --net`, without a process).
    pub fn new_anonymous() -> Result<Netns> {
        let fd = unshare_on_thread()?;
        let label = format!("anon:{}", inode_of(&fd));
        let ns = Netns {
            fd,
            label,
            path: None,
            read_only: false,
        };
        ns.netlink()?.set_up("lo")?;
        Ok(ns)
    }

    /// Opens an existing namespace file, e.g. `/run/netns/lvslab-nat-client` or
    /// `/proc/<pid>/ns/net`.
    pub fn open(path: &Path) -> Result<Netns> {
        let label = label_for_path(path);
        let file = File::open(path).map_err(|source| Error::Namespace {
            op: format!("open {}", path.display()),
            ns: label.clone(),
            source,
        })?;
        let fs = nix::sys::statfs::fstatfs(&file).map_err(|errno| Error::Namespace {
            op: format!("fstatfs {}", path.display()),
            ns: label.clone(),
            source: errno.into(),
        })?;
        if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
            return Err(Error::Namespace {
                op: format!("open {} as a network namespace", path.display()),
                ns: label,
                source: io::Error::new(
                    ErrorKind::InvalidInput,
                    "not a namespace file (is the namespace still mounted?)",
                ),
            });
        }
        Ok(Netns {
            fd: file.into(),
            label,
            path: Some(path.to_path_buf()),
            read_only: false,
        })
    }

    /// A read-only handle on the host's initial namespace (that of PID 1, falling back to
    /// this process's own), for snapshots that prove the lab left the host untouched.
    ///
    /// Every modifying operation refuses to run on it with [`Error::RootIsReadOnly`].
    pub fn root() -> Result<Netns> {
        let file = File::open("/proc/1/ns/net")
            .or_else(|_| File::open("/proc/self/ns/net"))
            .map_err(|source| Error::Namespace {
                op: "open /proc/1/ns/net".into(),
                ns: "root".into(),
                source,
            })?;
        Ok(Netns {
            fd: file.into(),
            label: "root".into(),
            path: None,
            read_only: true,
        })
    }

    /// Makes this namespace visible at `path`, an existing empty file (what `ip netns add`
    /// leaves behind: a bind mount of the namespace). See [`crate::named`] for the order
    /// that keeps a crash from leaving a namespace nobody can prove is lvslab's.
    pub(crate) fn bind_at(&mut self, path: &Path) -> Result<()> {
        use std::os::fd::AsRawFd;
        // The descriptor's magic link names the namespace itself, like /proc/<pid>/ns/net.
        let source = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        mount::mount(
            Some(source.as_str()),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| Error::Namespace {
            op: format!("mount --bind {source} {}", path.display()),
            ns: self.label.clone(),
            source: errno.into(),
        })?;
        self.label = label_for_path(path);
        self.path = Some(path.to_path_buf());
        Ok(())
    }

    /// A short human label for messages: file name, `root`, or `anon:<inode>`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The bind-mount or file this namespace was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The namespace's inode number: equal for two handles on the same namespace.
    pub fn inode(&self) -> u64 {
        inode_of(&self.fd)
    }

    /// Whether this is the read-only root handle from [`Netns::root`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// A second, independent handle on the same namespace.
    pub fn try_clone(&self) -> Result<Netns> {
        let fd = self.fd.try_clone().map_err(|source| Error::Namespace {
            op: "dup namespace fd".into(),
            ns: self.label.clone(),
            source,
        })?;
        Ok(Netns {
            fd,
            label: self.label.clone(),
            path: self.path.clone(),
            read_only: self.read_only,
        })
    }

    /// Fails with [`Error::RootIsReadOnly`] if this is the root handle.
    pub(crate) fn ensure_writable(&self, op: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::RootIsReadOnly { op: op.to_string() });
        }
        Ok(())
    }

    /// Runs `f` on a short-lived thread that has entered this namespace, and returns its
    /// result. Sockets `f` creates belong to this namespace and may be returned.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let fd = self.fd.as_fd();
        thread::scope(|scope| {
            let worker = thread::Builder::new()
                .name(format!("netns {}", self.label))
                .spawn_scoped(scope, move || -> Result<T> {
                    enter(fd, &self.label)?;
                    Ok(f())
                })
                .map_err(|e| self.thread_error("spawn thread", format!("not started: {e}")))?;
            worker
                .join()
                .map_err(|payload| self.thread_error("run closure", panic_detail(&*payload)))?
        })
    }

    /// Spawns `cmd` inside this namespace (like `ip netns exec`): the child is started
    /// from a thread that has entered the namespace, and stays there.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Child> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        self.run(|| cmd.spawn())?.map_err(|source| Error::Command {
            program,
            ns: self.label.clone(),
            source,
        })
    }

    /// Runs `cmd` inside this namespace to completion and collects its output. A non-zero
    /// exit status is returned in the `Output`, not as an error.
    pub fn output(&self, cmd: &mut Command) -> Result<Output> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        self.run(|| cmd.output())?.map_err(|source| Error::Command {
            program,
            ns: self.label.clone(),
            source,
        })
    }

    /// Opens a route-netlink socket inside this namespace (links, addresses, routes,
    /// neighbours, rules). The handle may be used from any thread.
    pub fn netlink(&self) -> Result<NsHandle> {
        NsHandle::open(self)
    }

    /// Starts a dedicated worker thread that stays in this namespace.
    pub fn thread(&self) -> Result<NsThread> {
        NsThread::start(self)
    }

    pub(crate) fn thread_error(&self, op: &str, detail: String) -> Error {
        Error::Thread {
            op: op.to_string(),
            ns: self.label.clone(),
            detail,
        }
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A worker thread that entered a namespace once and then runs closures sent to it, for
/// callers that need many small things done inside (cheaper than a thread per call).
#[derive(Debug)]
pub struct NsThread {
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<JoinHandle<()>>,
    label: String,
}

type Job = Box<dyn FnOnce() + Send>;

impl NsThread {
    /// Starts the worker and waits until it is inside `ns`.
    pub fn start(ns: &Netns) -> Result<NsThread> {
        let fd = ns.fd.try_clone().map_err(|source| Error::Namespace {
            op: "dup namespace fd".into(),
            ns: ns.label.clone(),
            source,
        })?;
        let label = ns.label.clone();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<()>>(1);
        let thread_label = label.clone();
        let worker = thread::Builder::new()
            .name(format!("netns {label}"))
            .spawn(move || {
                let entered = enter(fd.as_fd(), &thread_label);
                drop(fd);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    for job in jobs_rx {
                        job();
                    }
                }
            })
            .map_err(|e| ns.thread_error("spawn worker", format!("not started: {e}")))?;
        let entered = ready_rx
            .recv()
            .map_err(|_| ns.thread_error("spawn worker", "exited".into()))?;
        let thread = NsThread {
            jobs: Some(jobs_tx),
            worker: Some(worker),
            label,
        };
        entered.map(|()| thread)
    }

    /// Runs `f` on the worker and waits for its result. A panic in `f` is caught and
    /// returned as [`Error::Thread`]; the worker keeps serving.
    pub fn exec<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (result_tx, result_rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            let _ = result_tx.send(result);
        });
        let gone = || Error::Thread {
            op: "exec".into(),
            ns: self.label.clone(),
            detail: "exited".into(),
        };
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        match result_rx.recv().map_err(|_| gone())? {
            Ok(value) => Ok(value),
            Err(payload) => Err(Error::Thread {
                op: "exec".into(),
                ns: self.label.clone(),
                detail: panic_detail(&*payload),
            }),
        }
    }

    /// Spawns `cmd` from the worker, so the child starts inside the namespace.
    pub fn spawn_command(&self, mut cmd: Command) -> Result<Child> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let ns = self.label.clone();
        self.exec(move || cmd.spawn())?
            .map_err(|source| Error::Command {
                program,
                ns,
                source,
            })
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop.
        self.jobs.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// `setns(fd, CLONE_NEWNET)` on the calling thread. Only ever called on threads this
/// module created.
fn enter(fd: BorrowedFd<'_>, label: &str) -> Result<()> {
    sched::setns(fd, CloneFlags::CLONE_NEWNET).map_err(|errno| Error::Namespace {
        op: "setns(CLONE_NEWNET)".into(),
        ns: label.to_string(),
        source: errno.into(),
    })
}

/// Creates a namespace on a throwaway thread and returns a descriptor for it.
fn unshare_on_thread() -> Result<OwnedFd> {
    let label = "new".to_string();
    let job = || -> Result<OwnedFd> {
        sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|errno| Error::Namespace {
            op: "unshare(CLONE_NEWNET)".into(),
            ns: label.clone(),
            source: errno.into(),
        })?;
        let own = "/proc/thread-self/ns/net";
        let file = File::open(own).map_err(|source| Error::Namespace {
            op: format!("open {own}"),
            ns: label.clone(),
            source,
        })?;
        Ok(file.into())
    };
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name("netns unshare".into())
            .spawn_scoped(scope, job)
            .map_err(|e| Error::Thread {
                op: "unshare".into(),
                ns: label.clone(),
                detail: format!("not started: {e}"),
            })?;
        worker.join().map_err(|payload| Error::Thread {
            op: "unshare".into(),
            ns: label.clone(),
            detail: panic_detail(&*payload),
        })?
    })
}

fn inode_of(fd: &OwnedFd) -> u64 {
    // fstat on a namespace fd cannot fail short of a kernel bug; 0 only weakens labels.
    nix::sys::stat::fstat(fd).map_or(0, |st| st.st_ino)
}

fn label_for_path(path: &Path) -> String {
    match path.file_name() {
        Some(name) if path.starts_with(NETNS_DIR) => name.to_string_lossy().into_owned(),
        _ => path.display().to_string(),
    }
}

fn panic_detail(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into());
    format!("panicked: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_use_the_short_name_under_run_netns() {
        assert_eq!(
            label_for_path(Path::new("/run/netns/lvslab-nat-client")),
            "lvslab-nat-client"
        );
        assert_eq!(
            label_for_path(Path::new("/proc/42/ns/net")),
            "/proc/42/ns/net"
        );
    }

    #[test]
    fn panic_payloads_become_readable_details() {
        let payload: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_detail(&*payload), "panicked: boom");
        let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_detail(&*payload), "panicked: bang");
    }
}
