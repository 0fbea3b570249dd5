//! Near misses: a word that is not a class word but a slip from one (`SECRT`, `SECR3T`,
//! `OFFICAL`), measured once digits and signs that pose as letters are folded, and why such a
//! word makes a marking unreadable; also class words holding a byte that is not text.

use super::super::tokenizer::{word_eq, Tokens, I_OR_L};
use super::{is_joiner, segment_end, weak_separator_at, Brackets, Grammar, TokenKey};

impl Grammar<'_> {
    /// Why the text cannot be read when a word outside the markings read (`read`) held an
    /// undecodable byte and looks like a class word (`SE<0xFF>RET`).
    pub(super) fn undecodable_class_word(
        &self,
        t: &Tokens,
        read: &[(usize, usize)],
    ) -> Option<String> {
        t.toks.iter().enumerate().find_map(|(i, tok)| {
            let word = tok.kind.word().filter(|_| tok.invalid)?;
            let inside = read.iter().any(|&(from, to)| (from..to).contains(&i));
            (!inside && self.like_a_class_word(word, 3)).then(|| {
                format!("{word:?} holds a byte that is not text and looks like a class word")
            })
        })
    }

    /// Why the text cannot be read when a word spelt out in spaced letters, outside the
    /// markings read (`read`), holds a class word among other letters or looks like one
    /// (`x S E C R E T x`, joined `XSECRETX`): a reader sees the class spelt out there.
    pub(super) fn spaced_class_word(&self, t: &Tokens, read: &[(usize, usize)]) -> Option<String> {
        t.toks.iter().enumerate().find_map(|(i, tok)| {
            let word = tok.kind.word().filter(|_| tok.spaced)?;
            let inside = read.iter().any(|&(from, to)| (from..to).contains(&i));
            (!inside && self.like_a_class_word(word, NEAR_MISS_MIN)).then(|| {
                format!("the letters spaced out as {word:?} spell a class word among other letters")
            })
        })
    }

    /// Why a line (the tokens from `from` to `to`) cannot be read when it holds a byte that
    /// is not text and its letters that were not read (`read`), run together, look like a
    /// class word (`$<0xFF> E C R E T`; the class words of `shortest` letters or more): what
    /// a reader sees there cannot be said.
    pub(super) fn undecodable_letters(
        &self,
        t: &Tokens,
        (from, to): (usize, usize),
        read: &[(usize, usize)],
        shortest: usize,
    ) -> Option<String> {
        let toks = t.range(from, to);
        if !toks.iter().any(|tok| tok.invalid) {
            return None;
        }
        let letters: String = toks
            .iter()
            .enumerate()
            .map(|(i, tok)| (from + i, tok))
            .filter(|(i, _)| !read.iter().any(|&(from, to)| (from..to).contains(i)))
            .filter_map(|(_, tok)| tok.kind.word())
            // what stands for I or L is written I (`o f f <Cyrillic i> c i a l`)
            .flat_map(|w| w.chars().map(|c| if c == I_OR_L { 'I' } else { c }))
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
            .to_uppercase();
        self.like_a_class_word(&letters, shortest).then(|| {
            format!(
                "the line holds a byte that is not text, and its letters ({letters:?}) look like a class word"
            )
        })
    }

    /// `word` is, contains or looks like a word of a class spelling (of `shortest` letters
    /// or more).
    pub(super) fn like_a_class_word(&self, word: &str, shortest: usize) -> bool {
        !word.is_empty()
            && self.compiled.spellings.iter().any(|(_, p)| {
                p.words().filter(|w| w.len() >= shortest).any(|class_word| {
                    word_eq(word, class_word)
                        || (class_word.len() >= 3 && word.contains(class_word))
                        || (class_word.len() >= 5 && looks_like(word, class_word))
                })
            })
    }

    /// The class word `word` is a near miss of, if any: not one, but a small slip from one
    /// once [`fold`]ed (digits and signs that pose as letters mapped: `SECR3T`, `$ECRET`),
    /// one edit for a class word of up to seven letters (`SECRT`, `SECRETS`), two for a
    /// longer one (`RESTRICED`, `OFFICAL`, `CONFIDENTAIL`). Words shorter than
    /// [`NEAR_MISS_MIN`] letters are near misses only of a class word they are once folded
    /// (`7OP`; `TOP`, `NPM`, `PATCH` stay words).
    pub(super) fn near_miss(&self, word: &str) -> Option<&ClassWord> {
        self.near_misses_of(word)
            .next()
            .map(|(class_word, _)| class_word)
    }

    /// Every class word `word` is a near miss of ([`Self::near_miss`]; a class word itself
    /// too, by no edit), and by how many edits once [`fold`]ed.
    fn near_misses_of<'a, 'w>(
        &'a self,
        word: &'w str,
    ) -> impl Iterator<Item = (&'a ClassWord, usize)> + use<'a, 'w> {
        let folded = fold(word);
        let len = folded.chars().count();
        // most words are no near miss by their length alone: their letters are not counted
        let letters = std::cell::OnceCell::new();
        self.compiled
            .class_words
            .iter()
            .filter_map(move |class_word| {
                if len < NEAR_MISS_MIN - 1 {
                    // a short class word with a digit posing in it (`7OP` of `7OP SECRET`)
                    let posing = class_word.folded == folded && !word_eq(word, &class_word.word);
                    return posing.then_some((class_word, 0));
                }
                let class_len = class_word.folded_len;
                if class_len < NEAR_MISS_MIN {
                    return None;
                }
                let allowed = if class_len <= 7 { 1 } else { 2 };
                if len.abs_diff(class_len) > allowed
                    || letters
                        .get_or_init(|| LetterCounts::of(&folded))
                        .apart(&class_word.letters)
                        > 2 * allowed
                {
                    return None;
                }
                let by = strsim::osa_distance(&folded, &class_word.folded);
                (by <= allowed).then_some((class_word, by))
            })
    }

    /// Whether `pieces` joined might be a word of a class spelling or a near miss of a class
    /// word: told by their letters' number and counts alone, without building the word, so
    /// that the many joins of prose words that are neither cost little. A join this says no
    /// to is neither ([`Self::near_misses_of`] applies the same two tests first).
    pub(super) fn may_be_joined(&self, pieces: &[&str]) -> bool {
        let mut letters = LetterCounts([0; 27]);
        letters.add(pieces.iter().flat_map(|p| p.chars()).map(fold_char));
        let len: usize = letters.0.iter().map(|&n| usize::from(n)).sum();
        let spelling = || {
            self.compiled
                .spelling_letters
                .iter()
                .any(|(word_len, counts)| *word_len == len && *counts == letters)
        };
        let near = || {
            self.compiled.class_words.iter().any(|class_word| {
                let class_len = class_word.folded_len;
                if len < NEAR_MISS_MIN - 1 {
                    // only a short class word with a digit posing in it: the same letters
                    return class_len == len && class_word.letters == letters;
                }
                let allowed = if class_len <= 7 { 1 } else { 2 };
                class_len >= NEAR_MISS_MIN
                    && len.abs_diff(class_len) <= allowed
                    && letters.apart(&class_word.letters) <= 2 * allowed
            })
        };
        spelling() || near()
    }

    /// Pieces of a split word (`[SEC RT]`, `estricte d`) are read joined, as one near miss
    /// of a class word, when the join is no further from that word than each piece alone is
    /// from the word it misses (`OFFICAL-SENSITVE` is two near misses, not one of
    /// `OFFICIALSENSITIVE`). A piece that is a whole class word is joined too when the join is
    /// one slip from a class word that the piece alone would read lower than: a word of a
    /// higher class (`OP SECRET`, `TOP S SECRET`: `TOPSECRET` with a letter dropped or
    /// doubled), or the word itself with a letter doubled and split off (`s secret`, `secret
    /// t`, which read as prose).
    pub(super) fn near_miss_joined(&self, pieces: &[&str]) -> bool {
        let letters = pieces.concat();
        // most joins are near no class word: the pieces alone are not measured then
        let mut joins = self.near_misses_of(&letters).peekable();
        if joins.peek().is_none() {
            return false;
        }
        // per piece: the rank of the class word it is nearest, and by how many edits
        let alone: Vec<Option<(u32, usize)>> = pieces
            .iter()
            .map(|piece| {
                self.near_misses_of(piece)
                    .map(|(class_word, by)| (class_word.rank, by))
                    .min_by_key(|&(_, by)| by)
            })
            .collect();
        joins.any(|(class_word, joined)| {
            let damaged = |rank: u32| {
                joined == 1
                    && (class_word.rank > rank
                        || doubled_letter(&fold(&letters), &class_word.folded))
            };
            alone.iter().all(|piece| {
                piece.is_none_or(|(rank, by)| joined <= by || (by == 0 && damaged(rank)))
            })
        })
    }

    /// The words from `from` to `to` that are no part of a marking, read for near misses.
    fn near_misses(&self, t: &Tokens, from: usize, to: usize) -> NearMisses {
        let to = to.min(t.toks.len());
        let mut found = NearMisses::default();
        let mut k = from;
        while k < to {
            if is_joiner(&t.toks[k]) {
                k += 1;
                continue;
            }
            let key = TokenKey::at(t, k);
            if let Some(end) = self
                .compiled
                .parts
                .iter()
                .filter(|(_, p)| p.may_start(key))
                .find_map(|(_, p)| p.match_at(t, k).filter(|&e| e <= to))
            {
                k = end;
                continue;
            }
            let word = t.toks[k].kind.word();
            let near = word
                .and_then(|w| self.near_miss(w).map(|c| (w, c)))
                .map(|(w, c)| (c, w, inflection(&fold(w), &c.folded)))
                // `UNOFFICIAL`, `INSENSITIVE`: another word, not a class misspelt
                .filter(|&(_, _, inflected)| inflected != Some(Inflection::Negated));
            match near {
                Some((class_word, written, inflected)) => {
                    let capitals = !t.toks[k].lower;
                    let inflected = inflected.is_some();
                    let this = (k, class_word.missed_by(written));
                    found.first.get_or_insert_with(|| this.clone());
                    if capitals {
                        found.capitals.get_or_insert_with(|| this.clone());
                    }
                    if !inflected {
                        found.typo.get_or_insert_with(|| this.clone());
                        if capitals {
                            found.capital_typo.get_or_insert(this);
                        }
                    }
                }
                // a word that is no near miss (a word of a class spelling, `TOP` of `TOP
                // SECRT`, is no free word); a sign (`$` of `$ECRET`) is no word
                None => {
                    let free =
                        word.is_some_and(|w| !among_folded(&self.compiled.spelling_words, w));
                    if free {
                        found.other = true;
                        found.other_at.get_or_insert(k);
                    }
                }
            }
            k += 1;
        }
        found
    }

    /// Why the tokens from `from` to `to` cannot be read, when they are shaped like a
    /// marking but hold a near miss of a class word ([`Self::near_miss`]):
    /// - in square brackets or a tag (`any_case`): every other word is a part of a marking,
    ///   or a near miss is written in capitals (`[SECRT]`, `[Secrets]`, `[SECRT annex]`;
    ///   `[Officials meeting]` stays prose);
    /// - elsewhere (a segment before or after a separator, another enclosure, a banner line):
    ///   every other word is a part of a marking, and the near miss is in capitals or is no
    ///   inflection of the class word (`Secrt: plan`, `SECRETS: plan`; `Secrets: what to
    ///   know` stays prose).
    pub(super) fn near_miss_in(
        &self,
        t: &Tokens,
        from: usize,
        to: usize,
        any_case: bool,
    ) -> Option<String> {
        let found = self.near_misses(t, from, to);
        let hit = if any_case {
            if found.other {
                found.capitals
            } else {
                found.first
            }
        } else if found.other {
            None
        } else {
            found.capitals.or(found.typo)
        };
        hit.map(|(at, missed)| near_miss_why(t, at, &missed))
    }

    /// Why the segment of a subject or banner line from `p` (to the next separator,
    /// [`segment_end`]) cannot be read: [`Self::near_miss_in`] of the segment, or of its
    /// part up to a lesser sign, since a marking may end there too (`NPM, Secrt; plan`,
    /// `PROTECT; ecret; notes`: [`weak_separator_at`]).
    pub(super) fn near_miss_in_segment(
        &self,
        t: &Tokens,
        p: usize,
        brackets: &Brackets,
    ) -> Option<String> {
        let end = segment_end(t, p, brackets);
        let whole = self.near_misses(t, p, end);
        let Some(other) = whole.other_at else {
            return self.near_miss_in(t, p, end, false);
        };
        // the longest part before the first free word that ends at a lesser sign: a near
        // miss in it and no free word
        let weak_end = (p..other)
            .rev()
            .find(|&k| brackets.depth[k] == 0 && weak_separator_at(t, k))?;
        self.near_miss_in(t, p, weak_end, false)
    }

    /// Why text cannot be read when a word in it, written in capitals (or any way, when not
    /// `capitals`), is a near miss of a class word and no inflection of it: `Op Lima SECRT
    /// update`, an EPMS `NOTE=` or a label name. `COUNCIL OFFICIALS` and `INSENSITIVE` are
    /// words.
    pub fn near_miss_anywhere(
        &self,
        t: &Tokens,
        from: usize,
        to: usize,
        capitals: bool,
    ) -> Option<String> {
        let found = self.near_misses(t, from, to);
        let hit = if capitals {
            found.capital_typo
        } else {
            found.typo
        };
        hit.map(|(at, missed)| near_miss_why(t, at, &missed))
    }
}

