//! Debian package version ordering (Debian Policy §5.6.12), so "newest kernel" means what
//! apt means by it rather than what a string sort would say.

use std::cmp::Ordering;

/// Compares two Debian version strings (`[epoch:]upstream[-revision]`).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if e.chars().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// Weight of one non-digit character: `~` sorts before everything, even the end of the
/// string; letters sort before other punctuation.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // The non-digit run, character by character.
        while a.first().is_some_and(|c| !c.is_ascii_digit())
            || b.first().is_some_and(|c| !c.is_ascii_digit())
        {
            let (wa, wb) = (weight(a.first().copied()), weight(b.first().copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            a = &a[1.min(a.len())..];
            b = &b[1.min(b.len())..];
        }
        // The digit run, numerically; compared as text so that no length overflows.
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = trim_zeros(&a[..da]);
        let nb = trim_zeros(&b[..db]);
        let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn policy_examples() {
        // Each pair follows from the ordering rules of Debian Policy §5.6.12.
        assert_eq!(compare("6.12.117-1~deb12u1", "6.1.192-2"), Greater);
        assert_eq!(compare("1.0~rc1", "1.0"), Less);
        assert_eq!(compare("1.0", "1.0-0"), Equal);
        assert_eq!(compare("1:0.1", "9.9"), Greater);
        assert_eq!(compare("1.0a", "1.0+"), Less);
        assert_eq!(compare("1.001", "1.1"), Equal);
        assert_eq!(compare("1.10", "1.9"), Greater);
        assert_eq!(compare("2.0-1", "2.0-10"), Less);
        assert_eq!(compare("1.0~~", "1.0~"), Less);
        assert_eq!(compare("6.12.117-1~deb12u1", "6.12.117-1"), Less);
        assert_eq!(compare("6.12.117-1~deb12u1", "6.12.115-1~deb12u1"), Greater);
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        assert_eq!(
            compare("99999999999999999999999", "99999999999999999999998"),
            Greater
        );
    }
}
