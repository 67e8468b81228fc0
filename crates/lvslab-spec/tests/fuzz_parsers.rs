//! Bounded fuzzing of the lab and expectation parsers, part of `cargo test`: random
//! mutations of every shipped `labs/*/lab.toml` and `expect.toml` (byte flips, deletions,
//! TOML syntax, random UTF-8, invalid bytes, huge numbers, hostile strings in place of
//! string values) never panic, every error they produce has a place (line ≥ 1, within the
//! file) and names the file, and whatever still validates is shell-safe: every name and
//! value that reaches a command is in a plain character set.
//!
//! The longer, coverage-guided runs are the cargo-fuzz targets in `fuzz/`.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use lvslab_spec::expect::Expectations;
use lvslab_spec::model::{Lab, NatRule};
use lvslab_spec::{load_lab, parse_lab_bytes, SpecErrors};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Mutated inputs per shipped file.
const CASES: u32 = 320;

fn labs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs")
}

/// Every shipped lab folder.
fn lab_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(labs_dir())
        .expect("labs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("lab.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

const TOML_SYNTAX: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "=",
    ",",
    ".",
    "#",
    "\n",
    "\\",
    "\\u",
    "\\x00",
    "[[node]]\n",
    "[lab]\n",
    "[params.x]\n",
    "[[hop]]\n",
    "x = 1\n",
    "a.b.c = \"d\"\n",
    "= =",
    "${",
    "}",
    "${encap}",
    "${nope}",
    "${}",
    "\r\n",
    "\t",
    "\0",
    "[capture]\npoints = [\"*:*\"]\n",
];

const HUGE_NUMBERS: &[&str] = &[
    "99999999999999999999999",
    "-9223372036854775809",
    "9223372036854775807",
    "4294967296",
    "2147483648",
    "-2147483649",
    "65536",
    "0",
    "-1",
    "1e999",
    "inf",
    "nan",
    "0x7fffffff",
    "0o777",
    "1_000_000",
    "1.5",
];

/// Replacements for the contents of a string value, as they would be written between
/// TOML double quotes.
const HOSTILE: &[&str] = &[
    "e$(touch x)",
    "1;touch x",
    "`id`",
    "a\\nb",
    "a\\u0000b",
    "../../etc/passwd",
    "a/b",
    "-eth0",
    "all",
    "default",
    "lo",
    "tunl0",
    "gre0",
    ".",
    "..",
    "",
    " ",
    "averyveryverylongname0",
    "é",
    "\\u202e",
    "net.ipv4.conf.all.rp_filter",
    "kernel.panic",
    "4294967296",
    "1  2",
    "010",
    "rs1:eth0",
    "rs1:",
    ":eth0",
    "*",
    "*:*",
    "vip",
    "local",
    "rport",
    "vport",
    "${encap}",
    "${nope}",
    "tcp",
    "udp",
    "ipip",
    "gue",
    "192.0.2.1",
    "192.0.2.1/33",
    "::1/128",
    "default",
    "request",
    "reply",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    /// Replace the contents of the n-th `"…"` string.
    ReplaceString(Index, String),
    /// Replace the n-th run of digits.
    ReplaceNumber(Index, &'static str),
    /// Repeat a line after itself.
    DuplicateLine(Index),
}

fn insertion() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(TOML_SYNTAX).prop_map(|s| s.as_bytes().to_vec()),
        select(HUGE_NUMBERS).prop_map(|s| s.as_bytes().to_vec()),
        select(HOSTILE).prop_map(|s| s.as_bytes().to_vec()),
        ".{0,12}".prop_map(String::into_bytes),
        prop::collection::vec(0x80u8..=0xff, 1..4),
        prop::collection::vec(any::<u8>(), 1..8),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), 1usize..24).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), insertion()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (
            any::<Index>(),
            prop_oneof![
                3 => select(HOSTILE).prop_map(str::to_string),
                1 => ".{0,20}",
            ]
        )
            .prop_map(|(i, s)| Mutation::ReplaceString(i, s)),
        (any::<Index>(), select(HUGE_NUMBERS)).prop_map(|(i, s)| Mutation::ReplaceNumber(i, s)),
        any::<Index>().prop_map(Mutation::DuplicateLine),
    ]
}

/// Byte ranges of the contents of `"…"` strings on one line.
fn strings(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut open = None;
    for (i, b) in text.iter().enumerate() {
        match (b, open) {
            (b'"', None) => open = Some(i + 1),
            (b'"', Some(start)) => {
                out.push(start..i);
                open = None;
            }
            (b'\n', _) => open = None,
            _ => {}
        }
    }
    out
}

fn digit_runs(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, b) in text.iter().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::Flip(i, mask) if len > 0 => bytes[i.index(len)] ^= mask,
            Mutation::Delete(i, n) if len > 0 => {
                let at = i.index(len);
                bytes.drain(at..(at + n).min(len));
            }
            Mutation::Insert(i, b) => {
                let at = i.index(len + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::ReplaceString(i, s) => {
                let all = strings(&bytes);
                if !all.is_empty() {
                    let r = all[i.index(all.len())].clone();
                    bytes.splice(r, s.bytes());
                }
            }
            Mutation::ReplaceNumber(i, s) => {
                let all = digit_runs(&bytes);
                if !all.is_empty() {
                    let r = all[i.index(all.len())].clone();
                    bytes.splice(r, s.bytes());
                }
            }
            Mutation::DuplicateLine(i) => {
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(
                        bytes
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| **b == b'\n')
                            .map(|(k, _)| k + 1),
                    )
                    .filter(|s| *s < len)
                    .collect();
                if !starts.is_empty() {
                    let s = starts[i.index(starts.len())];
                    let e = bytes[s..]
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(len, |p| s + p + 1);
                    let line = bytes[s..e].to_vec();
                    bytes.splice(e..e, line);
                }
            }
            _ => {}
        }
    }
    bytes
}

