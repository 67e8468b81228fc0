//! Names the kernel and the tools will see, checked as the kernel checks them and kept to
//! a plain character set, so no name from a lab file can be shell syntax, a path or an
//! option when it reaches a command line, a file name or `/proc/sys`.
//!
//! - interface names: the kernel's `dev_valid_name` (1–15 bytes, not `.`/`..`, no `/`,
//!   `:`, white space or NUL), and only `[A-Za-z0-9_.-]`, not starting with `-`; `all`
//!   and `default` are refused because they are the sysctl folders
//!   `net.ipv4.conf.{all,default}` and the kernel fails to register a device so named;
//! - lab, node and switch names: `[a-z0-9-]` starting with a letter (namespace files);
//! - parameter names and values: values are substituted into the lab file and become
//!   part of instance names and capture folders.

/// Longest interface name the kernel accepts (IFNAMSIZ − 1).
pub const MAX_IFNAME: usize = 15;
/// Longest node or switch name: derived names such as namespace files must stay readable.
pub const MAX_NODE_NAME: usize = 10;
/// Longest lab name.
pub const MAX_LAB_NAME: usize = 12;
/// Longest parameter name or value.
pub const MAX_PARAM: usize = 32;

/// Why a value is refused, and what would be accepted.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub message: String,
    pub help: Option<String>,
}

