//! The file-share connector against real folders.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use samle_connectors::{Change, ConnectorError, KnownDocs};

use crate::common::{
    Share, Slotted, failures, fingerprints, fixture, ids, is_failed, is_unchanged, is_upsert, run,
    run_known, run_raw, upserts,
};

fn utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn assert_complete(changes: &[Change]) {
    assert_eq!(
        changes.last(),
        Some(&Change::TraversalComplete),
        "the run must end with TraversalComplete"
    );
    let count = changes
        .iter()
        .filter(|c| **c == Change::TraversalComplete)
        .count();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn walks_every_supported_format_into_documents() {
    let share = Share::new();
    share.write("HR/Ferie_og-fravær.pdf", fixture("personalehaandbog.pdf"));
    share.write("HR/håndbog.docx", fixture("personalehaandbog.docx"));
    share.write("Ledelse/strategi.odt", fixture("personalehaandbog.odt"));
    share.write(
        "index.html",
        "<html lang=\"en\"><head><title>Welcome</title></head><body><p>Hello.</p></body></html>",
    );
    share.write("README.md", "# Om drevet\n\nFælles filer.\n");
    share.write("møde_referat-2024.txt", "x".repeat(200));
    share.write("billede.png", [0x89, b'P', b'N', b'G']);
    share.write(".skjult.txt", "hidden");
    share.write(".git/config.txt", "hidden folder");
    share.write("HR/~$håndbog.docx", "office lock file");

    let connector = share.connector(
        "url_prefix = \"https://intra.example/filer\"\ndefault_access = [\"authenticated\"]",
    );
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_complete(&changes);
    let docs = upserts(&changes);
    let mut names: Vec<&str> = docs.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "HR/Ferie_og-fravær.pdf",
            "HR/håndbog.docx",
            "Ledelse/strategi.odt",
            "README.md",
            "index.html",
            "møde_referat-2024.txt",
        ]
    );
    assert_eq!(
        changes.len(),
        docs.len() + 1,
        "only upserts and the end marker: {changes:?}"
    );

    let pdf = &docs["HR/Ferie_og-fravær.pdf"];
    assert_eq!(pdf.kind, "file");
    assert_eq!(pdf.title, "Personalehåndbog");
    assert!(pdf.body.contains("æøå ÆØÅ"), "{:?}", pdf.body);
    // Tags are topics: the top-level folder, never the format.
    assert_eq!(pdf.tags, ["HR"]);
    assert_eq!(pdf.acl, ["authenticated"]);
    assert_eq!(pdf.author.as_deref(), Some("Mette Hansen"));
    assert_eq!(
        pdf.url.as_deref(),
        Some("https://intra.example/filer/HR/Ferie_og-frav%C3%A6r.pdf")
    );
    // The dates the PDF declares, not the file's.
    assert_eq!(pdf.created, Some(utc("2024-01-02T02:04:05Z")));
    assert_eq!(pdf.updated, Some(utc("2024-03-15T12:00:00Z")));
    let fingerprint = pdf.fingerprint.as_deref().unwrap();
    let size = fixture("personalehaandbog.pdf").len();
    assert!(
        fingerprint.starts_with(&format!("{size}:")),
        "{fingerprint}"
    );
    assert_eq!(fingerprint.split(':').count(), 4, "{fingerprint}");

    assert_eq!(docs["HR/håndbog.docx"].tags, ["HR"]);
    assert_eq!(
        docs["HR/håndbog.docx"].created,
        Some(utc("2024-01-02T03:04:05Z"))
    );
    assert_eq!(docs["HR/håndbog.docx"].language.as_deref(), Some("da"));
    assert_eq!(docs["Ledelse/strategi.odt"].tags, ["Ledelse"]);
    assert_eq!(docs["index.html"].title, "Welcome");
    assert_eq!(docs["index.html"].language.as_deref(), Some("en"));
    assert!(docs["index.html"].tags.is_empty());
    assert_eq!(docs["README.md"].title, "Om drevet");
    assert_eq!(docs["README.md"].body, "Fælles filer.");
    assert!(docs["README.md"].tags.is_empty());
    // A long first line is no title: the file name stands in, separators as spaces.
    assert_eq!(docs["møde_referat-2024.txt"].title, "møde referat 2024");
    assert!(docs["møde_referat-2024.txt"].tags.is_empty());
    // Files that declare no dates get the file's modification time for both.
    let mtime = fs::metadata(share.root().join("møde_referat-2024.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let text = &docs["møde_referat-2024.txt"];
    assert_eq!(
        (text.created, text.updated),
        (Some(mtime.into()), Some(mtime.into()))
    );
}

#[tokio::test]
async fn news_items_sort_by_the_date_they_declare() {
    let share = Share::new();
    let dated = share.write(
        "2026/2026-10-14-energi.md",
        "---\ntitle: Vi sparer på energien\ndate: 2026-10-14\n---\n\nTekst om energi.\n",
    );
    share.write(
        "2026/2026-10-20-kantine.md",
        "---\ntitle: Kantinen\ndate: 2026-10-20 09:30\nupdated: 2026-10-22T12:00:00+02:00\n---\nTekst.\n",
    );
    share.write(
        "2026/udateret.md",
        "---\ntitle: Uden dato\ndate: i sidste uge\n---\nTekst.\n",
    );
    share.write(
        "forside.html",
        "<html><head><title>Forside</title><meta name=\"date\" content=\"2026-09-01\"></head>\
<body><p>Velkommen.</p></body></html>",
    );
    // The file itself is much newer than the date it declares.
    fs::File::options()
        .write(true)
        .open(&dated)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();

    let connector = share.connector("kind = \"news\"\ndefault_access = [\"authenticated\"]");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&changes);
    let file_time = |id: &str| -> DateTime<Utc> {
        fs::metadata(share.root().join(id))
            .unwrap()
            .modified()
            .unwrap()
            .into()
    };
    // (file, created, updated)
    let cases = [
        (
            "2026/2026-10-14-energi.md",
            utc("2026-10-14T00:00:00Z"),
            utc("2026-10-14T00:00:00Z"),
        ),
        (
            "2026/2026-10-20-kantine.md",
            utc("2026-10-20T09:30:00Z"),
            utc("2026-10-22T10:00:00Z"),
        ),
        (
            "2026/udateret.md",
            file_time("2026/udateret.md"),
            file_time("2026/udateret.md"),
        ),
        (
            "forside.html",
            utc("2026-09-01T00:00:00Z"),
            utc("2026-09-01T00:00:00Z"),
        ),
    ];
    for (id, created, updated) in cases {
        let doc = &docs[id];
        assert_eq!(doc.kind, "news", "{id}");
        assert_eq!(doc.created, Some(created), "{id}: created");
        assert_eq!(doc.updated, Some(updated), "{id}: updated");
    }
    assert_eq!(docs["2026/udateret.md"].title, "Uden dato");
    assert_eq!(docs["2026/2026-10-14-energi.md"].body, "Tekst om energi.");
    assert_eq!(docs["2026/2026-10-14-energi.md"].tags, ["2026"]);
}

