//! Issue 16, proved generatively: in every place a marking stands (the subject, each marking
//! header, `SIO-Label`, EPMS, `msip_labels`, banner lines of plain and HTML parts, attached
//! messages), a value that embeds a class of rank R anywhere, however it is written (any
//! separator, case, Unicode look-alike, invisible character, combining mark, RFC 2047 encoded
//! word, byte that is not text, other classes, descriptors, caveats, prefix or suffix text),
//! is read as a class of rank at least R or as unreadable; and the message is never allowed
//! to a recipient the shipped policy's matrix forbids for R.
//!
//! Issue 16, second round, adds: every enclosure a person sets a marking apart with (`{...}`,
//! `<...>`, `** ... **`, `(...)`, quotes, `«...»`) and lesser signs after a leading marking
//! (`Secret; plan`); letter spacing (`S E C R E T`, `S.E.C.R.E.T`, `S_E_C_R_E_T`); near misses
//! of a class word (a letter dropped, doubled or swapped, a digit posing as a letter: then the
//! promise is "unreadable"); bidirectional controls and invisible characters inside a marking,
//! and a marking shown reversed by a right-to-left override; and banners in parts a reader
//! opens rather than sees inline (attachments, named parts, a second `Content-Type`, text file
//! names on `application/octet-stream`, `text/markdown`, `text/csv`, `text/enriched`).
//!
//! Third round adds: a class word split into pieces (`SEC RET`, `SEC-RET`, `SEC.RET`), subjects
//! folded at any space (`[SEC<CRLF> RET]`), lesser signs between the parts of a value
//! (`NPM//PROTECT; ecret`), and banner lines that open with prose (`Hi Jo, SECRET`).
//!
//! What the generators do not produce, and why (the rule keeps prose prose): a class written
//! in lower or title case standing in a subject's running text or with words that are no part
//! of a marking around it (`Secret Santa draw`, `[Secret Santa]`, `party plans - secret`);
//! free words inside a banner line before its separator (`Confidential: the car park is
//! closed`); a near miss written in lower case among free words (`Secrt annex`: a misspelt
//! word of prose); a near miss of a class no higher than the unmarked one (`PROTCT` reads as
//! no marking, which is the unmarked class: `PROJECT` and `PROTEST` must stay words); a letter-spaced class run on into a one-letter word with the same gap
//! (`S E C R E T x` reads as the one word `SECRETX`); a split of a word under five letters
//! (`T OP SECRET`: pieces that short are read as words). Where free words are generated, the
//! class is written in capitals.
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use chrono::NaiveDate;
use markgate::decision::{decide, Verdict};
use markgate::facts::{self, MessageFacts, Recipient};
use markgate::policy::Policy;
use markgate::{marking, message};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).expect("shipped policy")
    })
}

/// Cases per property: enough to cover the combinations, a few seconds each in a debug build.
const CASES: u32 = 1024;

/// How the letters of a class are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Upper,
    Lower,
    Title,
    Alternating,
}

/// One change to one letter.
#[derive(Debug, Clone, Copy)]
enum Twist {
    None,
    /// A look-alike letter from another script (or a digit posing as a letter).
    Confusable(usize),
    FullWidth,
    /// An invisible character after the letter.
    Invisible(usize),
    /// A combining mark after the letter.
    Combining(usize),
    /// A byte that is not text after the letter (`S<0xFF>ECRET`).
    Undecodable(usize),
}

/// Invisible characters, bidirectional marks, embeddings and isolates among them (they do
/// not reorder Latin letters: an override does, see [`Written::reversed`]).
const INVISIBLE: [&str; 18] = [
    "\u{200B}", "\u{200C}", "\u{200D}", "\u{2060}", "\u{FEFF}", "\u{00AD}", "\u{034F}", "\u{180E}",
    "\u{200E}", "\u{200F}", "\u{061C}", "\u{202A}", "\u{202B}", "\u{202C}", "\u{2066}", "\u{2067}",
    "\u{2068}", "\u{2069}",
];
const COMBINING: [&str; 3] = ["\u{0301}", "\u{0336}", "\u{0332}"];
const UNDECODABLE: [u8; 4] = [0xFF, 0xAD, 0x80, 0xC3];

