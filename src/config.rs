//! Configuration: one TOML file (`config/samle.toml` by default), validated into [`Config`].
//!
//! Precedence is defaults < TOML < `SAMLE_*` environment variables < command line. The
//! environment is passed in as a map so tests can set it without touching the process.
//! Every error names the file, the line and the key, and says what was expected.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use samle_connectors::ConnectorParams;
use serde::Deserialize;
use toml::Spanned;

/// The portal's whole configuration after validation.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file this was read from (for messages).
    pub file: PathBuf,
    /// Directory relative paths inside the file are resolved against.
    pub base_dir: PathBuf,
    pub server: ServerConfig,
    pub directory: DirectoryConfig,
    pub auth: AuthConfig,
    pub index: IndexConfig,
    pub sources: Vec<SourceConfig>,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The address users reach the portal at; an `https://` URL makes cookies `Secure`.
    pub public_url: Option<url::Url>,
    pub default_language: String,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    /// A 64-byte key (base64) that signs session cookies, from `SAMLE_SESSION_KEY` or a file.
    pub session_key: Option<Secret>,
    pub log: String,
}

/// A secret read from the environment or a file. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug)]
pub enum DirectoryConfig {
    /// Users and groups from a TOML file with argon2 hashes: for trying Samle without LDAP.
    Demo { file: PathBuf },
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Groups whose members may log in; empty means every directory user.
    pub employee_groups: Vec<String>,
    pub publisher_groups: Vec<String>,
    pub admin_groups: Vec<String>,
    /// How often a logged-in user's groups are re-read from the directory.
    pub principal_refresh: Duration,
}

#[derive(Clone, Debug)]
pub struct IndexConfig {
    pub writer_heap_bytes: usize,
    /// Documents per commit during a sync.
    pub commit_every: usize,
    /// Default deletion guard: the largest share of a source one sync may delete.
    pub max_delete_share: f64,
}

#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub schedule: Schedule,
    pub enabled: bool,
    pub run_on_start: bool,
    pub max_delete_share: f64,
    pub params: ConnectorParams,
}

/// When a source runs.
#[derive(Clone, Debug)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>, String),
    Manual,
}

impl Schedule {
    /// Parses `every 30m`, `manual`, or a cron expression (`0 */2 * * *`).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("manual") {
            return Ok(Schedule::Manual);
        }
        if let Some(rest) = text.strip_prefix("every ") {
            let d = humantime::parse_duration(rest.trim())
                .map_err(|e| format!("`{rest}` is not a duration ({e}); try `every 30m`"))?;
            if d < Duration::from_secs(10) {
                return Err("the interval must be at least 10 seconds".into());
            }
            return Ok(Schedule::Every(d));
        }
        croner::Cron::from_str(text)
            .map(|c| Schedule::Cron(Box::new(c), text.to_string()))
            .map_err(|e| {
                format!(
                    "`{text}` is neither `every <duration>`, `manual` nor a cron expression ({e})"
                )
            })
    }

    /// The next time the source should run after `now`.
    pub fn next_after(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Schedule::Every(d) => chrono::Duration::from_std(*d).ok().map(|d| now + d),
            Schedule::Cron(cron, _) => cron
                .find_next_occurrence(&now.with_timezone(&chrono::Local), false)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc)),
            Schedule::Manual => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(d) => format!("every {}", humantime::format_duration(*d)),
            Schedule::Cron(_, text) => text.clone(),
            Schedule::Manual => "manual".into(),
        }
    }
}

/// A configuration error that names where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Command-line values that override the file and the environment.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

// ---- the raw, file-shaped structures -------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    directory: Option<RawDirectory>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    index: RawIndex,
    #[serde(default)]
    sources: Vec<RawSource>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    data_dir: Option<String>,
    public_url: Option<Spanned<String>>,
    default_language: Option<Spanned<String>>,
    session_idle_timeout: Option<Spanned<String>>,
    session_absolute_timeout: Option<Spanned<String>>,
    session_key_file: Option<String>,
    log: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    kind: Spanned<String>,
    file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    employee_groups: Vec<String>,
    #[serde(default)]
    publisher_groups: Vec<String>,
    #[serde(default)]
    admin_groups: Vec<String>,
    principal_refresh: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    writer_heap_mb: Option<Spanned<usize>>,
    commit_every: Option<Spanned<usize>>,
    max_delete_share: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    id: Spanned<String>,
    name: Option<String>,
    kind: Spanned<String>,
    schedule: Option<Spanned<String>>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "yes")]
    run_on_start: bool,
    max_delete_share: Option<Spanned<f64>>,
    // One sub-table per connector kind, typed here (not as a loose `toml::Value`) so that
    // errors inside it keep their exact line and key.
    #[serde(rename = "file-share")]
    file_share: Option<samle_connectors::file_share::FileShareParams>,
}

