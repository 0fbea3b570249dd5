//! Grammar: how a marking is written, independent of where it stands. It reads the tokens
//! of [`super::tokenizer`].
//!
//! A marking is read whole. Its parts are class spellings from the policy (longest spelling
//! first, their words joined by spaces, hyphens, dashes, underscores or a colon:
//! `OFFICIAL-SENSITIVE`, `OFFICIAL - SENSITIVE`, `OFFICIAL:Sensitive`), descriptors
//! (`PERSONAL`, carried by the class before them when that class lists them), the caveats
//! the policy lists (`UK EYES ONLY`), and the separators between them ([`is_joiner`]:
//! `/ , ; : | ( ) [ ]`, dashes, decoration). The marking is the highest class any part names
//! (`NPM, SECRET` is SECRET); a value that must be a marking and holds anything else
//! (`NPM (SECRET annex attached)`) cannot be read ([`Reading::unknown`]).
//!
//! Where markings stand among other text (a subject, a banner line), a run of such parts is
//! a marking when it is delimited as one: in brackets or any other enclosure (`{Secret}`,
//! `** Secret **`, `"Secret"`), or followed by a separator (`:`, ` - `, `//`, `|`) or the
//! end; in running text only when written deliberately (in capitals, or several words).
//! `Secret Santa draw` and `Restricted parking` stay prose.
//!
//! A near miss of a class word (`SECRT`, `SECR3T`, `OFFICAL-SENSITVE`: [`Grammar::near_miss`])
//! where a marking is delimited, or in capitals, cannot be read: misspelt, a marking must
//! never read as a lower class.
//!
//! Here: phrases, the compiled policy words and reading a value whole; [`subject`] reads a
//! subject, [`banner`] a banner line, [`near_miss`] measures slips from class words.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use super::tokenizer::{tokenize, word_eq, word_key, Kind, Token, Tokens};
use super::MarkingScheme;

mod banner;
mod near_miss;
mod subject;
use near_miss::{among_folded, fold, ClassWord, LetterCounts, NEAR_MISS_MIN};

/// A phrase from the policy (a class spelling, a descriptor, a caveat, a prefix) as a token
/// pattern.
#[derive(Debug, Clone)]
struct Phrase {
    kinds: Vec<Kind>,
    /// The [`word_key`] of its first word, when it starts with one.
    first_word: Option<u64>,
}

impl Phrase {
    fn new(text: &str) -> Phrase {
        let kinds: Vec<Kind> = tokenize(text, 64)
            .toks
            .into_iter()
            .map(|t| t.kind)
            .filter(|k| *k != Kind::Dash)
            .collect();
        let first_word = kinds.first().and_then(Kind::word).map(word_key);
        Phrase { kinds, first_word }
    }

    /// Match at `i`; the words may be joined by one dash or colon each, or by a dot or slash
    /// with no space around it (`TOP.SECRET`, `OFFICIAL/SENSITIVE`). Returns the end.
    fn match_at(&self, t: &Tokens, mut i: usize) -> Option<usize> {
        if self.kinds.is_empty() {
            return None;
        }
        for (k, want) in self.kinds.iter().enumerate() {
            let tight = |i: usize| {
                !t.toks[i].space_before && t.toks.get(i + 1).is_some_and(|n| !n.space_before)
            };
            let joins = match t.kind(i) {
                Some(Kind::Dash | Kind::Sym(':')) => true,
                Some(Kind::Sym('.' | '/')) => matches!(want, Kind::Word(_)) && tight(i),
                _ => false,
            };
            if k > 0 && joins {
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

    fn words(&self) -> impl Iterator<Item = &str> {
        self.kinds.iter().filter_map(Kind::word)
    }

    /// Whether the phrase may start at a token whose [`TokenKey`] is `key` (a phrase that
    /// starts with a word cannot start at another word, nor at a sign).
    fn may_start(&self, key: TokenKey) -> bool {
        match (self.first_word, key) {
            (Some(first), TokenKey::Word(key)) => first == key,
            (Some(_), TokenKey::Other) => false,
            (None, _) => true,
        }
    }
}

/// What a phrase is told by before it is matched at a token ([`Phrase::may_start`]): the
/// [`word_key`] of the token's word, or no word.
#[derive(Debug, Clone, Copy)]
enum TokenKey {
    Word(u64),
    Other,
}

impl TokenKey {
    fn at(t: &Tokens, i: usize) -> TokenKey {
        match t.kind(i) {
            Some(Kind::Word(w)) => TokenKey::Word(word_key(w)),
            _ => TokenKey::Other,
        }
    }
}

/// A class read from tokens: the class, its descriptors (canonical), and where it stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Match {
    pub class: usize,
    pub descriptors: Vec<String>,
    pub start: usize,
    pub end: usize,
}

/// A stretch of text read whole as a marking.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reading {
    /// Every class it names, in order.
    pub classes: Vec<Match>,
    /// The first token that is no part of a marking (neither a class, a descriptor, a caveat
    /// nor a separator), if any: then the text cannot be read as a marking.
    pub unknown: Option<usize>,
}

/// What the subject or a banner line was read as.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    /// The classes of every marking found.
    pub classes: Vec<Match>,
    /// Why the text cannot be read, when it holds something shaped like a marking that is
    /// not one (`[SECRET annex]`, `[SE<0xFF>RET]`).
    pub unreadable: Option<String>,
}

