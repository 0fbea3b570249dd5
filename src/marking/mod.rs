//! Marking: find the protective marking of a message wherever it is carried (subject,
//! marking headers, Microsoft sensitivity labels, SIO-Label, banner lines of text parts),
//! normalise what was found, and settle on one class: the highest rank wins, every source is
//! reported, and a message with none gets the policy's `unmarked` class.
//!
//! The engine knows no class names: classes, spellings, descriptors and the places to look
//! all come from the policy's [`MarkingScheme`].
//!
//! Where a marking stands, and what may follow it (a marking word in prose is not a marking):
//! - Subject ([`grammar`]): after any reply/forward prefixes (`RE: FW[2]: AW:`) and leading
//!   `[tags]`, a marking followed by `:`, ` - `, `//`, `|` or the end (`OFFICIAL-SENSITIVE
//!   PERSONAL: visit`); and a bracketed marking anywhere (`[OFFICIAL-SENSITIVE: PERSONAL]`).
//!   `Secret Santa draw` and `is this confidential?` are prose.
//! - `X-Protective-Marking`, headers the policy lists, the `marking=` of `SIO-Label` and the
//!   `_Name=` of an enabled `msip_labels` label: a value that starts with a marking, whatever
//!   follows (`SECRET UK EYES ONLY`): these headers exist to carry markings. EPMS values
//!   (`VER=..., NS=..., SEC=...`) count only when `NS` is a namespace the policy trusts;
//!   an untrusted one is ignored, not reported.
//! - `msip_labels`: an enabled label's (SiteId, label id) through the policy's label map.
//! - Banner lines ([`banner`]): the first and last non-empty lines of each text part that is
//!   not an attachment (HTML rendered to text): a marking on its own, perhaps decorated
//!   (`*** OFFICIAL ***`, `[RESTRICTED]`, `> OFFICIAL`), perhaps introduced by a policy banner
//!   prefix (`Classification: OFFICIAL`). A handling caveat may follow after a dash, `//` or
//!   `|` (`OFFICIAL-SENSITIVE PERSONAL - not for onward disclosure`): that is still a banner.
//!   A colon and more text (`Confidential: the car park is closed`) is a sentence, not a
//!   banner.
//! - Attached messages (message/rfc822) are read the same way, reported as `attached1:...`:
//!   forwarding a marked message as an attachment carries its marking.
//!
//! Text is compared after [`normalise`]-style folding (see [`grammar`]): case, NFKD,
//! combining marks and zero-width characters dropped, confusable letters (Cyrillic, Greek,
//! full-width, `l`/`1` for `I`, `0` for `O`) mapped to the Latin letter they imitate.

mod banner;
mod grammar;
mod headers;
mod msip;
pub mod normalise;
mod reader;

pub use normalise::normalise;
pub use reader::MarkingReader;

use serde::Serialize;

use crate::policy::MarkingScheme;

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
    reader.message(&message.root, &message.parts, "", 0);
    reader.finish()
}

/// Read a marking written on its own ("OFFICIAL-SENSITIVE PERSONAL", "[OFFICIAL]"), as given
/// on a command line. None when the text is not just a marking ("Secret Santa").
pub fn read_text(text: &str, scheme: &MarkingScheme) -> Option<Marking> {
    let mut reader = MarkingReader::new(scheme);
    reader.alone("text", text).then(|| reader.finish())
}
