//! Text analysis: the Danish, English and folded analysers, the Danish folding filter, and
//! language detection for documents that do not say what language they are in.

use std::mem;

use tantivy::Index;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

use crate::Lang;

/// Analyser of the `*_da` fields: Danish stop words and Snowball stemming.
pub(crate) const DANISH: &str = "samle_da";
/// Analyser of the `*_en` fields: English stop words and Snowball stemming.
pub(crate) const ENGLISH: &str = "samle_en";
/// Analyser of the `*_fold` fields: no stemming, Danish then ASCII folding, so spelling
/// variants (`Århus`/`Aarhus`, `æble`/`aeble`) meet.
pub(crate) const FOLDED: &str = "samle_fold";

/// Tokens longer than this are dropped: they are base64, hashes or glued-together junk that
/// nobody searches for, and they bloat the term dictionary.
const MAX_TOKEN_BYTES: usize = 64;

/// How much of a document language detection looks at. Detection is linear in the text and
/// the first few kilobytes decide it as well as the whole.
const DETECTION_SAMPLE_BYTES: usize = 4096;

/// Below this many letters detection is a coin toss, and most of Samle's documents are Danish.
const DETECTION_MIN_LETTERS: usize = 20;

/// Registers Samle's analysers on an index. Analysers are not stored in the index, so this
/// must run on every open, before any document is indexed or any query parsed.
pub(crate) fn register(index: &Index) {
    let tokenizers = index.tokenizers();
    tokenizers.register(DANISH, stemmed(Language::Danish));
    tokenizers.register(ENGLISH, stemmed(Language::English));
    tokenizers.register(FOLDED, folded());
}

fn stop_words(language: Language) -> StopWordFilter {
    // Both lists ship with tantivy's default `stopwords` feature; the fallback only keeps a
    // build without that feature working (with every word kept).
    StopWordFilter::new(language).unwrap_or_else(|| StopWordFilter::remove(Vec::new()))
}

fn stemmed(language: Language) -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(stop_words(language))
        .filter(Stemmer::new(language))
        .build()
}

fn folded() -> TextAnalyzer {
    // The folded fields serve both languages, so they drop both languages' stop words.
    // Stop words are removed before folding so that `på` and `være` are still recognised.
    // Dropping a word here never loses a match: the query for a document's language also
    // searches that language's stemmed fields, which keep the other language's stop words.
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(stop_words(Language::Danish))
        .filter(stop_words(Language::English))
        .filter(DanishFolding)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Token filter that spells out the Danish letters the way Danes write them without a Danish
/// keyboard (æ→ae, ø→oe, å→aa) and does the same for the German umlauts (ä→ae, ö→oe, ü→ue),
/// which generic ASCII folding would reduce to a single letter (ø→o, å→a).
///
/// Put it before [`AsciiFoldingFilter`], which then folds whatever accents remain. Case is
/// kept (`Æ`→`AE`), so it may sit before or after lower-casing.
#[derive(Clone, Copy, Debug, Default)]
pub struct DanishFolding;

impl TokenFilter for DanishFolding {
    type Tokenizer<T: Tokenizer> = DanishFoldingFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> DanishFoldingFilter<T> {
        DanishFoldingFilter { inner: tokenizer }
    }
}

/// The tokenizer produced by [`DanishFolding`].
#[derive(Clone)]
pub struct DanishFoldingFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for DanishFoldingFilter<T> {
    type TokenStream<'a> = DanishFoldingStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        DanishFoldingStream {
            tail: self.inner.token_stream(text),
            buffer: String::new(),
        }
    }
}

/// The token stream produced by [`DanishFolding`].
pub struct DanishFoldingStream<S> {
    tail: S,
    buffer: String,
}

impl<S: TokenStream> TokenStream for DanishFoldingStream<S> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        // Most tokens are plain ASCII; they pass without a copy.
        if !token.text.is_ascii() && token.text.chars().any(|c| fold_char(c).is_some()) {
            self.buffer.clear();
            for c in token.text.chars() {
                match fold_char(c) {
                    Some(folded) => self.buffer.push_str(folded),
                    None => self.buffer.push(c),
                }
            }
            mem::swap(&mut token.text, &mut self.buffer);
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'æ' | 'ä' => "ae",
        'Æ' | 'Ä' => "AE",
        'ø' | 'ö' => "oe",
        'Ø' | 'Ö' => "OE",
        'å' => "aa",
        'Å' => "AA",
        'ü' => "ue",
        'Ü' => "UE",
        _ => return None,
    })
}

