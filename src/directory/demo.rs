//! The demo directory: users and groups in a TOML file, passwords as argon2 PHC strings.
//!
//! It lets a newcomer try the portal without an LDAP server, and gives tests a directory with
//! real password checks. It is not meant for production (the UI says so through
//! [`Directory::kind`]): there is no lockout, no password change and no expiry.
//!
//! ```toml
//! [[users]]
//! id = "mette"                      # login name (ASCII), matched case-insensitively
//! name = "Mette Sørensen"
//! password_hash = "$argon2id$v=19$..."
//! mail = "mette.sorensen@kommune.example"   # optional, like department and title
//! groups = ["borgerservice"]
//! disabled = false                  # optional
//! # Optional, shown by a staff-directory source only:
//! phone = "+45 89 40 12 31"
//! manager = "lars"                  # the manager's id
//! office = "Rådhuset, stuen"
//! responsibilities = "Parkeringstilladelser, pas og kørekort"
//!
//! [[groups]]
//! name = "borgerservice"
//! description = "..."               # optional
//! member_of = ["alle-medarbejdere"] # optional: nesting
//! ```

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;
use toml::Spanned;

use super::{AuthError, Directory, FailureReason, UserInfo, password_is_blank};

/// How many levels of group nesting are followed. Real hierarchies are a few levels deep; a
/// longer chain is almost certainly a mistake in the file.
pub const MAX_NESTING_DEPTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum DemoDirectoryError {
    #[error("cannot read demo directory {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A mistake in the file, located by line and column (1-based).
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A mistake in the file that the parser could not locate.
    #[error("{path}: {message}")]
    InvalidFile { path: PathBuf, message: String },
    #[error("demo directory {path}: cannot prepare the password check: {message}")]
    Internal { path: PathBuf, message: String },
}

// ---- the file format ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBuilder {
    #[serde(default)]
    users: Vec<UserBuilder>,
    #[serde(default)]
    groups: Vec<GroupBuilder>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBuilder {
    id: Spanned<String>,
    name: Spanned<String>,
    password_hash: Spanned<String>,
    mail: Option<String>,
    department: Option<String>,
    title: Option<String>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    disabled: bool,
    phone: Option<String>,
    manager: Option<Spanned<String>>,
    office: Option<String>,
    responsibilities: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBuilder {
    name: Spanned<String>,
    // Read so that the file may document its groups; the portal does not show it.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    member_of: Vec<Spanned<String>>,
}

// ---- the directory ----

struct DemoUser {
    info: UserInfo,
    password_hash: String,
    disabled: bool,
    phone: Option<String>,
    /// The manager's id, checked to be a user of the file.
    manager: Option<String>,
    office: Option<String>,
    responsibilities: Option<String>,
}

/// A person of the demo directory, as a staff-directory source shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoPerson {
    /// The login name, lowercase.
    pub id: String,
    pub name: String,
    pub mail: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    /// The manager's display name.
    pub manager: Option<String>,
    pub office: Option<String>,
    pub responsibilities: Option<String>,
}

/// What the file holds once validated; the password check is not prepared yet.
struct Parsed {
    users: HashMap<String, DemoUser>,
    first_hash: Option<String>,
}

pub struct DemoDirectory {
    /// Keyed by the lowercase login name.
    users: HashMap<String, DemoUser>,
    /// A hash of a random password with the same parameters as the users' hashes, verified
    /// when the login name is unknown so that the answer takes as long as for a real user.
    dummy_hash: String,
    /// How many password hashes were verified; lets tests prove that a blank password never
    /// reaches the hash check.
    verifications: AtomicU64,
}

