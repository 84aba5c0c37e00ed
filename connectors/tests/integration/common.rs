//! Helpers shared by the integration tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use samle_connectors::{
    Change, ChangeSink, Connector, ConnectorError, KnownDoc, KnownDocs, RunContext,
};
use tokio::sync::mpsc;
use url::Url;

/// The bytes of a committed fixture.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Runs a connector to the end with the given known fingerprints and collects its changes.
pub async fn run(
    connector: &dyn Connector,
    known: HashMap<String, String>,
) -> (Result<(), ConnectorError>, Vec<Change>) {
    run_with(connector, known, None, false).await
}

/// [`run`] with a cursor. The known documents have places, as the sync engine gives them.
pub async fn run_with(
    connector: &dyn Connector,
    known: HashMap<String, String>,
    cursor: Option<&str>,
    full: bool,
) -> (Result<(), ConnectorError>, Vec<Change>) {
    let known = Arc::new(Slotted::from(known));
    let (result, raw) = run_raw(connector, known.clone(), cursor, full).await;
    (result, known.singles(raw))
}

/// [`run_with`] with any [`KnownDocs`] (without places), for tests that watch or slow down
/// how a connector reads them.
pub async fn run_known(
    connector: &dyn Connector,
    known: Arc<dyn KnownDocs>,
    cursor: Option<&str>,
    full: bool,
) -> (Result<(), ConnectorError>, Vec<Change>) {
    let (result, raw) = run_raw(connector, known, cursor, full).await;
    (result, Slotted::default().singles(raw))
}

/// Runs a connector to the end and collects its messages as sent.
pub async fn run_raw(
    connector: &dyn Connector,
    known: Arc<dyn KnownDocs>,
    cursor: Option<&str>,
    full: bool,
) -> (Result<(), ConnectorError>, Vec<Change>) {
    // A small channel, so that back-pressure is exercised too.
    let (tx, mut rx) = mpsc::channel(2);
    let ctx = RunContext {
        source_id: "test".to_owned(),
        cursor: cursor.map(str::to_owned),
        full,
        known,
        sink: ChangeSink::new(tx),
    };
    let collect = async {
        let mut changes = Vec::new();
        while let Some(change) = rx.recv().await {
            changes.push(change);
        }
        changes
    };
    tokio::join!(connector.run(ctx), collect)
}

/// Known documents with places, the way the sync engine's have them: a connector may report
/// them unchanged by place ([`Change::UnchangedKnown`]). Places follow the ids' order.
#[derive(Default)]
pub struct Slotted {
    ids: Vec<String>,
    docs: HashMap<String, (u32, String)>,
}

impl From<HashMap<String, String>> for Slotted {
    fn from(known: HashMap<String, String>) -> Self {
        let mut pairs: Vec<(String, String)> = known.into_iter().collect();
        pairs.sort();
        let mut slotted = Slotted::default();
        for (slot, (id, fingerprint)) in pairs.into_iter().enumerate() {
            slotted.ids.push(id.clone());
            slotted
                .docs
                .insert(id, (u32::try_from(slot).unwrap(), fingerprint));
        }
        slotted
    }
}

impl Slotted {
    /// The messages as single changes, one per document: the tests look at what is said
    /// about each, not at how the connector packs it (see
    /// `file_share::unchanged_files_travel_together_in_walk_order`). A slot is given back
    /// as its id; one these documents do not have fails the test.
    pub fn singles(&self, raw: Vec<Change>) -> Vec<Change> {
        let mut changes = Vec::new();
        for change in raw {
            match change {
                Change::UnchangedKnown { slots } => {
                    changes.extend(slots.into_iter().map(|slot| {
                        Change::Unchanged {
                            external_id: self
                                .ids
                                .get(slot as usize)
                                .unwrap_or_else(|| panic!("slot {slot} of {}", self.ids.len()))
                                .clone(),
                        }
                    }));
                }
                other => changes.extend(other.into_singles()),
            }
        }
        changes
    }
}

impl KnownDocs for Slotted {
    fn find(&self, external_id: &str) -> Option<KnownDoc<'_>> {
        self.docs
            .get(external_id)
            .map(|(slot, fingerprint)| KnownDoc {
                fingerprint: Some(fingerprint),
                slot: Some(*slot),
            })
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &str)) {
        for (id, (_, fingerprint)) in &self.docs {
            each(id, fingerprint);
        }
    }
}

