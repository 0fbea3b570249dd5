//! Reading a banner line (the first and last lines of a text a person sees): a marking
//! set apart on its line, with what may follow it.

use super::*;

impl Grammar<'_> {
    /// Where a marking starts after a banner prefix at `i` and the sign that may follow it
    /// (`Classification:`, `Protective Marking -`), when one stands there and no class does.
    /// The class a banner prefix declares at `i` when no marking is delimited there
    /// (`Classification: Secret notes`): its descriptors and where it ends, only when it
    /// raises the marking.
    pub(super) fn declared_after_prefix(
        &self,
        t: &Tokens,
        i: usize,
    ) -> Option<(Vec<Match>, usize)> {
        let (class, end) = self.class_at(t, i)?;
        let (descriptors, end) = self.descriptors_at(t, class, end);
        let declared = self.raising(vec![Match {
            class,
            descriptors,
            start: i,
            end,
        }]);
        (!declared.is_empty()).then_some((declared, end))
    }

    /// A banner prefix ends at the separator at `i` (`Security marking:`, `Exhibit 3 -
    /// classified:`): the words before it end with one.
    pub(super) fn banner_prefix_ends_at(&self, t: &Tokens, i: usize) -> bool {
        let separator = matches!(t.kind(i), Some(Kind::Sym(':' | '=') | Kind::Dash));
        separator
            && (i.saturating_sub(8)..i).any(|from| {
                self.compiled
                    .banner_prefixes
                    .iter()
                    .any(|p| p.match_at(t, from) == Some(i))
            })
    }

    pub(super) fn after_banner_prefix(&self, t: &Tokens, i: usize) -> Option<usize> {
        if self.class_at(t, i).is_some() {
            return None;
        }
        let end = self
            .compiled
            .banner_prefixes
            .iter()
            .find_map(|p| p.match_at(t, i))?;
        Some(
            if matches!(t.kind(end), Some(Kind::Sym(':' | '=') | Kind::Dash)) {
                end + 1
            } else {
                end
            },
        )
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
        let start = t.skip_decoration(0);
        let i = self.after_banner_prefix(t, start).unwrap_or(start);
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
            // behind a banner prefix, a class is declared whatever follows it
            // (`Classification: Secret notes`): it may raise the marking
            Ok(None) if i != start => self.declared_after_prefix(t, i),
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
