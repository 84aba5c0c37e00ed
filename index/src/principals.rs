//! The viewer's principals: who is searching, as the access lists name them.

use std::collections::BTreeSet;

/// The viewer's principals. There is no way to search without one of these.
///
/// Every set contains [`Principals::PUBLIC`]; a logged-in user's set also holds
/// [`Principals::AUTHENTICATED`] (added by whoever builds it from the session), `user:<id>`
/// and `group:<name>` entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principals {
    set: BTreeSet<String>,
}

impl Principals {
    /// Held by anyone, even a visitor who is not logged in.
    pub const PUBLIC: &'static str = "public";
    /// Held by any logged-in user.
    pub const AUTHENTICATED: &'static str = "authenticated";

    /// A visitor who is not logged in: exactly `{"public"}`.
    pub fn anonymous() -> Self {
        Principals::new(std::iter::empty::<String>())
    }

    /// The given principals plus [`Principals::PUBLIC`]. Empty strings are ignored.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        let mut set: BTreeSet<String> = items
            .into_iter()
            .map(Into::into)
            .filter(|p| !p.is_empty())
            .collect();
        set.insert(Self::PUBLIC.to_string());
        Principals { set }
    }

    /// The principals, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(String::as_str)
    }

    /// Whether the viewer holds `principal`.
    pub fn contains(&self, principal: &str) -> bool {
        self.set.contains(principal)
    }

    /// Whether a document with this access list is visible to the viewer: some principal in
    /// common. An empty list is visible to nobody.
    ///
    /// For tests and property checks only: searches enforce access inside the tantivy query.
    pub fn may_see(&self, acl: &[String]) -> bool {
        acl.iter().any(|p| self.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_is_exactly_public() {
        let anon = Principals::anonymous();
        assert_eq!(anon.iter().collect::<Vec<_>>(), vec!["public"]);
    }

    #[test]
    fn new_always_adds_public_and_drops_empty() {
        let p = Principals::new(["group:hr", "", "user:anna", "group:hr"]);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            vec!["group:hr", "public", "user:anna"]
        );
        assert!(p.contains(Principals::PUBLIC));
        assert!(!p.contains(Principals::AUTHENTICATED));
    }

    #[test]
    fn may_see_table() {
        let p = Principals::new(["group:hr"]);
        let table: &[(&[&str], bool)] = &[
            (&[], false),
            (&["group:it"], false),
            (&["group:it", "group:hr"], true),
            (&["public"], true),
            (&["authenticated"], false),
            (&[""], false),
        ];
        for (acl, expected) in table {
            let acl: Vec<String> = acl.iter().map(|s| s.to_string()).collect();
            assert_eq!(p.may_see(&acl), *expected, "{acl:?}");
        }
    }
}
