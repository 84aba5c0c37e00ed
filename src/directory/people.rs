//! The staff directory as a source (kind `staff-directory`): every person in the directory
//! becomes a document of kind `person`, with their name as its title, a body made of what
//! people search for (title, department, responsibilities, office, mail, phone) and the
//! structured facts in `properties` (`title`, `department`, `phone`, `mail`, `manager`,
//! `office`, `room`, `description`) for the person card in the results.
//!
//! It reads the `[directory]` the portal logs in against: over LDAP with the same servers,
//! TLS and service account (one connection and one bind per run), or, with the demo
//! directory, the people of the demo file. A manager is named, not linked: the `manager`
//! attribute holds a DN, which is resolved to that person's display name (falling back to the
//! DN's first value when the manager is not among the people the source lists).
//!
//! **Runs are incremental over LDAP.** The cursor remembers the directory's own time of the
//! newest change seen (`modifyTimestamp` on OpenLDAP, `whenChanged` on Active Directory:
//! both GeneralizedTime, stamped by the server's clock, so the portal's clock never enters
//! into it), and the next run asks only for `(&<filter>(modifyTimestamp>=<newest − overlap>))`.
//! The overlap covers servers whose clocks differ, changes replicated late and the
//! one-second resolution of the timestamps; people read again because of it are compared by
//! fingerprint and cost no indexing. Moved and renamed entries are stamped too. A changed
//! person's manager is named with one base-scope search per manager not among the changes,
//! and the people who report to a changed person (`(manager=<their DN>)`, escaped) are read
//! again, so that a manager's new name reaches their reports' cards.
//!
//! A timestamp cannot show that someone left. So every `full_listing_every` a run also lists
//! every person's id — the id attribute only, a few dozen bytes a person — emits `Unchanged`
//! for those not otherwise sent (and reads the few listed but not indexed, which a clock
//! further off than the overlap could have hidden), and ends with "traversal complete",
//! letting the caller's guarded mark-and-sweep delete people who left. A listing that fails
//! part way is an error: the run sends no "traversal complete" and nobody is deleted. A
//! first, `full` or reconfigured run (the cursor records a fingerprint of the settings the
//! documents are made from, such as `access`) lists everybody with every attribute instead,
//! comparing a fingerprint per person. The demo directory is a local file and is read whole
//! at every run. Accounts the directory marks as disabled (Active Directory's ACCOUNTDISABLE
//! flag, OpenLDAP's permanent ppolicy lock, `disabled = true` in the demo file) are left out,
//! and deleted when a change disables them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use samle_connectors::{Change, Connector, ConnectorError, Document, RunContext};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::demo::{DemoDirectory, DemoPerson};
use super::ldap::{LdapDirectory, Listing, UserEntry, fill};
use super::{AuthError, FailureReason};
use crate::config::{DirectoryConfig, LdapConfig, LdapFlavour};

/// The kind as written in the configuration.
pub const KIND: &str = "staff-directory";

/// Bump when the conversion of people changes enough to re-emit everybody once.
const CONVERSION_VERSION: u32 = 1;
/// Bump when the cursor's meaning changes: an older cursor then starts with a complete
/// listing.
const CURSOR_VERSION: u32 = 1;
const DEFAULT_DOC_KIND: &str = "person";
/// Every logged-in employee may see the staff directory, as in any organisation's phone
/// book; anonymous visitors (principal `public`) may not.
const DEFAULT_ACCESS: &str = "authenticated";

const OPENLDAP_FILTER: &str = "(objectClass=inetOrgPerson)";
/// People (not computers, which are `user`s too) whose account is not disabled (bit 2 of
/// userAccountControl, tested with the bitwise-AND matching rule).
const AD_FILTER: &str =
    "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))";

/// The operational attributes with the time of an entry's last change (GeneralizedTime).
const OPENLDAP_CHANGED: &str = "modifyTimestamp";
const AD_CHANGED: &str = "whenChanged";
/// Five minutes: the clock skew Kerberos tolerates between Active Directory's servers, and
/// far more than a single server's one-second resolution needs.
const DEFAULT_OVERLAP: &str = "5m";
const DEFAULT_FULL_LISTING_EVERY: &str = "24h";
/// How many DNs one `(|(manager=a)(manager=b)…)` search asks about.
const DNS_PER_FILTER: usize = 32;

/// The `[sources.staff-directory]` table. Every key is optional: the connection, the search
/// base and the attribute names default to the `[directory]` table's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffDirectoryParams {
    /// Where people are searched (default: the directory's `user_base`).
    pub base_dn: Option<String>,
    /// Which entries are people. Default for OpenLDAP and `ldap`: `(objectClass=inetOrgPerson)`;
    /// for Active Directory: people whose account is not disabled.
    pub filter: Option<String>,
    /// Principals who may see the people. Default `["authenticated"]` (every logged-in
    /// employee); an empty list means nobody.
    pub access: Option<Vec<String>>,
    /// The document kind (default `"person"`, which the results show as a person card).
    pub kind: Option<String>,
    /// `"da"` or `"en"` for every person; otherwise detected from the text.
    pub language: Option<String>,
    /// Which attribute holds which fact, where the directory differs from the defaults.
    #[serde(default)]
    pub attributes: AttributeParams,
    /// The operational attribute with the time of each entry's last change, which makes runs
    /// incremental. Default `modifyTimestamp` (OpenLDAP and `ldap`), `whenChanged` (Active
    /// Directory); `""` lists everybody at every run.
    pub changed_attribute: Option<String>,
    /// How far before the newest change seen a run looks again (default `"5m"`): at least the
    /// clock skew between the directory's servers and their replication delay.
    pub overlap: Option<String>,
    /// How often a run also lists every person's id, so that people who left are deleted
    /// (default `"24h"`; `"0s"` at every run).
    pub full_listing_every: Option<String>,
}

/// Attribute names; an empty string leaves an optional fact out.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeParams {
    /// The person's stable id (default: the directory's `id_attribute`).
    pub id: Option<String>,
    /// The first of these the entry has is the name (default: `display_name_attributes`).
    pub name: Option<Vec<String>>,
    /// Default: the directory's `title_attribute`.
    pub title: Option<String>,
    /// Default: the directory's `department_attribute`.
    pub department: Option<String>,
    /// Default `telephoneNumber`.
    pub phone: Option<String>,
    /// Default: the directory's `mail_attribute`.
    pub mail: Option<String>,
    /// A DN (default `manager`).
    pub manager: Option<String>,
    /// Default `physicalDeliveryOfficeName`.
    pub office: Option<String>,
    /// Default `roomNumber`.
    pub room: Option<String>,
    /// Responsibilities, searched and shown in the snippet (default `description`).
    pub description: Option<String>,
}