/// Guesses whether a document is Danish or English. Short or undecidable text is Danish,
/// the language of most of Samle's documents.
pub(crate) fn detect_language(title: &str, body: &str) -> Lang {
    let mut sample = String::with_capacity(DETECTION_SAMPLE_BYTES + title.len() + 1);
    sample.push_str(title);
    sample.push('\n');
    sample.push_str(prefix(body, DETECTION_SAMPLE_BYTES));
    if sample.chars().filter(|c| c.is_alphabetic()).count() < DETECTION_MIN_LETTERS {
        return Lang::Da;
    }
    let detector =
        whatlang::Detector::with_allowlist(vec![whatlang::Lang::Dan, whatlang::Lang::Eng]);
    match detector.detect_lang(&sample) {
        Some(whatlang::Lang::Eng) => Lang::En,
        _ => Lang::Da,
    }
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a char boundary.
pub(crate) fn prefix(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use tantivy::schema::Schema;

    use super::*;

    fn tokens(analyzer: &str, text: &str) -> Vec<String> {
        let index = Index::create_in_ram(Schema::builder().build());
        register(&index);
        let mut analyzer = index.tokenizers().get(analyzer).unwrap();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        stream.process(&mut |token| out.push(token.text.clone()));
        out
    }

    #[test]
    fn folded_analyser_table() {
        let table: &[(&str, &[&str])] = &[
            ("æble", &["aeble"]),
            ("Æble", &["aeble"]),
            ("ÆBLE", &["aeble"]),
            ("aeble", &["aeble"]),
            ("AEBLE", &["aeble"]),
            ("Århus", &["aarhus"]),
            ("Aarhus", &["aarhus"]),
            ("aarhus", &["aarhus"]),
            ("Søren Kierkegård", &["soeren", "kierkegaard"]),
            ("Øresund", &["oeresund"]),
            ("Müller Größe", &["mueller", "groesse"]),
            ("Ärger över", &["aerger", "oever"]),
            ("café naïve", &["cafe", "naive"]),
            // Stop words of both languages go, also when spelled with Danish letters.
            ("kaffe og kage på bordet", &["kaffe", "kage", "bordet"]),
            ("the report", &["report"]),
        ];
        for (input, expected) in table {
            assert_eq!(tokens(FOLDED, input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn danish_analyser_table() {
        let table: &[(&str, &str)] = &[
            ("bygningerne", "bygning"),
            ("bygning", "bygning"),
            ("medarbejdere", "medarbejd"),
            ("medarbejderen", "medarbejd"),
            ("Medarbejderne", "medarbejd"),
        ];
        for (input, expected) in table {
            assert_eq!(tokens(DANISH, input), vec![expected.to_string()], "{input}");
        }
        assert!(tokens(DANISH, "og").is_empty(), "og is a Danish stop word");
    }

    #[test]
    fn english_analyser_table() {
        let table: &[(&str, &str)] = &[("running", "run"), ("runs", "run"), ("Run", "run")];
        for (input, expected) in table {
            assert_eq!(
                tokens(ENGLISH, input),
                vec![expected.to_string()],
                "{input}"
            );
        }
        assert!(tokens(ENGLISH, "the").is_empty());
    }

    #[test]
    fn very_long_tokens_are_dropped() {
        let junk = "x".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(tokens(FOLDED, &format!("kort {junk}")), vec!["kort"]);
    }

    #[test]
    fn language_detection() {
        let table: &[(&str, &str, Lang)] = &[
            (
                "Ferie",
                "Alle medarbejdere skal registrere deres ferie i systemet senest en uge før, \
                 så lederen kan planlægge bemandingen i afdelingen.",
                Lang::Da,
            ),
            (
                "Holidays",
                "All employees must register their holidays in the system at least one week \
                 ahead, so that the manager can plan the staffing of the department.",
                Lang::En,
            ),
            ("", "", Lang::Da),
            ("Hi", "ok", Lang::Da),
            ("1234", "5678 90", Lang::Da),
        ];
        for (title, body, expected) in table {
            assert_eq!(detect_language(title, body), *expected, "{title:?}");
        }
    }

    #[test]
    fn prefix_respects_char_boundaries() {
        assert_eq!(prefix("æøå", 3), "æ");
        assert_eq!(prefix("æøå", 4), "æø");
        assert_eq!(prefix("abc", 10), "abc");
    }
}
