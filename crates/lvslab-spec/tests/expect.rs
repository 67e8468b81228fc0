//! `expect.toml`: parsed and resolved against the lab with the same `file:line:col` errors
//! as `lab.toml`; unknown fields and unresolvable references are refused at their place.

use std::path::{Path, PathBuf};

use lvslab_spec::expect::{Expectations, HeaderField, EXPECT_FILE};
use lvslab_spec::model::Lab;
use lvslab_spec::{lab_path, load_lab, Direction, MacAddr, SpecErrors};

fn labs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs")
}

fn lab(name: &str) -> Lab {
    load_lab(&lab_path(&labs_dir(), name), &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn file() -> &'static Path {
    Path::new("labs/nat/expect.toml")
}

fn refused(lab: &Lab, text: &str) -> SpecErrors {
    match Expectations::parse(file(), text, lab, "u-nat") {
        Ok(e) => panic!("expected {text:?} to be refused, got {e:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_shipped_expect_file_resolves_for_every_parameter_value() {
    let mut resolved = 0;
    for entry in std::fs::read_dir(labs_dir()).expect("labs/") {
        let dir = entry.expect("entry").path();
        let expect = dir.join(EXPECT_FILE);
        if !expect.is_file() {
            continue;
        }
        for params in [vec![], vec![("encap".to_string(), "ipip".to_string())]] {
            let Ok(lab) = load_lab(&dir.join("lab.toml"), &params) else {
                continue; // a lab without that parameter
            };
            assert_eq!(Expectations::path_for(&lab), expect);
            let e = Expectations::load(&expect, &lab, "u-x")
                .unwrap_or_else(|e| panic!("{e}"))
                .expect("the file exists");
            assert!(!e.hops.is_empty() && e.hops.iter().all(|h| !h.fields.is_empty()));
            resolved += 1;
        }
    }
    assert_eq!(resolved, 5, "nat, dr, fullnat, tun with gre and with ipip");
}

#[test]
fn references_resolve_to_the_labs_values() {
    let nat = lab("nat");
    let text = "[[hop]]\npoint = \"rs*:eth0\"\ndirection = \"request\"\nipv4.src = \"client:eth0\"\ntcp.dport = \"rport\"\neth.dst = [\"firewall:eth1\", \"rs1:eth0\"]\n";
    let e = Expectations::parse(file(), text, &nat, "u-nat").expect("valid");
    let hop = &e.hops[0];
    assert_eq!(
        (hop.point.as_str(), hop.direction, hop.line),
        ("rs*:eth0", Some(Direction::Request), 2)
    );
    let fields: Vec<HeaderField> = hop.fields.iter().map(|f| f.field).collect();
    assert_eq!(
        fields,
        [
            HeaderField::EthDst,
            HeaderField::Ipv4Src,
            HeaderField::TcpDport
        ]
    );
    let mut macs = vec![
        MacAddr::of_interface("u-nat", "firewall", "eth1").to_string(),
        MacAddr::of_interface("u-nat", "rs1", "eth0").to_string(),
    ];
    macs.sort();
    assert_eq!(hop.fields[0].allowed, macs);
    assert_eq!(hop.fields[0].label, "firewall:eth1 or rs1:eth0");
    assert_eq!(hop.fields[1].allowed, ["192.168.10.1"]);
    // rport: each real server's own port, at its own points only.
    assert!(hop.fields[2].allowed.is_empty());
    assert_eq!(hop.fields[2].allowed_at("rs2"), ["8080"]);
    assert!(hop.fields[2].allowed_at("client").is_empty());
    // The same reference in another instance is another MAC.
    let other = Expectations::parse(file(), text, &nat, "k-nat").expect("valid");
    assert_ne!(other.hops[0].fields[0].allowed, macs);
}

#[test]
fn unknown_fields_are_refused_at_their_place() {
    let nat = lab("nat");
    let e = refused(&nat, "[[hop]]\npoint = \"rs1:eth0\"\nipv4.srcx = \"vip\"\n");
    assert_eq!(e.0.len(), 1);
    let text = e.to_string();
    assert!(
        text.starts_with(
            "error: labs/nat/expect.toml:3:6: unknown field `srcx`, expected `src` or `dst`"
        ),
        "{text}"
    );
    assert!(
        text.contains("help: a [[hop]] takes point, direction, note"),
        "{text}"
    );

    let e = refused(
        &nat,
        "[[hop]]\npoint = \"rs1:eth0\"\nipv4.src = \"vip\"\n\n[extra]\nx = 1\n",
    );
    assert_eq!((e.0[0].line, e.0[0].col), (5, 2), "{e}");
    assert!(
        e.0[0]
            .message
            .contains("unknown field `extra`, expected `hop`"),
        "{e}"
    );

    let e = refused(
        &nat,
        "[[hop]]\npoint = \"rs1:eth0\"\ncolour = \"red\"\nipv4.src = \"vip\"\n",
    );
    assert_eq!(e.0[0].line, 3, "{e}");
    assert!(e.0[0].message.contains("unknown field `colour`"), "{e}");

    let e = refused(
        &nat,
        "[[hop]]\npoint = \"rs1:eth0\"\ndirection = \"sideways\"\nipv4.src = \"vip\"\n",
    );
    assert_eq!((e.0[0].line, e.0[0].col), (3, 13), "{e}");
    assert!(
        e.0[0]
            .message
            .contains("unknown variant `sideways`, expected `request` or `reply`"),
        "{e}"
    );
}

#[test]
fn unresolvable_references_are_named() {
    let nat = lab("nat");
    let e = refused(
        &nat,
        "[[hop]]\npoint = \"rs1:eth0\"\n\nipv4.src = \"nosuch:eth0\"\n",
    );
    assert_eq!(
        e.to_string(),
        "error: labs/nat/expect.toml:4:12: hop[0].ipv4.src: ipv4.src: `nosuch:eth0`: no node named nosuch\n    \
         help: an address reference is `node:iface`, `vip` or `local`"
    );
    let e = refused(
        &nat,
        "[[hop]]\npoint = \"rs1:eth0\"\neth.src = \"rs1:eth7\"\n",
    );
    assert!(
        e.to_string()
            .contains("hop[0].eth.src: eth.src: `rs1:eth7`: rs1 has no interface eth7"),
        "{e}"
    );
    let e = refused(&nat, "[[hop]]\npoint = \"rs1:eth0\"\ntcp.sport = \"vip\"\n");
    assert!(
        e.to_string().contains("unknown port reference `vip`"),
        "{e}"
    );
    let e = refused(
        &nat,
        "[[hop]]\npoint = \"rs1:eth0\"\nipv4.src = \"local\"\n",
    );
    assert!(
        e.to_string()
            .contains("`local`: the service has no local_addresses"),
        "{e}"
    );
    let e = refused(
        &nat,
        "[[hop]]\npoint = \"client:eth0\"\ntcp.dport = \"rport\"\n",
    );
    assert!(
        e.to_string()
            .contains("`rport`: client:eth0 is not on a real server"),
        "{e}"
    );
    // Literal values are not references.
    let e = refused(
        &nat,
        "[[hop]]\npoint = \"rs1:eth0\"\nipv4.src = \"192.168.10.1\"\n",
    );
    assert!(
        e.to_string()
            .contains("ipv4.src: unknown reference `192.168.10.1`"),
        "{e}"
    );
    let e = refused(&nat, "[[hop]]\npoint = \"rs1:eth0\"\nipv4.src = 7\n");
    assert!(
        e.to_string()
            .contains("expected a reference or a list of them, found 7"),
        "{e}"
    );
    let e = refused(&nat, "[[hop]]\npoint = \"rs9:*\"\nipv4.src = \"vip\"\n");
    assert_eq!(
        (e.0[0].line, e.0[0].col, e.0[0].path.as_str()),
        (2, 9, "hop[0].point")
    );
    assert!(
        e.0[0]
            .help
            .as_deref()
            .is_some_and(|h| h.starts_with("capture points: client:eth0")),
        "{e}"
    );
    let e = refused(&nat, "[[hop]]\npoint = \"rs1:eth0\"\n");
    assert!(
        e.to_string().contains("hop[0]: the hop expects no field"),
        "{e}"
    );
}

#[test]
fn hostile_references_are_shown_escaped() {
    let nat = lab("nat");
    let e = refused(
        &nat,
        "[[hop]]\npoint = \"rs1:eth0\"\nipv4.src = \"x\\n$(id):e\"\n",
    );
    let text = e.to_string();
    assert!(
        text.contains("`x\\n$(id):e`: no node named x\\n$(id)"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[test]
fn decap_names_the_labs_decapsulation_device_until_a_run_picks_the_receiving_one() {
    let tun = lab("tun");
    let text = "[[hop]]\npoint = \"rs*:decap\"\nipv4.dst = \"vip\"\n";
    let mut e = Expectations::parse(Path::new("labs/tun/expect.toml"), text, &tun, "u-tun")
        .expect("rs*:decap resolves against tunl0");
    assert_eq!(e.hops[0].point, "rs*:decap");
    e.receive_decap_on("gre0");
    assert_eq!(e.hops[0].point, "rs*:gre0");
    // A lab without a decapsulation device has no `decap` point.
    let e = refused(&lab("nat"), text);
    assert!(
        e.to_string()
            .contains("`rs*:decap` matches no capture point of lab nat"),
        "{e}"
    );
}

#[test]
fn invalid_utf8_and_missing_files() {
    let nat = lab("nat");
    let e = Expectations::parse_bytes(file(), b"[[hop]]\npoint = \"rs1:\xc3(\"\n", &nat, "u-nat")
        .expect_err("not UTF-8");
    assert_eq!((e.0[0].line, e.0[0].col), (2, 14), "{e}");
    assert!(e.0[0].message.contains("not UTF-8"), "{e}");
    let none = Expectations::load(Path::new("/nonexistent/expect.toml"), &nat, "u-nat");
    assert_eq!(none, Ok(None));
}
