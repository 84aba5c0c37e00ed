//! The LDAP directory: OpenLDAP, Active Directory and other LDAP servers, through ldap3
//! (async, rustls with the ring provider).
//!
//! A login is *find, then bind*: a service account (or an anonymous connection) searches for
//! the one entry the login name belongs to, with a configured filter into which the name is
//! put RFC 4515-escaped; then the password is checked by a bind as the DN that search
//! returned, on a connection of its own. A DN is never built from the login name. Blank
//! passwords are refused before anything is sent: a bind with a DN and an empty password is
//! an *unauthenticated* bind, which some servers answer with success.
//!
//! Groups come from `memberOf`, from a search for groups whose member is the user, or from
//! Active Directory's in-chain matching rule; where the server does not expand nesting, the
//! portal walks up through groups that are members of groups (cycle-safe, depth-limited).
//! Every search that can return many entries is paged; referrals are ignored.
//!
//! This module does not decide roles or principals, and never sees sessions.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{
    Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Scope, SearchEntry,
    SearchOptions, ldap_escape,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::{AuthError, Directory, FailureReason, UserInfo, password_is_blank};
use crate::config::{LdapConfig, LdapGroupMode};

/// The password policy request control (draft-behera-ldap-password-policy): OpenLDAP's
/// ppolicy overlay says "locked" or "expired" only when a bind carries it.
const PPOLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// The value an administrator puts in `pwdAccountLockedTime` to lock an account for good.
const PERMANENT_LOCK: &str = "000001010000Z";

/// Active Directory's `userAccountControl` flag ACCOUNTDISABLE.
const UAC_ACCOUNTDISABLE: u64 = 0x2;

/// The most groups one user's expansion collects; far beyond any real directory, it stops a
/// misconfigured filter from reading the whole directory at every login.
const MAX_GROUPS: usize = 10_000;

/// How many DNs one nested-group search asks about at once (`(|(member=a)(member=b)…)`).
const DNS_PER_FILTER: usize = 32;

/// Login names longer than this are nobody's.
const MAX_LOGIN_LEN: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum LdapDirectoryError {
    #[error("cannot read the CA file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("cannot set up TLS for the directory: {0}")]
    Tls(String),
}

/// A directory reached over LDAP. Cheap to share; connections are opened lazily, so building
/// one does no network I/O.
pub struct LdapDirectory {
    cfg: Arc<LdapConfig>,
    tls: Arc<rustls::ClientConfig>,
    /// Idle service-account connections, already bound.
    idle: std::sync::Mutex<Vec<Ldap>>,
    /// One permit per service connection in use: at most `pool_size` at once.
    permits: Semaphore,
}

impl fmt::Debug for LdapDirectory {
    // Written by hand so that the service account's password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapDirectory")
            .field(
                "urls",
                &self.cfg.urls.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
            )
            .field("bind_dn", &self.cfg.bind_dn)
            .field("base_dn", &self.cfg.base_dn)
            .finish_non_exhaustive()
    }
}

/// A service connection taken from the pool; its permit returns when it is dropped.
struct Pooled<'a> {
    ldap: Ldap,
    /// Taken from the idle list rather than opened now: it may have died while idle.
    reused: bool,
    _permit: SemaphorePermit<'a>,
}

type OpFuture<'s, T> = Pin<Box<dyn Future<Output = Result<T, LdapError>> + Send + 's>>;

/// The parts of a user entry the portal reads (also the people of the staff directory).
#[derive(Clone, Debug)]
pub(crate) struct UserEntry {
    pub(crate) dn: String,
    pub(crate) attrs: std::collections::HashMap<String, Vec<String>>,
}

impl UserEntry {
    fn from_search(e: SearchEntry) -> UserEntry {
        UserEntry {
            dn: e.dn,
            attrs: e.attrs,
        }
    }

