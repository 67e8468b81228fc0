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

/// Maps byte offsets of one source text to 1-based line and column (in characters).
pub(crate) struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Locator { file, text }
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, col)
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