/// The shortest a class word must be for a near miss of it to count ([`Grammar::near_miss`]).
pub(super) const NEAR_MISS_MIN: usize = 5;

/// A word with what poses as a letter mapped to that letter, for measuring near misses:
/// `I`, `L` and what imitates them are one letter; `0` is O, `3` E, `4` A, `5` S, `7` T,
/// `8` B, `6` and `9` G, `2` Z.
pub(super) fn fold(word: &str) -> String {
    word.chars().map(fold_char).collect()
}

/// Whether `word` [`fold`]ed is among `folded_words` (sorted), told without building it.
pub(super) fn among_folded(folded_words: &[String], word: &str) -> bool {
    folded_words
        .binary_search_by(|folded| folded.chars().cmp(word.chars().map(fold_char)))
        .is_ok()
}

/// One letter as [`fold`] maps it.
fn fold_char(c: char) -> char {
    match c {
        I_OR_L | 'I' | 'L' | '1' => 'I',
        '0' => 'O',
        '3' => 'E',
        '4' => 'A',
        '5' => 'S',
        '7' => 'T',
        '8' => 'B',
        '6' | '9' => 'G',
        '2' => 'Z',
        c => c,
    }
}

/// Near misses of class words among the words of some text ([`Grammar::near_misses`]):
/// where each kind first stands, and the class word it misses.
#[derive(Debug, Default)]
struct NearMisses {
    /// Any near miss.
    first: Option<(usize, String)>,
    /// One written in capitals.
    capitals: Option<(usize, String)>,
    /// One that is no inflection of its class word (`SECRT`, not `SECRETS`).
    typo: Option<(usize, String)>,
    /// One written in capitals that is no inflection.
    capital_typo: Option<(usize, String)>,
    /// A word that is neither a part of a marking nor a near miss stands there too.
    other: bool,
    /// Where the first such word stands.
    other_at: Option<usize>,
}

