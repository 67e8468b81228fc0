//! Reading a lab: find the file, apply parameters, parse, validate.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::error::{utf8, Edit, Locator, SpecError, SpecErrors};
use crate::file::{LabFile, ParamDecl, SpannedStr};
use crate::model::Lab;
use crate::validate::{param_name, param_value, validate};

/// Where a lab name or path points: `nat` → `<labs_dir>/nat/lab.toml`; a folder → its
/// `lab.toml`; a file → itself.
pub fn lab_path(labs_dir: &Path, name_or_path: &str) -> PathBuf {
    let p = Path::new(name_or_path);
    if p.is_file() {
        return p.to_path_buf();
    }
    if p.is_dir() {
        return p.join("lab.toml");
    }
    labs_dir.join(name_or_path).join("lab.toml")
}

/// Reads and validates a lab file with parameter overrides (`NAME=VALUE`).
pub fn load_lab(path: &Path, overrides: &[(String, String)]) -> Result<Lab, SpecErrors> {
    let bytes = std::fs::read(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            path: String::new(),
            message: format!("cannot read the lab file: {e}"),
            help: Some(
                "give a lab name from labs/ (nat, dr, tun, fullnat) or a path to a lab.toml".into(),
            ),
        }])
    })?;
    parse_lab_bytes(path, &bytes, overrides)
}

/// Parses and validates the bytes of a lab file: text that is not UTF-8 is an error at
/// the first byte that is not.
pub fn parse_lab_bytes(
    path: &Path,
    bytes: &[u8],
    overrides: &[(String, String)],
) -> Result<Lab, SpecErrors> {
    let text = utf8(path, bytes).map_err(|e| SpecErrors(vec![e]))?;
    parse_lab(path, text, overrides)
}

/// Parses and validates lab text; `path` is used in messages only.
pub fn parse_lab(
    path: &Path,
    text: &str,
    overrides: &[(String, String)],
) -> Result<Lab, SpecErrors> {
    let loc = Locator::new(path, text);
    if !text.contains("${") {
        // Nothing to substitute: one reading gives the declarations and the lab.
        let file = lab_file(text, &loc)?;
        let values = choose_values(path, &loc, &file.params, overrides)?;
        return validate(path, &loc, file, values);
    }
    // Parameters are declared in the file itself, so read the declarations first from the
    // raw text (they contain no `${…}`), then substitute and read the whole file.
    let params = declared_params(text, &loc)?;
    let values = choose_values(path, &loc, &params, overrides)?;
    let (substituted, edits) = substitute(text, &values, &loc)?;
    let loc = Locator::with_edits(path, text, edits);
    let file = lab_file(&substituted, &loc)?;
    validate(path, &loc, file, values)
}

fn lab_file(text: &str, loc: &Locator<'_>) -> Result<LabFile, SpecErrors> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_string();
        SpecErrors(vec![loc.error(span, "", msg, toml_help(e.message()))])
    })
}

fn toml_help(msg: &str) -> Option<String> {
    if msg.contains("unknown field") {
        Some(
            "remove the field or fix its spelling; `lvslab schema` prints every valid field".into(),
        )
    } else if msg.contains("missing field") {
        Some("add the field; `lvslab schema` shows what each table needs".into())
    } else {
        None
    }
}

/// The `[params]` table alone; every other table is ignored here.
#[derive(serde::Deserialize)]
struct ParamsOnly {
    #[serde(default)]
    params: IndexMap<SpannedStr, ParamDecl>,
}

fn declared_params(
    text: &str,
    loc: &Locator<'_>,
) -> Result<IndexMap<SpannedStr, ParamDecl>, SpecErrors> {
    // The rest may still hold `${…}` placeholders that are not valid for their field types
    // yet; only [params] must be complete now.
    let parsed: ParamsOnly = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let help = e.message().contains("field").then(|| {
            "each parameter is `[params.NAME]` with `default`, `allowed` and `help`".to_string()
        });
        SpecErrors(vec![loc.error(
            span,
            "",
            e.message().trim().to_string(),
            help,
        )])
    })?;
    Ok(parsed.params)
}

