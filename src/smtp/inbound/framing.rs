//! Where a command line and where a message end: the client's bytes framed, without IO.
//!
//! This is the security boundary of the SMTP listener. If markgate and the MTA in front of it
//! disagree about where the message data ends, the rest of one message is run as commands
//! (SMTP smuggling, CVE-2023-51764/51765/51766): a second transaction with a forged sender,
//! decided and relayed with the first client's rights. So:
//!
//! - message data ends only at the exact bytes CR LF "." CR LF (the line end of `DATA`
//!   counts as the first CR LF, so an empty message is `.` CR LF); a line-start dot
//!   after CR LF is removed (dot-stuffing, RFC 5321 §4.5.2); nothing else ends the data:
//!   not a bare LF or CR, not `.` followed by extra CRs, NULs or spaces;
//! - a line holding only a dot between line breaks that are not both CR LF (`\n.\n`,
//!   `\r.\r`, `\r\n.\n`, `\n.\r\n`, `\r\n.\r\r\n` ...) is what a lenient server would take
//!   for the end: it is kept as content and reported in [`Received::fake_end`], and the
//!   message is refused at the real end (see `data.rs`), so what followed the fake end was
//!   message data that nobody runs;
//! - a command line is at most `smtp.max_command_line` octets with its CR LF; a longer one
//!   is reported once and the rest of it, up to its LF, is discarded, never run as a
//!   command of its own.
//!
//! The session ([`super::Session`]) feeds what it reads into a [`Framer`] and acts on the
//! [`Frame`]s it returns; tests and the fuzz target drive a `Framer` directly.

/// One thing the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete command line, ending in LF, within the limit.
    Command(Vec<u8>),
    /// A command line went over the limit: its first word (the verb, at most 8 letters, or
    /// empty). Said once per line; the whole line is discarded up to and including its LF.
    CommandTooLong(String),
    /// The message data is complete: the client sent CR LF "." CR LF.
    Message(Received),
}

/// The client's bytes framed into commands and message data.
#[derive(Debug)]
pub struct Framer {
    max_command_line: usize,
    line: Vec<u8>,
    discarding: bool,
    data: Option<DataReader>,
}

impl Framer {
    /// `max_command_line`: octets of a command line, CR LF included.
    pub fn new(max_command_line: usize) -> Framer {
        Framer {
            max_command_line,
            line: Vec::new(),
            discarding: false,
            data: None,
        }
    }

    /// The server answered `354`: what follows is message data, kept up to `max_size`
    /// octets (beyond that it is still read to its end, and discarded).
    pub fn start_data(&mut self, max_size: usize) {
        self.data = Some(DataReader::new(max_size));
    }

    /// Whether message data is being read.
    pub fn in_data(&self) -> bool {
        self.data.is_some()
    }

    /// Whether part of a command line has been read and not yet framed.
    pub fn has_partial_line(&self) -> bool {
        !self.line.is_empty() || self.discarding
    }

    /// The next frame from `input`, which is advanced past what was used; `None` when
    /// `input` is used up without completing one (the bytes are kept for the next call).
    pub fn next(&mut self, input: &mut &[u8]) -> Option<Frame> {
        while !input.is_empty() {
            if let Some(reader) = &mut self.data {
                if reader.ingest(input) {
                    let received = self.data.take().expect("reading data").finish();
                    return Some(Frame::Message(received));
                }
                continue;
            }
            let newline = memchr::memchr(b'\n', input);
            let take = newline.map_or(input.len(), |p| p + 1);
            let (head, rest) = input.split_at(take);
            *input = rest;
            if self.discarding {
                self.discarding = newline.is_none();
                continue;
            }
            if self.line.len() + head.len() > self.max_command_line {
                self.line.extend_from_slice(&head[..head.len().min(16)]);
                let verb = verb(&self.line);
                self.line.clear();
                self.discarding = newline.is_none();
                return Some(Frame::CommandTooLong(verb));
            }
            self.line.extend_from_slice(head);
            if newline.is_some() {
                return Some(Frame::Command(std::mem::take(&mut self.line)));
            }
        }
        None
    }
}

/// The first word of a command line, upper case, if it looks like a verb.
fn verb(line: &[u8]) -> String {
    let word = line
        .split(|b| !b.is_ascii_alphabetic())
        .next()
        .unwrap_or(&[]);
    if word.len() <= 8 {
        String::from_utf8_lossy(word).to_ascii_uppercase()
    } else {
        String::new()
    }
}

