//! Every string of a lab file that becomes a kernel object name, a sysctl, a command
//! argument or a file name is checked as the kernel would check it, in a plain character
//! set; hostile values are refused at their place, with the field and the fix.

use std::path::Path;

use lvslab_spec::{parse_lab, parse_lab_bytes, SpecErrors};

const BASE: &str = r#"[lab]
name = "t"
title = "t"
mode = "tun"

[params.encap]
default = "gre"
allowed = ["gre", "ipip"]

[[node]]
name = "a"
role = "client"
interfaces = { eth0 = ["10.0.0.1/24"] }
sysctls = { "net.ipv4.ip_forward" = 0 }

[[node]]
name = "b"
role = "real-server"
interfaces = { eth0 = ["10.0.0.2/24"], tunl0 = ["10.9.9.9/32"] }
decap = { encap = "${encap}", device = "tunl0" }
servers = [{ kind = "http", port = 80 }]

[[link]]
ends = ["a:eth0", "b:eth0"]
"#;

fn file() -> &'static Path {
    Path::new("labs/t/lab.toml")
}

fn errors_of(text: &str, overrides: &[(&str, &str)]) -> SpecErrors {
    let o: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match parse_lab(file(), text, &o) {
        Ok(_) => panic!("expected the lab to be rejected:\n{text}"),
        Err(e) => e,
    }
}

/// The one error of a lab with one mistake, as `lvslab check` prints it.
fn only_error(text: &str) -> String {
    let e = errors_of(text, &[]);
    assert_eq!(e.0.len(), 1, "expected one error:\n{e}");
    e.to_string()
}

#[test]
fn base_lab_is_valid() {
    let lab = parse_lab(file(), BASE, &[]).expect("base lab is valid");
    assert_eq!(
        lab.nodes[0].sysctls,
        [("net.ipv4.ip_forward".to_string(), "0".to_string())]
    );
}

#[test]
fn an_interface_with_shell_syntax_is_refused_where_it_is_written() {
    let text = BASE.replace("\"a:eth0\"", "\"a:e$(touch x)\"").replace(
        "interfaces = { eth0 = [\"10.0.0.1/24\"] }",
        "interfaces = { \"e$(touch x)\" = [\"10.0.0.1/24\"] }",
    );
    let e = errors_of(&text, &[]).to_string();
    assert!(e.contains("labs/t/lab.toml:13:16: node[0].interfaces.e$(touch x): interface name `e$(touch x)` contains ` `, which the kernel rejects"), "{e}");
    assert!(
        e.contains(
            "labs/t/lab.toml:24:9: link[0].ends[0]: interface name `e$(touch x)` contains ` `"
        ),
        "{e}"
    );
    assert!(
        e.contains("help: an interface name is 1 to 15 letters, digits, `_`, `.` or `-`"),
        "{e}"
    );
    let e = only_error(
        &BASE
            .replace("\"a:eth0\"", "\"a:e$(id)\"")
            .replace("{ eth0 = [\"10.0.0.1/24\"] }", "{}"),
    );
    assert!(e.starts_with("error: labs/t/lab.toml:24:9: link[0].ends[0]: interface name `e$(id)` contains `$`; interface names reach commands and file names"), "{e}");
}

#[test]
fn a_sysctl_value_with_shell_syntax_is_refused() {
    let e = only_error(&BASE.replace(
        "\"net.ipv4.ip_forward\" = 0",
        "\"net.ipv4.ip_forward\" = \"1;touch x\"",
    ));
    assert_eq!(
        e,
        "error: labs/t/lab.toml:14:37: node[0].sysctls.\"net.ipv4.ip_forward\": `ip_forward` takes 0 or 1, not \"1;touch x\" (`1;touch` is not a decimal integer)\n    \
         help: 0: the node does not route, 1: it forwards between its interfaces"
    );
}

#[test]
fn rp_filter_beyond_32_bits_is_refused_at_check_time() {
    let e = only_error(&BASE.replace(
        "\"net.ipv4.ip_forward\" = 0",
        "\"net.ipv4.conf.eth0.rp_filter\" = 4294967296",
    ));
    assert_eq!(
        e,
        "error: labs/t/lab.toml:14:46: node[0].sysctls.\"net.ipv4.conf.eth0.rp_filter\": `rp_filter` takes 0, 1 or 2, not 4294967296 (beyond 32 bits)\n    \
         help: 0: no source validation, 1: strict (RFC 3704), 2: loose"
    );
}