impl fmt::Debug for DemoDirectory {
    // Written by hand so that password hashes never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoDirectory")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl DemoDirectory {
    /// Reads and validates the demo directory file.
    pub fn load(path: &Path) -> Result<DemoDirectory, DemoDirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DemoDirectoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = DemoDirectory::from_toml_str(&text, path)?;
        tracing::info!(path = %path.display(), users = dir.users.len(), "demo directory loaded");
        Ok(dir)
    }

    /// Parses and validates a demo directory; `origin` names the file in error messages.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<DemoDirectory, DemoDirectoryError> {
        let Parsed { users, first_hash } = DemoDirectory::parse(text, origin)?;
        if users.is_empty() {
            tracing::warn!(path = %origin.display(), "demo directory has no users; nobody can log in");
        }
        let dummy_hash =
            dummy_hash(first_hash.as_deref()).map_err(|message| DemoDirectoryError::Internal {
                path: origin.to_path_buf(),
                message,
            })?;

        Ok(DemoDirectory {
            users,
            dummy_hash,
            verifications: AtomicU64::new(0),
        })
    }

    /// The people of a demo directory file for a staff-directory source, sorted by id, with
    /// disabled users left out. The file is validated as [`DemoDirectory::load`] does, but no
    /// password check is prepared (that costs an argon2 hash).
    pub fn read_people(path: &Path) -> Result<Vec<DemoPerson>, DemoDirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DemoDirectoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let Parsed { users, .. } = DemoDirectory::parse(&text, path)?;
        let mut people: Vec<DemoPerson> = users
            .values()
            .filter(|u| !u.disabled)
            .map(|u| DemoPerson {
                id: u.info.id.clone(),
                name: u.info.display_name.clone(),
                mail: u.info.mail.clone(),
                department: u.info.department.clone(),
                title: u.info.title.clone(),
                phone: u.phone.clone(),
                manager: u
                    .manager
                    .as_ref()
                    .and_then(|m| users.get(m))
                    .map(|m| m.info.display_name.clone()),
                office: u.office.clone(),
                responsibilities: u.responsibilities.clone(),
            })
            .collect();
        people.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(people)
    }

    /// Validates the file's users and groups, with every error located.
    fn parse(text: &str, origin: &Path) -> Result<Parsed, DemoDirectoryError> {
        let at = |span: Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            DemoDirectoryError::Invalid {
                path: origin.to_path_buf(),
                line,
                column,
                message,
            }
        };

        let file: FileBuilder = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => at(span, e.message().to_owned()),
            None => DemoDirectoryError::InvalidFile {
                path: origin.to_path_buf(),
                message: e.message().to_owned(),
            },
        })?;

        // Groups first: users refer to them.
        let mut group_index: HashMap<&str, usize> = HashMap::new();
        for (i, group) in file.groups.iter().enumerate() {
            let name = group.name.get_ref();
            if name.trim().is_empty() {
                return Err(at(group.name.span(), "`name`: empty group name".to_owned()));
            }
            if let Some(&first) = group_index.get(name.as_str()) {
                let (first_line, _) = line_col(text, file.groups[first].name.span().start);
                return Err(at(
                    group.name.span(),
                    format!("`name`: group `{name}` is defined twice (first on line {first_line})"),
                ));
            }
            group_index.insert(name, i);
        }
        for group in &file.groups {
            for parent in &group.member_of {
                if !group_index.contains_key(parent.get_ref().as_str()) {
                    return Err(at(
                        parent.span(),
                        format!(
                            "`member_of`: group `{}` is a member of `{}`, which no [[groups]] entry defines",
                            group.name.get_ref(),
                            parent.get_ref()
                        ),
                    ));
                }
            }
        }
        let closures = group_closures(&file.groups, &group_index).map_err(|(i, depth)| {
            at(
                file.groups[i].name.span(),
                format!(
                    "`member_of`: group `{}` is nested more than {MAX_NESTING_DEPTH} levels deep ({depth} or more)",
                    file.groups[i].name.get_ref()
                ),
            )
        })?;

        let mut users: HashMap<String, DemoUser> = HashMap::new();
        let mut first_line_of: HashMap<String, usize> = HashMap::new();
        let mut first_hash: Option<String> = None;
        let mut managers: Vec<(String, Spanned<String>)> = Vec::new();
        for user in file.users {
            let raw_id = user.id.get_ref();
            if raw_id.is_empty() {
                return Err(at(user.id.span(), "`id`: empty login name".to_owned()));
            }
            if !raw_id.chars().all(|c| c.is_ascii_graphic()) {
                return Err(at(
                    user.id.span(),
                    format!(
                        "`id`: login name {raw_id:?} must be ASCII letters, digits and punctuation, without spaces"
                    ),
                ));
            }
            let id = raw_id.to_ascii_lowercase();
            let (line, _) = line_col(text, user.id.span().start);
            if let Some(first_line) = first_line_of.get(&id) {
                return Err(at(
                    user.id.span(),
                    format!(
                        "`id`: duplicate user id `{id}` (first on line {first_line}; ids are case-insensitive)"
                    ),
                ));
            }
            first_line_of.insert(id.clone(), line);

            if user.name.get_ref().trim().is_empty() {
                return Err(at(
                    user.name.span(),
                    format!("`name`: empty display name for user `{id}`"),
                ));
            }

            if let Err(problem) = check_phc(user.password_hash.get_ref()) {
                return Err(at(
                    user.password_hash.span(),
                    format!(
                        "`password_hash`: invalid hash for user `{id}`: {problem} (expected an argon2 PHC string, `$argon2id$v=19$m=...,t=...,p=...$salt$hash`)"
                    ),
                ));
            }
            if first_hash.is_none() {
                first_hash = Some(user.password_hash.get_ref().clone());
            }

            let mut groups = BTreeSet::new();
            for group in &user.groups {
                let Some(&g) = group_index.get(group.get_ref().as_str()) else {
                    return Err(at(
                        group.span(),
                        format!(
                            "`groups`: user `{id}` is in group `{}`, which no [[groups]] entry defines",
                            group.get_ref()
                        ),
                    ));
                };
                groups.extend(
                    closures[g]
                        .iter()
                        .map(|&i| file.groups[i].name.get_ref().clone()),
                );
            }

            let manager = user.manager.map(|m| {
                let id_of_manager = normalise_login(m.get_ref());
                managers.push((id.clone(), m));
                id_of_manager
            });
            users.insert(
                id.clone(),
                DemoUser {
                    info: UserInfo {
                        id,
                        display_name: user.name.into_inner(),
                        mail: user.mail,
                        department: user.department,
                        title: user.title,
                        groups: groups.into_iter().collect(),
                    },
                    password_hash: user.password_hash.into_inner(),
                    disabled: user.disabled,
                    phone: user.phone,
                    manager,
                    office: user.office,
                    responsibilities: user.responsibilities,
                },
            );
        }
        // Checked once every user is known: a manager may come later in the file.
        for (id, manager) in &managers {
            if !users.contains_key(&normalise_login(manager.get_ref())) {
                return Err(at(
                    manager.span(),
                    format!(
                        "`manager`: user `{id}` has the manager `{}`, which no [[users]] entry defines",
                        manager.get_ref()
                    ),
                ));
            }
        }
        Ok(Parsed { users, first_hash })
    }

    /// How many password hashes this directory has verified since it was loaded.
    pub fn password_verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Verifies `password` against a PHC hash on the blocking pool: argon2 is deliberately
    /// slow and must not stall the executor.
    async fn verify(&self, hash: String, password: &str) -> Result<bool, AuthError> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| e.to_string())?;
            match Argon2::default().verify_password(password.as_bytes(), &parsed) {
                Ok(()) => Ok(true),
                Err(password_hash::Error::Password) => Ok(false),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .map_err(|e| AuthError::Unavailable(format!("password check failed: {e}")))?
        .map_err(|e| AuthError::Unavailable(format!("password check failed: {e}")))
    }
}

