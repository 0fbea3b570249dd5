//! Grammar: how a marking is written, independent of where it stands. It reads the tokens
//! of [`super::tokenizer`].
//!
//! A marking is a class spelling from the policy (longest spelling first, its words joined by
//! spaces, hyphens, dashes, underscores or a colon: `OFFICIAL-SENSITIVE`,
//! `OFFICIAL - SENSITIVE`, `OFFICIAL:Sensitive`), optionally followed by descriptors of that
//! class (`PERSONAL`, `: PERSONAL`, `[PERSONAL]`, `(PERSONAL)`, `- PERSONAL`). Each place
//! that carries markings says what may follow one (see [`Follow`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use super::tokenizer::{tokenize, word_eq, Kind, Tokens};
use crate::policy::MarkingScheme;

/// A phrase from the policy (a class spelling, a descriptor, a prefix) as a token pattern.
#[derive(Debug, Clone)]
struct Phrase(Vec<Kind>);

impl Phrase {
    fn new(text: &str) -> Phrase {
        Phrase(
            tokenize(text, 64)
                .toks
                .into_iter()
                .map(|t| t.kind)
                .filter(|k| *k != Kind::Dash)
                .collect(),
        )
    }

    /// Match at `i`; the words may be joined by one dash or colon each. Returns the end.
    fn match_at(&self, t: &Tokens, mut i: usize) -> Option<usize> {
        if self.0.is_empty() {
            return None;
        }
        for (k, want) in self.0.iter().enumerate() {
            if k > 0 && matches!(t.kind(i), Some(Kind::Dash | Kind::Sym(':'))) {
                i += 1;
            }
            let ok = match (want, t.kind(i)?) {
                (Kind::Word(w), Kind::Word(got)) => word_eq(got, w),
                (Kind::Sym(a), Kind::Sym(b)) => a == b,
                _ => false,
            };
            if !ok {
                return None;
            }
            i += 1;
        }
        Some(i)
    }
}

/// What may follow a marking for it to count, by where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Anything: the value of a header whose purpose is the marking (`SECRET UK EYES ONLY`).
    Anything,
    /// A separator (`:`, ` - `, `//`, `|`) or the end: the start of a subject.
    Separator,
    /// The closing bracket: a bracketed (`[...]`, `(...)`) marking anywhere in a subject.
    Close(char),
    /// Only decoration, or a dash/`//`/`|` separator and a handling caveat: a banner line.
    Banner,
    /// Only decoration: a marking written on its own.
    Alone,
}

/// A marking read from tokens: the class, its descriptors (canonical), and where it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Match {
    pub class: usize,
    pub descriptors: Vec<String>,
    pub end: usize,
}

/// The policy's spellings, descriptors and prefixes as token patterns.
pub(crate) struct Grammar<'s> {
    pub scheme: &'s MarkingScheme,
    compiled: Arc<Compiled>,
}

/// The patterns compiled from one scheme, and the words they were compiled from.
struct Compiled {
    /// (class index, spelling), longest first.
    spellings: Vec<(usize, Phrase)>,
    /// Per class: (canonical descriptor, pattern), longest first.
    descriptors: Vec<Vec<(String, Phrase)>>,
    banner_prefixes: Vec<Phrase>,
    subject_prefixes: Vec<Phrase>,
    source: Source,
}

/// What a [`Compiled`] was built from, to tell whether a scheme is the same one.
#[derive(PartialEq, Eq)]
struct Source {
    classes: Vec<(Vec<String>, Vec<String>)>,
    banner_prefixes: Vec<String>,
    subject_prefixes: Vec<String>,
}

impl Source {
    fn of(scheme: &MarkingScheme) -> Source {
        Source {
            classes: scheme
                .classes
                .iter()
                .map(|c| (c.spellings.clone(), c.descriptors.clone()))
                .collect(),
            banner_prefixes: scheme.banner_prefixes.clone(),
            subject_prefixes: scheme.subject_prefixes.clone(),
        }
    }

    /// Same words as `scheme`, compared without allocating.
    fn matches(&self, scheme: &MarkingScheme) -> bool {
        self.classes.len() == scheme.classes.len()
            && self
                .classes
                .iter()
                .zip(&scheme.classes)
                .all(|((s, d), c)| *s == c.spellings && *d == c.descriptors)
            && self.banner_prefixes == scheme.banner_prefixes
            && self.subject_prefixes == scheme.subject_prefixes
    }
}

