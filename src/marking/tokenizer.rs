//! Tokenizer: normalised text cut into words, dashes and signs, for the marking grammar.
//!
//! Text is cut into tokens after the same normalisation as [`super::normalise`] (NFKD,
//! combining marks and invisible characters dropped, upper case, confusable letters mapped to
//! the Latin letter they imitate), but keeping what separates the words: a marking is
//! recognised by what stands around it, so `SECRET - Santa` (a marking and a separator) and
//! `Secret Santa` (prose) must stay different.
//!
//! A letter-spaced word is joined back into the word a reader sees (`S E C R E T`,
//! `S.E.C.R.E.T`: [`join_spaced_letters`]).
//!
//! Two things the normalisation would hide are kept as flags, because they change how far
//! the text can be trusted: a word with an undecodable byte in it (U+FFFD, dropped from the
//! word: `S<0xFF>ECRET` is the word `SECRET`, marked [`Token::invalid`]), and a right-to-left
//! or left-to-right override anywhere (it shows the letters in another order than they are
//! stored: [`Tokens::reordered`]).

use unicode_normalization::UnicodeNormalization;

use super::normalise::{is_dropped, is_separator};

/// Stands for a letter that is either I or L: a lower-case `l`, the digit `1`, and every
/// look-alike whose Unicode skeleton is `l` (Cyrillic `І`, Greek `ι`, `ӏ` ...). Upper-casing
/// `official` gives `OFFICIAL`, but `CONFlDENTIAL` (lower-case L) must still read as
/// CONFIDENTIAL.
pub(crate) const I_OR_L: char = '\u{E000}';

/// One token of normalised text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A run of letters and digits, upper case, look-alikes mapped.
    Word(String),
    /// A hyphen, dash, minus or underscore.
    Dash,
    /// Any other visible character.
    Sym(char),
}

impl Kind {
    /// The text of a word; None for a dash or a sign.
    pub fn word(&self) -> Option<&str> {
        match self {
            Kind::Word(w) => Some(w),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    /// White space stood before this token.
    pub space_before: bool,
    /// How many white-space characters stood before this token (at most 255).
    pub gap: u8,
    /// A word with a lower-case letter as written (`Secret`, not `SECRET`); a lower-case `l`
    /// alone does not count, since it stands in for `I` in `CONFlDENTIAL`.
    pub lower: bool,
    /// A word that held an undecodable byte (U+FFFD), left out of its letters; such a word
    /// may be empty.
    pub invalid: bool,
    /// A word joined from letters spaced out (`S E C R E T`: [`join_spaced_letters`]).
    pub spaced: bool,
}

impl Token {
    /// The token as a reader would name it in a reason: `"ANNEX"`, `"?"`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Word(w) if w.is_empty() => "a byte that is not text".to_string(),
            Kind::Word(w) => format!("{:?}", w.replace(I_OR_L, "I")),
            Kind::Dash => "\"-\"".to_string(),
            Kind::Sym(c) => format!("{:?}", c.to_string()),
        }
    }
}

/// Tokens of one piece of text; `truncated` when the text went on past the token limit.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub toks: Vec<Token>,
    pub truncated: bool,
    /// The text holds a bidirectional override (U+202D, U+202E): what a reader sees is not
    /// the order of the letters read here.
    pub reordered: bool,
    /// Where the decoration that ends the text starts (every token from here on is
    /// decoration).
    decoration_from: usize,
}

/// The replacement character a decoder puts where a byte was not text.
pub(crate) const UNDECODABLE: char = '\u{FFFD}';

impl Tokens {
    pub fn kind(&self, i: usize) -> Option<&Kind> {
        self.toks.get(i).map(|t| &t.kind)
    }

    pub fn is_sym(&self, i: usize, c: char) -> bool {
        self.kind(i) == Some(&Kind::Sym(c))
    }

    /// Nothing follows position `i` (and the text was not cut short).
    pub fn at_end(&self, i: usize) -> bool {
        i >= self.toks.len() && !self.truncated
    }

