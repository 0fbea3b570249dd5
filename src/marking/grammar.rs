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

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use super::tokenizer::{tokenize, word_eq, Kind, Token, Tokens};
use super::MarkingScheme;

mod near_miss;
use near_miss::{fold, ClassWord, LetterCounts, NEAR_MISS_MIN};

/// A phrase from the policy (a class spelling, a descriptor, a caveat, a prefix) as a token
/// pattern.
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

    /// Match at `i`; the words may be joined by one dash or colon each, or by a dot or slash
    /// with no space around it (`TOP.SECRET`, `OFFICIAL/SENSITIVE`). Returns the end.
    fn match_at(&self, t: &Tokens, mut i: usize) -> Option<usize> {
        if self.0.is_empty() {
            return None;
        }
        for (k, want) in self.0.iter().enumerate() {
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
        self.0.iter().filter_map(Kind::word)
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
                    word: w.to_string(),
                    class: scheme.class(*class).name.clone(),
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
        Compiled {
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
            |pieces| {
                let letters = pieces.concat();
                let folded = fold(&letters);
                // a word of any class (`NOT PR OTECTIVELY MARKED` is read as it shows)
                let exact = folded.chars().count() >= NEAR_MISS_MIN
                    && compiled.spelling_words.binary_search(&folded).is_ok();
                // a near miss joined is read as one (`[SEC RT]`, `estricte d` cannot be
                // read), when it is no further than its pieces (`OFFICAL-SENSITVE` is two near
                // misses, not one of `OFFICIALSENSITIVE`)
                let near = || {
                    self.near_miss_by(&letters).is_some_and(|joined| {
                        pieces
                            .iter()
                            .all(|p| self.near_miss_by(p).is_none_or(|alone| joined <= alone))
                    })
                };
                (exact || near()).then_some(exact)
            },
            |word| compiled.spelling_words.binary_search(&fold(word)).is_ok(),
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
            let part = self
                .compiled
                .parts
                .iter()
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

    /// The subject: every marking in it.
    ///
    /// - Brackets anywhere holding a class are read whole: `[NPM SECRET]` is SECRET,
    ///   `[SECRET annex]` cannot be read, `[Secret Santa]` is prose; `[OFFICIAL-SENSITIVE]
    ///   [PERSONAL]` carries the descriptor. Any other enclosure ([`enclosure_at`]: `(...)`,
    ///   `{...}`, `<...>`, `** ... **`, quotes) holding only a marking is one too, in any case
    ///   (`(secret)`, `{Secret}`); holding a class written deliberately and other words, it
    ///   cannot be read.
    /// - After any reply/forward prefixes (`RE: FW[2]:`) and leading `[tags]`, a run of
    ///   marking parts followed by a separator (`:`, ` - `, `//`, `|`), a lesser sign
    ///   (`Secret; plan`: [`weak_separator_at`]) or the end (`NPM / SECRET: plan`,
    ///   `Restricted: parking`), or written in capitals and followed by words
    ///   (`OFFICIAL-SENSITIVE Referral`, not `Secret Santa draw`).
    /// - After each separator, the same, when written deliberately (`Referral - Official
    ///   Sensitive`, `Minutes: SECRET annex`; not `Party plans - secret`).
    /// - Anywhere else, a class written in capitals (`Op Lima SECRET update`).
    ///
    /// The forms beyond square brackets and a marking at the start only ever raise the
    /// marking above the unmarked class.
    ///
    /// A near miss of a class word in an enclosure, a separated segment, or in capitals
    /// anywhere makes the subject unreadable ([`Self::near_miss_in`]).
    ///
    /// A word holding an undecodable byte that looks like a class word and was not read as
    /// one (`[SE<0xFF>RET]`) makes the subject unreadable.
    pub fn subject(&self, t: &Tokens) -> Found {
        let mut found = Found::default();
        let mut read: Vec<(usize, usize)> = Vec::new();
        let brackets = Brackets::of(t);
        let start = self.skip_subject_prefixes(t);
        // every class named anywhere, in order
        let named = self.scan(t, 0, t.toks.len());
        for i in 0..t.toks.len() {
            let Some((end, enclosure)) = enclosure_at(t, i, &brackets) else {
                continue;
            };
            if end <= i + 1 || read.iter().any(|&(from, to)| (from..to).contains(&i)) {
                continue; // empty, or inside an enclosure read whole already
            }
            let first = named.partition_point(|m| m.start <= i);
            let inside: Vec<Match> = named[first..]
                .iter()
                .take_while(|m| m.end <= end)
                .cloned()
                .collect();
            let deliberate = inside.iter().any(|m| self.deliberate(t, m));
            let reading = self.whole(t, i + 1, end);
            match reading.unknown {
                None if !inside.is_empty()
                    && (enclosure == Enclosure::Square || self.not_below_unmarked(&inside)) =>
                {
                    let mut classes = reading.classes;
                    // `[OFFICIAL-SENSITIVE] [PERSONAL]`
                    if let Some(last) = classes.last_mut() {
                        let (more, _) = self.descriptors_at(t, last.class, end + 1);
                        for d in more {
                            if !last.descriptors.contains(&d) {
                                last.descriptors.push(d);
                            }
                        }
                    }
                    found.classes.extend(classes);
                    read.push((i + 1, end));
                }
                Some(at) if deliberate => {
                    found.unreadable.get_or_insert_with(|| {
                        format!(
                            "the bracketed marking holds {}, which is neither a class, a descriptor, a caveat the policy lists nor a separator",
                            t.toks[at].describe()
                        )
                    });
                    found.classes.extend(self.raising(inside));
                    read.push((i + 1, end));
                }
                _ => {
                    // `[SECRT]`, `[OFFICAL-SENSITVE]`, `{SECR3T}`: shaped like a marking
                    let any_case = matches!(enclosure, Enclosure::Square | Enclosure::Tag);
                    // or letters around a byte that is not text (`{o f f i c i a l $<0xFF> e n
                    // s i t i v e}`)
                    let why = self
                        .near_miss_in(t, i + 1, end, any_case)
                        .or_else(|| self.undecodable_letters(t, (i + 1, end), &[], 3));
                    if let Some(why) = why {
                        found.unreadable.get_or_insert(why);
                        read.push((i + 1, end));
                    }
                }
            }
        }
        // where a marking may stand: at the start, after a separator, and (written
        // deliberately, only raising) behind a lesser sign (`Re: notes, Official Sensitive`)
        let mut positions = vec![(start, true)];
        positions.extend(
            (start..t.toks.len())
                .filter(|&i| brackets.depth[i] == 0)
                .filter_map(|i| {
                    separator_after(t, i, true)
                        .map(|p| (p, true))
                        .or_else(|| weak_separator_at(t, i).then_some((i + 1, false)))
                }),
        );
        let mut next = start;
        // where the segment last read for near misses started, and every such segment
        let mut checked = None;
        let mut segments = Vec::new();
        for (p, strong) in positions {
            if brackets.depth.get(p).is_some_and(|&d| d > 0) {
                continue;
            }
            // `SECRT: plan`, `Minutes - OFFICAL SENSITVE`; a segment that starts inside a
            // marking read is read from its end (`NPM//PROTECT; ecret; notes`: the marking
            // ends at the `;`; `Official - Sensitive: plan` is no `Sensitive` alone)
            if found.unreadable.is_none() && checked != Some(p.max(next)) {
                let from = p.max(next);
                checked = Some(from);
                // or letters spaced around a byte that is not text, up to the first sign
                // (`o f f i c i a l $<0xFF> e n s i t i v e; notes`; long class words only:
                // `Caf<0xFF> notes` is no `NOT`)
                let to = (from..segment_end(t, from, &brackets))
                    .find(|&k| brackets.depth[k] == 0 && weak_separator_at(t, k))
                    .unwrap_or_else(|| segment_end(t, from, &brackets));
                segments.push((from, to));
                found.unreadable = self.near_miss_in_segment(t, from, &brackets);
            }
            if p < next {
                continue;
            }
            let lead = p == start;
            if !strong && !lead {
                // behind a lesser sign: only a marking written deliberately, which raises
                if let Ok(Some((classes, end))) = self.delimited(t, p, false, true, true, false) {
                    found.classes.extend(self.raising(classes));
                    read.push((p, end));
                    next = end;
                }
                continue;
            }
            match self.delimited(t, p, lead, true, true, true) {
                Ok(Some((classes, end))) => {
                    found.classes.extend(classes);
                    read.push((p, end));
                    next = end;
                }
                Ok(None) => {}
                Err(why) => {
                    found.unreadable.get_or_insert(why);
                }
            }
        }
        // a class written in capitals anywhere else is deliberate: it may raise the marking
        // (`Op Lima SECRET update`; `NPM package update` does not lower it)
        let inside = |m: &Match| {
            read.iter()
                .any(|&(from, to)| m.start >= from && m.end <= to)
        };
        let capitals: Vec<Match> = named
            .into_iter()
            .filter(|m| m.start >= start && !inside(m) && t.in_capitals(m.start, m.end))
            .collect();
        for m in self.raising(capitals) {
            read.push((m.start, m.end));
            found.classes.push(m);
        }
        // a near miss written in capitals anywhere else (`Op Lima SECRT update`)
        if found.unreadable.is_none() {
            found.unreadable = self.near_miss_anywhere(t, start, t.toks.len(), true);
        }
        if found.unreadable.is_none() {
            found.unreadable = self.undecodable_class_word(t, &read);
        }
        if found.unreadable.is_none() {
            found.unreadable = self.spaced_class_word(t, &read);
        }
        if found.unreadable.is_none() {
            found.unreadable = segments
                .into_iter()
                .find_map(|segment| self.undecodable_letters(t, segment, &read, NEAR_MISS_MIN));
        }
        found
    }

    /// A run of marking parts at `p` that is delimited as a marking: followed by a separator
    /// (`colon`: a colon counts as one) or the end, and when not `lead`, written
    /// deliberately; or (`capitals_before_words`) written in capitals and followed by words;
    /// or (`weak`, at the `lead`, only raising) followed by a lesser sign (`Restricted; plan`,
    /// `Secret, plan`, `Secret > plan`: see [`weak_separator_at`]).
    /// The longest such cut of the run: its classes and where it ends.
    fn delimited(
        &self,
        t: &Tokens,
        p: usize,
        lead: bool,
        capitals_before_words: bool,
        colon: bool,
        weak: bool,
    ) -> Result<Option<(Vec<Match>, usize)>, String> {
        let run = self.run(t, p, t.toks.len());
        if run.classes.is_empty() {
            return Ok(None);
        }
        if run.cut_short || (t.truncated && run.stop >= t.toks.len()) {
            return Err(format!(
                "a marking runs on past {MAX_RUN} words and signs: too long to read whole"
            ));
        }
        // at each cut, from the shortest: how many classes end by it, whether one of them is
        // written deliberately, and whether one is not below the unmarked class
        let unmarked = self.scheme.unmarked_class().rank;
        let mut stats = Vec::with_capacity(run.ends.len());
        let (mut n, mut deliberate, mut raises) = (0, false, false);
        for &end in &run.ends {
            while let Some(m) = run.classes.get(n).filter(|m| m.end <= end) {
                deliberate |= self.deliberate(t, m);
                raises |= self.scheme.class(m.class).rank >= unmarked;
                n += 1;
            }
            stats.push((n, n > 1 || deliberate, raises));
        }
        let found = run
            .ends
            .iter()
            .zip(stats)
            .rev()
            .find(|&(&end, (n, deliberate, raises))| {
                if n == 0 {
                    return false;
                }
                if t.only_decoration_from(end) || t.separator_at(end, colon) {
                    lead || (deliberate && raises)
                } else if weak && lead && raises && weak_separator_at(t, end) {
                    true
                } else {
                    capitals_before_words
                        && raises
                        && t.word_after_space(end)
                        && t.in_capitals(p, end)
                }
            });
        Ok(found.map(|(&end, _)| (Self::cut(&run, end), end)))
    }

    /// The classes of `named` that may only raise the marking (those not below the
    /// unmarked class): what a marking that cannot be read still tells.
    pub fn raising(&self, named: Vec<Match>) -> Vec<Match> {
        let unmarked = self.scheme.unmarked_class().rank;
        named
            .into_iter()
            .filter(|m| self.scheme.class(m.class).rank >= unmarked)
            .collect()
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

    /// A banner line: optional decoration, optional banner prefix (`Classification:`), then
    /// a run of marking parts followed only by decoration, or by a dash, `//` or `|` and a
    /// handling caveat (`OFFICIAL-SENSITIVE PERSONAL - not for onward disclosure`). A colon
    /// and more text is a sentence (`Confidential: the car park is closed`). After the
    /// separator, a marking written deliberately counts too (`OFFICIAL - SECRET annex`); so
    /// does one after a lesser sign (`Hi Jo, SECRET`), and a class in capitals anywhere
    /// (`Op Lima SECRET update`), as in a subject: these only raise the marking.
    pub fn banner(&self, t: &Tokens) -> Found {
        let mut found = Found::default();
        let mut i = t.skip_decoration(0);
        if self.class_at(t, i).is_none() {
            if let Some(end) = self
                .compiled
                .banner_prefixes
                .iter()
                .find_map(|p| p.match_at(t, i))
            {
                i = end;
                if matches!(t.kind(i), Some(Kind::Sym(':' | '=') | Kind::Dash)) {
                    i += 1;
                }
            }
        }
        let brackets = Brackets::of(t);
        // where a marking may stand: at the start, after a separator, and behind a lesser
        // sign (`Hi Jo, SECRET`)
        let after_weak =
            |k: usize| (brackets.depth[k] == 0 && weak_separator_at(t, k)).then_some(k + 1);
        let position = |k: usize| {
            separator_after(t, k, true)
                .map(|p| (p, true))
                .or_else(|| after_weak(k).map(|p| (p, false)))
        };
        // a line that opens with a class in capitals is a banner however it goes on
        // (`SECRET, notes follow`, `SECRET notes`): read as raising, never as prose
        let lead = match self.delimited(t, i, true, true, false, true) {
            Ok(lead) => lead,
            Err(why) => {
                found.unreadable.get_or_insert(why);
                return found;
            }
        };
        let led = lead.is_some();
        let mut next = i;
        let mut read = Vec::new();
        if let Some((classes, end)) = lead {
            found.classes = classes;
            read.push((i, end));
            next = end;
        }
        // a marking after a separator counts too; on a line that does not open with one
        // (`official sensitivee, OFFICIAL SENSITIVE`) it may only raise
        for (p, strong) in (next..t.toks.len()).filter_map(position) {
            if p < next {
                continue;
            }
            // behind prose, a class standing alone in its segment counts as if it led; behind
            // a lesser sign (`official sensitivee, SECRET`, `Hi Jo, SECRET notes follow`) one
            // written deliberately
            match self.delimited(t, p, strong && !led, true, true, false) {
                Ok(Some((classes, end))) => {
                    let classes = if led { classes } else { self.raising(classes) };
                    found.classes.extend(classes);
                    read.push((p, end));
                    next = end;
                }
                Ok(None) => {}
                Err(why) => {
                    found.unreadable.get_or_insert(why);
                }
            }
        }
        // a class written in capitals anywhere else is deliberate, as in a subject: it may
        // raise the marking (`Op Lima SECRET update`)
        let capitals: Vec<Match> = self
            .scan(t, i, t.toks.len())
            .into_iter()
            .filter(|m| {
                t.in_capitals(m.start, m.end)
                    && !read
                        .iter()
                        .any(|&(from, to)| m.start >= from && m.end <= to)
            })
            .collect();
        for m in self.raising(capitals) {
            read.push((m.start, m.end));
            found.classes.push(m);
        }
        // `*** SECRT ***`, `OFFICAL-SENSITVE - handle with care`, `Hi Jo, SECRT`; a segment
        // that starts inside a marking read is read from its end (`Official - Sensitive` is
        // no `Sensitive` alone)
        if found.unreadable.is_none() {
            found.unreadable = std::iter::once(i)
                .chain((i..t.toks.len()).filter_map(|k| position(k).map(|(p, _)| p)))
                .map(|p| {
                    read.iter()
                        .find(|&&(from, to)| from < p && p < to)
                        .map_or(p, |&(_, to)| to)
                })
                .find_map(|p| self.near_miss_in_segment(t, p, &brackets));
        }
        // a near miss written in capitals anywhere else (`Op Lima SECRT update`)
        if found.unreadable.is_none() {
            found.unreadable = self.near_miss_anywhere(t, i, t.toks.len(), true);
        }
        if found.unreadable.is_none() {
            found.unreadable = self.undecodable_class_word(t, &read);
        }
        if found.unreadable.is_none() {
            found.unreadable = self.spaced_class_word(t, &read);
        }
        if found.unreadable.is_none() {
            found.unreadable = self.undecodable_letters(t, (0, t.toks.len()), &read, 3);
        }
        found
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
    fn unfolding() {
        assert_eq!(unfold("a;\r\n b"), "a; b");
        assert_eq!(unfold("a;\n\tb"), "a;\tb");
        assert_eq!(unfold(" plain "), "plain");
    }
}