thread_local! {
    /// The last compiled scheme on this thread: a policy changes rarely and messages come
    /// by the thousand, so compiling the patterns once per message would dominate.
    static COMPILED: RefCell<Option<Arc<Compiled>>> = const { RefCell::new(None) };
}

impl Compiled {
    fn new(scheme: &MarkingScheme) -> Compiled {
        let mut spellings: Vec<(usize, Phrase)> = scheme
            .classes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.spellings.iter().map(move |s| (i, Phrase::new(s))))
            .collect();
        spellings.sort_by_key(|(_, p)| std::cmp::Reverse(phrase_len(p)));
        let descriptors = scheme
            .classes
            .iter()
            .map(|c| {
                let mut d: Vec<(String, Phrase)> = c
                    .descriptors
                    .iter()
                    .map(|d| (d.clone(), Phrase::new(d)))
                    .collect();
                d.sort_by_key(|(_, p)| std::cmp::Reverse(phrase_len(p)));
                d
            })
            .collect();
        let mut banner_prefixes: Vec<Phrase> = scheme
            .banner_prefixes
            .iter()
            .map(|p| Phrase::new(p))
            .collect();
        banner_prefixes.sort_by_key(|p| std::cmp::Reverse(phrase_len(p)));
        Compiled {
            spellings,
            descriptors,
            banner_prefixes,
            subject_prefixes: scheme
                .subject_prefixes
                .iter()
                .map(|p| Phrase::new(p))
                .collect(),
            source: Source::of(scheme),
        }
    }
}