#[test]
fn sysctl_keys_are_plain_and_name_the_nodes_interfaces() {
    let with = |k: &str, v: &str| {
        only_error(&BASE.replace("\"net.ipv4.ip_forward\" = 0", &format!("\"{k}\" = {v}")))
    };
    let e = with("net.ipv4.conf.$(reboot).rp_filter", "0");
    assert!(e.contains("14:13: node[0].sysctls.\"net.ipv4.conf.$(reboot).rp_filter\": `net.ipv4.conf.$(reboot).rp_filter` is not a sysctl name: `$(reboot)` is not a plain component"), "{e}");
    let e = with("net.ipv4.conf.tunl0.rp_filter", "0");
    assert!(e.contains("node `a` has no interface `tunl0`"), "{e}");
    assert!(
        e.contains(
            "help: per-interface sysctls name `all`, `default` or one of the node's interfaces"
        ),
        "{e}"
    );
    let e = with("net.ipv4.conf.eth0.99.rp_filter", "0");
    assert!(
        e.contains("has more components than `net.ipv4.conf.<interface>.<setting>`"),
        "{e}"
    );
    let e = with("net.ipv4.ip_forward", "true");
    assert!(e.contains("`ip_forward` takes 0 or 1, not true"), "{e}");
    let e = with("net.core.somaxconn", "\"4096 \"");
    assert!(
        e.contains("separate numbers by single spaces or tabs"),
        "{e}"
    );
    let e = with("net.ipv4.ip_local_port_range", "\"60999 32768\"");
    assert!(e.contains("`ip_local_port_range` takes two integers from 1 to 65535 separated by a space, the first not above the second"), "{e}");
    with("net.ipv4.conf.lo.arp_ignore", "9");
}

#[test]
fn route_dev_and_nat_out_are_interface_names() {
    let text = BASE.replace(
        "sysctls = { \"net.ipv4.ip_forward\" = 0 }",
        "routes = [{ to = \"default\", dev = \"eth0;reboot\" }]\nnat = [{ kind = \"masquerade\", out = \"-eth0\" }]",
    );
    let e = errors_of(&text, &[]).to_string();
    assert!(e.contains("labs/t/lab.toml:14:35: node[0].routes[0].dev: interface name `eth0;reboot` contains `;`"), "{e}");
    assert!(e.contains("labs/t/lab.toml:15:37: node[0].nat[0].out: interface name `-eth0` starts with `-`, which commands read as an option"), "{e}");
}

#[test]
fn tunnels_and_decapsulation_devices_use_names_the_kernel_can_create() {
    let tunnel = |name: &str| {
        format!("{BASE}\n[[tunnel]]\nnode = \"a\"\nname = \"{name}\"\nkind = \"gre\"\nlocal = \"a:eth0\"\nremote = \"b:eth0\"\n")
    };
    parse_lab(file(), &tunnel("tun1"), &[]).expect("tun1 is a fine tunnel name");
    let e = only_error(&tunnel("gre0"));
    assert!(e.contains("labs/t/lab.toml:28:8: tunnel[0].name: `gre0` is a device the kernel creates itself in every namespace"), "{e}");
    let e = only_error(&tunnel("a/../b"));
    assert!(
        e.contains(
            "tunnel[0].name: interface name `a/../b` contains `/`, which the kernel rejects"
        ),
        "{e}"
    );
    let e = only_error(
        &BASE
            .replace("device = \"tunl0\"", "device = \"decap0\"")
            .replace("tunl0 = [", "decap0 = ["),
    );
    assert!(e.contains("labs/t/lab.toml:20:40: node[1].decap.device: the decapsulation device is the kernel's `tunl0`, not `decap0`"), "{e}");
    assert!(e.contains("help: set device = \"tunl0\""), "{e}");
}