impl StaffDirectoryParams {
    /// Checks what can be checked without a directory: principals, kind, language, the
    /// filter's syntax and the attribute names. The message says which key is wrong.
    pub fn validate(&self) -> Result<(), String> {
        access(self)?;
        doc_kind(self)?;
        language(self)?;
        if let Some(filter) = &self.filter
            && ldap3::parse_filter(filter).is_err()
        {
            return Err(format!(
                "`filter`: `{filter}` is not a valid LDAP filter (RFC 4515), e.g. \"(objectClass=inetOrgPerson)\""
            ));
        }
        if let Some(changed) = &self.changed_attribute {
            attribute_name("changed_attribute", changed, true)?;
        }
        duration("overlap", self.overlap.as_deref(), DEFAULT_OVERLAP)?;
        duration(
            "full_listing_every",
            self.full_listing_every.as_deref(),
            DEFAULT_FULL_LISTING_EVERY,
        )?;
        if let Some(base) = &self.base_dn
            && base.trim().is_empty()
        {
            return Err(
                "`base_dn` is empty; leave it out to search the directory's user_base".into(),
            );
        }
        let a = &self.attributes;
        if let Some(id) = &a.id {
            attribute_name("attributes.id", id, false)?;
        }
        if let Some(names) = &a.name {
            if names.is_empty() {
                return Err("`attributes.name`: expected at least one attribute name".into());
            }
            for n in names {
                attribute_name("attributes.name", n, false)?;
            }
        }
        for (key, value) in [
            ("attributes.title", &a.title),
            ("attributes.department", &a.department),
            ("attributes.phone", &a.phone),
            ("attributes.mail", &a.mail),
            ("attributes.manager", &a.manager),
            ("attributes.office", &a.office),
            ("attributes.room", &a.room),
            ("attributes.description", &a.description),
        ] {
            if let Some(v) = value {
                attribute_name(key, v, true)?;
            }
        }
        Ok(())
    }
}

fn attribute_name(key: &str, value: &str, may_be_empty: bool) -> Result<(), String> {
    if value.is_empty() && may_be_empty {
        return Ok(());
    }
    // Attribute names go into search requests as they are: letters, digits, `-`, `;`
    // (options) and `.` (OIDs) only.
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';');
    if ok {
        Ok(())
    } else {
        Err(format!("`{key}`: `{value}` is not an attribute name"))
    }
}

fn duration(key: &str, value: Option<&str>, default: &str) -> Result<Duration, String> {
    let value = value.unwrap_or(default);
    humantime::parse_duration(value.trim()).map_err(|_| {
        format!("`{key}`: `{value}` is not a duration such as \"{default}\" or \"30s\"")
    })
}

fn access(params: &StaffDirectoryParams) -> Result<Vec<String>, String> {
    let Some(list) = &params.access else {
        return Ok(vec![DEFAULT_ACCESS.to_owned()]);
    };
    list.iter()
        .map(|p| {
            let p = p.trim();
            let valid = p == "authenticated"
                || p == "public"
                || p.split_once(':').is_some_and(|(k, v)| {
                    (k == "group" || k == "user") && !v.trim().is_empty()
                });
            if valid {
                Ok(p.to_owned())
            } else {
                Err(format!(
                    "`access`: `{p}` is not a principal; expected `group:<name>`, `user:<id>`, `authenticated` or `public`"
                ))
            }
        })
        .collect()
}

fn doc_kind(params: &StaffDirectoryParams) -> Result<String, String> {
    match params.kind.as_deref() {
        None => Ok(DEFAULT_DOC_KIND.to_owned()),
        Some(kind)
            if !kind.is_empty()
                && kind
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Ok(kind.to_owned())
        }
        Some(kind) => Err(format!(
            "`kind`: `{kind}` must be lowercase letters a-z, digits and -, such as \"person\""
        )),
    }
}

fn language(params: &StaffDirectoryParams) -> Result<Option<String>, String> {
    match params.language.as_deref() {
        None => Ok(None),
        Some(l) => samle_index::Lang::parse(l)
            .map(|l| Some(l.as_str().to_owned()))
            .ok_or_else(|| {
                format!("`language`: `{l}` is not supported; expected \"da\" or \"en\"")
            }),
    }
}

/// Which attribute holds which fact, resolved against the directory's defaults.
#[derive(Clone, Debug)]
struct Mapping {
    id: String,
    name: Vec<String>,
    title: Option<String>,
    department: Option<String>,
    phone: Option<String>,
    mail: Option<String>,
    manager: Option<String>,
    office: Option<String>,
    room: Option<String>,
    description: Option<String>,
}

impl Mapping {
    fn new(a: &AttributeParams, cfg: &LdapConfig) -> Mapping {
        // An empty name switches an optional fact off.
        let optional = |given: &Option<String>, default: &str| {
            let name = given.as_deref().unwrap_or(default).trim();
            (!name.is_empty()).then(|| name.to_owned())
        };
        Mapping {
            id: a.id.clone().unwrap_or_else(|| cfg.id_attribute.clone()),
            name: a
                .name
                .clone()
                .unwrap_or_else(|| cfg.display_name_attributes.clone()),
            title: optional(&a.title, &cfg.title_attribute),
            department: optional(&a.department, &cfg.department_attribute),
            phone: optional(&a.phone, "telephoneNumber"),
            mail: optional(&a.mail, &cfg.mail_attribute),
            manager: optional(&a.manager, "manager"),
            office: optional(&a.office, "physicalDeliveryOfficeName"),
            room: optional(&a.room, "roomNumber"),
            description: optional(&a.description, "description"),
        }
    }

    /// Every attribute a listing asks for, with the two that mark disabled accounts.
    fn attributes(&self) -> Vec<String> {
        let mut attrs = vec![self.id.clone()];
        attrs.extend(self.name.iter().cloned());
        attrs.extend(
            [
                &self.title,
                &self.department,
                &self.phone,
                &self.mail,
                &self.manager,
                &self.office,
                &self.room,
                &self.description,
            ]
            .into_iter()
            .flatten()
            .cloned(),
        );
        attrs.extend(["userAccountControl".into(), "pwdAccountLockedTime".into()]);
        attrs
    }
}

/// One person, whichever directory they come from. Most facts may have several values (two
/// phone numbers, a title in two languages): the card shows the first, the text holds all.
#[derive(Clone, Debug, Default, PartialEq)]
struct Person {
    /// The document's external id: the id attribute in lower case, else the DN.
    id: String,
    /// Where the person was read from (a DN), for messages.
    origin: String,
    name: String,
    titles: Vec<String>,
    departments: Vec<String>,
    phones: Vec<String>,
    mails: Vec<String>,
    manager: Option<String>,
    offices: Vec<String>,
    rooms: Vec<String>,
    descriptions: Vec<String>,
}

enum Backend {
    Ldap(Box<LdapPeople>),
    Demo { file: PathBuf },
}

/// Where and how people are read from an LDAP directory.
struct LdapPeople {
    directory: LdapDirectory,
    base: String,
    /// Always in parentheses, so that it can be combined with `(&…)`.
    filter: String,
    map: Mapping,
    /// `None`: every run lists everybody.
    changes: Option<ChangeTracking>,
}

/// How changes since the last run are found.
struct ChangeTracking {
    attribute: String,
    /// Active Directory is documented to compare GeneralizedTime filter values written with
    /// a fraction (`20261127101500.0Z`); OpenLDAP takes either form.
    fraction: bool,
    overlap: Duration,
    full_listing_every: Duration,
}

impl ChangeTracking {
    /// The filter for the entries `filter` matches that changed at or after `since`.
    fn filter(&self, filter: &str, since: DateTime<Utc>) -> String {
        let time = since.format("%Y%m%d%H%M%S");
        let fraction = if self.fraction { ".0" } else { "" };
        format!("(&{filter}({}>={time}{fraction}Z))", self.attribute)
    }
}