/// How many of each letter a word holds (A to Z, and anything else): one edit changes the
/// counts by at most two, so words whose counts are further apart than twice the edits
/// allowed are no near miss, and are told without measuring the edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LetterCounts([u8; 27]);

impl LetterCounts {
    pub(super) fn of(word: &str) -> LetterCounts {
        let mut counts = LetterCounts([0u8; 27]);
        counts.add(word.chars());
        counts
    }

    fn add(&mut self, letters: impl Iterator<Item = char>) {
        for c in letters {
            let slot = match c {
                'A'..='Z' => c as usize - 'A' as usize,
                _ => 26,
            };
            self.0[slot] = self.0[slot].saturating_add(1);
        }
    }

    /// The letters one word holds and the other does not, counted both ways.
    fn apart(&self, other: &LetterCounts) -> usize {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| usize::from(a.abs_diff(*b)))
            .sum()
    }
}

/// A word of a class spelling, as near misses are measured against it.
#[derive(Debug, Clone)]
pub(super) struct ClassWord {
    /// [`fold`]ed, as measured.
    pub(super) folded: String,
    /// How many letters `folded` has.
    pub(super) folded_len: usize,
    /// The letters of `folded`.
    pub(super) letters: LetterCounts,
    /// As the policy spells it.
    pub(super) word: String,
    /// The class it is a word of.
    pub(super) class: String,
    /// That class's rank.
    pub(super) rank: u32,
}