    /// An attribute's values. Servers answer with their own spelling of the name
    /// (`displayname` asked, `displayName` returned), so the lookup ignores case.
    pub(crate) fn values(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    pub(crate) fn first(&self, name: &str) -> Option<&str> {
        self.values(name)
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Whether the account may not log in whatever the password: disabled in Active
    /// Directory, or locked by OpenLDAP's password policy (permanently: disabled).
    pub(crate) fn blocked(&self) -> Option<FailureReason> {
        if let Some(uac) = self
            .first("userAccountControl")
            .and_then(|v| v.parse::<i64>().ok())
        {
            // userAccountControl is a signed 32-bit integer on the wire.
            if (uac as u64) & UAC_ACCOUNTDISABLE != 0 {
                return Some(FailureReason::Disabled);
            }
        }
        match self.first("pwdAccountLockedTime") {
            Some(PERMANENT_LOCK) => Some(FailureReason::Disabled),
            Some(_) => Some(FailureReason::Locked),
            None => None,
        }
    }
}

impl LdapDirectory {
    /// Prepares the directory: reads the CA file and builds the TLS configuration. Opens no
    /// connection; the first login or lookup does.
    pub fn new(cfg: &LdapConfig) -> Result<LdapDirectory, LdapDirectoryError> {
        let tls = tls_config(cfg.ca_file.as_deref())?;
        Ok(LdapDirectory {
            permits: Semaphore::new(cfg.pool_size),
            cfg: Arc::new(cfg.clone()),
            tls,
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Checks that the service account can bind and read the base DN and, given a user id,
    /// that the user resolves; returns that user's groups (nesting expanded). For
    /// `samle check`.
    pub async fn check(&self, user: Option<&str>) -> Result<Vec<String>, AuthError> {
        // A fresh connection, not a pooled one: this proves that a new bind works now.
        let mut ldap = self.open_service().await?;
        let base = self.cfg.base_dn.clone();
        let result = ldap
            .with_timeout(self.cfg.timeout)
            .search(&base, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| self.unavailable("reading the base DN", &e))?;
        match result.1.rc {
            0 if !result.0.is_empty() => {}
            0 | 32 => {
                return Err(AuthError::Unavailable(format!(
                    "the base DN `{base}` does not exist or the service account cannot read it"
                )));
            }
            _ => return Err(self.result_error("reading the base DN", &result.1)),
        }
        drop(ldap);
        match user {
            None => Ok(Vec::new()),
            Some(u) => match self.lookup(u).await? {
                Some(info) => Ok(info.groups),
                None => Err(AuthError::Refused(FailureReason::NoSuchUser)),
            },
        }
    }

    /// The longest a login or lookup may take, whatever the servers do: every server tried
    /// twice (pool and bind connections), then the searches. A safety net under the
    /// per-operation timeouts.
    fn budget(&self) -> Duration {
        let per_server = self.cfg.connect_timeout + self.cfg.timeout;
        let servers = u32::try_from(self.cfg.urls.len()).unwrap_or(u32::MAX);
        let depth = u32::try_from(self.cfg.group_nesting_depth).unwrap_or(64);
        per_server.saturating_mul(servers.saturating_mul(2).saturating_add(1))
            + self.cfg.timeout.saturating_mul(depth + 4)
    }

    // ---- connections ----

    /// Opens a connection to one server; the error names it.
    async fn connect_to(&self, url: &url::Url) -> Result<Ldap, String> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.cfg.connect_timeout)
            .set_config(self.tls.clone())
            .set_starttls(self.cfg.starttls && url.scheme() == "ldap");
        // The timeout inside ldap3 covers TCP, StartTLS and the TLS handshake; the outer one
        // is a guard in case any step escapes it.
        let attempt = tokio::time::timeout(
            self.cfg.connect_timeout + Duration::from_millis(250),
            LdapConnAsync::from_url_with_settings(settings, url),
        )
        .await;
        match attempt {
            Ok(Ok((conn, ldap))) => {
                let server = url.to_string();
                tokio::spawn(async move {
                    if let Err(e) = conn.drive().await {
                        tracing::debug!(server, error = %e, "directory connection ended");
                    }
                });
                Ok(ldap)
            }
            Ok(Err(e)) => {
                tracing::warn!(server = %url, error = %e, "cannot connect to the directory server");
                Err(format!("{url}: {}", describe(&e)))
            }
            Err(_) => {
                tracing::warn!(server = %url, "the directory server did not answer in time");
                Err(format!(
                    "{url}: no answer within {:?}",
                    self.cfg.connect_timeout
                ))
            }
        }
    }

    /// Opens a connection bound as the service account (or anonymous without one), trying
    /// the servers in order: one that accepts the connection but does not answer the bind
    /// counts as down too. A server that answers with a refusal is believed.
    async fn open_service(&self) -> Result<Ldap, AuthError> {
        let mut last = String::new();
        for url in &self.cfg.urls {
            let mut ldap = match self.connect_to(url).await {
                Ok(ldap) => ldap,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let (Some(dn), Some(password)) = (&self.cfg.bind_dn, &self.cfg.bind_password) else {
                return Ok(ldap);
            };
            let result = match ldap
                .with_timeout(self.cfg.timeout)
                .simple_bind(dn, password.expose())
                .await
            {
                Ok(result) => result,
                Err(e) => {
                    tracing::warn!(server = %url, error = %e, "the directory server did not answer the service bind");
                    last = format!("{url}: {}", describe(&e));
                    continue;
                }
            };
            return match result.rc {
                0 => Ok(ldap),
                8 | 13 => Err(AuthError::Unavailable(encryption_required(&result))),
                49 => Err(AuthError::Unavailable(format!(
                    "the directory refused the service account `{dn}` (invalid credentials): check `bind_dn` and its password"
                ))),
                _ => Err(self.result_error("binding as the service account", &result)),
            };
        }
        Err(no_server_answered(&last))
    }

    /// Takes an idle service connection, or opens one, waiting for a free slot at most as
    /// long as one operation may take.
    async fn checkout(&self) -> Result<Pooled<'_>, AuthError> {
        let permit = tokio::time::timeout(
            self.cfg.connect_timeout + self.cfg.timeout,
            self.permits.acquire(),
        )
        .await
        .map_err(|_| {
            AuthError::Unavailable(format!(
                "all {} directory connections stayed busy",
                self.cfg.pool_size
            ))
        })?
        .map_err(|_| AuthError::Unavailable("the directory is shutting down".into()))?;
        loop {
            let next = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(mut ldap) = next else {
                break;
            };
            // A connection whose driver has ended (the server closed it) is dropped.
            if ldap.is_closed() {
                continue;
            }
            return Ok(Pooled {
                ldap,
                reused: true,
                _permit: permit,
            });
        }
        let ldap = self.open_service().await?;
        Ok(Pooled {
            ldap,
            reused: false,
            _permit: permit,
        })
    }

    fn checkin(&self, mut pooled: Pooled<'_>) {
        if pooled.ldap.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.cfg.pool_size
        {
            idle.push(pooled.ldap.clone());
        }
    }

    /// Runs `op` on a service connection. A reused connection that fails at the transport
    /// level may have died while idle: it is dropped and `op` runs once more on a new one.
    async fn with_service<'s, T>(
        &'s self,
        what: &str,
        op: impl Fn(Ldap) -> OpFuture<'s, T> + Send + Sync + 's,
    ) -> Result<T, AuthError> {
        let pooled = self.checkout().await?;
        let first = op(pooled.ldap.clone()).await;
        let (pooled, result) = match first {
            Err(e) if pooled.reused && is_transport(&e) && !is_timeout(&e) => {
                tracing::debug!(error = %e, "an idle directory connection had died; opening a new one");
                drop(pooled);
                let fresh = self.checkout().await?;
                let again = op(fresh.ldap.clone()).await;
                (fresh, again)
            }
            other => (pooled, other),
        };
        match result {
            Ok(v) => {
                self.checkin(pooled);
                Ok(v)
            }
            // An LDAP error result leaves the connection usable; a transport error does not.
            Err(e) => {
                if !is_transport(&e) {
                    self.checkin(pooled);
                }
                Err(match &e {
                    LdapError::LdapResult { result } => self.result_error(what, result),
                    _ => self.unavailable(what, &e),
                })
            }
        }
    }

    fn unavailable(&self, what: &str, e: &LdapError) -> AuthError {
        match e {
            LdapError::LdapResult { result } => self.result_error(what, result),
            _ => AuthError::Unavailable(format!("{what}: {}", describe(e))),
        }
    }

    fn result_error(&self, what: &str, r: &LdapResult) -> AuthError {
        if r.rc == 8 || r.rc == 13 {
            return AuthError::Unavailable(encryption_required(r));
        }
        AuthError::Unavailable(format!(
            "{what}: the directory answered {} {}",
            r.rc,
            r.text.trim()
        ))
    }

    // ---- listing (the staff directory) ----

    /// The validated settings this directory was built from.
    pub(crate) fn config(&self) -> &LdapConfig {
        &self.cfg
    }

    /// Every entry under `base` that `filter` matches, on a connection of its own; see
    /// [`Listing::entries`].
    pub(crate) async fn list_entries(
        &self,
        base: &str,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<UserEntry>, AuthError> {
        self.listing().await?.entries(base, filter, attrs).await
    }

    /// Opens a connection of its own, bound as the service account, for the searches of one
    /// staff-directory run: a long listing never holds a connection that logins wait for,
    /// and the run's searches share one connection and one bind.
    pub(crate) async fn listing(&self) -> Result<Listing<'_>, AuthError> {
        Ok(Listing {
            ldap: self.open_service().await?,
            directory: self,
        })
    }

    // ---- finding users ----

    fn user_attributes(&self) -> Vec<String> {
        let c = &self.cfg;
        let mut attrs = vec![c.id_attribute.clone()];
        attrs.extend(c.display_name_attributes.iter().cloned());
        attrs.extend([
            c.mail_attribute.clone(),
            c.department_attribute.clone(),
            c.title_attribute.clone(),
            // Asked of every server: one that does not know an attribute ignores it.
            "userAccountControl".to_string(),
            "pwdAccountLockedTime".to_string(),
        ]);
        if c.groups == LdapGroupMode::MemberOf {
            attrs.push("memberOf".to_string());
        }
        attrs
    }

    /// The entries the filter matches, at most two (two already means ambiguous).
    async fn find_entries(&self, filter: String) -> Result<Vec<UserEntry>, AuthError> {
        let base = self.cfg.user_base.clone();
        let attrs = self.user_attributes();
        let timeout = self.cfg.timeout;
        let filter = &filter;
        let base = &base;
        let attrs = &attrs;
        self.with_service("searching for the user", move |mut ldap| {
            Box::pin(async move {
                let result = ldap
                    .with_search_options(SearchOptions::new().sizelimit(2))
                    .with_timeout(timeout)
                    .search(base, Scope::Subtree, filter, attrs.clone())
                    .await?;
                // 4 is sizeLimitExceeded: more than one match, which is all we need to know;
                // 10 is a referral, which is ignored like the continuation references.
                match result.1.rc {
                    0 | 4 | 10 => {}
                    32 => return Ok(Vec::new()),
                    _ => return Err(LdapError::from(result.1)),
                }
                Ok(result
                    .0
                    .into_iter()
                    .filter(|e| !e.is_ref() && !e.is_intermediate())
                    .map(|e| UserEntry::from_search(SearchEntry::construct(e)))
                    .collect())
            })
        })
        .await
    }

    /// The one entry the filter matches; `None` when none or several do.
    async fn find_one(&self, filter: String, who: &str) -> Result<Option<UserEntry>, AuthError> {
        let mut entries = self.find_entries(filter).await?;
        if entries.len() > 1 {
            tracing::warn!(
                user = who,
                "the user filter matches more than one entry; refusing the ambiguous login"
            );
            return Ok(None);
        }
        Ok(entries.pop())
    }

    // ---- groups ----

    /// The user's groups, nesting expanded, sorted and without duplicates.
    async fn groups_of(&self, user: &UserEntry) -> Result<Vec<String>, AuthError> {
        let names = match self.cfg.groups {
            LdapGroupMode::InChain => {
                let filter = fill(&self.cfg.group_filter, "{dn}", &user.dn);
                let found = self.search_groups(filter).await?;
                found
                    .iter()
                    .filter_map(|g| self.group_name(g))
                    .collect::<BTreeSet<_>>()
            }
            LdapGroupMode::Search => self.expand_by_search(&user.dn).await?,
            LdapGroupMode::MemberOf => {
                self.expand_by_member_of(user.values("memberOf").to_vec())
                    .await?
            }
        };
        Ok(names.into_iter().collect())
    }

    fn group_name(&self, g: &UserEntry) -> Option<String> {
        let name = g.first(&self.cfg.group_name_attribute).map(str::to_string);
        if name.is_none() {
            tracing::debug!(group = %g.dn, attribute = %self.cfg.group_name_attribute, "a group without a name is skipped");
        }
        name
    }

    /// Groups matching a filter, through the paged-results control.
    async fn search_groups(&self, filter: String) -> Result<Vec<UserEntry>, AuthError> {
        let base = self.cfg.group_base.clone();
        let attrs = vec![self.cfg.group_name_attribute.clone()];
        self.paged_search(base, Scope::Subtree, filter, attrs).await
    }

    async fn paged_search(
        &self,
        base: String,
        scope: Scope,
        filter: String,
        attrs: Vec<String>,
    ) -> Result<Vec<UserEntry>, AuthError> {
        let timeout = self.cfg.timeout;
        let page_size = i32::try_from(self.cfg.page_size).unwrap_or(500);
        let (base, filter, attrs) = (&base, &filter, &attrs);
        self.with_service("searching for groups", move |mut ldap| {
            Box::pin(async move {
                let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
                    Box::new(EntriesOnly::new()),
                    Box::new(PagedResults::new(page_size)),
                ];
                let mut stream = ldap
                    .with_timeout(timeout)
                    .streaming_search_with(adapters, base, scope, filter, attrs.clone())
                    .await?;
                let mut found = Vec::new();
                while let Some(entry) = stream.next().await? {
                    if entry.is_ref() || entry.is_intermediate() {
                        continue;
                    }
                    found.push(UserEntry::from_search(SearchEntry::construct(entry)));
                    if found.len() > MAX_GROUPS {
                        let _ = stream.finish().await;
                        return Ok(found);
                    }
                }
                let result = stream.finish().await;
                match result.rc {
                    0 | 10 => Ok(found),
                    // A base that does not exist (a dangling memberOf value) holds nothing.
                    32 => Ok(Vec::new()),
                    _ => Err(LdapError::from(result)),
                }
            })
        })
        .await
    }

    /// Searches for the groups whose member is the user, then for the groups whose member
    /// is one of those, level by level: OpenLDAP's `memberOf` is not transitive.
    async fn expand_by_search(&self, user_dn: &str) -> Result<BTreeSet<String>, AuthError> {
        let mut names = BTreeSet::new();
        let mut seen: HashSet<String> = HashSet::new();
        seen.insert(dn_key(user_dn));
        let mut frontier = vec![user_dn.to_string()];
        for level in 0..=self.cfg.group_nesting_depth {
            if frontier.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for chunk in frontier.chunks(DNS_PER_FILTER) {
                let filter = any_of(&self.cfg.group_filter, chunk);
                for g in self.search_groups(filter).await? {
                    if seen.insert(dn_key(&g.dn)) {
                        if let Some(name) = self.group_name(&g) {
                            names.insert(name);
                        }
                        next.push(g.dn);
                    }
                }
            }
            if seen.len() > MAX_GROUPS {
                tracing::warn!(
                    groups = seen.len(),
                    "group expansion stopped: too many groups"
                );
                break;
            }
            frontier = next;
            if level == self.cfg.group_nesting_depth && !frontier.is_empty() {
                tracing::warn!(
                    user = user_dn,
                    depth = self.cfg.group_nesting_depth,
                    "groups are nested deeper than group_nesting_depth; the deeper ones are left out"
                );
            }
        }
        Ok(names)
    }

    /// Reads each group named in `memberOf`, then the groups named in their own `memberOf`.
    async fn expand_by_member_of(
        &self,
        direct: Vec<String>,
    ) -> Result<BTreeSet<String>, AuthError> {
        let mut names = BTreeSet::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut frontier = direct;
        let attrs = vec![
            self.cfg.group_name_attribute.clone(),
            "memberOf".to_string(),
        ];
        for level in 0..=self.cfg.group_nesting_depth {
            let mut next = Vec::new();
            for dn in frontier {
                if !seen.insert(dn_key(&dn)) {
                    continue;
                }
                let found = self
                    .paged_search(dn, Scope::Base, "(objectClass=*)".into(), attrs.clone())
                    .await?;
                for g in found {
                    if let Some(name) = self.group_name(&g) {
                        names.insert(name);
                    }
                    next.extend(g.values("memberOf").iter().cloned());
                }
            }
            next.retain(|dn| !seen.contains(&dn_key(dn)));
            frontier = next;
            if frontier.is_empty() || seen.len() > MAX_GROUPS {
                break;
            }
            if level == self.cfg.group_nesting_depth {
                tracing::warn!(
                    depth = self.cfg.group_nesting_depth,
                    "groups are nested deeper than group_nesting_depth; the deeper ones are left out"
                );
            }
        }
        Ok(names)
    }

    // ---- the user's own bind ----

    /// Binds as `dn` with the user's password on a connection of its own (never a pooled
    /// service connection, which must stay bound as the service account).
    async fn bind_as_user(&self, dn: &str, password: &str) -> Result<LdapResult, AuthError> {
        let mut last = String::new();
        // Like the service bind: a server that does not answer is skipped, one that answers
        // is believed.
        for url in &self.cfg.urls {
            let mut ldap = match self.connect_to(url).await {
                Ok(ldap) => ldap,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let ppolicy = RawControl {
                ctype: PPOLICY_OID.to_string(),
                crit: false,
                val: None,
            };
            let result = ldap
                .with_controls(ppolicy)
                .with_timeout(self.cfg.timeout)
                .simple_bind(dn, password)
                .await;
            // Dropping the last handle closes the connection. An Unbind first would make the
            // server close the TLS stream without close_notify, which ldap3 logs as a warning
            // at every login.
            drop(ldap);
            match result {
                Ok(result) => return Ok(result),
                Err(e) => {
                    tracing::warn!(server = %url, error = %e, "the directory server did not answer the password check");
                    last = format!("{url}: {}", describe(&e));
                }
            }
        }
        Err(no_server_answered(&last))
    }

    fn user_info(&self, entry: &UserEntry, groups: Vec<String>) -> Result<UserInfo, AuthError> {
        let c = &self.cfg;
        let Some(id) = entry.first(&c.id_attribute) else {
            return Err(AuthError::Unavailable(format!(
                "the entry {} has no `{}` (id_attribute)",
                entry.dn, c.id_attribute
            )));
        };
        let id = id.to_lowercase();
        let display_name = c
            .display_name_attributes
            .iter()
            .find_map(|a| entry.first(a))
            .map_or_else(|| id.clone(), str::to_string);
        Ok(UserInfo {
            display_name,
            mail: entry.first(&c.mail_attribute).map(str::to_string),
            department: entry.first(&c.department_attribute).map(str::to_string),
            title: entry.first(&c.title_attribute).map(str::to_string),
            groups,
            id,
        })
    }

    async fn authenticate_inner(&self, login: &str, password: &str) -> Result<UserInfo, AuthError> {
        let login = login.trim();
        // No directory has such a login name; refusing it here keeps odd bytes off the wire.
        if login.is_empty() || login.len() > MAX_LOGIN_LEN || login.chars().any(char::is_control) {
            return Err(AuthError::Refused(FailureReason::NoSuchUser));
        }
        let filter = fill(&self.cfg.user_filter, "{login}", login);
        let Some(entry) = self.find_one(filter, login).await? else {
            return Err(AuthError::Refused(FailureReason::NoSuchUser));
        };
        let result = self.bind_as_user(&entry.dn, password).await?;
        let policy = ppolicy_error(&result);
        if result.rc != 0 {
            return match classify_bind_failure(&result, policy, entry.blocked()) {
                BindFailure::Refused(reason) => {
                    tracing::info!(user = login, dn = %entry.dn, reason = reason.as_str(), rc = result.rc, text = %result.text, "the directory refused the bind");
                    Err(AuthError::Refused(reason))
                }
                BindFailure::Unavailable(message) => Err(AuthError::Unavailable(message)),
            };
        }
        // The password is right. A password that must be changed first, or an account the
        // entry marks as disabled or locked, still cannot log in.
        if let Some(PolicyError::ChangeAfterReset | PolicyError::PasswordExpired) = policy {
            return Err(AuthError::Refused(FailureReason::Expired));
        }
        if let Some(reason) = entry.blocked() {
            return Err(AuthError::Refused(reason));
        }
        let groups = self.groups_of(&entry).await?;
        self.user_info(&entry, groups)
    }

    async fn lookup_inner(&self, user_id: &str) -> Result<Option<UserInfo>, AuthError> {
        let id = user_id.trim();
        if id.is_empty() || id.len() > MAX_LOGIN_LEN || id.chars().any(char::is_control) {
            return Ok(None);
        }
        let filter = fill(&self.cfg.lookup_filter, "{id}", id);
        let Some(entry) = self.find_one(filter, id).await? else {
            return Ok(None);
        };
        if let Some(reason) = entry.blocked() {
            tracing::info!(
                user = id,
                reason = reason.as_str(),
                "the directory account cannot log in any more"
            );
            return Ok(None);
        }
        let groups = self.groups_of(&entry).await?;
        self.user_info(&entry, groups).map(Some)
    }
}

#[async_trait::async_trait]
impl Directory for LdapDirectory {
    async fn authenticate(&self, login: &str, password: &str) -> Result<UserInfo, AuthError> {
        // Before anything touches the network: an empty password is an unauthenticated bind.
        if password_is_blank(password) {
            return Err(AuthError::Refused(FailureReason::EmptyPassword));
        }
        let budget = self.budget();
        tokio::time::timeout(budget, self.authenticate_inner(login, password))
            .await
            .unwrap_or_else(|_| {
                Err(AuthError::Unavailable(format!(
                    "the directory did not finish the login within {budget:?}"
                )))
            })
    }

    async fn lookup(&self, user_id: &str) -> Result<Option<UserInfo>, AuthError> {
        let budget = self.budget();
        tokio::time::timeout(budget, self.lookup_inner(user_id))
            .await
            .unwrap_or_else(|_| {
                Err(AuthError::Unavailable(format!(
                    "the directory did not finish the lookup within {budget:?}"
                )))
            })
    }

    fn kind(&self) -> &'static str {
        "ldap"
    }

    async fn check(&self) -> Result<Vec<String>, AuthError> {
        LdapDirectory::check(self, None).await
    }
}

/// A connection bound as the service account for the searches of one staff-directory run
/// (see [`LdapDirectory::listing`]); it closes when dropped.
pub(crate) struct Listing<'d> {
    directory: &'d LdapDirectory,
    ldap: Ldap,
}

