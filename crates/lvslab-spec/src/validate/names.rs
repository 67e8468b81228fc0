//! Names the kernel and the tools will see: lab, node and switch names (namespace files),
//! interface names.

/// Longest interface name the kernel accepts (IFNAMSIZ − 1).
pub const MAX_IFNAME: usize = 15;
/// Longest node or switch name: derived names such as namespace files must stay readable.
pub const MAX_NODE_NAME: usize = 10;
/// Longest lab name.
pub const MAX_LAB_NAME: usize = 12;

/// Why a value is refused, and what would be accepted.
pub(crate) struct Refusal {
    pub message: String,
    pub help: Option<String>,
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
    Err(Refusal {
        message: format!("`{s}` is not a valid lab name"),
        help: Some(format!("use lowercase letters, digits and `-`, starting with a letter, at most {MAX_LAB_NAME} bytes")),
    })
}

/// A node or switch name (`what`).
pub(crate) fn node_name(s: &str, what: &str) -> Result<(), Refusal> {
    if is_simple_name(s) && s.len() <= MAX_NODE_NAME {
        return Ok(());
    }
    Err(Refusal {
        message: format!("`{s}` is not a valid {what} name"),
        help: Some(format!("use lowercase letters, digits and `-`, starting with a letter, at most {MAX_NODE_NAME} bytes")),
    })
}

pub(crate) fn ifname(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("interface name is empty".into());
    }
    if s.len() > MAX_IFNAME {
        return Err(format!(
            "interface name `{s}` is {} bytes; the kernel allows at most {MAX_IFNAME}",
            s.len()
        ));
    }
    if s == "."
        || s == ".."
        || s.bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err(format!("interface name `{s}` contains a character the kernel rejects (`/`, `:` or white space)"));
    }
    Ok(())
}
