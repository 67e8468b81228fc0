//! Named namespaces (`/run/netns/<name>`, what `ip netns` shows) that lvslab can always
//! prove it made, so that it removes nothing else.
//!
//! A name alone proves nothing: another instance, another run or the user may own a
//! namespace of that name. So a namespace is identified by two inodes: the namespace's own
//! (what `stat` shows while it is mounted) and the mount-point file's (what is left once it
//! is unmounted). Both are recorded *before* the name becomes visible:
//!
//! 1. [`prepare`]: create the namespace (held by fd) and choose a hidden staging name in
//!    the same folder, with a random part no one can guess. The caller records the
//!    [`NamedNs`] durably (the instance journal).
//! 2. [`create_mount_point`]: create the empty mount-point file under the staging name
//!    (never over an existing file); the caller records its inode.
//! 3. [`publish`]: rename the file to its public name, never replacing an existing one
//!    (`renameat2(RENAME_NOREPLACE)`; a rename cannot cross mounts, and `ip netns` makes
//!    `/run/netns` a mount of its own, so staging happens in that same folder), then
//!    bind-mount the namespace on it.
//!
//! Whatever step a crash interrupts, the record names everything that may exist, and
//! [`remove_owned`] removes a name only when what is there matches it.

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use nix::mount::{self, MntFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ns::Netns;

/// What proves a named namespace is the one lvslab created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedNs {
    /// `/run/netns/<name>`.
    pub path: PathBuf,
    /// The hidden name the mount-point file is created under before it is renamed.
    pub staging: PathBuf,
    /// Inode of the namespace (nsfs), as `stat` shows it while mounted.
    pub ns_inode: u64,
    /// Inode of the mount-point file, as `stat` shows it once unmounted; `None` until the
    /// file exists (and then it can only be at `staging`).
    pub file_inode: Option<u64>,
}

/// A namespace on its way to a name.
#[derive(Debug)]
pub struct Prepared {
    pub netns: Netns,
    pub record: NamedNs,
}

/// What [`remove_owned`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// It was ours and is gone now.
    Removed,
    /// Nothing was at the path (already removed, or never published).
    Absent,
    /// Something else holds the name: left in place.
    NotOurs { detail: String },
}

fn ns_error(op: String, path: &Path, source: io::Error) -> Error {
    Error::Namespace {
        op,
        ns: path.display().to_string(),
        source,
    }
}

