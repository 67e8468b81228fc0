//! `expect.toml` as written: serde structs that mirror the TOML. Unknown fields are
//! refused everywhere; values keep their place in the file for messages.

use serde::Deserialize;
use toml::Spanned;

use crate::vocab::Direction;

/// Top level: `[[hop]]` tables only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectFile {
    #[serde(default)]
    pub hop: Vec<HopFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HopFile {
    pub point: Spanned<String>,
    #[serde(default)]
    pub direction: Option<Direction>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub eth: Option<AddrFields>,
    #[serde(default)]
    pub ipv4: Option<AddrFields>,
    #[serde(default)]
    pub outer: Option<OuterFields>,
    #[serde(default)]
    pub tcp: Option<PortFields>,
    #[serde(default)]
    pub udp: Option<PortFields>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddrFields {
    #[serde(default)]
    pub src: Option<FieldValue>,
    #[serde(default)]
    pub dst: Option<FieldValue>,
}

/// A field's value, where it is written.
pub(crate) type FieldValue = Spanned<toml::Value>;

impl AddrFields {
    /// `(src, dst)` of an optional table.
    pub fn pair(f: Option<&AddrFields>) -> (Option<&FieldValue>, Option<&FieldValue>) {
        f.map_or((None, None), |a| (a.src.as_ref(), a.dst.as_ref()))
    }
}

impl PortFields {
    /// `(sport, dport)` of an optional table.
    pub fn pair(f: Option<&PortFields>) -> (Option<&FieldValue>, Option<&FieldValue>) {
        f.map_or((None, None), |p| (p.sport.as_ref(), p.dport.as_ref()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OuterFields {
    pub ipv4: AddrFields,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PortFields {
    #[serde(default)]
    pub sport: Option<FieldValue>,
    #[serde(default)]
    pub dport: Option<FieldValue>,
}
