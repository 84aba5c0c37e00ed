//! Who may log in, and which groups they are in: the [`Directory`] trait behind the login page
//! and the periodic principal refresh.
//!
//! A directory checks passwords and reads users and their groups (nesting expanded). It does not
//! decide roles or principals — that mapping is configuration applied by the caller — and it
//! never sees sessions. Implementations: [`demo::DemoDirectory`] (users in a TOML file, for
//! trying the portal without LDAP) and [`ldap::LdapDirectory`] (OpenLDAP, Active Directory
//! and other LDAP servers). [`people`] reads the same directory as a source: the staff
//! directory's people as searchable documents.

use serde::{Deserialize, Serialize};

pub mod demo;
pub mod ldap;
pub mod people;

pub use demo::{DemoDirectory, DemoDirectoryError};

/// A directory user as the portal sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The login name, lowercase.
    pub id: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    /// Every group the user is in, nesting expanded, sorted and without duplicates.
    pub groups: Vec<String>,
}

/// Why a login was refused. Only logs and the audit trail see this: the user is shown one
/// message for every reason, so a stranger cannot learn which accounts exist or are disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    EmptyPassword,
    NoSuchUser,
    WrongPassword,
    Disabled,
    Locked,
    Expired,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::EmptyPassword => "empty password",
            FailureReason::NoSuchUser => "no such user",
            FailureReason::WrongPassword => "wrong password",
            FailureReason::Disabled => "account disabled",
            FailureReason::Locked => "account locked",
            FailureReason::Expired => "password expired",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The login was refused; the UI shows the same message for every reason.
    #[error("login refused: {0}")]
    Refused(FailureReason),
    /// The directory could not answer (unreachable, timed out, misconfigured).
    #[error("directory unavailable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    /// Check the password and return the user with groups. Must refuse empty or
    /// whitespace-only passwords (see [`password_is_blank`]) before touching any backend: an
    /// LDAP bind with an empty password is an unauthenticated bind, which some servers answer
    /// with success.
    async fn authenticate(&self, login: &str, password: &str) -> Result<UserInfo, AuthError>;

    /// Re-read a user (for periodic principal refresh). `Ok(None)` if the user no longer
    /// exists or is disabled.
    async fn lookup(&self, user_id: &str) -> Result<Option<UserInfo>, AuthError>;

    /// "demo" for the demo directory (the UI shows a banner), "ldap" for LDAP directories.
    fn kind(&self) -> &'static str;

    /// For `samle check`: proves the directory answers now (an LDAP service bind), and
    /// returns human-readable notes. The default has nothing to connect to.
    async fn check(&self) -> Result<Vec<String>, AuthError> {
        Ok(Vec::new())
    }
}

/// Whether a password is empty or only whitespace (any Unicode whitespace, such as a
/// non-breaking space pasted from a document).
pub fn password_is_blank(p: &str) -> bool {
    p.chars().all(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_passwords() {
        for p in ["", " ", "\t\n", "\u{a0}", "\u{3000} \u{2003}"] {
            assert!(password_is_blank(p), "{p:?}");
        }
        for p in ["a", " a ", "ø", "\u{200b}"] {
            assert!(!password_is_blank(p), "{p:?}");
        }
    }

    #[test]
    fn refused_message_carries_the_reason_for_logs() {
        let err = AuthError::Refused(FailureReason::WrongPassword);
        assert_eq!(err.to_string(), "login refused: wrong password");
    }
}