    /// A separator that ends a leading marking stands at `i`: `:`, `|`, `//`, or a dash
    /// with white space on either side (`OFFICIAL - notes`, not `Secret-Santa`).
    pub fn separator_at(&self, i: usize, colon: bool) -> bool {
        match self.kind(i) {
            None => self.at_end(i),
            Some(Kind::Sym(':')) => colon,
            Some(Kind::Sym('|')) => true,
            Some(Kind::Sym('/')) => self.is_sym(i + 1, '/'),
            Some(Kind::Dash) => {
                self.toks[i].space_before || self.toks.get(i + 1).is_none_or(|t| t.space_before)
            }
            _ => false,
        }
    }

    /// The tokens from `from` to `to`, as far as there are any.
    pub fn range(&self, from: usize, to: usize) -> &[Token] {
        let len = self.toks.len();
        &self.toks[from.min(len)..to.min(len)]
    }

    /// Every word from `from` to `to` was written in capitals.
    pub fn in_capitals(&self, from: usize, to: usize) -> bool {
        self.range(from, to).iter().all(|t| !t.lower)
    }

    /// Only words from `from` to `to`, some joined by a dash with no space around it
    /// (`Official-Sensitive Personal`, not `OFFICIAL-SENSITIVE - Personal`): a class written
    /// so is a marking's, not prose.
    pub fn hyphen_joined(&self, from: usize, to: usize) -> bool {
        let to = to.min(self.toks.len());
        let tight = |i: usize| {
            !self.toks[i].space_before && self.toks.get(i + 1).is_some_and(|n| !n.space_before)
        };
        let mut joined = false;
        for i in from..to {
            match self.toks[i].kind {
                Kind::Word(_) => {}
                Kind::Dash if i > from && tight(i) => joined = true,
                _ => return false,
            }
        }
        joined
    }

    /// The marking from `from` to `to` is written as a marking, not a word of prose that
    /// happens to be a class name: in capitals (`SECRET`), or several words
    /// (`Official-Sensitive`). Used where a marking stands without brackets of its own.
    pub fn deliberate(&self, from: usize, to: usize) -> bool {
        let words = self
            .range(from, to)
            .iter()
            .filter_map(|t| t.kind.word())
            .count();
        words >= 2 || self.in_capitals(from, to)
    }

