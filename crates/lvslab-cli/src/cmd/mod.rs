//! One module per group of subcommands.

use std::path::{Path, PathBuf};

use anyhow::bail;
use lvslab_spec::model::Lab;

pub mod capture;
pub mod doctor;
pub mod ipvsadm;
pub mod lab;
pub mod lifecycle;
pub mod test;
pub mod traffic;
pub mod vm;

/// `--labs`, else `./labs` when it holds lab folders, else the labs of this source tree.
pub fn labs_dir(given: Option<&Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    let cwd = PathBuf::from("labs");
    if cwd.join("nat").join("lab.toml").is_file() {
        return cwd;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../labs"))
}

/// Parses `NAME=VALUE` parameter arguments.
pub fn parse_params(params: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    params
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--param `{p}` is not NAME=VALUE (e.g. --param encap=ipip)"),
        })
        .collect()
}

/// Loads and validates a lab; validation errors are printed and mapped to exit status 2.
pub fn load(
    labs: &Path,
    lab: &str,
    params: &[String],
) -> Result<(Lab, Vec<(String, String)>), LoadFailure> {
    let params = parse_params(params).map_err(LoadFailure::Other)?;
    let path = lvslab_spec::lab_path(labs, lab);
    match lvslab_spec::load_lab(&path, &params) {
        Ok(l) => Ok((l, params)),
        Err(e) => Err(LoadFailure::Invalid(e)),
    }
}

/// Why a lab could not be loaded.
pub enum LoadFailure {
    Invalid(lvslab_spec::SpecErrors),
    Other(anyhow::Error),
}

impl LoadFailure {
    /// Prints the problem and gives the exit status (2 for invalid input).
    pub fn report(self) -> anyhow::Result<std::process::ExitCode> {
        match self {
            LoadFailure::Invalid(e) => {
                eprintln!("{e}");
                Ok(std::process::ExitCode::from(crate::EXIT_INVALID))
            }
            LoadFailure::Other(e) => Err(e),
        }
    }
}

/// Whether this kernel has IPVS (the generic-netlink family answers).
pub fn kernel_has_ipvs() -> bool {
    lvslab_netns::probe()
        .iter()
        .any(|f| f.name == "ipvs" && f.available)
}

pub fn require_root(what: &str) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("{what} needs root (network namespaces, netlink): run it with sudo");
    }
    Ok(())
}