/// Look-alikes of an upper-case letter (upper case themselves) and of a lower-case one.
fn confusables(c: char) -> &'static [char] {
    match c {
        'A' => &['\u{0410}', '\u{0391}'],
        'B' => &['\u{0412}', '\u{0392}'],
        'C' => &['\u{0421}', '\u{03F9}'],
        'D' => &['\u{216E}'],
        'E' => &['\u{0415}', '\u{0395}'],
        'H' => &['\u{041D}', '\u{0397}'],
        'I' => &['\u{0406}', '\u{0399}', '1'],
        'K' => &['\u{041A}', '\u{039A}'],
        'L' => &['\u{216C}'],
        'M' => &['\u{041C}', '\u{039C}'],
        'N' => &['\u{039D}'],
        'O' => &['\u{041E}', '\u{039F}', '0'],
        'P' => &['\u{0420}', '\u{03A1}'],
        'S' => &['\u{0405}'],
        'T' => &['\u{0422}', '\u{03A4}'],
        'X' => &['\u{0425}', '\u{03A7}'],
        'Y' => &['\u{04AE}', '\u{03A5}'],
        'a' => &['\u{0430}'],
        'c' => &['\u{0441}'],
        'e' => &['\u{0435}'],
        'i' => &['\u{0456}', 'l'],
        'o' => &['\u{043E}', '0'],
        'p' => &['\u{0440}'],
        's' => &['\u{0455}'],
        'x' => &['\u{0445}'],
        'y' => &['\u{0443}'],
        _ => &[],
    }
}

/// A class spelling as somebody wrote it.
#[derive(Debug, Clone)]
struct Written {
    class: usize,
    spelling: usize,
    joiner: usize,
    case: Case,
    twists: Vec<Twist>,
    /// Letter spacing: the gap between letters ([`LETTER_GAPS`]).
    spacing: Option<usize>,
    /// A near miss: which slip ([`Slip`]) at which letter of the spelling's longest word.
    slip: Option<(Slip, usize)>,
    /// Shown reversed: the letters stored backwards inside a right-to-left override
    /// (`<U+202E>TERCES<U+202C>`), so that a reader sees the class.
    reversed: bool,
    /// Split into pieces: the longest word cut after letter `at` (of its length) by
    /// [`SPLIT_GAPS`]`[gap]` (`SEC RET`, what unfolding `SEC<CRLF> RET` gives).
    split: Option<(usize, usize)>,
}

/// What a word split into pieces is split with.
const SPLIT_GAPS: [&str; 4] = [" ", "  ", "-", "."];

/// Gaps between the letters of a letter-spaced class; the words of a spelling are then
/// separated by two spaces (after a one-space gap) or one.
const LETTER_GAPS: [&str; 4] = [" ", ".", "-", "_"];

/// A slip that makes a near miss of a class word.
#[derive(Debug, Clone, Copy)]
enum Slip {
    Dropped,
    Doubled,
    Swapped,
    /// A digit or sign posing as the letter (`SECR3T`, `$ECRET`).
    Posing,
}

/// The spelling's words with `slip` applied to the longest one (five letters or more).
fn slipped(spelling: &str, slip: Slip, at: usize) -> String {
    let words: Vec<&str> = spelling.split(' ').collect();
    let longest = (0..words.len())
        .max_by_key(|&i| words[i].len())
        .expect("a word");
    let mut word: Vec<char> = words[longest].chars().collect();
    if word.len() >= 5 {
        let i = at % word.len();
        match slip {
            Slip::Dropped => {
                word.remove(i);
            }
            Slip::Doubled => word.insert(i, word[i]),
            Slip::Swapped => {
                let j = if i + 1 < word.len() { i + 1 } else { i - 1 };
                word.swap(i, j);
            }
            Slip::Posing => {
                let posing = word.iter().position(|c| "ESAT".contains(*c));
                if let Some(p) = posing {
                    word[p] = match word[p] {
                        'E' => '3',
                        'S' => '$',
                        'A' => '4',
                        _ => '7',
                    };
                }
            }
        }
    }
    let mut out: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    out[longest] = word.into_iter().collect();
    out.join(" ")
}

const JOINERS: [&str; 7] = [" ", "-", "_", " - ", "\u{2013}", "\u{00A0}", ":"];

