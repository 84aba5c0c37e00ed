//! Building connectors from configuration.

use std::path::Path;

use samle_connectors::{ConnectorParams, KINDS, build};

use crate::common::Share;

fn build_error(kind: &str, toml_text: &str) -> String {
    let params: ConnectorParams = toml::from_str(toml_text).unwrap();
    let err = build(kind, &params, Path::new("/"))
        .err()
        .expect("build must fail");
    assert!(err.is_config(), "{err}");
    err.to_string()
}

#[test]
fn configuration_mistakes_are_named() {
    let cases = [
        (
            "sharepoint",
            "",
            "invalid configuration: unknown connector kind \"sharepoint\"; known kinds: file-share",
        ),
        (
            "file-share",
            "",
            "invalid configuration: kind \"file-share\" needs a [sources.file-share] table",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\ninclude = [\"HR/[abc\"]",
            "invalid configuration: invalid glob \"HR/[abc\" in include",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\n[[file-share.access]]\npath = \"{Ledelse\"\nprincipals = []",
            "invalid configuration: invalid glob \"{Ledelse\" in access",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\ndefault_access = [\" \"]",
            "invalid configuration: empty principal in default_access",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\nurl_prefix = \"javascript:alert(1)//\"",
            "invalid configuration: file-share url_prefix \"javascript:alert(1)//\" must start with",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\nmax_file_bytes = 0",
            "invalid configuration: file-share max_file_bytes must be greater than 0",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"\"",
            "invalid configuration: file-share root must not be empty",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\nkind = \"News\"",
            "invalid configuration: file-share kind \"News\" must be lowercase letters a-z, digits and -",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\nkind = \"\"",
            "invalid configuration: file-share kind \"\" must be",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\nkind = \"ny hed\"",
            "invalid configuration: file-share kind \"ny hed\" must be",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\nkind = \"nyhed_er\"",
            "invalid configuration: file-share kind \"nyhed_er\" must be",
        ),
        (
            "file-share",
            "[file-share]\nroot = \"/srv\"\nkind = \"nyhéd\"",
            "invalid configuration: file-share kind \"nyhéd\" must be",
        ),
    ];
    for (kind, toml_text, expected) in cases {
        let message = build_error(kind, toml_text);
        assert!(
            message.starts_with(expected),
            "got {message:?}, expected {expected:?}"
        );
    }
    assert_eq!(
        KINDS,
        ["file-share", "feed", "website", "wordpress", "mediawiki"]
    );
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let cases = [
        (
            "[file-share]\nroot = \"/srv\"\nincludes = [\"*.pdf\"]",
            "includes",
        ),
        (
            "[file-share]\nroot = \"/srv\"\n[[file-share.access]]\npath = \"a\"\nprincipal = []",
            "principal",
        ),
        ("[file_share]\nroot = \"/srv\"", "file_share"),
    ];
    for (toml_text, key) in cases {
        let err = toml::from_str::<ConnectorParams>(toml_text).unwrap_err();
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn valid_kinds_are_accepted() {
    for kind in ["news", "it-guide", "v2", "a"] {
        let params: ConnectorParams =
            toml::from_str(&format!("[file-share]\nroot = \"/srv\"\nkind = \"{kind}\"")).unwrap();
        assert!(
            build("file-share", &params, Path::new("/")).is_ok(),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn relative_roots_are_resolved_against_the_base_dir() {
    let share = Share::new();
    share.write("a.txt", "a");
    let connector = share.connector("root = \"share\"");
    assert_eq!(connector.kind(), "file-share");
    let notes = connector.check().await.unwrap();
    assert!(
        notes[0].ends_with("is readable, 1 files match"),
        "{notes:?}"
    );
}

/// Every commented example in `config/examples/` is a valid table of its kind and builds,
/// except for what only a real installation has: credentials in the environment, CA files.
#[test]
fn every_example_configuration_builds() {
    for (file, kind, count) in [
        ("feeds.toml", "feed", 4),
        ("website.toml", "website", 3),
        ("wordpress.toml", "wordpress", 3),
        ("mediawiki.toml", "mediawiki", 2),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config/examples")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let value: toml::Table = toml::from_str(&text).unwrap();
        let sources = value["sources"].as_array().unwrap();
        assert_eq!(sources.len(), count, "{file}");
        for source in sources {
            assert_eq!(source["kind"].as_str(), Some(kind), "{file}");
            let mut table = toml::Table::new();
            table.insert(kind.to_owned(), source[kind].clone());
            let params: ConnectorParams = table.try_into().unwrap();
            match build(kind, &params, Path::new("/")) {
                Ok(connector) => assert_eq!(connector.kind(), kind),
                Err(e) => assert!(
                    e.to_string().contains("SAMLE_") || e.to_string().contains("ca_file"),
                    "{file}: {e}"
                ),
            }
        }
    }
}
