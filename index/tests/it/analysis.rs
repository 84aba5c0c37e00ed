//! Danish and English analysis, end to end through indexing and search.

use samle_index::{IndexDoc, Lang, Principals};

use crate::common::{Fixture, doc, english, id_set, set};

fn corpus() -> Vec<IndexDoc> {
    vec![
        doc(
            "bygning",
            "Om huset",
            "Den nye bygning står færdig til sommer.",
        ),
        doc(
            "medarbejder",
            "Velkommen",
            "Vi byder medarbejderen velkommen i teamet.",
        ),
        doc("æble", "Frugt", "Et æble om dagen holder lægen væk."),
        doc("århus", "Kontorer", "Kontoret i Århus flytter til havnen."),
        doc("ærø", "Ø", "ÆRØSKØBING ligger på Ærø."),
        english("runs", "Exercise", "She runs every morning before work."),
        english(
            "reports",
            "Quarterly",
            "The quarterly reports are published online.",
        ),
    ]
}

#[test]
fn analysis_table() {
    let f = Fixture::with(corpus());
    let table: &[(&str, &[&str])] = &[
        // Danish Snowball stemming.
        ("bygningerne", &["bygning"]),
        ("bygninger", &["bygning"]),
        ("medarbejdere", &["medarbejder"]),
        ("medarbejderne", &["medarbejder"]),
        // Danish folding, both ways, any case.
        ("æble", &["æble"]),
        ("Æble", &["æble"]),
        ("ÆBLE", &["æble"]),
        ("aeble", &["æble"]),
        ("AEBLE", &["æble"]),
        ("Århus", &["århus"]),
        ("Aarhus", &["århus"]),
        ("aarhus", &["århus"]),
        ("AARHUS", &["århus"]),
        ("aeroeskoebing", &["ærø"]),
        ("Ærøskøbing", &["ærø"]),
        // English Snowball stemming.
        ("running", &["runs"]),
        ("run", &["runs"]),
        ("report", &["reports"]),
        // Nothing matches what is not there.
        ("bil", &[]),
    ];
    for (query, expected) in table {
        assert_eq!(id_set(&f.find(query)), set(expected), "query {query:?}");
    }
}

#[test]
fn stop_words_do_not_match_everything() {
    let docs = (0..20).map(|i| {
        doc(
            &format!("d{i}"),
            "Nyhed",
            &format!("Kaffe og kage {i} og hygge, det er til alle i huset"),
        )
    });
    let f = Fixture::with(docs.chain([doc("budget", "Budget", "Budget og regnskab")]));
    for query in ["og", "det er", "og i til"] {
        assert_eq!(f.find(query).total, 0, "{query:?} should match nothing");
    }
    // A stop word next to a real word is simply ignored, not required.
    assert_eq!(f.find("og budget").total, 1);
    assert_eq!(f.find("budget").total, 1);
}

#[test]
fn english_stop_word_is_a_word_in_danish_documents() {
    // "to" (two) and "is" (ice cream) are Danish words but English stop words.
    let f = Fixture::with([doc("is", "Sommer", "Vi spiser is to gange om ugen")]);
    assert_eq!(f.find("is").total, 1);
    assert_eq!(f.find("to gange").total, 1);
}

#[test]
fn language_is_detected_when_not_given() {
    let english_text = IndexDoc {
        language: None,
        ..english(
            "en",
            "Travel policy",
            "Employees travelling abroad must book their flights through the travel \
             office and keep all receipts for the expense report.",
        )
    };
    let danish_text = IndexDoc {
        language: None,
        ..doc(
            "da",
            "Rejsepolitik",
            "Medarbejdere der rejser til udlandet skal bestille fly gennem rejsekontoret \
             og gemme alle kvitteringer til udgiftsrapporten.",
        )
    };
    let short = IndexDoc {
        language: None,
        ..doc("kort", "OK", "Hi")
    };
    let f = Fixture::with([english_text, danish_text, short]);
    let viewer = Principals::anonymous();
    let lang = |id: &str| f.index.get(&viewer, "wiki", id).unwrap().unwrap().language;
    assert_eq!(lang("en"), Lang::En);
    assert_eq!(lang("da"), Lang::Da);
    assert_eq!(lang("kort"), Lang::Da, "short text defaults to Danish");
    // Analysed as English: stemming reaches "travelled"/"flight".
    assert_eq!(id_set(&f.find("flight")), set(&["en"]));
    // Analysed as Danish: "medarbejderen" reaches "medarbejdere".
    assert_eq!(id_set(&f.find("medarbejderen")), set(&["da"]));
}
