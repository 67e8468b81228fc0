//! `lvslab check` validates a lab's `expect.toml` beside its `lab.toml`: an unknown field
//! or a reference to nothing exits 2 naming the file, line and field. No root needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lvslab");

/// A lab folder holding the shipped NAT lab and the given expect.toml.
struct LabDir(PathBuf);

impl LabDir {
    fn new(tag: &str, expect: Option<&str>) -> LabDir {
        let dir = std::env::temp_dir().join(format!("lvslab-check-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let labs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs");
        std::fs::copy(labs.join("nat/lab.toml"), dir.join("lab.toml")).expect("copy lab.toml");
        if let Some(text) = expect {
            std::fs::write(dir.join("expect.toml"), text).expect("write expect.toml");
        }
        LabDir(dir)
    }

    fn check(&self) -> Output {
        Command::new(BIN)
            .arg("check")
            .arg(&self.0)
            .output()
            .expect("run lvslab")
    }

    fn expect_file(&self) -> String {
        self.0.join("expect.toml").display().to_string()
    }
}

impl Drop for LabDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_unknown_field_in_expect_toml_exits_2_with_file_line_and_field() {
    let lab = LabDir::new(
        "unknown",
        Some("[[hop]]\npoint = \"rs1:eth0\"\nipv4.srcx = \"vip\"\n"),
    );
    let out = lab.check();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = format!(
        "error: {}:3:6: unknown field `srcx`, expected `src` or `dst`",
        lab.expect_file()
    );
    assert!(err.starts_with(&want), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}

#[test]
fn an_unknown_table_in_expect_toml_exits_2() {
    let lab = LabDir::new("table", Some("[hops]\npoint = \"rs1:eth0\"\n"));
    let out = lab.check();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}:1:2: unknown field `hops`, expected `hop`",
            lab.expect_file()
        )),
        "{err}"
    );
}

#[test]
fn a_reference_to_nothing_exits_2_naming_the_field() {
    let lab = LabDir::new(
        "badref",
        Some(
            "[[hop]]\npoint = \"rs*:eth0\"\n\ntcp.dport = \"rport\"\nipv4.src = \"nosuch:eth0\"\n",
        ),
    );
    let out = lab.check();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}:5:12: hop[0].ipv4.src: ipv4.src: `nosuch:eth0`: no node named nosuch",
            lab.expect_file()
        )),
        "{err}"
    );
}

#[test]
fn a_valid_expect_toml_is_reported_and_its_absence_is_fine() {
    let lab = LabDir::new("ok", Some("[[hop]]\npoint = \"rs*:eth0\"\ndirection = \"request\"\nipv4.dst = [\"rs1:eth0\", \"rs2:eth0\", \"rs3:eth0\"]\n"));
    let out = lab.check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout.contains(&format!("{}: ok — 1 hop expectations", lab.expect_file())),
        "{stdout}"
    );
    let bare = LabDir::new("bare", None);
    let out = bare.check();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("expect.toml"));
    assert!(Path::new(&bare.0).join("lab.toml").is_file());
}
