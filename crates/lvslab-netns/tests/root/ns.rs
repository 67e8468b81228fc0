//! Namespaces themselves: entered only by helper threads, snapshotted and diffed, the
//! root one never modified, and the feature probe.

use std::process::Command;

use lvslab_netns::nft::{self, Family, Name};
use lvslab_netns::{probe, set_sysctl, snapshot, Error, Netns};

use crate::{ip, mac, require_root, udp_drop_table};

#[test]
fn snapshot_diff_shows_exactly_one_changed_sysctl() {
    require_root();
    let ns = Netns::new_anonymous().expect("namespace");
    let before = snapshot(&ns).expect("snapshot");
    assert!(before.links.iter().any(|l| l.name == "lo" && l.up));
    assert!(
        before.sysctls.len() > 100,
        "expected the ipv4 and ipv6/conf sysctl trees, got {} entries",
        before.sysctls.len()
    );
    assert_eq!(
        before
            .sysctls
            .get("net.ipv4.conf.lo.arp_ignore")
            .map(String::as_str),
        Some("0"),
        "kernel default"
    );
    set_sysctl(&ns, "net.ipv4.conf.lo.arp_ignore", "1").expect("set");
    let after = snapshot(&ns).expect("snapshot");
    assert_eq!(
        before.diff(&after),
        vec!["~ sysctl net.ipv4.conf.lo.arp_ignore: 0 -> 1".to_string()]
    );
}

#[test]
fn namespaces_are_entered_only_by_helper_threads() {
    require_root();
    let own = || {
        std::fs::metadata("/proc/thread-self/ns/net")
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    };
    let mine = own().expect("own namespace");
    let ns = Netns::new_anonymous().expect("namespace");
    assert_ne!(ns.inode(), mine);

    let inside = ns.run(own).expect("run").expect("stat inside");
    assert_eq!(inside, ns.inode());
    assert_eq!(
        own().expect("own namespace"),
        mine,
        "caller thread did not move"
    );

    let worker = ns.thread().expect("worker");
    assert_eq!(worker.exec(own).expect("exec").expect("stat"), ns.inode());
    let panicked = worker.exec(|| -> u32 { panic!("deliberate") });
    match panicked {
        Err(Error::Thread { detail, .. }) => assert!(detail.contains("deliberate"), "{detail}"),
        other => panic!("expected a thread error, got {other:?}"),
    }
    assert_eq!(
        worker
            .exec(own)
            .expect("worker still serves")
            .expect("stat"),
        ns.inode()
    );
    assert_eq!(own().expect("own namespace"), mine);

    // Programs start inside the namespace.
    let out = ns
        .output(Command::new("readlink").arg("/proc/self/ns/net"))
        .expect("run readlink");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("net:[{}]", ns.inode())
    );
    let child = worker
        .spawn_command({
            let mut c = Command::new("readlink");
            c.arg("/proc/self/ns/net");
            c.stdout(std::process::Stdio::piped());
            c
        })
        .expect("spawn from worker");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("net:[{}]", ns.inode())
    );
}

#[test]
fn root_namespace_is_never_modified() {
    require_root();
    let root = Netns::root().expect("root");
    let other = Netns::new_anonymous().expect("namespace");
    let h = root.netlink().expect("root netlink (reading is fine)");
    assert!(!h.links().expect("read links").is_empty());
    let refused = [
        h.add_bridge("lvslabbad0", mac("bad")).err(),
        h.add_address("lo", ip("192.0.2.99"), 32).err(),
        h.add_route(Some((ip("203.0.113.0"), 24)), None, Some("lo"))
            .err(),
        h.set_up("lo").err(),
        other
            .netlink()
            .expect("netlink")
            .add_veth("x0", mac("x0"), &root, "x1", mac("x1"))
            .err(),
        set_sysctl(&root, "net.ipv4.ip_forward", "1").err(),
        nft::apply(&root, &udp_drop_table(1)).err(),
        nft::delete_table(&root, Family::Inet, &Name::new("lvslab_bad").expect("name")).err(),
    ];
    for (i, err) in refused.into_iter().enumerate() {
        assert!(
            matches!(err, Some(Error::RootIsReadOnly { .. })),
            "operation {i} was not refused: {err:?}"
        );
    }
    // Nothing of the attempted veth was left in the other namespace.
    assert!(other.netlink().expect("netlink").link("x0").is_err());
}

#[test]
fn probe_reports_every_feature_consistently() {
    require_root();
    let features = probe();
    let names: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "root",
            "netns",
            "veth",
            "bridge",
            "ipip",
            "gre",
            "ipvs",
            "nft",
            "af_packet",
            "tun",
            "qemu",
            "kvm"
        ]
    );
    let get = |name: &str| lvslab_netns::probe::find(&features, name).expect("probed");
    for must in ["root", "netns", "veth", "bridge", "af_packet"] {
        assert!(get(must).available, "{must}: {}", get(must).detail);
    }
    // nf_tables is in every kernel these tests run on; the probe needs no nft program.
    assert!(get("nft").available, "{}", get("nft").detail);
    assert_eq!(
        get("tun").available,
        std::path::Path::new("/dev/net/tun").exists(),
        "{}",
        get("tun").detail
    );
    for f in &features {
        assert!(!f.detail.is_empty(), "{} has no detail", f.name);
        if !f.available && ["ipip", "gre", "ipvs"].contains(&f.name.as_str()) {
            assert!(f.detail.contains("CONFIG_"), "{}: {}", f.name, f.detail);
            assert!(
                f.detail.contains("lvslab vm run"),
                "{}: {}",
                f.name,
                f.detail
            );
        }
    }
}
