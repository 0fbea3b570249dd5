//! Progress reporting for long seals and opens. The library only counts bytes; the CLI draws
//! the bars (indicatif) when stderr is a terminal.

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and hashing the input files, tar, encrypt and write.
    Sealing,
    /// Decrypting, verifying and writing the files.
    Opening,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Sealing => "sealing",
            Phase::Opening => "opening",
        }
    }
}

/// Receives byte counts. Every method has a do-nothing default. `begin`'s total is 0 when it
/// is not known in advance.
pub trait Progress {
    fn begin(&self, _phase: Phase, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn end(&self) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