fn yes() -> bool {
    true
}

impl Config {
    /// Reads and validates the configuration file.
    pub fn load(
        file: &Path,
        env: &BTreeMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Config::from_str(&text, file, env, overrides)
    }

    /// Validates configuration text; `file` is used for messages and relative paths.
    pub fn from_str(
        text: &str,
        file: &Path,
        env: &BTreeMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let ctx = ErrCtx { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| ctx.toml_error(&e))?;
        let base_dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));

        let server = Self::server(&ctx, raw.server, env, overrides)?;
        let directory = match raw.directory {
            None => DirectoryConfig::Demo {
                file: base_dir.join("demo/directory.toml"),
            },
            Some(d) => match d.kind.get_ref().as_str() {
                "demo" => DirectoryConfig::Demo {
                    file: base_dir.join(d.file.as_deref().unwrap_or("demo/directory.toml")),
                },
                other => {
                    return Err(ctx.at(
                        d.kind.span(),
                        "directory.kind",
                        format!("unknown directory kind `{other}`; expected `demo`"),
                    ));
                }
            },
        };
        let auth = AuthConfig {
            employee_groups: raw.auth.employee_groups,
            publisher_groups: raw.auth.publisher_groups,
            admin_groups: raw.auth.admin_groups,
            principal_refresh: match raw.auth.principal_refresh {
                Some(s) => ctx.duration(&s, "auth.principal_refresh")?,
                None => Duration::from_secs(15 * 60),
            },
        };
        let max_delete_share = match raw.index.max_delete_share {
            Some(s) => ctx.share(&s, "index.max_delete_share")?,
            None => 0.5,
        };
        let index = IndexConfig {
            writer_heap_bytes: match raw.index.writer_heap_mb {
                Some(mb) if *mb.get_ref() < 15 || *mb.get_ref() > 4096 => {
                    return Err(ctx.at(
                        mb.span(),
                        "index.writer_heap_mb",
                        "expected a number of megabytes from 15 to 4096".into(),
                    ));
                }
                Some(mb) => mb.into_inner() * 1024 * 1024,
                None => 64 * 1024 * 1024,
            },
            commit_every: match raw.index.commit_every {
                Some(n) if *n.get_ref() == 0 => {
                    return Err(ctx.at(
                        n.span(),
                        "index.commit_every",
                        "expected a positive number of documents".into(),
                    ));
                }
                Some(n) => n.into_inner(),
                None => 1000,
            },
            max_delete_share,
        };

        let mut sources = Vec::new();
        let mut seen_ids = HashSet::new();
        for (i, s) in raw.sources.into_iter().enumerate() {
            let key = |k: &str| format!("sources[{i}].{k}");
            let id = s.id.get_ref().clone();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                return Err(ctx.at(
                    s.id.span(),
                    &key("id"),
                    format!("`{id}` is not a valid source id: use lowercase letters, digits, `-` and `_`"),
                ));
            }
            if !seen_ids.insert(id.clone()) {
                return Err(ctx.at(
                    s.id.span(),
                    &key("id"),
                    format!("the source id `{id}` is used twice"),
                ));
            }
            let kind = s.kind.get_ref().clone();
            if !samle_connectors::KINDS.contains(&kind.as_str()) {
                return Err(ctx.at(
                    s.kind.span(),
                    &key("kind"),
                    format!(
                        "unknown connector kind `{kind}`; expected one of: {}",
                        samle_connectors::KINDS.join(", ")
                    ),
                ));
            }
            let schedule = match &s.schedule {
                Some(sched) => Schedule::parse(sched.get_ref())
                    .map_err(|m| ctx.at(sched.span(), &key("schedule"), m))?,
                None => Schedule::Every(Duration::from_secs(30 * 60)),
            };
            let max_delete_share = match &s.max_delete_share {
                Some(v) => ctx.share(v, &key("max_delete_share"))?,
                None => max_delete_share,
            };
            let params = ConnectorParams {
                file_share: s.file_share,
            };
            let params = ctx.params(params, &kind, &key("kind"), s.kind.span())?;
            sources.push(SourceConfig {
                name: s.name.unwrap_or_else(|| id.clone()),
                id,
                kind,
                schedule,
                enabled: s.enabled,
                run_on_start: s.run_on_start,
                max_delete_share,
                params,
            });
        }

        Ok(Config {
            file: file.to_path_buf(),
            base_dir,
            server,
            directory,
            auth,
            index,
            sources,
        })
    }

    fn server(
        ctx: &ErrCtx<'_>,
        raw: RawServer,
        env: &BTreeMap<String, String>,
        overrides: &Overrides,
    ) -> Result<ServerConfig, ConfigError> {
        let env_err = |var: &str, message: String| ConfigError {
            file: PathBuf::from(format!("environment variable {var}")),
            line: None,
            column: None,
            key: None,
            message,
        };
        let listen = if let Some(l) = overrides.listen {
            l
        } else if let Some(v) = env.get("SAMLE_LISTEN") {
            v.parse().map_err(|e| {
                env_err(
                    "SAMLE_LISTEN",
                    format!("`{v}` is not an address like 127.0.0.1:8080 ({e})"),
                )
            })?
        } else if let Some(l) = &raw.listen {
            l.get_ref().parse().map_err(|e| {
                ctx.at(
                    l.span(),
                    "server.listen",
                    format!(
                        "`{}` is not an address like 127.0.0.1:8080 ({e})",
                        l.get_ref()
                    ),
                )
            })?
        } else {
            SocketAddr::from(([127, 0, 0, 1], 8080))
        };
        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env.get("SAMLE_DATA_DIR").map(PathBuf::from))
            .or_else(|| raw.data_dir.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("data"));
        let public_url = if let Some(v) = env.get("SAMLE_PUBLIC_URL") {
            Some(url::Url::parse(v).map_err(|e| {
                env_err(
                    "SAMLE_PUBLIC_URL",
                    format!("`{v}` is not an absolute URL ({e})"),
                )
            })?)
        } else if let Some(u) = &raw.public_url {
            Some(url::Url::parse(u.get_ref()).map_err(|e| {
                ctx.at(
                    u.span(),
                    "server.public_url",
                    format!("`{}` is not an absolute URL ({e})", u.get_ref()),
                )
            })?)
        } else {
            None
        };
        let default_language = match &raw.default_language {
            Some(l) if l.get_ref() == "da" || l.get_ref() == "en" => l.get_ref().clone(),
            Some(l) => {
                return Err(ctx.at(
                    l.span(),
                    "server.default_language",
                    format!("`{}` is not supported; expected `da` or `en`", l.get_ref()),
                ));
            }
            None => "da".into(),
        };
        let session_idle_timeout = match &raw.session_idle_timeout {
            Some(s) => ctx.duration(s, "server.session_idle_timeout")?,
            None => Duration::from_secs(2 * 3600),
        };
        let session_absolute_timeout = match &raw.session_absolute_timeout {
            Some(s) => ctx.duration(s, "server.session_absolute_timeout")?,
            None => Duration::from_secs(12 * 3600),
        };
        let session_key = if let Some(v) = env.get("SAMLE_SESSION_KEY") {
            Some(Secret(v.trim().to_string()))
        } else if let Some(f) = &raw.session_key_file {
            let path = ctx.file.parent().unwrap_or_else(|| Path::new(".")).join(f);
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                file: ctx.file.to_path_buf(),
                line: None,
                column: None,
                key: Some("server.session_key_file".into()),
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            Some(Secret(text.trim().to_string()))
        } else {
            None
        };
        let log = env
            .get("SAMLE_LOG")
            .cloned()
            .or(raw.log)
            .unwrap_or_else(|| "info".into());
        Ok(ServerConfig {
            listen,
            data_dir,
            public_url,
            default_language,
            session_idle_timeout,
            session_absolute_timeout,
            session_key,
            log,
        })
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.server.data_dir.join("samle.db")
    }

    /// The tantivy index directory.
    pub fn index_path(&self) -> PathBuf {
        self.server.data_dir.join("index")
    }

    pub fn source(&self, id: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.id == id)
    }
}

