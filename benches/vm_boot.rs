//! Boot to command of the kernel-IPVS VM (`cargo bench -p lvslab-vm --bench vm_boot`,
//! root, qemu and a fetched kernel: `.ci/vm-setup.sh`). Not a test: how long a TCG boot
//! takes depends on what else the machine runs, so it is measured here, never asserted.
//!
//! Each round boots the guest to run `true` (`RunOutcome::boot_ms`: host clock from
//! spawning qemu to the guest about to exec the command) and, as the same-run baseline,
//! starts and quits a qemu with no machine at all (what qemu itself costs before any guest
//! code runs). Rounds alternate; medians and their ratio are printed.
//! Options: `-- --rounds N` (default 5).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("vm_boot: needs root (the guest shares /); nothing measured");
        return;
    }
    let availability = lvslab_vm::probe();
    if let Some(why) = availability.skip_reason() {
        eprintln!("vm_boot: no VM can run here: {why}; nothing measured");
        return;
    }
    let Some(qemu) = availability.qemu.clone() else {
        eprintln!("vm_boot: no qemu; nothing measured");
        return;
    };
    let opts = lvslab_vm::RunOptions {
        output: lvslab_vm::OutputMode::Capture,
        ..lvslab_vm::RunOptions::default()
    };
    let (mut boots, mut bare) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        match lvslab_vm::run(&opts, &["true"]) {
            Ok(o) => {
                println!(
                    "round {round}: boot to command {} ms (guest uptime then {:?} ms, whole run {} ms, {:?}, kernel {})",
                    o.boot_ms, o.guest_uptime_ms, o.total_ms, o.accel, o.kernel_release
                );
                boots.push(o.boot_ms);
            }
            Err(e) => {
                eprintln!("round {round}: the VM failed: {e}");
                return;
            }
        }
        let t = Instant::now();
        let child = Command::new(&qemu)
            .args([
                "-machine",
                "none",
                "-nodefaults",
                "-display",
                "none",
                "-monitor",
                "stdio",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(mut c) => {
                if let Some(mut stdin) = c.stdin.take() {
                    let _ = stdin.write_all(b"quit\n");
                }
                let _ = c.wait();
                bare.push(t.elapsed().as_millis() as u64);
            }
            Err(e) => {
                eprintln!("baseline qemu: {e}");
                return;
            }
        }
    }
    let (b, q) = (median(&mut boots), median(&mut bare));
    println!(
        "boot to command: median {b} ms, best {} ms over {rounds} boots; qemu with no machine: median {q} ms; boot / bare qemu = {:.1}x",
        boots.first().copied().unwrap_or(0),
        b as f64 / q.max(1) as f64
    );
}