/// What the cursor remembers between runs (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Cursor {
    version: u32,
    /// A fingerprint of the settings the documents are made from: when they change, the
    /// next run lists everybody with every attribute.
    settings: String,
    /// The directory's time of the newest change seen.
    newest: DateTime<Utc>,
    /// When the last complete listing of ids (or of everybody) was made, by the portal's
    /// clock.
    listed: DateTime<Utc>,
}

/// The staff-directory connector. Build it with [`crate::sources::build`] or
/// [`StaffDirectory::new`].
pub struct StaffDirectory {
    backend: Backend,
    access: Vec<String>,
    kind: String,
    language: Option<String>,
    /// See [`Cursor::settings`].
    settings: String,
}

impl StaffDirectory {
    /// Validates the parameters against the `[directory]` the people come from. Opens no
    /// connection: `check` and `run` do.
    pub fn new(
        params: &StaffDirectoryParams,
        directory: &DirectoryConfig,
    ) -> Result<StaffDirectory, ConnectorError> {
        let config = |m: String| ConnectorError::Config(format!("[sources.{KIND}] {m}"));
        params.validate().map_err(config)?;
        let backend = match directory {
            DirectoryConfig::Demo { file } => Backend::Demo { file: file.clone() },
            DirectoryConfig::Ldap(cfg) => {
                let directory = LdapDirectory::new(cfg)
                    .map_err(|e| ConnectorError::Config(format!("[directory] {e}")))?;
                let ad = cfg.flavour == LdapFlavour::ActiveDirectory;
                let filter = params
                    .filter
                    .as_deref()
                    .map(parenthesized)
                    .unwrap_or_else(|| if ad { AD_FILTER } else { OPENLDAP_FILTER }.to_owned());
                let changed = params
                    .changed_attribute
                    .as_deref()
                    .unwrap_or(if ad { AD_CHANGED } else { OPENLDAP_CHANGED })
                    .trim();
                let changes = if changed.is_empty() {
                    None
                } else {
                    Some(ChangeTracking {
                        attribute: changed.to_owned(),
                        fraction: ad,
                        overlap: duration("overlap", params.overlap.as_deref(), DEFAULT_OVERLAP)
                            .map_err(config)?,
                        full_listing_every: duration(
                            "full_listing_every",
                            params.full_listing_every.as_deref(),
                            DEFAULT_FULL_LISTING_EVERY,
                        )
                        .map_err(config)?,
                    })
                };
                Backend::Ldap(Box::new(LdapPeople {
                    directory,
                    base: params
                        .base_dn
                        .as_deref()
                        .map(str::trim)
                        .unwrap_or(&cfg.user_base)
                        .to_owned(),
                    filter,
                    map: Mapping::new(&params.attributes, cfg),
                    changes,
                }))
            }
        };
        let mut connector = StaffDirectory {
            backend,
            access: access(params).map_err(config)?,
            kind: doc_kind(params).map_err(config)?,
            language: language(params).map_err(config)?,
            settings: String::new(),
        };
        connector.settings = connector.settings_fingerprint();
        Ok(connector)
    }

    /// Everything that decides which entries are people and what their documents hold. The
    /// overlap and the listing interval are left out: they change what a run reads, not what
    /// it makes of it.
    fn settings_fingerprint(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        let mut part = |p: &str| {
            hasher.update(p.as_bytes());
            hasher.update(&[0]);
        };
        part(&CURSOR_VERSION.to_string());
        part(&CONVERSION_VERSION.to_string());
        part(&self.kind);
        part(self.language.as_deref().unwrap_or(""));
        part(&self.access.join("\u{1f}"));
        if let Backend::Ldap(ldap) = &self.backend {
            part(&ldap.base);
            part(&ldap.filter);
            part(&format!("{:?}", ldap.map));
            part(ldap.changes.as_ref().map_or("", |c| c.attribute.as_str()));
        }
        let hash = hasher.finalize().to_hex();
        hash[..16].to_owned()
    }

    fn document(&self, p: &Person) -> Document {
        let mut properties = BTreeMap::new();
        for (key, values) in [
            ("title", &p.titles),
            ("department", &p.departments),
            ("phone", &p.phones),
            ("mail", &p.mails),
            ("office", &p.offices),
            ("room", &p.rooms),
            ("description", &p.descriptions),
        ] {
            if let Some(first) = values.first() {
                properties.insert(key.to_owned(), first.clone());
            }
        }
        if let Some(manager) = &p.manager {
            properties.insert("manager".to_owned(), manager.clone());
        }
        // What people search a phone book for: "who handles parking permits in
        // Borgerservice" must meet the department and the responsibilities here.
        let place: Vec<String> = p.offices.iter().chain(&p.rooms).cloned().collect();
        let body = [
            p.titles.join(", "),
            p.departments.join(", "),
            p.descriptions.join("\n"),
            place.join(", "),
            p.mails.join(", "),
            p.phones.join(", "),
        ]
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n");

        let fingerprint = {
            let mut hasher = blake3::Hasher::new();
            let version = CONVERSION_VERSION.to_string();
            let acl = self.access.join("\u{1f}");
            for part in [
                version.as_str(),
                &self.kind,
                self.language.as_deref().unwrap_or(""),
                &acl,
                &p.id,
                &p.name,
                &body,
            ] {
                hasher.update(part.as_bytes());
                hasher.update(&[0]);
            }
            for (key, value) in &properties {
                hasher.update(key.as_bytes());
                hasher.update(&[1]);
                hasher.update(value.as_bytes());
                hasher.update(&[0]);
            }
            hasher.finalize().to_hex().to_string()
        };
        Document {
            external_id: p.id.clone(),
            kind: self.kind.clone(),
            title: p.name.clone(),
            body,
            url: None,
            author: None,
            language: self.language.clone(),
            created: None,
            updated: None,
            acl: self.access.clone(),
            // The department as a topic, so that a search can be narrowed to one.
            tags: p.departments.first().cloned().into_iter().collect(),
            fingerprint: Some(fingerprint),
            properties,
        }
    }

    /// The previous run's cursor, when this run may continue from it.
    fn previous_cursor(&self, ctx: &RunContext) -> Option<Cursor> {
        if ctx.full {
            return None;
        }
        let raw = ctx.cursor.as_deref()?;
        match serde_json::from_str::<Cursor>(raw) {
            Ok(cursor) if cursor.version == CURSOR_VERSION && cursor.settings == self.settings => {
                Some(cursor)
            }
            Ok(_) => {
                info!(source = %ctx.source_id, "staff-directory settings changed since the last run: listing everybody");
                None
            }
            Err(e) => {
                warn!(source = %ctx.source_id, error = %e, "unreadable staff-directory cursor: listing everybody");
                None
            }
        }
    }

    /// One LDAP run: everybody with every attribute when there is no usable cursor, else the
    /// changes since it (and, when due, the listing of ids).
    async fn run_ldap(
        &self,
        ldap: &LdapPeople,
        ctx: &RunContext,
        out: &mut Emitter<'_>,
    ) -> Result<(), ConnectorError> {
        let started = Utc::now();
        let previous = ldap
            .changes
            .as_ref()
            .and_then(|tracking| Some((tracking, self.previous_cursor(ctx)?)));
        let mut listing = ldap.directory.listing().await.map_err(unavailable)?;
        match previous {
            None => {
                self.list_everybody(ldap, &mut listing, ctx, out, started)
                    .await
            }
            Some((tracking, cursor)) => {
                let run = IncrementalRun {
                    ldap,
                    tracking,
                    ctx,
                    started,
                };
                self.list_changes(&run, cursor, &mut listing, out).await
            }
        }
    }

