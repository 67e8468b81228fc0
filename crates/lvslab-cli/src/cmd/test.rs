//! `lvslab test`: the main job. Runs the same trials as `cargo test`, prints a summary
//! table and writes report.json, JUnit XML and a self-contained HTML report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use lvslab_harness::{collect, run_trial};
use lvslab_pcap::report::{render_terminal, RunReport, TrialReport, TrialResult};

use super::require_root;

/// `YYYY-MM-DDTHH-MM-SS` (UTC), safe in file names.
fn run_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn test(labs: &Path, only: &[String], report_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    require_root("lvslab test")?;
    let run = run_id();
    let dir: PathBuf =
        report_dir.map_or_else(|| PathBuf::from("captures").join(&run), Path::to_path_buf);
    let specs: Vec<_> = collect(labs)
        .into_iter()
        .filter(|s| {
            only.is_empty()
                || only.iter().any(|o| {
                    s.lab_file
                        .parent()
                        .and_then(|p| p.file_name())
                        .is_some_and(|n| n == o.as_str())
                })
        })
        .collect();
    if specs.is_empty() {
        anyhow::bail!(
            "no trials match {only:?}: labs are the folders of {}",
            labs.display()
        );
    }
    let mut report = RunReport {
        run: run.clone(),
        trials: Vec::new(),
    };
    let mut failed = 0;
    for spec in &specs {
        let lab = spec
            .name
            .split("::")
            .nth(1)
            .unwrap_or(&spec.name)
            .to_string();
        let kind = spec.kind.name();
        let mut t = TrialReport {
            lab,
            dataplane: kind.to_string(),
            scheduler: None,
            result: TrialResult::Passed,
            duration_ms: 0,
            packets: 0,
            hops_checked: 0,
            captures: Vec::new(),
            log: None,
            errors: Vec::new(),
            findings: Vec::new(),
            flows: Vec::new(),
        };
        if let Some(why) = &spec.skip {
            println!("ignored {}: {why}", spec.name);
            t.result = TrialResult::Ignored {
                reason: why.clone(),
            };
            report.trials.push(t);
            continue;
        }
        let out = run_trial(spec, &|name| {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            vec![
                exe,
                "--labs".into(),
                labs.display().to_string(),
                "trial".into(),
                name.into(),
            ]
        });
        println!(
            "{} {} ({:.1?})",
            if out.passed { "ok     " } else { "FAILED " },
            spec.name,
            out.duration
        );
        if !out.passed {
            failed += 1;
            for l in &out.log {
                println!("    {l}");
            }
            t.result = TrialResult::Failed;
            t.errors = out
                .log
                .iter()
                .filter(|l| l.starts_with("FAILED"))
                .cloned()
                .collect();
        }
        t.duration_ms = out.duration.as_millis() as u64;
        t.hops_checked = out.checks as u64;
        let log_path = dir.join(format!(
            "{}.log",
            spec.name
                .replace("::", "-")
                .replace(['[', ']', '=', ','], "_")
        ));
        t.log = Some(log_path.display().to_string());
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::write(&log_path, out.log.join("\n") + "\n")
            .with_context(|| format!("write {}", log_path.display()))?;
        report.trials.push(t);
    }
    println!();
    print!("{}", render_terminal(&report));
    report
        .write_all(&dir)
        .with_context(|| format!("write the reports to {}", dir.display()))?;
    println!(
        "reports: {}/report.json, junit.xml, report.html",
        dir.display()
    );
    let ignored = report
        .trials
        .iter()
        .filter(|t| matches!(t.result, TrialResult::Ignored { .. }))
        .count();
    if failed > 0 {
        println!("{failed} trial(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    if ignored == report.trials.len() {
        println!("every trial was ignored: nothing was tested");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one trial by name (what a kernel trial runs inside the VM): the log on stdout,
/// exit status 0 when it passed.
pub fn trial(labs: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let spec = collect(labs)
        .into_iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no trial named `{name}`"))?;
    let out = run_trial(&spec, &|_| Vec::new());
    for l in &out.log {
        println!("  {l}");
    }
    Ok(if out.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