/// One part of a marking.
#[derive(Debug, Clone)]
enum Part {
    Class(usize),
    /// Canonical descriptor name.
    Descriptor(String),
    Caveat,
}

/// A run of marking parts from some position.
struct Run {
    /// Classes named, without their descriptors.
    classes: Vec<Match>,
    /// Descriptors carried: (index into `classes`, canonical name, where it ends).
    descriptors: Vec<(usize, String, usize)>,
    /// Positions where a part or a joiner of the run ends, in order: where the run may be
    /// cut (never inside a phrase).
    ends: Vec<usize>,
    /// The first position that is no part of the run.
    stop: usize,
    /// The run went on past [`MAX_RUN`] tokens: it was not read to its end.
    cut_short: bool,
}

/// The most tokens a run of marking parts is read to: a marking is short, and reading one
/// from every position of a long subject must not take quadratic time.
const MAX_RUN: usize = 256;

/// Separators that may join the parts of a marking: `NPM, SECRET`, `OFFICIAL / SECRET`,
/// `UNCLASSIFIED//SECRET`, `OFFICIAL-SENSITIVE [PERSONAL]`, `*** SECRET ***`.
fn is_joiner(t: &Token) -> bool {
    match t.kind {
        Kind::Dash => true,
        Kind::Sym(c) => matches!(
            c,
            '/' | ','
                | ';'
                | ':'
                | '|'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '<'
                | '>'
                | '"'
                | '*'
                | '='
                | '#'
                | '~'
                | '.'
                | '!'
                | '+'
                | '&'
                | '«'
                | '»'
                | '•'
                | '·'
        ),
        Kind::Word(_) => false,
    }
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
    /// Every class spelling, descriptor and caveat, longest first.
    parts: Vec<(Part, Phrase)>,
    banner_prefixes: Vec<Phrase>,
    subject_prefixes: Vec<Phrase>,
    /// The words of the spellings of every class above the unmarked one, [`fold`]ed: what a
    /// near miss is measured against (a short one, `TOP`, only when digits pose in it).
    class_words: Vec<ClassWord>,
    /// Every word of every class spelling ([`fold`]ed): no free word beside a near miss
    /// (`TOP` of `TOP SECRT`).
    spelling_words: Vec<String>,
    /// The most letters a split word joined back can have and still be a word of a class
    /// spelling or a near miss of a class word: longer joins are not tried.
    longest_join: usize,
    /// The number of letters and the letter counts of each word of `spelling_words`.
    spelling_letters: Vec<(usize, LetterCounts)>,
    source: Source,
}