#[test]
fn node_switch_and_lab_names_are_plain() {
    let e = only_error(&BASE.replace("name = \"t\"", "name = \"t;id\""));
    assert!(
        e.contains("labs/t/lab.toml:2:8: lab.name: `t;id` is not a valid lab name"),
        "{e}"
    );
    let e = errors_of(
        &BASE
            .replace("name = \"a\"", "name = \"a b\"")
            .replace("\"a:eth0\"", "\"a b:eth0\""),
        &[],
    )
    .to_string();
    assert!(e.contains("labs/t/lab.toml:11:8: node[0].name: `a b` is not a valid node name\n    help: use lowercase letters, digits and `-`, starting with a letter, at most 10 bytes"), "{e}");
    let e = errors_of(
        &format!("{BASE}\n[[switch]]\nname = \"s\\n1\"\nports = []\n"),
        &[],
    )
    .to_string();
    assert!(
        e.contains("switch[0].name: `s\\n1` is not a valid switch name"),
        "{e}"
    );
}

#[test]
fn parameter_values_are_plain_words_wherever_they_come_from() {
    let e = only_error(&BASE.replace(
        "[\"gre\", \"ipip\"]",
        "[\"gre\", \"ipip\\\" evil = \\\"x\"]",
    ));
    assert!(e.contains("labs/t/lab.toml:8:19: params.encap.allowed[1]: `ipip\\\" evil = \\\"x` is not a valid parameter value"), "{e}");
    let e = only_error(&BASE.replace("[\"gre\", \"ipip\"]", "[\"gre\", \"../../x\"]"));
    assert!(
        e.contains("params.encap.allowed[1]: `../../x` is not a valid parameter value"),
        "{e}"
    );
    let e = only_error(&BASE.replace("[params.encap]", "[params.\"en cap\"]"));
    assert!(
        e.contains("labs/t/lab.toml:6:9: params.en cap: `en cap` is not a valid parameter name"),
        "{e}"
    );
    // An override that is not allowed points at the parameter's declaration.
    let e = errors_of(BASE, &[("encap", "1;touch x")]).to_string();
    assert_eq!(e, "error: labs/t/lab.toml:6:9: --param encap: `1;touch x` is not an allowed value\n    help: allowed: gre, ipip");
    // One that names no parameter has no place in the file; the message names the file.
    let e = errors_of(BASE, &[("mode", "dr")]).to_string();
    assert_eq!(e, "error: labs/t/lab.toml: --param mode: this lab has no parameter `mode`\n    help: parameters: encap");
}

#[test]
fn numbers_that_fail_at_up_are_refused_at_check_time() {
    let e = only_error(&BASE.replace(
        "ends = [\"a:eth0\", \"b:eth0\"]",
        "ends = [\"a:eth0\", \"b:eth0\"]\nmtu = 20",
    ));
    assert!(
        e.contains(
            "labs/t/lab.toml:25:7: link[0].mtu: a veth takes an MTU from 68 to 65535, not 20"
        ),
        "{e}"
    );
    let e = only_error(&BASE.replace("port = 80 }", "port = 0 }"));
    assert!(e.contains("labs/t/lab.toml:21:36: node[1].servers[0].port: a server on port 0 would listen on a port the kernel picks"), "{e}");
}

#[test]
fn positions_after_a_substituted_parameter_are_those_of_the_file() {
    // `${encap}` (8 bytes) becomes `gre` (3): the field after it on the same line is
    // reported at its column in the file (49), not in the substituted text (44).
    let text = BASE.replace("device = \"tunl0\"", "device = \"tunl0\", extra = 1");
    let e = only_error(&text);
    assert!(
        e.contains("labs/t/lab.toml:20:49: unknown field `extra`"),
        "{e}"
    );
}

#[test]
fn invalid_utf8_is_located_at_its_first_byte() {
    let mut bytes = BASE.as_bytes().to_vec();
    let at = BASE.find("title = \"t\"").expect("title") + 9;
    bytes[at] = 0xff;
    let e = parse_lab_bytes(file(), &bytes, &[]).expect_err("not UTF-8");
    assert_eq!(
        e.to_string(),
        "error: labs/t/lab.toml:3:10: the file is not UTF-8 text: byte 0xff starts no valid character\n    help: save the file as UTF-8"
    );
}