/// Every error names the file and a place in it.
fn located(errors: &SpecErrors, file: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty(), "an error list is never empty");
    let lines = bytes.iter().filter(|b| **b == b'\n').count() + 1;
    for e in &errors.0 {
        prop_assert_eq!(&e.file, file);
        prop_assert!(e.line >= 1 && e.col >= 1, "no location: {}", e);
        prop_assert!(
            e.line <= lines,
            "line {} of a {}-line file: {}",
            e.line,
            lines,
            e
        );
        prop_assert!(!e.message.is_empty(), "no message: {:?}", e);
    }
    Ok(())
}

fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// What validated reaches commands and `/proc/sys` only as plain words and numbers.
fn shell_safe(lab: &Lab) -> Result<(), TestCaseError> {
    prop_assert!(plain(&lab.name), "lab name {:?}", lab.name);
    for v in lab.params.values() {
        prop_assert!(plain(v), "parameter value {:?}", v);
    }
    for s in &lab.switches {
        prop_assert!(plain(&s.name), "switch {:?}", s.name);
    }
    for t in &lab.tunnels {
        prop_assert!(plain(&t.name), "tunnel {:?}", t.name);
    }
    for n in &lab.nodes {
        prop_assert!(plain(&n.name), "node {:?}", n.name);
        for i in n.interfaces.keys().chain(&lab.node_interfaces(&n.name)) {
            prop_assert!(
                plain(i) && !i.starts_with('-') && i.len() <= 15,
                "interface {:?}",
                i
            );
        }
        for r in &n.routes {
            prop_assert!(r.dev.as_deref().is_none_or(plain), "route dev {:?}", r.dev);
        }
        for rule in &n.nat {
            if let NatRule::Masquerade { out, .. } | NatRule::Snat { out, .. } = rule {
                prop_assert!(out.as_deref().is_none_or(plain), "nat out {:?}", out);
            }
        }
        for (k, v) in &n.sysctls {
            prop_assert!(plain(k) && k.starts_with("net."), "sysctl key {:?}", k);
            let number_chars =
                |b: u8| b.is_ascii_digit() || matches!(b, b'-' | b' ' | b'\t' | b',');
            prop_assert!(
                !v.is_empty() && v.bytes().all(number_chars),
                "sysctl {} = {:?}",
                k,
                v
            );
        }
    }
    Ok(())
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

#[test]
fn mutated_lab_files_never_panic_and_every_error_is_located() {
    for dir in lab_dirs() {
        let file = dir.join("lab.toml");
        let original = std::fs::read(&file).expect("lab.toml");
        let (accepted, refused) = (Cell::new(0), Cell::new(0));
        runner()
            .run(&mutations(), |m| {
                let bytes = apply(original.clone(), &m);
                match parse_lab_bytes(&file, &bytes, &[]) {
                    Ok(lab) => {
                        accepted.set(accepted.get() + 1);
                        shell_safe(&lab)
                    }
                    Err(e) => {
                        refused.set(refused.get() + 1);
                        located(&e, &file, &bytes)
                    }
                }
            })
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (accepted, refused) = (accepted.get(), refused.get());
        // The mutations do reach validation, not only the TOML parser.
        assert!(
            refused > CASES / 2,
            "{}: only {refused} refused",
            file.display()
        );
        assert!(accepted + refused >= CASES);
    }
}

#[test]
fn mutated_expect_files_never_panic_and_every_error_is_located() {
    let mut files = 0;
    for dir in lab_dirs() {
        let file = dir.join("expect.toml");
        let Ok(original) = std::fs::read(&file) else {
            continue;
        };
        files += 1;
        let lab = load_lab(&dir.join("lab.toml"), &[]).unwrap_or_else(|e| panic!("{e}"));
        let refused = Cell::new(0);
        runner()
            .run(&mutations(), |m| {
                let bytes = apply(original.clone(), &m);
                match Expectations::parse_bytes(&file, &bytes, &lab, "u-fuzz") {
                    Ok(e) => {
                        prop_assert!(e.hops.iter().all(|h| !h.fields.is_empty()));
                        Ok(())
                    }
                    Err(e) => {
                        refused.set(refused.get() + 1);
                        located(&e, &file, &bytes)
                    }
                }
            })
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let refused = refused.get();
        assert!(
            refused > CASES / 4,
            "{}: only {refused} refused",
            file.display()
        );
    }
    assert_eq!(files, 4);
}

#[test]
fn parameter_overrides_never_panic_and_refusals_point_at_the_declaration() {
    let file = labs_dir().join("tun/lab.toml");
    let value = prop_oneof![
        select(HOSTILE).prop_map(str::to_string),
        ".{0,16}",
        Just("ipip".to_string())
    ];
    runner()
        .run(&value, |v| {
            let r = load_lab(&file, &[("encap".to_string(), v.clone())]);
            match r {
                Ok(lab) => {
                    prop_assert!(v == "gre" || v == "ipip", "{:?} accepted", v);
                    shell_safe(&lab)
                }
                Err(e) => {
                    let bytes = std::fs::read(&file).expect("tun lab");
                    located(&e, &file, &bytes)
                }
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
