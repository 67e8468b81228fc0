//! rr — round robin.
//!
//! Kernel rule (`ip_vs_rr.c`): a cursor names the last chosen destination, initially the list
//! head ("before the first element"). A pick walks forward from the element after the cursor,
//! wraps past the head once and stops after examining the cursor itself; the first element with
//! weight > 0 and no OVERLOAD wins and becomes the cursor. Starting from the head, one pass only.
//! Deleting the element under the cursor moves the cursor to its predecessor (so the next pick
//! is the element that followed it); adding never moves the cursor.

use super::{eligible, DestId, DestView};

/// Round-robin state: the cursor (`None` = list head).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rr {
    cursor: Option<DestId>,
}

impl Rr {
    /// The destination the cursor rests on, if any.
    pub fn cursor(&self) -> Option<DestId> {
        self.cursor
    }

    /// Picks the next eligible destination after the cursor.
    pub fn schedule(&mut self, dests: &[DestView]) -> Option<DestId> {
        let cursor_pos = self
            .cursor
            .and_then(|c| dests.iter().position(|d| d.id == c));
        let start = cursor_pos.map_or(0, |p| p + 1);
        let wrapped = cursor_pos.map_or(0..0, |p| 0..p + 1);
        let pick = dests[start..]
            .iter()
            .chain(dests[wrapped].iter())
            .find(|d| eligible(d))
            .map(|d| d.id);
        if pick.is_some() {
            self.cursor = pick;
        }
        pick
    }

    /// `removed` is being unlinked from `before` (the list still containing it).
    pub fn on_del(&mut self, before: &[DestView], removed: DestId) {
        if self.cursor != Some(removed) {
            return;
        }
        let pos = before.iter().position(|d| d.id == removed);
        self.cursor = match pos {
            Some(p) if p > 0 => Some(before[p - 1].id),
            _ => None,
        };
    }
}