#[tokio::test]
async fn a_changed_kind_resends_unchanged_files() {
    let share = Share::new();
    share.write("a.txt", "a");
    let files = share.connector("");
    let (result, first) = run(files.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_eq!(upserts(&first)["a.txt"].kind, "file");

    let news = share.connector("kind = \"news\"");
    let (result, second) = run(news.as_ref(), fingerprints(&first)).await;
    result.unwrap();
    assert_eq!(ids(&second, is_upsert), ["a.txt"]);
    assert_eq!(upserts(&second)["a.txt"].kind, "news");

    let (result, third) = run(news.as_ref(), fingerprints(&second)).await;
    result.unwrap();
    assert_eq!(ids(&third, is_unchanged), ["a.txt"]);
}

#[tokio::test]
async fn language_from_the_configuration_wins() {
    let share = Share::new();
    share.write(
        "a.html",
        "<html lang=\"en\"><body><p>Hello.</p></body></html>",
    );
    share.write("b.txt", "Hej.");
    let connector = share.connector("language = \"da\"");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    let docs = upserts(&changes);
    assert_eq!(docs["a.html"].language.as_deref(), Some("da"));
    assert_eq!(docs["b.txt"].language.as_deref(), Some("da"));
    assert_eq!(docs["b.txt"].url, None);
}

#[tokio::test]
async fn include_and_exclude_globs_select_files() {
    let share = Share::new();
    for path in [
        "a.txt",
        "a.pdf",
        "HR/b.txt",
        "HR/Arkiv/c.txt",
        "Arkiv/d.txt",
        "tmp/e.md",
        "HR/kladde.tmp.txt",
    ] {
        share.write(path, "tekst");
    }
    let all = [
        "Arkiv/d.txt",
        "HR/Arkiv/c.txt",
        "HR/b.txt",
        "HR/kladde.tmp.txt",
        "a.pdf",
        "a.txt",
        "tmp/e.md",
    ];
    let cases: [(&str, &str, &[&str]); 7] = [
        ("[]", "[]", &all),
        (
            "[\"*.txt\"]",
            "[]",
            &[
                "Arkiv/d.txt",
                "HR/Arkiv/c.txt",
                "HR/b.txt",
                "HR/kladde.tmp.txt",
                "a.txt",
            ],
        ),
        ("[\"HR/*.txt\"]", "[]", &["HR/b.txt", "HR/kladde.tmp.txt"]),
        (
            "[\"HR/**\"]",
            "[\"Arkiv\"]",
            &["HR/b.txt", "HR/kladde.tmp.txt"],
        ),
        (
            "[]",
            "[\"Arkiv/\", \"*.tmp.txt\"]",
            &["HR/Arkiv/c.txt", "HR/b.txt", "a.pdf", "a.txt", "tmp/e.md"],
        ),
        ("[\"*.md\", \"a.*\"]", "[\"tmp/**\"]", &["a.pdf", "a.txt"]),
        ("[\"*.xlsx\"]", "[]", &[]),
    ];
    for (include, exclude, expected) in cases {
        let connector = share.connector(&format!("include = {include}\nexclude = {exclude}"));
        let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
        result.unwrap();
        assert_complete(&changes);
        // "a.pdf" is not a real PDF: it fails, but it was selected all the same.
        let selected = ids(&changes, |c| !matches!(c, Change::TraversalComplete));
        assert_eq!(selected, expected, "include {include} exclude {exclude}");
    }
}

#[tokio::test]
async fn access_rules_first_match_wins_then_default() {
    let share = Share::new();
    for path in [
        "Ledelse/Løn/2024.txt",
        "Ledelse/strategi.txt",
        "Fælles/rapport.pdf",
        "Fælles/nyt.txt",
    ] {
        share.write(path, "tekst");
    }
    share.write("Fælles/rapport.pdf", fixture("personalehaandbog.pdf"));
    let rules = r#"
[[file-share.access]]
path = "Ledelse/Løn/**"
principals = ["group:løn"]
[[file-share.access]]
path = "Ledelse/**"
principals = ["group:ledere", "user:mette"]
[[file-share.access]]
path = "*.pdf"
principals = ["authenticated"]
"#;
    let cases: [(&str, [&[&str]; 4]); 2] = [
        (
            "default_access = [\"group:alle\"]",
            [
                &["group:løn"],
                &["group:ledere", "user:mette"],
                &["authenticated"],
                &["group:alle"],
            ],
        ),
        (
            "",
            [
                &["group:løn"],
                &["group:ledere", "user:mette"],
                &["authenticated"],
                &[],
            ],
        ),
    ];
    for (default, expected) in cases {
        // TOML puts keys after an array of tables into the last table, so keys come first.
        let connector = share.connector(&format!("{default}\n{rules}"));
        let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
        result.unwrap();
        let docs = upserts(&changes);
        let acl = |id: &str| docs[id].acl.clone();
        assert_eq!(acl("Ledelse/Løn/2024.txt"), expected[0], "{default}");
        assert_eq!(acl("Ledelse/strategi.txt"), expected[1], "{default}");
        assert_eq!(acl("Fælles/rapport.pdf"), expected[2], "{default}");
        assert_eq!(acl("Fælles/nyt.txt"), expected[3], "{default}");
    }
}

#[tokio::test]
async fn a_changed_access_rule_resends_unchanged_files() {
    let share = Share::new();
    share.write("Ledelse/plan.txt", "plan");
    share.write("andet.txt", "andet");
    let open = share.connector("default_access = [\"authenticated\"]");
    let (result, first) = run(open.as_ref(), HashMap::new()).await;
    result.unwrap();

    let closed = share.connector(
        "default_access = [\"authenticated\"]\n[[file-share.access]]\npath = \"Ledelse/\"\nprincipals = [\"group:ledere\"]",
    );
    let (result, second) = run(closed.as_ref(), fingerprints(&first)).await;
    result.unwrap();
    assert_eq!(ids(&second, is_upsert), ["Ledelse/plan.txt"]);
    assert_eq!(ids(&second, is_unchanged), ["andet.txt"]);
    assert_eq!(upserts(&second)["Ledelse/plan.txt"].acl, ["group:ledere"]);
}

#[tokio::test]
async fn symlinks_out_of_the_root_are_reported_and_not_followed() {
    let share = Share::new();
    let outside = share.base().join("outside");
    fs::write(outside.join("hemmelig.txt"), "hemmelig løn").unwrap();
    fs::create_dir(outside.join("mappe")).unwrap();
    fs::write(outside.join("mappe/mere.txt"), "mere hemmeligt").unwrap();
    share.write("synlig.txt", "synlig");
    symlink(
        outside.join("hemmelig.txt"),
        share.root().join("genvej.txt"),
    )
    .unwrap();
    // A relative link climbing out with "..".
    symlink("../outside/hemmelig.txt", share.root().join("op.txt")).unwrap();
    symlink(outside.join("mappe"), share.root().join("mappe")).unwrap();

    let connector = share.connector("");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_complete(&changes);
    assert_eq!(ids(&changes, is_upsert), ["synlig.txt"]);
    assert_eq!(ids(&changes, is_failed), ["genvej.txt", "op.txt"]);
    for change in &changes {
        if let Change::Failed { error, .. } = change {
            assert!(error.contains("outside the file-share root"), "{error}");
        }
        if let Change::Upsert(doc) = change {
            assert!(!doc.body.contains("hemmelig"), "{doc:?}");
        }
    }

    let notes = connector.check().await.unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n == "2 symbolic links lead outside the root and are skipped"),
        "{notes:?}"
    );
}

