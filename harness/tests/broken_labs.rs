//! Deliberately broken labs (root): each starts from a shipped lab's file, read at test
//! time, makes one classic LVS mistake, runs the userspace dataplane trial and asserts
//! that the trial fails and that its failure names the mistake (the diagnosis's cause id
//! and node).
//!
//! Skips are decided at collection (not root, or the trial's own skip reason) and printed;
//! a skipped variant forced with `--ignored` fails.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use lvslab_harness::{TrialKind, TrialSpec};
use lvslab_spec::Dataplane;
use toml::{Table, Value};

/// One broken variant of a shipped lab.
struct Variant {
    /// Test name (and folder name).
    name: &'static str,
    /// Shipped lab it starts from.
    base: &'static str,
    /// What the mutation does, in words.
    what: &'static str,
    mutate: fn(&mut Table) -> Result<(), String>,
    /// The diagnosis the failure must carry.
    cause_id: &'static str,
    node: &'static str,
    /// The dataplane the broken lab runs on (kernel trials run in the VM where this
    /// kernel has no IPVS).
    dataplane: Dataplane,
}

fn variants() -> Vec<Variant> {
    vec![
        Variant {
            name: "dr-rs1-without-vip",
            base: "dr",
            what: "remove the VIP from rs1's lo",
            mutate: rs1_without_vip_on_lo,
            cause_id: "dr.rs-missing-vip",
            node: "rs1",
            dataplane: Dataplane::Userspace,
        },
        Variant {
            name: "dr-rs1-answers-arp",
            base: "dr",
            what: "arp_ignore 0 and arp_announce 0 on rs1 (all and lo), VIP still on lo",
            mutate: rs1_answers_arp_for_the_vip,
            cause_id: "dr.rs-answers-arp-for-vip",
            node: "rs1",
            dataplane: Dataplane::Userspace,
        },
        Variant {
            name: "kernel-dr-rs1-answers-arp",
            base: "dr",
            what: "arp_ignore 0 and arp_announce 0 on rs1 (all and lo), VIP still on lo",
            mutate: rs1_answers_arp_for_the_vip,
            cause_id: "dr.rs-answers-arp-for-vip",
            node: "rs1",
            dataplane: Dataplane::Kernel,
        },
        Variant {
            name: "dr-rs3-off-segment",
            base: "dr",
            what: "move rs3 off the lan80 switch onto its own link behind the firewall",
            mutate: rs3_off_the_director_segment,
            cause_id: "dr.rs-not-on-director-segment",
            node: "rs3",
            dataplane: Dataplane::Userspace,
        },
        Variant {
            name: "dr-dnat-to-director",
            base: "dr",
            what: "the firewall DNATs to the director's own address instead of the VIP",
            mutate: firewall_dnats_to_the_director,
            cause_id: "fw.dnat-not-vip",
            node: "firewall",
            dataplane: Dataplane::Userspace,
        },
        Variant {
            name: "nat-rs2-gateway-firewall",
            base: "nat",
            what: "rs2's default route goes via the firewall, not the director",
            mutate: rs2_gateway_is_the_firewall,
            cause_id: "nat.rs-gateway-not-director",
            node: "rs2",
            dataplane: Dataplane::Userspace,
        },
        Variant {
            name: "nat-firewall-no-forwarding",
            base: "nat",
            what: "ip_forward 0 on the firewall",
            mutate: firewall_does_not_forward,
            cause_id: "forwarding-off",
            node: "firewall",
            dataplane: Dataplane::Userspace,
        },
        Variant {
            name: "tun-rs1-rp-filter",
            base: "tun",
            what: "strict rp_filter on rs1 (all and tunl0)",
            mutate: rs1_strict_rp_filter,
            cause_id: "tun.rp-filter-drops-decapsulated",
            node: "rs1",
            dataplane: Dataplane::Userspace,
        },
        Variant {
            name: "tun-rs2-without-vip",
            base: "tun",
            what: "remove the VIP from rs2's tunl0",
            mutate: rs2_without_vip_on_tunl0,
            cause_id: "tun.rs-missing-vip",
            node: "rs2",
            dataplane: Dataplane::Userspace,
        },
        Variant {
            name: "tun-rs1-no-route-back",
            base: "tun",
            what: "rs1 loses its default route: replies to the client have nowhere to go",
            mutate: rs1_without_default_route,
            cause_id: "no-route-to-client",
            node: "rs1",
            dataplane: Dataplane::Userspace,
        },
    ]
}

/// The mistake of `dr-rs1-without-vip` (see its `what`).
fn rs1_without_vip_on_lo(t: &mut Table) -> Result<(), String> {
    interfaces(node(t, "rs1")?)?
        .remove("lo")
        .map(|_| ())
        .ok_or("rs1 has no lo addresses to remove".into())
}