/// What a [`Compiled`] was built from, to tell whether a scheme is the same one.
#[derive(PartialEq, Eq)]
struct Source {
    classes: Vec<(Vec<String>, Vec<String>)>,
    caveats: Vec<String>,
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
            caveats: scheme.caveats.clone(),
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
            && self.caveats == scheme.caveats
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
        let longest_first = |p: &Phrase| std::cmp::Reverse(phrase_len(p));
        let mut spellings: Vec<(usize, Phrase)> = scheme
            .classes
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.spellings.iter().map(move |s| (i, Phrase::new(s))))
            .collect();
        spellings.sort_by_key(|(_, p)| longest_first(p));
        let descriptors: Vec<Vec<(String, Phrase)>> = scheme
            .classes
            .iter()
            .map(|c| {
                let mut d: Vec<(String, Phrase)> = c
                    .descriptors
                    .iter()
                    .map(|d| (d.clone(), Phrase::new(d)))
                    .collect();
                d.sort_by_key(|(_, p)| longest_first(p));
                d
            })
            .collect();
        let mut parts: Vec<(Part, Phrase)> = spellings
            .iter()
            .map(|(class, p)| (Part::Class(*class), p.clone()))
            .collect();
        let mut named: Vec<&String> = Vec::new();
        for (name, p) in descriptors.iter().flatten() {
            if !named.contains(&name) {
                named.push(name);
                parts.push((Part::Descriptor(name.clone()), p.clone()));
            }
        }
        parts.extend(
            scheme
                .caveats
                .iter()
                .map(|c| (Part::Caveat, Phrase::new(c))),
        );
        // a stable sort: at equal length a class spelling goes before a descriptor or caveat
        parts.sort_by_key(|(_, p)| longest_first(p));
        let mut banner_prefixes: Vec<Phrase> = scheme
            .banner_prefixes
            .iter()
            .map(|p| Phrase::new(p))
            .collect();
        banner_prefixes.sort_by_key(longest_first);
        // a near miss of a class no higher than the unmarked one cannot lower the marking
        let unmarked = scheme.unmarked_class().rank;
        let mut class_words: Vec<ClassWord> = spellings
            .iter()
            .filter(|(class, _)| scheme.class(*class).rank > unmarked)
            .flat_map(|(class, p)| {
                p.words().map(|w| ClassWord {
                    letters: LetterCounts::of(&fold(w)),
                    folded: fold(w),
                    folded_len: fold(w).chars().count(),
                    word: w.to_string(),
                    class: scheme.class(*class).name.clone(),
                    rank: scheme.class(*class).rank,
                })
            })
            .collect();
        // of a word in several spellings (`SECRET`, `TOP SECRET`), the class it is whole
        // comes first and is kept
        class_words
            .sort_by(|a, b| (&a.folded, a.class != a.word).cmp(&(&b.folded, b.class != b.word)));
        class_words.dedup_by(|a, b| a.folded == b.folded);
        let mut spelling_words: Vec<String> = spellings
            .iter()
            .flat_map(|(_, p)| p.words())
            .map(fold)
            .collect();
        spelling_words.sort();
        spelling_words.dedup();
        // a near miss is at most two letters longer than its class word
        let longest_join = spelling_words
            .iter()
            .map(|w| w.chars().count())
            .chain(class_words.iter().map(|c| c.folded_len + 2))
            .max()
            .unwrap_or(0);
        let spelling_letters = spelling_words
            .iter()
            .map(|w| (w.chars().count(), LetterCounts::of(w)))
            .collect();
        Compiled {
            longest_join,
            spelling_letters,
            class_words,
            spelling_words,
            spellings,
            descriptors,
            parts,
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

    /// `text` cut into tokens ([`tokenize`], at most `limit`), with a class word (or a near
    /// miss of one) split into pieces joined back into the word a reader sees (`[SEC RET]`:
    /// [`Tokens::join_split_words`]): how text is read where a marking may stand among other
    /// words (a subject, a banner line, a free-text field). A value that must be a marking
    /// is read as written instead: a piece there is no part of a marking, so it cannot be
    /// read.
    pub fn tokens(&self, text: &str, limit: usize) -> Tokens {
        let mut t = tokenize(text, limit);
        let compiled = &self.compiled;
        t.join_split_words(
            compiled.longest_join,
            |pieces| {
                if !self.may_be_joined(pieces) {
                    return None;
                }
                let letters = pieces.concat();
                let folded = fold(&letters);
                // a word of any class (`NOT PR OTECTIVELY MARKED` is read as it shows)
                let exact = folded.chars().count() >= NEAR_MISS_MIN
                    && compiled.spelling_words.binary_search(&folded).is_ok();
                // a near miss joined is read as one (`[SEC RT]`, `estricte d`, `OP SECRET`
                // cannot be read)
                let near = || self.near_miss_joined(pieces);
                (exact || near()).then_some(exact)
            },
            |word| among_folded(&compiled.spelling_words, word),
        );
        t
    }

    /// A marking written on its own, perhaps decorated (`[OFFICIAL]`, `*** OFFICIAL-SENSITIVE
    /// PERSONAL ***`): a class and its descriptors, then only decoration. With descriptors
    /// when they are there, else the class alone.
    pub fn alone(&self, t: &Tokens) -> Option<Match> {
        let start = t.skip_decoration(0);
        let (class, end) = self.class_at(t, start)?;
        let (descriptors, dend) = self.descriptors_at(t, class, end);
        let end = if !descriptors.is_empty() && t.only_decoration_from(dend) {
            dend
        } else {
            end
        };
        t.only_decoration_from(end).then(|| Match {
            class,
            descriptors: if end == dend { descriptors } else { Vec::new() },
            start,
            end,
        })
    }

    /// The run of marking parts from `from`, stopping at `to` or at the first token that
    /// is no part of a marking.
    fn run(&self, t: &Tokens, from: usize, to: usize) -> Run {
        let to = to.min(t.toks.len());
        let mut run = Run {
            classes: Vec::new(),
            descriptors: Vec::new(),
            ends: Vec::new(),
            stop: from,
            cut_short: false,
        };
        let mut k = from;
        while k < to {
            if k - from >= MAX_RUN {
                run.cut_short = true;
                break;
            }
            let token = &t.toks[k];
            if is_joiner(token) {
                k += 1;
                run.ends.push(k);
                continue;
            }
            let key = TokenKey::at(t, k);
            let part = self
                .compiled
                .parts
                .iter()
                .filter(|(_, p)| p.may_start(key))
                .find_map(|(part, p)| p.match_at(t, k).filter(|&e| e <= to).map(|e| (part, e)));
            let Some((part, end)) = part else { break };
            match part {
                Part::Class(class) => run.classes.push(Match {
                    class: *class,
                    descriptors: Vec::new(),
                    start: k,
                    end,
                }),
                Part::Descriptor(name) => {
                    // carried by the class before it, if that class lists it
                    if let Some((i, last)) = run.classes.iter().enumerate().next_back() {
                        if self.scheme.class(last.class).descriptors.contains(name) {
                            run.descriptors.push((i, name.clone(), end));
                        }
                    }
                }
                Part::Caveat => {}
            }
            k = end;
            run.ends.push(k);
        }
        run.stop = k;
        run
    }

    /// The classes of `run` that end by `end`, with the descriptors they carry by then.
    fn cut(run: &Run, end: usize) -> Vec<Match> {
        let mut classes: Vec<Match> = run
            .classes
            .iter()
            .filter(|m| m.end <= end)
            .cloned()
            .collect();
        for (i, name, dend) in &run.descriptors {
            if *dend <= end {
                if let Some(m) = classes.get_mut(*i) {
                    if !m.descriptors.contains(name) {
                        m.descriptors.push(name.clone());
                    }
                }
            }
        }
        classes
    }

    /// The tokens from `from` to `to` read whole as one marking.
    pub fn whole(&self, t: &Tokens, from: usize, to: usize) -> Reading {
        let to = to.min(t.toks.len());
        let run = self.run(t, from, to);
        Reading {
            classes: Self::cut(&run, to),
            unknown: (run.stop < to).then_some(run.stop),
        }
    }

    /// Every class named anywhere from `from` to `to`, with the descriptors that follow it:
    /// what free text (an EPMS `NOTE=`, a label's display name) says about the marking.
    pub fn scan(&self, t: &Tokens, from: usize, to: usize) -> Vec<Match> {
        let to = to.min(t.toks.len());
        let mut out = Vec::new();
        let mut i = from;
        while i < to {
            match self.class_at(t, i).filter(|&(_, end)| end <= to) {
                Some((class, end)) => {
                    let (descriptors, dend) = self.descriptors_at(t, class, end);
                    out.push(Match {
                        class,
                        descriptors,
                        start: i,
                        end,
                    });
                    i = dend.max(end);
                }
                None => i += 1,
            }
        }
        out
    }

    /// The words of a class's spelling written deliberately, not a word of prose that
    /// happens to be a class name: in capitals (`SECRET`), or several words
    /// (`Official-Sensitive`).
    fn deliberate(&self, t: &Tokens, m: &Match) -> bool {
        t.deliberate(m.start, m.end)
    }

    /// The highest class of `classes` is not below the policy's unmarked class: the less
    /// certain forms may only make the handling stricter (`NPM package update` is not NPM).
    fn not_below_unmarked(&self, classes: &[Match]) -> bool {
        let unmarked = self.scheme.unmarked_class().rank;
        classes
            .iter()
            .any(|m| self.scheme.class(m.class).rank >= unmarked)
    }
}

