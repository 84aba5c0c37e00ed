//! Assembling the portal: the state every handler shares, and `samle serve`.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::Context as _;
use base64::Engine as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use samle_index::SearchIndex;
use tower_sessions::cookie::Key;

use crate::config::{Config, DirectoryConfig};
use crate::directory::Directory;
use crate::directory::demo::DemoDirectory;
use crate::directory::ldap::LdapDirectory;
use crate::session_store::SqliteSessionStore;
use crate::store::Store;
use crate::sync::{Indexer, NextRuns, SyncEngine};
use crate::web::search_pool::SearchPool;
use crate::web::templates::Templates;
use crate::web::throttle::LoginThrottle;

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub index: SearchIndex,
    pub store: Store,
    pub directory: Arc<dyn Directory>,
    pub templates: Arc<Templates>,
    pub sync: SyncEngine,
    pub next_runs: NextRuns,
    pub metrics: PrometheusHandle,
    pub started_at: Instant,
    pub login_throttle: Arc<LoginThrottle>,
    /// The threads that run the web layer's searches (see `web::search_pool`).
    pub searches: SearchPool,
}

/// The opened back ends, before the web layer is built on them.
pub struct Backends {
    pub state: AppState,
    pub session_store: SqliteSessionStore,
    pub session_key: Key,
}

/// The Prometheus recorder is process-global; install it once and share the handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (a test harness); the
            // handle then simply renders nothing, which is harmless.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

pub fn open_directory(config: &Config) -> anyhow::Result<Arc<dyn Directory>> {
    match &config.directory {
        DirectoryConfig::Demo { file } => {
            // The directory's errors name the file, line and key already.
            let dir = DemoDirectory::load(file)?;
            Ok(Arc::new(dir))
        }
        DirectoryConfig::Ldap(ldap) => {
            // Opens no connection yet: the first login or lookup does, so a directory that
            // is down at start-up does not stop the portal (search keeps working).
            let dir = LdapDirectory::new(ldap)?;
            tracing::info!(servers = ?ldap.urls.iter().map(|u| u.as_str()).collect::<Vec<_>>(), "LDAP directory configured");
            Ok(Arc::new(dir))
        }
    }
}

/// Opens (or creates) the index, moving a damaged one aside so the portal starts.
pub fn open_index(config: &Config) -> anyhow::Result<SearchIndex> {
    let path = config.index_path();
    let (index, rebuilt) = SearchIndex::open_or_rebuild(&path)
        .with_context(|| format!("cannot open the index at {}", path.display()))?;
    if rebuilt {
        tracing::warn!(path = %path.display(), "the index was damaged and has been set aside; every source will be synced again from the start");
    }
    Ok(index)
}

pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let path = config.database_path();
    // The store's errors name the file already.
    Ok(Store::open(&path)?)
}

impl Backends {
    /// Opens the store, the index (and its single writer), the directory and the templates.
    pub async fn open(config: Config) -> anyhow::Result<Backends> {
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.server.data_dir.display()
            )
        })?;
        let config = Arc::new(config);
        let store = open_store(&config)?;
        let index = open_index(&config)?;
        let indexer = Indexer::start(index.clone(), config.index.writer_heap_bytes).context(
            "cannot take the index writer: is another `samle serve` or `samle sync` running on this data directory?",
        )?;
        // Only the holder of the index writer may declare runs interrupted: a second process
        // would otherwise mark the first one's live run.
        let interrupted = store.mark_interrupted_runs().await?;
        if interrupted > 0 {
            tracing::warn!(
                runs = interrupted,
                "runs interrupted by a previous stop were marked as such"
            );
        }
        let directory = open_directory(&config)?;
        let templates = Arc::new(Templates::new().context("cannot load the templates")?);
        let session_key = session_key(&config)?;
        let sync = SyncEngine::new(config.clone(), indexer, store.clone());
        let login_throttle = Arc::new(LoginThrottle::new(config.auth.throttle));
        let searches = SearchPool::per_core().context("cannot start the search threads")?;
        let state = AppState {
            config,
            index,
            store: store.clone(),
            directory,
            templates,
            sync,
            next_runs: NextRuns::default(),
            metrics: metrics_handle(),
            started_at: Instant::now(),
            login_throttle,
            searches,
        };
        Ok(Backends {
            state,
            session_store: SqliteSessionStore::new(store),
            session_key,
        })
    }
}

/// The key that signs session cookies: from the configuration (environment or file), else
/// generated once and kept in the data directory with owner-only permissions.
fn session_key(config: &Config) -> anyhow::Result<Key> {
    let engine = base64::engine::general_purpose::STANDARD;
    if let Some(secret) = &config.server.session_key {
        let bytes = engine
            .decode(secret.expose())
            .context("the session key is not valid base64")?;
        anyhow::ensure!(
            bytes.len() >= 64,
            "the session key must be at least 64 bytes (base64 of 64 random bytes)"
        );
        return Ok(Key::from(&bytes));
    }
    let path = config.server.data_dir.join("session.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let bytes = engine
            .decode(text.trim())
            .with_context(|| format!("{} is not valid base64", path.display()))?;
        anyhow::ensure!(
            bytes.len() >= 64,
            "{} holds fewer than 64 bytes",
            path.display()
        );
        return Ok(Key::from(&bytes));
    }
    let key = Key::generate();
    write_private(&path, &engine.encode(key.master()))?;
    tracing::info!(path = %path.display(), "generated a new session key");
    Ok(key)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