impl Listing<'_> {
    /// Every entry under `base` that `filter` matches, read page by page (the paged-results
    /// control, `page_size` entries a page). Anything short of a complete answer is an error
    /// — a size or time limit, a dropped connection, a base that does not exist — because the
    /// caller deletes what the listing does not contain.
    pub(crate) async fn entries(
        &mut self,
        base: &str,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<UserEntry>, AuthError> {
        const WHAT: &str = "listing the directory";
        let cfg = &self.directory.cfg;
        let page_size = i32::try_from(cfg.page_size).unwrap_or(500);
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(page_size)),
        ];
        // The timeout bounds each page's answer, not the whole listing: a large directory
        // takes as many round trips as it has pages.
        let mut stream = self
            .ldap
            .with_timeout(cfg.timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs.to_vec())
            .await
            .map_err(|e| self.directory.unavailable(WHAT, &e))?;
        let mut found = Vec::new();
        loop {
            match stream.next().await {
                Ok(Some(entry)) => {
                    if entry.is_ref() || entry.is_intermediate() {
                        continue;
                    }
                    found.push(UserEntry::from_search(SearchEntry::construct(entry)));
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(AuthError::Unavailable(format!(
                        "{WHAT} under `{base}` stopped after {} entries: {}",
                        found.len(),
                        describe(&e)
                    )));
                }
            }
        }
        let result = stream.finish().await;
        match result.rc {
            0 => Ok(found),
            4 => Err(AuthError::Unavailable(format!(
                "{WHAT} under `{base}`: the directory's size limit stopped the listing after {} entries even with paging; let the service account read more (OpenLDAP: `limits dn.exact=\"<bind_dn>\" size.prtotal=unlimited`; Active Directory: MaxPageSize) or lower `page_size`",
                found.len()
            ))),
            32 => Err(AuthError::Unavailable(format!(
                "{WHAT}: the search base `{base}` does not exist or the service account cannot read it"
            ))),
            _ => Err(self
                .directory
                .result_error(&format!("{WHAT} under `{base}`"), &result)),
        }
    }

    /// The entry at `dn` when it exists and `filter` matches it (a base-scope search), with
    /// `attrs`; `None` when there is no such entry, `dn` is not a DN, or the server refers
    /// the search elsewhere (another partition).
    pub(crate) async fn entry(
        &mut self,
        dn: &str,
        filter: &str,
        attrs: &[String],
    ) -> Result<Option<UserEntry>, AuthError> {
        const WHAT: &str = "reading a directory entry";
        let cfg = &self.directory.cfg;
        let ldap3::SearchResult(entries, result) = self
            .ldap
            .with_timeout(cfg.timeout)
            .search(dn, Scope::Base, filter, attrs.to_vec())
            .await
            .map_err(|e| self.directory.unavailable(WHAT, &e))?;
        match result.rc {
            0 => Ok(entries
                .into_iter()
                .filter(|e| !e.is_ref() && !e.is_intermediate())
                .map(|e| UserEntry::from_search(SearchEntry::construct(e)))
                .next()),
            // 10: a referral; 32: no such object; 34: invalid DN syntax.
            10 | 32 | 34 => Ok(None),
            _ => Err(self
                .directory
                .result_error(&format!("{WHAT} `{dn}`"), &result)),
        }
    }
}