/// Where the brackets of a text stand.
struct Brackets {
    /// The bracket depth at each token (`[` and `(` open, `]` and `)` close).
    depth: Vec<usize>,
    /// For an opening bracket, the position of the one closing it (brackets of its kind
    /// nest); the end of the text when it is never closed.
    close: Vec<usize>,
}

impl Brackets {
    fn of(t: &Tokens) -> Brackets {
        let len = t.toks.len();
        let mut close = vec![len; len];
        let (mut square, mut round): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        // depth counts only brackets that close: one never closed (`RE: secret (draft:
        // notes`) sets nothing apart, so the separators after it still separate
        let mut steps = vec![0isize; len + 1];
        for (k, tok) in t.toks.iter().enumerate() {
            let open = match tok.kind {
                Kind::Sym('[') => {
                    square.push(k);
                    continue;
                }
                Kind::Sym('(') => {
                    round.push(k);
                    continue;
                }
                Kind::Sym(']') => square.pop(),
                Kind::Sym(')') => round.pop(),
                _ => continue,
            };
            if let Some(open) = open {
                close[open] = k;
                steps[open + 1] += 1;
                steps[k] -= 1;
            }
        }
        let mut d = 0isize;
        let depth = steps[..len]
            .iter()
            .map(|step| {
                d += step;
                d.max(0) as usize
            })
            .collect();
        Brackets { depth, close }
    }
}

