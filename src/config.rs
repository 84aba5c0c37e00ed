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
    /// Reverse proxies whose `X-Forwarded-For` is believed (for throttling and audit).
    pub trusted_proxies: Vec<std::net::IpAddr>,
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
    /// An LDAP directory: OpenLDAP, Active Directory or another LDAP server.
    Ldap(Box<LdapConfig>),
}

/// Which server an LDAP directory is: it chooses the defaults of the other settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdapFlavour {
    /// `kind = "openldap"`: `inetOrgPerson` users found by `uid` or `mail`, groups found by
    /// searching `groupOfNames`/`groupOfUniqueNames` (OpenLDAP's `memberOf` is not transitive).
    OpenLdap,
    /// `kind = "active-directory"`: users found by `sAMAccountName` or `userPrincipalName`,
    /// every group (nesting included) found by the in-chain matching rule.
    ActiveDirectory,
    /// `kind = "ldap"`: any other LDAP server; the defaults are OpenLDAP's (the standard
    /// `inetOrgPerson` schema), and every setting can be changed.
    Generic,
}

/// How a user's groups are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdapGroupMode {
    /// The user's `memberOf` values; nesting is walked through the groups' own `memberOf`.
    MemberOf,
    /// A search for groups whose `member`/`uniqueMember` is the user's DN; nesting is walked
    /// by searching again for groups that contain the groups found.
    Search,
    /// Active Directory's `LDAP_MATCHING_RULE_IN_CHAIN`: one search returns every group,
    /// nesting included, so the portal expands nothing itself.
    InChain,
}

/// The validated settings of an LDAP directory. Filters are templates: `{login}`, `{id}` and
/// `{dn}` are replaced by the RFC 4515-escaped value when used.
#[derive(Clone, Debug)]
pub struct LdapConfig {
    pub flavour: LdapFlavour,
    /// Tried in order until one answers: `ldap://host[:port]` or `ldaps://host[:port]`.
    pub urls: Vec<url::Url>,
    /// Upgrade `ldap://` connections with StartTLS before anything is sent.
    pub starttls: bool,
    /// PEM file with the certificate authorities that signed the servers' certificates;
    /// without it the system's certificate store is used.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// The longest the directory may take to answer one operation.
    pub timeout: Duration,
    /// How many service-account connections are kept for searches.
    pub pool_size: usize,
    /// The service account that searches; `None` searches anonymously.
    pub bind_dn: Option<String>,
    pub bind_password: Option<Secret>,
    pub base_dn: String,
    pub user_base: String,
    /// Finds the entry a login name belongs to (`{login}`).
    pub user_filter: String,
    /// Finds the entry of a known user id (`{id}`), for the periodic refresh.
    pub lookup_filter: String,
    /// The attribute whose value, in lower case, is the portal's user id.
    pub id_attribute: String,
    /// The first of these that the entry has is the display name.
    pub display_name_attributes: Vec<String>,
    pub mail_attribute: String,
    pub department_attribute: String,
    pub title_attribute: String,
    pub groups: LdapGroupMode,
    pub group_base: String,
    /// Finds the groups whose member is `{dn}` (modes `search` and `in-chain`).
    pub group_filter: String,
    /// The group attribute that names the group in the portal (principals `group:<name>`).
    pub group_name_attribute: String,
    /// How many levels of nesting the portal follows when it expands groups itself.
    pub group_nesting_depth: usize,
    /// Entries per page of a paged search.
    pub page_size: u32,
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Groups whose members may log in; empty means every directory user.
    pub employee_groups: Vec<String>,
    pub publisher_groups: Vec<String>,
    pub admin_groups: Vec<String>,
    /// How often a logged-in user's groups are re-read from the directory.
    pub principal_refresh: Duration,
    /// Login attempts allowed per account and per client address.
    pub throttle: crate::web::throttle::ThrottlePolicy,
    /// Extra principals for members of a directory group.
    pub group_principals: BTreeMap<String, Vec<String>>,
}

/// The index writer's memory when the configuration does not say.
pub const DEFAULT_WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;