    async fn list_everybody(
        &self,
        ldap: &LdapPeople,
        listing: &mut Listing<'_>,
        ctx: &RunContext,
        out: &mut Emitter<'_>,
        started: DateTime<Utc>,
    ) -> Result<(), ConnectorError> {
        let mut attrs = ldap.map.attributes();
        if let Some(tracking) = &ldap.changes {
            attrs.push(tracking.attribute.clone());
        }
        let entries = listing
            .entries(&ldap.base, &ldap.filter, &attrs)
            .await
            .map_err(unavailable)?;
        for person in from_entries(&entries, &ldap.map) {
            out.person(person).await?;
        }
        if let Some(tracking) = &ldap.changes {
            match newest_change(&entries, &tracking.attribute, started) {
                Some(newest) => {
                    let cursor = Cursor {
                        version: CURSOR_VERSION,
                        settings: self.settings.clone(),
                        newest,
                        listed: started,
                    };
                    checkpoint(ctx, &cursor).await?;
                }
                None if !entries.is_empty() => warn!(
                    source = %ctx.source_id,
                    attribute = %tracking.attribute,
                    "no person carries the change timestamp (can the service account read it?): every run lists everybody"
                ),
                None => {}
            }
        }
        // Only now is the listing known to be complete: people not in it have left.
        ctx.sink.send(Change::TraversalComplete).await?;
        out.log("everybody", entries.len());
        Ok(())
    }

    async fn list_changes(
        &self,
        run: &IncrementalRun<'_>,
        previous: Cursor,
        listing: &mut Listing<'_>,
        out: &mut Emitter<'_>,
    ) -> Result<(), ConnectorError> {
        let IncrementalRun {
            ldap,
            tracking,
            ctx,
            started,
        } = *run;
        let map = &ldap.map;
        let overlap = chrono::Duration::from_std(tracking.overlap).unwrap_or(chrono::Duration::MAX);
        // Never before 1970: a year the filter's four digits cannot write.
        let since = floor_to_second(
            previous
                .newest
                .checked_sub_signed(overlap)
                .unwrap_or(DateTime::UNIX_EPOCH)
                .max(DateTime::UNIX_EPOCH),
        );
        let mut attrs = map.attributes();
        attrs.push(tracking.attribute.clone());
        let changed = listing
            .entries(&ldap.base, &tracking.filter(&ldap.filter, since), &attrs)
            .await
            .map_err(unavailable)?;
        let mut read = changed.len();
        // Only this search, which covers everything since the cursor, may move it on: a later
        // search could see a newer change while missing one made in between.
        let newest = newest_change(&changed, &tracking.attribute, started)
            .map_or(previous.newest, |n| n.max(previous.newest));

        let mut names = Names::default();
        names.add(&changed, map);
        name_managers(ldap, listing, &changed, &mut names).await?;
        let mut people = Vec::new();
        for entry in &changed {
            if entry.blocked() == Some(FailureReason::Disabled) {
                out.disabled(person_id(entry, map), &entry.dn).await?;
            } else {
                people.push(to_person(entry, map, &names));
            }
        }

        // Whoever reports to a changed person shows that person's name: read them again.
        // Nothing is sent before they are read: were a changed manager indexed and the run
        // to fail here, the next run would find the manager unchanged and never come back to
        // their reports.
        let mut reports = Vec::new();
        if let Some(manager) = &map.manager {
            let changed_dns: Vec<String> = people
                .iter()
                .filter(|p| out.differs(p))
                .map(|p| p.origin.clone())
                .collect();
            for dns in changed_dns.chunks(DNS_PER_FILTER) {
                let filter = format!("(&{}{})", ldap.filter, any_of(manager, dns));
                let found = listing
                    .entries(&ldap.base, &filter, &attrs)
                    .await
                    .map_err(unavailable)?;
                read += found.len();
                name_managers(ldap, listing, &found, &mut names).await?;
                reports.extend(
                    found
                        .iter()
                        .filter(|e| e.blocked() != Some(FailureReason::Disabled))
                        .map(|e| to_person(e, map, &names)),
                );
            }
        }
        // A report who changed too comes twice; the second is ignored.
        for person in people.into_iter().chain(reports) {
            out.person(person).await?;
        }

        let every = chrono::Duration::from_std(tracking.full_listing_every)
            .unwrap_or(chrono::Duration::MAX);
        // A clock set back (the last listing "in the future") lists too, rather than wait.
        let since_listed = started.signed_duration_since(previous.listed);
        let listing_due = since_listed >= every || since_listed < chrono::Duration::zero();
        let mut listed = previous.listed;
        if listing_due {
            // The id attribute only: the entry's DN comes with it anyway.
            let ids = listing
                .entries(&ldap.base, &ldap.filter, std::slice::from_ref(&map.id))
                .await
                .map_err(unavailable)?;
            read += ids.len();
            let mut unknown = Vec::new();
            for entry in &ids {
                let id = person_id(entry, map);
                if out.sent(&id) {
                    continue;
                }
                if ctx.known.fingerprint(&id).is_some() {
                    out.unchanged(id).await?;
                } else {
                    unknown.push(entry.dn.clone());
                }
            }
            // Listed but not indexed: a change the timestamps did not show (a clock further
            // off than the overlap), or an account disabled all along. Read each one.
            for dn in unknown {
                let Some(entry) = listing
                    .entry(&dn, &ldap.filter, &attrs)
                    .await
                    .map_err(unavailable)?
                else {
                    continue;
                };
                read += 1;
                if entry.blocked() != Some(FailureReason::Disabled) {
                    name_managers(ldap, listing, std::slice::from_ref(&entry), &mut names).await?;
                    out.person(to_person(&entry, map, &names)).await?;
                }
            }
            listed = started;
        }
        let cursor = Cursor {
            version: CURSOR_VERSION,
            settings: self.settings.clone(),
            newest,
            listed,
        };
        checkpoint(ctx, &cursor).await?;
        if listing_due {
            // Every person's id was listed to the end: people not in it have left.
            ctx.sink.send(Change::TraversalComplete).await?;
        }
        out.log(
            if listing_due {
                "changes and ids"
            } else {
                "changes"
            },
            read,
        );
        Ok(())
    }
}

/// What an incremental run works with.
#[derive(Clone, Copy)]
struct IncrementalRun<'a> {
    ldap: &'a LdapPeople,
    tracking: &'a ChangeTracking,
    ctx: &'a RunContext,
    started: DateTime<Utc>,
}