/// What sets a marking apart in a subject, besides the separators: brackets of every kind,
/// quotes and emphasis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enclosure {
    /// `[...]`: read whole, whatever the case.
    Square,
    /// `(...)`.
    Round,
    /// `{...}`, `<...>`: tags like square brackets.
    Tag,
    /// Other brackets, quotes, `*emphasis*`, `__underline__`, `== ... ==`.
    Other,
}

/// An enclosure opening at `i`: where it closes (the end of the text when a square or round
/// bracket is never closed), and its kind. A sign used both to open and to close (`*`, `"`)
/// encloses only when it stands apart from the words outside (`**SECRET** plan`, not
/// `a*b*c`), and a dash or underscore only with no space inside (`__SECRET__`).
fn enclosure_at(t: &Tokens, i: usize, brackets: &Brackets) -> Option<(usize, Enclosure)> {
    let open = t.toks.get(i)?;
    let close = |c: char| (i + 1..t.toks.len()).find(|&k| t.is_sym(k, c));
    match &open.kind {
        Kind::Sym('[') => return Some((brackets.close[i], Enclosure::Square)),
        Kind::Sym('(') => return Some((brackets.close[i], Enclosure::Round)),
        Kind::Sym('{') => return close('}').map(|k| (k, Enclosure::Tag)),
        Kind::Sym('<') => return close('>').map(|k| (k, Enclosure::Tag)),
        Kind::Sym(c) => {
            let pair = match c {
                '«' => Some('»'),
                '‹' => Some('›'),
                '⟨' => Some('⟩'),
                '〈' => Some('〉'),
                '《' => Some('》'),
                '【' => Some('】'),
                '〔' => Some('〕'),
                '「' => Some('」'),
                '『' => Some('』'),
                '“' => Some('”'),
                '‘' => Some('’'),
                '„' => Some('“'),
                _ => None,
            };
            if let Some(pair) = pair {
                return close(pair).map(|k| (k, Enclosure::Other));
            }
        }
        Kind::Dash | Kind::Word(_) => {}
    }
    let symmetric = match open.kind {
        Kind::Sym(c) => matches!(
            c,
            '*' | '=' | '#' | '~' | '+' | '"' | '\'' | '`' | '|' | '/'
        ),
        Kind::Dash => true,
        Kind::Word(_) => false,
    };
    if !symmetric {
        return None;
    }
    let apart_before = i == 0 || open.space_before || t.kind(i - 1).and_then(Kind::word).is_none();
    let end = (i + 1..t.toks.len()).find(|&k| t.toks[k].kind == open.kind)?;
    let apart_after = t
        .toks
        .get(end + 1)
        .is_none_or(|next| next.space_before || next.kind.word().is_none());
    let tight =
        open.kind != Kind::Dash || (!t.toks[i + 1].space_before && !t.toks[end].space_before);
    (apart_before && apart_after && tight).then_some((end, Enclosure::Other))
}

