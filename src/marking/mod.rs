//! Marking: find the protective marking of a message wherever it is carried (subject,
//! marking headers, Microsoft sensitivity labels, SIO-Label, banner lines of text parts),
//! normalise what was found, and settle on one class: the highest rank wins, every source is
//! reported, and a message with none gets the policy's `unmarked` class.
//!
//! The engine knows no class names: classes, spellings, descriptors and the places to look
//! all come from the policy's [`MarkingScheme`].

pub mod normalise;

pub use normalise::normalise;

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
        }
    }
}

/// Read the marking of a parsed message.
pub fn read(message: &crate::message::ParsedMessage<'_>, scheme: &MarkingScheme) -> Marking {
    // Placeholder until the marking readers land: every message is unmarked.
    let _ = message;
    Marking::unmarked(scheme)
}

/// Read a marking written on its own ("OFFICIAL-SENSITIVE PERSONAL"), as given on a command
/// line or in a header whose whole value is a marking. None when it is not one.
pub fn read_text(text: &str, scheme: &MarkingScheme) -> Option<Marking> {
    // Placeholder until the marking readers land: exact class names only.
    let index = scheme.find(text)?;
    let class = scheme.class(index);
    Some(Marking {
        class: class.name.clone(),
        label: class.name.clone(),
        rank: class.rank,
        descriptors: Vec::new(),
        also: Vec::new(),
        sources: vec![MarkingSource {
            location: "text".into(),
            text: text.into(),
            class: class.name.clone(),
        }],
        defaulted: false,
    })
}