/// Finds the names of the managers of `entries` that `names` does not know yet: one
/// base-scope search each, with the people filter, so that a manager is named exactly as a
/// listing of everybody would name them.
async fn name_managers(
    ldap: &LdapPeople,
    listing: &mut Listing<'_>,
    entries: &[UserEntry],
    names: &mut Names,
) -> Result<(), ConnectorError> {
    let Some(manager) = &ldap.map.manager else {
        return Ok(());
    };
    let base = dn_match_key(&ldap.base);
    for dn in entries.iter().filter_map(|e| e.first(manager)) {
        let Some(key) = dn_match_key(dn) else {
            continue;
        };
        if names.known(&key) {
            continue;
        }
        // A listing of everybody only holds people under the base.
        let under_base = base
            .as_deref()
            .is_none_or(|b| key == b || key.ends_with(&format!(",{b}")));
        let found = if under_base {
            listing
                .entry(dn, &ldap.filter, &ldap.map.name)
                .await
                .map_err(unavailable)?
        } else {
            None
        };
        names.insert(key, found.map(|e| name_of(&e, &ldap.map)));
    }
    Ok(())
}

/// Sends one run's changes, once per person, and counts them.
struct Emitter<'a> {
    connector: &'a StaffDirectory,
    ctx: &'a RunContext,
    /// The id of every person sent this run, with the entry they came from.
    ids: HashMap<String, String>,
    upserted: usize,
    unchanged: usize,
    deleted: usize,
    duplicates: usize,
}

impl<'a> Emitter<'a> {
    fn new(connector: &'a StaffDirectory, ctx: &'a RunContext) -> Emitter<'a> {
        Emitter {
            connector,
            ctx,
            ids: HashMap::new(),
            upserted: 0,
            unchanged: 0,
            deleted: 0,
            duplicates: 0,
        }
    }

    fn sent(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// Whether the person's document differs from the one indexed (or the run is `full`).
    fn differs(&self, person: &Person) -> bool {
        let doc = self.connector.document(person);
        self.ctx.full || self.ctx.known.fingerprint(&doc.external_id) != doc.fingerprint.as_deref()
    }

    /// Sends the person: `Upsert` when new or changed (or in a `full` run), `Unchanged`
    /// otherwise, and `Failed` for a second entry with an id already sent. An entry sent
    /// already is not sent again.
    async fn person(&mut self, person: Person) -> Result<(), ConnectorError> {
        if let Some(first) = self.ids.get(&person.id) {
            if *first == person.origin {
                return Ok(());
            }
            self.duplicates += 1;
            let error = format!(
                "two directory entries have the id `{}`: {first} and {}; only the first is shown",
                person.id, person.origin
            );
            self.ctx
                .sink
                .send(Change::Failed {
                    error,
                    external_id: person.id,
                })
                .await?;
            return Ok(());
        }
        self.ids.insert(person.id.clone(), person.origin.clone());
        let doc = self.connector.document(&person);
        let known = self.ctx.known.fingerprint(&doc.external_id);
        if !self.ctx.full && known.is_some() && known == doc.fingerprint.as_deref() {
            self.unchanged(doc.external_id).await
        } else {
            self.upserted += 1;
            self.ctx.sink.send(Change::Upsert(Box::new(doc))).await
        }
    }

    /// A person listed and known unchanged.
    async fn unchanged(&mut self, id: String) -> Result<(), ConnectorError> {
        self.unchanged += 1;
        self.ids.entry(id.clone()).or_default();
        self.ctx
            .sink
            .send(Change::Unchanged { external_id: id })
            .await
    }

    /// A changed entry whose account is now disabled: deleted when indexed.
    async fn disabled(&mut self, id: String, origin: &str) -> Result<(), ConnectorError> {
        if self.sent(&id) {
            return Ok(());
        }
        self.ids.insert(id.clone(), origin.to_owned());
        if self.ctx.known.fingerprint(&id).is_some() {
            self.deleted += 1;
            self.ctx
                .sink
                .send(Change::Delete { external_id: id })
                .await?;
        }
        Ok(())
    }

    fn log(&self, read: &str, entries: usize) {
        if self.connector.access.is_empty() && self.upserted > 0 {
            warn!(source = %self.ctx.source_id, "staff directory access is empty: people visible to nobody");
        }
        info!(
            source = %self.ctx.source_id,
            read,
            entries,
            upserted = self.upserted,
            unchanged = self.unchanged,
            deleted = self.deleted,
            duplicates = self.duplicates,
            "staff directory listed"
        );
    }
}

#[async_trait::async_trait]
impl Connector for StaffDirectory {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn check(&self) -> Result<Vec<String>, ConnectorError> {
        let mut notes = Vec::new();
        match &self.backend {
            Backend::Demo { file } => {
                let people = demo_people(file).await?;
                notes.push(format!(
                    "demo directory {}: {} people",
                    file.display(),
                    people.len()
                ));
            }
            Backend::Ldap(ldap) => {
                let LdapPeople {
                    directory,
                    base,
                    filter,
                    map,
                    changes,
                } = ldap.as_ref();
                // Only what tells a person from a disabled account: a count, not a copy.
                let mut attrs = vec![
                    map.id.clone(),
                    "userAccountControl".into(),
                    "pwdAccountLockedTime".into(),
                ];
                attrs.extend(changes.iter().map(|c| c.attribute.clone()));
                let entries = directory
                    .list_entries(base, filter, &attrs)
                    .await
                    .map_err(unavailable)?;
                let people = entries
                    .iter()
                    .filter(|e| e.blocked() != Some(FailureReason::Disabled))
                    .count();
                if people == 0 {
                    return Err(ConnectorError::Config(format!(
                        "no entry under `{base}` matches `{filter}`: check `base_dn` and `filter` in [sources.{KIND}]"
                    )));
                }
                let cfg = directory.config();
                let who = cfg
                    .bind_dn
                    .as_deref()
                    .map_or_else(|| "anonymously".to_owned(), |dn| format!("as `{dn}`"));
                notes.push(format!(
                    "bound {who}; {people} people match `{filter}` under `{base}` ({} disabled left out)",
                    entries.len() - people
                ));
                if let Some(tracking) = changes {
                    let note = if newest_change(&entries, &tracking.attribute, Utc::now()).is_some()
                    {
                        format!(
                            "runs read the people changed since the last run (by `{}`, with {} overlap) and list every id every {}",
                            tracking.attribute,
                            humantime::format_duration(tracking.overlap),
                            humantime::format_duration(tracking.full_listing_every)
                        )
                    } else {
                        format!(
                            "no entry carries `{}`: every run will list everybody; let the service account read it, or set `changed_attribute`",
                            tracking.attribute
                        )
                    };
                    notes.push(note);
                }
            }
        }
        if self.access.is_empty() {
            notes.push("access is empty: the people are visible to nobody".to_owned());
        }
        Ok(notes)
    }

    async fn run(&self, ctx: RunContext) -> Result<(), ConnectorError> {
        // People are compared with their fingerprints from the first one on.
        ctx.known.load().await?;
        let mut out = Emitter::new(self, &ctx);
        match &self.backend {
            Backend::Demo { file } => {
                // A local file: read whole at every run.
                for person in demo_people(file).await? {
                    out.person(person).await?;
                }
                ctx.sink.send(Change::TraversalComplete).await?;
                out.log("everybody", out.ids.len());
                Ok(())
            }
            Backend::Ldap(ldap) => self.run_ldap(ldap, &ctx, &mut out).await,
        }
    }
}

async fn checkpoint(ctx: &RunContext, cursor: &Cursor) -> Result<(), ConnectorError> {
    let cursor = serde_json::to_string(cursor).map_err(|e| {
        ConnectorError::Internal(format!("cannot write the staff-directory cursor: {e}"))
    })?;
    ctx.sink.send(Change::Checkpoint { cursor }).await
}