struct ErrCtx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl ErrCtx<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
            before[nl + 1..].chars().count()
        }) + 1;
        (line, col)
    }

    fn at(&self, span: std::ops::Range<usize>, key: &str, message: String) -> ConfigError {
        let (line, col) = self.line_col(span.start);
        ConfigError {
            file: self.file.to_path_buf(),
            line: Some(line),
            column: Some(col),
            key: Some(key.to_string()),
            message,
        }
    }

    /// Turns toml's error (message and span) into one that also names the key: for an
    /// unknown field the span covers the key itself; for a bad value, the key is what stands
    /// before `=` on that line.
    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let message = e.message().trim().to_string();
        let Some(span) = e.span() else {
            return ConfigError {
                file: self.file.to_path_buf(),
                line: None,
                column: None,
                key: None,
                message,
            };
        };
        let (line, col) = self.line_col(span.start);
        let line_text = self.text.lines().nth(line - 1).unwrap_or("");
        let spanned = self.text.get(span.clone()).unwrap_or("").trim();
        let key = if message.starts_with("unknown field") || message.starts_with("duplicate key") {
            Some(spanned.trim_matches(['[', ']', ' ']).to_string())
        } else if let Some((k, _)) = line_text.split_once('=') {
            Some(k.trim().to_string())
        } else if !spanned.is_empty() && spanned.len() < 80 {
            Some(spanned.trim_matches(['[', ']', ' ']).to_string())
        } else {
            None
        };
        ConfigError {
            file: self.file.to_path_buf(),
            line: Some(line),
            column: Some(col),
            key: key.filter(|k| !k.is_empty()),
            message,
        }
    }

    fn duration(&self, s: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(s.get_ref()).map_err(|e| {
            self.at(
                s.span(),
                key,
                format!(
                    "`{}` is not a duration like `15m` or `8h` ({e})",
                    s.get_ref()
                ),
            )
        })
    }

    fn share(&self, s: &Spanned<f64>, key: &str) -> Result<f64, ConfigError> {
        let v = *s.get_ref();
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(self.at(
                s.span(),
                key,
                format!("{v} is not a share; expected a number from 0.0 to 1.0"),
            ))
        }
    }

    /// Checks that the source has the table its kind needs.
    fn params(
        &self,
        params: ConnectorParams,
        kind: &str,
        key: &str,
        kind_span: std::ops::Range<usize>,
    ) -> Result<ConnectorParams, ConfigError> {
        let present = match kind {
            "file-share" => params.file_share.is_some(),
            _ => false,
        };
        if present {
            Ok(params)
        } else {
            Err(self.at(
                kind_span,
                key,
                format!("a source of kind `{kind}` needs a `[sources.{kind}]` table after it"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(
            text,
            Path::new("conf/samle.toml"),
            &BTreeMap::new(),
            &Overrides::default(),
        )
    }

    const SOURCE: &str = r#"
[[sources]]
id = "haandbog"
kind = "file-share"

[sources.file-share]
root = "demo"
"#;

    #[test]
    fn the_shipped_reference_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samle.toml");
        let c = Config::load(&path, &BTreeMap::new(), &Overrides::default()).unwrap();
        assert!(c.sources.len() >= 5);
        assert!(matches!(c.directory, DirectoryConfig::Demo { .. }));
    }

    #[test]
    fn defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.data_dir, PathBuf::from("data"));
        assert_eq!(c.server.default_language, "da");
        assert_eq!(c.index.max_delete_share, 0.5);
        assert!(c.sources.is_empty());
        let c = parse(SOURCE).unwrap();
        assert_eq!(c.sources[0].name, "haandbog");
        assert!(c.sources[0].params.file_share.is_some());
    }

    /// Each broken file must name the line and the key, and say what is wrong.
    #[test]
    fn errors_name_line_and_key() {
        let cases: &[(&str, usize, &str, &str)] = &[
            (
                "[server]\nlisten = \"nowhere\"\n",
                2,
                "server.listen",
                "not an address",
            ),
            (
                "[server]\nlsiten = \"127.0.0.1:1\"\n",
                2,
                "lsiten",
                "unknown field",
            ),
            (
                "[index]\nmax_delete_share = 2.0\n",
                2,
                "index.max_delete_share",
                "0.0 to 1.0",
            ),
            (
                "[index]\nwriter_heap_mb = 1\n",
                2,
                "index.writer_heap_mb",
                "15 to 4096",
            ),
            (
                "[server]\nsession_idle_timeout = \"soon\"\n",
                2,
                "server.session_idle_timeout",
                "duration",
            ),
            (
                "[server]\ndefault_language = \"de\"\n",
                2,
                "server.default_language",
                "`da` or `en`",
            ),
            (
                "[index]\ncommit_every = \"many\"\n",
                2,
                "commit_every",
                "invalid type",
            ),
            (
                "\n[[sources]]\nid = \"x\"\nkind = \"sharepoint\"\n[sources.file-share]\nroot = \"a\"\n",
                4,
                "sources[0].kind",
                "unknown connector kind",
            ),
            (
                "[[sources]]\nid = \"Bad Id\"\nkind = \"file-share\"\n[sources.file-share]\nroot = \"a\"\n",
                2,
                "sources[0].id",
                "not a valid source id",
            ),
            (
                "[[sources]]\nid = \"x\"\nkind = \"file-share\"\n",
                3,
                "sources[0].kind",
                "needs a `[sources.file-share]` table",
            ),
            (
                "[[sources]]\nid = \"x\"\nkind = \"file-share\"\nschedule = \"sometimes\"\n[sources.file-share]\nroot = \"a\"\n",
                4,
                "sources[0].schedule",
                "cron",
            ),
            (
                "[[sources]]\nid = \"x\"\nkind = \"file-share\"\n[sources.file-share]\nroot = \"a\"\nrot = \"b\"\n",
                6,
                "rot",
                "unknown field",
            ),
            (
                "[[sources]]\nid = \"x\"\nkind = \"file-share\"\n[sources.file-share]\nroot = \"a\"\n[[sources]]\nid = \"x\"\nkind = \"file-share\"\n[sources.file-share]\nroot = \"a\"\n",
                7,
                "sources[1].id",
                "used twice",
            ),
            (
                "[directory]\nkind = \"ldap\"\n",
                2,
                "directory.kind",
                "unknown directory kind",
            ),
            ("[server\nlisten = 1\n", 1, "", "expected"),
        ];
        for (text, line, key, needle) in cases {
            let e = parse(text).expect_err(text);
            let shown = e.to_string();
            assert_eq!(e.line, Some(*line), "{text:?} → {shown}");
            assert!(shown.starts_with("conf/samle.toml:"), "{shown}");
            if !key.is_empty() {
                assert!(
                    e.key.as_deref().is_some_and(|k| k.contains(key)),
                    "{text:?}: key {:?} should contain {key}; {shown}",
                    e.key
                );
            }
            assert!(
                shown.to_lowercase().contains(&needle.to_lowercase()),
                "{text:?}: {shown} should say {needle}"
            );
        }
    }

    #[test]
    fn environment_and_command_line_override_the_file() {
        let text = "[server]\nlisten = \"127.0.0.1:1000\"\ndata_dir = \"fromfile\"\n";
        let mut env = BTreeMap::new();
        env.insert("SAMLE_LISTEN".to_string(), "127.0.0.1:2000".to_string());
        env.insert("SAMLE_DATA_DIR".to_string(), "fromenv".to_string());
        env.insert("SAMLE_SESSION_KEY".to_string(), "c2VjcmV0".to_string());
        let c = Config::from_str(text, Path::new("s.toml"), &env, &Overrides::default()).unwrap();
        assert_eq!(c.server.listen.port(), 2000);
        assert_eq!(c.server.data_dir, PathBuf::from("fromenv"));
        assert_eq!(
            c.server.session_key.as_ref().map(Secret::expose),
            Some("c2VjcmV0")
        );
        assert!(
            !format!("{:?}", c.server).contains("c2VjcmV0"),
            "secrets must not be printed"
        );
        let o = Overrides {
            listen: Some("127.0.0.1:3000".parse().unwrap()),
            data_dir: Some(PathBuf::from("fromcli")),
        };
        let c = Config::from_str(text, Path::new("s.toml"), &env, &o).unwrap();
        assert_eq!(c.server.listen.port(), 3000);
        assert_eq!(c.server.data_dir, PathBuf::from("fromcli"));
        env.insert("SAMLE_LISTEN".to_string(), "bad".to_string());
        let e =
            Config::from_str(text, Path::new("s.toml"), &env, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("SAMLE_LISTEN"), "{e}");
    }

    #[test]
    fn schedules() {
        assert!(
            matches!(Schedule::parse("every 15m"), Ok(Schedule::Every(d)) if d.as_secs() == 900)
        );
        assert!(matches!(Schedule::parse("manual"), Ok(Schedule::Manual)));
        assert!(matches!(
            Schedule::parse("0 */2 * * *"),
            Ok(Schedule::Cron(..))
        ));
        assert!(Schedule::parse("every 1s").is_err());
        assert!(Schedule::parse("every fortnight").is_err());
        let now = chrono::Utc::now();
        let next = Schedule::parse("every 1h")
            .unwrap()
            .next_after(now)
            .unwrap();
        assert_eq!((next - now).num_minutes(), 60);
        let next = Schedule::parse("*/5 * * * *")
            .unwrap()
            .next_after(now)
            .unwrap();
        assert!(next > now && (next - now).num_minutes() <= 5);
    }
}