/// A message as received, dot-stuffing removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Received {
    /// The message, ending with the CR LF before the final dot; empty when `oversize`.
    pub data: Vec<u8>,
    /// The data went over the size limit and was discarded.
    pub oversize: bool,
    /// The first line (1-based, counting every CR LF, bare LF and bare CR as a line break)
    /// that holds only a dot between line breaks other than CR LF on both sides.
    pub fake_end: Option<usize>,
}

/// Where the reader is in the raw data. "Clean" line starts follow CR LF (or begin the
/// data); "bare" ones follow a bare LF or a bare CR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    LineStart,
    BareLineStart,
    /// Clean line start, then `.` (removed: it ends the data or is a stuffed dot).
    Dot,
    /// Clean line start, then `.` CR (withheld: LF here ends the data).
    DotCr,
    /// Bare line start, then `.` (kept).
    BareDot,
    /// Bare line start, then `.` CR (CR withheld).
    BareDotCr,
    Text,
    /// A CR inside a line (kept): LF next makes a clean line break.
    Cr,
}

/// Message data up to CR LF "." CR LF; see the module documentation.
#[derive(Debug)]
struct DataReader {
    at: At,
    out: Received,
    max_size: usize,
    /// Line number of the current line (1-based).
    line: usize,
}

impl DataReader {
    fn new(max_size: usize) -> DataReader {
        DataReader {
            at: At::LineStart,
            out: Received::default(),
            max_size,
            line: 1,
        }
    }

    fn finish(self) -> Received {
        self.out
    }

    fn emit(&mut self, bytes: &[u8]) {
        if self.out.oversize {
            return;
        }
        if self.out.data.len() + bytes.len() > self.max_size {
            self.out.oversize = true;
            self.out.data = Vec::new();
            return;
        }
        self.out.data.extend_from_slice(bytes);
    }

    fn fake_end(&mut self) {
        self.out.fake_end.get_or_insert(self.line);
    }

    /// Read from `input` (advanced past what was used); true once the data has ended.
    fn ingest(&mut self, input: &mut &[u8]) -> bool {
        while let Some((&b, rest)) = input.split_first() {
            if self.at == At::Text {
                // the common case: copy up to the next CR or LF at once
                let run = memchr::memchr2(b'\r', b'\n', input).unwrap_or(input.len());
                if run > 0 {
                    let (text, rest) = input.split_at(run);
                    self.emit(text);
                    *input = rest;
                    continue;
                }
            }
            *input = rest;
            if self.step(b) {
                return true;
            }
        }
        false
    }

    /// One byte; true at the end of the data.
    fn step(&mut self, b: u8) -> bool {
        match (self.at, b) {
            (At::LineStart, b'.') => self.at = At::Dot,
            (At::Dot, b'\r') => self.at = At::DotCr,
            (At::DotCr, b'\n') => return true,
            (At::Dot, b'\n') => {
                self.fake_end();
                self.emit(b"\n");
                self.line += 1;
                self.at = At::BareLineStart;
            }
            (At::Dot, _) => {
                // a stuffed dot: removed, the rest of the line is content
                self.text(b);
            }
            (At::DotCr, _) => {
                self.fake_end();
                self.emit(b"\r");
                self.after_bare_cr(b);
            }
            (At::BareLineStart, b'.') => {
                self.emit(b".");
                self.at = At::BareDot;
            }
            (At::BareDot, b'\r') => self.at = At::BareDotCr,
            (At::BareDot, b'\n') => {
                self.fake_end();
                self.emit(b"\n");
                self.line += 1;
                self.at = At::BareLineStart;
            }
            (At::BareDot, _) => self.text(b),
            (At::BareDotCr, b'\n') => {
                self.fake_end();
                self.emit(b"\r\n");
                self.line += 1;
                self.at = At::LineStart;
            }
            (At::BareDotCr, _) => {
                self.fake_end();
                self.emit(b"\r");
                self.after_bare_cr(b);
            }
            (At::Cr, b'\n') => {
                self.emit(b"\n");
                self.line += 1;
                self.at = At::LineStart;
            }
            (At::Cr, _) => {
                self.after_bare_cr(b);
            }
            (At::LineStart | At::BareLineStart | At::Text, _) => self.text(b),
        }
        false
    }

    /// `b` follows a CR that was not followed by LF: a bare CR, so `b` starts a line.
    fn after_bare_cr(&mut self, b: u8) {
        self.line += 1;
        self.at = At::BareLineStart;
        if b == b'.' {
            self.emit(b".");
            self.at = At::BareDot;
        } else {
            self.text(b);
        }
    }

