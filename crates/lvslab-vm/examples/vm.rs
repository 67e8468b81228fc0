//! A bare driver for trying the runner by hand (the real CLI is `lvslab vm`):
//! `vm fetch`, `vm run -- CMD…`, `vm shell`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = lvslab_vm::RunOptions::default();
    let result = match args.first().map(String::as_str) {
        Some("fetch") => lvslab_vm::fetch(&opts.cache).map(|k| {
            println!("{} ({} {})", k.release, k.package, k.package_version);
            0
        }),
        Some("run") => {
            let argv = args[1..]
                .strip_prefix(&["--".to_owned()])
                .unwrap_or(&args[1..]);
            lvslab_vm::run(&opts, argv).map(|o| {
                eprintln!(
                    "[vm: exit {} boot {} ms total {} ms {:?} {} guest uptime {:?} ms]",
                    o.exit_code,
                    o.boot_ms,
                    o.total_ms,
                    o.accel,
                    o.kernel_release,
                    o.guest_uptime_ms
                );
                o.exit_code
            })
        }
        Some("shell") => lvslab_vm::shell(&opts),
        Some("probe") => {
            let a = lvslab_vm::probe();
            println!("{a:#?}");
            Ok(i32::from(!a.can_run()))
        }
        _ => {
            eprintln!("usage: vm fetch | vm run -- CMD… | vm shell | vm probe");
            Ok(2)
        }
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        Err(e) => {
            eprintln!("vm: {e}");
            ExitCode::from(1)
        }
    }
}
