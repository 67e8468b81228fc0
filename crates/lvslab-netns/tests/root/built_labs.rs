//! Labs built whole: what `build` promises when it returns.

use std::path::PathBuf;

use crate::require_root;

/// `build` returns a lab whose links pass frames. The NAT lab's first switch port is a
/// veth whose two ends both get index 3 in their namespaces, which the kernel's link
/// watcher handles late (up to a second); before `build` waited for it, a check's first
/// ARP request through that port was lost in about half of the builds.
#[test]
fn built_labs_have_every_veth_end_operational() {
    use lvslab_netns::apply::{build, Naming};
    use lvslab_netns::plan::{plan, DecapImpl, PlanOptions, Step};
    require_root();
    let labs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs");
    let lab = lvslab_spec::load_lab(&lvslab_spec::lab_path(&labs, "nat"), &[]).expect("nat lab");
    for round in 0..3 {
        let p = plan(
            &lab,
            &PlanOptions {
                instance: format!("oper{round}"),
                decap: DecapImpl::Userspace,
                run: None,
            },
        )
        .expect("plan the nat lab");
        let inst = build(
            &p,
            Naming::Anonymous,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .expect("build the nat lab");
        let mut down = Vec::new();
        let mut ends = 0;
        for step in &p.steps {
            let Step::Veth {
                ns,
                name,
                peer_ns,
                peer_name,
                ..
            } = step
            else {
                continue;
            };
            for (node, iface) in [(ns, name), (peer_ns, peer_name)] {
                ends += 1;
                let h = inst
                    .ns(node)
                    .expect("namespace")
                    .netlink()
                    .expect("netlink");
                if !h.is_oper_up(iface).expect("read operstate") {
                    down.push(format!("{node}:{iface}"));
                }
            }
        }
        assert!(ends >= 14, "the nat lab has 7 veth pairs, saw {ends} ends");
        assert!(
            down.is_empty(),
            "round {round}: not operational when build returned: {down:?}"
        );
        assert!(inst.teardown().ok(), "teardown");
    }
}
