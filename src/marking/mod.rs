//! Marking: find the protective marking of a message wherever it is carried (subject,
//! marking headers, Microsoft sensitivity labels, SIO-Label, banner lines of text parts),
//! normalise what was found, and settle on one class: the highest rank wins, every source is
//! reported, and a message with none gets the policy's `unmarked` class.
//!
//! The engine knows no class names: classes, spellings, descriptors and the places to look
//! all come from the policy's [`MarkingScheme`].
//!
//! The rule (issue 16): a marking is read whole. The marking of a place is the highest class
//! any part of it names (`NPM, SECRET` is SECRET), and the place is unreadable when a part is
//! neither a class, a descriptor, a caveat the policy lists nor a separator
//! (`NPM (SECRET annex attached)`), when it is empty, or when its text cannot be trusted
//! (bytes that are not text, a bidirectional override). Unreadable blocks (rule
//! `marking-unreadable`); uncertainty may raise a marking, never lower it.
//!
//! Where markings stand ([`reader`] feeds each place to the [`grammar`]):
//! - `X-Protective-Marking`, the headers the policy lists, every `marking=` of `SIO-Label`:
//!   the whole value is a marking. EPMS values ([`headers`]): every field as the standard
//!   defines it; an untrusted namespace may only raise.
//! - `msip_labels` ([`msip`]): an enabled label's `_Name` and its (SiteId, label id) through
//!   the policy's label map.
//! - Subject ([`grammar`]): brackets and other enclosures read whole anywhere; a marking at
//!   the start or after a separator where it is delimited as one. `Secret Santa draw` is
//!   prose; a near miss of a class word where a marking stands (`[SECRT]`) is unreadable.
//!   A class word split into pieces (`[SEC RET]`, what a subject folded inside the word
//!   unfolds to) is read as the word a reader sees, here and on banner lines.
//! - Banner lines ([`banner`], HTML rendered by [`html`], hidden text apart): the first and
//!   last lines of each part read as text, attachments included (fail closed: a banner can
//!   only raise); hidden lines are read as banners too. Behind prose, a class written
//!   deliberately after a separator or a lesser sign, or in capitals anywhere, raises.
//! - Attached messages (message/rfc822) are read the same way, reported as `attached1:...`.
//! - JSON ([`json`]: an HTTP JSON body, a mail part of a JSON type): every string, read like
//!   a subject, reported as `part2:json@12`.
//!
//! Text is compared after [`normalise`]-style folding (see [`tokenizer`]): case, NFKD,
//! combining marks and zero-width characters dropped, confusable letters (Cyrillic, Greek,
//! full-width, `l`/`1` for `I`, `0` for `O`) mapped to the Latin letter they imitate.

mod banner;
mod grammar;
mod headers;
mod html;
mod json;
mod msip;
pub mod normalise;
mod reader;
pub mod scheme;
mod tokenizer;

pub use json::{TooManyJsonStrings, MAX_JSON_STRINGS};
pub use normalise::normalise;
pub use reader::MarkingReader;
pub use scheme::{MarkingClass, MarkingScheme, MsipLabel};

use serde::Serialize;

/// The marking a message was judged to carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marking {
    /// Canonical class name from the policy ("OFFICIAL-SENSITIVE").
    pub class: String,
    /// Class with descriptors, as a person would write it ("OFFICIAL-SENSITIVE PERSONAL").
    pub label: String,
    #[serde(skip)]
    pub rank: u32,
    /// Canonical descriptors carried with the winning class.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub descriptors: Vec<String>,
    /// Other classes found at the same rank (RESTRICTED beside OFFICIAL-SENSITIVE): the
    /// decision applies the strictest handling of all of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    /// Every place a marking was found, in reading order.
    pub sources: Vec<MarkingSource>,
    /// True when nothing was found and the policy's `unmarked` class was assumed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub defaulted: bool,
    /// Places that carry a marking the policy cannot read (an `X-Protective-Marking` that
    /// is not a class, a subject too long to read whole). The message's marking cannot be
    /// evaluated, so the decision blocks it (rule `marking-unreadable`): fail closed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadableMarking>,
}

/// A place meant to carry a marking whose text the policy cannot read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadableMarking {
    /// Where: `header:x-protective-marking`, `subject` ...
    #[serde(rename = "where")]
    pub location: String,
    /// The text found there (at most 200 characters).
    pub text: String,
    /// Why it cannot be read.
    pub why: String,
}

/// One marking found in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarkingSource {
    /// Where: `subject`, `header:x-protective-marking`, `header:msip_labels`,
    /// `header:sio-label`, `banner:first:part1`, `banner:last:part1` ...
    #[serde(rename = "where")]
    pub location: String,
    /// The text found there, as written.
    pub text: String,
    /// Canonical class it was read as.
    pub class: String,
}

impl Marking {
    /// The marking of a message with no marking anywhere.
    pub fn unmarked(scheme: &MarkingScheme) -> Marking {
        let class = scheme.unmarked_class();
        Marking {
            class: class.name.clone(),
            label: class.name.clone(),
            rank: class.rank,
            descriptors: Vec::new(),
            also: Vec::new(),
            sources: Vec::new(),
            defaulted: true,
            unreadable: Vec::new(),
        }
    }
}

/// Read the marking of a parsed message.
pub fn read(message: &crate::message::ParsedMessage<'_>, scheme: &MarkingScheme) -> Marking {
    let mut reader = MarkingReader::new(scheme);
    reader.message(&message.root, &message.parts, &message.sections, "", 0);
    reader.finish()
}

/// Read a marking written on its own (`OFFICIAL-SENSITIVE PERSONAL`, `[OFFICIAL]`), as given
/// on a command line. None when the text is not just a marking ("Secret Santa").
pub fn read_text(text: &str, scheme: &MarkingScheme) -> Option<Marking> {
    let mut reader = MarkingReader::new(scheme);
    reader.alone("text", text).then(|| reader.finish())
}