    /// A word stands at `i` after white space.
    pub fn word_after_space(&self, i: usize) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.space_before && matches!(t.kind, Kind::Word(_)))
    }

    /// Only decoration (`***`, `--`, `]`, `.`) follows position `i`.
    pub fn only_decoration_from(&self, i: usize) -> bool {
        !self.truncated && i >= self.decoration_from
    }

    /// Join a class word split into pieces by white space (or one sign with no space
    /// around it) back into the word a reader sees: `[SEC RET]` (what unfolding a header
    /// folded inside the word gives), `OFFI CIAL-SENSITIVE`, `SEC-RET`, `PROTECT IVELY`. A
    /// join is made only when `join` says its pieces make a class word (or a near miss of
    /// one), and how close: the closest, then the longest, is made; and never of words of
    /// their own alone (`word_of_its_own`: a word of a class spelling; `TOP SECRET` stays two
    /// words). A joined word is in capitals when a piece that is a word of its own was
    /// (`to SECRET`): what was written deliberately stays so. No join of more than `longest`
    /// letters is tried (`join` says no to any).
    pub fn join_split_words<C: Ord>(
        &mut self,
        longest: usize,
        join: impl Fn(&[&str]) -> Option<C>,
        word_of_its_own: impl Fn(&str) -> bool,
    ) {
        // a joined word may be a piece of a longer join (`OP S ECRET`: `S ECRET` is `SECRET`,
        // then `OP SECRET` a near miss); every pass that joins leaves fewer tokens
        while self.join_pass(longest.min(MAX_SPLIT_LETTERS), &join, &word_of_its_own) {}
    }

    /// One pass of [`Self::join_split_words`]: whether it joined any pieces.
    fn join_pass<C: Ord>(
        &mut self,
        longest: usize,
        join: &impl Fn(&[&str]) -> Option<C>,
        word_of_its_own: &impl Fn(&str) -> bool,
    ) -> bool {
        let piece = |t: &Token| t.kind.word().is_some_and(|w| !w.is_empty());
        // where the piece after the one at `i` stands
        let next_piece = |toks: &[Token], i: usize| -> Option<usize> {
            let next = toks.get(i + 1)?;
            if next.space_before {
                return piece(next).then_some(i + 1);
            }
            let after = toks.get(i + 2)?;
            let tight_sign =
                matches!(next.kind, Kind::Dash | Kind::Sym('.')) && !after.space_before;
            (tight_sign && piece(after)).then_some(i + 2)
        };
        // the best join of pieces from `i`: how close, where it ends and its letters; one
        // piece at least is no word of its own (`TOP SECRET` stays two words, `PROTECT IVELY`
        // is joined)
        // which tokens are words of their own, each told once
        let own_word: Vec<bool> = self
            .toks
            .iter()
            .map(|t| t.kind.word().is_some_and(word_of_its_own))
            .collect();
        let best_from = |toks: &[Token], i: usize| -> Option<(C, usize, String)> {
            let first = toks[i].kind.word().filter(|_| piece(&toks[i]))?;
            let mut pieces = vec![first];
            let mut own = own_word[i];
            let mut letters = first.chars().count();
            let mut at = i;
            let mut best: Option<(C, usize, String)> = None;
            for _ in 1..MAX_SPLIT_PIECES {
                let Some(next) = next_piece(toks, at) else {
                    break;
                };
                let word = toks[next].kind.word().unwrap_or_default();
                letters += word.chars().count();
                if letters > longest {
                    break;
                }
                pieces.push(word);
                own &= own_word[next];
                at = next;
                if own {
                    continue;
                }
                if let Some(close) = join(&pieces) {
                    if best.as_ref().is_none_or(|(was, _, _)| close >= *was) {
                        best = Some((close, at, pieces.concat()));
                    }
                }
            }
            best
        };
        // the best join from each token, worked out once: each is also weighed against the
        // join from the piece after it
        let mut bests: Vec<Option<(C, usize, String)>> = (0..self.toks.len())
            .map(|i| best_from(&self.toks, i))
            .collect();
        let mut out: Vec<Token> = Vec::with_capacity(self.toks.len());
        let mut i = 0;
        let mut joined = false;
        while i < self.toks.len() {
            let made = bests[i].as_ref().is_some_and(|(close, _, _)| {
                // a piece is none when the pieces after it join without it: a word of its own
                // however they join (`OFFICIAL SENSI TIVE` is `OFFICIAL SENSITIVE`), another
                // when they join closer (`x RE STRICTED` is `x RESTRICTED`, not the near miss
                // `XRESTRICTED`)
                let own = own_word[i];
                let later = next_piece(&self.toks, i).and_then(|n| bests[n].as_ref());
                later.is_none_or(|(later, _, _)| !own && later <= close)
            });
            let best = if made { bests[i].take() } else { None };
            let Some((_, last, letters)) = best else {
                out.push(self.toks[i].clone());
                i += 1;
                continue;
            };
            let mut word = self.toks[i].clone();
            let pieces = &self.toks[i..=last];
            for t in &pieces[1..] {
                word.invalid |= t.invalid;
            }
            // in capitals when a piece that is a word of its own was (`to SECRET` joined is
            // no prose: the class word written in capitals is read deliberately)
            let capital_word = pieces
                .iter()
                .any(|t| !t.lower && t.kind.word().is_some_and(&word_of_its_own));
            word.lower = !capital_word && pieces.iter().any(|t| t.lower);
            word.kind = Kind::Word(letters);
            out.push(word);
            joined = true;
            i = last + 1;
        }
        if joined {
            self.toks = out;
            self.decoration_from = decoration_from(&self.toks);
        }
        joined
    }

    /// First position after leading decoration.
    pub fn skip_decoration(&self, mut i: usize) -> usize {
        while self.toks.get(i).is_some_and(is_decoration) {
            i += 1;
        }
        i
    }
}