// ---- pure helpers (unit-tested below) ----

/// Puts `value`, RFC 4515-escaped, into a filter template wherever `placeholder` stands.
pub fn fill(template: &str, placeholder: &str, value: &str) -> String {
    template.replace(placeholder, &ldap_escape(value))
}

/// One filter that matches what `template` matches for any of `dns`.
fn any_of(template: &str, dns: &[String]) -> String {
    if let [one] = dns {
        return fill(template, "{dn}", one);
    }
    let mut filter = String::from("(|");
    for dn in dns {
        filter.push_str(&fill(template, "{dn}", dn));
    }
    filter.push(')');
    filter
}

/// A DN as a set key: DNs compare case-insensitively in practice (attribute names always,
/// values under the usual matching rules).
fn dn_key(dn: &str) -> String {
    dn.trim().to_lowercase()
}

fn is_timeout(e: &LdapError) -> bool {
    matches!(e, LdapError::Timeout { .. })
}

/// Whether the error is about the connection rather than an answer from the server.
fn is_transport(e: &LdapError) -> bool {
    !matches!(
        e,
        LdapError::LdapResult { .. } | LdapError::FilterParsing | LdapError::AdapterInit(_)
    )
}

fn describe(e: &LdapError) -> String {
    let tls = |detail: &dyn fmt::Display| {
        format!(
            "TLS failed ({detail}); check `ca_file` and that the server's certificate names the host in the URL"
        )
    };
    match e {
        LdapError::Timeout { .. } => "no answer in time".into(),
        LdapError::Rustls { source } => tls(source),
        // The handshake's errors arrive wrapped in an I/O error.
        LdapError::Io { source }
            if source
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            tls(source)
        }
        other => other.to_string(),
    }
}

