//! Chains (base chains on a hook, regular chains reached by `jump`) and the table, whose
//! constructor checks names, hooks, jumps and where NAT statements may stand.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{invalid, Family, IfName, Name, Rule, Statement};
use crate::error::Result;

/// The kind of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    Filter,
    Nat,
}

impl ChainType {
    /// The nft keyword (also the kernel's name for it).
    pub fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        }
    }
}

/// Where a base chain is attached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "hook", content = "device", rename_all = "lowercase")]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    /// A device's ingress (netdev tables only).
    Ingress(IfName),
}

impl Hook {
    /// The nft keyword.
    pub fn name(&self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress(_) => "ingress",
        }
    }

    /// The kernel's hook number (`NF_INET_*`, `NF_NETDEV_INGRESS`).
    pub(crate) fn number(&self) -> u32 {
        match self {
            Hook::Prerouting | Hook::Ingress(_) => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }
}

/// What happens to a packet no rule of a base chain decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Accept,
    Drop,
}

/// A chain the kernel calls from a hook.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BaseChain {
    pub chain_type: ChainType,
    pub hook: Hook,
    pub priority: i32,
    pub policy: Policy,
}

impl BaseChain {
    /// `type nat hook prerouting priority dstnat (-100)`.
    pub fn dstnat() -> BaseChain {
        BaseChain {
            chain_type: ChainType::Nat,
            hook: Hook::Prerouting,
            priority: -100,
            policy: Policy::Accept,
        }
    }

    /// `type nat hook postrouting priority srcnat (100)`.
    pub fn srcnat() -> BaseChain {
        BaseChain {
            chain_type: ChainType::Nat,
            hook: Hook::Postrouting,
            priority: 100,
            policy: Policy::Accept,
        }
    }

    /// `type filter hook ingress device DEVICE priority 0`.
    pub fn ingress(device: IfName) -> BaseChain {
        BaseChain {
            chain_type: ChainType::Filter,
            hook: Hook::Ingress(device),
            priority: 0,
            policy: Policy::Accept,
        }
    }
}

/// A chain: attached to a hook ([`BaseChain`]) or regular (reached by `jump`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Chain {
    name: Name,
    base: Option<BaseChain>,
    rules: Vec<Rule>,
}

impl Chain {
    /// A chain; `base` is `None` for a regular chain.
    pub fn new(name: Name, base: Option<BaseChain>, rules: Vec<Rule>) -> Chain {
        Chain { name, base, rules }
    }

    /// The name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The hook, type, priority and policy of a base chain.
    pub fn base(&self) -> Option<&BaseChain> {
        self.base.as_ref()
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// A whole table: what [`crate::nft::apply`] installs (replacing any table of the same
/// family and name) in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Table {
    family: Family,
    name: Name,
    chains: Vec<Chain>,
}

impl Table {
    /// Checks that chain names are unique, that hooks suit the family (netdev tables
    /// have only device ingress hooks), that jumps name a regular chain of the table and
    /// that NAT statements sit in NAT chains of the right hook.
    pub fn new(family: Family, name: Name, chains: Vec<Chain>) -> Result<Table> {
        let what = format!("table {family} {name}");
        let bad = |detail: String| invalid(&what, detail);
        let mut seen = BTreeSet::new();
        for c in &chains {
            if !seen.insert(c.name.as_str()) {
                return Err(bad(format!("chain {} is defined twice", c.name)));
            }
        }
        for c in &chains {
            let chain = &c.name;
            if let Some(base) = &c.base {
                let netdev_hook = matches!(base.hook, Hook::Ingress(_));
                if netdev_hook != (family == Family::Netdev) {
                    return Err(bad(format!(
                        "chain {chain}: hook {} does not exist in family {family}",
                        base.hook.name()
                    )));
                }
                if base.chain_type == ChainType::Nat && family == Family::Netdev {
                    return Err(bad(format!("chain {chain}: netdev tables have no NAT")));
                }
            }
            for (k, r) in c.rules.iter().enumerate() {
                if let Some(problem) = statement_problem(&chains, c, k, r) {
                    return Err(bad(problem));
                }
            }
        }
        Ok(Table {
            family,
            name,
            chains,
        })
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The chains, in order.
    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }
}

/// What is wrong with a rule's statement where it stands, if anything.
fn statement_problem(chains: &[Chain], chain: &Chain, index: usize, rule: &Rule) -> Option<String> {
    let at = format!("chain {}, rule {}", chain.name, index + 1);
    let nat_hooks: &[&str] = match rule.statement() {
        Statement::Masquerade => &["postrouting"],
        Statement::Snat(_) => &["postrouting", "input"],
        Statement::Dnat(_) => &["prerouting", "output"],
        Statement::Jump(target) => {
            return match chains.iter().find(|c| &c.name == target) {
                Some(c) if c.base.is_none() => None,
                Some(_) => Some(format!("{at}: cannot jump to base chain {target}")),
                None => Some(format!("{at}: jump to unknown chain {target}")),
            };
        }
        Statement::Accept | Statement::Drop | Statement::Return => return None,
    };
    match &chain.base {
        // A regular chain's NAT statements are checked by the kernel against the
        // chains that jump to it.
        None => None,
        Some(b) if b.chain_type == ChainType::Nat && nat_hooks.contains(&b.hook.name()) => None,
        Some(b) => Some(format!(
            "{at}: {:?} needs a nat chain on hook {}, not a {} chain on {}",
            rule.statement(),
            nat_hooks.join(" or "),
            b.chain_type.name(),
            b.hook.name()
        )),
    }
}
