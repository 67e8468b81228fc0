//! popt's word splitting: options (long, short, clustered, with attached or separate
//! values) and leftover arguments, stopping at the first word popt would refuse.

use crate::error::{quoted, UsageError, PROGRAM};
use crate::options::{closest_long, value_help, Arg, Spec, SPECS};

pub(crate) enum Event {
    Opt {
        spec: &'static Spec,
        /// The option as written (`-w`, `--weight`), for messages.
        typed: String,
        /// The whole word it came from (`-Ln`, `--weight=3`): what popt and ipvsadm quote.
        word: String,
        value: Option<String>,
    },
    Arg(String),
}

/// Why popt refused a word.
enum Refusal {
    Unknown,
    TakesNoValue(String),
    MissingValue(&'static Spec),
}

/// Splits the words into options and leftover arguments like popt does; stops at the
/// first word popt would refuse and returns that error after the events before it.
pub(crate) fn tokenize<S: AsRef<str>>(args: &[S]) -> (Vec<Event>, Option<UsageError>) {
    let mut events = Vec::new();
    let mut i = 0;
    let mut only_args = false;
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
        let step = match word.strip_prefix("--") {
            Some(body) => long_option(word, body, args, &mut i, &mut events),
            None => short_options(word, args, &mut i, &mut events),
        };
        if let Err((typed, why)) = step {
            return (events, Some(popt_error(&typed, word, why)));
        }
    }
    (events, None)
}

/// `--name`, `--name=value` or `--name value`.
fn long_option<S: AsRef<str>>(
    word: &str,
    body: &str,
    args: &[S],
    i: &mut usize,
    events: &mut Vec<Event>,
) -> Result<(), (String, Refusal)> {
    let (name, attached) = match body.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (body, None),
    };
    let typed = format!("--{name}");
    let Some(spec) = SPECS.iter().find(|s| s.long == name) else {
        return Err((typed, Refusal::Unknown));
    };
    let value = match (spec.arg, attached) {
        (Arg::None, Some(v)) => return Err((typed, Refusal::TakesNoValue(v))),
        (Arg::None, None) => None,
        (_, Some(v)) => Some(v),
        (arg, None) => match next_value(arg, args, i) {
            Ok(v) => v,
            Err(()) => return Err((typed, Refusal::MissingValue(spec))),
        },
    };
    events.push(Event::Opt {
        spec,
        typed,
        word: word.to_string(),
        value,
    });
    Ok(())
}

/// A cluster of short options: `-Ln`, `-w3`, `-p600`, `-w 3`.
fn short_options<S: AsRef<str>>(
    word: &str,
    args: &[S],
    i: &mut usize,
    events: &mut Vec<Event>,
) -> Result<(), (String, Refusal)> {
    let cluster: Vec<char> = word.chars().skip(1).collect();
    let mut j = 0;
    while j < cluster.len() {
        let c = cluster[j];
        j += 1;
        let typed = format!("-{c}");
        let Some(spec) = SPECS.iter().find(|s| s.short == Some(c)) else {
            return Err((typed, Refusal::Unknown));
        };
        let rest: String = cluster[j..].iter().collect();
        let value = match spec.arg {
            Arg::None => None,
            _ if !rest.is_empty() => {
                j = cluster.len();
                Some(rest)
            }
            arg => match next_value(arg, args, i) {
                Ok(v) => v,
                Err(()) => return Err((typed, Refusal::MissingValue(spec))),
            },
        };
        events.push(Event::Opt {
            spec,
            typed,
            word: word.to_string(),
            value,
        });
    }
    Ok(())
}

/// The value of an option written without one attached: the next word, which a required
/// value always takes and an optional one only when it does not start with `-`.
fn next_value<S: AsRef<str>>(arg: Arg, args: &[S], i: &mut usize) -> Result<Option<String>, ()> {
    let next = args.get(*i).map(|s| s.as_ref());
    match (arg, next) {
        (Arg::Required, Some(v)) => {
            *i += 1;
            Ok(Some(v.to_string()))
        }
        (Arg::Required, None) => Err(()),
        (Arg::Optional, Some(v)) if !v.starts_with('-') => {
            *i += 1;
            Ok(Some(v.to_string()))
        }
        _ => Ok(None),
    }
}

/// popt's message (`-q: unknown option`, quoting the whole word as popt does, which is
/// also the culprit), then what to write instead.
fn popt_error(typed: &str, word: &str, why: Refusal) -> UsageError {
    let in_word = if word == typed {
        String::new()
    } else {
        format!(" (in {})", quoted(word))
    };
    match why {
        Refusal::Unknown => {
            let e = UsageError::popt(word, format!("{word}: unknown option"));
            let suggestion = typed
                .strip_prefix("--")
                .and_then(closest_long)
                .map(|long| format!(": did you mean --{long}?"))
                .unwrap_or_default();
            e.hint(format!(
                "{typed}{in_word} is not an option of {PROGRAM}{suggestion}"
            ))
            .try_help()
        }
        Refusal::TakesNoValue(v) => {
            UsageError::popt(word, format!("{word}: option does not take an argument")).hint(
                format!("{typed} takes no value: drop {}", quoted(&format!("={v}"))),
            )
        }
        Refusal::MissingValue(spec) => UsageError::popt(word, format!("{word}: missing argument"))
            .hint(format!(
                "{typed}{in_word} ends the line, but {} needs {} after it",
                spec.spelling(),
                value_help(spec.key)
            )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<Vec<String>, UsageError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (events, err) = tokenize(&words);
        if let Some(e) = err {
            return Err(e);
        }
        Ok(events
            .into_iter()
            .map(|e| match e {
                Event::Opt { typed, value, .. } => format!("{typed}={value:?}"),
                Event::Arg(a) => a,
            })
            .collect())
    }

    #[test]
    fn clusters_attached_and_separate_values() {
        assert_eq!(
            split("-Ln -w3 -p -s rr --weight=4 x -- -y").expect("valid"),
            [
                "-L=None",
                "-n=None",
                "-w=Some(\"3\")",
                "-p=None",
                "-s=Some(\"rr\")",
                "--weight=Some(\"4\")",
                "x",
                "-y"
            ]
        );
        // An optional value is taken from the next word only when it is not an option.
        assert_eq!(split("-p 60").expect("valid"), ["-p=Some(\"60\")"]);
    }

    #[test]
    fn refusals_name_the_option_and_say_what_to_write() {
        let e = split("-A --weigth 3").expect_err("misspelt");
        assert_eq!(e.culprit, "--weigth");
        assert_eq!(e.exit_code, 255);
        assert!(e.message.starts_with("--weigth: unknown option\n"), "{e}");
        assert!(e.message.contains("did you mean --weight?"), "{e}");

        let e = split("-A -Lq").expect_err("unknown short");
        assert_eq!(e.culprit, "-Lq");
        assert!(
            e.message.starts_with("-Lq: unknown option\n-q (in `-Lq')"),
            "{e}"
        );

        let e = split("-A -t").expect_err("missing value");
        assert!(e.message.starts_with("-t: missing argument\n"), "{e}");
        assert!(e.message.contains("192.0.2.1:80"), "{e}");

        let e = split("-L --stats=1").expect_err("value on a flag");
        assert!(
            e.message.starts_with("--stats=1: option does not take"),
            "{e}"
        );
        assert!(e.message.contains("drop `=1'"), "{e}");
    }

    #[test]
    fn multibyte_words_do_not_split_inside_a_char() {
        let e = split("-é").expect_err("unknown");
        assert_eq!(e.culprit, "-é");
        assert!(split("-wé").is_ok());
    }
}
