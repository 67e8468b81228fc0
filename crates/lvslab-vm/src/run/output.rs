//! Following the command's output files while the guest runs: streamed, kept, or both.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::OutputMode;
use crate::error::{Result, VmError};

#[derive(Clone, Copy)]
pub(super) enum Stream {
    Out,
    Err,
}

/// Follows a file the guest appends to and forwards what is new.
pub(super) struct Tail {
    file: File,
    path: PathBuf,
    mode: OutputMode,
    stream: Stream,
    pub(super) captured: Vec<u8>,
}

impl Tail {
    pub(super) fn open(path: &Path, mode: OutputMode, stream: Stream) -> Result<Tail> {
        let file = File::open(path).map_err(|e| VmError::io("open", path, e))?;
        Ok(Tail {
            file,
            path: path.to_path_buf(),
            mode,
            stream,
            captured: Vec::new(),
        })
    }

    pub(super) fn pump(&mut self) -> Result<()> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = self
                .file
                .read(&mut buf)
                .map_err(|e| VmError::io("read", &self.path, e))?;
            if n == 0 {
                return Ok(());
            }
            let chunk = &buf[..n];
            if self.mode != OutputMode::Stream {
                self.captured.extend_from_slice(chunk);
            }
            if self.mode != OutputMode::Capture {
                // A closed stdout (`| head`) must not abort the run or leave qemu behind.
                let _ = match self.stream {
                    Stream::Out => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(chunk).and_then(|()| out.flush())
                    }
                    Stream::Err => {
                        let mut err = std::io::stderr().lock();
                        err.write_all(chunk).and_then(|()| err.flush())
                    }
                };
            }
        }
    }
}
