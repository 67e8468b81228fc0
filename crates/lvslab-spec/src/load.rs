//! Reading a lab: find the file, apply parameters, parse, validate.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::error::{Locator, SpecError, SpecErrors};
use crate::file::LabFile;
use crate::model::Lab;
use crate::validate::validate;

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
    let text = std::fs::read_to_string(path).map_err(|e| {
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
    parse_lab(path, &text, overrides)
}

/// Parses and validates lab text; `path` is used in messages only.
pub fn parse_lab(
    path: &Path,
    text: &str,
    overrides: &[(String, String)],
) -> Result<Lab, SpecErrors> {
    let loc = Locator::new(path, text);
    // Parameters are declared in the file itself, so read the declarations first from the
    // raw text (they contain no `${…}`), then substitute and read the whole file.
    let params = declared_params(path, text, &loc)?;
    let values = choose_values(path, &params, overrides)?;
    let substituted = substitute(path, text, &values, &loc)?;
    let loc = Locator::new(path, &substituted);
    let file: LabFile = toml::from_str(&substituted).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_string();
        SpecErrors(vec![loc.error(span, "", msg, toml_help(e.message()))])
    })?;
    validate(path, &loc, file, values)
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

#[derive(serde::Deserialize)]
struct ParamsOnly {
    #[serde(default)]
    params: IndexMap<String, crate::file::ParamDecl>,
}

fn declared_params(
    path: &Path,
    text: &str,
    loc: &Locator<'_>,
) -> Result<IndexMap<String, crate::file::ParamDecl>, SpecErrors> {
    // Parse only the [params] table: the rest may still hold `${…}` placeholders that are
    // not valid for their field types yet, and toml ignores unknown tables here.
    let raw: toml::Table = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        SpecErrors(vec![loc.error(
            span,
            "",
            e.message().trim().to_string(),
            None,
        )])
    })?;
    let Some(p) = raw.get("params") else {
        return Ok(IndexMap::new());
    };
    let mut t = toml::Table::new();
    t.insert("params".into(), p.clone());
    let parsed: ParamsOnly = t.try_into().map_err(|e: toml::de::Error| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            path: "params".into(),
            message: e.message().trim().to_string(),
            help: Some("each parameter is `[params.NAME]` with `default` and `allowed`".into()),
        }])
    })?;
    Ok(parsed.params)
}

fn choose_values(
    path: &Path,
    params: &IndexMap<String, crate::file::ParamDecl>,
    overrides: &[(String, String)],
) -> Result<IndexMap<String, String>, SpecErrors> {
    let mut errors = Vec::new();
    let mut values: IndexMap<String, String> = IndexMap::new();
    for (name, decl) in params {
        if !decl.allowed.contains(&decl.default) {
            errors.push(SpecError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                path: format!("params.{name}.default"),
                message: format!(
                    "default `{}` is not one of the allowed values",
                    decl.default
                ),
                help: Some(format!("allowed: {}", decl.allowed.join(", "))),
            });
        }
        values.insert(name.clone(), decl.default.clone());
    }
    for (k, v) in overrides {
        match params.get(k) {
            None => errors.push(SpecError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                path: format!("--param {k}"),
                message: format!("this lab has no parameter `{k}`"),
                help: Some(if params.is_empty() {
                    "this lab takes no parameters".into()
                } else {
                    format!(
                        "parameters: {}",
                        params.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                }),
            }),
            Some(decl) if !decl.allowed.contains(v) => errors.push(SpecError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                path: format!("--param {k}"),
                message: format!("`{v}` is not an allowed value"),
                help: Some(format!("allowed: {}", decl.allowed.join(", "))),
            }),
            Some(_) => {
                values.insert(k.clone(), v.clone());
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(SpecErrors(errors))
    }
}

/// Replaces `${name}` in the text; an unknown name is an error at its place.
fn substitute(
    path: &Path,
    text: &str,
    values: &IndexMap<String, String>,
    loc: &Locator<'_>,
) -> Result<String, SpecErrors> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                let name = &after[..j];
                match values.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        let start = offset + i;
                        errors.push(loc.error(
                            start..start + j + 3,
                            "",
                            format!("`${{{name}}}` names no declared parameter"),
                            Some(format!(
                                "declare it as [params.{name}] with `default` and `allowed`"
                            )),
                        ));
                    }
                }
                let consumed = i + 2 + j + 1;
                offset += consumed;
                rest = &rest[consumed..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let _ = path;
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(SpecErrors(errors))
    }
}
