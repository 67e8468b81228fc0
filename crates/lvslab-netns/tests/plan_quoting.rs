//! `lvslab plan` output stays inert whatever the names in it: hostile values are fed
//! through the renderer and the script is run by bash against stand-ins for `ip`,
//! `ethtool`, `sysctl` and `modprobe` that only record their arguments. Nothing may run,
//! and every value must reach its command as one word, unchanged. Needs bash, not root.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use lvslab_netns::nft::{self, BaseChain, Chain, Family, IfName, Match, Name, Rule, Statement};
use lvslab_netns::plan::{render_shell, render_shell_down, sh_quote, NsSpec, Plan, Step};
use lvslab_netns::MacAddr;
use lvslab_spec::model::Prefix;

const HOSTILE: [&str; 7] = [
    "e$(touch x)",
    "1;touch x",
    "a'b",
    "`touch x`",
    "x\ntouch x",
    "$HOME",
    "-n&&touch x|",
];

/// Runs `script` with the tools replaced by functions that append their arguments
/// (NUL-separated, each call ended by an ASCII record separator) to `calls`, in `dir`.
fn run_stubbed(dir: &Path, script: &str) -> Vec<Vec<String>> {
    let stubs = r#"
record() { printf '%s\0' "$@" >> calls; printf '\036' >> calls; }
ip() { record ip "$@"; if [ "$1 $2" = "netns exec" ]; then cat > "nft-input-$3"; fi; }
ethtool() { record ethtool "$@"; }
sysctl() { record sysctl "$@"; }
modprobe() { record modprobe "$@"; }
"#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{stubs}\n{script}"))
        .current_dir(dir)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "script failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read(dir.join("calls")).unwrap_or_default();
    log.split(|&b| b == 0x1e)
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .collect()
}

fn hostile_plan(value: &str) -> Plan {
    let prefix = Prefix {
        addr: "192.0.2.1".parse().expect("addr"),
        len: 24,
    };
    let mac = MacAddr::local_from_key("quoting");
    let oif = IfName::new("e$(touch_x)").expect("nft takes it, quoted");
    let rule = Rule::new(
        vec![Match::Oifname {
            name: oif,
            negate: false,
        }],
        Statement::Masquerade,
    )
    .expect("rule");
    let table = nft::Table::new(
        Family::Ip,
        Name::new("lvslab").expect("name"),
        vec![Chain::new(
            Name::new("postrouting").expect("name"),
            Some(BaseChain::srcnat()),
            vec![rule],
        )],
    )
    .expect("table");
    Plan {
        instance: value.to_string(),
        run: None,
        lab: value.to_string(),
        namespaces: vec![NsSpec {
            name: value.to_string(),
            is_switch: false,
        }],
        steps: vec![
            Step::Namespace {
                ns: value.to_string(),
            },
            Step::Veth {
                ns: value.to_string(),
                name: value.to_string(),
                mac,
                peer_ns: value.to_string(),
                peer_name: value.to_string(),
                peer_mac: mac,
                mtu: None,
            },
            Step::Sysctl {
                ns: value.to_string(),
                key: "net.ipv4.ip_forward".into(),
                value: value.to_string(),
            },
            Step::Address {
                ns: value.to_string(),
                iface: value.to_string(),
                prefix,
            },
            Step::Route {
                ns: value.to_string(),
                dest: None,
                via: None,
                dev: Some(value.to_string()),
            },
            Step::Nft {
                ns: value.to_string(),
                table,
            },
        ],
    }
}

/// A scratch directory, removed even when an assertion fails.
struct ScratchDir(std::path::PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn hostile_names_reach_their_commands_as_single_unchanged_words() {
    for value in HOSTILE {
        let dir = std::env::temp_dir().join(format!(
            "lvslab-plan-quoting-{}-{}",
            std::process::id(),
            HOSTILE.iter().position(|v| *v == value).unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let _cleanup = ScratchDir(dir.clone());
        let plan = hostile_plan(value);
        let script = format!("{}{}", render_shell(&plan), render_shell_down(&plan));
        let calls = run_stubbed(&dir, &script);
        assert!(
            !dir.join("x").exists(),
            "{value:?} ran a command:\n{script}"
        );
        let ns = plan.netns_name(value);
        let expect = |args: &[&str]| {
            let want: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            assert!(
                calls.contains(&want),
                "{value:?}: no call {want:?} in\n{calls:#?}\nscript:\n{script}"
            );
        };
        expect(&["ip", "netns", "add", &ns]);
        expect(&["ip", "-n", &ns, "addr", "add", "192.0.2.1/24", "dev", value]);
        expect(&["ip", "-n", &ns, "route", "add", "default", "dev", value]);
        expect(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-qw",
            &format!("net.ipv4.ip_forward={value}"),
        ]);
        expect(&["ip", "netns", "exec", &ns, "nft", "-f", "-"]);
        expect(&["ip", "netns", "del", &ns]);
        let nft_input = std::fs::read_to_string(dir.join(format!("nft-input-{ns}")))
            .expect("the nft step's here-document reached the command");
        assert!(
            nft_input.contains("oifname \"e$(touch_x)\" masquerade"),
            "{nft_input}"
        );
    }
}

#[test]
fn the_rendered_script_is_valid_bash_for_every_hostile_value() {
    for value in HOSTILE {
        let plan = hostile_plan(value);
        let script = format!("{}{}", render_shell(&plan), render_shell_down(&plan));
        let status = Command::new("bash")
            .args(["-n", "-c", &script])
            .status()
            .expect("run bash -n");
        assert!(status.success(), "{value:?}:\n{script}");
    }
}

#[test]
fn sh_quote_leaves_plain_words_and_quotes_the_rest() {
    assert_eq!(sh_quote("lvslab-nat-rs1"), "lvslab-nat-rs1");
    assert_eq!(sh_quote("192.168.80.0/24"), "192.168.80.0/24");
    assert_eq!(sh_quote("net.ipv4.ip_forward=1"), "net.ipv4.ip_forward=1");
    assert_eq!(sh_quote(""), "''");
    assert_eq!(sh_quote("a b"), "'a b'");
    assert_eq!(sh_quote("a'b"), "'a'\\''b'");
    assert_eq!(sh_quote("$(x)"), "'$(x)'");
    let words: BTreeSet<String> = HOSTILE.iter().map(|v| sh_quote(v)).collect();
    assert!(words.iter().all(|w| w.starts_with('\'')), "{words:?}");
}