/// Characters that dress a banner up without meaning anything: `*** OFFICIAL ***`,
/// `-- OFFICIAL --`, `[RESTRICTED]`, `> OFFICIAL` (a quoted banner still marks the text).
fn is_decoration(t: &Token) -> bool {
    match t.kind {
        Kind::Dash => true,
        Kind::Sym(c) => matches!(
            c,
            '*' | '='
                | '#'
                | '~'
                | '['
                | ']'
                | '('
                | ')'
                | '<'
                | '>'
                | '|'
                | '.'
                | '!'
                | '+'
                | '«'
                | '»'
                | '{'
                | '}'
                | '•'
                | '·'
        ),
        Kind::Word(_) => false,
    }
}

/// Cut `text` into at most `limit` tokens.
pub(crate) fn tokenize(text: &str, limit: usize) -> Tokens {
    let mut t = Tokenizer {
        toks: Vec::new(),
        word: String::new(),
        lower: false,
        invalid: false,
        space: false,
        gap: 0,
        limit,
        truncated: false,
    };
    let mut reordered = false;
    if text.is_ascii() {
        // Fast path: nothing to decompose or map.
        for c in text.chars() {
            if !t.push(c) {
                break;
            }
        }
    } else {
        'text: for c in text.chars() {
            reordered |= matches!(c, '\u{202D}' | '\u{202E}');
            // A look-alike of a Latin letter is read as that letter before compatibility
            // decomposition can make it another: U+03F9 (lunate sigma) looks like C but
            // decomposes to Σ.
            if c.is_ascii() || (c.is_alphanumeric() && imitates_latin(c)) {
                if !t.push(c) {
                    break;
                }
                continue;
            }
            for d in c.nfkd() {
                if !is_dropped(d) && !t.push(d) {
                    break 'text;
                }
            }
        }
    }
    t.flush();
    let toks = join_spaced_letters(t.toks);
    let decoration_from = decoration_from(&toks);
    Tokens {
        toks,
        truncated: t.truncated,
        reordered,
        decoration_from,
    }
}

/// Where the decoration that ends `toks` starts.
fn decoration_from(toks: &[Token]) -> usize {
    toks.len() - toks.iter().rev().take_while(|k| is_decoration(k)).count()
}

/// The most pieces a split class word is joined from ([`Tokens::join_split_words`]), and the
/// most letters: longer than the longest class word, short enough to stay cheap.
const MAX_SPLIT_PIECES: usize = 8;
pub(crate) const MAX_SPLIT_LETTERS: usize = 32;

struct Tokenizer {
    toks: Vec<Token>,
    word: String,
    /// The word being read has a lower-case letter.
    lower: bool,
    /// The word being read held an undecodable byte.
    invalid: bool,
    space: bool,
    /// White-space characters since the last token.
    gap: u8,
    limit: usize,
    truncated: bool,
}

impl Tokenizer {
    /// Take one character; false once the token limit is reached.
    fn push(&mut self, c: char) -> bool {
        if c.is_alphanumeric() {
            self.lower |= c.is_lowercase() && c != 'l';
            push_word_char(&mut self.word, c);
            return true;
        }
        if c == UNDECODABLE {
            // part of the word it stands in, adding no letter
            self.invalid = true;
            return true;
        }
        self.flush();
        if self.toks.len() >= self.limit {
            self.truncated = true;
            return false;
        }
        if c.is_whitespace() || c.is_control() {
            self.space = true;
            self.gap = self.gap.saturating_add(1);
        } else if is_separator(c) {
            self.emit(Kind::Dash);
        } else {
            self.emit(Kind::Sym(c));
        }
        true
    }

    fn emit(&mut self, kind: Kind) {
        self.toks.push(Token {
            kind,
            space_before: std::mem::take(&mut self.space),
            gap: std::mem::take(&mut self.gap),
            lower: std::mem::take(&mut self.lower),
            invalid: std::mem::take(&mut self.invalid),
            spaced: false,
        });
    }

