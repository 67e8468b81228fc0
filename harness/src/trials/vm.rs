//! A kernel trial on a host whose kernel has no IPVS: the same binary, filtered to this
//! trial, runs in a guest whose kernel has it. The guest writes the trial's outcome as
//! JSON into the trial's capture folder, which is shared with the host at the same path;
//! the host reads that typed outcome back (its output is only shown, never parsed).

use crate::outcome::{Check, Failure, TrialOutcome, VmRun};
use crate::packets::{prepare_vm, spec_capture_dir};

use super::TrialSpec;

/// Modules a kernel trial needs in the VM (schedulers load on demand).
const VM_MODULES: [&str; 3] = ["ip_vs", "ipip", "ip_gre"];

/// The last `n` lines of a text, for failure messages.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub(super) fn run_in_vm(spec: &TrialSpec, argv: &[String], out: &mut TrialOutcome) {
    let mut opts = lvslab_vm::RunOptions {
        output: lvslab_vm::OutputMode::Capture,
        modules: VM_MODULES.iter().map(|m| m.to_string()).collect(),
        ..lvslab_vm::RunOptions::default()
    };
    // The guest sees the host's / read-only with its own tmpfs on /tmp, /run and /var;
    // the trial's capture folder is shared writable at the same path.
    if let Err(e) = prepare_vm(spec, &mut opts) {
        return out.fail(Failure::new(Check::Vm, e.to_string()));
    }
    let Some(dir) = spec_capture_dir(spec) else {
        return out.fail(Failure::new(Check::Vm, "a VM trial needs a capture folder"));
    };
    let ran = match lvslab_vm::run(&opts, argv) {
        Ok(r) => r,
        Err(e) => return out.fail(Failure::new(Check::Vm, format!("VM: {e}"))),
    };
    let vm = VmRun {
        kernel: ran.kernel_release.clone(),
        accel: format!("{:?}", ran.accel),
        boot_ms: ran.boot_ms,
        total_ms: ran.total_ms,
        exit_code: ran.exit_code,
    };
    let mut note = format!(
        "ran in a {} guest ({}): booted in {} ms, {} ms in all",
        vm.kernel, vm.accel, vm.boot_ms, vm.total_ms
    );
    for crash in &ran.guest_crashes {
        note.push_str(&format!(
            "; an earlier guest's kernel died first and was replaced ({crash})"
        ));
    }
    match TrialOutcome::read(&dir) {
        Some(Ok(guest)) => {
            let log_file = out.log_file.take();
            *out = guest;
            out.log_file = log_file;
            out.log.insert(0, note);
            out.vm = Some(vm);
        }
        Some(Err(e)) => {
            out.log.push(note);
            out.vm = Some(vm);
            out.fail(Failure::new(Check::Vm, e.to_string()));
        }
        None => {
            out.log.push(note);
            out.fail(Failure::new(
                Check::Vm,
                format!(
                    "the trial in the VM exited {} without writing its outcome:\n{}\n{}",
                    ran.exit_code,
                    tail(&String::from_utf8_lossy(&ran.stdout), 30),
                    tail(&String::from_utf8_lossy(&ran.stderr), 10)
                ),
            ));
            out.vm = Some(vm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 3), "");
    }
}