#[tokio::test]
async fn symlinks_inside_the_root_are_followed() {
    let share = Share::new();
    share.write("Original/regler.txt", "Regler for ferie");
    fs::create_dir(share.root().join("Genveje")).unwrap();
    symlink(
        "../Original/regler.txt",
        share.root().join("Genveje/regler.txt"),
    )
    .unwrap();
    // A link to a folder inside the root is not walked twice (nor looped through).
    symlink("..", share.root().join("Original/op")).unwrap();

    let connector = share.connector("");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_complete(&changes);
    assert_eq!(
        ids(&changes, is_upsert),
        ["Genveje/regler.txt", "Original/regler.txt"]
    );
    let docs = upserts(&changes);
    assert_eq!(docs["Genveje/regler.txt"].body, "Regler for ferie");
    assert_eq!(docs["Genveje/regler.txt"].tags, ["Genveje"]);
}

#[tokio::test]
async fn parent_folders_cannot_be_reached() {
    let share = Share::new();
    share.write("inde.txt", "inde");
    fs::write(share.base().join("outside/ude.txt"), "ude").unwrap();

    // A root spelled with ".." is resolved once; ids stay relative to it.
    let connector = share.connector("root = \"share/../share\"");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_eq!(ids(&changes, is_upsert), ["inde.txt"]);
    for change in &changes {
        if let Some(id) = change.external_id() {
            assert!(!id.starts_with('/'), "{id}");
            assert!(
                id.split('/').all(|part| part != ".." && part != "."),
                "{id}"
            );
        }
    }

    // Globs cannot point above the root either.
    for lines in [
        "include = [\"../outside/*\"]",
        "exclude = [\"/etc/*\"]",
        "[[file-share.access]]\npath = \"../**\"\nprincipals = [\"public\"]",
    ] {
        let err = samle_connectors::build("file-share", &share.params(lines), share.base())
            .err()
            .unwrap();
        assert!(err.is_config(), "{err}");
        assert!(
            err.to_string().contains("must be relative to the root"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn unchanged_files_are_not_read_again() {
    let share = Share::new();
    let a = share.write("a.txt", "første udgave");
    share.write("b.md", "# B\n\ntekst");
    let connector = share.connector("");
    let (result, first) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    let known = fingerprints(&first);
    assert_eq!(known.len(), 2);

    // Same size, same modification time, different bytes: only a read could notice, so an
    // Unchanged proves the file was not read.
    let mtime = fs::metadata(&a).unwrap().modified().unwrap();
    fs::write(&a, "ANDEN UDGAVE!!").unwrap();
    assert_eq!(
        fs::metadata(&a).unwrap().len(),
        "første udgave".len() as u64
    );
    fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let (result, second) = run(connector.as_ref(), known).await;
    result.unwrap();
    assert_complete(&second);
    assert_eq!(ids(&second, is_unchanged), ["a.txt", "b.md"]);
    assert_eq!(second.len(), 3);
}

#[tokio::test]
async fn modified_and_touched_files() {
    let share = Share::new();
    let a = share.write("a.txt", "første udgave");
    let b = share.write("b.txt", "uændret indhold");
    share.write("c.txt", "rør mig ikke");
    let connector = share.connector("");
    let (result, first) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();

    let later = SystemTime::now() + Duration::from_secs(5);
    fs::write(&a, "anden og længere udgave").unwrap();
    // Touched: new modification time, same bytes.
    fs::File::options()
        .write(true)
        .open(&b)
        .unwrap()
        .set_modified(later)
        .unwrap();

    let (result, second) = run(connector.as_ref(), fingerprints(&first)).await;
    result.unwrap();
    assert_complete(&second);
    assert_eq!(ids(&second, is_upsert), ["a.txt"]);
    assert_eq!(ids(&second, is_unchanged), ["b.txt", "c.txt"]);
    assert_eq!(upserts(&second)["a.txt"].body, "anden og længere udgave");
    assert_ne!(
        upserts(&second)["a.txt"].fingerprint,
        upserts(&first)["a.txt"].fingerprint
    );
}

#[tokio::test]
async fn deleted_files_are_simply_not_emitted() {
    let share = Share::new();
    share.write("a.txt", "a");
    let gone = share.write("HR/b.txt", "b");
    let connector = share.connector("");
    let (result, first) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();

    fs::remove_file(gone).unwrap();
    let (result, second) = run(connector.as_ref(), fingerprints(&first)).await;
    result.unwrap();
    assert_eq!(
        second,
        [
            Change::Unchanged {
                external_id: "a.txt".to_owned()
            },
            Change::TraversalComplete,
        ]
    );
}

#[tokio::test]
async fn unreadable_files_fail_alone_and_the_run_continues() {
    let share = Share::new();
    share.write("a.txt", "god");
    share.write("b-ødelagt.pdf", b"%PDF-1.4\nthis is not a pdf at all");
    share.write("c-ødelagt.docx", b"PK\x03\x04 not really a zip");
    share.write("d-stor.txt", "x".repeat(2048));
    share.write("e.md", "# God\n");
    let connector = share.connector("max_file_bytes = 1024");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_complete(&changes);
    assert_eq!(ids(&changes, is_upsert), ["a.txt", "e.md"]);
    assert_eq!(
        ids(&changes, is_failed),
        ["b-ødelagt.pdf", "c-ødelagt.docx", "d-stor.txt"]
    );
    let errors: HashMap<&str, &str> = failures(&changes).into_iter().collect();
    assert_eq!(
        errors["d-stor.txt"],
        "file is 2048 bytes, over the limit of 1024 bytes"
    );
    assert!(
        errors["b-ødelagt.pdf"].starts_with("malformed pdf file"),
        "{errors:?}"
    );
    assert!(
        errors["c-ødelagt.docx"].starts_with("malformed docx file"),
        "{errors:?}"
    );
}

#[tokio::test]
async fn an_unlistable_folder_makes_the_run_fail_without_traversal_complete() {
    use std::os::unix::fs::PermissionsExt;
    let share = Share::new();
    share.write("a.txt", "a");
    let locked = share.root().join("Låst");
    fs::create_dir(&locked).unwrap();
    fs::write(locked.join("b.txt"), "b").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read_dir(&locked).is_ok() {
        // Running as root: permissions do not apply, so there is nothing to test here.
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: permissions are not enforced for this user");
        return;
    }
    let connector = share.connector("");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        matches!(result, Err(ConnectorError::Incomplete { .. })),
        "{result:?}"
    );
    assert!(!changes.contains(&Change::TraversalComplete));
    assert_eq!(ids(&changes, is_upsert), ["a.txt"]);
}

#[tokio::test]
async fn a_missing_root_is_an_error_and_emits_nothing() {
    let share = Share::new();
    let connector = share.connector("root = \"findes-ikke\"");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, ConnectorError::Io { .. }), "{err}");
    assert!(!err.is_config());
    assert!(err.to_string().contains("findes-ikke"), "{err}");
    assert!(changes.is_empty(), "{changes:?}");

    let err = connector.check().await.unwrap_err();
    assert!(err.to_string().contains("findes-ikke"), "{err}");

    // A root that is a file is no better.
    share.write("fil.txt", "x");
    let connector = share.connector("root = \"share/fil.txt\"");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    assert!(result.unwrap_err().to_string().contains("is not a folder"));
    assert!(changes.is_empty());
}

#[tokio::test]
async fn check_reports_counts_and_rules_that_match_nothing() {
    let share = Share::new();
    share.write("HR/a.txt", "a");
    share.write("HR/b.pdf", fixture("personalehaandbog.pdf"));
    share.write("c.txt", "c");
    let connector = share.connector(
        r#"include = ["HR/**", "*.docx"]
[[file-share.access]]
path = "HR/**"
principals = ["group:hr"]
[[file-share.access]]
path = "Ledelse/**"
principals = ["group:ledere"]
"#,
    );
    let notes = connector.check().await.unwrap();
    let root = fs::canonicalize(share.root()).unwrap();
    assert_eq!(
        notes,
        [
            format!("root {} is readable, 2 files match", root.display()),
            "include glob \"*.docx\" matches no file".to_owned(),
            "access rule 2 (\"Ledelse/**\") matches no file".to_owned(),
        ]
    );

    let nobody = share.connector("");
    let notes = nobody.check().await.unwrap();
    assert!(
        notes.contains(
            &"3 files match no access rule and are visible to nobody (default_access is empty)"
                .to_owned()
        ),
        "{notes:?}"
    );
}

#[tokio::test]
async fn a_run_stops_when_the_receiver_goes_away() {
    let share = Share::new();
    for i in 0..50 {
        share.write(&format!("f{i:02}.txt"), format!("fil {i}"));
    }
    let connector = share.connector("");
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let ctx = samle_connectors::RunContext {
        source_id: "test".to_owned(),
        cursor: None,
        full: true,
        known: std::sync::Arc::new(HashMap::<String, String>::new()),
        sink: samle_connectors::ChangeSink::new(tx),
    };
    let run = tokio::spawn(async move { connector.run(ctx).await });
    assert!(rx.recv().await.is_some());
    drop(rx);
    let result = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run must stop promptly")
        .unwrap();
    assert!(
        matches!(result, Err(ConnectorError::Cancelled)),
        "{result:?}"
    );
}

#[tokio::test]
async fn files_come_in_file_name_order_folder_by_folder() {
    let share = Share::new();
    // Enough names that the folder's own listing order is unlikely to be sorted, with
    // prefixes of each other, capitals, non-ASCII names and folders among the files.
    let mut expected = Vec::new();
    for i in (0..40).rev() {
        share.write(&format!("f{i}.txt"), "x");
    }
    share.write("a.txt", "x");
    share.write("a/z.txt", "x");
    share.write("a/b/c.txt", "x");
    share.write("a b.txt", "x");
    share.write("B.txt", "x");
    share.write("ø.txt", "x");
    share.write("æ/1.txt", "x");
    share.write("a-/y.txt", "x");
    // Names compared as bytes; a folder's files come where the folder's name sorts ("a"
    // before "a b.txt"), not where its files' paths would.
    expected.extend(
        [
            "B.txt",
            "a/b/c.txt",
            "a/z.txt",
            "a b.txt",
            "a-/y.txt",
            "a.txt",
        ]
        .map(String::from),
    );
    let mut numbered: Vec<String> = (0..40).map(|i| format!("f{i}.txt")).collect();
    numbered.sort();
    expected.extend(numbered);
    expected.extend(["æ/1.txt", "ø.txt"].map(String::from));

    let connector = share.connector("");
    let (result, first) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    let order: Vec<&str> = first.iter().filter_map(Change::external_id).collect();
    assert_eq!(order, expected);

    let (result, second) = run(connector.as_ref(), fingerprints(&first)).await;
    result.unwrap();
    let order: Vec<&str> = second.iter().filter_map(Change::external_id).collect();
    assert_eq!(order, expected);
    assert_eq!(ids(&second, is_unchanged).len(), expected.len());
}

#[tokio::test]
async fn a_changed_url_prefix_resends_unchanged_files() {
    let share = Share::new();
    share.write("HR/plan.txt", "plan");
    share.write("andet.txt", "andet");
    let first_prefix = share.connector("url_prefix = \"https://intra/filer\"");
    let (result, first) = run(first_prefix.as_ref(), HashMap::new()).await;
    result.unwrap();
    let (result, again) = run(first_prefix.as_ref(), fingerprints(&first)).await;
    result.unwrap();
    assert_eq!(ids(&again, is_unchanged), ["HR/plan.txt", "andet.txt"]);

    let moved = share.connector("url_prefix = \"https://intra/drev\"");
    let (result, second) = run(moved.as_ref(), fingerprints(&first)).await;
    result.unwrap();
    assert_eq!(ids(&second, is_upsert), ["HR/plan.txt", "andet.txt"]);
    assert_eq!(
        upserts(&second)["HR/plan.txt"].url.as_deref(),
        Some("https://intra/drev/HR/plan.txt")
    );

    // And back to no prefix at all: the settings digest of a share without URLs again.
    let none = share.connector("");
    let (result, third) = run(none.as_ref(), fingerprints(&second)).await;
    result.unwrap();
    assert_eq!(ids(&third, is_upsert), ["HR/plan.txt", "andet.txt"]);
    assert_eq!(upserts(&third)["andet.txt"].url, None);
}

/// Known documents that take a while to load, and may then fail to.
struct SlowKnown {
    docs: HashMap<String, String>,
    fail: bool,
}

#[async_trait::async_trait]
impl samle_connectors::KnownDocs for SlowKnown {
    async fn load(&self) -> Result<(), ConnectorError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if self.fail {
            return Err(ConnectorError::Internal("cannot read the index".to_owned()));
        }
        Ok(())
    }

    fn find(&self, external_id: &str) -> Option<samle_connectors::KnownDoc<'_>> {
        HashMap::find(&self.docs, external_id)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &str)) {
        for (id, fingerprint) in &self.docs {
            each(id, fingerprint);
        }
    }
}