    fn flush(&mut self) {
        if !self.word.is_empty() || self.invalid {
            let w = std::mem::take(&mut self.word);
            if self.toks.len() >= self.limit {
                self.truncated = true;
            } else {
                self.emit(Kind::Word(w));
            }
        }
    }
}

/// What stands between two letters of a letter-spaced word: white space (how much), or one
/// sign with no space around it (`S.E.C.R.E.T`, `S-E-C-R-E-T`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum LetterGap {
    Space(u8),
    Sign(Kind),
}

/// Join a letter-spaced word into one (`S E C R E T`, `S.E.C.R.E.T`, `S-E-C-R-E-T`): three
/// or more single letters, every gap between them the same (the same amount
/// of white space, or the same sign with no space around it). A different gap ends the word,
/// so `S E C R E T - N O T E S` is `SECRET - NOTES`. A reader sees one word; read as
/// separate letters it would hide the class it spells.
fn join_spaced_letters(toks: Vec<Token>) -> Vec<Token> {
    let short = |t: &Token| t.kind.word().is_some_and(|w| w.chars().count() == 1);
    if toks.iter().filter(|t| short(t)).count() < 3 {
        return toks;
    }
    // the gap between the piece at `i` and the next one, and where that one stands
    let gap_after = |i: usize| -> Option<(LetterGap, usize)> {
        let next = toks.get(i + 1)?;
        if short(next) && next.space_before {
            return Some((LetterGap::Space(next.gap), i + 1));
        }
        let after = toks.get(i + 2)?;
        let tight = !next.space_before && !after.space_before;
        (tight && next.kind.word().is_none() && short(after))
            .then(|| (LetterGap::Sign(next.kind.clone()), i + 2))
    };
    let mut out: Vec<Token> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if !short(&toks[i]) {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        let mut pieces = vec![i];
        let mut gap: Option<LetterGap> = None;
        while let Some((g, next)) = gap_after(*pieces.last().expect("one piece")) {
            if gap.as_ref().is_some_and(|want| *want != g) {
                break;
            }
            gap = Some(g);
            pieces.push(next);
        }
        if pieces.len() < 3 {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        let mut word = toks[i].clone();
        let mut letters = String::new();
        for &p in &pieces {
            letters.push_str(toks[p].kind.word().unwrap_or_default());
            word.lower |= toks[p].lower;
            word.invalid |= toks[p].invalid;
        }
        word.kind = Kind::Word(letters);
        word.spaced = true;
        out.push(word);
        i = pieces[pieces.len() - 1] + 1;
    }
    out
}

/// `c` (upper-cased) is a Latin letter or digit, or its Unicode skeleton is one.
fn imitates_latin(c: char) -> bool {
    c.to_uppercase()
        .all(|u| u.is_ascii() || latin_skeleton(u).is_some())
}

/// The UTS #39 skeleton of `u` when it is Latin letters and digits only.
fn latin_skeleton(u: char) -> Option<String> {
    let mut buf = [0u8; 4];
    let skeleton: String = unicode_security::skeleton(u.encode_utf8(&mut buf)).collect();
    (!skeleton.is_empty() && skeleton.chars().all(|s| s.is_ascii_alphanumeric()))
        .then_some(skeleton)
}

fn push_word_char(word: &mut String, c: char) {
    if c.is_ascii() {
        word.push(match c {
            'l' | '1' => I_OR_L,
            c => c.to_ascii_uppercase(),
        });
        return;
    }
    for u in c.to_uppercase() {
        if u.is_ascii() {
            word.push(u);
            continue;
        }
        if let Some(skeleton) = latin_skeleton(u) {
            for s in skeleton.chars() {
                word.push(match s {
                    'l' | '1' | 'I' => I_OR_L,
                    s => s.to_ascii_uppercase(),
                });
            }
        } else {
            word.push(u);
        }
    }
}

/// A token of text matches a word the policy wrote (both normalised).
/// A number for a word such that words [`word_eq`] holds for have the same number: a
/// phrase whose first word's number differs from a token's cannot start at that token, which
/// is told without comparing them letter by letter.
pub(crate) fn word_key(word: &str) -> u64 {
    // FNV-1a over the letters, what stands for I or L and zero written as I and O
    word.chars()
        .map(|c| match c {
            I_OR_L | 'L' => 'I',
            '0' => 'O',
            c => c,
        })
        .fold(0xcbf2_9ce4_8422_2325, |hash, c| {
            (hash ^ u64::from(u32::from(c))).wrapping_mul(0x0100_0000_01b3)
        })
}

pub(crate) fn word_eq(text: &str, policy: &str) -> bool {
    if text.is_ascii() && policy.is_ascii() {
        // no letter that stands for I or L: byte for byte
        return text.len() == policy.len()
            && text
                .bytes()
                .zip(policy.bytes())
                .all(|(x, y)| x == y || (x == b'0' && y == b'O'));
    }
    let mut a = text.chars();
    let mut b = policy.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                let same = x == y
                    || (x == I_OR_L && (y == 'I' || y == 'L'))
                    || (y == I_OR_L && (x == 'I' || x == 'L'))
                    || (x == '0' && y == 'O');
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A phrase is skipped by [`word_key`] only when [`word_eq`] would say no: words
        /// equal to it (letters, I or L, zero) have its key.
        #[test]
        fn words_that_are_equal_have_the_same_key(
            word in "[A-Z0-9IL\u{E000}]{0,12}",
            swaps in proptest::collection::vec(0usize..4, 0..12),
        ) {
            // the word as the policy might spell it: what a token's letter may stand for
            let policy: String = word
                .chars()
                .zip(swaps.iter().chain(std::iter::repeat(&0)))
                .map(|(c, s)| match (c, s) {
                    (I_OR_L, 1) => 'I',
                    (I_OR_L, 2) => 'L',
                    ('0', 1) => 'O',
                    (c, _) => c,
                })
                .collect();
            if word_eq(&word, &policy) {
                proptest::prop_assert_eq!(word_key(&word), word_key(&policy));
            }
            proptest::prop_assert_eq!(word_eq(&word, &word), true);
        }
    }

    #[test]
    fn words_keep_their_separators() {
        let t = tokenize("OFFICIAL - notes", 16);
        assert_eq!(t.toks.len(), 3);
        assert!(t.separator_at(1, true));
        let t = tokenize("Secret-Santa", 16);
        assert!(!t.separator_at(1, true));
    }

    #[test]
    fn lookalikes_of_i_and_l_compare_equal() {
        let t = tokenize("CONFlDENTIAL c0nfidential", 16);
        let Kind::Word(w) = &t.toks[0].kind else {
            panic!()
        };
        assert!(word_eq(w, "CONFIDENTIAL"));
        let Kind::Word(w) = &t.toks[1].kind else {
            panic!()
        };
        assert!(word_eq(w, "CONFIDENTIAL"));
        assert!(!word_eq("CONFIDENTIAL", "CONFIDENTIALS"));
    }

    #[test]
    fn lookalikes_are_read_before_compatibility_decomposition() {
        // U+03F9 looks like C; its compatibility decomposition is Σ
        let t = tokenize("\u{03F9}ONFIDENTIAL", 16);
        assert!(word_eq(t.toks[0].kind.word().unwrap(), "CONFIDENTIAL"));
        // full-width letters still go through NFKD
        let t = tokenize("\u{FF33}ECRET", 16);
        assert_eq!(t.toks[0].kind.word(), Some("SECRET"));
    }

    #[test]
    fn undecodable_bytes_and_overrides_are_kept_as_flags() {
        let t = tokenize("S\u{FFFD}ECRET \u{FFFD} ok", 16);
        assert_eq!(t.toks[0].kind.word(), Some("SECRET"));
        assert!(t.toks[0].invalid);
        assert_eq!(t.toks[1].kind.word(), Some(""));
        assert!(t.toks[1].invalid && !t.toks[2].invalid);
        assert!(!t.reordered);
        assert!(tokenize("\u{202E}TERCES", 16).reordered);
    }

    /// The tokens as written back: words, `-` for a dash, signs.
    fn shown(t: &Tokens) -> Vec<String> {
        t.toks
            .iter()
            .map(|t| match &t.kind {
                Kind::Word(w) => w.replace(I_OR_L, "I"),
                Kind::Dash => "-".to_string(),
                Kind::Sym(c) => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn letter_spaced_words_are_joined() {
        let words = |text: &str| shown(&tokenize(text, 64));
        assert_eq!(words("[S E C R E T]"), ["[", "SECRET", "]"]);
        assert_eq!(words("[S.E.C.R.E.T]"), ["[", "SECRET", "]"]);
        assert_eq!(words("s_e_c_r_e_t"), ["SECRET"]);
        assert_eq!(words("S E C R E T - N O T E S"), ["SECRET", "-", "NOTES"]);
        assert_eq!(words("S E C R E T  N O T E S"), ["SECRET", "NOTES"]);
        assert_eq!(words("T O P S E C R E T."), ["TOPSECRET", "."]);
        // prose with short words keeps them
        assert_eq!(words("Q & A at 5"), ["Q", "&", "A", "AT", "5"]);
        assert_eq!(words("a b"), ["A", "B"]);
    }

    #[test]
    fn split_class_words_are_joined() {
        let words = |text: &str| -> Vec<String> {
            let mut t = tokenize(text, 64);
            t.join_split_words(
                MAX_SPLIT_LETTERS,
                |w| {
                    ["SECRET", "OFFICIAL"]
                        .contains(&w.concat().replace(I_OR_L, "I").as_str())
                        .then_some(())
                },
                |w| ["TOP", "SECRET"].contains(&w),
            );
            shown(&t)
        };
        assert_eq!(words("[SEC RET] x"), ["[", "SECRET", "]", "X"]);
        assert_eq!(words("TOP SEC  RET"), ["TOP", "SECRET"]);
        assert_eq!(words("sec-ret OFFI.CIAL"), ["SECRET", "OFFICIAL"]);
        // a word of a class spelling is no piece; signs with space around them part words
        assert_eq!(words("SECRET RET"), ["SECRET", "RET"]);
        assert_eq!(words("SEC - RET"), ["SEC", "-", "RET"]);
        assert_eq!(words("SEC REP"), ["SEC", "REP"]);
        // a piece is none when the pieces after it join closer without it
        let closest = |text: &str| -> Vec<String> {
            let mut t = tokenize(text, 64);
            t.join_split_words(
                MAX_SPLIT_LETTERS,
                |w| match w.concat().as_str() {
                    "SECRET" => Some(true),
                    // not of the whole word `SECRET` and a stray letter
                    "XSECRET" | "SECRETX" => (!w.contains(&"SECRET")).then_some(false),
                    "OPSECRET" => Some(false),
                    _ => None,
                },
                |_| false,
            );
            shown(&t)
        };
        assert_eq!(closest("x SEC RET"), ["X", "SECRET"]);
        assert_eq!(closest("SEC RET x"), ["SECRET", "X"]);
        assert_eq!(closest("x SECRE T"), ["X", "SECRET"]);
        // and a joined word may be a piece of a longer join
        assert_eq!(closest("OP S ECRET"), ["OPSECRET"]);
        // the decoration at the end is found again
        let mut t = tokenize("SEC RET ***", 64);
        t.join_split_words(
            MAX_SPLIT_LETTERS,
            |w| (w.concat() == "SECRET").then_some(()),
            |_| false,
        );
        assert!(t.only_decoration_from(1));
    }

    #[test]
    fn token_limit_marks_truncation() {
        let t = tokenize("a b c d e f", 3);
        assert!(t.truncated);
        assert!(!t.at_end(3));
    }
}
