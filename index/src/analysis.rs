//! Text analysis: the Danish and English analysers, the Danish folding filter, and language
//! detection for documents that do not say what language they are in.

use std::cell::RefCell;
use std::mem;

use rustc_hash::FxHashMap;
use tantivy::Index;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer,
    Stemmer, StopWordFilter, TextAnalyzer, TextAnalyzerBuilder, Token, TokenFilter, TokenStream,
    Tokenizer, TokenizerManager,
};

use crate::Lang;

// The analysers' names are part of the schema: an index written with other analysis fails
// the schema check at open and is rebuilt. Give an analyser a new name when what it does
// changes, so that no index mixes old and new tokens, and also when the index's files change
// in a way this build cannot read (v3: string columns without zstd, see the workspace's
// `Cargo.toml`).

/// Analyser of the `*_da` fields: Danish stop words, folding, Snowball stemming.
pub(crate) const DANISH: &str = "samle_da_v3";
/// Analyser of the `*_en` fields: English stop words, folding, Snowball stemming.
pub(crate) const ENGLISH: &str = "samle_en_v3";

/// Tokens longer than this are dropped: they are base64, hashes or glued-together junk that
/// nobody searches for, and they bloat the term dictionary.
const MAX_TOKEN_BYTES: usize = 64;

/// How much of a document language detection looks at. Detection is linear in the text and
/// the first few kilobytes decide it as well as the whole.
const DETECTION_SAMPLE_BYTES: usize = 4096;

/// Below this many letters detection is a coin toss, and most of Samle's documents are Danish.
const DETECTION_MIN_LETTERS: usize = 20;

/// How many distinct words a thread remembers per language (see [`Memoized`]). Words are
/// remembered in the order they are first seen, which favours the frequent ones; later words
/// are worked out each time. About 80 bytes a word: under 3 MB per language and indexing
/// thread.
const MEMOIZED_WORDS: usize = 32_768;

/// Registers Samle's analysers on an index. Analysers are not stored in the index, so this
/// must run on every open, before any document is indexed or any query parsed.
///
/// The registered analysers remember the words they have seen (see [`Memoized`]), so
/// indexing pays for stop words, folding and stemming once per distinct word and thread
/// instead of once per occurrence.
pub(crate) fn register(index: &Index) {
    let tokenizers = index.tokenizers();
    for name in [DANISH, ENGLISH] {
        tokenizers.register(name, memoized(name));
    }
}

/// The analyser called `name`, without a memory of words: for work that starts a fresh
/// analyser for a few texts (snippets), where remembering would cost more than it saves.
/// It produces exactly the tokens of the registered analyser.
pub(crate) fn plain(name: &str) -> Option<TextAnalyzer> {
    let tokens = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser);
    per_word(tokens, name)
}

/// Samle's analysers without a memory of words, under their registered names: for parsing
/// queries.
pub(crate) fn plain_tokenizers() -> TokenizerManager {
    let tokenizers = TokenizerManager::new();
    for name in [DANISH, ENGLISH] {
        if let Some(analyzer) = plain(name) {
            tokenizers.register(name, analyzer);
        }
    }
    tokenizers
}

fn memoized(name: &str) -> TextAnalyzer {
    let words = per_word(TextAnalyzer::builder(RawTokenizer::default()), name)
        .expect("one of Samle's analyser names");
    let slot = usize::from(name == ENGLISH);
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(Memoized { words, slot })
        .build()
}

/// `tokens` followed by what the analyser `name` does to each lower-cased word.
///
/// Stop words go first, while they are still spelled as the lists spell them (`på`, `være`).
/// Folding comes next, so that spelling variants become one string before anything else
/// looks at them: `Århus`/`Aarhus`, `æble`/`aeble`, `Ærøskøbing`/`aeroeskoebing`,
/// `Müller`/`Mueller`, `idé`/`ide`. Snowball then stems the folded word; `ae`, `oe`, `aa`
/// are vowels to it as `æ`, `ø`, `å` are. One analysed copy of each text thus serves both
/// inflections and spellings, and a query is analysed the same way.
fn per_word<T: Tokenizer>(tokens: TextAnalyzerBuilder<T>, name: &str) -> Option<TextAnalyzer> {
    let language = match name {
        DANISH => Language::Danish,
        ENGLISH => Language::English,
        _ => return None,
    };
    Some(
        tokens
            .filter(stop_words(language))
            .filter(DanishFolding)
            .filter(AsciiFoldingFilter)
            .filter(Stemmer::new(language))
            .build(),
    )
}

fn stop_words(language: Language) -> StopWordFilter {
    // Both lists ship with tantivy's default `stopwords` feature; the fallback only keeps a
    // build without that feature working (with every word kept).
    StopWordFilter::new(language).unwrap_or_else(|| StopWordFilter::remove(Vec::new()))
}

/// Token filter that runs each token through `words`, an analyser of single words (stop
/// words, folding, stemming), and remembers the outcome per distinct word: a Snowball stem
/// costs far more than a hash lookup, and text repeats its words.
///
/// The memory belongs to the thread, one per language (`slot`), so a title and a body share
/// it, and it outlives a segment writer: tantivy's indexing threads live as long as the
/// writer. Only the indexing threads use these analysers (queries and snippets use
/// [`plain`]), so at most a few threads ever fill one.
#[derive(Clone)]
struct Memoized {
    words: TextAnalyzer,
    slot: usize,
}

