//! Each shipped lab's plan, as the shell script `lvslab plan` prints, compared with a
//! committed snapshot. A changed plan is a reviewed change: regenerate with
//! `UPDATE_SNAPSHOTS=1 cargo test -p lvslab-netns --test plan_snapshots` and read the diff.

use std::path::PathBuf;

use lvslab_netns::plan::{plan, render_shell, render_shell_down, DecapImpl, PlanOptions};

fn check(lab: &str, params: &[(&str, &str)], decap: DecapImpl, file: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let p: Vec<(String, String)> = params
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let l = lvslab_spec::load_lab(&lvslab_spec::lab_path(&root.join("../../labs"), lab), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = plan(
        &l,
        &PlanOptions {
            instance: lab.to_string(),
            decap,
            run: None,
        },
    )
    .unwrap_or_else(|e| panic!("plan of {lab}: {e}"));
    let text = format!(
        "{}# --- down ---\n{}",
        render_shell(&plan),
        render_shell_down(&plan)
    );
    let path = root.join("tests/snapshots").join(file);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)",
            path.display()
        )
    });
    if want != text {
        let first = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(text.lines().count()));
        panic!(
            "plan of {lab} changed from {} at line {}:\n  snapshot: {:?}\n  now:      {:?}\n(regenerate with UPDATE_SNAPSHOTS=1 if intended)",
            path.display(),
            first + 1,
            want.lines().nth(first),
            text.lines().nth(first)
        );
    }
}

#[test]
fn nat_plan() {
    check("nat", &[], DecapImpl::Userspace, "nat.sh");
}

#[test]
fn dr_plan() {
    check("dr", &[], DecapImpl::Userspace, "dr.sh");
}

#[test]
fn tun_plan_userspace_endpoint() {
    check("tun", &[], DecapImpl::Userspace, "tun-gre-userspace.sh");
}

#[test]
fn tun_plan_kernel_ipip() {
    check(
        "tun",
        &[("encap", "ipip")],
        DecapImpl::Kernel,
        "tun-ipip-kernel.sh",
    );
}

#[test]
fn fullnat_plan() {
    check("fullnat", &[], DecapImpl::Userspace, "fullnat.sh");
}
