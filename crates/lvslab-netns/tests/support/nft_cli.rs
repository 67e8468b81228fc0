//! The `nft` program as an independent cross-check of lvslab's netlink nftables: run it
//! inside a test namespace, and bring its listings into the forms lvslab's listing and
//! renderer use. Shared by the crates' tests through `#[path]`.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use lvslab_netns::Netns;

/// Runs `nft ARGS` inside `ns` with `stdin`; panics with nft's stderr on failure.
pub fn nft(ns: &Netns, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(program());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ns.spawn(&mut cmd).unwrap_or_else(|e| {
        panic!("start nft {args:?}: {e} (the cross-check needs nftables installed)")
    });
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write nft's stdin");
    }
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft {args:?} failed ({}): {}\ninput:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        stdin.unwrap_or("")
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn program() -> String {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .iter()
        .find(|p| std::path::Path::new(p).is_file())
        .map_or_else(|| "nft".to_string(), |p| (*p).to_string())
}

/// `nft -f -` of `script` inside `ns`.
pub fn apply_text(ns: &Netns, script: &str) {
    nft(ns, &["-f", "-"], Some(script));
}

/// `nft -nyp list ruleset` (numeric priorities and protocols), without blank lines and
/// trailing white space: the form `lvslab_netns::nft::render::table` prints.
pub fn listed_text(ns: &Netns) -> String {
    normalise(&nft(ns, &["-nyp", "list", "ruleset"], None))
}

/// Text without blank lines and trailing white space, lines ending in `\n`.
pub fn normalise(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `nft --debug=netlink list ruleset` as lvslab listing lines: each rule as
/// `rule FAMILY TABLE CHAIN [ e ] [ e ] …`, each set's elements as
/// `elements FAMILY TABLE SET 0x… , 0x…` (sorted). Sorted, since nft and lvslab order
/// chains differently.
pub fn debug_listing(ns: &Netns) -> Vec<String> {
    let text = nft(ns, &["--debug=netlink", "list", "ruleset"], None);
    let mut out = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() || !line.starts_with([' ', '\t']) && !block.is_empty() {
            if let Some(entry) = block_entry(&block) {
                out.push(entry);
            }
            block.clear();
        }
        if !line.trim().is_empty() {
            block.push(line);
        }
    }
    out.sort();
    out
}

fn block_entry(block: &[&str]) -> Option<String> {
    let (head, body) = block.split_first()?;
    let words: Vec<&str> = head.split_whitespace().collect();
    match words.as_slice() {
        [family, table, set] if set.starts_with('@') => {
            let mut elements: Vec<String> = body
                .iter()
                .filter_map(|l| l.trim().strip_prefix("element "))
                .map(|e| {
                    e.split(':')
                        .next()
                        .unwrap_or("")
                        .split_whitespace()
                        .map(|w| format!("0x{w}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            elements.sort();
            Some(format!(
                "elements {family} {table} {} {}",
                &set[1..],
                elements.join(", ")
            ))
        }
        [family, table, chain, _handle, ..] if body.iter().all(|l| l.trim().starts_with('[')) => {
            let exprs: Vec<&str> = body.iter().map(|l| l.trim()).collect();
            Some(format!("rule {family} {table} {chain} {}", exprs.join(" ")))
        }
        // Table and chain lines of the text listing.
        _ => None,
    }
}

/// lvslab's listing in the same form as [`debug_listing`].
pub fn netlink_listing(listing: &lvslab_netns::nft::Listing) -> Vec<String> {
    let mut out = Vec::new();
    for t in &listing.tables {
        for c in &t.chains {
            for r in &c.rules {
                out.push(format!("rule {} {} {} {r}", t.family, t.name, c.name));
            }
        }
        for s in &t.sets {
            let mut elements = s.elements.clone();
            elements.sort();
            out.push(format!(
                "elements {} {} {} {}",
                t.family,
                t.name,
                s.name,
                elements.join(", ")
            ));
        }
    }
    out.sort();
    out
}