impl ClassWord {
    /// How `written`, a near miss of this word, misses it (said after the word itself).
    pub(super) fn missed_by(&self, written: &str) -> String {
        if written.to_uppercase() == self.word.to_uppercase() && self.word != self.class {
            // `SENSITIVE` alone: a word of `OFFICIAL-SENSITIVE`, written right
            format!(
                "is a word of the class {:?}, not the whole class: a marking written in part cannot be read",
                self.class
            )
        } else {
            format!(
                "looks like the class word {:?} but is not one: a marking written wrong cannot be read",
                self.word
            )
        }
    }
}

/// Why a near miss at token `at` cannot be read; `missed` from [`ClassWord::missed_by`].
fn near_miss_why(t: &Tokens, at: usize, missed: &str) -> String {
    format!("{} {missed}", t.toks[at].describe())
}

/// How a word is a class word inflected as an English word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inflection {
    /// `SECRETS`, `OFFICIALLY`: perhaps a word of prose, perhaps the class written loosely.
    Suffixed,
    /// `INSENSITIVE`, `UNOFFICIAL`, `NONSECRET`: another word.
    Negated,
}

/// Whether `word` is `class_word` inflected (both [`fold`]ed).
fn inflection(word: &str, class_word: &str) -> Option<Inflection> {
    if let Some(suffix) = word.strip_prefix(class_word) {
        // `-LY` folds to `IY`; `SECRETE` is a word, `SENSITIVEE` and `RESTRICTEDE` are not
        let word_of_its_own = suffix == "E" && class_word == "SECRET";
        return (["S", "ES", "IY"].contains(&suffix) || word_of_its_own)
            .then_some(Inflection::Suffixed);
    }
    ["IN", "UN", "NON"]
        .iter()
        .any(|prefix| word.strip_prefix(prefix) == Some(class_word))
        .then_some(Inflection::Negated)
}

