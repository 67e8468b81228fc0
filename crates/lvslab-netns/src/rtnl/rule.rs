//! `ip rule`: reading back the policy routing rules.

use rtnetlink::packet_route::rule::{RuleAttribute, RuleMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;

use super::{family_name, lower_debug, NsHandle};
use crate::dump::RuleInfo;
use crate::error::Result;

impl NsHandle {
    /// `ip rule show` and `ip -6 rule show`.
    pub fn rules(&self) -> Result<Vec<RuleInfo>> {
        let op = "ip rule show";
        let dump = self.dump(op, RouteNetlinkMessage::GetRule(RuleMessage::default()))?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Some(rule_info(&r)),
                _ => None,
            })
            .collect())
    }
}

fn rule_info(message: &RuleMessage) -> RuleInfo {
    let header = &message.header;
    let mut info = RuleInfo {
        family: family_name(header.family),
        priority: 0,
        action: lower_debug(header.action),
        table: u32::from(header.table),
        src: None,
        dst: None,
        iif: None,
        oif: None,
        fwmark: None,
    };
    for attr in &message.attributes {
        match attr {
            RuleAttribute::Priority(p) => info.priority = *p,
            RuleAttribute::Table(t) => info.table = *t,
            RuleAttribute::Source(ip) => info.src = Some(format!("{ip}/{}", header.src_len)),
            RuleAttribute::Destination(ip) => info.dst = Some(format!("{ip}/{}", header.dst_len)),
            RuleAttribute::Iifname(name) => info.iif = Some(name.clone()),
            RuleAttribute::Oifname(name) => info.oif = Some(name.clone()),
            RuleAttribute::FwMark(mark) => info.fwmark = Some(*mark),
            _ => {}
        }
    }
    info
}