/// `slips`: near misses and reversed spellings too (then the promise is often "unreadable").
fn written(with_undecodable: bool, slips: bool) -> impl Strategy<Value = Written> {
    let twist = prop_oneof![
        12 => Just(Twist::None),
        1 => (0..3usize).prop_map(Twist::Confusable),
        1 => Just(Twist::FullWidth),
        1 => (0..INVISIBLE.len()).prop_map(Twist::Invisible),
        1 => (0..COMBINING.len()).prop_map(Twist::Combining),
        1 => (0..UNDECODABLE.len()).prop_map(move |i| if with_undecodable { Twist::Undecodable(i) } else { Twist::None }),
    ];
    (
        0..policy().markings.classes.len(),
        0..4usize,
        0..JOINERS.len(),
        prop_oneof![
            Just(Case::Upper),
            Just(Case::Lower),
            Just(Case::Title),
            Just(Case::Alternating)
        ],
        prop::collection::vec(twist, 24),
        prop::option::weighted(0.15, 0..LETTER_GAPS.len()),
        if slips {
            prop::option::weighted(
                0.15,
                (
                    prop_oneof![
                        Just(Slip::Dropped),
                        Just(Slip::Doubled),
                        Just(Slip::Swapped),
                        Just(Slip::Posing)
                    ],
                    0..16usize,
                ),
            )
            .boxed()
        } else {
            Just(None).boxed()
        },
        if slips {
            prop::bool::weighted(0.05).boxed()
        } else {
            Just(false).boxed()
        },
        if slips {
            prop::option::weighted(0.1, (1..16usize, 0..SPLIT_GAPS.len())).boxed()
        } else {
            Just(None).boxed()
        },
    )
        .prop_map(
            |(class, spelling, joiner, case, twists, spacing, slip, reversed, split)| Written {
                class,
                spelling,
                joiner,
                case,
                twists,
                spacing,
                slip,
                reversed,
                split,
            },
        )
}

impl Written {
    fn rank(&self) -> u32 {
        policy().markings.class(self.class).rank
    }

    /// The bytes written (not always UTF-8).
    fn bytes(&self, capitals: bool) -> Vec<u8> {
        let class = policy().markings.class(self.class);
        let spelling = &class.spellings[self.spelling % class.spellings.len()];
        // a near miss of a class no higher than the unmarked one reads as unmarked, a word
        // (so `PROJECT` and `PROTEST` stay words): only a higher class is misspelt here
        let slip = self
            .slip
            .filter(|_| class.rank > policy().markings.unmarked_class().rank);
        let spelling = match slip {
            Some((slip, at)) => slipped(spelling, slip, at),
            None => spelling.clone(),
        };
        let case = if capitals { Case::Upper } else { self.case };
        if self.reversed {
            let shown = match case {
                Case::Upper => spelling.clone(),
                _ => spelling.to_lowercase(),
            };
            let stored: String = shown.chars().rev().collect();
            return format!("\u{202E}{stored}\u{202C}").into_bytes();
        }
        // the split: in the longest word (five letters or more), after letter `at`
        let words: Vec<&str> = spelling.split(' ').collect();
        let longest = (0..words.len()).max_by_key(|&i| words[i].len());
        let split = self.split.and_then(|(at, gap)| {
            let w = longest?;
            let len = words[w].chars().count();
            (self.spacing.is_none() && len >= 5).then(|| (w, 1 + at % (len - 1), SPLIT_GAPS[gap]))
        });
        let (word_gap, letter_gap) = match self.spacing {
            Some(0) => ("  ", Some(LETTER_GAPS[0])),
            Some(g) => (" ", Some(LETTER_GAPS[g])),
            None => (JOINERS[self.joiner], None),
        };
        let mut out: Vec<u8> = Vec::new();
        let mut letter = 0usize;
        for (w, word) in spelling.split(' ').enumerate() {
            if w > 0 {
                out.extend(word_gap.as_bytes());
            }
            for (k, c) in word.chars().enumerate() {
                if let (Some(gap), true) = (letter_gap, k > 0) {
                    out.extend(gap.as_bytes());
                }
                if let Some((_, _, gap)) = split.filter(|&(sw, at, _)| sw == w && at == k) {
                    out.extend(gap.as_bytes());
                }
                let c = match case {
                    Case::Upper => c,
                    Case::Lower => c.to_ascii_lowercase(),
                    Case::Title if k > 0 => c.to_ascii_lowercase(),
                    Case::Title => c,
                    Case::Alternating if letter % 2 == 1 => c.to_ascii_lowercase(),
                    Case::Alternating => c,
                };
                let twist = self.twists[letter % self.twists.len()];
                letter += 1;
                let mut buf = [0u8; 4];
                match twist {
                    Twist::Confusable(i) if !confusables(c).is_empty() => {
                        let look = confusables(c);
                        out.extend(look[i % look.len()].encode_utf8(&mut buf).as_bytes());
                    }
                    Twist::FullWidth if c.is_ascii_alphabetic() => {
                        let wide = char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c);
                        out.extend(wide.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => out.extend(c.encode_utf8(&mut buf).as_bytes()),
                }
                match twist {
                    Twist::Invisible(i) => out.extend(INVISIBLE[i].as_bytes()),
                    Twist::Combining(i) => out.extend(COMBINING[i].as_bytes()),
                    Twist::Undecodable(i) => out.push(UNDECODABLE[i]),
                    _ => {}
                }
            }
        }
        out
    }
}

/// A marking value: the class of rank R, other classes, descriptors, caveats and (when
/// `noise`) words that are no part of a marking, joined by separators.
#[derive(Debug, Clone)]
struct Value {
    main: Written,
    others: Vec<Written>,
    extras: Vec<usize>,
    noise: Vec<usize>,
    separators: Vec<usize>,
    /// Where the main class stands among the other items.
    at: usize,
}

const EXTRAS: [&str; 6] = [
    "PERSONAL",
    "locsen",
    "UK EYES ONLY",
    "not for onward disclosure",
    "[COMMERCIAL]",
    "(PERSONAL)",
];
const NOISE: [&str; 6] = ["annex", "attached", "Santa", "Op Lima", "draft 2", "x"];
const SEPARATORS: [&str; 16] = [
    ", ", " ", " / ", "//", " - ", " | ", "; ", " (", ") ", " [", "] ", " + ", " & ", ". ", " > ",
    ",",
];

fn value(with_undecodable: bool, noise: bool) -> impl Strategy<Value = Value> {
    (
        written(with_undecodable, noise),
        prop::collection::vec(written(false, noise), 0..3),
        prop::collection::vec(0..EXTRAS.len(), 0..2),
        prop::collection::vec(0..NOISE.len(), 0..if noise { 3 } else { 1 }),
        prop::collection::vec(0..SEPARATORS.len(), 8),
        0..8usize,
    )
        .prop_map(|(main, others, extras, noise, separators, at)| Value {
            main,
            others,
            extras,
            noise,
            separators,
            at,
        })
}

impl Value {
    fn rank(&self) -> u32 {
        self.main.rank()
    }