/// Word → what one language's analysis makes of it; `None` when it drops the word.
type WordMemory = FxHashMap<Box<str>, Option<Box<str>>>;

thread_local! {
    static MEMORY: RefCell<[WordMemory; 2]> = RefCell::default();
}

impl TokenFilter for Memoized {
    type Tokenizer<T: Tokenizer> = MemoizedFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> MemoizedFilter<T> {
        MemoizedFilter {
            inner: tokenizer,
            words: self.words,
            slot: self.slot,
        }
    }
}

#[derive(Clone)]
struct MemoizedFilter<T> {
    inner: T,
    words: TextAnalyzer,
    slot: usize,
}

impl<T: Tokenizer> Tokenizer for MemoizedFilter<T> {
    type TokenStream<'a> = MemoizedStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MemoizedStream {
            tail: self.inner.token_stream(text),
            words: &mut self.words,
            slot: self.slot,
        }
    }
}

struct MemoizedStream<'a, S> {
    tail: S,
    words: &'a mut TextAnalyzer,
    slot: usize,
}

/// Runs `word` through the word analyser: its one token, or `None` when it drops it.
fn analyse_word(words: &mut TextAnalyzer, word: &str) -> Option<String> {
    let mut stream = words.token_stream(word);
    stream
        .advance()
        .then(|| mem::take(&mut stream.token_mut().text))
}

/// Makes `token` what `memory` (or, the first time, `words`) says the word becomes. False
/// when the word is dropped.
fn recall(memory: &mut WordMemory, words: &mut TextAnalyzer, token: &mut Token) -> bool {
    match memory.get(token.text.as_str()) {
        Some(None) => false,
        Some(Some(out)) => {
            if **out != *token.text {
                token.text.clear();
                token.text.push_str(out);
            }
            true
        }
        None => {
            let out = analyse_word(words, &token.text);
            if memory.len() < MEMOIZED_WORDS {
                memory.insert(token.text.as_str().into(), out.as_deref().map(Box::from));
            }
            match out {
                Some(out) => {
                    token.text = out;
                    true
                }
                None => false,
            }
        }
    }
}

impl<S: TokenStream> TokenStream for MemoizedStream<'_, S> {
    fn advance(&mut self) -> bool {
        loop {
            if !self.tail.advance() {
                return false;
            }
            let token = self.tail.token_mut();
            let kept =
                MEMORY.with_borrow_mut(|memory| recall(&mut memory[self.slot], self.words, token));
            if kept {
                return true;
            }
        }
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
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

    /// Spelling variants meet: each pair analyses to the same tokens, in both languages.
    #[test]
    fn spelling_variants_meet() {
        let pairs = [
            ("æble", "aeble"),
            ("ÆBLE", "Aeble"),
            ("Århus", "Aarhus"),
            ("AARHUS", "århus"),
            ("Ærøskøbing", "aeroeskoebing"),
            ("Søren Kierkegård", "Soeren Kierkegaard"),
            ("Øresund", "oeresund"),
            ("Kørekort", "koerekort"),
            ("Ældre", "aeldre"),
            ("hjælpemidlerne", "hjaelpemidlerne"),
            ("Müller Größe", "mueller groesse"),
            ("Ärger över", "aerger oever"),
            ("café naïve", "cafe naive"),
            ("Idéen", "ideen"),
            ("Entréen", "entreen"),
        ];
        for analyser in [DANISH, ENGLISH] {
            for (a, b) in pairs {
                let (ta, tb) = (tokens(analyser, a), tokens(analyser, b));
                assert!(!ta.is_empty(), "{analyser}: {a:?} analyses to nothing");
                assert_eq!(ta, tb, "{analyser}: {a:?} and {b:?}");
                assert!(
                    ta.iter().all(|t| t.is_ascii()),
                    "{analyser}: {a:?} → {ta:?}"
                );
            }
        }
        // Inflections still meet after folding.
        for (a, b) in [
            ("bøgerne", "bøger"),
            ("kørekortet", "kørekort"),
            ("ældres", "ældre"),
        ] {
            assert_eq!(tokens(DANISH, a), tokens(DANISH, b), "{a:?} and {b:?}");
        }
    }

    /// The registered analyser remembers words; the plain one does not. Both must give the
    /// same tokens at the same positions and offsets, also past the memory's limit and for
    /// the words dropped as stop words.
    #[test]
    fn memoized_gives_the_plain_tokens() {
        let mut text = String::from("Medarbejderne og the Århus-kontoret runs; ");
        for i in 0..MEMOIZED_WORDS + 2_000 {
            text.push_str(&format!("ørd{i} og bygningerne "));
        }
        text.push_str(&"x".repeat(MAX_TOKEN_BYTES + 1));
        text.push_str(" æblerne ørd7 Ørd40000 sidst");
        let all = |mut analyzer: TextAnalyzer| {
            let mut out = Vec::new();
            analyzer.token_stream(&text).process(&mut |t| {
                out.push((t.text.clone(), t.position, t.offset_from, t.offset_to));
            });
            out
        };
        for name in [DANISH, ENGLISH] {
            let plain = all(plain(name).unwrap());
            let memoized = all(memoized(name));
            assert!(plain.len() > 2 * MEMOIZED_WORDS, "{}", plain.len());
            assert_eq!(memoized, plain, "{name}");
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
        assert_eq!(tokens(DANISH, &format!("kort {junk}")), vec!["kort"]);
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