#[async_trait::async_trait]
impl Directory for DemoDirectory {
    async fn authenticate(&self, login: &str, password: &str) -> Result<UserInfo, AuthError> {
        if password_is_blank(password) {
            return Err(AuthError::Refused(FailureReason::EmptyPassword));
        }
        let Some(user) = self.users.get(&normalise_login(login)) else {
            // Spend the same time as for a real user, so the answer's timing does not tell
            // which login names exist. The result is irrelevant.
            let _ = self.verify(self.dummy_hash.clone(), password).await?;
            return Err(AuthError::Refused(FailureReason::NoSuchUser));
        };
        if !self.verify(user.password_hash.clone(), password).await? {
            return Err(AuthError::Refused(FailureReason::WrongPassword));
        }
        // Checked after the password, so only someone who knows it learns that the account is
        // disabled.
        if user.disabled {
            return Err(AuthError::Refused(FailureReason::Disabled));
        }
        Ok(user.info.clone())
    }

    async fn lookup(&self, user_id: &str) -> Result<Option<UserInfo>, AuthError> {
        Ok(self
            .users
            .get(&normalise_login(user_id))
            .filter(|u| !u.disabled)
            .map(|u| u.info.clone()))
    }

    fn kind(&self) -> &'static str {
        "demo"
    }
}