/// Everybody in the demo directory's file (disabled users left out).
async fn demo_people(file: &Path) -> Result<Vec<Person>, ConnectorError> {
    let file = file.to_path_buf();
    let people = tokio::task::spawn_blocking(move || DemoDirectory::read_people(&file))
        .await
        .map_err(|e| ConnectorError::Internal(format!("demo directory task: {e}")))?
        .map_err(|e| ConnectorError::Unavailable {
            reason: e.to_string(),
        })?;
    Ok(people.into_iter().map(from_demo).collect())
}

fn unavailable(e: AuthError) -> ConnectorError {
    ConnectorError::Unavailable {
        reason: match e {
            AuthError::Unavailable(m) => m,
            AuthError::Refused(r) => format!("the directory refused the service account: {r}"),
        },
    }
}

fn from_demo(p: DemoPerson) -> Person {
    Person {
        origin: format!("demo user `{}`", p.id),
        id: p.id,
        name: p.name,
        titles: p.title.into_iter().collect(),
        departments: p.department.into_iter().collect(),
        phones: p.phone.into_iter().collect(),
        mails: p.mail.into_iter().collect(),
        manager: p.manager,
        offices: p.office.into_iter().collect(),
        rooms: Vec::new(),
        descriptions: p.responsibilities.into_iter().collect(),
    }
}

/// Display names by DN (as [`dn_match_key`]) of the people read this run; `None` for a DN
/// known not to be one of the people the source lists.
#[derive(Default)]
struct Names(HashMap<String, Option<String>>);

impl Names {
    /// Every entry, disabled ones included: a manager who has left still has a name.
    fn add(&mut self, entries: &[UserEntry], map: &Mapping) {
        for e in entries {
            if let Some(key) = dn_match_key(&e.dn) {
                self.0.insert(key, Some(name_of(e, map)));
            }
        }
    }

    fn insert(&mut self, key: String, name: Option<String>) {
        self.0.insert(key, name);
    }

    fn known(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A manager's name: theirs when they are among the people, else the DN's first value.
    fn manager(&self, dn: &str) -> String {
        dn_match_key(dn)
            .and_then(|key| self.0.get(&key).cloned().flatten())
            .or_else(|| rdn_value(dn))
            .unwrap_or_else(|| dn.to_owned())
    }
}

/// The people among the entries (disabled accounts left out), managers resolved from the
/// same listing.
fn from_entries(entries: &[UserEntry], map: &Mapping) -> Vec<Person> {
    let mut names = Names::default();
    names.add(entries, map);
    entries
        .iter()
        .filter(|e| e.blocked() != Some(FailureReason::Disabled))
        .map(|e| to_person(e, map, &names))
        .collect()
}

fn name_of(e: &UserEntry, map: &Mapping) -> String {
    map.name
        .iter()
        .find_map(|a| e.first(a))
        .map(str::to_owned)
        .or_else(|| rdn_value(&e.dn))
        .unwrap_or_else(|| e.dn.clone())
}

/// The document id: the id attribute in lower case, else the DN.
fn person_id(e: &UserEntry, map: &Mapping) -> String {
    e.first(&map.id)
        .map(str::to_lowercase)
        .unwrap_or_else(|| e.dn.trim().to_owned())
}

fn to_person(e: &UserEntry, map: &Mapping, names: &Names) -> Person {
    let all = |attribute: &Option<String>| -> Vec<String> {
        let Some(attribute) = attribute else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        e.values(attribute)
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && seen.insert(v.to_string()))
            .map(str::to_owned)
            .collect()
    };
    Person {
        id: person_id(e, map),
        origin: e.dn.clone(),
        name: name_of(e, map),
        titles: all(&map.title),
        departments: all(&map.department),
        phones: all(&map.phone),
        mails: all(&map.mail),
        manager: map
            .manager
            .as_ref()
            .and_then(|a| e.first(a))
            .map(|dn| names.manager(dn)),
        offices: all(&map.office),
        rooms: all(&map.room),
        descriptions: all(&map.description),
    }
}

/// One filter matching the entries whose `attribute` is any of `dns`, each value RFC
/// 4515-escaped.
fn any_of(attribute: &str, dns: &[String]) -> String {
    let template = format!("({attribute}={{dn}})");
    let one = |dn: &String| fill(&template, "{dn}", dn);
    match dns {
        [dn] => one(dn),
        _ => format!("(|{})", dns.iter().map(one).collect::<String>()),
    }
}

/// A configured filter in parentheses (`objectClass=person` is accepted without).
fn parenthesized(filter: &str) -> String {
    let filter = filter.trim();
    if filter.starts_with('(') {
        filter.to_owned()
    } else {
        format!("({filter})")
    }
}

/// The newest change among the entries, by the directory's clock. A time more than a day
/// ahead of the portal's clock (a hand-set value, a server whose clock ran away) is left out:
/// as the cursor it would hide every later change.
fn newest_change(
    entries: &[UserEntry],
    attribute: &str,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let limit = now + chrono::Duration::days(1);
    entries
        .iter()
        .filter_map(|e| parse_generalized_time(e.first(attribute)?))
        .filter(|t| *t <= limit)
        .max()
}

fn floor_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// A GeneralizedTime value (RFC 4517 §3.3): `YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|±HH[MM])`,
/// such as OpenLDAP's `20261127101500Z` and Active Directory's `20261127101500.0Z`. A
/// fraction of a second is kept; a fraction of an hour or minute is dropped (an earlier time
/// is the safe side for a cursor). `None` for anything else, a time without a zone included.
fn parse_generalized_time(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    if !matches!(digits, 10 | 12 | 14) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| value.get(range)?.parse::<u32>().ok();
    let year = i32::try_from(num(0..4)?).ok()?;
    let minute = if digits >= 12 { num(10..12)? } else { 0 };
    let second = if digits >= 14 { num(12..14)? } else { 0 };
    let mut rest = value.get(digits..)?;
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix(['.', ',']) {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        if digits == 14 {
            let kept = fraction.get(..len.min(9))?;
            nanos = format!("{kept:0<9}").parse().ok()?;
        }
        rest = fraction.get(len..)?;
    }
    let offset_seconds: i64 = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = rest.get(1..)?;
            if !matches!(zone.len(), 2 | 4) || !zone.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = zone.get(..2)?.parse().ok()?;
            let minutes: i64 = zone
                .get(2..)
                .filter(|m| !m.is_empty())
                .map_or(Some(0), |m| m.parse().ok())?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let local = NaiveDate::from_ymd_opt(year, num(4..6)?, num(6..8)?)?.and_hms_nano_opt(
        num(8..10)?,
        minute,
        second,
        nanos,
    )?;
    Some(local.and_utc() - chrono::Duration::seconds(offset_seconds))
}