    /// `b` inside a line.
    fn text(&mut self, b: u8) {
        self.emit(&[b]);
        match b {
            b'\r' => self.at = At::Cr,
            b'\n' => {
                self.line += 1;
                self.at = At::BareLineStart;
            }
            _ => self.at = At::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_data(raw: &[u8]) -> Option<(Received, usize)> {
        let mut framer = Framer::new(512);
        framer.start_data(1 << 20);
        let mut input = raw;
        match framer.next(&mut input) {
            Some(Frame::Message(r)) => Some((r, raw.len() - input.len())),
            _ => None,
        }
    }

    #[test]
    fn only_crlf_dot_crlf_ends_the_data() {
        let (r, used) = read_data(b"a\r\n.\r\nMAIL").unwrap();
        assert_eq!((r.data.as_slice(), used), (&b"a\r\n"[..], 6));
        assert_eq!(r.fake_end, None);
        let (r, used) = read_data(b".\r\nNOOP\r\n").unwrap();
        assert_eq!((r.data.as_slice(), used), (&b""[..], 3), "empty message");
        for fake in [
            &b"a\n.\nb\r\n.\r\n"[..],
            b"a\r.\rb\r\n.\r\n",
            b"a\r\n.\nb\r\n.\r\n",
            b"a\n.\r\nb\r\n.\r\n",
            b"a\r\n.\r\r\nb\r\n.\r\n",
            b"a\r.\r\nb\r\n.\r\n",
        ] {
            let (r, used) = read_data(fake).unwrap();
            assert_eq!(used, fake.len(), "{:?}", String::from_utf8_lossy(fake));
            assert_eq!(r.fake_end, Some(2), "{:?}", String::from_utf8_lossy(fake));
        }
    }

    #[test]
    fn stuffed_dots_are_removed_after_crlf_only() {
        let (r, _) = read_data(b"..a\r\n..\r\nb\n..c\r\n.\r\n").unwrap();
        assert_eq!(r.data, b".a\r\n.\r\nb\n..c\r\n");
        assert_eq!(r.fake_end, None);
    }

    #[test]
    fn the_end_is_found_across_reads() {
        let raw = b"x\r\n.y\r\n.\r\nQUIT\r\n";
        for split in 0..raw.len() {
            let mut framer = Framer::new(512);
            framer.start_data(1 << 20);
            let (a, b) = raw.split_at(split);
            let mut first = a;
            let mut frame = framer.next(&mut first);
            let mut second = b;
            if frame.is_none() {
                frame = framer.next(&mut second);
            }
            let Some(Frame::Message(r)) = frame else {
                panic!("no end at split {split}");
            };
            assert_eq!(r.data, b"x\r\ny\r\n", "split {split}");
            let rest = [first, second].concat();
            assert_eq!(rest, b"QUIT\r\n", "split {split}");
        }
    }

    #[test]
    fn oversize_data_is_read_to_its_end_and_dropped() {
        let mut framer = Framer::new(512);
        framer.start_data(4);
        let mut input = &b"0123456789\r\n.\r\nNOOP\r\n"[..];
        let Some(Frame::Message(r)) = framer.next(&mut input) else {
            panic!()
        };
        assert!(r.oversize && r.data.is_empty());
        assert_eq!(input, b"NOOP\r\n");
    }

    #[test]
    fn a_long_command_line_is_reported_once_and_its_tail_dropped() {
        let mut framer = Framer::new(16);
        let long = format!("NOOP {}\r\nQUIT\r\n", "x".repeat(100));
        // in one read, and a byte at a time
        let mut input = long.as_bytes();
        let mut frames = Vec::new();
        while let Some(f) = framer.next(&mut input) {
            frames.push(f);
        }
        assert_eq!(
            frames,
            vec![
                Frame::CommandTooLong("NOOP".into()),
                Frame::Command(b"QUIT\r\n".to_vec())
            ]
        );
        let mut frames = Vec::new();
        for b in long.as_bytes().chunks(1) {
            let mut input = b;
            while let Some(f) = framer.next(&mut input) {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame::CommandTooLong("NOOP".into()),
                Frame::Command(b"QUIT\r\n".to_vec())
            ]
        );
        let mut input = &b"NOOP 0123456\r\n"[..];
        assert_eq!(
            framer.next(&mut input),
            Some(Frame::Command(b"NOOP 0123456\r\n".to_vec())),
            "16 octets with CR LF is at the limit"
        );
    }
}