#[tokio::test]
async fn the_walk_lists_ahead_while_fingerprints_load_and_stops_if_they_cannot() {
    let share = Share::new();
    for i in 0..30 {
        share.write(&format!("mappe-{}/f{i:02}.txt", i % 3), format!("fil {i}"));
    }
    let connector = share.connector("");
    let (result, first) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    let order: Vec<&str> = first.iter().filter_map(Change::external_id).collect();

    // Loaded late: every file is still compared with its fingerprint, in walk order.
    share.write("mappe-0/f00.txt", "ændret og længere");
    let slow = SlowKnown {
        docs: fingerprints(&first),
        fail: false,
    };
    let (result, second) =
        run_known(connector.as_ref(), std::sync::Arc::new(slow), None, false).await;
    result.unwrap();
    assert_complete(&second);
    assert_eq!(
        second
            .iter()
            .filter_map(Change::external_id)
            .collect::<Vec<_>>(),
        order
    );
    assert_eq!(ids(&second, is_upsert), ["mappe-0/f00.txt"]);
    assert_eq!(ids(&second, is_unchanged).len(), 29);

    // Not loadable: the run fails and sends nothing, rather than every file as new.
    let slow = SlowKnown {
        docs: fingerprints(&first),
        fail: true,
    };
    let (result, third) =
        run_known(connector.as_ref(), std::sync::Arc::new(slow), None, false).await;
    assert!(
        matches!(result, Err(ConnectorError::Internal(_))),
        "{result:?}"
    );
    assert!(third.is_empty(), "{third:?}");
}