/// A DN's RDNs as `(attribute type, value)`, values unescaped (RFC 4514: `\,`, `\+`, `\\`,
/// `\"` and hex pairs such as `\C3\B8`); `None` when it is not a DN. Multi-valued RDNs
/// (`cn=a+uid=b`) are read as consecutive pairs.
fn parse_dn(dn: &str) -> Option<Vec<(String, String)>> {
    let mut rdns = Vec::new();
    let mut chars = dn.trim().chars().peekable();
    while chars.peek().is_some() {
        let mut attr = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            attr.push(c);
        }
        let attr = attr.trim().to_ascii_lowercase();
        if attr.is_empty() {
            return None;
        }
        let mut value: Vec<u8> = Vec::new();
        // The length of the value without its trailing unescaped spaces.
        let mut kept = 0;
        while let Some(c) = chars.next() {
            match c {
                ',' | ';' | '+' => break,
                '\\' => {
                    let next = chars.next()?;
                    if next.is_ascii_hexdigit() {
                        let low = chars.next()?;
                        let byte = u8::from_str_radix(&format!("{next}{low}"), 16).ok()?;
                        value.push(byte);
                    } else {
                        let mut buf = [0u8; 4];
                        value.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                    }
                    kept = value.len();
                }
                ' ' if value.is_empty() => {}
                c => {
                    let mut buf = [0u8; 4];
                    value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    if c != ' ' {
                        kept = value.len();
                    }
                }
            }
        }
        value.truncate(kept);
        rdns.push((attr, String::from_utf8(value).ok()?));
    }
    (!rdns.is_empty()).then_some(rdns)
}

