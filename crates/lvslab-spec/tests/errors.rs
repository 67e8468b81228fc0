//! Validation errors name the file, line, column, field path and what would be valid.
//! Each case is a small lab with one mistake; the whole rendered message is compared.

use std::path::Path;

use lvslab_spec::parse_lab;

const BASE: &str = r#"[lab]
name = "t"
title = "t"
mode = "nat"

[[node]]
name = "a"
role = "client"
interfaces = { eth0 = ["10.0.0.1/24"] }

[[node]]
name = "b"
role = "director"
interfaces = { eth0 = ["10.0.0.2/24"] }

[[link]]
ends = ["a:eth0", "b:eth0"]
"#;

fn errors(text: &str) -> String {
    match parse_lab(Path::new("labs/t/lab.toml"), text, &[]) {
        Ok(_) => panic!("expected the lab to be rejected:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn base_lab_is_valid() {
    parse_lab(Path::new("labs/t/lab.toml"), BASE, &[]).expect("base lab is valid");
}

#[test]
fn unknown_field_is_rejected_at_its_place() {
    let text = BASE.replace("role = \"client\"", "role = \"client\"\ncolour = \"red\"");
    let e = errors(&text);
    assert!(
        e.starts_with("error: labs/t/lab.toml:9:1: unknown field `colour`, expected one of"),
        "{e}"
    );
    assert!(
        e.contains("help: remove the field or fix its spelling"),
        "{e}"
    );
}

#[test]
fn unknown_node_in_a_link() {
    let e = errors(&BASE.replace("\"b:eth0\"]", "\"c:eth0\"]"));
    assert_eq!(
        e,
        "error: labs/t/lab.toml:14:16: node[1].interfaces.eth0: node `b` has no interface `eth0`\n    \
         help: an interface exists when it is a link end or switch port (`node:iface`), a [[tunnel]], the node's decap device, or `lo`\n\
         error: labs/t/lab.toml:17:19: link[0].ends[1]: unknown node `c`\n    help: nodes in this lab: a, b"
    );
}

#[test]
fn interface_name_longer_than_fifteen_bytes() {
    let e = errors(&BASE.replace("a:eth0", "a:averyveryverylong0").replace(
        "interfaces = { eth0 = [\"10.0.0.1/24\"] }",
        "interfaces = { averyveryverylong0 = [\"10.0.0.1/24\"] }",
    ));
    assert!(e.contains("link[0].ends[0]: interface name `averyveryverylong0` is 18 bytes; the kernel allows at most 15"), "{e}");
    assert!(e.contains("node[0].interfaces.averyveryverylong0: interface name `averyveryverylong0` is 18 bytes"), "{e}");
}

#[test]
fn duplicate_node_names() {
    let e = errors(
        &BASE
            .replace("name = \"b\"", "name = \"a\"")
            .replace("\"b:eth0\"", "\"a:eth1\""),
    );
    assert!(e.contains("labs/t/lab.toml:12:8: node[1].name: node `a` is declared twice\n    help: give each node a unique name"), "{e}");
}

#[test]
fn malformed_prefix() {
    let e = errors(&BASE.replace("10.0.0.1/24", "10.0.0.1/33"));
    assert!(e.contains("labs/t/lab.toml:9:24: node[0].interfaces.eth0[0]: prefix length 33 is larger than 32\n    help: write an address with its prefix length, e.g. `192.168.80.11/24`"), "{e}");
    let e = errors(&BASE.replace("10.0.0.1/24", "10.0.0.1"));
    assert!(
        e.contains("`10.0.0.1` has no prefix length (write e.g. `10.0.0.1/24`)"),
        "{e}"
    );
}

#[test]
fn overlapping_prefixes_on_one_node() {
    let text = BASE
        .replace(
            "[[link]]",
            "[[link]]\nends = [\"a:eth1\", \"b:eth1\"]\n\n[[link]]",
        )
        .replace(
            "interfaces = { eth0 = [\"10.0.0.1/24\"] }",
            "interfaces = { eth0 = [\"10.0.0.1/24\"], eth1 = [\"10.0.0.129/25\"] }",
        )
        .replace(
            "interfaces = { eth0 = [\"10.0.0.2/24\"] }",
            "interfaces = { eth0 = [\"10.0.0.2/24\"], eth1 = [\"10.1.0.2/24\"] }",
        );
    let e = errors(&text);
    assert!(
        e.contains("node[0].interfaces.eth1: 10.0.0.129/25 overlaps 10.0.0.1/24 on a:eth0"),
        "{e}"
    );
}

#[test]
fn same_address_on_two_nodes() {
    let e = errors(&BASE.replace("10.0.0.2/24", "10.0.0.1/24"));
    assert!(
        e.contains("node[1].interfaces: 10.0.0.1 is also on node `a`"),
        "{e}"
    );
}

#[test]
fn sysctl_outside_the_namespace_is_refused() {
    let e = errors(&BASE.replace(
        "role = \"client\"",
        "role = \"client\"\nsysctls = { \"kernel.panic\" = 1 }",
    ));
    assert!(e.contains("node[0].sysctls.\"kernel.panic\": `kernel.panic` is not a per-namespace network sysctl"), "{e}");
    let e = errors(&BASE.replace(
        "role = \"client\"",
        "role = \"client\"\nsysctls = { \"net.ipv4.conf.eth7.rp_filter\" = 0 }",
    ));
    assert!(e.contains("node `a` has no interface `eth7`"), "{e}");
}

#[test]
fn service_errors_name_what_is_valid() {
    let text = format!(
        "{BASE}\n[[service]]\ndirector = \"a\"\nvip = \"b:eth0\"\nprotocol = \"tcp\"\nport = 80\nscheduler = \"fastest\"\nreal_server = [{{ address = \"a:eth0\", port = 8080, method = \"dr\" }}]\n"
    );
    let e = errors(&text);
    assert!(
        e.contains("service[0].director: node `a` has role Client, not director"),
        "{e}"
    );
    assert!(
        e.contains("service[0].scheduler: unknown scheduler `fastest`: expected one of rr, wrr"),
        "{e}"
    );
    assert!(e.contains("service[0].real_server[0].port: dr cannot map ports: port 8080 differs from the service port 80\n    help: set port = 80"), "{e}");
}

#[test]
fn undeclared_parameter() {
    let e = errors(&BASE.replace("mode = \"nat\"", "mode = \"${mode}\""));
    assert!(
        e.contains("labs/t/lab.toml:4:9: `${mode}` names no declared parameter"),
        "{e}"
    );
}

#[test]
fn unreadable_file_names_the_way_out() {
    let e =
        lvslab_spec::load_lab(Path::new("/nonexistent/lab.toml"), &[]).expect_err("missing file");
    assert!(
        e.to_string().contains("cannot read the lab file")
            && e.to_string().contains("help: give a lab name")
    );
}

#[test]
fn capture_points_name_existing_interfaces() {
    let ok = format!("{BASE}\n[capture]\npoints = [\"a:eth0\", \"b:*\"]\n");
    let lab = parse_lab(Path::new("labs/t/lab.toml"), &ok, &[]).expect("valid capture points");
    let points: Vec<String> = lab
        .capture_points
        .unwrap_or_default()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(points, ["a:eth0", "b:*"]);
    let e = errors(&format!(
        "{BASE}\n[capture]\npoints = [\"a:eth9\", \"c:eth0\"]\n"
    ));
    assert!(
        e.contains("capture.points[0]: node `a` has no interface `eth9`"),
        "{e}"
    );
    assert!(e.contains("capture.points[1]: unknown node `c`"), "{e}");
}
