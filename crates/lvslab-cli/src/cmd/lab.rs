//! Offline subcommands: check, schema, plan, graph. None needs root.

use std::path::Path;
use std::process::ExitCode;

use lvslab_netns::plan::{
    plan as make_plan, render_shell, render_shell_down, DecapImpl, PlanOptions,
};
use lvslab_spec::graph::{render, GraphFormat};

use super::load;
use crate::GraphFormatArg;
use lvslab_spec::Dataplane;

pub fn check(labs: &Path, lab: &str, params: &[String]) -> anyhow::Result<ExitCode> {
    let l = match load(labs, lab, params) {
        Ok((l, _)) => l,
        Err(f) => return f.report(),
    };
    // The lab's expectations resolve against it; the MACs they name are those of the
    // lab's default instance (any instance would do to validate them).
    let expect_path = lvslab_spec::expect::Expectations::path_for(&l);
    let hops = match lvslab_spec::expect::Expectations::load(&expect_path, &l, &l.name) {
        Ok(e) => e.map(|e| e.hops.len()),
        Err(e) => return super::LoadFailure::Invalid(e).report(),
    };
    println!(
        "{}: ok — lab `{}` ({}), {} nodes, {} links, {} switches, {} services",
        l.source.display(),
        l.name,
        l.mode.name(),
        l.nodes.len(),
        l.links.len(),
        l.switches.len(),
        l.services.len()
    );
    if let Some(hops) = hops {
        println!("{}: ok — {hops} hop expectations", expect_path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn schema() -> anyhow::Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&lvslab_spec::json_schema())?
    );
    Ok(ExitCode::SUCCESS)
}

pub fn plan(
    labs: &Path,
    lab: &str,
    instance: Option<&str>,
    params: &[String],
    dataplane: Option<Dataplane>,
    down: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (l, _) = match load(labs, lab, params) {
        Ok(x) => x,
        Err(f) => return f.report(),
    };
    let instance = instance.unwrap_or(&l.name).to_string();
    lvslab_instance::check_instance_name(&instance)?;
    let dataplane = dataplane.unwrap_or_else(|| {
        if super::kernel_has_ipvs() {
            Dataplane::Kernel
        } else {
            Dataplane::Userspace
        }
    });
    let p = make_plan(
        &l,
        &PlanOptions {
            instance,
            decap: DecapImpl::for_dataplane(dataplane),
            run: None,
        },
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else if down {
        print!("{}", render_shell_down(&p));
    } else {
        print!("{}", render_shell(&p));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn graph(
    labs: &Path,
    lab: &str,
    format: GraphFormatArg,
    params: &[String],
) -> anyhow::Result<ExitCode> {
    let (l, _) = match load(labs, lab, params) {
        Ok(x) => x,
        Err(f) => return f.report(),
    };
    let f = match format {
        GraphFormatArg::Mermaid => GraphFormat::Mermaid,
        GraphFormatArg::Dot => GraphFormat::Dot,
    };
    print!("{}", render(&l, f));
    Ok(ExitCode::SUCCESS)
}
