//! Where in a hit's body its snippet is, found from the positions the postings keep.
//!
//! tantivy's snippet generator analyses the text it is given, stemmer and all. Given the first
//! 16 KB of the body for each of ten hits (then twice: a stemmed and a folded analysis), that
//! was more than half of the time of a search over long documents. The positions of a hit's
//! matching terms are in the index already: the densest run of them says where the snippet
//! will be, a plain split into words (no analysis) finds the bytes of that run, and only a
//! window around it is analysed. A hit with no match in its body (it matched by its title)
//! needs no analysis at all.

use std::collections::BTreeMap;
use std::ops::Range;

use tantivy::postings::Postings as _;
use tantivy::query::{Bm25StatisticsProvider, Query};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocSet as _, Score, Searcher, Term};

/// Matches within this many words of the first count as one passage: about a snippet.
const PASSAGE_WORDS: u32 = 30;
/// Text kept on each side of the passage, so that the snippet generator can place its
/// fragment around the matches as it would in the whole text.
const MARGIN_BYTES: usize = 150;

/// The terms of a query in the body fields, each with the weight tantivy's snippet generator
/// gives it (rarer terms weigh more).
pub(crate) struct BodyTerms {
    by_field: BTreeMap<Field, Vec<(Term, Score)>>,
}

impl BodyTerms {
    pub(crate) fn new(
        stats: &dyn Bm25StatisticsProvider,
        query: &dyn Query,
        fields: &[Field],
    ) -> tantivy::Result<BodyTerms> {
        let mut terms: BTreeMap<Field, Vec<Term>> = BTreeMap::new();
        query.query_terms(&mut |term, _| {
            if fields.contains(&term.field()) {
                terms.entry(term.field()).or_default().push(term.clone());
            }
        });
        let mut by_field = BTreeMap::new();
        for (field, mut list) in terms {
            list.sort();
            list.dedup();
            let mut weighted = Vec::with_capacity(list.len());
            for term in list {
                let doc_freq = stats.doc_freq(&term)?;
                if doc_freq > 0 {
                    weighted.push((term, 1.0 / (1.0 + doc_freq as Score)));
                }
            }
            by_field.insert(field, weighted);
        }
        Ok(BodyTerms { by_field })
    }

    /// The texts and weights of one field's terms, as the snippet generator takes them.
    pub(crate) fn texts(&self, field: Field) -> BTreeMap<String, Score> {
        self.by_field
            .get(&field)
            .into_iter()
            .flatten()
            .filter_map(|(term, weight)| {
                term.value()
                    .as_str()
                    .map(|text| (text.to_string(), *weight))
            })
            .collect()
    }

    /// The word positions of the matches of these fields' terms in one document, with
    /// their weights.
    pub(crate) fn matches(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        fields: &[Field],
    ) -> tantivy::Result<Vec<(u32, Score)>> {
        let reader = searcher.segment_reader(address.segment_ord);
        let mut out = Vec::new();
        let mut positions = Vec::new();
        for field in fields {
            let Some(terms) = self.by_field.get(field) else {
                continue;
            };
            let inverted = reader.inverted_index(*field)?;
            for (term, weight) in terms {
                let postings =
                    inverted.read_postings(term, IndexRecordOption::WithFreqsAndPositions)?;
                let Some(mut postings) = postings else {
                    continue;
                };
                // `seek` may only move forward: the first document may be past it already.
                let target = address.doc_id;
                if postings.doc() <= target && postings.seek(target) == target {
                    postings.positions(&mut positions);
                    out.extend(positions.iter().map(|&p| (p, *weight)));
                }
            }
        }
        Ok(out)
    }
}

/// The bytes of `text` to cut the snippet from: the passage where the matches weigh most
/// (the earliest of equals), with a margin. Matches past the end of `text` (the body is cut)
/// do not count; `None` when none is left.
pub(crate) fn passage(text: &str, mut matches: Vec<(u32, Score)>) -> Option<Range<usize>> {
    matches.sort_by_key(|(position, _)| *position);
    // One pass over the words finds the bytes of every match in `text`.
    let mut located: Vec<(u32, Range<usize>, Score)> = Vec::with_capacity(matches.len());
    let mut words = Words::new(text);
    let mut pending = matches.into_iter().peekable();
    while pending.peek().is_some() {
        let Some((position, bytes)) = words.next() else {
            break;
        };
        while let Some((matched, weight)) = pending.next_if(|(p, _)| *p <= position) {
            if matched == position {
                located.push((position, bytes.clone(), weight));
            }
        }
    }
    let (mut best, mut best_weight) = ((0, 0), Score::MIN);
    let (mut end, mut weight) = (0, 0.0);
    for start in 0..located.len() {
        while end < located.len() && located[end].0 < located[start].0 + PASSAGE_WORDS {
            weight += located[end].2;
            end += 1;
        }
        if weight > best_weight {
            best_weight = weight;
            best = (start, end);
        }
        weight -= located[start].2;
    }
    let from = located.get(best.0).map(|(_, bytes, _)| bytes.start);
    let to = best
        .1
        .checked_sub(1)
        .and_then(|last| located.get(last))
        .map(|(_, bytes, _)| bytes.end);
    let (first_byte, last_byte) = (from?, to?);
    // The window ends at spaces: half a word at its edge could highlight as a match.
    let mut from = floor_boundary(text, first_byte.saturating_sub(MARGIN_BYTES));
    if from > 0 {
        from = text[from..first_byte]
            .find(char::is_whitespace)
            .map_or(first_byte, |space| from + space);
    }
    let mut to = ceil_boundary(text, last_byte.saturating_add(MARGIN_BYTES));
    if to < text.len() {
        to = text[last_byte..to]
            .rfind(char::is_whitespace)
            .map_or(last_byte, |space| last_byte + space);
    }
    Some(from..to)
}