/// Login names are ASCII and case-insensitive; stray spaces around them are a typing slip.
fn normalise_login(login: &str) -> String {
    login.trim().to_ascii_lowercase()
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Checks that a PHC string is an argon2 hash this program can verify.
fn check_phc(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|e| e.to_string())?;
    Algorithm::try_from(hash.algorithm)
        .map_err(|_| format!("algorithm `{}` is not argon2", hash.algorithm))?;
    Params::try_from(&hash).map_err(|e| format!("bad parameters: {e}"))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("salt or hash missing".to_owned());
    }
    Ok(())
}

/// Hashes a random password with the algorithm and parameters of `model` (the first user's
/// hash). Without users there is no login name to protect, so the cheapest parameters do.
fn dummy_hash(model: Option<&str>) -> Result<String, String> {
    let (algorithm, version, params) = match model {
        Some(phc) => {
            let hash = PasswordHash::new(phc).map_err(|e| e.to_string())?;
            let algorithm = Algorithm::try_from(hash.algorithm).map_err(|e| e.to_string())?;
            let version = match hash.version {
                Some(v) => Version::try_from(v).map_err(|e| e.to_string())?,
                None => Version::default(),
            };
            let params = Params::try_from(&hash).map_err(|e| e.to_string())?;
            (algorithm, version, params)
        }
        None => {
            let params = Params::new(Params::MIN_M_COST, Params::MIN_T_COST, 1, None)
                .map_err(|e| e.to_string())?;
            (Algorithm::default(), Version::default(), params)
        }
    };
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    let password: [u8; 32] = rand::random();
    Argon2::new(algorithm, version, params)
        .hash_password(&password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// For every group, the indexes of all groups it is in (itself included), following
/// `member_of` breadth-first. The visited set makes cycles harmless; a group first reached
/// deeper than [`MAX_NESTING_DEPTH`] is an error `(group index, depth)`.
fn group_closures(
    groups: &[GroupBuilder],
    index: &HashMap<&str, usize>,
) -> Result<Vec<BTreeSet<usize>>, (usize, usize)> {
    let parents: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| {
            g.member_of
                .iter()
                .filter_map(|p| index.get(p.get_ref().as_str()).copied())
                .collect()
        })
        .collect();
    let mut closures = Vec::with_capacity(groups.len());
    for start in 0..groups.len() {
        let mut seen = BTreeSet::from([start]);
        let mut queue = VecDeque::from([(start, 0usize)]);
        while let Some((g, depth)) = queue.pop_front() {
            for &p in &parents[g] {
                if seen.insert(p) {
                    if depth + 1 > MAX_NESTING_DEPTH {
                        return Err((start, depth + 1));
                    }
                    queue.push_back((p, depth + 1));
                }
            }
        }
        closures.push(seen);
    }
    Ok(closures)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap hash for tests; production hashes use argon2's (much slower) defaults.
    fn hash(password: &str) -> String {
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    /// The fixture, hashed once: argon2 is slow in unoptimised test builds.
    fn fixture() -> String {
        static FIXTURE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        FIXTURE.get_or_init(make_fixture).clone()
    }

    fn make_fixture() -> String {
        format!(
            r#"
[[users]]
id = "Mette"
name = "Mette Sørensen"
password_hash = "{mette}"
mail = "mette.sorensen@kommune.example"
department = "Borgerservice"
title = "Sagsbehandler"
groups = ["borgerservice"]
phone = "+45 89 40 12 31"
manager = "IB"
office = "Rådhuset"
responsibilities = "Parkeringstilladelser"

[[users]]
id = "ib"
name = "Ib Ågård"
password_hash = "{ib}"
groups = ["it-drift", "alle-medarbejdere"]
manager = "gammel"

[[users]]
id = "gammel"
name = "Tidligere Medarbejder"
password_hash = "{gammel}"
groups = ["borgerservice"]
disabled = true

[[groups]]
name = "alle-medarbejdere"
description = "everyone"

[[groups]]
name = "borgerservice"
member_of = ["alle-medarbejdere"]

[[groups]]
name = "it-drift"
member_of = ["it-admins"]

[[groups]]
name = "it-admins"
member_of = ["portal-admins"]

# A cycle: portal-admins is (wrongly) inside it-drift, which is inside it-admins.
[[groups]]
name = "portal-admins"
member_of = ["it-drift"]
"#,
            mette = hash("hemmelig æøå"),
            ib = hash("korrekt hest"),
            gammel = hash("gammel kode"),
        )
    }

    fn demo() -> DemoDirectory {
        DemoDirectory::from_toml_str(&fixture(), Path::new("config/demo-users.toml")).unwrap()
    }

    fn refused(result: Result<UserInfo, AuthError>) -> FailureReason {
        match result {
            Err(AuthError::Refused(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn load_err(text: &str) -> String {
        DemoDirectory::from_toml_str(text, Path::new("/etc/samle/demo-users.toml"))
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn good_login_is_case_insensitive_and_returns_the_user() {
        let dir = demo();
        for login in ["mette", "METTE", "Mette", " mette "] {
            let user = dir.authenticate(login, "hemmelig æøå").await.unwrap();
            assert_eq!(user.id, "mette");
            assert_eq!(user.display_name, "Mette Sørensen");
            assert_eq!(user.mail.as_deref(), Some("mette.sorensen@kommune.example"));
            assert_eq!(user.department.as_deref(), Some("Borgerservice"));
            assert_eq!(user.title.as_deref(), Some("Sagsbehandler"));
            assert_eq!(user.groups, vec!["alle-medarbejdere", "borgerservice"]);
        }
        assert_eq!(dir.kind(), "demo");
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_user_are_refused() {
        let dir = demo();
        assert_eq!(
            refused(dir.authenticate("mette", "Hemmelig æøå").await),
            FailureReason::WrongPassword
        );
        let before = dir.password_verifications();
        assert_eq!(
            refused(dir.authenticate("nobody", "hemmelig æøå").await),
            FailureReason::NoSuchUser
        );
        // The unknown user still cost one hash verification, like a real one.
        assert_eq!(dir.password_verifications(), before + 1);
        // Non-ASCII and injection-looking logins are just unknown users.
        for login in ["*", "mette)(uid=*", "møtte", "\0"] {
            assert_eq!(
                refused(dir.authenticate(login, "x").await),
                FailureReason::NoSuchUser
            );
        }
    }

    #[tokio::test]
    async fn blank_passwords_are_refused_without_checking_a_hash() {
        let dir = demo();
        for password in ["", " ", "\t", "\u{a0}\u{3000}"] {
            for login in ["mette", "nobody"] {
                assert_eq!(
                    refused(dir.authenticate(login, password).await),
                    FailureReason::EmptyPassword
                );
            }
        }
        assert_eq!(dir.password_verifications(), 0);
    }

    #[tokio::test]
    async fn disabled_user_is_refused_only_with_the_right_password() {
        let dir = demo();
        assert_eq!(
            refused(dir.authenticate("gammel", "forkert").await),
            FailureReason::WrongPassword
        );
        assert_eq!(
            refused(dir.authenticate("gammel", "gammel kode").await),
            FailureReason::Disabled
        );
    }

    #[tokio::test]
    async fn nested_groups_are_expanded_through_a_cycle() {
        let dir = demo();
        let ib = dir.authenticate("ib", "korrekt hest").await.unwrap();
        assert_eq!(
            ib.groups,
            vec![
                "alle-medarbejdere",
                "it-admins",
                "it-drift",
                "portal-admins"
            ]
        );
    }

    #[tokio::test]
    async fn lookup_returns_active_users_only() {
        let dir = demo();
        let mette = dir.lookup("METTE").await.unwrap().unwrap();
        assert_eq!(mette.id, "mette");
        assert_eq!(dir.lookup("gammel").await.unwrap(), None);
        assert_eq!(dir.lookup("removed").await.unwrap(), None);
        assert_eq!(dir.password_verifications(), 0);

        // A user removed from the file (after a reload) is gone.
        let without_mette = fixture().replacen("id = \"Mette\"", "id = \"mette2\"", 1);
        let reloaded = DemoDirectory::from_toml_str(&without_mette, Path::new("x.toml")).unwrap();
        assert_eq!(reloaded.lookup("mette").await.unwrap(), None);
    }

    #[test]
    fn load_reads_the_file_and_names_it_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-users.toml");
        std::fs::write(&path, fixture()).unwrap();
        let demo = DemoDirectory::load(&path).unwrap();
        assert_eq!(demo.users.len(), 3);
        assert!(!format!("{demo:?}").contains("argon2"));

        let missing = dir.path().join("missing.toml");
        let err = DemoDirectory::load(&missing).unwrap_err().to_string();
        assert!(err.contains(&*missing.to_string_lossy()), "{err}");
    }

    #[test]
    fn people_are_read_with_managers_named_and_disabled_users_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-users.toml");
        std::fs::write(&path, fixture()).unwrap();
        let people = DemoDirectory::read_people(&path).unwrap();
        let ids: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["ib", "mette"]);
        let mette = &people[1];
        assert_eq!(mette.name, "Mette Sørensen");
        assert_eq!(mette.phone.as_deref(), Some("+45 89 40 12 31"));
        assert_eq!(mette.manager.as_deref(), Some("Ib Ågård"));
        assert_eq!(mette.office.as_deref(), Some("Rådhuset"));
        assert_eq!(
            mette.responsibilities.as_deref(),
            Some("Parkeringstilladelser")
        );
        // A manager who has left still has a name.
        assert_eq!(people[0].manager.as_deref(), Some("Tidligere Medarbejder"));
    }

    #[test]
    fn an_unknown_manager_is_refused() {
        let text = fixture().replacen("manager = \"IB\"", "manager = \"bo\"", 1);
        let line = text
            .lines()
            .position(|l| l.starts_with("manager = \"bo\""))
            .unwrap()
            + 1;
        let err = load_err(&text);
        assert!(
            err.starts_with(&format!("/etc/samle/demo-users.toml:{line}:11: `manager`")),
            "{err}"
        );
        assert!(err.contains("`bo`"), "{err}");
    }

    #[test]
    fn a_misspelt_key_names_file_line_and_key() {
        let text = fixture().replacen("password_hash", "pasword_hash", 1);
        let line = text
            .lines()
            .position(|l| l.starts_with("pasword_hash"))
            .unwrap()
            + 1;
        let err = load_err(&text);
        assert!(
            err.starts_with(&format!("/etc/samle/demo-users.toml:{line}:1: ")),
            "{err}"
        );
        assert!(err.contains("pasword_hash"), "{err}");
    }

    #[test]
    fn toml_syntax_errors_are_located() {
        let err = load_err("[[users]]\nid = \"a\"\nname = \n");
        assert!(err.starts_with("/etc/samle/demo-users.toml:3:"), "{err}");
    }

    #[test]
    fn duplicate_ids_are_refused_case_insensitively() {
        let h = hash("x");
        let text = format!(
            "[[users]]\nid = \"anna\"\nname = \"A\"\npassword_hash = \"{h}\"\n\n\
             [[users]]\nid = \"ANNA\"\nname = \"B\"\npassword_hash = \"{h}\"\n"
        );
        let err = load_err(&text);
        assert!(err.starts_with("/etc/samle/demo-users.toml:7:6: "), "{err}");
        assert!(err.contains("`id`") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn empty_and_non_ascii_ids_are_refused() {
        let h = hash("x");
        let err = load_err(&format!(
            "[[users]]\nid = \"\"\nname = \"A\"\npassword_hash = \"{h}\"\n"
        ));
        assert!(err.starts_with("/etc/samle/demo-users.toml:2:6: "), "{err}");
        assert!(err.contains("`id`"), "{err}");
        let err = load_err(&format!(
            "[[users]]\nid = \"søren\"\nname = \"A\"\npassword_hash = \"{h}\"\n"
        ));
        assert!(err.contains(":2:6: `id`"), "{err}");
        let err = load_err(&format!(
            "[[users]]\nid = \"a b\"\nname = \"A\"\npassword_hash = \"{h}\"\n"
        ));
        assert!(err.contains(":2:6: `id`"), "{err}");
    }

    #[test]
    fn invalid_hashes_are_refused() {
        for bad in [
            "hemmelig",
            "$argon2id$v=19$m=abc",
            "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            let err = load_err(&format!(
                "[[users]]\nid = \"a\"\nname = \"A\"\npassword_hash = \"{bad}\"\n"
            ));
            assert!(
                err.starts_with("/etc/samle/demo-users.toml:4:17: `password_hash`"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn unknown_and_duplicate_groups_are_refused() {
        let h = hash("x");
        let err = load_err(&format!(
            "[[users]]\nid = \"a\"\nname = \"A\"\npassword_hash = \"{h}\"\ngroups = [\"ghost\"]\n"
        ));
        assert!(err.contains(":5:11: `groups`"), "{err}");
        assert!(err.contains("`ghost`"), "{err}");

        let err = load_err(
            "[[groups]]\nname = \"a\"\nmember_of = [\"b\", \"phantom\"]\n\n[[groups]]\nname = \"b\"\n",
        );
        assert!(err.contains(":3:19: `member_of`"), "{err}");
        assert!(err.contains("`phantom`"), "{err}");

        let err = load_err("[[groups]]\nname = \"a\"\n\n[[groups]]\nname = \"a\"\n");
        assert!(err.contains(":5:8: `name`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn too_deep_nesting_is_refused() {
        let mut text = String::new();
        for i in 0..=MAX_NESTING_DEPTH + 1 {
            text.push_str(&format!(
                "[[groups]]\nname = \"g{i}\"\nmember_of = [\"g{}\"]\n\n",
                i + 1
            ));
        }
        text.push_str(&format!(
            "[[groups]]\nname = \"g{}\"\n",
            MAX_NESTING_DEPTH + 2
        ));
        let err = load_err(&text);
        assert!(
            err.contains("`g0`") && err.contains("nested more than"),
            "{err}"
        );

        // Exactly the limit is fine.
        let mut ok = String::new();
        for i in 0..MAX_NESTING_DEPTH {
            ok.push_str(&format!(
                "[[groups]]\nname = \"g{i}\"\nmember_of = [\"g{}\"]\n\n",
                i + 1
            ));
        }
        ok.push_str(&format!("[[groups]]\nname = \"g{MAX_NESTING_DEPTH}\"\n"));
        DemoDirectory::from_toml_str(&ok, Path::new("ok.toml")).unwrap();
    }

    #[test]
    fn line_col_counts_characters() {
        let text = "ab\nøø x";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 3 + "øø ".len()), (2, 4));
    }
}
