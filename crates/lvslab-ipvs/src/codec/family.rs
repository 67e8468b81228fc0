//! Resolving the `"IPVS"` family id through the generic netlink controller (`nlctrl`).

use super::common::expect_cmd;
use super::{DecodeError, IPVS_GENL_NAME};
use crate::wire::{genl_message, AttrWriter, GenlMessage, GENL_ID_CTRL, NLM_F_ACK, NLM_F_REQUEST};

/// Controller (`CTRL_*`) numbers used to resolve the family id.
pub mod ctrl {
    /// `CTRL_CMD_NEWFAMILY` (the reply).
    pub const CMD_NEWFAMILY: u8 = 1;
    /// `CTRL_CMD_GETFAMILY`.
    pub const CMD_GETFAMILY: u8 = 3;
    /// `CTRL_ATTR_FAMILY_ID` (u16).
    pub const ATTR_FAMILY_ID: u16 = 1;
    /// `CTRL_ATTR_FAMILY_NAME` (string).
    pub const ATTR_FAMILY_NAME: u16 = 2;
}

/// CTRL_CMD_GETFAMILY for "IPVS" (REQUEST|ACK), as libnl's `genl_ctrl_resolve` sends it.
pub fn resolve_family_message(seq: u32) -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.put_str(ctrl::ATTR_FAMILY_NAME, IPVS_GENL_NAME);
    genl_message(
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        ctrl::CMD_GETFAMILY,
        1,
        &w.finish(),
    )
}

/// Reads the family id from a controller NEWFAMILY reply.
pub fn parse_family_id(msg: &GenlMessage<'_>) -> Result<u16, DecodeError> {
    expect_cmd(msg, ctrl::CMD_NEWFAMILY)?;
    for a in msg.attrs() {
        let a = a?;
        if a.ty == ctrl::ATTR_FAMILY_ID {
            return Ok(a.u16("CTRL_ATTR_FAMILY_ID")?);
        }
    }
    Err(DecodeError::Missing {
        object: "generic netlink family",
        attr: "CTRL_ATTR_FAMILY_ID",
    })
}

#[cfg(test)]
#[rustfmt::skip]
#[path = "family_tests.rs"]
mod tests;
