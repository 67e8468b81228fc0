//! `lab.toml` bytes through the whole loader (UTF-8, parameters, TOML, validation): no
//! panic, every error located, and what validates is shell-safe.
//!
//! ```sh
//! mkdir -p fuzz/corpus/lab_toml
//! for l in labs/*/; do cp "$l/lab.toml" "fuzz/corpus/lab_toml/$(basename "$l").toml"; done
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run lab_toml -- -max_total_time=60
//! ```
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lvslab_spec::model::Lab;

fn plain(s: &str) -> bool {
    !s.is_empty()
        && s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn assert_shell_safe(lab: &Lab) {
    assert!(plain(&lab.name), "lab name {:?}", lab.name);
    for n in &lab.nodes {
        assert!(plain(&n.name), "node {:?}", n.name);
        for i in n.interfaces.keys().chain(&lab.node_interfaces(&n.name)) {
            assert!(plain(i) && !i.starts_with('-'), "interface {i:?}");
        }
        for (k, v) in &n.sysctls {
            assert!(plain(k), "sysctl key {k:?}");
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b' ' | b'\t' | b',')),
                "sysctl {k} = {v:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let file = Path::new("fuzz/lab.toml");
    match lvslab_spec::parse_lab_bytes(file, data, &[]) {
        Ok(lab) => assert_shell_safe(&lab),
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for e in &errors.0 {
                assert!(e.line >= 1 && e.col >= 1, "unlocated error: {e}");
                assert_eq!(e.file, file);
            }
        }
    }
});
