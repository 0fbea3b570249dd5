//! SMTP smuggling (issue 16, hole 5; CVE-2023-51764/51765/51766): only the exact bytes
//! CR LF "." CR LF end message data, whatever surrounds a line-start dot, in both
//! `smtp.bare_line_endings` modes; a message with a fake end is refused at its real end, so
//! nothing that followed the fake end is ever run as a command.
//!
//! Three levels. Every sequence of up to six bytes from {CR, LF, NUL, SP, "."} at the start
//! of the data, inside a line and at a line start, framed by the session's [`Framer`] and
//! judged by [`check_received`], against a reference written independently of them (the
//! first CR LF . CR LF ends the data; a dot opening a CR LF line is removed). The real
//! in-memory session for the shorter sequences. The worst ones over TCP against
//! `markgate serve`, checking the outbox and the decision records.

mod common;

use std::time::{Duration, Instant};

use common::smtp::{start, Client, Setup};
use common::{audit_records, wait_for};
use markgate::config::smtp::BareLineEndings;
use markgate::smtp::inbound::framing::{Frame, Framer, Received};
use markgate::smtp::inbound::{check_received, LineProblem};

const ALPHABET: [u8; 5] = [b'\r', b'\n', 0, b' ', b'.'];

/// Where the sequence goes: at the start of the data, inside a line, at a line start.
const PREFIXES: [&[u8]; 3] = [
    b"",
    b"Subject: x\r\n\r\nbody",
    b"Subject: x\r\n\r\nbody\r\n",
];

/// The smuggled transaction, short, for the exhaustive framing test (a command, DATA, a
/// message and its end, QUIT: the framer's every state).
const SMUGGLED_SHORT: &[u8] = b"MAIL FROM:<f@x>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";

/// A second transaction, as an attacker appends it after a fake end of data.
const SMUGGLED: &[u8] = b"MAIL FROM:<forged@attacker.test>\r\n\
RCPT TO:<victim@westmidlands.pnn.police.uk>\r\nDATA\r\n\
Subject: [OFFICIAL] smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n";

const MODES: [BareLineEndings; 2] = [BareLineEndings::Reject, BareLineEndings::Normalise];

/// Every sequence of 0 to `max` bytes over [`ALPHABET`].
fn sequences(max: u32) -> impl Iterator<Item = Vec<u8>> {
    (0..=max).flat_map(|len| {
        (0..5usize.pow(len)).map(move |mut n| {
            (0..len)
                .map(|_| {
                    let b = ALPHABET[n % 5];
                    n /= 5;
                    b
                })
                .collect()
        })
    })
}

fn show(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'\r' => "CR".to_string(),
            b'\n' => "LF".to_string(),
            0 => "NUL".to_string(),
            b' ' => "SP".to_string(),
            b => (b as char).to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// The reference

#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// Message data, dot-stuffing removed.
    Data(Vec<u8>),
    Command(Vec<u8>),
}

/// Where the first CR LF . CR LF ends data that starts at `rest[0]` (the DATA line's CR LF
/// counts): the data (stuffed, with its last CR LF) and what follows the end.
fn reference_end(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let with_crlf = [b"\r\n", rest].concat();
    let at = with_crlf.windows(5).position(|w| w == b"\r\n.\r\n")?;
    Some((&rest[..at], &rest[at + 3..]))
}

/// Remove the dot that opens a CR LF line.
fn reference_unstuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line_start = true;
    let mut i = 0;
    while i < data.len() {
        if !(line_start && data[i] == b'.') {
            out.push(data[i]);
        }
        line_start = data[i] == b'\n' && i > 0 && data[i - 1] == b'\r';
        i += 1;
    }
    out
}

/// What a client sends after `354`, framed: data to the first CR LF . CR LF, then command
/// lines, a `DATA` line starting data again.
fn reference(mut rest: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut in_data = true;
    loop {
        if in_data {
            let Some((data, after)) = reference_end(rest) else {
                return events;
            };
            events.push(Event::Data(reference_unstuff(data)));
            rest = after;
            in_data = false;
        } else {
            let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                return events;
            };
            let (line, after) = rest.split_at(lf + 1);
            in_data = line == b"DATA\r\n";
            events.push(Event::Command(line.to_vec()));
            rest = after;
        }
    }
}