/// A sign after a marking at the start of a subject that sets it apart less plainly than a
/// separator: `,`, `;`, `.`, `!`, `>`, `=>`, `»`, `~`, `→`. A marking before one may only
/// raise the marking.
fn weak_separator_at(t: &Tokens, i: usize) -> bool {
    matches!(
        t.kind(i),
        Some(Kind::Sym(
            ',' | ';' | '.' | '!' | '>' | '»' | '~' | '→' | '='
        ))
    )
}

/// Where the segment of a subject or banner line starting at `p` ends: at the next
/// separator outside brackets ([`separator_after`]), or the end.
fn segment_end(t: &Tokens, p: usize, brackets: &Brackets) -> usize {
    (p..t.toks.len())
        .find(|&k| brackets.depth[k] == 0 && separator_after(t, k, true).is_some())
        .unwrap_or(t.toks.len())
}

/// Where the text after a separator standing at `i` starts: after `:` (`colon`), `|`, `//`
/// or a dash with white space on either side.
fn separator_after(t: &Tokens, i: usize, colon: bool) -> Option<usize> {
    match t.kind(i)? {
        Kind::Sym(':') if colon => Some(i + 1),
        Kind::Sym('|') => Some(i + 1),
        Kind::Sym('/') if t.is_sym(i + 1, '/') && !t.is_sym(i.wrapping_sub(1), '/') => Some(i + 2),
        Kind::Dash if t.separator_at(i, false) => Some(i + 1),
        _ => None,
    }
}

fn phrase_len(p: &Phrase) -> (usize, usize) {
    let chars = p
        .kinds
        .iter()
        .map(|k| match k {
            Kind::Word(w) => w.chars().count(),
            _ => 1,
        })
        .sum();
    (p.kinds.len(), chars)
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
    use crate::marking::tokenizer::MAX_SPLIT_LETTERS;

    /// The tokens as compared: what each is, and how it was written.
    fn seen(t: &Tokens) -> Vec<(Kind, bool, bool)> {
        t.toks
            .iter()
            .map(|t| (t.kind.clone(), t.lower, t.invalid))
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// The quick tests that spare most joins of split words their measuring (letter
        /// counts, the longest join, the words of their own told once) change no reading:
        /// text made of pieces of class words, near misses, digits posing as letters and
        /// prose is cut and joined exactly as the measuring alone would.
        #[test]
        fn joins_are_the_ones_measuring_every_join_makes(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "SEC", "RET", "SECRET", "5ECRET", "SECRT", "TOP", "OP", "T", "S", "ECRET",
                "OFFI", "CIAL", "OFFICIAL", "0FFICAL", "SENSI", "TIVE", "SENSITIVE", "x", "RE",
                "STRICTED", "estricte", "d", "C0NFIDENTIAL", "CONFI", "DENTIAL", "PROTECT",
                "IVELY", "NOT", "PROTECTIVELY", "MARKED", "PERSONAL", "the", "plan", "to",
                "s", "secret", "sec", "ret", "\u{406}", "1", "7OP", "referral",
            ]), 1..9),
            joints in proptest::collection::vec(proptest::sample::select(vec![
                " ", " ", " ", "-", ".", " - ", ": ", "  ", "[", "] ",
            ]), 9),
        ) {
            let mut text = String::new();
            for (piece, joint) in pieces.iter().zip(&joints) {
                text.push_str(piece);
                text.push_str(joint);
            }
            let policy = crate::policy::Policy::load(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy"),
            )
            .expect("shipped policy");
            let grammar = Grammar::new(&policy.markings);
            let compiled = &grammar.compiled;
            let quick = grammar.tokens(&text, 64);
            let mut measured = tokenize(&text, 64);
            measured.join_split_words(
                MAX_SPLIT_LETTERS,
                |pieces| {
                    let folded = fold(&pieces.concat());
                    let exact = folded.chars().count() >= NEAR_MISS_MIN
                        && compiled.spelling_words.binary_search(&folded).is_ok();
                    (exact || grammar.near_miss_joined(pieces)).then_some(exact)
                },
                |word| compiled.spelling_words.binary_search(&fold(word)).is_ok(),
            );
            proptest::prop_assert_eq!(seen(&quick), seen(&measured), "{:?}", text);
        }
    }

    #[test]
    fn unfolding() {
        assert_eq!(unfold("a;\r\n b"), "a; b");
        assert_eq!(unfold("a;\n\tb"), "a;\tb");
        assert_eq!(unfold(" plain "), "plain");
    }
}