/// A share larger than one chunk of files and spread over more folders than one chunk may
/// hold, in the order the walk gives: each folder's files by name, where its name sorts.
fn big_share(share: &Share) -> Vec<String> {
    let mut expected = Vec::new();
    for folder in 0..40 {
        for file in 0..4 {
            let id = format!("mappe-{folder:02}/f{file}.txt");
            share.write(&id, format!("fil {folder} {file}"));
            expected.push(id);
        }
    }
    for file in 0..300 {
        let id = format!("rod-{file:03}.txt");
        share.write(&id, format!("rod {file}"));
        expected.push(id);
    }
    expected
}

#[tokio::test]
async fn unchanged_files_travel_together_in_walk_order() {
    let share = Share::new();
    let mut expected = big_share(&share);
    // A file that fails when listed, among files to read: it keeps its place too.
    let outside = share.base().join("outside/hemmelig.txt");
    fs::write(&outside, "hemmelig").unwrap();
    symlink(&outside, share.root().join("mappe-05/g-ude.txt")).unwrap();
    let at = expected
        .iter()
        .position(|id| id == "mappe-05/f3.txt")
        .unwrap()
        + 1;
    expected.insert(at, "mappe-05/g-ude.txt".to_owned());
    let connector = share.connector("");
    let (result, first) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    let order: Vec<&str> = first.iter().filter_map(Change::external_id).collect();
    assert_eq!(order, expected);
    assert_eq!(ids(&first, is_failed), ["mappe-05/g-ude.txt"]);

    // Two edits, far apart: each upsert comes where its file is, between runs of unchanged
    // files sent many to a message: by their places among the known documents where those
    // have places (the sync engine's do), by id where they do not.
    share.write("mappe-03/f1.txt", "ændret og længere");
    share.write("rod-250.txt", "ændret og længere");
    let known = fingerprints(&first);
    let slotted = Arc::new(Slotted::from(known.clone()));
    let plain: Arc<HashMap<String, String>> = Arc::new(known);
    for (known, by_place) in [
        (slotted.clone() as Arc<dyn KnownDocs>, true),
        (plain as Arc<dyn KnownDocs>, false),
    ] {
        let (result, raw) = run_raw(connector.as_ref(), known, None, false).await;
        result.unwrap();
        assert!(
            raw.len() < 20,
            "{} messages for {} files",
            raw.len(),
            expected.len()
        );
        assert!(raw.iter().all(|c| match c {
            Change::UnchangedKnown { .. } => by_place,
            Change::Unchanged { .. } | Change::UnchangedMany { .. } => !by_place,
            _ => true,
        }));
        let singles = slotted.singles(raw);
        assert_complete(&singles);
        let order: Vec<&str> = singles.iter().filter_map(Change::external_id).collect();
        assert_eq!(order, expected);
        assert_eq!(ids(&singles, is_upsert), ["mappe-03/f1.txt", "rod-250.txt"]);
        assert_eq!(ids(&singles, is_failed), ["mappe-05/g-ude.txt"]);
        assert_eq!(ids(&singles, is_unchanged).len(), expected.len() - 3);
    }
}