/// A line holding only a dot, with a CR or LF on each side (or the start of the data before
/// it): a lenient server's end of data. (CR LF . CR LF itself ends the data, so inside
/// the data it is always a fake.)
fn reference_fake_end(data: &[u8]) -> bool {
    let brk = |b: u8| b == b'\r' || b == b'\n';
    (0..data.len()).any(|i| {
        data[i] == b'.' && (i == 0 || brk(data[i - 1])) && data.get(i + 1).is_some_and(|&b| brk(b))
    })
}

fn has_bare_line_ending(data: &[u8]) -> bool {
    (0..data.len()).any(|i| match data[i] {
        b'\r' => data.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || data[i - 1] != b'\r',
        _ => false,
    })
}

/// How markgate must judge data (stuffed, as sent): `None` accepted, or the kind of refusal.
fn reference_verdict(stuffed: &[u8], mode: BareLineEndings) -> Option<&'static str> {
    let data = reference_unstuff(stuffed);
    if reference_fake_end(stuffed) {
        Some("fake end")
    } else if data.contains(&0) {
        Some("NUL")
    } else if mode == BareLineEndings::Reject && has_bare_line_ending(&data) {
        Some("bare line ending")
    } else {
        None
    }
}

fn verdict_kind(problem: &LineProblem) -> &'static str {
    match problem {
        LineProblem::FakeEnd { .. } => "fake end",
        LineProblem::Nul { .. } => "NUL",
        LineProblem::BareLf { .. } | LineProblem::BareCr { .. } => "bare line ending",
        other => panic!("unexpected {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Framer against the reference, every sequence

/// What the client sends after `354`, framed by the session's [`Framer`], fed `chunk` bytes
/// at a time; a `DATA` line starts data as the session does after `354`.
fn framed(stream: &[u8], chunk: usize) -> (Vec<Event>, Vec<Received>) {
    let mut framer = Framer::new(markgate::config::smtp::MAX_COMMAND_LINE);
    framer.start_data(1 << 20);
    let mut events = Vec::new();
    let mut messages = Vec::new();
    for piece in stream.chunks(chunk) {
        let mut input = piece;
        while let Some(frame) = framer.next(&mut input) {
            match frame {
                Frame::Message(received) => {
                    events.push(Event::Data(received.data.clone()));
                    messages.push(received);
                }
                Frame::Command(line) => {
                    if line == b"DATA\r\n" {
                        framer.start_data(1 << 20);
                    }
                    events.push(Event::Command(line));
                }
                Frame::CommandTooLong(_) => panic!("no long lines here"),
            }
        }
    }
    (events, messages)
}

/// What markgate sends on: dot-stuffed after CR LF, then the end of data.
fn stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    let mut line_start = true;
    for (i, &b) in data.iter().enumerate() {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n' && i > 0 && data[i - 1] == b'\r';
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[test]
fn every_sequence_of_up_to_six_bytes_around_a_line_start_ends_the_data_only_at_crlf_dot_crlf() {
    let started = Instant::now();
    let (mut cases, mut smuggling_attempts, mut refused, mut normalised) = (0, 0, 0, 0);
    for prefix in PREFIXES {
        for seq in sequences(6) {
            let head = [prefix, &seq].concat();
            let stream = [&head[..], SMUGGLED_SHORT].concat();
            let want = reference(&stream);
            let (got, messages) = framed(&stream, stream.len());
            assert_eq!(
                got,
                want,
                "prefix {:?}, sequence [{}]",
                show(prefix),
                show(&seq)
            );
            let (got_bytewise, _) = framed(&stream, 1);
            assert_eq!(got_bytewise, want, "byte at a time: [{}]", show(&seq));

            // Without CR LF . CR LF before the smuggled commands, they are message data:
            // the only command after the real end is the client's own QUIT.
            let first_data = reference_end(&stream).expect("the stream has an end").0;
            if reference_end(&head).is_none() {
                smuggling_attempts += 1;
                assert_eq!(
                    want[1..],
                    [Event::Command(b"QUIT\r\n".to_vec())],
                    "[{}]",
                    show(&seq)
                );
            }

            for mode in MODES {
                cases += 1;
                let verdict = check_received(&messages[0], mode, 1 << 20, false);
                let expected = reference_verdict(first_data, mode);
                assert_eq!(
                    verdict.as_ref().err().map(verdict_kind),
                    expected,
                    "{mode:?}, prefix {:?}, sequence [{}]",
                    show(prefix),
                    show(&seq)
                );
                match verdict {
                    Err(_) => refused += 1,
                    Ok(accepted) => {
                        // What is accepted is passed on intact: only CR LF line ends, and a
                        // next hop reading it back, stuffed, sees one message, the same.
                        assert!(!has_bare_line_ending(&accepted), "[{}]", show(&seq));
                        let resent = stuff(&accepted);
                        let (again, reread) = framed(&resent, resent.len());
                        assert_eq!(again, vec![Event::Data(accepted.to_vec())]);
                        assert_eq!(reread[0].fake_end, None);
                        normalised += usize::from(accepted != messages[0].data);
                    }
                }
            }
        }
    }
    assert_eq!(
        cases,
        3 * 19531 * 2,
        "sequences of 0 to 6 bytes, both modes"
    );
    assert!(
        smuggling_attempts > 50_000 && refused > 40_000 && normalised > 0,
        "{smuggling_attempts} {refused} {normalised}"
    );
    eprintln!(
        "{cases} cases ({smuggling_attempts} streams with a smuggled transaction, {refused} refused) in {:?}",
        started.elapsed()
    );
}

/// The sequences that ended the data before the fix (smtp-proto's reader took "." and any
/// number of CRs before LF as the end) and the classic ones, each as a fake end.
const WORST: [&[u8]; 8] = [
    b"\r\n.\r\r\n",
    b"\r\n.\r\r\r\n",
    b"\n.\n",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\r",
];

#[test]
fn the_worst_sequences_are_fake_ends_in_the_framer() {
    for seq in WORST {
        let stream = [b"Subject: x\r\n\r\nbody", seq, SMUGGLED].concat();
        let (events, messages) = framed(&stream, stream.len());
        assert_eq!(messages.len(), 1, "[{}]", show(seq));
        assert_eq!(
            messages[0].fake_end,
            Some(4),
            "line 4 holds the dot: [{}]",
            show(seq)
        );
        assert_eq!(events[1..], [Event::Command(b"QUIT\r\n".to_vec())]);
    }
}

// ---------------------------------------------------------------------------------------
// The real session, in memory

/// The replies of one in-memory session that sends `data` after `354`, then what it
/// pipelined (the smuggled transaction and QUIT).
async fn session_replies(h: &mut common::smtp::Harness, data: &[u8]) -> Vec<String> {
    h.reconnect();
    h.hello().await;
    h.cmd(
        "MAIL FROM:<officer@westmidlands.pnn.police.uk>",
        "250 2.1.0",
    )
    .await;
    h.cmd("RCPT TO:<colleague@westmidlands.pnn.police.uk>", "250")
        .await;
    h.cmd("DATA", "354").await;
    h.send_bytes(data).await;
    let rest = h.rest_until_closed().await;
    rest.split_inclusive("\r\n").map(str::to_string).collect()
}

#[tokio::test]
async fn the_session_runs_nothing_after_a_fake_end_for_every_sequence_of_up_to_three_bytes() {
    let started = Instant::now();
    for mode in MODES {
        let mut h = start(|c| c.smtp.bare_line_endings = mode, true);
        let mut checked = 0;
        for prefix in PREFIXES {
            for seq in sequences(3) {
                let head = [prefix, &seq].concat();
                if reference_end(&head).is_some() {
                    continue; // a real end: what follows is commands, rightly
                }
                let stream = [&head[..], SMUGGLED].concat();
                let replies = session_replies(&mut h, &stream).await;
                let case = format!("{mode:?} prefix {:?} [{}]", show(prefix), show(&seq));
                assert_eq!(replies.len(), 2, "{case}: {replies:?}");
                assert!(replies[1].starts_with("221 "), "{case}: {replies:?}");
                let expected = reference_verdict(reference_end(&stream).unwrap().0, mode);
                if expected.is_some() {
                    assert!(replies[0].starts_with("550 5.6.0"), "{case}: {replies:?}");
                } else {
                    assert!(
                        replies[0].starts_with("250 ") || replies[0].starts_with("550 5.6.0"),
                        "{case}: {replies:?}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 300, "{checked}");
        while let Ok(envelope) = h.queued.try_recv() {
            assert_eq!(envelope.sender, "officer@westmidlands.pnn.police.uk");
        }
    }
    eprintln!("in {:?}", started.elapsed());
}

#[tokio::test]
async fn a_fake_end_is_refused_in_both_modes_and_the_session_stays_in_step() {
    for mode in MODES {
        let mut h = start(|c| c.smtp.bare_line_endings = mode, true);
        for seq in WORST {
            h.reconnect();
            h.hello().await;
            h.cmd("MAIL FROM:<a@westmidlands.pnn.police.uk>", "250")
                .await;
            h.cmd("RCPT TO:<b@westmidlands.pnn.police.uk>", "250").await;
            h.cmd("DATA", "354").await;
            let data = [
                b"Subject: [OFFICIAL] a\r\n\r\nfirst",
                seq,
                b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@gmail.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nhi\r\n.\r\n",
            ]
            .concat();
            h.send_bytes(&data).await;
            let r = h.reply().await;
            assert!(
                r.starts_with("550 5.6.0") && r.contains("lone dot"),
                "{mode:?} [{}]: {r}",
                show(seq)
            );
            // in step: the smuggled commands were data, nobody answered them
            h.cmd("NOOP", "250 2.0.0 ok").await;
        }
        assert!(h.queued.try_recv().is_err(), "nothing may be queued");
    }
}

// ---------------------------------------------------------------------------------------
// End to end, raw TCP against `markgate serve`

#[test]
fn a_smuggled_mail_from_after_a_fake_end_is_never_delivered_or_recorded() {
    for mode in ["reject", "normalise"] {
        let setup = Setup::new("", None);
        setup.smtp_keys(&format!("bare_line_endings = \"{mode}\""));
        let server = setup.serve();
        let mut sequences: Vec<&[u8]> = WORST.to_vec();
        // a dot with a space or NUL after it is a stuffed line, content: one message
        sequences.extend([&b"\r\n. \r\n"[..], b"\r\n.\0\r\n"]);
        let mut accepted = 0;
        for seq in sequences {
            let mut client = Client::connect(setup.port);
            client.hello();
            client.start_data(&["colleague@westmidlands.pnn.police.uk"]);
            client.send_bytes(
                &[
                    b"From: officer@westmidlands.pnn.police.uk\r\n\
                      Subject: [OFFICIAL] first\r\nX-Protective-Marking: OFFICIAL\r\n\r\nfirst",
                    seq,
                    SMUGGLED,
                ]
                .concat(),
            );
            let rest = client.rest_until_closed();
            let replies: Vec<&str> = rest.split_inclusive("\r\n").collect();
            let case = format!("{mode} [{}]", show(seq));
            assert_eq!(
                replies.len(),
                2,
                "{case}: one reply for the data, then QUIT: {rest:?}"
            );
            assert!(replies[1].starts_with("221 "), "{case}: {rest:?}");
            if seq == b"\r\n. \r\n" {
                assert!(replies[0].starts_with("250 2.0.0"), "{case}: {rest:?}");
                accepted += 1;
            } else {
                assert!(replies[0].starts_with("550 5.6.0"), "{case}: {rest:?}");
            }
        }
        let delivered = wait_for(Duration::from_secs(10), || {
            let outbox = setup.outbox();
            (outbox.len() >= accepted).then_some(outbox)
        })
        .unwrap_or_else(|| panic!("{mode}: not delivered\n{}", server.log_text()));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            setup.outbox().len(),
            accepted,
            "{mode}: one delivery per message"
        );
        assert!(
            delivered[0].contains("MAIL FROM:<forged@attacker.test>"),
            "{mode}: the smuggled lines travel as the first message's text"
        );
        let records = audit_records(&setup.path().join("var/records.sqlite"));
        assert_eq!(records.len(), accepted, "{mode}: {records:#?}");
        for r in &records {
            assert_eq!(r["sender"], "officer@westmidlands.pnn.police.uk", "{r}");
        }
    }
}
