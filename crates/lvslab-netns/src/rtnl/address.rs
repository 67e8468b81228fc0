//! `ip addr`: adding, deleting and listing addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::RouteNetlinkMessage;

use super::{check_prefix, family_of, iface_name, lower_debug, NsHandle};
use crate::dump::AddressInfo;
use crate::error::Result;

impl NsHandle {
    /// `ip addr add IP/PREFIX dev IFACE` (also on `lo`). Scope follows `ip`: host for
    /// loopback addresses, link for IPv6 link-local, universe otherwise.
    pub fn add_address(&self, iface: &str, ip: IpAddr, prefix_len: u8) -> Result<()> {
        let op = format!("ip addr add {ip}/{prefix_len} dev {iface}");
        self.writable(&op)?;
        let message = self.address_message(&op, iface, ip, prefix_len)?;
        self.ack(
            &op,
            Some(iface),
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip addr del IP/PREFIX dev IFACE`.
    pub fn delete_address(&self, iface: &str, ip: IpAddr, prefix_len: u8) -> Result<()> {
        let op = format!("ip addr del {ip}/{prefix_len} dev {iface}");
        self.writable(&op)?;
        let message = self.address_message(&op, iface, ip, prefix_len)?;
        self.ack(
            &op,
            Some(iface),
            RouteNetlinkMessage::DelAddress(message),
            0,
        )
    }

    /// `ip addr show`: every address of both families.
    pub fn addresses(&self) -> Result<Vec<AddressInfo>> {
        let op = "ip addr show";
        let names = self.link_names(op)?;
        let dump = self.dump(
            op,
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => address_info(&a, &names),
                _ => None,
            })
            .collect())
    }

    fn address_message(
        &self,
        op: &str,
        iface: &str,
        ip: IpAddr,
        prefix_len: u8,
    ) -> Result<AddressMessage> {
        check_prefix(op, ip, prefix_len)?;
        let index = self.link_index_for(op, iface)?;
        let mut message = AddressMessage::default();
        message.header.family = family_of(ip);
        message.header.prefix_len = prefix_len;
        message.header.index = index;
        message.header.scope = default_address_scope(ip);
        message.attributes.push(AddressAttribute::Local(ip));
        message.attributes.push(AddressAttribute::Address(ip));
        if let IpAddr::V4(v4) = ip {
            if prefix_len < 31 {
                let host_bits = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
                let broadcast = Ipv4Addr::from(u32::from(v4) | host_bits);
                message
                    .attributes
                    .push(AddressAttribute::Broadcast(broadcast));
            }
        }
        Ok(message)
    }
}

/// The scope `ip addr add` picks when none is given.
fn default_address_scope(ip: IpAddr) -> AddressScope {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => AddressScope::Host,
        IpAddr::V6(v6) if v6.is_loopback() => AddressScope::Host,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => AddressScope::Link,
        _ => AddressScope::Universe,
    }
}

fn address_info(message: &AddressMessage, names: &HashMap<u32, String>) -> Option<AddressInfo> {
    let mut local = None;
    let mut address = None;
    for attr in &message.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    Some(AddressInfo {
        iface: iface_name(names, message.header.index),
        addr: local.or(address)?,
        prefix: message.header.prefix_len,
        scope: lower_debug(message.header.scope),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_scope_matches_ip_defaults() {
        let scope = |s: &str| default_address_scope(s.parse().expect("ip"));
        assert_eq!(scope("127.0.0.2"), AddressScope::Host);
        assert_eq!(scope("::1"), AddressScope::Host);
        assert_eq!(scope("fe80::1"), AddressScope::Link);
        assert_eq!(scope("192.0.2.10"), AddressScope::Universe);
    }
}
