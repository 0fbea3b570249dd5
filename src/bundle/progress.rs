//! Progress reporting for long seals and opens. The library only counts bytes; the CLI draws
//! the bars (indicatif) when stderr is a terminal.

use std::io::{self, Read};

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// First pass over the input files: computing their SHA-256 for the manifest.
    Hashing,
    /// Second pass: tar, encrypt and write.
    Sealing,
    /// Decrypting, verifying and writing the files.
    Opening,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Hashing => "hashing",
            Phase::Sealing => "sealing",
            Phase::Opening => "opening",
        }
    }
}

/// Receives byte counts. Every method has a do-nothing default.
pub trait Progress {
    fn begin(&self, _phase: Phase, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn end(&self) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A reader that reports the bytes read through it.
pub(crate) struct ProgressRead<'p, R> {
    pub inner: R,
    pub progress: &'p dyn Progress,
}

impl<R: Read> Read for ProgressRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