    fn has_noise(&self) -> bool {
        !self.noise.is_empty()
    }

    /// The value's bytes; every class in capitals when `capitals` (or when it holds words
    /// that are no part of a marking: then only a class in capitals is deliberate).
    fn bytes(&self, capitals: bool) -> Vec<u8> {
        self.bytes_in(capitals, false)
    }

    /// As [`Value::bytes`]; `in_brackets`: the value stands in a subject's brackets, so its
    /// own separators hold none (an unbalanced `]` would end the bracket early).
    fn bytes_in(&self, capitals: bool, in_brackets: bool) -> Vec<u8> {
        let capitals = capitals || self.has_noise();
        let mut items: Vec<Vec<u8>> = Vec::new();
        items.extend(self.others.iter().map(|w| w.bytes(capitals)));
        items.extend(self.extras.iter().map(|&e| EXTRAS[e].as_bytes().to_vec()));
        items.extend(self.noise.iter().map(|&n| NOISE[n].as_bytes().to_vec()));
        let mut spaced: Vec<bool> = self.others.iter().map(|w| w.spacing.is_some()).collect();
        spaced.resize(items.len(), false);
        let at = self.at % (items.len() + 1);
        items.insert(at, self.main.bytes(capitals));
        spaced.insert(at, self.main.spacing.is_some());
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                let separator = SEPARATORS[self.separators[i % self.separators.len()]];
                let bracket = separator.contains(['[', ']', '(', ')']);
                // a letter-spaced class is not run on into the next word with its own gap
                let run_on = separator == " " && (spaced[i] || spaced[i - 1]);
                out.extend(
                    if in_brackets && bracket {
                        ", "
                    } else if run_on {
                        " / "
                    } else {
                        separator
                    }
                    .as_bytes(),
                );
            }
            out.extend(item);
        }
        out
    }
}

/// Where the value goes.
#[derive(Debug, Clone)]
enum Place {
    /// Subject: `form` picks bracket / start / end / anywhere; `encoded` sends it as an RFC 2047
    /// encoded word; `fold` folds the header at one of its spaces (the `n`th, counted round).
    Subject {
        form: usize,
        encoded: bool,
        fold: Option<usize>,
    },
    /// A header whose value is the marking (`X-Protective-Marking` or a listed one).
    Header {
        name: usize,
        encoded: bool,
        fold: bool,
    },
    SioLabel,
    /// EPMS: in `SEC=` or another field, trusted namespace or not.
    Epms {
        field: usize,
        trusted: bool,
    },
    Msip,
    /// A banner line, first or last, of a plain text or HTML part; `attach` picks how the
    /// part is carried ([`part_headers`]: inline, or a part a reader opens).
    Banner {
        last: bool,
        html: usize,
        prefix: bool,
        caveat: bool,
        encoding: usize,
        attach: usize,
        /// Prose before the marking ([`BANNER_PROSE`]; 0: none): then the marking is written
        /// in capitals, as only a class written deliberately stands out of prose.
        prose: usize,
    },
}