/// How often a running sync commits when the configuration does not say.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct IndexConfig {
    pub writer_heap_bytes: usize,
    /// How often a running sync commits: what makes its documents searchable and saves its
    /// progress before the run ends.
    pub commit_interval: Duration,
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
    /// The `[sources.staff-directory]` table (a kind this crate builds, not the connectors').
    pub staff_directory: Option<crate::directory::people::StaffDirectoryParams>,
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
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    kind: Spanned<String>,
    file: Option<Spanned<String>>,
    // The LDAP kinds' keys; see `config/examples/openldap.toml` for their meaning.
    urls: Option<Spanned<Vec<String>>>,
    starttls: Option<Spanned<bool>>,
    ca_file: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    pool_size: Option<Spanned<usize>>,
    bind_dn: Option<Spanned<String>>,
    bind_password_env: Option<Spanned<String>>,
    bind_password_file: Option<Spanned<String>>,
    base_dn: Option<Spanned<String>>,
    user_base: Option<Spanned<String>>,
    user_filter: Option<Spanned<String>>,
    lookup_filter: Option<Spanned<String>>,
    id_attribute: Option<Spanned<String>>,
    display_name_attributes: Option<Spanned<Vec<String>>>,
    mail_attribute: Option<Spanned<String>>,
    department_attribute: Option<Spanned<String>>,
    title_attribute: Option<Spanned<String>>,
    groups: Option<Spanned<String>>,
    group_base: Option<Spanned<String>>,
    group_filter: Option<Spanned<String>>,
    group_name_attribute: Option<Spanned<String>>,
    group_nesting_depth: Option<Spanned<usize>>,
    page_size: Option<Spanned<u32>>,
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
    login_burst_per_account: Option<Spanned<u32>>,
    login_refill_per_account: Option<Spanned<String>>,
    login_burst_per_client: Option<Spanned<u32>>,
    login_refill_per_client: Option<Spanned<String>>,
    #[serde(default)]
    group_principals: BTreeMap<String, Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    writer_heap_mb: Option<Spanned<usize>>,
    commit_interval: Option<Spanned<String>>,
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
    feed: Option<samle_connectors::feed::FeedParams>,
    mediawiki: Option<samle_connectors::mediawiki::MediaWikiParams>,
    wordpress: Option<samle_connectors::wordpress::WordPressParams>,
    website: Option<samle_connectors::website::WebsiteParams>,
    #[serde(rename = "staff-directory")]
    staff_directory: Option<crate::directory::people::StaffDirectoryParams>,
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
                "demo" => {
                    if let Some((key, span)) = d.ldap_keys().into_iter().next() {
                        return Err(ctx.at(
                            span,
                            &format!("directory.{key}"),
                            "this key belongs to an LDAP directory; the demo directory takes only `file`".into(),
                        ));
                    }
                    DirectoryConfig::Demo {
                        file: base_dir.join(
                            d.file
                                .as_ref()
                                .map_or("demo/directory.toml", |f| f.get_ref().as_str()),
                        ),
                    }
                }
                "openldap" => ldap_directory(&ctx, d, LdapFlavour::OpenLdap, env, &base_dir)?,
                "active-directory" => {
                    ldap_directory(&ctx, d, LdapFlavour::ActiveDirectory, env, &base_dir)?
                }
                "ldap" => ldap_directory(&ctx, d, LdapFlavour::Generic, env, &base_dir)?,
                other => {
                    return Err(ctx.at(
                        d.kind.span(),
                        "directory.kind",
                        format!(
                            "unknown directory kind `{other}`; expected `demo`, `openldap`, `active-directory` or `ldap`"
                        ),
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
            group_principals: {
                let mut map = BTreeMap::new();
                for (group, principals) in raw.auth.group_principals {
                    let mut list = Vec::new();
                    for p in principals {
                        let text = p.get_ref();
                        let valid = text == "authenticated"
                            || text == "public"
                            || text.split_once(':').is_some_and(|(k, v)| {
                                (k == "group" || k == "user") && !v.is_empty()
                            });
                        if !valid {
                            return Err(ctx.at(
                                p.span(),
                                &format!("auth.group_principals.{group}"),
                                format!("`{text}` is not a principal; expected `group:<name>`, `user:<id>`, `authenticated` or `public`"),
                            ));
                        }
                        list.push(text.clone());
                    }
                    map.insert(group, list);
                }
                map
            },
            throttle: {
                let d = crate::web::throttle::ThrottlePolicy::default();
                crate::web::throttle::ThrottlePolicy {
                    account_burst: ctx.count(
                        &raw.auth.login_burst_per_account,
                        "auth.login_burst_per_account",
                        d.account_burst,
                    )?,
                    account_refill: match &raw.auth.login_refill_per_account {
                        Some(s) => ctx.duration(s, "auth.login_refill_per_account")?,
                        None => d.account_refill,
                    },
                    client_burst: ctx.count(
                        &raw.auth.login_burst_per_client,
                        "auth.login_burst_per_client",
                        d.client_burst,
                    )?,
                    client_refill: match &raw.auth.login_refill_per_client {
                        Some(s) => ctx.duration(s, "auth.login_refill_per_client")?,
                        None => d.client_refill,
                    },
                }
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
                None => DEFAULT_WRITER_HEAP_BYTES,
            },
            commit_interval: match &raw.index.commit_interval {
                Some(s) => {
                    let d = ctx.duration(s, "index.commit_interval")?;
                    if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
                        return Err(ctx.at(
                            s.span(),
                            "index.commit_interval",
                            "expected a duration from 1s to 1h".into(),
                        ));
                    }
                    d
                }
                None => DEFAULT_COMMIT_INTERVAL,
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
            if !crate::sources::is_known_kind(&kind) {
                return Err(ctx.at(
                    s.kind.span(),
                    &key("kind"),
                    format!(
                        "unknown connector kind `{kind}`; expected one of: {}",
                        crate::sources::known_kinds().join(", ")
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
                feed: s.feed,
                mediawiki: s.mediawiki,
                wordpress: s.wordpress,
                website: s.website,
            };
            // The binary's own kinds keep their table outside `ConnectorParams`.
            let params = if crate::sources::KINDS.contains(&kind.as_str()) {
                params
            } else {
                ctx.params(params, &kind, &key("kind"), s.kind.span())?
            };
            if kind == crate::directory::people::KIND {
                let table = s.staff_directory.clone().unwrap_or_default();
                table
                    .validate()
                    .map_err(|m| ctx.at(s.kind.span(), &key("staff-directory"), m))?;
            }
            sources.push(SourceConfig {
                name: s.name.unwrap_or_else(|| id.clone()),
                id,
                kind,
                schedule,
                enabled: s.enabled,
                run_on_start: s.run_on_start,
                max_delete_share,
                params,
                staff_directory: s.staff_directory,
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
        let mut trusted_proxies = Vec::new();
        for p in &raw.trusted_proxies {
            trusted_proxies.push(p.get_ref().parse().map_err(|_| {
                ctx.at(
                    p.span(),
                    "server.trusted_proxies",
                    format!("`{}` is not an IP address", p.get_ref()),
                )
            })?);
        }
        Ok(ServerConfig {
            listen,
            trusted_proxies,
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

impl RawDirectory {
    /// The LDAP-only keys that are present, with where they are.
    fn ldap_keys(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        fn at<T>(
            key: &'static str,
            v: &Option<Spanned<T>>,
        ) -> Option<(&'static str, std::ops::Range<usize>)> {
            v.as_ref().map(|s| (key, s.span()))
        }
        [
            at("urls", &self.urls),
            at("starttls", &self.starttls),
            at("ca_file", &self.ca_file),
            at("connect_timeout", &self.connect_timeout),
            at("timeout", &self.timeout),
            at("pool_size", &self.pool_size),
            at("bind_dn", &self.bind_dn),
            at("bind_password_env", &self.bind_password_env),
            at("bind_password_file", &self.bind_password_file),
            at("base_dn", &self.base_dn),
            at("user_base", &self.user_base),
            at("user_filter", &self.user_filter),
            at("lookup_filter", &self.lookup_filter),
            at("id_attribute", &self.id_attribute),
            at("display_name_attributes", &self.display_name_attributes),
            at("mail_attribute", &self.mail_attribute),
            at("department_attribute", &self.department_attribute),
            at("title_attribute", &self.title_attribute),
            at("groups", &self.groups),
            at("group_base", &self.group_base),
            at("group_filter", &self.group_filter),
            at("group_name_attribute", &self.group_name_attribute),
            at("group_nesting_depth", &self.group_nesting_depth),
            at("page_size", &self.page_size),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The environment variable the service account's password is read from by default.
pub const LDAP_BIND_PASSWORD_ENV: &str = "SAMLE_LDAP_BIND_PASSWORD";

/// Validates an LDAP `[directory]` table; the flavour chooses the defaults.
fn ldap_directory(
    ctx: &ErrCtx<'_>,
    d: RawDirectory,
    flavour: LdapFlavour,
    env: &BTreeMap<String, String>,
    base_dir: &Path,
) -> Result<DirectoryConfig, ConfigError> {
    let ad = flavour == LdapFlavour::ActiveDirectory;
    if let Some(f) = &d.file {
        return Err(ctx.at(
            f.span(),
            "directory.file",
            "`file` belongs to the demo directory; an LDAP directory is reached through `urls`"
                .into(),
        ));
    }
    // Where to report a missing required key: the `kind` line of the table.
    let table = d.kind.span();

    let starttls = d.starttls.as_ref().is_some_and(|s| *s.get_ref());
    let urls = match &d.urls {
        None => {
            return Err(ctx.at(
                table,
                "directory.urls",
                "an LDAP directory needs `urls`, e.g. [\"ldaps://ldap.example.org\"]".into(),
            ));
        }
        Some(u) if u.get_ref().is_empty() => {
            return Err(ctx.at(
                u.span(),
                "directory.urls",
                "expected at least one server URL".into(),
            ));
        }
        Some(u) => {
            let mut urls = Vec::new();
            for text in u.get_ref() {
                let bad = |why: &str| {
                    ctx.at(
                        u.span(),
                        "directory.urls",
                        format!(
                            "`{text}` {why}; expected `ldap://host[:port]` or `ldaps://host[:port]`"
                        ),
                    )
                };
                let url = url::Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
                match url.scheme() {
                    "ldap" => {}
                    "ldaps" if starttls => {
                        return Err(ctx.at(
                            d.starttls.as_ref().map_or(u.span(), Spanned::span),
                            "directory.starttls",
                            format!("`{text}` is already encrypted (ldaps://); StartTLS applies to `ldap://` URLs only"),
                        ));
                    }
                    "ldaps" => {}
                    _ => return Err(bad("has an unsupported scheme")),
                }
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(bad("names no host"));
                }
                if url.path().len() > 1 || url.query().is_some() {
                    return Err(bad("has a path or query; put the search base in `base_dn`"));
                }
                urls.push(url);
            }
            urls
        }
    };

    let ca_file = match &d.ca_file {
        Some(f) => {
            let path = base_dir.join(f.get_ref());
            if !path.is_file() {
                return Err(ctx.at(
                    f.span(),
                    "directory.ca_file",
                    format!("{} does not exist or is not a file", path.display()),
                ));
            }
            Some(path)
        }
        None => None,
    };

    let timeout_of = |v: &Option<Spanned<String>>, key: &str| -> Result<Duration, ConfigError> {
        match v {
            None => Ok(Duration::from_secs(5)),
            Some(s) => {
                let d = ctx.duration(s, key)?;
                if d.is_zero() || d > Duration::from_secs(300) {
                    Err(ctx.at(
                        s.span(),
                        key,
                        "expected a duration from 1ms to 5m, such as `5s`".into(),
                    ))
                } else {
                    Ok(d)
                }
            }
        }
    };
    let connect_timeout = timeout_of(&d.connect_timeout, "directory.connect_timeout")?;
    let timeout = timeout_of(&d.timeout, "directory.timeout")?;

    let pool_size = match &d.pool_size {
        None => 4,
        Some(n) if (1..=64).contains(n.get_ref()) => *n.get_ref(),
        Some(n) => {
            return Err(ctx.at(
                n.span(),
                "directory.pool_size",
                "expected a number of connections from 1 to 64".into(),
            ));
        }
    };

    // The service account. Its password never sits in this file: it comes from an
    // environment variable or from a file the configuration names.
    let bind_dn = match &d.bind_dn {
        Some(b) if b.get_ref().trim().is_empty() => {
            return Err(ctx.at(
                b.span(),
                "directory.bind_dn",
                "empty bind DN; leave `bind_dn` out to search anonymously".into(),
            ));
        }
        Some(b) => Some(b.get_ref().trim().to_string()),
        None => None,
    };
    let bind_password = match (&bind_dn, &d.bind_password_file, &d.bind_password_env) {
        (None, Some(s), _) => {
            return Err(ctx.at(
                s.span(),
                "directory.bind_password_file",
                "a password without `bind_dn`: name the service account too".into(),
            ));
        }
        (None, None, Some(s)) => {
            return Err(ctx.at(
                s.span(),
                "directory.bind_password_env",
                "a password without `bind_dn`: name the service account too".into(),
            ));
        }
        (None, None, None) => None,
        (Some(_), Some(f), Some(_)) => {
            return Err(ctx.at(
                f.span(),
                "directory.bind_password_file",
                "give either `bind_password_file` or `bind_password_env`, not both".into(),
            ));
        }
        (Some(_), Some(f), None) => {
            let path = base_dir.join(f.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ctx.at(
                    f.span(),
                    "directory.bind_password_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            // A trailing newline is how editors end files, not part of the password.
            let password = text.trim_end_matches(['\n', '\r']).to_string();
            if password.trim().is_empty() {
                return Err(ctx.at(
                    f.span(),
                    "directory.bind_password_file",
                    format!(
                        "{} is empty; an empty password is an unauthenticated bind",
                        path.display()
                    ),
                ));
            }
            Some(Secret(password))
        }
        (Some(_), None, var) => {
            let name = var
                .as_ref()
                .map_or(LDAP_BIND_PASSWORD_ENV, |v| v.get_ref().as_str());
            let (span, key) = match var {
                Some(v) => (v.span(), "directory.bind_password_env"),
                None => (
                    d.bind_dn.as_ref().map_or(table.clone(), Spanned::span),
                    "directory.bind_dn",
                ),
            };
            match env.get(name) {
                Some(p) if !p.trim().is_empty() => Some(Secret(p.clone())),
                Some(_) => {
                    return Err(ctx.at(
                        span,
                        key,
                        format!("the environment variable {name} is empty; an empty password is an unauthenticated bind"),
                    ));
                }
                None => {
                    return Err(ctx.at(
                        span,
                        key,
                        format!("the service account's password is missing: set the environment variable {name} (or name a file in `bind_password_file`)"),
                    ));
                }
            }
        }
    };

    let text_or =
        |v: &Option<Spanned<String>>, key: &str, default: &str| -> Result<String, ConfigError> {
            match v {
                Some(s) if s.get_ref().trim().is_empty() => {
                    Err(ctx.at(s.span(), key, "expected a non-empty value".into()))
                }
                Some(s) => Ok(s.get_ref().trim().to_string()),
                None => Ok(default.to_string()),
            }
        };
    let base_dn = match &d.base_dn {
        None => {
            return Err(ctx.at(
                table,
                "directory.base_dn",
                "an LDAP directory needs `base_dn`, the entry under which users and groups are searched".into(),
            ));
        }
        Some(_) => text_or(&d.base_dn, "directory.base_dn", "")?,
    };
    let user_base = text_or(&d.user_base, "directory.user_base", &base_dn)?;
    let group_base = text_or(&d.group_base, "directory.group_base", &base_dn)?;

    let id_attribute = text_or(
        &d.id_attribute,
        "directory.id_attribute",
        if ad { "sAMAccountName" } else { "uid" },
    )?;
    // Attribute names go into search requests as they are: letters, digits, `-`, `;`
    // (options) and `.` (OIDs) only.
    let attribute_name = |v: &Option<Spanned<String>>, key: &str, value: &str| {
        let ok = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';');
        match v {
            Some(s) if !ok => {
                Err(ctx.at(s.span(), key, format!("`{value}` is not an attribute name")))
            }
            _ => Ok(()),
        }
    };
    attribute_name(&d.id_attribute, "directory.id_attribute", &id_attribute)?;

    let user_filter = text_or(
        &d.user_filter,
        "directory.user_filter",
        if ad {
            "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={login})(userPrincipalName={login})))"
        } else {
            "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))"
        },
    )?;
    ctx.filter_template(
        &d.user_filter,
        "directory.user_filter",
        &user_filter,
        "{login}",
    )?;
    let default_lookup = if ad {
        format!("(&(objectCategory=person)(objectClass=user)({id_attribute}={{id}}))")
    } else {
        format!("(&(objectClass=inetOrgPerson)({id_attribute}={{id}}))")
    };
    let lookup_filter = text_or(&d.lookup_filter, "directory.lookup_filter", &default_lookup)?;
    ctx.filter_template(
        &d.lookup_filter,
        "directory.lookup_filter",
        &lookup_filter,
        "{id}",
    )?;

    let display_name_attributes = match &d.display_name_attributes {
        None => vec!["displayName".to_string(), "cn".to_string()],
        Some(v) if v.get_ref().is_empty() => {
            return Err(ctx.at(
                v.span(),
                "directory.display_name_attributes",
                "expected at least one attribute name".into(),
            ));
        }
        Some(v) => {
            for a in v.get_ref() {
                let at = Some(Spanned::new(v.span(), a.clone()));
                attribute_name(&at, "directory.display_name_attributes", a)?;
            }
            v.get_ref().clone()
        }
    };
    let mail_attribute = text_or(&d.mail_attribute, "directory.mail_attribute", "mail")?;
    attribute_name(
        &d.mail_attribute,
        "directory.mail_attribute",
        &mail_attribute,
    )?;
    let department_attribute = text_or(
        &d.department_attribute,
        "directory.department_attribute",
        if ad { "department" } else { "ou" },
    )?;
    attribute_name(
        &d.department_attribute,
        "directory.department_attribute",
        &department_attribute,
    )?;
    let title_attribute = text_or(&d.title_attribute, "directory.title_attribute", "title")?;
    attribute_name(
        &d.title_attribute,
        "directory.title_attribute",
        &title_attribute,
    )?;

    let groups = match &d.groups {
        None if ad => LdapGroupMode::InChain,
        None => LdapGroupMode::Search,
        Some(g) => match g.get_ref().as_str() {
            "member-of" => LdapGroupMode::MemberOf,
            "search" => LdapGroupMode::Search,
            "in-chain" => LdapGroupMode::InChain,
            other => {
                return Err(ctx.at(
                    g.span(),
                    "directory.groups",
                    format!("unknown group lookup `{other}`; expected `member-of`, `search` or `in-chain`"),
                ));
            }
        },
    };
    let default_group_filter = match (groups, ad) {
        (LdapGroupMode::InChain, _) => {
            "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))"
        }
        (_, true) => "(&(objectClass=group)(member={dn}))",
        (_, false) => {
            "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))(|(member={dn})(uniqueMember={dn})))"
        }
    };
    let group_filter = text_or(
        &d.group_filter,
        "directory.group_filter",
        default_group_filter,
    )?;
    ctx.filter_template(
        &d.group_filter,
        "directory.group_filter",
        &group_filter,
        "{dn}",
    )?;
    let group_name_attribute = text_or(
        &d.group_name_attribute,
        "directory.group_name_attribute",
        "cn",
    )?;
    attribute_name(
        &d.group_name_attribute,
        "directory.group_name_attribute",
        &group_name_attribute,
    )?;
    let group_nesting_depth = match &d.group_nesting_depth {
        None => 16,
        Some(n) if *n.get_ref() <= 64 => *n.get_ref(),
        Some(n) => {
            return Err(ctx.at(
                n.span(),
                "directory.group_nesting_depth",
                "expected a number of levels from 0 to 64".into(),
            ));
        }
    };
    let page_size = match &d.page_size {
        None => 500,
        Some(n) if (1..=10_000).contains(n.get_ref()) => *n.get_ref(),
        Some(n) => {
            return Err(ctx.at(
                n.span(),
                "directory.page_size",
                "expected a number of entries from 1 to 10000".into(),
            ));
        }
    };

    Ok(DirectoryConfig::Ldap(Box::new(LdapConfig {
        flavour,
        urls,
        starttls,
        ca_file,
        connect_timeout,
        timeout,
        pool_size,
        bind_dn,
        bind_password,
        base_dn,
        user_base,
        user_filter,
        lookup_filter,
        id_attribute,
        display_name_attributes,
        mail_attribute,
        department_attribute,
        title_attribute,
        groups,
        group_base,
        group_filter,
        group_name_attribute,
        group_nesting_depth,
        page_size,
    })))
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

    /// Checks that a filter template holds its placeholder and is a valid filter once the
    /// placeholder is replaced (by an escaped value, as at run time).
    fn filter_template(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        template: &str,
        placeholder: &str,
    ) -> Result<(), ConfigError> {
        let Some(s) = v else {
            return Ok(());
        };
        if !template.contains(placeholder) {
            return Err(self.at(
                s.span(),
                key,
                format!(
                    "the filter must contain {placeholder}, which is replaced by the escaped value"
                ),
            ));
        }
        let sample = template.replace(placeholder, &ldap3::ldap_escape("a*b(c)d\\e"));
        if ldap3::parse_filter(&sample).is_err() {
            return Err(self.at(
                s.span(),
                key,
                format!("`{template}` is not a valid LDAP filter (RFC 4515)"),
            ));
        }
        Ok(())
    }

    /// A positive count, or the default when the key is absent.
    fn count(&self, v: &Option<Spanned<u32>>, key: &str, default: u32) -> Result<u32, ConfigError> {
        match v {
            Some(n) if *n.get_ref() == 0 => {
                Err(self.at(n.span(), key, "expected a positive number".into()))
            }
            Some(n) => Ok(*n.get_ref()),
            None => Ok(default),
        }
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
            "feed" => params.feed.is_some(),
            "mediawiki" => params.mediawiki.is_some(),
            "wordpress" => params.wordpress.is_some(),
            "website" => params.website.is_some(),
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
                "[index]\ncommit_interval = \"many\"\n",
                2,
                "index.commit_interval",
                "not a duration",
            ),
            (
                "[index]\ncommit_interval = \"100ms\"\n",
                2,
                "index.commit_interval",
                "from 1s to 1h",
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
                "[directory]\nkind = \"nis\"\n",
                2,
                "directory.kind",
                "unknown directory kind",
            ),
            (
                "[auth.group_principals]\n\"GG-Ledere\" = [\"ledere\"]\n",
                2,
                "auth.group_principals.GG-Ledere",
                "not a principal",
            ),
            ("[server\nlisten = 1\n", 1, "", "expected"),
            // LDAP directories.
            (
                "[directory]\nkind = \"openldap\"\nbase_dn = \"dc=x\"\n",
                2,
                "directory.urls",
                "needs `urls`",
            ),
            (
                "[directory]\nkind = \"ldap\"\nurls = [\"ldap://h\"]\n",
                2,
                "directory.base_dn",
                "needs `base_dn`",
            ),
            (
                "[directory]\nkind = \"openldap\"\nbase_dn = \"dc=x\"\nurls = [\"https://h\"]\n",
                4,
                "directory.urls",
                "unsupported scheme",
            ),
            (
                "[directory]\nkind = \"openldap\"\nbase_dn = \"dc=x\"\nurls = []\n",
                4,
                "directory.urls",
                "at least one",
            ),
            (
                "[directory]\nkind = \"openldap\"\nbase_dn = \"dc=x\"\nurls = [\"ldap://h/dc=x\"]\n",
                4,
                "directory.urls",
                "base_dn",
            ),
            (
                "[directory]\nkind = \"openldap\"\nbase_dn = \"dc=x\"\nurls = [\"ldaps://h\"]\nstarttls = true\n",
                5,
                "directory.starttls",
                "StartTLS applies to `ldap://`",
            ),
            (
                "[directory]\nkind = \"active-directory\"\nurls = [\"ldaps://dc\"]\nbase_dn = \"dc=x\"\nbind_dn = \"cn=samle\"\n",
                5,
                "directory.bind_dn",
                "SAMLE_LDAP_BIND_PASSWORD",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nbind_dn = \"cn=samle\"\nbind_password_env = \"NOT_SET_ANYWHERE\"\n",
                6,
                "directory.bind_password_env",
                "NOT_SET_ANYWHERE",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nbind_password_env = \"X\"\n",
                5,
                "directory.bind_password_env",
                "without `bind_dn`",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nbind_dn = \"cn=samle\"\nbind_password_file = \"no-such-file\"\n",
                6,
                "directory.bind_password_file",
                "cannot read",
            ),
            (
                // The password itself has no key: secrets never live in the file.
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nbind_password = \"hemmelig\"\n",
                5,
                "bind_password",
                "unknown field",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nca_file = \"missing.pem\"\n",
                5,
                "directory.ca_file",
                "does not exist",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\ntimeout = \"forever\"\n",
                5,
                "directory.timeout",
                "duration",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nconnect_timeout = \"1h\"\n",
                5,
                "directory.connect_timeout",
                "from 1ms to 5m",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\npool_size = 0\n",
                5,
                "directory.pool_size",
                "1 to 64",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nuser_filter = \"(uid=%s)\"\n",
                5,
                "directory.user_filter",
                "must contain {login}",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nuser_filter = \"(uid={login}\"\n",
                5,
                "directory.user_filter",
                "not a valid LDAP filter",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nlookup_filter = \"(uid={login})\"\n",
                5,
                "directory.lookup_filter",
                "must contain {id}",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\ngroup_filter = \"(member=*)\"\n",
                5,
                "directory.group_filter",
                "must contain {dn}",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\ngroups = \"nested\"\n",
                5,
                "directory.groups",
                "`member-of`, `search` or `in-chain`",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nid_attribute = \"u id\"\n",
                5,
                "directory.id_attribute",
                "not an attribute name",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\npage_size = 0\n",
                5,
                "directory.page_size",
                "1 to 10000",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\ngroup_nesting_depth = 100\n",
                5,
                "directory.group_nesting_depth",
                "0 to 64",
            ),
            (
                "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nfile = \"demo/directory.toml\"\n",
                5,
                "directory.file",
                "demo directory",
            ),
            (
                "[directory]\nkind = \"demo\"\nurls = [\"ldaps://h\"]\n",
                3,
                "directory.urls",
                "belongs to an LDAP directory",
            ),
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
    fn ldap_presets_and_secrets() {
        let mut env = BTreeMap::new();
        env.insert(
            LDAP_BIND_PASSWORD_ENV.to_string(),
            "tjeneste-hemmelig".to_string(),
        );
        let ldap = |text: &str, env: &BTreeMap<String, String>| match Config::from_str(
            text,
            Path::new("conf/samle.toml"),
            env,
            &Overrides::default(),
        )
        .unwrap()
        .directory
        {
            DirectoryConfig::Ldap(l) => l,
            other => panic!("{other:?}"),
        };
        let openldap = ldap(
            "[directory]\nkind = \"openldap\"\nurls = [\"ldap://a\", \"ldaps://b:1636\"]\nbase_dn = \"dc=x\"\nbind_dn = \"cn=s,dc=x\"\n",
            &env,
        );
        assert_eq!(openldap.flavour, LdapFlavour::OpenLdap);
        assert_eq!(openldap.urls.len(), 2);
        assert_eq!(openldap.groups, LdapGroupMode::Search);
        assert_eq!(openldap.id_attribute, "uid");
        assert_eq!(
            openldap.user_filter,
            "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))"
        );
        assert_eq!(
            openldap.lookup_filter,
            "(&(objectClass=inetOrgPerson)(uid={id}))"
        );
        assert_eq!(openldap.user_base, "dc=x");
        assert_eq!(openldap.connect_timeout, Duration::from_secs(5));
        assert_eq!(openldap.timeout, Duration::from_secs(5));
        assert_eq!(
            openldap.bind_password.as_ref().map(Secret::expose),
            Some("tjeneste-hemmelig")
        );
        assert!(
            !format!("{openldap:?}").contains("tjeneste-hemmelig"),
            "the password must not be printed"
        );

        let ad = ldap(
            "[directory]\nkind = \"active-directory\"\nurls = [\"ldap://dc\"]\nstarttls = true\nbase_dn = \"DC=k,DC=local\"\n",
            &BTreeMap::new(),
        );
        assert_eq!(ad.flavour, LdapFlavour::ActiveDirectory);
        assert!(ad.starttls);
        assert!(ad.bind_dn.is_none() && ad.bind_password.is_none());
        assert_eq!(ad.groups, LdapGroupMode::InChain);
        assert_eq!(ad.id_attribute, "sAMAccountName");
        assert!(ad.user_filter.contains("(userPrincipalName={login})"));
        assert!(ad.group_filter.contains("1.2.840.113556.1.4.1941"));
        assert_eq!(ad.department_attribute, "department");

        // The generic kind has OpenLDAP's defaults and takes every key.
        let generic = ldap(
            "[directory]\nkind = \"ldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"o=x\"\ngroups = \"member-of\"\nid_attribute = \"cn\"\ndisplay_name_attributes = [\"fullName\"]\npage_size = 50\ngroup_nesting_depth = 0\ntimeout = \"750ms\"\n",
            &BTreeMap::new(),
        );
        assert_eq!(generic.flavour, LdapFlavour::Generic);
        assert_eq!(generic.groups, LdapGroupMode::MemberOf);
        assert_eq!(
            generic.lookup_filter,
            "(&(objectClass=inetOrgPerson)(cn={id}))"
        );
        assert_eq!(generic.display_name_attributes, ["fullName"]);
        assert_eq!(generic.page_size, 50);
        assert_eq!(generic.group_nesting_depth, 0);
        assert_eq!(generic.timeout, Duration::from_millis(750));

        // A password file: relative to the configuration, its final newline is not part of
        // the password; an empty one is refused (an unauthenticated bind).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "fra-fil\n").unwrap();
        let text = "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nbind_dn = \"cn=s\"\nbind_password_file = \"pw\"\n";
        let c = Config::from_str(
            text,
            &dir.path().join("samle.toml"),
            &BTreeMap::new(),
            &Overrides::default(),
        )
        .unwrap();
        let DirectoryConfig::Ldap(l) = c.directory else {
            panic!()
        };
        assert_eq!(
            l.bind_password.as_ref().map(Secret::expose),
            Some("fra-fil")
        );
        std::fs::write(dir.path().join("pw"), " \n").unwrap();
        let e = Config::from_str(
            text,
            &dir.path().join("samle.toml"),
            &BTreeMap::new(),
            &Overrides::default(),
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("directory.bind_password_file"));
        assert!(e.to_string().contains("unauthenticated bind"), "{e}");
        let mut blank = BTreeMap::new();
        blank.insert(LDAP_BIND_PASSWORD_ENV.to_string(), "  ".to_string());
        let e = Config::from_str(
            "[directory]\nkind = \"openldap\"\nurls = [\"ldaps://h\"]\nbase_dn = \"dc=x\"\nbind_dn = \"cn=s\"\n",
            Path::new("s.toml"),
            &blank,
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
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
