//! Instance names: they become folder names under /run and parts of namespace names, so
//! they are short and plain.

use crate::InstanceError;

/// Longest instance name.
pub const MAX_INSTANCE_NAME: usize = 24;

/// Lowercase letters, digits and `-`, starting with a letter, at most 24 bytes.
pub fn check_instance_name(name: &str) -> Result<(), InstanceError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_INSTANCE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.as_bytes()[0].is_ascii_lowercase();
    if ok {
        Ok(())
    } else {
        Err(InstanceError::InvalidName {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_and_everything_else_is_refused() {
        for good in ["nat", "a", "rlp-a", "x1-2", "abcdefghijklmnopqrstuvwx"] {
            assert!(check_instance_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1nat",
            "-a",
            "Nat",
            "a b",
            "a/b",
            "../x",
            ".new-x",
            "a$(x)",
            "abcdefghijklmnopqrstuvwxy",
        ] {
            assert!(check_instance_name(bad).is_err(), "{bad:?}");
        }
    }
}
