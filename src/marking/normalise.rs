//! Text normalisation applied to anything that may hold a marking, and to the policy's
//! spellings, so that both sides compare equal however the marking was typed.
//!
//! Steps: Unicode NFKD (compatibility forms such as full-width and mathematical letters become
//! plain letters); drop combining marks (`S\u{301}ECRET` reads as SECRET) and zero-width and
//! other invisible format characters; uppercase;
//! map confusable letters (Cyrillic and Greek look-alikes, digits posing as letters) to the
//! Latin letter they imitate (Unicode UTS #39 skeletons); and treat hyphens, dashes,
//! underscores and runs of white space as one separator, so `OFFICIAL-SENSITIVE`,
//! `OFFICIAL SENSITIVE` and `Official – Sensitive` are the same words.

use unicode_normalization::UnicodeNormalization;

/// True for characters that render as nothing and may be used to split a word.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Separators that join the words of a marking.
pub(crate) fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '_' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}'
        )
}

/// Canonical form of a piece of text for marking comparison: upper-case Latin words
/// separated by single spaces, other punctuation kept.
pub fn normalise(text: &str) -> String {
    // ASCII is its own NFKD form and holds nothing to drop or map
    let upper = if text.is_ascii() {
        text.to_ascii_uppercase()
    } else {
        let cleaned: String = text.nfkd().filter(|c| !is_dropped(*c)).collect();
        cleaned.to_uppercase()
    };
    let mut out = String::with_capacity(upper.len());
    let mut pending_sep = false;
    for c in upper.chars() {
        if is_separator(c) {
            pending_sep = !out.is_empty();
            continue;
        }
        if pending_sep {
            out.push(' ');
            pending_sep = false;
        }
        push_skeleton(&mut out, c);
    }
    out
}

/// True for characters removed before matching: invisible ones and combining marks.
pub(crate) fn is_dropped(c: char) -> bool {
    is_invisible(c) || (!c.is_ascii() && unicode_normalization::char::is_combining_mark(c))
}

/// Append the Latin letter a confusable character imitates, or the character itself.
/// Only non-ASCII characters are mapped; the input is already upper case.
pub(crate) fn push_skeleton(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c);
        return;
    }
    let mut buf = [0u8; 4];
    let skeleton: String = unicode_security::skeleton(c.encode_utf8(&mut buf)).collect();
    // UTS #39 skeletons write I (and everything that looks like it: Cyrillic I, Greek iota,
    // the digit one) as a lower-case l. The text is upper case already, so such a character
    // imitates I; any other lower-case skeleton letter is folded back to upper case.
    let folded: String = skeleton
        .chars()
        .map(|s| {
            if s == 'l' {
                'I'
            } else {
                s.to_ascii_uppercase()
            }
        })
        .collect();
    if folded.chars().all(|s| s.is_ascii_alphanumeric()) && !folded.is_empty() {
        out.push_str(&folded);
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn spellings_of_official_sensitive_agree() {
        let want = "OFFICIAL SENSITIVE";
        for s in [
            "OFFICIAL-SENSITIVE",
            "official sensitive",
            "OFFICIAL - SENSITIVE",
            "Official – Sensitive",
            "OFFICIAL_SENSITIVE",
            "  OFFICIAL   SENSITIVE ",
        ] {
            assert_eq!(normalise(s), want, "{s:?}");
        }
    }

    #[test]
    fn invisible_and_lookalike_letters_are_removed() {
        assert_eq!(normalise("SE\u{200B}CRET"), "SECRET");
        assert_eq!(normalise("S\u{0415}CR\u{0415}T"), "SECRET"); // Cyrillic Е
        assert_eq!(normalise("\u{0421}ONFIDENTIAL"), "CONFIDENTIAL"); // Cyrillic С
        assert_eq!(normalise("\u{039F}FFICIAL"), "OFFICIAL"); // Greek Ο
        assert_eq!(normalise("ＳＥＣＲＥＴ"), "SECRET"); // full width, NFKC
        assert_eq!(normalise("CONF\u{0406}DENTIAL"), "CONFIDENTIAL"); // Cyrillic I
        assert_eq!(normalise("S\u{0301}ECRET"), "SECRET"); // combining mark
        assert_eq!(normalise("\u{1D412}\u{1D404}\u{1D402}RET"), "SECRET"); // maths bold
    }

    #[test]
    fn other_punctuation_is_kept() {
        assert_eq!(normalise("[Official]"), "[OFFICIAL]");
        assert_eq!(normalise("restricted:"), "RESTRICTED:");
    }
}
