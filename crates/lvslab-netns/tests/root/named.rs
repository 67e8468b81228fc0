//! Named namespaces: published only after their identity is recorded, and removed only
//! by that identity.

use std::path::PathBuf;

use lvslab_netns::named::{
    create_mount_point, prepare, publish, remove_owned, NamedNs, PublishError, Removal,
};
use lvslab_netns::Netns;

use crate::require_root;

/// Removes what a test published when dropped, so a failing assertion leaks nothing.
struct RemoveOnDrop(Vec<NamedNs>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = remove_owned(id);
        }
    }
}

fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

#[test]
fn named_namespace_appears_only_after_its_identity_and_is_removed_only_by_it() {
    require_root();
    let path = PathBuf::from(format!(
        "/run/netns/lvslab-netns-test-{}",
        std::process::id()
    ));
    let mut cleanup = RemoveOnDrop(Vec::new());
    let run_netns_was_a_mount = mount_points().iter().any(|m| m == "/run/netns");

    let mut prepared = prepare(&path).expect("prepare");
    cleanup.0.push(prepared.record.clone());
    assert_eq!(prepared.record.ns_inode, prepared.netns.inode());
    assert_eq!(prepared.record.file_inode, None);
    assert!(prepared.record.staging.starts_with("/run/netns/"));
    create_mount_point(&mut prepared).expect("mount point");
    let id = prepared.record.clone();
    cleanup.0.push(id.clone());
    assert!(id.file_inode.is_some());
    assert!(!path.exists(), "nothing is visible before publish");
    let ns = publish(prepared).expect("publish");
    assert!(
        !id.staging.exists(),
        "the staging name is gone once published"
    );
    assert_eq!(
        ns.label(),
        path.file_name().expect("name").to_string_lossy()
    );
    drop(ns);

    // The bind mount keeps it alive after our handle is gone.
    let reopened = Netns::open(&path).expect("reopen");
    assert_eq!(reopened.inode(), id.ns_inode);
    assert!(
        reopened
            .netlink()
            .expect("netlink")
            .link("lo")
            .expect("lo")
            .up
    );
    // A second namespace of the same name is refused, and the first stays whole.
    let mut second = prepare(&path).expect("prepare another");
    create_mount_point(&mut second).expect("its mount point");
    let second_staging = second.record.staging.clone();
    match publish(second) {
        Err(PublishError::NameTaken { .. }) => {}
        other => panic!("publishing over an existing name: {other:?}"),
    }
    assert!(
        !second_staging.exists(),
        "the refused staging file is removed"
    );
    assert_eq!(
        Netns::open(&path).expect("still there").inode(),
        id.ns_inode
    );

    let mounts = mount_points();
    assert!(mounts.iter().any(|m| Some(m.as_str()) == path.to_str()));
    assert_eq!(
        mounts.iter().any(|m| m == "/run/netns"),
        run_netns_was_a_mount,
        "creating a named namespace must not turn /run/netns itself into a mount"
    );

    // Another identity proves nothing: the namespace stays.
    let wrong_ns = NamedNs {
        ns_inode: id.ns_inode + 1,
        ..id.clone()
    };
    assert!(matches!(
        remove_owned(&wrong_ns).expect("check"),
        Removal::NotOurs { .. }
    ));
    assert_eq!(Netns::open(&path).expect("untouched").inode(), id.ns_inode);
    // The right namespace over a file that is not ours: unmounted, the file stays.
    let wrong_file = NamedNs {
        file_inode: id.file_inode.map(|i| i + 1),
        ..id.clone()
    };
    assert!(matches!(
        remove_owned(&wrong_file).expect("check"),
        Removal::NotOurs { .. }
    ));
    assert!(path.exists());
    assert_eq!(remove_owned(&id).expect("remove"), Removal::Removed);
    drop(reopened);
    assert!(!path.exists());
    assert!(!mount_points()
        .iter()
        .any(|m| Some(m.as_str()) == path.to_str()));
    assert_eq!(remove_owned(&id).expect("again"), Removal::Absent);
    assert!(Netns::open(&path).is_err());
}

/// A crash between creating the mount-point file and renaming it leaves only the staging
/// file, which the record (written before it was made) is enough to remove.
#[test]
fn a_staging_file_left_by_a_crash_is_removed_by_its_record() {
    require_root();
    let path = PathBuf::from(format!(
        "/run/netns/lvslab-netns-crash-{}",
        std::process::id()
    ));
    let mut prepared = prepare(&path).expect("prepare");
    create_mount_point(&mut prepared).expect("mount point");
    let record = prepared.record.clone();
    drop(prepared); // the crash: the namespace dies with its fd, the file stays
    assert!(record.staging.exists());
    assert!(!path.exists());
    assert_eq!(remove_owned(&record).expect("remove"), Removal::Removed);
    assert!(!record.staging.exists());
    // Recorded before the file existed: nothing to do, nothing else touched.
    let mut unmade = record.clone();
    unmade.file_inode = None;
    assert_eq!(remove_owned(&unmade).expect("remove"), Removal::Absent);
}