/// `word` is `class_word` with one of its letters doubled (`SSECRET`, `SECRETT`; both
/// [`fold`]ed).
fn doubled_letter(word: &str, class_word: &str) -> bool {
    let letters: Vec<char> = word.chars().collect();
    letters.len() == class_word.chars().count() + 1
        && (0..letters.len() - 1).any(|i| {
            letters[i] == letters[i + 1]
                && letters[..i]
                    .iter()
                    .chain(&letters[i + 1..])
                    .copied()
                    .eq(class_word.chars())
        })
}

/// `got` is probably a misspelling of `want`: at most two edits apart, or the same first
/// four letters (`SENSITVE`, `SENSATIVE`, `SENS`).
pub(super) fn looks_like(got: &str, want: &str) -> bool {
    let prefix = |w: &str| w.chars().take(4).collect::<String>();
    let same_start = got.chars().count() >= 4 && prefix(got) == prefix(want);
    same_start || strsim::levenshtein(got, want) <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspellings_of_a_class_word_look_like_it() {
        assert!(looks_like("SENSITVE", "SENSITIVE"));
        assert!(looks_like("SENSATIVE", "SENSITIVE"));
        assert!(looks_like("SENS", "SENSITIVE"));
        assert!(looks_like("SENSITIV", "SENSITIVE"));
        assert!(!looks_like("PERSONAL", "SENSITIVE"));
        assert!(!looks_like("USE", "SENSITIVE"));
        assert!(!looks_like("UK", "SENSITIVE"));
    }
}