/// The value of a DN's first RDN: `Brøndum, Niels` for `cn=Brøndum\, Niels,ou=people,...`.
fn rdn_value(dn: &str) -> Option<String> {
    parse_dn(dn)?
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A DN in one spelling, so that a `manager` value finds its entry whatever the case,
/// spacing and escaping: attribute types and values in lower case (attribute names always
/// compare so; names under the usual case-ignoring matching rules), values unescaped.
fn dn_match_key(dn: &str) -> Option<String> {
    let rdns = parse_dn(dn)?;
    Some(
        rdns.iter()
            .map(|(a, v)| format!("{a}={}", v.to_lowercase()))
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dn: &str, attrs: &[(&str, &str)]) -> UserEntry {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in attrs {
            map.entry((*k).to_owned())
                .or_default()
                .push((*v).to_owned());
        }
        UserEntry {
            dn: dn.to_owned(),
            attrs: map,
        }
    }

    fn mapping() -> Mapping {
        Mapping {
            id: "uid".into(),
            name: vec!["displayName".into(), "cn".into()],
            title: Some("title".into()),
            department: Some("ou".into()),
            phone: Some("telephoneNumber".into()),
            mail: Some("mail".into()),
            manager: Some("manager".into()),
            office: Some("physicalDeliveryOfficeName".into()),
            room: Some("roomNumber".into()),
            description: Some("description".into()),
        }
    }

    #[test]
    fn dns_are_parsed_with_their_escapes() {
        let table: &[(&str, Option<&str>)] = &[
            (r"cn=Brøndum\, Niels,ou=people,dc=x", Some("Brøndum, Niels")),
            (
                r"CN=Br\C3\B8ndum\2C Niels,OU=people",
                Some("Brøndum, Niels"),
            ),
            ("uid=mette,ou=people,dc=kommune,dc=example", Some("mette")),
            ("  cn = Anna Hansen  , dc=x", Some("Anna Hansen")),
            (r"cn=trailing\ ,dc=x", Some("trailing ")),
            ("cn=a+uid=b,dc=x", Some("a")),
            ("", None),
            ("=x", None),
            (r"cn=bad\", None),
            (r"cn=bad\Z", Some("badZ")),
            (r"cn=bad\C3", None),
        ];
        for (dn, expected) in table {
            assert_eq!(rdn_value(dn).as_deref(), *expected, "{dn:?}");
        }
        // The same entry, spelt differently, has the same key.
        assert_eq!(
            dn_match_key(r"CN=Br\C3\B8ndum\2C Niels, OU=People,DC=Kommune"),
            dn_match_key(r"cn=brøndum\, niels,ou=people,dc=kommune")
        );
        assert_ne!(
            dn_match_key("cn=a,ou=people"),
            dn_match_key("cn=a,ou=groups")
        );
    }

    #[test]
    fn entries_become_people_with_managers_resolved() {
        let entries = vec![
            entry(
                "uid=mette,ou=people,dc=x",
                &[
                    ("uid", "Mette"),
                    ("displayName", "Mette Sørensen"),
                    ("cn", "Mette S"),
                    ("title", "Sagsbehandler"),
                    ("ou", "Borgerservice"),
                    ("telephoneNumber", "+45 1"),
                    ("telephoneNumber", "+45 2"),
                    ("telephoneNumber", "+45 1"),
                    ("mail", "mette@x"),
                    ("manager", "UID=lars, OU=people,DC=x"),
                    ("description", "Parkeringstilladelser"),
                ],
            ),
            entry(
                "uid=lars,ou=people,dc=x",
                &[
                    ("uid", "lars"),
                    ("cn", "Lars Ærenlund"),
                    ("manager", r"cn=Ågesen\, Karen,ou=gone,dc=x"),
                ],
            ),
            // Disabled: left out, but still names the people they managed.
            entry(
                "uid=ole,ou=people,dc=x",
                &[("uid", "ole"), ("cn", "Ole"), ("userAccountControl", "514")],
            ),
            entry(
                "uid=nils,ou=people,dc=x",
                &[("cn", "Nils"), ("manager", "uid=ole,ou=people,dc=x")],
            ),
        ];
        let people = from_entries(&entries, &mapping());
        let ids: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["mette", "lars", "uid=nils,ou=people,dc=x"]);
        let mette = &people[0];
        assert_eq!(mette.name, "Mette Sørensen");
        assert_eq!(mette.phones, ["+45 1", "+45 2"]);
        assert_eq!(mette.manager.as_deref(), Some("Lars Ærenlund"));
        assert_eq!(people[1].manager.as_deref(), Some("Ågesen, Karen"));
        assert_eq!(people[2].manager.as_deref(), Some("Ole"));
    }

    fn connector(params: &str) -> StaffDirectory {
        let params: StaffDirectoryParams = toml::from_str(params).unwrap();
        StaffDirectory::new(
            &params,
            &DirectoryConfig::Demo {
                file: PathBuf::from("demo.toml"),
            },
        )
        .unwrap()
    }

    #[test]
    fn documents_carry_text_properties_and_a_fingerprint() {
        let c = connector("");
        let person = Person {
            id: "mette".into(),
            origin: "x".into(),
            name: "Mette Sørensen".into(),
            titles: vec!["Sagsbehandler".into()],
            departments: vec!["Borgerservice".into()],
            phones: vec!["+45 89 40 12 31".into()],
            mails: vec!["mette@kommune.example".into()],
            manager: Some("Lars Ærenlund".into()),
            offices: vec!["Rådhuset".into()],
            rooms: vec!["1.12".into()],
            descriptions: vec!["Parkeringstilladelser og pas".into()],
        };
        let doc = c.document(&person);
        assert_eq!(doc.kind, "person");
        assert_eq!(doc.title, "Mette Sørensen");
        assert_eq!(doc.acl, ["authenticated"]);
        assert_eq!(
            doc.body,
            "Sagsbehandler\nBorgerservice\nParkeringstilladelser og pas\nRådhuset, 1.12\nmette@kommune.example\n+45 89 40 12 31"
        );
        assert_eq!(doc.properties["manager"], "Lars Ærenlund");
        assert_eq!(doc.properties["phone"], "+45 89 40 12 31");
        assert_eq!(doc.properties["room"], "1.12");
        assert_eq!(doc.tags, ["Borgerservice"]);
        // Any fact that changes changes the fingerprint; the same person keeps it.
        assert_eq!(doc.fingerprint, c.document(&person.clone()).fingerprint);
        let moved = Person {
            manager: Some("Karen Ågesen".into()),
            ..person.clone()
        };
        assert_ne!(doc.fingerprint, c.document(&moved).fingerprint);
        let restricted = connector("access = [\"group:ledere\"]");
        assert_ne!(doc.fingerprint, restricted.document(&person).fingerprint);
    }

    #[test]
    fn generalized_times_are_read_in_every_form() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let table: &[(&str, Option<&str>)] = &[
            ("20261127101500Z", Some("2026-11-27T10:15:00Z")),
            ("20261127101500.0Z", Some("2026-11-27T10:15:00Z")),
            ("20261127101500.25Z", Some("2026-11-27T10:15:00.25Z")),
            ("20261127101500,5Z", Some("2026-11-27T10:15:00.5Z")),
            ("202611271015Z", Some("2026-11-27T10:15:00Z")),
            ("2026112710Z", Some("2026-11-27T10:00:00Z")),
            // A fraction of an hour is dropped: earlier, never later.
            ("2026112710.5Z", Some("2026-11-27T10:00:00Z")),
            ("20261127101500+0100", Some("2026-11-27T09:15:00Z")),
            ("20261127101500-05", Some("2026-11-27T15:15:00Z")),
            (" 20261127101500Z ", Some("2026-11-27T10:15:00Z")),
            // No zone, a bad zone, bad dates and times, other syntaxes.
            ("20261127101500", None),
            ("20261127101500+1", None),
            ("20261127101500+2400", None),
            ("20261127101500.Z", None),
            ("20261327101500Z", None),
            ("20261127246000Z", None),
            ("2026112710150Z", None),
            ("20261127101500ZZ", None),
            ("", None),
            ("2026-11-27T10:15:00Z", None),
        ];
        for (value, expected) in table {
            assert_eq!(
                parse_generalized_time(value),
                expected.map(utc),
                "{value:?}"
            );
        }
    }

    #[test]
    fn change_filters_are_combined_and_escaped() {
        let tracking = |attribute: &str, fraction: bool| ChangeTracking {
            attribute: attribute.into(),
            fraction,
            overlap: Duration::from_secs(300),
            full_listing_every: Duration::from_secs(86_400),
        };
        let since = DateTime::parse_from_rfc3339("2026-11-27T10:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let openldap = tracking("modifyTimestamp", false).filter(OPENLDAP_FILTER, since);
        assert_eq!(
            openldap,
            "(&(objectClass=inetOrgPerson)(modifyTimestamp>=20261127101500Z))"
        );
        let ad = tracking("whenChanged", true).filter(AD_FILTER, since);
        assert!(ad.ends_with("(whenChanged>=20261127101500.0Z))"), "{ad}");
        for f in [&openldap, &ad] {
            assert!(ldap3::parse_filter(f).is_ok(), "{f}");
        }
        assert_eq!(
            parenthesized(" objectClass=person "),
            "(objectClass=person)"
        );
        assert_eq!(parenthesized("(uid=*)"), "(uid=*)");

        // DNs of changed people go into `(manager=…)` escaped: a `*` or a parenthesis in a
        // name matches nothing else.
        let dns = [
            r"cn=Brøndum\, Niels (IT),ou=people,dc=x".to_string(),
            "cn=a*,dc=x".to_string(),
        ];
        let reports = any_of("manager", &dns);
        assert_eq!(
            reports,
            r"(|(manager=cn=Brøndum\5c, Niels \28IT\29,ou=people,dc=x)(manager=cn=a\2a,dc=x))"
        );
        assert!(ldap3::parse_filter(&reports).is_ok());
        assert_eq!(any_of("manager", &dns[1..]), r"(manager=cn=a\2a,dc=x)");
    }

    #[test]
    fn the_newest_change_ignores_times_far_in_the_future() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let entries = vec![
            entry("uid=a,dc=x", &[("modifyTimestamp", "20261127101500Z")]),
            entry("uid=b,dc=x", &[("modifyTimestamp", "20261126090000Z")]),
            entry("uid=c,dc=x", &[("modifyTimestamp", "20991231235959Z")]),
            entry("uid=d,dc=x", &[("modifyTimestamp", "garbage")]),
            entry("uid=e,dc=x", &[]),
        ];
        assert_eq!(
            newest_change(&entries, "modifytimestamp", now),
            parse_generalized_time("20261127101500Z")
        );
        assert_eq!(newest_change(&entries[3..], "modifyTimestamp", now), None);
    }

    #[test]
    fn the_cursor_follows_the_settings_documents_are_made_from() {
        let base = connector("");
        // What a run reads, not what it makes of it: the same cursor still holds.
        for same in [
            "overlap = \"1h\"",
            "full_listing_every = \"0s\"",
            "base_dn = \"ou=x\"",
        ] {
            assert_eq!(connector(same).settings, base.settings, "{same}");
        }
        for other in [
            "access = [\"group:ledere\"]",
            "kind = \"medarbejder\"",
            "language = \"en\"",
        ] {
            assert_ne!(connector(other).settings, base.settings, "{other}");
        }
        let cursor = Cursor {
            version: CURSOR_VERSION,
            settings: base.settings.clone(),
            newest: Utc::now(),
            listed: Utc::now(),
        };
        let text = serde_json::to_string(&cursor).unwrap();
        assert!(text.len() < 200, "{text}");
        assert_eq!(serde_json::from_str::<Cursor>(&text).unwrap(), cursor);
    }

    #[test]
    fn parameters_are_validated_with_the_key_named() {
        assert_eq!(connector("access = []").access, Vec::<String>::new());
        assert_eq!(connector("kind = \"medarbejder\"").kind, "medarbejder");
        assert_eq!(
            connector("language = \"Danish\"").language.as_deref(),
            Some("da")
        );
        for (text, key) in [
            ("access = [\"ledere\"]", "`access`"),
            ("kind = \"Person\"", "`kind`"),
            ("language = \"de\"", "`language`"),
            ("filter = \"(objectClass=person\"", "`filter`"),
            ("base_dn = \" \"", "`base_dn`"),
            (
                "attributes = { phone = \"tele phone\" }",
                "`attributes.phone`",
            ),
            ("attributes = { id = \"\" }", "`attributes.id`"),
            ("attributes = { name = [] }", "`attributes.name`"),
            (
                "changed_attribute = \"when changed\"",
                "`changed_attribute`",
            ),
            ("overlap = \"five minutes\"", "`overlap`"),
            ("full_listing_every = \"daily\"", "`full_listing_every`"),
        ] {
            let params: StaffDirectoryParams = toml::from_str(text).unwrap();
            let e = params.validate().unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
        // Unknown keys are refused by the parser.
        assert!(toml::from_str::<StaffDirectoryParams>("acess = []").is_err());
        assert!(toml::from_str::<StaffDirectoryParams>("attributes = { fone = \"x\" }").is_err());
    }
}