/// Prose a banner line may open with, before a separator, a lesser sign or none.
const BANNER_PROSE: [&str; 6] = [
    "",
    "Hi Jo, ",
    "Notes follow; ",
    "Op Lima ",
    "Notes of the week - ",
    "Draft 2. ",
];

/// Subject forms (see [`message_with`]).
const SUBJECT_FORMS: usize = 14;

/// Ways a text part is carried: 0 inline (the message's only part), else the second part
/// of a multipart/mixed after an inline note.
const ATTACH_FORMS: usize = 8;

/// The header lines of the part carrying the banner (`attach` > 0), for a plain text or an
/// HTML body.
fn part_headers(attach: usize, html: bool) -> String {
    if html {
        return "Content-Type: text/html; charset=utf-8\r\nContent-Disposition: attachment; filename=\"notes.html\"".into();
    }
    match attach {
        1 => "Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"notes.txt\"",
        2 => "Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"",
        3 => "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"NOTES.TXT\"",
        4 => "Content-Type: image/png\r\nContent-Type: text/plain; charset=utf-8",
        5 => "Content-Type: text/markdown; charset=utf-8\r\nContent-Disposition: attachment; filename=\"notes.md\"",
        6 => "Content-Type: text/csv; charset=utf-8\r\nContent-Disposition: attachment; filename=\"notes.csv\"",
        _ => "Content-Type: text/enriched; charset=utf-8",
    }
    .into()
}

const HEADERS: [&str; 4] = [
    "X-Protective-Marking",
    "X-Classification",
    "X-Security-Classification",
    "x-protective-marking-legacy",
];

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        (
            0..SUBJECT_FORMS,
            any::<bool>(),
            prop::option::weighted(0.2, 0..16usize)
        )
            .prop_map(|(form, encoded, fold)| Place::Subject {
                form,
                encoded,
                fold
            }),
        (0..HEADERS.len(), any::<bool>(), any::<bool>()).prop_map(|(name, encoded, fold)| {
            Place::Header {
                name,
                encoded,
                fold,
            }
        }),
        Just(Place::SioLabel),
        (0..5usize, any::<bool>()).prop_map(|(field, trusted)| Place::Epms { field, trusted }),
        Just(Place::Msip),
        (
            any::<bool>(),
            0..6usize,
            any::<bool>(),
            any::<bool>(),
            0..3usize,
            prop_oneof![2 => Just(0usize), 3 => 1..ATTACH_FORMS],
            prop_oneof![2 => Just(0usize), 1 => 1..BANNER_PROSE.len()],
        )
            .prop_map(|(last, html, prefix, caveat, encoding, attach, prose)| {
                Place::Banner {
                    last,
                    html,
                    prefix,
                    caveat,
                    encoding,
                    attach,
                    prose,
                }
            }),
    ]
}

/// An RFC 2047 encoded word (UTF-8, B) carrying `bytes`.
fn encoded_word(bytes: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("=?utf-8?B?{b64}?=").into_bytes()
}

fn html_escape_some(bytes: &[u8]) -> Vec<u8> {
    // `&#NN;` for the first ASCII letter, entities for what HTML needs
    let mut out = Vec::new();
    let mut escaped = false;
    for &b in bytes {
        match b {
            b'<' => out.extend(b"&lt;"),
            b'>' => out.extend(b"&gt;"),
            b'&' => out.extend(b"&amp;"),
            b if b.is_ascii_alphabetic() && !escaped => {
                escaped = true;
                out.extend(format!("&#{b};").as_bytes());
            }
            b => out.push(b),
        }
    }
    out
}

fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut col = 0;
    for &b in body {
        if b == b'\n' {
            out.extend(b"\r\n");
            col = 0;
            continue;
        }
        if b == b'\r' {
            continue;
        }
        let piece = if b == b'=' || !(b' '..=b'~').contains(&b) {
            format!("={b:02X}").into_bytes()
        } else {
            vec![b]
        };
        if col + piece.len() > 72 {
            out.extend(b"=\r\n");
            col = 0;
        }
        col += piece.len();
        out.extend(piece);
    }
    out
}

