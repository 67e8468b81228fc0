//! `cargo test` entry for the lab trials (root). Skips are decided here, at collection,
//! and printed with their reasons.

use std::path::PathBuf;

use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let labs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../labs");
    let specs = lvslab_harness::collect(&labs);
    let trials = specs
        .into_iter()
        .map(|spec| {
            if let Some(why) = &spec.skip {
                eprintln!("skipping {}: {why}", spec.name);
            }
            let ignored = spec.skip.is_some();
            let name = spec.name.clone();
            Trial::test(name, move || {
                let out = lvslab_harness::run_trial(&spec, &|name| {
                    // In the VM, this same test binary runs just this trial.
                    let exe = std::env::current_exe()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    vec![
                        exe,
                        "--exact".into(),
                        name.into(),
                        "--nocapture".into(),
                        "--test-threads=1".into(),
                    ]
                });
                for l in &out.log {
                    println!("  {l}");
                }
                if out.passed() {
                    Ok(())
                } else {
                    Err(Failed::from(out.failure_text()))
                }
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