/// The value of every parameter: its default, or the override. Declarations are checked
/// here: names and values are plain words (values are pasted into the file and into
/// instance names), and the default is one of the allowed values.
fn choose_values(
    path: &Path,
    loc: &Locator<'_>,
    params: &IndexMap<SpannedStr, ParamDecl>,
    overrides: &[(String, String)],
) -> Result<IndexMap<String, String>, SpecErrors> {
    let mut errors = Vec::new();
    let mut values: IndexMap<String, String> = IndexMap::new();
    let allowed_list = |decl: &ParamDecl| {
        let v: Vec<&str> = decl.allowed.iter().map(|a| a.get_ref().as_str()).collect();
        format!("allowed: {}", v.join(", "))
    };
    for (name, decl) in params {
        let p = format!("params.{}", name.get_ref().escape_debug());
        if let Err(r) = param_name(name.get_ref()) {
            errors.push(loc.error(name.span(), p.clone(), r.message, r.help));
        }
        for (k, a) in decl.allowed.iter().enumerate() {
            if let Err(r) = param_value(a.get_ref()) {
                errors.push(loc.error(a.span(), format!("{p}.allowed[{k}]"), r.message, r.help));
            }
        }
        if !decl
            .allowed
            .iter()
            .any(|a| a.get_ref() == decl.default.get_ref())
        {
            errors.push(loc.error(
                decl.default.span(),
                format!("{p}.default"),
                format!(
                    "default `{}` is not one of the allowed values",
                    decl.default.get_ref().escape_debug()
                ),
                Some(allowed_list(decl)),
            ));
        }
        values.insert(name.get_ref().clone(), decl.default.get_ref().clone());
    }
    for (k, v) in overrides {
        match params.iter().find(|(n, _)| n.get_ref() == k) {
            // No place in the file names a parameter the file lacks: the error names the
            // file and the option.
            None => errors.push(SpecError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                path: format!("--param {}", k.escape_debug()),
                message: format!("this lab has no parameter `{}`", k.escape_debug()),
                help: Some(if params.is_empty() {
                    "this lab takes no parameters".into()
                } else {
                    let names: Vec<&str> = params.keys().map(|n| n.get_ref().as_str()).collect();
                    format!("parameters: {}", names.join(", "))
                }),
            }),
            Some((name, decl)) if !decl.allowed.iter().any(|a| a.get_ref() == v) => {
                errors.push(loc.error(
                    name.span(),
                    format!("--param {k}"),
                    format!("`{}` is not an allowed value", v.escape_debug()),
                    Some(allowed_list(decl)),
                ))
            }
            Some(_) => {
                values.insert(k.clone(), v.clone());
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        errors.sort_by_key(|e| (e.line, e.col));
        Err(SpecErrors(errors))
    }
}

/// Replaces `${name}` in the text; an unknown name is an error at its place. Returns the
/// new text and where each replacement went.
fn substitute(
    text: &str,
    values: &IndexMap<String, String>,
    loc: &Locator<'_>,
) -> Result<(String, Vec<Edit>), SpecErrors> {
    let mut out = String::with_capacity(text.len());
    let mut edits = Vec::new();
    let mut errors = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let name = &after[..j];
        let start = offset + i;
        match values.get(name) {
            Some(v) => {
                edits.push(Edit {
                    at: out.len(),
                    len: v.len(),
                    orig_at: start,
                    orig_len: j + 3,
                });
                out.push_str(v);
            }
            None => errors.push(loc.error(
                start..start + j + 3,
                "",
                format!("`${{{}}}` names no declared parameter", name.escape_debug()),
                Some(format!(
                    "declare it as [params.{}] with `default` and `allowed`",
                    name.escape_debug()
                )),
            )),
        }
        let consumed = i + 2 + j + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok((out, edits))
    } else {
        Err(SpecErrors(errors))
    }
}