/// The mistake of `dr-rs1-answers-arp` and `kernel-dr-rs1-answers-arp` (see their `what`).
fn rs1_answers_arp_for_the_vip(t: &mut Table) -> Result<(), String> {
    let n = node(t, "rs1")?;
    for k in ["all", "lo"] {
        set_sysctl(n, &format!("net.ipv4.conf.{k}.arp_ignore"), 0)?;
        set_sysctl(n, &format!("net.ipv4.conf.{k}.arp_announce"), 0)?;
    }
    Ok(())
}

/// The mistake of `dr-rs3-off-segment` (see its `what`).
fn rs3_off_the_director_segment(t: &mut Table) -> Result<(), String> {
    let ports = t
        .get_mut("switch")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.first_mut())
        .and_then(|s| s.get_mut("ports"))
        .and_then(Value::as_array_mut)
        .ok_or("dr has no switch ports")?;
    let before = ports.len();
    ports.retain(|p| p.as_str() != Some("rs3:eth0"));
    if ports.len() == before {
        return Err("rs3:eth0 is not on the switch".into());
    }
    interfaces(node(t, "firewall")?)?.insert(
        "eth2".into(),
        Value::Array(vec!["192.168.81.254/24".into()]),
    );
    let rs3 = node(t, "rs3")?;
    interfaces(rs3)?.insert("eth0".into(), Value::Array(vec!["192.168.81.13/24".into()]));
    rs3.insert("routes".into(), default_via("firewall:eth2"));
    let mut link = Table::new();
    link.insert(
        "ends".into(),
        Value::Array(vec!["rs3:eth0".into(), "firewall:eth2".into()]),
    );
    t.get_mut("link")
        .and_then(Value::as_array_mut)
        .ok_or("dr has no links")?
        .push(Value::Table(link));
    Ok(())
}

/// The mistake of `dr-dnat-to-director` (see its `what`).
fn firewall_dnats_to_the_director(t: &mut Table) -> Result<(), String> {
    let rule = node(t, "firewall")?
        .get_mut("nat")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.first_mut())
        .and_then(Value::as_table_mut)
        .ok_or("the firewall has no nat rule")?;
    rule.insert("to".into(), "director:eth0".into());
    Ok(())
}

/// The mistake of `nat-rs2-gateway-firewall` (see its `what`).
fn rs2_gateway_is_the_firewall(t: &mut Table) -> Result<(), String> {
    node(t, "rs2")?.insert("routes".into(), default_via("firewall:eth1"));
    Ok(())
}

/// The mistake of `nat-firewall-no-forwarding` (see its `what`).
fn firewall_does_not_forward(t: &mut Table) -> Result<(), String> {
    set_sysctl(node(t, "firewall")?, "net.ipv4.ip_forward", 0)
}

/// The mistake of `tun-rs1-rp-filter` (see its `what`).
fn rs1_strict_rp_filter(t: &mut Table) -> Result<(), String> {
    let n = node(t, "rs1")?;
    set_sysctl(n, "net.ipv4.conf.all.rp_filter", 1)?;
    set_sysctl(n, "net.ipv4.conf.tunl0.rp_filter", 1)
}

/// The mistake of `tun-rs2-without-vip` (see its `what`).
fn rs2_without_vip_on_tunl0(t: &mut Table) -> Result<(), String> {
    interfaces(node(t, "rs2")?)?
        .remove("tunl0")
        .map(|_| ())
        .ok_or("rs2 has no tunl0 addresses to remove".into())
}

/// The mistake of `tun-rs1-no-route-back` (see its `what`).
fn rs1_without_default_route(t: &mut Table) -> Result<(), String> {
    node(t, "rs1")?
        .remove("routes")
        .map(|_| ())
        .ok_or("rs1 has no routes to remove".into())
}

fn node<'a>(t: &'a mut Table, name: &str) -> Result<&'a mut Table, String> {
    t.get_mut("node")
        .and_then(Value::as_array_mut)
        .and_then(|nodes| {
            nodes
                .iter_mut()
                .filter_map(Value::as_table_mut)
                .find(|n| n.get("name").and_then(Value::as_str) == Some(name))
        })
        .ok_or_else(|| format!("the lab has no node {name}"))
}

fn interfaces(n: &mut Table) -> Result<&mut Table, String> {
    n.get_mut("interfaces")
        .and_then(Value::as_table_mut)
        .ok_or_else(|| "node has no interfaces".into())
}

fn set_sysctl(n: &mut Table, key: &str, value: i64) -> Result<(), String> {
    n.entry("sysctls")
        .or_insert_with(|| Value::Table(Table::new()))
        .as_table_mut()
        .ok_or("sysctls is not a table")?
        .insert(key.into(), Value::Integer(value));
    Ok(())
}

fn default_via(gateway: &str) -> Value {
    let mut r = Table::new();
    r.insert("to".into(), "default".into());
    r.insert("via".into(), gateway.into());
    Value::Array(vec![Value::Table(r)])
}

