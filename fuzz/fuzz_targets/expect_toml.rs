//! `expect.toml` bytes resolved against each shipped lab (the first byte picks the lab):
//! no panic, every error located.
//!
//! ```sh
//! mkdir -p fuzz/corpus/expect_toml
//! for l in 0:nat 1:dr 2:tun 3:fullnat; do
//!   printf "\\$(printf %o "${l%%:*}")" | cat - "labs/${l#*:}/expect.toml" > "fuzz/corpus/expect_toml/${l#*:}"
//! done
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run expect_toml -- -max_total_time=60
//! ```
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lvslab_spec::expect::Expectations;
use lvslab_spec::model::Lab;

fn labs() -> &'static [Lab] {
    static LABS: OnceLock<Vec<Lab>> = OnceLock::new();
    LABS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../labs");
        ["nat", "dr", "tun", "fullnat"]
            .iter()
            .map(|name| {
                lvslab_spec::load_lab(&dir.join(name).join("lab.toml"), &[])
                    .unwrap_or_else(|e| panic!("shipped lab {name}: {e}"))
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((pick, text)) = data.split_first() else {
        return;
    };
    let labs = labs();
    let lab = &labs[usize::from(*pick) % labs.len()];
    let file = Path::new("fuzz/expect.toml");
    if let Err(errors) = Expectations::parse_bytes(file, text, lab, "u-fuzz") {
        assert!(!errors.0.is_empty());
        for e in &errors.0 {
            assert!(e.line >= 1 && e.col >= 1, "unlocated error: {e}");
            assert_eq!(e.file, file);
        }
    }
});
