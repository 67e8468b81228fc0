//! `ip route`: adding, deleting and listing routes.

use std::collections::HashMap;
use std::net::IpAddr;

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{check_prefix, family_name, family_of, iface_name, lower_debug, NsHandle};
use crate::dump::RouteInfo;
use crate::error::{Error, Result};

/// Main routing table id.
pub const TABLE_MAIN: u32 = RouteHeader::RT_TABLE_MAIN as u32;

impl NsHandle {
    /// `ip route add DEST [via GW] [dev DEV]` in the main table; `dest: None` is the
    /// default route. Without a gateway the route gets link scope, as `ip` does.
    pub fn add_route(
        &self,
        dest: Option<(IpAddr, u8)>,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<()> {
        let op = route_op("add", dest, via, dev);
        self.writable(&op)?;
        let message = self.route_message(&op, dest, via, dev, false)?;
        self.ack(
            &op,
            dev,
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// `ip route del DEST [via GW] [dev DEV]` in the main table.
    pub fn delete_route(
        &self,
        dest: Option<(IpAddr, u8)>,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<()> {
        let op = route_op("del", dest, via, dev);
        self.writable(&op)?;
        let message = self.route_message(&op, dest, via, dev, true)?;
        self.ack(&op, dev, RouteNetlinkMessage::DelRoute(message), 0)
    }

    /// `ip route show table main` (both families).
    pub fn routes(&self) -> Result<Vec<RouteInfo>> {
        Ok(self
            .all_routes()?
            .into_iter()
            .filter(|r| r.table == TABLE_MAIN)
            .collect())
    }

    /// `ip route show table all` (both families).
    pub fn all_routes(&self) -> Result<Vec<RouteInfo>> {
        let op = "ip route show table all";
        let names = self.link_names(op)?;
        let dump = self.dump(op, RouteNetlinkMessage::GetRoute(RouteMessage::default()))?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(route_info(&r, &names)),
                _ => None,
            })
            .collect())
    }

    fn route_message(
        &self,
        op: &str,
        dest: Option<(IpAddr, u8)>,
        via: Option<IpAddr>,
        dev: Option<&str>,
        for_delete: bool,
    ) -> Result<RouteMessage> {
        let invalid = |detail: String| Error::InvalidArgument {
            op: op.to_string(),
            detail,
        };
        if via.is_none() && dev.is_none() {
            return Err(invalid(
                "a route needs a gateway (via), a device (dev), or both".into(),
            ));
        }
        let family_ip = dest.map(|(ip, _)| ip).or(via);
        if let (Some((dst, _)), Some(gw)) = (dest, via) {
            if dst.is_ipv4() != gw.is_ipv4() {
                return Err(invalid(format!(
                    "destination {dst} and gateway {gw} are of different IP versions"
                )));
            }
        }
        let mut message = RouteMessage::default();
        message.header.address_family = family_ip.map_or(AddressFamily::Inet, family_of);
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        if for_delete {
            message.header.scope = RouteScope::NoWhere;
        } else {
            message.header.protocol = RouteProtocol::Boot;
            message.header.kind = RouteType::Unicast;
            message.header.scope = if via.is_some() {
                RouteScope::Universe
            } else {
                RouteScope::Link
            };
        }
        if let Some((ip, prefix_len)) = dest {
            check_prefix(op, ip, prefix_len)?;
            message.header.destination_prefix_length = prefix_len;
            message
                .attributes
                .push(RouteAttribute::Destination(RouteAddress::from(ip)));
        }
        if let Some(gw) = via {
            message
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
        }
        if let Some(dev) = dev {
            let index = self.link_index_for(op, dev)?;
            message.attributes.push(RouteAttribute::Oif(index));
        }
        Ok(message)
    }
}

fn route_op(
    verb: &str,
    dest: Option<(IpAddr, u8)>,
    via: Option<IpAddr>,
    dev: Option<&str>,
) -> String {
    let mut op = format!("ip route {verb}");
    match dest {
        Some((ip, len)) => op.push_str(&format!(" {ip}/{len}")),
        None => op.push_str(" default"),
    }
    if let Some(gw) = via {
        op.push_str(&format!(" via {gw}"));
    }
    if let Some(dev) = dev {
        op.push_str(&format!(" dev {dev}"));
    }
    op
}

fn route_address(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_info(message: &RouteMessage, names: &HashMap<u32, String>) -> RouteInfo {
    let header = &message.header;
    let mut info = RouteInfo {
        table: u32::from(header.table),
        family: family_name(header.address_family),
        kind: lower_debug(header.kind),
        dst: None,
        prefix: header.destination_prefix_length,
        gateway: None,
        oif: None,
        prefsrc: None,
        scope: lower_debug(header.scope),
        protocol: lower_debug(header.protocol),
        metric: None,
    };
    for attr in &message.attributes {
        match attr {
            RouteAttribute::Table(table) => info.table = *table,
            RouteAttribute::Destination(a) => info.dst = route_address(a),
            RouteAttribute::Gateway(a) => info.gateway = route_address(a),
            RouteAttribute::PrefSource(a) => info.prefsrc = route_address(a),
            RouteAttribute::Oif(index) => info.oif = Some(iface_name(names, *index)),
            RouteAttribute::Priority(metric) => info.metric = Some(*metric),
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_ops_read_like_ip_commands() {
        let gw: IpAddr = "192.0.2.254".parse().expect("ip");
        let net: IpAddr = "198.51.100.0".parse().expect("ip");
        assert_eq!(
            route_op("add", None, Some(gw), None),
            "ip route add default via 192.0.2.254"
        );
        assert_eq!(
            route_op("del", Some((net, 24)), None, Some("eth1")),
            "ip route del 198.51.100.0/24 dev eth1"
        );
    }
}
