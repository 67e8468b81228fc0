//! Runs libtest-mimic trials inside the lvslab-vm guest (a real Debian kernel with IPVS).
//!
//! On the host, the first trial that runs boots ONE guest that re-runs this test binary
//! for every selected trial (a boot costs seconds of TCG time, so trials share it); the
//! guest half of each trial writes its verdict and log into the scratch share, and each
//! host trial reports its own. Inside the guest (`LVSLAB_IN_VM=1`) trials do the real work.
//! When no guest can run here, or we are not root, every trial is collected as ignored with
//! the reason printed, and forcing it (`--ignored`) fails with that reason: nothing passes
//! by skipping.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use libtest_mimic::{Arguments, Failed, Trial};

/// A kernel check: `Ok` when the kernel agreed, `Err` naming the first disagreement.
pub type Check = fn() -> Result<(), String>;

/// Names the trials the guest must run (comma separated); set by the host half.
const TRIALS_ENV: &str = "LVSLAB_VM_TRIALS";

/// Whether this process is the guest half.
pub fn in_vm() -> bool {
    std::env::var_os(lvslab_vm::IN_VM_ENV).is_some_and(|v| v == "1")
}

/// Why the guest half cannot run on this host, if it cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (qemu, network namespaces in the guest)".into());
    }
    lvslab_vm::probe().skip_reason()
}

/// What the one guest boot produced.
struct GuestRun {
    scratch: PathBuf,
    summary: String,
}

static GUEST: OnceLock<Result<GuestRun, String>> = OnceLock::new();

/// Collects `trials` and runs them: in the guest directly (writing verdicts to the scratch
/// share), on the host through one guest boot with `modules` loaded.
pub fn main(trials: &[(&'static str, Check)], modules: &'static [&'static str]) {
    let args = Arguments::from_args();
    if in_vm() {
        guest_main(trials);
        return;
    }
    let skip = skip_reason();
    if let Some(why) = &skip {
        eprintln!("kernel trials skipped: {why}");
    }
    let selected: Vec<&'static str> = trials
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| is_selected(&args, name))
        .collect();
    let collected = trials
        .iter()
        .map(|&(name, _)| {
            let skip = skip.clone();
            let ignored = skip.is_some();
            let selected = selected.clone();
            Trial::test(name, move || {
                if let Some(why) = skip {
                    return Err(Failed::from(format!("cannot run: {why}")));
                }
                host_verdict(name, &selected, modules).map_err(Failed::from)
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, collected);
    if let Some(Ok(run)) = GUEST.get() {
        // Verdicts are read; the scratch directory is ours alone.
        if let Err(e) = std::fs::remove_dir_all(&run.scratch) {
            eprintln!("cannot remove {}: {e}", run.scratch.display());
        }
    }
    conclusion.exit();
}

/// libtest-mimic's own selection rule (filter, `--exact`, `--skip`).
fn is_selected(args: &Arguments, name: &str) -> bool {
    let by_filter = match &args.filter {
        None => true,
        Some(f) if args.exact => name == f,
        Some(f) => name.contains(f.as_str()),
    };
    let skipped = args.skip.iter().any(|s| {
        if args.exact {
            name == s
        } else {
            name.contains(s.as_str())
        }
    });
    by_filter && !skipped
}

fn guest_main(trials: &[(&'static str, Check)]) {
    let wanted = std::env::var(TRIALS_ENV).unwrap_or_default();
    let scratch = std::env::var_os(lvslab_vm::SCRATCH_ENV).map(PathBuf::from);
    let mut failed = 0;
    for (name, check) in trials {
        if !wanted.split(',').any(|w| w == *name) {
            continue;
        }
        let started = Instant::now();
        let verdict = check();
        let ms = started.elapsed().as_millis();
        let line = match &verdict {
            Ok(()) => format!("ok ({ms} ms)"),
            Err(e) => {
                failed += 1;
                format!("FAILED ({ms} ms)\n{e}")
            }
        };
        println!("guest trial {name}: {line}");
        if let Some(dir) = &scratch {
            if let Err(e) = std::fs::write(dir.join(format!("{name}.verdict")), &line) {
                eprintln!("cannot write the verdict of {name}: {e}");
                failed += 1;
            }
        }
    }
    std::process::exit(i32::from(failed > 0));
}

fn boot(selected: &[&str], modules: &[&str]) -> Result<GuestRun, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let scratch = std::env::temp_dir().join(format!(
        "lvslab-kdiff-{}-{}",
        std::process::id(),
        exe.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("create {}: {e}", scratch.display()))?;
    let opts = lvslab_vm::RunOptions {
        modules: modules.iter().map(|m| (*m).to_owned()).collect(),
        output: lvslab_vm::OutputMode::Capture,
        scratch: Some(scratch.clone()),
        env: vec![(TRIALS_ENV.into(), selected.join(",").into())],
        ..lvslab_vm::RunOptions::default()
    };
    let started = Instant::now();
    let outcome = lvslab_vm::run(&opts, &[exe]).map_err(|e| format!("VM run failed: {e}"))?;
    let summary = format!(
        "guest kernel {}: boot {} ms, command {} ms, total {} ms (host wall {} ms)\n--- guest stdout ---\n{}--- guest stderr ---\n{}",
        outcome.kernel_release,
        outcome.boot_ms,
        outcome.total_ms.saturating_sub(outcome.boot_ms),
        outcome.total_ms,
        started.elapsed().as_millis(),
        String::from_utf8_lossy(&outcome.stdout),
        String::from_utf8_lossy(&outcome.stderr),
    );
    println!("{summary}");
    Ok(GuestRun { scratch, summary })
}

fn host_verdict(name: &str, selected: &[&str], modules: &[&str]) -> Result<(), String> {
    let run = GUEST
        .get_or_init(|| boot(selected, modules))
        .as_ref()
        .map_err(Clone::clone)?;
    let path: &Path = &run.scratch.join(format!("{name}.verdict"));
    let verdict = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "the guest left no verdict for {name} ({e})\n{}",
            run.summary
        )
    })?;
    println!("{name}: {}", verdict.lines().next().unwrap_or_default());
    if verdict.starts_with("ok") {
        Ok(())
    } else {
        Err(format!("{verdict}\n{}", run.summary))
    }
}