/// Writes the mutated lab to `dir/<variant>/lab.toml` (`dir` holds nothing else) and
/// returns its userspace dataplane trial as the harness collects it, with its skip reason.
/// The lab is renamed to `lab_name`, so variants of one lab keep their captures apart.
fn prepare(v: &Variant, lab_name: &str, labs: &Path, dir: &Path) -> Result<TrialSpec, String> {
    let shipped = labs.join(v.base).join("lab.toml");
    let text = std::fs::read_to_string(&shipped)
        .map_err(|e| format!("read {}: {e}", shipped.display()))?;
    let mut table: Table = text
        .parse()
        .map_err(|e| format!("parse {}: {e}", shipped.display()))?;
    (v.mutate)(&mut table).map_err(|e| format!("mutate {}: {e}", v.base))?;
    table
        .get_mut("lab")
        .and_then(Value::as_table_mut)
        .ok_or_else(|| format!("{} has no [lab]", shipped.display()))?
        .insert("name".into(), lab_name.into());
    let folder = dir.join(v.name);
    std::fs::create_dir_all(&folder).map_err(|e| format!("create {}: {e}", folder.display()))?;
    let text = format!(
        "# {} — broken on purpose: {}\n{}",
        v.base,
        v.what,
        toml::to_string(&table).map_err(|e| format!("write the lab: {e}"))?
    );
    let file = folder.join("lab.toml");
    std::fs::write(&file, text).map_err(|e| format!("write {}: {e}", file.display()))?;
    lvslab_harness::collect(dir)
        .into_iter()
        .find(|s| s.params.is_empty() && s.kind == TrialKind::Dataplane(v.dataplane))
        .ok_or_else(|| match lvslab_spec::load_lab(&file, &[]) {
            Err(e) => format!("the mutated lab does not load: {e}"),
            Ok(_) => format!("no {} trial collected for {}", v.dataplane, file.display()),
        })
}

fn check(v: &Variant, spec: &TrialSpec) -> Result<(), Failed> {
    if let Some(why) = &spec.skip {
        return Err(format!("this variant cannot run here: {why}").into());
    }
    // In the VM, this same test binary runs just this variant.
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let test_name = format!("broken::{}", v.name);
    let out = lvslab_harness::run_trial(spec, &|_| {
        vec![
            exe.clone(),
            "--exact".into(),
            test_name.clone(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ]
    });
    for l in &out.log {
        println!("  {l}");
    }
    if out.passed() {
        return Err(format!(
            "{}: the trial passed although the lab is broken ({})",
            v.name, v.what
        )
        .into());
    }
    let causes: Vec<String> = out
        .diagnosis
        .iter()
        .map(|d| format!("{} on {}", d.cause_id, d.node))
        .collect();
    // The expected cause must lead: nothing else is broken in the variant.
    match out.diagnosis.first() {
        Some(d) if d.cause_id == v.cause_id && d.node == v.node => Ok(()),
        _ => Err(format!(
            "{}: the first likely cause is not `{}` on {} but {causes:?}; failures:\n{}",
            v.name,
            v.cause_id,
            v.node,
            out.failure_text()
        )
        .into()),
    }
}

fn main() {
    let args = Arguments::from_args();
    let labs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../labs");
    let root = nix::unistd::geteuid().is_root();
    let dir = std::env::temp_dir().join(format!("lvslab-broken-{}", std::process::id()));
    // Captures of broken labs are evidence for this run only (in the VM, the host chose
    // the folder and shares it).
    if std::env::var_os(lvslab_harness::packets::CAPTURE_DIR_ENV).is_none() {
        lvslab_harness::packets::set_capture_root(dir.join("captures"));
    }
    let mut trials = Vec::new();
    for (i, v) in variants().into_iter().enumerate() {
        let name = format!("broken::{}", v.name);
        if !root {
            eprintln!("skipping {name}: needs root (network namespaces): run the tests with sudo");
            trials.push(
                Trial::test(name, || {
                    Err("this variant needs root (network namespaces)".into())
                })
                .with_ignored_flag(true),
            );
            continue;
        }
        // Each variant gets its own labs folder, so collection sees only it.
        match prepare(&v, &format!("b{i}-{}", v.base), &labs, &dir.join(v.name)) {
            Ok(spec) => {
                if let Some(why) = &spec.skip {
                    eprintln!("skipping {name}: {why}");
                }
                let ignored = spec.skip.is_some();
                trials.push(Trial::test(name, move || check(&v, &spec)).with_ignored_flag(ignored));
            }
            // A variant that cannot be built from the shipped lab is a failure.
            Err(e) => trials.push(Trial::test(name, move || Err(e.into()))),
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    let _ = std::fs::remove_dir_all(&dir);
    conclusion.exit();
}