impl<'s> Grammar<'s> {
    pub fn new(scheme: &'s MarkingScheme) -> Grammar<'s> {
        let compiled = COMPILED.with(|cell| {
            let mut cached = cell.borrow_mut();
            match cached.as_ref() {
                Some(c) if c.source.matches(scheme) => Arc::clone(c),
                _ => {
                    let c = Arc::new(Compiled::new(scheme));
                    *cached = Some(Arc::clone(&c));
                    c
                }
            }
        });
        Grammar { scheme, compiled }
    }

    /// The class whose (longest) spelling starts at `i`, and where it ends.
    fn class_at(&self, t: &Tokens, i: usize) -> Option<(usize, usize)> {
        self.compiled
            .spellings
            .iter()
            .find_map(|(class, p)| p.match_at(t, i).map(|end| (*class, end)))
    }

    /// Descriptors of `class` following position `i`: `PERSONAL`, `: PERSONAL`,
    /// `[PERSONAL]`, `(PERSONAL)`, `- PERSONAL`, several separated by commas or slashes.
    fn descriptors_at(&self, t: &Tokens, class: usize, mut i: usize) -> (Vec<String>, usize) {
        let mut found: Vec<String> = Vec::new();
        let known = &self.compiled.descriptors[class];
        if known.is_empty() {
            return (found, i);
        }
        while found.len() < known.len() {
            let mut k = i;
            let mut close = None;
            match t.kind(k) {
                Some(Kind::Sym(':' | ',' | '/') | Kind::Dash) => k += 1,
                Some(Kind::Sym('[')) => {
                    k += 1;
                    close = Some(']');
                }
                Some(Kind::Sym('(')) => {
                    k += 1;
                    close = Some(')');
                }
                _ => {}
            }
            let Some((name, end)) = known
                .iter()
                .find_map(|(name, p)| p.match_at(t, k).map(|end| (name, end)))
            else {
                break;
            };
            k = end;
            if let Some(c) = close {
                if !t.is_sym(k, c) {
                    break;
                }
                k += 1;
            }
            if !found.contains(name) {
                found.push(name.clone());
            }
            i = k;
        }
        (found, i)
    }

    fn follows(&self, t: &Tokens, i: usize, follow: Follow) -> bool {
        match follow {
            Follow::Anything => true,
            Follow::Separator => t.separator_at(i, true),
            Follow::Close(c) => t.is_sym(i, c),
            Follow::Banner => t.only_decoration_from(i) || t.separator_at(i, false),
            Follow::Alone => t.only_decoration_from(i),
        }
    }

    /// A marking starting at `i`, followed by what `follow` allows. With descriptors when
    /// they are there and still leave a valid ending, else the class alone
    /// (`OFFICIAL-SENSITIVE - Personal details of ...` is the class alone).
    pub fn marking_at(&self, t: &Tokens, i: usize, follow: Follow) -> Option<Match> {
        let (class, end) = self.class_at(t, i)?;
        let (descriptors, dend) = self.descriptors_at(t, class, end);
        if !descriptors.is_empty() && self.follows(t, dend, follow) {
            return Some(Match {
                class,
                descriptors,
                end: dend,
            });
        }
        self.follows(t, end, follow).then(|| Match {
            class,
            descriptors: Vec::new(),
            end,
        })
    }

    /// A subject: bracketed markings anywhere (`[OFFICIAL]`; in parentheses only when
    /// [deliberate](Tokens::deliberate): `(OFFICIAL-SENSITIVE)`, not `(secret)`); a marking
    /// at the start, after any reply/forward prefixes and leading `[tags]`, followed by a
    /// separator (`RESTRICTED - Op Lima`), or written in capitals and followed by words
    /// (`OFFICIAL-SENSITIVE Referral`, not `Secret Santa draw`); and a deliberate marking
    /// that ends the subject after a separator (`Referral for child A - OFFICIAL-SENSITIVE`,
    /// not `Party plans - secret`).
    pub fn subject(&self, t: &Tokens) -> Vec<Match> {
        let mut out = Vec::new();
        for i in 0..t.toks.len() {
            let close = match t.kind(i) {
                Some(Kind::Sym('[')) => ']',
                Some(Kind::Sym('(')) => ')',
                _ => continue,
            };
            let found = self.marking_at(t, i + 1, Follow::Close(close)).filter(|m| {
                close == ']' || (t.deliberate(i + 1, m.end) && self.not_below_unmarked(m))
            });
            if let Some(mut m) = found {
                // `[OFFICIAL-SENSITIVE] [PERSONAL]`
                let (more, _) = self.descriptors_at(t, m.class, m.end + 1);
                for d in more {
                    if !m.descriptors.contains(&d) {
                        m.descriptors.push(d);
                    }
                }
                out.push(m);
            }
        }
        let start = self.skip_subject_prefixes(t);
        let leading = self.marking_at(t, start, Follow::Separator).or_else(|| {
            self.capitals_before_words(t, start)
                .filter(|m| self.not_below_unmarked(m))
        });
        if let Some(m) = leading {
            out.push(m);
        }
        if let Some(m) = self
            .subject_ending(t, start)
            .filter(|m| self.not_below_unmarked(m))
        {
            out.push(m);
        }
        out
    }

    /// The forms a subject is read in beyond `[CLASS]` and `CLASS:` are less certain, so they
    /// may only make the handling stricter: a class ranked below the unmarked class
    /// (`NPM package update`) is not taken from them.
    fn not_below_unmarked(&self, m: &Match) -> bool {
        self.scheme.class(m.class).rank >= self.scheme.unmarked_class().rank
    }

    /// A marking at `i` written in capitals and followed by white space and a word.
    fn capitals_before_words(&self, t: &Tokens, i: usize) -> Option<Match> {
        let (class, end) = self.class_at(t, i)?;
        let (descriptors, dend) = self.descriptors_at(t, class, end);
        let (descriptors, end) = if !descriptors.is_empty() && t.word_after_space(dend) {
            (descriptors, dend)
        } else {
            (Vec::new(), end)
        };
        (t.in_capitals(i, end) && t.word_after_space(end)).then_some(Match {
            class,
            descriptors,
            end,
        })
    }

    /// A marking that ends the subject (only decoration after it), after a separator that
    /// follows the subject's text: `Referral - OFFICIAL-SENSITIVE`, `Referral: OFFICIAL`.
    fn subject_ending(&self, t: &Tokens, start: usize) -> Option<Match> {
        (start + 1..t.toks.len()).rev().find_map(|i| {
            let after = match t.kind(i)? {
                Kind::Sym(':' | '|') => i + 1,
                Kind::Sym('/') if t.is_sym(i + 1, '/') => i + 2,
                Kind::Dash if t.separator_at(i, false) => i + 1,
                _ => return None,
            };
            self.marking_at(t, after, Follow::Alone)
                .filter(|m| t.deliberate(after, m.end))
        })
    }

    /// Skip `RE:`, `FW[2]:`, `Fwd:`, `AW:` ... and leading `[tags]`, any number of them.
    fn skip_subject_prefixes(&self, t: &Tokens) -> usize {
        let mut i = 0;
        'outer: loop {
            if t.is_sym(i, '[') {
                if let Some(close) = (i + 1..t.toks.len()).find(|&k| t.is_sym(k, ']')) {
                    i = close + 1;
                    continue;
                }
            }
            for p in &self.compiled.subject_prefixes {
                let Some(mut k) = p.match_at(t, i) else {
                    continue;
                };
                // a count: RE[2]: or RE(2):
                if (t.is_sym(k, '[') || t.is_sym(k, '('))
                    && matches!(t.kind(k + 1), Some(Kind::Word(_)))
                    && (t.is_sym(k + 2, ']') || t.is_sym(k + 2, ')'))
                {
                    k += 3;
                }
                if t.is_sym(k, ':') {
                    i = k + 1;
                    continue 'outer;
                }
            }
            return i;
        }
    }