/// The fingerprints of every upserted document, as `src/` would store them.
pub fn fingerprints(changes: &[Change]) -> HashMap<String, String> {
    changes
        .iter()
        .filter_map(|change| match change {
            Change::Upsert(doc) => Some((doc.external_id.clone(), doc.fingerprint.clone()?)),
            _ => None,
        })
        .collect()
}

/// A temporary folder holding the share's root (`share/`) and a place outside it
/// (`outside/`).
pub struct Share {
    pub dir: tempfile::TempDir,
}

impl Share {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("share")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        Self { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file under the root, creating folders as needed.
    pub fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Builds a file-share connector from the lines of a `[sources.file-share]` table; `root`
    /// is added unless the lines set it.
    pub fn connector(&self, lines: &str) -> Box<dyn Connector> {
        samle_connectors::build("file-share", &self.params(lines), self.base()).unwrap()
    }

    pub fn params(&self, lines: &str) -> samle_connectors::ConnectorParams {
        let root = if lines.contains("root =") {
            String::new()
        } else {
            format!("root = {:?}\n", self.root().to_str().unwrap())
        };
        toml::from_str(&format!("[file-share]\n{root}{lines}")).unwrap()
    }
}

/// The cursor of a run's last checkpoint (every connector ends a successful run with one).
pub fn last_cursor(changes: &[Change]) -> String {
    let cursor = changes.iter().rev().find_map(Change::cursor);
    cursor.expect("a run must end with a checkpoint").to_owned()
}

/// The upserted documents by id.
pub fn upserts(changes: &[Change]) -> HashMap<String, samle_connectors::Document> {
    changes
        .iter()
        .filter_map(|change| match change {
            Change::Upsert(doc) => Some((
                doc.external_id.clone(),
                samle_connectors::Document::clone(doc),
            )),
            _ => None,
        })
        .collect()
}

/// The ids of the changes matching `pick`, sorted.
pub fn ids(changes: &[Change], pick: fn(&Change) -> bool) -> Vec<String> {
    let mut ids: Vec<String> = changes
        .iter()
        .filter(|c| pick(c))
        .filter_map(|c| c.external_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// The failures of a run as (id, error), in order.
pub fn failures(changes: &[Change]) -> Vec<(&str, &str)> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Failed { external_id, error } => Some((external_id.as_str(), error.as_str())),
            _ => None,
        })
        .collect()
}

pub fn is_upsert(change: &Change) -> bool {
    matches!(change, Change::Upsert(_))
}

pub fn is_unchanged(change: &Change) -> bool {
    matches!(change, Change::Unchanged { .. })
}

pub fn is_failed(change: &Change) -> bool {
    matches!(change, Change::Failed { .. })
}

/// An HTTPS server on 127.0.0.1 whose certificate comes from a CA made for it.
pub struct TlsServer {
    /// `https://127.0.0.1:PORT/`
    pub url: Url,
    /// The test CA's certificate, for `http.ca_file`.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// Serves `router` over HTTPS (HTTP/1.1 and HTTP/2) on 127.0.0.1 with a certificate for
/// `127.0.0.1` and `localhost`, issued by a fresh test CA written to `ca_file`.
pub async fn serve_tls(router: axum::Router) -> TlsServer {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Samle test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: not an error here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    TlsServer {
        url: Url::parse(&format!("https://{addr}/")).unwrap(),
        ca_file,
        _dir: dir,
    }
}

/// Builds a `kind` connector from each `[kind]` table body and checks that building fails
/// with a configuration error containing the expected text.
pub fn assert_config_errors(kind: &str, cases: &[(&str, &str)]) {
    for (table, expected) in cases {
        let params: samle_connectors::ConnectorParams =
            toml::from_str(&format!("[{kind}]\n{table}")).unwrap();
        let err = samle_connectors::build(kind, &params, Path::new("/"))
            .err()
            .unwrap_or_else(|| panic!("{table}: building must fail"));
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains(expected), "{table}: {err}");
    }
}