fn no_server_answered(last: &str) -> AuthError {
    AuthError::Unavailable(format!("no directory server answered (last: {last})"))
}

fn encryption_required(r: &LdapResult) -> String {
    format!(
        "the directory requires an encrypted connection for this bind (LDAP result {}: {}): use an ldaps:// URL or set starttls = true",
        r.rc,
        r.text.trim()
    )
}

/// The error of a password policy response control (draft-behera-ldap-password-policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PolicyError {
    PasswordExpired,
    AccountLocked,
    ChangeAfterReset,
    Other(u8),
}

fn ppolicy_error(result: &LdapResult) -> Option<PolicyError> {
    let raw = result
        .ctrls
        .iter()
        .map(|c| &c.1)
        .find(|c| c.ctype == PPOLICY_OID)?;
    match parse_ppolicy_value(raw.val.as_deref()?)? {
        0 => Some(PolicyError::PasswordExpired),
        1 => Some(PolicyError::AccountLocked),
        2 => Some(PolicyError::ChangeAfterReset),
        n => Some(PolicyError::Other(n)),
    }
}

/// The `error` field of `PasswordPolicyResponseValue ::= SEQUENCE { warning [0] ... OPTIONAL,
/// error [1] ENUMERATED OPTIONAL }`, read with a small BER walker (ldap3 has no parser for
/// this control).
fn parse_ppolicy_value(value: &[u8]) -> Option<u8> {
    let (tag, mut body, _) = ber_tlv(value)?;
    if tag != 0x30 {
        return None;
    }
    while !body.is_empty() {
        let (tag, content, rest) = ber_tlv(body)?;
        if tag == 0x81 {
            return match content {
                [n] => Some(*n),
                _ => None,
            };
        }
        body = rest;
    }
    None
}