    /// A banner line: optional decoration, optional banner prefix (`Classification:`), the
    /// marking, then only decoration or a separator and a handling caveat.
    pub fn banner(&self, t: &Tokens) -> Option<Match> {
        let mut i = t.skip_decoration(0);
        if let Some(m) = self.marking_at(t, i, Follow::Banner) {
            return Some(m);
        }
        let end = self
            .compiled
            .banner_prefixes
            .iter()
            .find_map(|p| p.match_at(t, i))?;
        i = end;
        if matches!(t.kind(i), Some(Kind::Sym(':' | '=') | Kind::Dash)) {
            i += 1;
        }
        self.marking_at(t, i, Follow::Banner)
    }

    /// A marking written on its own, perhaps decorated (`[OFFICIAL]`).
    pub fn alone(&self, t: &Tokens) -> Option<Match> {
        self.marking_at(t, t.skip_decoration(0), Follow::Alone)
    }

    /// A header value that is a marking: it starts with one (after decoration), and what
    /// follows is free (`SECRET UK EYES ONLY`, `OFFICIAL PERSONAL`) unless it is a misspelt
    /// longer class: `OFFICIAL SENSITVE` is not OFFICIAL, it is an OFFICIAL-SENSITIVE the
    /// policy cannot read.
    pub fn header_value(&self, t: &Tokens) -> Option<Match> {
        let start = t.skip_decoration(0);
        let m = self.marking_at(t, start, Follow::Anything)?;
        if m.descriptors.is_empty() && self.misspelt_longer_class(t, start, m.end) {
            return None;
        }
        Some(m)
    }

    /// The words from `from` to `to` begin a longer class spelling, and the word at `to`
    /// looks like that spelling's next word but is not it (edit distance at most 2, or the
    /// same first four letters).
    fn misspelt_longer_class(&self, t: &Tokens, from: usize, to: usize) -> bool {
        let Some(Kind::Word(next)) = t.kind(to) else {
            return false;
        };
        let words: Vec<&str> = t
            .range(from, to)
            .iter()
            .filter_map(|tok| tok.kind.word())
            .collect();
        self.compiled.spellings.iter().any(|(_, phrase)| {
            let spelled: Vec<&str> = phrase.0.iter().filter_map(Kind::word).collect();
            let Some(want) = spelled.get(words.len()) else {
                return false;
            };
            words
                .iter()
                .zip(&spelled)
                .all(|(got, want)| word_eq(got, want))
                && !word_eq(next, want)
                && looks_like(next, want)
        })
    }
}

/// `got` is probably a misspelling of `want`: at most two edits apart, or the same first
/// four letters (`SENSITVE`, `SENSATIVE`, `SENS`).
fn looks_like(got: &str, want: &str) -> bool {
    let prefix = |w: &str| w.chars().take(4).collect::<String>();
    let same_start = got.chars().count() >= 4 && prefix(got) == prefix(want);
    same_start || strsim::levenshtein(got, want) <= 2
}

fn phrase_len(p: &Phrase) -> (usize, usize) {
    let chars =
        p.0.iter()
            .map(|k| match k {
                Kind::Word(w) => w.chars().count(),
                _ => 1,
            })
            .sum();
    (p.0.len(), chars)
}

/// Unfold a header value (CRLF/LF followed by white space) and trim it.
pub(crate) fn unfold(value: &str) -> Cow<'_, str> {
    let value = value.trim();
    if memchr::memchr2(b'\r', b'\n', value.as_bytes()).is_none() {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        rest = rest[at..].trim_start_matches(['\r', '\n']);
        if rest.starts_with(|c: char| !c.is_whitespace()) && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
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

    #[test]
    fn unfolding() {
        assert_eq!(unfold("a;\r\n b"), "a; b");
        assert_eq!(unfold("a;\n\tb"), "a;\tb");
        assert_eq!(unfold(" plain "), "plain");
    }
}
