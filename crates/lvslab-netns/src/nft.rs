//! nftables rulesets inside a namespace, through the `nft` program.
//!
//! `nft` is started from a thread inside the namespace, so it sees (and changes) only
//! that namespace's ruleset. A ruleset is applied as one `nft -f -` batch: all or nothing.

use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ns::Netns;

/// Where `nft` is looked for besides `$PATH` (root's PATH may lack the sbin directories).
const NFT_FALLBACKS: &[&str] = &["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];

/// The `nft` program to run: the first of `$PATH` and the usual sbin directories that
/// exists, or `None` when nftables is not installed.
pub fn nft_binary() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nft"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(NFT_FALLBACKS.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// `nft -f -` inside `ns` with `ruleset` on stdin. Fails with nft's own stderr.
pub fn apply_nft(ns: &Netns, ruleset: &str) -> Result<()> {
    let op = "nft -f -";
    ns.ensure_writable(op)?;
    run_nft(ns, op, &["-f", "-"], Some(ruleset)).map(|_| ())
}

/// `nft list ruleset` inside `ns`.
pub fn list_nft(ns: &Netns) -> Result<String> {
    run_nft(ns, "nft list ruleset", &["list", "ruleset"], None)
}

/// `nft flush ruleset` inside `ns`.
pub fn flush_nft(ns: &Netns) -> Result<()> {
    let op = "nft flush ruleset";
    ns.ensure_writable(op)?;
    run_nft(ns, op, &["flush", "ruleset"], None).map(|_| ())
}

fn run_nft(ns: &Netns, op: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let missing = || Error::NftMissing {
        op: op.to_string(),
        ns: ns.label().to_string(),
    };
    let program = nft_binary().ok_or_else(missing)?;
    let mut cmd = Command::new(&program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match ns.spawn(&mut cmd) {
        Ok(child) => child,
        Err(Error::Command { source, .. }) if source.kind() == ErrorKind::NotFound => {
            return Err(missing())
        }
        Err(other) => return Err(other),
    };
    let io_error = |source| Error::Command {
        program: program.display().to_string(),
        ns: ns.label().to_string(),
        source,
    };
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error (nft exited early) shows up in its status and stderr below.
        let _ = pipe.write_all(text.as_bytes());
    }
    let output = child.wait_with_output().map_err(io_error)?;
    if !output.status.success() {
        return Err(Error::Nft {
            op: op.to_string(),
            ns: ns.label().to_string(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
