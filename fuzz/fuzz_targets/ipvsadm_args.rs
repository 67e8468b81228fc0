//! The ipvsadm command line under libFuzzer: the input's NUL-separated parts are argv
//! words (lossy UTF-8), run in one session against the userspace director, several
//! command lines per input when separated by a `\n` word.
//!
//! A crash is a panic or a broken promise of the front end: a refusal with a status
//! other than 2 or 255, output on stdout, or a message that does not name its culprit
//! (the kernel's exact unknown-scheduler text aside). Crashes found here become plain
//! tests in crates/lvslab-ipvsadm/tests/command_line/fuzz.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvslab_dataplane::director::{Director, DirectorConfig};
use lvslab_ipvsadm::{parse, run};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<String> = text.split('\0').map(str::to_string).collect();
    let mut lb = Director::new(DirectorConfig {
        max_conns: 1024,
        ..DirectorConfig::default()
    });
    for argv in words.split(|w| w == "\n").take(8) {
        let out = run(argv, &mut lb);
        match parse(argv) {
            Err(e) => {
                assert!(e.exit_code == 2 || e.exit_code == 255, "{argv:?}: {e:?}");
                assert_eq!(out.exit_code, e.exit_code, "{argv:?}");
                assert_eq!(out.stderr, format!("{}\n", e.message), "{argv:?}");
                assert!(out.stdout.is_empty(), "{argv:?}");
                let kernel_words = e.message == "Scheduler or persistence engine not found";
                assert!(
                    kernel_words || e.message.contains(&e.culprit),
                    "{argv:?}: {e:?}"
                );
            }
            Ok(_) if out.exit_code == 0 => assert!(out.stderr.is_empty(), "{argv:?}"),
            Ok(_) => {
                assert!([1, 2, 255].contains(&out.exit_code), "{argv:?}: {out:?}");
                assert!(out.stdout.is_empty() && !out.stderr.is_empty(), "{argv:?}");
            }
        }
    }
});