fn unguessable() -> io::Result<u64> {
    use std::io::Read;
    let mut b = [0u8; 8];
    fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Step 1: a new namespace (with `lo` up) meant for `path`, and a staging name beside it.
pub fn prepare(path: &Path) -> Result<Prepared> {
    let netns = Netns::new_anonymous()?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let nonce = unguessable().map_err(|e| ns_error("read /dev/urandom".into(), path, e))?;
    Ok(Prepared {
        record: NamedNs {
            path: path.to_path_buf(),
            staging: dir.join(format!(".{name}.{nonce:016x}")),
            ns_inode: netns.inode(),
            file_inode: None,
        },
        netns,
    })
}

/// Step 2: the empty mount-point file under the staging name. Creates the folder (0755,
/// as `ip netns` does) if missing.
pub fn create_mount_point(p: &mut Prepared) -> Result<()> {
    let path = p.record.path.clone();
    if let Some(parent) = path.parent() {
        ensure_netns_dir(parent)
            .map_err(|e| ns_error(format!("mkdir {}", parent.display()), &path, e))?;
    }
    let staging = &p.record.staging;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(staging)
        .map_err(|e| ns_error(format!("create {}", staging.display()), &path, e))?;
    // Whatever the umask: read-only for all, as `ip netns add` makes it.
    let _ = file.set_permissions(fs::Permissions::from_mode(0o444));
    let ino = file
        .metadata()
        .map_err(|e| ns_error(format!("stat {}", staging.display()), &path, e))?
        .ino();
    p.record.file_inode = Some(ino);
    Ok(())
}

/// Why [`publish`] failed; the staging file is removed again in every case.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The name is taken by a namespace (or file) that is not this one: left alone.
    #[error("{path} already exists and is not this lab's: choose another instance name, or remove it if it is yours (`ip netns del {name}`)")]
    NameTaken { path: PathBuf, name: String },
    #[error(transparent)]
    Other(#[from] Error),
}

/// Step 3: the prepared namespace becomes `/run/netns/<name>`. Call only after the
/// record with the file's inode is durable.
pub fn publish(p: Prepared) -> Result<Netns, PublishError> {
    let Prepared { mut netns, record } = p;
    let path = record.path.clone();
    let staging = record.staging.clone();
    let unstage = || {
        let _ = fs::remove_file(&staging);
    };
    match renameat2(
        AT_FDCWD,
        &staging,
        AT_FDCWD,
        &path,
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => {}
        Err(nix::errno::Errno::EEXIST) => {
            unstage();
            return Err(PublishError::NameTaken {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path,
            });
        }
        Err(errno) => {
            unstage();
            return Err(ns_error(
                format!("rename {} to {}", staging.display(), path.display()),
                &path,
                errno.into(),
            )
            .into());
        }
    }
    if let Err(e) = netns.bind_at(&path) {
        // The file is ours by the inode just recorded; a failed mount leaves only it.
        let _ = remove_owned(&record);
        return Err(e.into());
    }
    Ok(netns)
}

fn ensure_netns_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o755)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            // A missing grandparent (no /run?) is worth the full error.
            Err(e)
        }
    }
}

fn is_nsfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
}

/// Removes the namespace at `id.path` if, and only if, it is the one `id` describes: the
/// mounted namespace has `ns_inode` (then it is unmounted) and the file below has
/// `file_inode` (then it is unlinked). Anything else at that path is left alone.
pub fn remove_owned(id: &NamedNs) -> Result<Removal> {
    // A staging file exists only if a crash came between its creation and the rename; its
    // name was recorded before it was created and cannot be guessed.
    let staged_left = match fs::symlink_metadata(&id.staging) {
        Ok(m) if m.file_type().is_file() && m.len() == 0 => {
            fs::remove_file(&id.staging)
                .map_err(|e| ns_error(format!("rm {}", id.staging.display()), &id.staging, e))?;
            true
        }
        _ => false,
    };
    let Some(file_inode) = id.file_inode else {
        // The file was never recorded, so it was never renamed to the public name.
        return Ok(if staged_left {
            Removal::Removed
        } else {
            Removal::Absent
        });
    };
    let path = &id.path;
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(if staged_left {
                Removal::Removed
            } else {
                Removal::Absent
            })
        }
        Err(e) => return Err(ns_error(format!("stat {}", path.display()), path, e)),
    };
    if is_nsfs(path) {
        if meta.ino() != id.ns_inode {
            return Ok(Removal::NotOurs {
                detail: format!(
                    "{} holds namespace inode {}, this lab made {}",
                    path.display(),
                    meta.ino(),
                    id.ns_inode
                ),
            });
        }
        match mount::umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(errno) => {
                return Err(ns_error(
                    format!("umount2({}, MNT_DETACH)", path.display()),
                    path,
                    errno.into(),
                ))
            }
        }
    }
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Removal::Removed),
        Err(e) => return Err(ns_error(format!("stat {}", path.display()), path, e)),
    };
    if !meta.file_type().is_file() || meta.ino() != file_inode {
        return Ok(Removal::NotOurs {
            detail: format!(
                "{} is inode {}, this lab's mount point was {file_inode}",
                path.display(),
                meta.ino(),
            ),
        });
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(Removal::Removed),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Removal::Removed),
        Err(e) => Err(ns_error(format!("rm {}", path.display()), path, e)),
    }
}
