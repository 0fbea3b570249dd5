//! Reading a subject: every marking in it, wherever it stands among the words (enclosures,
//! the start after reply prefixes and tags, after each separator, capitals anywhere).

use super::*;

impl Grammar<'_> {
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
    ///   `Restricted: parking`), or written in capitals or as words joined by a dash and
    ///   followed by words (`OFFICIAL-SENSITIVE Referral`, `Official-Sensitive Personal
    ///   referral`; not `Secret Santa draw`, `Top secret recipe`).
    /// - After each separator, the same, when written deliberately (`Referral - Official
    ///   Sensitive`, `Minutes: SECRET annex`; not `Party plans - secret`).
    /// - Behind a banner prefix, at the start, after a separator or where a segment ends with
    ///   one, as at the start, in any case; followed by words, it only raises (`Protective
    ///   Marking: Secret`, `Minutes - Classification: restricted notes`, `Security marking:
    ///   Secret`).
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
        // a banner prefix says a marking follows, as at the start, in any case
        // (`Protective Marking: Secret`, `Minutes - Classification: Restricted`)
        let mut leads = vec![start];
        for (p, strong) in &mut positions {
            if let Some(after) = self.after_banner_prefix(t, *p) {
                *p = after;
                *strong = true;
                leads.push(after);
            } else if *strong && self.banner_prefix_ends_at(t, p.saturating_sub(1)) {
                // a segment that ends with one (`Security marking: Secret`)
                leads.push(*p);
            }
        }
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
            let lead = leads.contains(&p);
            if !strong && !lead {
                // behind a lesser sign: only a marking written deliberately, which raises
                if let Ok(Some((classes, end))) = self.delimited(t, p, false, true, true, false) {
                    found.classes.extend(self.raising(classes));
                    read.push((p, end));
                    next = end;
                }
                continue;
            }
            let delimited = match self.delimited(t, p, lead, true, true, true) {
                // behind a banner prefix, a class is declared whatever follows it
                // (`Classification: Secret notes`): it may raise the marking
                Ok(None) if lead && p != start => Ok(self.declared_after_prefix(t, p)),
                delimited => delimited,
            };
            match delimited {
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
    /// deliberately; or (`capitals_before_words`) written in capitals or as words joined by a
    /// dash (`Official-Sensitive`) and followed by words;
    /// or (`weak`, at the `lead`, only raising) followed by a lesser sign (`Restricted; plan`,
    /// `Secret, plan`, `Secret > plan`: see [`weak_separator_at`]).
    /// The longest such cut of the run: its classes and where it ends.
    pub(super) fn delimited(
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
                    // in capitals, or words joined by a dash (`Official-Sensitive Personal
                    // referral`; `Top secret recipe` stays prose)
                    capitals_before_words
                        && raises
                        && t.word_after_space(end)
                        && (t.in_capitals(p, end) || t.hyphen_joined(p, end))
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
    pub(super) fn skip_subject_prefixes(&self, t: &Tokens) -> usize {
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
}