/// The words of a text as the analysers' tokenizer (tantivy's `SimpleTokenizer`) splits
/// them, runs of alphanumeric characters, numbered from 0 as it numbers them (its filters
/// drop words but never renumber, so the index's positions are these numbers). Unlike the
/// tokenizer it copies no text: the scan is a few instructions a byte.
struct Words<'a> {
    text: &'a str,
    at: usize,
    position: u32,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Words<'a> {
        Words {
            text,
            at: 0,
            position: 0,
        }
    }

    /// Whether the character at `at` is alphanumeric, and its length; `None` at the end.
    fn char_at(&self, at: usize) -> Option<(bool, usize)> {
        let byte = *self.text.as_bytes().get(at)?;
        if byte.is_ascii() {
            return Some((byte.is_ascii_alphanumeric(), 1));
        }
        let c = self.text.get(at..)?.chars().next()?;
        Some((c.is_alphanumeric(), c.len_utf8()))
    }
}

impl Iterator for Words<'_> {
    type Item = (u32, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (alphanumeric, len) = self.char_at(self.at)?;
            if alphanumeric {
                break;
            }
            self.at += len;
        }
        let start = self.at;
        while let Some((true, len)) = self.char_at(self.at) {
            self.at += len;
        }
        let position = self.position;
        self.position += 1;
        Some((position, start..self.at))
    }
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_densest_passage_wins() {
        let text = format!(
            "{} kage og mere kage {} kage",
            "fyld ".repeat(100),
            "fyld ".repeat(100)
        );
        // Words 100 and 103 ("kage", "kage"), then word 204 ("kage").
        let range = passage(&text, vec![(204, 0.5), (100, 0.5), (103, 0.5)]).unwrap();
        let window = &text[range];
        assert!(window.contains("kage og mere kage"), "{window}");
        assert!(window.len() <= 2 * MARGIN_BYTES + 40, "{}", window.len());
    }

    #[test]
    fn a_rare_term_outweighs_common_ones() {
        let text = "a b c d e f g h i j k l m n o p q r s t u v w x y z ".repeat(4);
        // One heavy match late, two light ones early and far apart from it.
        let range = passage(&text, vec![(0, 0.1), (1, 0.1), (90, 0.9)]).unwrap();
        assert!(range.end == text.len() || range.start > 0, "{range:?}");
        assert!(text[range].contains('m'));
    }

    #[test]
    fn windows_respect_char_boundaries() {
        let text = "æøå ".repeat(500) + "kage " + &"æøå ".repeat(500);
        let range = passage(&text, vec![(500, 1.0)]).unwrap();
        assert!(text[range].contains("kage"));
    }

    #[test]
    fn words_are_split_and_numbered_like_the_analysers_do() {
        use tantivy::tokenizer::{SimpleTokenizer, TokenStream as _, Tokenizer as _};
        for text in [
            "",
            "  ",
            "Søren Kierkegård, født 5. maj 1813 i København!",
            "a-b_c d2e\tf\u{a0}g 10:30 café naïve ÆØÅ æøå",
            "x",
            "日本語 テキスト one,two;three",
        ] {
            let mut tokenizer = SimpleTokenizer::default();
            let mut stream = tokenizer.token_stream(text);
            let mut expected = Vec::new();
            while stream.advance() {
                let t = stream.token();
                expected.push((t.position as u32, t.offset_from..t.offset_to));
            }
            assert_eq!(Words::new(text).collect::<Vec<_>>(), expected, "{text:?}");
        }
    }

    #[test]
    fn a_passage_past_the_text_is_none() {
        assert!(passage("to ord", vec![(5, 1.0)]).is_none());
        assert!(passage("to ord", Vec::new()).is_none());
    }
}