#[tokio::test]
async fn one_walk_thread_or_many_give_the_same_changes() {
    let share = Share::new();
    let expected = big_share(&share);
    share.write("ødelagt.pdf", b"%PDF-1.4\nnot a pdf");
    let mut runs = Vec::new();
    for threads in [1, 3] {
        let connector = share.connector(&format!("walk_threads = {threads}"));
        let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
        result.unwrap();
        assert_eq!(ids(&changes, is_upsert).len(), expected.len());
        assert_eq!(ids(&changes, is_failed), ["ødelagt.pdf"]);
        runs.push(changes);
    }
    assert_eq!(runs[0], runs[1]);

    for (bad, message) in [
        ("walk_threads = 0", "between 1 and 64, not 0"),
        ("walk_threads = 65", "between 1 and 64, not 65"),
    ] {
        let err = samle_connectors::build("file-share", &share.params(bad), share.base())
            .err()
            .unwrap();
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains(message), "{err}");
    }
}

#[tokio::test]
async fn names_that_are_not_utf8_fail_alone() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let share = Share::new();
    share.write("a.txt", "a");
    share.write("z.txt", "z");
    // Latin-1 names, as an old Samba share may have them: "før.txt" and a folder "mappe-æ".
    fs::write(share.root().join(OsStr::from_bytes(b"f\xf8r.txt")), "x").unwrap();
    let folder = share.root().join(OsStr::from_bytes(b"mappe-\xe6"));
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("inde.txt"), "y").unwrap();

    let connector = share.connector("");
    let (result, changes) = run(connector.as_ref(), HashMap::new()).await;
    result.unwrap();
    assert_complete(&changes);
    assert_eq!(ids(&changes, is_upsert), ["a.txt", "z.txt"]);
    let failed = failures(&changes);
    assert_eq!(
        failed,
        [
            ("f\u{fffd}r.txt", "file name is not valid UTF-8"),
            ("mappe-\u{fffd}/inde.txt", "file name is not valid UTF-8"),
        ]
    );
}
