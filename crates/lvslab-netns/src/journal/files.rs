//! Private folders and files: 0700/0600 whatever the umask, refused when others could
//! have written them, and written atomically.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{io_err, run_dir, JournalError};

/// Creates a private folder (0700 whatever the umask).
pub(super) fn private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o700).create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

/// Refuses a folder or file that someone other than us (or root) owns or could write.
pub(super) fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), JournalError> {
    let me = nix::unistd::geteuid().as_raw();
    let insecure = |detail: String| JournalError::Insecure {
        path: path.to_path_buf(),
        detail,
    };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(insecure(format!(
            "owned by uid {}, not by uid {me} or root",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(insecure(format!(
            "mode {:04o} lets others write it",
            meta.mode() & 0o7777
        )));
    }
    if meta.file_type().is_symlink() {
        return Err(insecure("is a symbolic link".into()));
    }
    Ok(())
}

/// The run directory, created private if missing and checked if present.
pub(super) fn secure_run_dir() -> Result<PathBuf, JournalError> {
    let root = run_dir();
    if let Some(parent) = root.parent() {
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
    }
    match private_dir(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err("create", &root)(e)),
    }
    let meta = fs::symlink_metadata(&root).map_err(io_err("stat", &root))?;
    check_private(&root, &meta)?;
    Ok(root)
}

pub(super) fn write_private_file(path: &Path, data: &[u8]) -> Result<(), JournalError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("write", path))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err("chmod", path))?;
    f.write_all(data).map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("sync", path))
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}
