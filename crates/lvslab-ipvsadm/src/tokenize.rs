//! popt's word splitting: options (long, short, clustered, with attached or separate
//! values) and leftover arguments, stopping at the first word popt would refuse.

use crate::error::UsageError;
use crate::options::{Arg, Spec, SPECS};

pub(crate) enum Event {
    Opt {
        spec: &'static Spec,
        /// The option as written (`-w`, `--weight`), for messages.
        typed: String,
        value: Option<String>,
    },
    Arg(String),
}

/// Splits the words into options and leftover arguments like popt does; stops at the
/// first word popt would refuse and returns that error after the events before it.
pub(crate) fn tokenize<S: AsRef<str>>(args: &[S]) -> (Vec<Event>, Option<UsageError>) {
    let mut events = Vec::new();
    let mut i = 0;
    let mut only_args = false;
    let next_word = |i: usize| args.get(i).map(|s| s.as_ref().to_string());
    while i < args.len() {
        let word = args[i].as_ref();
        i += 1;
        if only_args || word == "-" || !word.starts_with('-') {
            events.push(Event::Arg(word.to_string()));
            continue;
        }
        if word == "--" {
            only_args = true;
            continue;
        }
        if let Some(body) = word.strip_prefix("--") {
            let (name, attached) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let typed = format!("--{name}");
            let Some(spec) = SPECS.iter().find(|s| s.long == name) else {
                return (events, Some(popt_error(&typed, "unknown option")));
            };
            let value = match (spec.arg, attached) {
                (Arg::None, Some(_)) => {
                    return (
                        events,
                        Some(popt_error(&typed, "option does not take an argument")),
                    )
                }
                (Arg::None, None) => None,
                (_, Some(v)) => Some(v),
                (Arg::Required, None) => match next_word(i) {
                    Some(v) => {
                        i += 1;
                        Some(v)
                    }
                    None => return (events, Some(popt_error(&typed, "missing argument"))),
                },
                (Arg::Optional, None) => match next_word(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(v)
                    }
                    _ => None,
                },
            };
            events.push(Event::Opt { spec, typed, value });
            continue;
        }
        // A cluster of short options: `-Ln`, `-w3`, `-p600`.
        let cluster: Vec<char> = word[1..].chars().collect();
        let mut j = 0;
        while j < cluster.len() {
            let c = cluster[j];
            j += 1;
            let typed = format!("-{c}");
            let Some(spec) = SPECS.iter().find(|s| s.short == Some(c)) else {
                return (events, Some(popt_error(&typed, "unknown option")));
            };
            let rest: String = cluster[j..].iter().collect();
            let value = match spec.arg {
                Arg::None => None,
                _ if !rest.is_empty() => {
                    j = cluster.len();
                    Some(rest)
                }
                Arg::Required => match next_word(i) {
                    Some(v) => {
                        i += 1;
                        Some(v)
                    }
                    None => return (events, Some(popt_error(&typed, "missing argument"))),
                },
                Arg::Optional => match next_word(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(v)
                    }
                    _ => None,
                },
            };
            events.push(Event::Opt { spec, typed, value });
        }
    }
    (events, None)
}

pub(crate) fn popt_error(option: &str, what: &str) -> UsageError {
    UsageError::popt(format!("{option}: {what}"))
}