/// A message carrying `value` in `place`, perhaps attached to an outer message.
fn message_with(value: &Value, place: &Place, attached: bool) -> Vec<u8> {
    let mut headers: Vec<u8> =
        b"From: sam.smith@westmidlands.pnn.police.uk\r\nTo: x@example.org\r\nMessage-ID: <p@test>\r\n"
            .to_vec();
    let mut subject: Vec<u8> = b"Weekly liaison notes".to_vec();
    let mut first: Vec<u8> = b"Hi Jo,".to_vec();
    let mut last: Vec<u8> = b"Kind regards, Sam".to_vec();
    let mut html = None;
    let mut encoding = 0;
    let mut attach = 0;
    match place {
        Place::Subject {
            form,
            encoded,
            fold,
        } => {
            // set apart by brackets, an enclosure or a separator: any case
            let capitals = !matches!(form, 0 | 1 | 6..=13);
            let v = value.bytes_in(capitals, matches!(form, 0 | 6..=11));
            let rest = b"liaison notes".to_vec();
            let enclosed = |open: &str, close: &str, v: Vec<u8>, rest: Vec<u8>| {
                [open.as_bytes().to_vec(), v, close.as_bytes().to_vec(), rest].concat()
            };
            subject = match form {
                0 => [b"Re: ".to_vec(), rest, b" [".to_vec(), v, b"]".to_vec()].concat(),
                1 if !value.has_noise() => [b"RE: FW: ".to_vec(), v, b": ".to_vec(), rest].concat(),
                1 => [b"[EXTERNAL] ".to_vec(), v, b" - ".to_vec(), rest].concat(),
                2 => [rest, b" - ".to_vec(), v].concat(),
                3 => [rest, b" // ".to_vec(), v, b" | draft".to_vec()].concat(),
                4 => [b"Op Lima ".to_vec(), v, b" update".to_vec()].concat(),
                6 => enclosed("{", "} ", v, rest),
                7 => enclosed("Re: <", "> ", v, rest),
                8 => enclosed("** ", " ** ", v, rest),
                9 => enclosed("(", ") ", v, rest),
                10 => [
                    rest,
                    " \u{AB}".as_bytes().to_vec(),
                    v,
                    "\u{BB}".as_bytes().to_vec(),
                ]
                .concat(),
                11 => enclosed("\"", "\" ", v, rest),
                12 => [v, b"; ".to_vec(), rest].concat(),
                13 => [v, b". ".to_vec(), rest].concat(),
                _ => [v, b" ".to_vec(), rest].concat(),
            };
            if *encoded {
                subject = encoded_word(&subject);
            }
            // folded at a space: unfolding gives the subject back (`[SEC<CRLF> RET]`)
            let spaces: Vec<usize> = (0..subject.len()).filter(|&i| subject[i] == b' ').collect();
            if let Some(n) = fold.filter(|_| !spaces.is_empty()) {
                let at = spaces[n % spaces.len()];
                subject.splice(at..at, b"\r\n".iter().copied());
            }
        }
        Place::Header {
            name,
            encoded,
            fold,
        } => {
            let mut v = value.bytes(false);
            if *encoded {
                v = encoded_word(&v);
            }
            if *fold {
                if let Some(at) = v.iter().position(|&b| b == b' ') {
                    v.splice(at..at, b"\r\n".iter().copied());
                }
            }
            headers.extend(HEADERS[*name].as_bytes());
            headers.extend(b": ");
            headers.extend(v);
            headers.extend(b"\r\n");
        }
        Place::SioLabel => {
            let v: Vec<u8> = value
                .bytes(false)
                .into_iter()
                .flat_map(|b| if b == b'"' { vec![b'\\', b] } else { vec![b] })
                .collect();
            headers.extend(b"SIO-Label: fgcolor=black; marking=\"");
            headers.extend(v);
            headers.extend(b"\"; type=\":ess\"\r\n");
        }
        Place::Epms { field, trusted } => {
            let ns = if *trusted { "police.uk" } else { "gov.au" };
            let v = value.bytes(false);
            let (sec, other): (Vec<u8>, &str) = match field {
                0 => (v.clone(), ""),
                1 => (b"OFFICIAL".to_vec(), "NOTE="),
                2 => (b"OFFICIAL".to_vec(), "CAVEAT=SH:"),
                3 => (b"OFFICIAL".to_vec(), "DOWNTO="),
                _ => (b"NOT PROTECTIVELY MARKED".to_vec(), "SEC="),
            };
            headers.extend(format!("X-Protective-Marking: VER=2018.4, NS={ns}, SEC=").as_bytes());
            headers.extend(sec);
            if !other.is_empty() {
                headers.extend(format!(",\r\n {other}").as_bytes());
                headers.extend(v);
            }
            headers.extend(b", ORIGIN=sam.smith@westmidlands.pnn.police.uk\r\n");
        }
        Place::Msip => {
            headers.extend(
                b"msip_labels: MSIP_Label_0d1e_Enabled=true;\r\n MSIP_Label_0d1e_SetDate=2026-11-24T09:10:02Z; MSIP_Label_0d1e_Name=",
            );
            headers.extend(value.bytes(false));
            headers
                .extend(b";\r\n MSIP_Label_0d1e_SiteId=11111111-2222-4333-8444-555555555555\r\n");
        }
        Place::Banner {
            last: at_end,
            html: h,
            prefix,
            caveat,
            encoding: e,
            attach: a,
            prose,
        } => {
            // free words only after a separator or behind prose: a banner line is a marking
            // on its own
            let capitals = *prose > 0;
            let mut line = if value.has_noise() {
                value.main.bytes(capitals)
            } else {
                value.bytes(capitals)
            };
            if *prose > 0 {
                line = [BANNER_PROSE[*prose].as_bytes().to_vec(), line].concat();
            } else if *prefix {
                line = [b"Classification: ".to_vec(), line].concat();
            }
            if *caveat || value.has_noise() {
                line.extend(b" - handle with care, annex attached");
            }
            line = match h % 3 {
                0 => line,
                1 => [b"*** ".to_vec(), line, b" ***".to_vec()].concat(),
                _ => [b"> ".to_vec(), line].concat(),
            };
            if *at_end {
                last = line;
            } else {
                first = line;
            }
            html = (*h >= 2).then_some(*h);
            encoding = *e;
            attach = *a;
            if attach == 7 && html.is_none() {
                // text/enriched: the banner in a formatting command, `<` written `<<`
                let enrich = |line: &[u8]| {
                    let line = String::from_utf8_lossy(line).replace('<', "<<");
                    format!("<bold>{line}</bold>").into_bytes()
                };
                first = enrich(&first);
                last = enrich(&last);
            }
        }
    }
    let mut out = headers;
    out.extend(b"Subject: ");
    out.extend(subject);
    out.extend(b"\r\n");
    let middle = b"Notes of the meeting are below.\nActions agreed: none.".to_vec();
    let body: Vec<u8> = match html {
        None => [first, b"\n\n".to_vec(), middle, b"\n\n".to_vec(), last].concat(),
        Some(h) => {
            let hidden: &[u8] = match h {
                2 => b"",
                3 => b"<div style=\"display:none\">OFFICIAL</div>",
                4 => b"<span hidden>NOT PROTECTIVELY MARKED</span><br>",
                _ => b"<!--[if mso]><p>UNCLASSIFIED</p><![endif]-->",
            };
            [
                b"<html><head><style>.x{color:red}</style></head><body>".to_vec(),
                hidden.to_vec(),
                b"<div class=\"x\"><b>".to_vec(),
                html_escape_some(&first),
                b"</b></div><div>".to_vec(),
                html_escape_some(&middle),
                b"</div><p>".to_vec(),
                html_escape_some(&last),
                b"</p>".to_vec(),
                hidden.to_vec(),
                b"</body></html>".to_vec(),
            ]
            .concat()
        }
    };
    let ctype = if html.is_some() {
        "text/html"
    } else {
        "text/plain"
    };
    let (cte, body) = match encoding {
        0 => (
            "8bit",
            body.iter()
                .flat_map(|&b| {
                    if b == b'\n' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![b]
                    }
                })
                .collect(),
        ),
        1 => ("quoted-printable", quoted_printable(&body)),
        _ => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&body);
            let lines: Vec<&[u8]> = b64.as_bytes().chunks(76).collect();
            ("base64", lines.join(&b"\r\n"[..]))
        }
    };
    if attach == 0 {
        out.extend(
            format!(
                "Content-Type: {ctype}; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend(body);
        out.extend(b"\r\n");
    } else {
        out.extend(
            format!(
                "Content-Type: multipart/mixed; boundary=\"att\"\r\n\r\n--att\r\nContent-Type: text/plain\r\n\r\nSee the attached notes.\r\n--att\r\n{}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n",
                part_headers(attach, html.is_some())
            )
            .as_bytes(),
        );
        out.extend(body);
        out.extend(b"\r\n--att--\r\n");
    }
    if !attached {
        return out;
    }
    let mut outer = b"From: sam.smith@westmidlands.pnn.police.uk\r\nTo: x@example.org\r\nSubject: Fwd: notes\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nSee the attached message.\r\n--outer\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n".to_vec();
    outer.extend(out);
    outer.extend(b"\r\n--outer--\r\n");
    outer
}

/// One recipient in each destination class of the shipped policy, partners included.
const RECIPIENTS: [&str; 7] = [
    "duty@westmidlands.pnn.police.uk",
    "duty@suffolk.pnn.police.uk",
    "lawyer@cps.gsi.gov.uk",
    "mash@birmingham.gov.uk",
    "team@examplehousing.org.uk",
    "someone@gmail.com",
    "gp@nhs.net",
];

fn facts_for(marking: marking::Marking, policy: &Policy) -> MessageFacts {
    facts::given(
        "sam.smith@westmidlands.pnn.police.uk",
        RECIPIENTS
            .iter()
            .map(|r| Recipient::mail(r, policy))
            .collect(),
        marking,
        None,
        Default::default(),
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
    )
}

/// The promise, for a message built to carry `value`: class at least R or unreadable, and no
/// recipient allowed that the shipped matrix forbids for R.
fn holds(raw: &[u8], value: &Value) -> Result<(), TestCaseError> {
    let policy = policy();
    let shown = String::from_utf8_lossy(raw);
    let parsed = message::parse(raw).map_err(|e| TestCaseError::fail(format!("{e}: {shown}")))?;
    let m = marking::read(&parsed, &policy.markings);
    prop_assert!(
        m.rank >= value.rank() || !m.unreadable.is_empty(),
        "class of rank {} read as {} (sources {:?}) in\n{}",
        value.rank(),
        m.label,
        m.sources,
        shown
    );
    let class = &policy.markings.class(value.main.class).name;
    let reference = marking::read_text(class, &policy.markings).expect("a class name reads");
    let forbidden = decide(&facts_for(reference, policy), policy);
    let got = decide(&facts_for(m, policy), policy);
    for (want, got) in forbidden.recipients.iter().zip(&got.recipients) {
        prop_assert!(
            !(want.verdict == Verdict::Block && got.verdict == Verdict::Allow),
            "{} is forbidden {class} but was allowed ({}) for\n{}",
            got.address,
            got.reason,
            shown
        );
    }
    Ok(())
}

/// CI explores from a fixed seed, so that a run of the README's test command is repeatable.
/// `MARKING_PLACES_SEED=N` explores from another, `MARKING_PLACES_SEED=random` from a new one
/// each run (failures found are kept in marking_places.proptest-regressions and re-run
/// first). Fourth round (2026-11-27): seeds 1 to 560 and 700 to 719 and about 220 random
/// seeds explored; the shapes found are fixed and held in tests/marking_attacks.rs, with the
/// whole space of one slip and one split of every class spelling: a damaged TOP SECRET split
/// around a whole SECRET (seeds 158, 196, 529, 537: `OP SECRET`, `TTOP SECRET`, `TOP S
/// SECRET`, read as SECRET), and a split class behind a stray word (seed 328 and a random
/// seed: `x RE STRICTED` joined as the near miss `XRESTRICTED`, read as no marking).
const MARKING_PLACES_SEED: u64 = 20261127;

fn marking_places_seed() -> proptest::test_runner::RngSeed {
    match std::env::var("MARKING_PLACES_SEED") {
        Ok(seed) if seed.trim() == "random" => proptest::test_runner::RngSeed::Random,
        Ok(seed) => proptest::test_runner::RngSeed::Fixed(
            seed.trim()
                .parse()
                .expect("MARKING_PLACES_SEED is a number or `random`"),
        ),
        Err(_) => proptest::test_runner::RngSeed::Fixed(MARKING_PLACES_SEED),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        rng_seed: marking_places_seed(),
        ..ProptestConfig::with_cases(CASES)
    })]

    /// Every place, written every way: never lower than the class embedded.
    #[test]
    fn a_class_embedded_in_any_place_is_never_read_lower(
        value in value(true, true),
        place in place(),
    ) {
        holds(&message_with(&value, &place, false), &value)?;
    }

    /// The same through an attached message.
    #[test]
    fn a_class_embedded_in_an_attached_message_is_never_read_lower(
        value in value(true, true),
        place in place(),
    ) {
        holds(&message_with(&value, &place, true), &value)?;
    }

    /// Header values holding only marking parts (no free words): read as exactly the highest
    /// class, not unreadable, so the reading is not fail-closed by accident.
    #[test]
    fn a_header_of_marking_parts_reads_as_its_highest_class(
        value in value(false, false),
        name in 0..HEADERS.len(),
        encoded in any::<bool>(),
    ) {
        let place = Place::Header { name, encoded, fold: false };
        let raw = message_with(&value, &place, false);
        let m = marking::read(&message::parse(&raw).unwrap(), &policy().markings);
        let top = value.others.iter().map(Written::rank).chain([value.rank()]).max().unwrap();
        prop_assert!(m.unreadable.is_empty(), "{:?} in {}", m.unreadable, String::from_utf8_lossy(&raw));
        prop_assert_eq!(m.rank, top, "{}", String::from_utf8_lossy(&raw));
    }
}