/// Splits one BER element off the front: (tag, content, rest).
fn ber_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, header) = if first & 0x80 == 0 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, b.get(header..end)?, b.get(end..)?))
}

#[derive(Debug, PartialEq, Eq)]
enum BindFailure {
    Refused(FailureReason),
    Unavailable(String),
}

/// Why a user's bind failed. Active Directory puts the reason in the diagnostic text
/// (`... data 52e, v4f7c`); OpenLDAP in the password policy control; the entry itself may say
/// the account is disabled or locked.
fn classify_bind_failure(
    r: &LdapResult,
    policy: Option<PolicyError>,
    blocked: Option<FailureReason>,
) -> BindFailure {
    use FailureReason::*;
    match r.rc {
        49 => {
            if let Some(code) = ad_data_code(&r.text) {
                let reason = match code.as_str() {
                    "525" => Some(NoSuchUser),
                    "52e" => Some(WrongPassword),
                    // 530: not allowed at this time; 531: not from this workstation;
                    // 533: disabled; 701: the account (not the password) has expired.
                    "530" | "531" | "533" | "701" => Some(Disabled),
                    "532" | "773" => Some(Expired),
                    "775" => Some(Locked),
                    _ => None,
                };
                if let Some(reason) = reason {
                    return BindFailure::Refused(reason);
                }
            }
            match policy {
                Some(PolicyError::AccountLocked) => {
                    BindFailure::Refused(if blocked == Some(Disabled) {
                        Disabled
                    } else {
                        Locked
                    })
                }
                Some(PolicyError::PasswordExpired | PolicyError::ChangeAfterReset) => {
                    BindFailure::Refused(Expired)
                }
                // A server that does not say why (no policy control), for an entry marked
                // disabled or locked: that mark is the likelier reason.
                _ => BindFailure::Refused(blocked.unwrap_or(WrongPassword)),
            }
        }
        8 | 13 => BindFailure::Unavailable(encryption_required(r)),
        // Unwilling to perform, or no right to bind: the server will not let this account in.
        50 | 53 => BindFailure::Refused(blocked.unwrap_or(Disabled)),
        _ => BindFailure::Unavailable(format!(
            "checking the password: the directory answered {} {}",
            r.rc,
            r.text.trim()
        )),
    }
}