impl Refusal {
    fn new(message: impl Into<String>, help: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

/// A value as messages show it: control characters and quotes escaped, so a hostile name
/// cannot break the message's lines.
pub(crate) fn shown(s: &str) -> String {
    s.escape_debug().to_string()
}

/// The first character outside `allowed`, for messages.
fn first_bad(s: &str, allowed: impl Fn(char) -> bool) -> Option<char> {
    s.chars().find(|c| !allowed(*c))
}

fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_lowercase()
}

pub(crate) fn lab_name(s: &str) -> Result<(), Refusal> {
    if is_simple_name(s) && s.len() <= MAX_LAB_NAME {
        return Ok(());
    }
    Err(Refusal::new(
        format!("`{}` is not a valid lab name", shown(s)),
        format!("use lowercase letters, digits and `-`, starting with a letter, at most {MAX_LAB_NAME} bytes"),
    ))
}

/// A node or switch name (`what`).
pub(crate) fn node_name(s: &str, what: &str) -> Result<(), Refusal> {
    if is_simple_name(s) && s.len() <= MAX_NODE_NAME {
        return Ok(());
    }
    Err(Refusal::new(
        format!("`{}` is not a valid {what} name", shown(s)),
        format!("use lowercase letters, digits and `-`, starting with a letter, at most {MAX_NODE_NAME} bytes"),
    ))
}

const IFNAME_HELP: &str =
    "an interface name is 1 to 15 letters, digits, `_`, `.` or `-`, not starting with `-`";

fn ifname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// An interface name, as the kernel's `dev_valid_name` takes it and in the plain
/// character set.
pub(crate) fn ifname(s: &str) -> Result<(), Refusal> {
    let name = shown(s);
    if s.is_empty() {
        return Err(Refusal::new("interface name is empty", IFNAME_HELP));
    }
    if s.len() > MAX_IFNAME {
        return Err(Refusal::new(
            format!(
                "interface name `{name}` is {} bytes; the kernel allows at most {MAX_IFNAME}",
                s.len()
            ),
            IFNAME_HELP,
        ));
    }
    if s == "." || s == ".." {
        return Err(Refusal::new(
            format!("`{name}` is not an interface name the kernel accepts"),
            IFNAME_HELP,
        ));
    }
    if let Some(c) = first_bad(s, |c| !matches!(c, '/' | ':' | '\0') && !c.is_whitespace()) {
        return Err(Refusal::new(
            format!(
                "interface name `{name}` contains `{}`, which the kernel rejects (`/`, `:`, white space, NUL)",
                c.escape_debug()
            ),
            IFNAME_HELP,
        ));
    }
    if let Some(c) = first_bad(s, ifname_char) {
        return Err(Refusal::new(
            format!(
                "interface name `{name}` contains `{}`; interface names reach commands and file names, so only plain characters are accepted",
                c.escape_debug()
            ),
            IFNAME_HELP,
        ));
    }
    if s.starts_with('-') {
        return Err(Refusal::new(
            format!("interface name `{name}` starts with `-`, which commands read as an option"),
            IFNAME_HELP,
        ));
    }
    if s == "all" || s == "default" {
        return Err(Refusal::new(
            format!("`{name}` names the sysctl folder net.ipv4.conf.{s}; the kernel cannot register a device with that name"),
            "choose another interface name, e.g. `eth0`",
        ));
    }
    Ok(())
}

/// The name of a `[params.NAME]`: what `--param NAME=VALUE` and `${NAME}` say.
pub(crate) fn param_name(s: &str) -> Result<(), Refusal> {
    let ok = s.len() <= MAX_PARAM
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && first_bad(s, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-').is_none();
    if ok {
        return Ok(());
    }
    Err(Refusal::new(
        format!("`{}` is not a valid parameter name", shown(s)),
        format!(
            "use letters, digits, `_` and `-`, starting with a letter, at most {MAX_PARAM} bytes"
        ),
    ))
}

/// A parameter value: it is pasted into the lab file before it is read, and becomes part
/// of instance names and capture folders.
pub(crate) fn param_value(s: &str) -> Result<(), Refusal> {
    let ok = s.len() <= MAX_PARAM
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && first_bad(s, ifname_char).is_none();
    if ok {
        return Ok(());
    }
    Err(Refusal::new(
        format!("`{}` is not a valid parameter value", shown(s)),
        format!("parameter values are pasted into the lab file and into instance names: use letters, digits, `_`, `.` and `-`, starting with a letter or digit, at most {MAX_PARAM} bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel_and_stay_plain() {
        for ok in [
            "eth0",
            "tunl0",
            "lo",
            "eth0.100",
            "br_lan",
            "veth-a1",
            "a",
            "x23456789012345",
        ] {
            assert!(ifname(ok).is_ok(), "{ok} refused");
        }
        let refused = |s: &str| ifname(s).expect_err(s).message;
        assert_eq!(refused(""), "interface name is empty");
        assert!(refused("x234567890123456").contains("is 16 bytes; the kernel allows at most 15"));
        assert!(refused(".").contains("not an interface name the kernel accepts"));
        assert!(refused("..").contains("not an interface name the kernel accepts"));
        assert!(refused("a/b").contains("contains `/`, which the kernel rejects"));
        assert!(refused("a:b").contains("contains `:`, which the kernel rejects"));
        assert!(refused("a b").contains("contains ` `, which the kernel rejects"));
        assert!(refused("a\tb").contains("contains `\\t`, which the kernel rejects"));
        assert!(refused("a\0b").contains("contains `\\0`, which the kernel rejects"));
        assert!(refused("e$(touch x)").contains("contains ` `, which the kernel rejects"));
        assert!(refused("e$(touchx)").contains("contains `$`; interface names reach commands"));
        assert!(refused("e;reboot").contains("contains `;`"));
        assert!(refused("e`id`").contains("contains ```; interface names"));
        assert!(refused("eth\"0").contains("`eth\\\"0` contains `\\\"`"));
        assert!(refused("ethé").contains("contains `é`"));
        assert!(refused("-eth0").contains("starts with `-`"));
        assert!(refused("all").contains("sysctl folder net.ipv4.conf.all"));
        assert!(refused("default").contains("sysctl folder net.ipv4.conf.default"));
        assert_eq!(
            ifname("a$b").expect_err("a$b").help.as_deref(),
            Some(IFNAME_HELP)
        );
    }

    #[test]
    fn lab_node_and_switch_names_are_plain() {
        assert!(lab_name("fullnat").is_ok() && lab_name("lab-2").is_ok());
        for bad in [
            "",
            "Nat",
            "1nat",
            "na t",
            "nat;",
            "verylonglabname",
            "n$(x)",
        ] {
            assert!(lab_name(bad).is_err(), "{bad:?} accepted as a lab name");
        }
        assert!(node_name("rs1", "node").is_ok() && node_name("lan-a", "switch").is_ok());
        for bad in ["", "rs_1", "RS1", "-rs", "rs1.x", "abcdefghijk", "rs\n1"] {
            assert!(
                node_name(bad, "node").is_err(),
                "{bad:?} accepted as a node name"
            );
        }
        let r = node_name("a\nb", "switch").expect_err("newline");
        assert_eq!(r.message, "`a\\nb` is not a valid switch name");
    }

    #[test]
    fn parameter_names_and_values_are_plain_words() {
        assert!(param_name("encap").is_ok() && param_name("rs_count-2").is_ok());
        for bad in ["", "1x", "en cap", "en$cap", "a}b", &"p".repeat(33)] {
            assert!(
                param_name(bad).is_err(),
                "{bad:?} accepted as a parameter name"
            );
        }
        for ok in ["gre", "ipip", "1", "v1.2", "a_b-c"] {
            assert!(param_value(ok).is_ok(), "{ok} refused");
        }
        for bad in [
            "",
            "-x",
            ".",
            "..",
            "../etc",
            "a/b",
            "1;touch x",
            "x\"y",
            "a\nb",
            "$(id)",
            "a b",
            "gre\" evil = \"x",
        ] {
            assert!(
                param_value(bad).is_err(),
                "{bad:?} accepted as a parameter value"
            );
        }
    }
}
