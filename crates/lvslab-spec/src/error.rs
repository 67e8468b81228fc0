//! Errors that point at the lab file: `file:line:col: field.path: message (help)`.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a lab file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no single place (e.g. the file is unreadable).
    pub line: usize,
    pub col: usize,
    /// Field path such as `node[2].interfaces.eth0[0]`.
    pub path: String,
    pub message: String,
    /// What would be valid.
    pub help: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(h) = &self.help {
            write!(f, "\n    help: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one lab file (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

/// Where a `${name}` was replaced by its value: byte offsets in the text that was parsed
/// (`at`, `len` of the value) and in the file as written (`orig_at`, `orig_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edit {
    pub at: usize,
    pub len: usize,
    pub orig_at: usize,
    pub orig_len: usize,
}

/// Maps byte offsets of one source text to 1-based line and column (in characters) of
/// the file as written, through the parameter substitutions made before parsing.
pub(crate) struct Locator<'a> {
    file: &'a Path,
    /// The file as written: lines and columns are counted here.
    text: &'a str,
    /// Substitutions in text order.
    edits: Vec<Edit>,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Locator {
            file,
            text,
            edits: Vec::new(),
        }
    }

    /// A locator for text made from `text` by `edits`.
    pub fn with_edits(file: &'a Path, text: &'a str, edits: Vec<Edit>) -> Self {
        Locator { file, text, edits }
    }

    /// The offset in the file as written of an offset in the parsed text: a place inside
    /// a substituted value maps to its `${`.
    fn original_offset(&self, offset: usize) -> usize {
        let mut orig = offset;
        for e in &self.edits {
            if offset < e.at {
                break;
            }
            if offset < e.at + e.len {
                return e.orig_at;
            }
            orig = offset - (e.at + e.len) + (e.orig_at + e.orig_len);
        }
        orig
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(self.text, self.original_offset(offset))
    }

    pub fn error(
        &self,
        span: std::ops::Range<usize>,
        path: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> SpecError {
        let (line, col) = self.line_col(span.start);
        SpecError {
            file: self.file.to_path_buf(),
            line,
            col,
            path: path.into(),
            message: message.into(),
            help,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset; an offset inside a
/// character counts as that character.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// The text of a file, or an error at the first byte that is not UTF-8.
pub(crate) fn utf8<'b>(file: &Path, bytes: &'b [u8]) -> Result<&'b str, SpecError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = e.valid_up_to();
        let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let (line, col) = line_col(before, valid);
        SpecError {
            file: file.to_path_buf(),
            line,
            col,
            path: String::new(),
            message: format!(
                "the file is not UTF-8 text: byte 0x{:02x} starts no valid character",
                bytes[valid]
            ),
            help: Some("save the file as UTF-8".into()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // After `bé` (3 bytes, 2 characters).
        assert_eq!(line_col(text, 9), (2, 3));
        // Inside `é`: the character's own column.
        assert_eq!(line_col(text, 8), (2, 2));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn the_first_invalid_byte_is_located() {
        let bytes = b"[lab]\nname = \"n\xe9\xff\"\n";
        let e = utf8(Path::new("l.toml"), bytes).expect_err("invalid");
        assert_eq!((e.line, e.col), (2, 10));
        assert!(e.message.contains("byte 0xe9"), "{}", e.message);
        let e = utf8(Path::new("l.toml"), b"\xff").expect_err("invalid");
        assert_eq!((e.line, e.col), (1, 1));
        assert_eq!(utf8(Path::new("l.toml"), "é".as_bytes()).ok(), Some("é"));
    }

    #[test]
    fn offsets_map_back_through_substitutions() {
        // "x = \"${p}\" y" with ${p} = "long-value".
        let original = "x = \"${p}\" y";
        let edits = vec![Edit {
            at: 5,
            len: 10,
            orig_at: 5,
            orig_len: 4,
        }];
        let loc = Locator::with_edits(Path::new("f"), original, edits);
        assert_eq!(loc.line_col(4), (1, 5));
        assert_eq!(loc.line_col(7), (1, 6));
        // The `y` after the value: offset 17 in the parsed text, 11 in the file.
        assert_eq!(loc.line_col(17), (1, 12));
    }
}