/// The hexadecimal code after `data ` in Active Directory's bind diagnostics, lower case.
fn ad_data_code(text: &str) -> Option<String> {
    let at = text.find("data ")?;
    let code: String = text[at + 5..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (!code.is_empty()).then(|| code.to_ascii_lowercase())
}

/// The TLS configuration: the ring provider, and a root store with the certificates of the
/// CA file, or the system's when there is none.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, LdapDirectoryError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_err = |message: String| LdapDirectoryError::CaFile {
                path: path.to_path_buf(),
                message,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_err(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ca_err(format!("not a PEM certificate file ({e})")))?;
            if certs.is_empty() {
                return Err(ca_err("it holds no PEM certificate".into()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| ca_err(format!("unusable certificate ({e})")))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "cannot read a system CA certificate");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!(
                    "no system CA certificates found: TLS connections to the directory will fail; set `ca_file`"
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapDirectoryError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(rc: u32, text: &str) -> LdapResult {
        LdapResult {
            rc,
            matched: String::new(),
            text: text.into(),
            refs: vec![],
            ctrls: vec![],
        }
    }

    #[test]
    fn filter_values_are_escaped() {
        let t = "(&(objectClass=inetOrgPerson)(|(uid={login})(mail={login})))";
        for (login, escaped) in [
            ("*", r"\2a"),
            ("a)(uid=*", r"a\29\28uid=\2a"),
            ("(", r"\28"),
            (")", r"\29"),
            ("\\", r"\5c"),
            ("\0", r"\00"),
            ("mette", "mette"),
            ("søren", "søren"),
        ] {
            let f = fill(t, "{login}", login);
            assert_eq!(
                f,
                format!("(&(objectClass=inetOrgPerson)(|(uid={escaped})(mail={escaped})))")
            );
            // Still one well-formed filter with the same structure.
            assert!(ldap3::parse_filter(&f).is_ok(), "{f}");
        }
    }

    #[test]
    fn escaping_round_trips_for_any_value() {
        // A small property test: every string, escaped, parses as one equality filter whose
        // assertion value is the original bytes.
        let alphabet: Vec<char> = "a*()\\\0 =,+<>#;\"æøå\u{1F600}".chars().collect();
        let mut seed: u64 = 0x5eed;
        for _ in 0..2000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let mut x = seed;
            for _ in 0..len {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[((x >> 33) as usize) % alphabet.len()]);
            }
            let escaped = ldap_escape(s.as_str()).into_owned();
            assert!(
                !escaped.contains(['*', '(', ')', '\0']),
                "{s:?} → {escaped}"
            );
            let filter = format!("(uid={escaped})");
            assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
            assert_eq!(
                ldap3::ldap_unescape(escaped.as_str()).unwrap(),
                s,
                "round trip of {s:?}"
            );
        }
    }

    #[test]
    fn dns_in_filters_are_escaped() {
        let dn = r"cn=Brøndum\, Niels (IT),ou=people,dc=kommune,dc=example";
        let f = fill("(member={dn})", "{dn}", dn);
        assert_eq!(
            f,
            r"(member=cn=Brøndum\5c, Niels \28IT\29,ou=people,dc=kommune,dc=example)"
        );
        let two = any_of(
            "(member={dn})",
            &["cn=a,dc=x".to_string(), "cn=b*,dc=x".to_string()],
        );
        assert_eq!(two, r"(|(member=cn=a,dc=x)(member=cn=b\2a,dc=x))");
        assert!(ldap3::parse_filter(&two).is_ok());
        let chain = fill(
            "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))",
            "{dn}",
            dn,
        );
        assert!(ldap3::parse_filter(&chain).is_ok(), "{chain}");
    }

    #[test]
    fn active_directory_bind_codes() {
        use FailureReason::*;
        let ad = |code: &str| {
            result(
                49,
                &format!(
                    "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {code}, v4f7c\0"
                ),
            )
        };
        for (code, reason) in [
            ("52e", WrongPassword),
            ("525", NoSuchUser),
            ("533", Disabled),
            ("775", Locked),
            ("532", Expired),
            ("773", Expired),
            ("701", Disabled),
            ("52E", WrongPassword),
        ] {
            assert_eq!(
                classify_bind_failure(&ad(code), None, None),
                BindFailure::Refused(reason),
                "{code}"
            );
        }
        // An unknown code is still a refused login.
        assert_eq!(
            classify_bind_failure(&ad("999"), None, None),
            BindFailure::Refused(WrongPassword)
        );
    }

    #[test]
    fn encryption_required_says_what_to_do() {
        let r = result(
            8,
            "00002028: LdapErr: DSID-0C090256, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection, data 0, v4f7c",
        );
        match classify_bind_failure(&r, None, None) {
            BindFailure::Unavailable(m) => {
                assert!(m.contains("ldaps://") && m.contains("starttls"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn openldap_policy_reasons() {
        use FailureReason::*;
        let r = result(49, "");
        assert_eq!(
            classify_bind_failure(&r, Some(PolicyError::AccountLocked), None),
            BindFailure::Refused(Locked)
        );
        assert_eq!(
            classify_bind_failure(&r, Some(PolicyError::AccountLocked), Some(Disabled)),
            BindFailure::Refused(Disabled)
        );
        assert_eq!(
            classify_bind_failure(&r, Some(PolicyError::PasswordExpired), None),
            BindFailure::Refused(Expired)
        );
        assert_eq!(
            classify_bind_failure(&r, None, None),
            BindFailure::Refused(WrongPassword)
        );
        assert_eq!(
            classify_bind_failure(&r, None, Some(Disabled)),
            BindFailure::Refused(Disabled)
        );
        assert!(matches!(
            classify_bind_failure(&result(52, "unavailable"), None, None),
            BindFailure::Unavailable(_)
        ));
    }

    #[test]
    fn ppolicy_response_values() {
        // error: accountLocked
        assert_eq!(
            parse_ppolicy_value(&[0x30, 0x03, 0x81, 0x01, 0x01]),
            Some(1)
        );
        // warning (graceAuthNsRemaining 2), then error: changeAfterReset
        assert_eq!(
            parse_ppolicy_value(&[0x30, 0x08, 0xa0, 0x03, 0x81, 0x01, 0x02, 0x81, 0x01, 0x02]),
            Some(2)
        );
        // a warning only
        assert_eq!(
            parse_ppolicy_value(&[0x30, 0x05, 0xa0, 0x03, 0x80, 0x01, 0x05]),
            None
        );
        // an empty sequence, truncated and malformed values
        assert_eq!(parse_ppolicy_value(&[0x30, 0x00]), None);
        assert_eq!(parse_ppolicy_value(&[0x30, 0x05, 0x81]), None);
        assert_eq!(parse_ppolicy_value(&[0x04, 0x00]), None);
        assert_eq!(parse_ppolicy_value(&[]), None);
        assert_eq!(
            parse_ppolicy_value(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    #[test]
    fn blocked_accounts() {
        let entry = |k: &str, v: &str| UserEntry {
            dn: "cn=x".into(),
            attrs: [(k.to_string(), vec![v.to_string()])].into_iter().collect(),
        };
        assert_eq!(
            entry("userAccountControl", "514").blocked(),
            Some(FailureReason::Disabled)
        );
        assert_eq!(entry("useraccountcontrol", "512").blocked(), None);
        assert_eq!(
            entry("pwdAccountLockedTime", PERMANENT_LOCK).blocked(),
            Some(FailureReason::Disabled)
        );
        assert_eq!(
            entry("pwdAccountLockedTime", "20261127101500Z").blocked(),
            Some(FailureReason::Locked)
        );
        assert_eq!(entry("cn", "Anna").blocked(), None);
    }

    #[test]
    fn ad_data_codes_are_read_from_the_text() {
        assert_eq!(ad_data_code("..., data 775, v2580").as_deref(), Some("775"));
        assert_eq!(ad_data_code("no code here"), None);
        assert_eq!(ad_data_code("data , x"), None);
    }
}
