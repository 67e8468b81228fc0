//! `lvslab ipvsadm --instance NAME <ipvsadm arguments>`: ipvsadm's own syntax against an
//! instance's director, on either dataplane.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lvslab_netns::journal::{Journal, NETNS_DIR};
use lvslab_netns::plan::netns_name;
use lvslab_netns::Netns;

use super::daemon::{control, ControlRequest};
use super::{check_instance_name, require_root};

fn director_of(j: &Journal, director: Option<&str>) -> anyhow::Result<String> {
    if let Some(d) = director {
        return Ok(d.to_string());
    }
    let lab = lvslab_spec::load_lab(&j.state.lab_file, &j.state.params)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    lab.services
        .first()
        .map(|s| s.director.clone())
        .context("the lab has no [[service]], so no director: name one with --director")
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.rem_euclid(256)).unwrap_or(1))
}

pub fn ipvsadm(
    instance: &str,
    director: Option<&str>,
    args: &[String],
) -> anyhow::Result<ExitCode> {
    require_root("lvslab ipvsadm")?;
    check_instance_name(instance)?;
    let j = Journal::open(instance)?;
    let director = director_of(&j, director)?;
    let (stdout, stderr, code) = if j.state.dataplane == "kernel" {
        let path = PathBuf::from(NETNS_DIR).join(netns_name(instance, &director));
        let ns = Netns::open(&path)
            .with_context(|| format!("open the director's namespace {}", path.display()))?;
        let mut client = ns.run(lvslab_ipvs::IpvsClient::connect)??;
        let o = lvslab_ipvsadm::run(args, &mut client);
        (o.stdout, o.stderr, o.exit_code)
    } else {
        let r = control(
            Path::new(j.dir()),
            &ControlRequest {
                director: Some(director),
                ipvsadm: args.to_vec(),
            },
        )?;
        (r.stdout, r.stderr, r.exit_code)
    };
    std::io::stdout().write_all(stdout.as_bytes())?;
    std::io::stderr().write_all(stderr.as_bytes())?;
    Ok(exit(code))
}

/// Installs the lab's services on kernel IPVS for `up --dataplane kernel`.
pub fn install_kernel(
    lab: &lvslab_spec::model::Lab,
    inst: &lvslab_netns::apply::LabInstance,
) -> anyhow::Result<()> {
    lvslab_harness::balancer::Balancer::install(
        lab,
        inst,
        lvslab_harness::balancer::Dataplane::Kernel,
    )?;
    Ok(())
}
