//! The age layer: X25519 recipients and identities, the encrypting writer (binary or
//! armored) and a decrypting reader that remembers *why* decryption failed, so that the tar
//! and manifest layers above it, which only see an `io::Error`, can report the real cause.

use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::stream::{StreamReader, StreamWriter};

use super::BundleError;

/// Size of one age payload chunk of plaintext.
const CHUNK_SIZE: u64 = 64 * 1024;

/// Parse `age1...` X25519 recipients (post-quantum and plugin recipients are not accepted:
/// the stock age 1.1 CLI partners use cannot read them).
pub fn parse_recipients(keys: &[String]) -> Result<Vec<age::x25519::Recipient>, BundleError> {
    if keys.is_empty() {
        return Err(BundleError::NoRecipients);
    }
    keys.iter()
        .map(|k| {
            age::x25519::Recipient::from_str(k.trim())
                .map_err(|_| BundleError::BadRecipient(k.clone()))
        })
        .collect()
}

/// Identities from an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments).
pub fn load_identities(
    path: &Path,
) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, BundleError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| BundleError::BadIdentity {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    let ids = age::IdentityFile::from_buffer(io::BufReader::new(file))
        .and_then(|f| {
            f.into_identities()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
        })
        .map_err(|e| BundleError::BadIdentity {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
    if ids.is_empty() {
        return Err(BundleError::BadIdentity {
            path: shown,
            detail: "it holds no identities".into(),
        });
    }
    Ok(ids)
}

/// The encrypting writer: plaintext in, age (optionally armored) out.
pub struct SealWriter<W: Write>(StreamWriter<ArmoredWriter<W>>);

impl<W: Write> SealWriter<W> {
    pub fn new(
        recipients: &[age::x25519::Recipient],
        armor: bool,
        out: W,
    ) -> Result<Self, BundleError> {
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| BundleError::Encrypt(e.to_string()))?;
        let format = if armor {
            Format::AsciiArmor
        } else {
            Format::Binary
        };
        let armored = ArmoredWriter::wrap_output(out, format)
            .map_err(BundleError::io("cannot write the bundle"))?;
        let stream = encryptor
            .wrap_output(armored)
            .map_err(BundleError::io("cannot write the bundle"))?;
        Ok(SealWriter(stream))
    }

    /// Write the final chunk and the armor footer. Without this the bundle is truncated.
    pub fn finish(self) -> Result<W, BundleError> {
        let armored = self
            .0
            .finish()
            .map_err(BundleError::io("cannot finish the bundle"))?;
        armored
            .finish()
            .map_err(BundleError::io("cannot finish the bundle"))
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Why the decrypting reader stopped, recorded for the layers above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoFailure {
    Truncated,
    Tampered { block: u64 },
}

impl CryptoFailure {
    pub fn into_error(self) -> BundleError {
        match self {
            CryptoFailure::Truncated => BundleError::Truncated,
            CryptoFailure::Tampered { block } => BundleError::Tampered { block },
        }
    }
}

/// How an age file starts, binary and armored.
const BINARY_MAGIC: &[u8] = b"age-encryption.org/";
const ARMOR_MAGIC: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Notices the end of the input and keeps its first bytes (to tell "not age at all" from
/// "age, but cut short").
struct Source<R> {
    inner: R,
    at_eof: Arc<Mutex<bool>>,
    prefix: Arc<Mutex<Vec<u8>>>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            *self.at_eof.lock().expect("not poisoned") = true;
        }
        let mut prefix = self.prefix.lock().expect("not poisoned");
        if prefix.len() < ARMOR_MAGIC.len() {
            let take = n.min(ARMOR_MAGIC.len() - prefix.len());
            prefix.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

/// Whether `prefix` could be the start of an age file.
fn looks_like_age(prefix: &[u8]) -> bool {
    let trimmed = prefix.trim_ascii_start();
    [BINARY_MAGIC, ARMOR_MAGIC].iter().any(|magic| {
        let n = trimmed.len().min(magic.len());
        n > 0 && trimmed[..n] == magic[..n]
    })
}

/// The decrypting reader: age (binary or armored) in, plaintext out.
pub struct OpenReader<R: Read> {
    inner: StreamReader<ArmoredReader<io::BufReader<Source<R>>>>,
    plaintext_pos: u64,
    at_eof: Arc<Mutex<bool>>,
    failure: Arc<Mutex<Option<CryptoFailure>>>,
}

/// A handle to read the recorded failure after the reader has been moved into a tar reader.
#[derive(Clone)]
pub struct FailureSlot(Arc<Mutex<Option<CryptoFailure>>>);

impl FailureSlot {
    pub fn get(&self) -> Option<CryptoFailure> {
        *self.0.lock().expect("not poisoned")
    }

    /// Replace `err` with the decryption failure behind it, if there was one.
    pub fn explain(&self, err: BundleError) -> BundleError {
        match self.get() {
            Some(f) => f.into_error(),
            None => err,
        }
    }
}

impl<R: Read> OpenReader<R> {
    /// Read the age header and unwrap the file key with one of `identities`.
    pub fn new(
        input: R,
        identities: &[Box<dyn age::Identity + Send + Sync>],
    ) -> Result<(Self, FailureSlot), BundleError> {
        let at_eof = Arc::new(Mutex::new(false));
        let prefix = Arc::new(Mutex::new(Vec::new()));
        let source = Source {
            inner: input,
            at_eof: at_eof.clone(),
            prefix: prefix.clone(),
        };
        let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(source)).map_err(|e| {
            if !looks_like_age(&prefix.lock().expect("not poisoned")) {
                return BundleError::NotAgeFile("it does not start like an age file".into());
            }
            header_error(e, *at_eof.lock().expect("not poisoned"))
        })?;
        let inner = decryptor
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| header_error(e, false))?;
        let failure = Arc::new(Mutex::new(None));
        Ok((
            OpenReader {
                inner,
                plaintext_pos: 0,
                at_eof,
                failure: failure.clone(),
            },
            FailureSlot(failure),
        ))
    }
}

fn header_error(e: age::DecryptError, at_eof: bool) -> BundleError {
    use age::DecryptError as D;
    match e {
        D::NoMatchingKeys => BundleError::WrongKey,
        D::InvalidMac => BundleError::HeaderTampered,
        D::UnknownFormat => BundleError::NotAgeFile("unknown age version".into()),
        D::InvalidHeader if at_eof => BundleError::Truncated,
        D::InvalidHeader => BundleError::NotAgeFile("no valid age header".into()),
        D::Io(e) if at_eof || e.kind() == io::ErrorKind::UnexpectedEof => BundleError::Truncated,
        D::Io(e) => BundleError::NotAgeFile(e.to_string()),
        other => BundleError::NotAgeFile(other.to_string()),
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.plaintext_pos += n as u64;
                Ok(n)
            }
            Err(e) => {
                let at_eof = *self.at_eof.lock().expect("not poisoned");
                let failure = if e.kind() == io::ErrorKind::UnexpectedEof || at_eof {
                    // The chunk that failed is the last one the input holds: either it was
                    // cut short or it is the genuine final chunk and damaged.
                    CryptoFailure::Truncated
                } else {
                    CryptoFailure::Tampered {
                        block: self.plaintext_pos / CHUNK_SIZE,
                    }
                };
                *self.failure.lock().expect("not poisoned") = Some(failure);
                Err(e)
            }
        }
    }
}
