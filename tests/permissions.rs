#![allow(clippy::unwrap_used)]
//! The permission property test, end to end: a generated directory of users in nested groups
//! (a chain three levels deep and a cycle) loaded into a private `slapd`, a generated file
//! share of about 2,000 Markdown documents whose folders are shared with random principals
//! (groups, single users, `authenticated`, `public`, principals nobody has, an empty list, no
//! rule at all), and a real `samle serve` over both. Every user logs in through the form and
//! runs about a hundred random searches through the JSON API and the search page. Each
//! answer is compared with what the test computes on its own (nesting expanded here, not by
//! the product): the exact total, the exact facet counts, every hit on every page, the
//! snippets, and `/doc` for documents the user may not see.
//!
//! The seed is printed; `SAMLE_PERMISSIONS_SEED=<n>` replays another one.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use common::Portal;
use common::slapd::{SUFFIX, Slapd};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::Value;

const DEFAULT_SEED: u64 = 0x5a4d_1e00_2026;
const USERS: usize = 24;
const DOCS: usize = 2000;
const QUERIES_PER_USER: usize = 100;
/// Of each user's queries, this many go through the search page, the rest through the API.
const PAGE_QUERIES_PER_USER: usize = 15;
/// Invisible documents each user asks `/doc` for.
const DENIED_FETCHES_PER_USER: usize = 4;
/// Users searching at the same time.
const PARALLEL_USERS: usize = 4;
/// The search page's page size.
const PAGE_SIZE: usize = 10;

/// Invented words, lowercase a–z only, each ending in a vowel after a consonant (no Danish or
/// English suffix rule strips such an ending) and with a first four letters of its own, so
/// analysis leaves each one a term of its own: a one-word query finds exactly the documents
/// that contain the word.
const VOCAB: [&str; 16] = [
    "zorbaku", "kvilmo", "drafnu", "plinko", "brastu", "gnoffo", "tremzu", "vaskilo", "frumpo",
    "jeskalu", "wobbro", "yxtalu", "quorvo", "hilpsu", "nuftago", "sparklo",
];

/// Directory groups. 0 ⊂ 1 ⊂ 2 ⊂ 3 is a chain (a member of 0 is in 3 through three levels);
/// 5 ⊂ 6 ⊂ 7 ⊂ 5 is a cycle.
const GROUPS: [&str; 10] = [
    "pt-salg",
    "pt-løn",
    "pt-drift",
    "pt-jura",
    "pt-byg",
    "pt-skole",
    "pt-miljø",
    "pt-kultur",
    "pt-ældre",
    "pt-trafik",
];
const CHAIN: [(usize, usize); 3] = [(0, 1), (1, 2), (2, 3)];
const CYCLE: [(usize, usize); 3] = [(5, 6), (6, 7), (7, 5)];

struct SourceSpec {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    /// Top-level folders: the documents' tags.
    tops: &'static [&'static str],
    /// Shared only with single users and single groups, never with everyone.
    restricted: bool,
}

const SOURCES: [SourceSpec; 3] = [
    SourceSpec {
        id: "arkiv",
        name: "Arkivet Alfa",
        kind: "file",
        tops: &["økonomi", "personale", "projekter", "fælles"],
        restricted: false,
    },
    SourceSpec {
        id: "nyt",
        name: "Nyhedsrummet Beta",
        kind: "news",
        tops: &["intern", "presse", "fælles"],
        restricted: false,
    },
    SourceSpec {
        id: "lukket",
        name: "Lukket Gamma",
        kind: "memo",
        tops: &["bestyrelse", "fortroligt"],
        restricted: true,
    },
];
const SUBFOLDERS: [&str; 3] = ["mappe-1", "mappe-2", "mappe-3"];

// ---- the generated world ------------------------------------------------------------------

struct User {
    uid: String,
    password: String,
    /// Indexes into GROUPS of the groups the user is a direct member of.
    direct: BTreeSet<usize>,
    /// Every group, nesting expanded (computed by the test).
    groups: BTreeSet<String>,
    principals: BTreeSet<String>,
}

/// A folder (`top/sub`) and who may see its documents.
struct Unit {
    source: usize,
    top: &'static str,
    sub: &'static str,
    /// A word only this folder's documents contain.
    marker: String,
    /// `None`: no access rule matches the folder (and there is no default): nobody.
    rule: Option<Vec<String>>,
}

impl Unit {
    fn acl(&self) -> &[String] {
        self.rule.as_deref().unwrap_or(&[])
    }
}

struct Doc {
    source: usize,
    id: String,
    unit: usize,
    title: String,
    body: String,
    /// Every term of the title and the body, lowercase.
    words: BTreeSet<String>,
    date: String,
    year: i32,
}

struct World {
    users: Vec<User>,
    /// (child, parent): group `child` is a member of group `parent`.
    nesting: Vec<(usize, usize)>,
    units: Vec<Unit>,
    docs: Vec<Doc>,
}

impl World {
    fn generate(rng: &mut StdRng) -> World {
        let mut nesting: Vec<(usize, usize)> = CHAIN.iter().chain(&CYCLE).copied().collect();
        for child in 0..GROUPS.len() {
            for parent in child + 1..GROUPS.len() {
                if rng.random_bool(0.08) && !nesting.contains(&(child, parent)) {
                    nesting.push((child, parent));
                }
            }
        }

        let mut users: Vec<User> = (0..USERS)
            .map(|i| {
                let direct: BTreeSet<usize> = match i {
                    // Only the bottom of the chain: three levels of nesting to expand.
                    0 => [0].into(),
                    // Inside the cycle.
                    1 => [6].into(),
                    // No groups at all.
                    2 => BTreeSet::new(),
                    _ => {
                        let n = *[0, 1, 1, 1, 2, 2, 3].choose(rng).unwrap();
                        (0..n).map(|_| rng.random_range(0..GROUPS.len())).collect()
                    }
                };
                let letters: String = (0..6)
                    .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                    .collect();
                User {
                    uid: format!("ansat{:02}", i + 1),
                    password: format!("Kode-{letters}-{i}"),
                    direct,
                    groups: BTreeSet::new(),
                    principals: BTreeSet::new(),
                }
            })
            .collect();
        // groupOfNames needs a member: a group nobody is put in directly gets a user.
        for g in 0..GROUPS.len() {
            if !users.iter().any(|u| u.direct.contains(&g)) {
                let u = rng.random_range(3..USERS);
                users[u].direct.insert(g);
            }
        }
        for user in &mut users {
            user.groups = transitive_groups(&user.direct, &nesting);
            user.principals = ["public".to_string(), "authenticated".to_string()]
                .into_iter()
                .chain([format!("user:{}", user.uid)])
                .chain(user.groups.iter().map(|g| format!("group:{g}")))
                .collect();
        }

        let mut units = Vec::new();
        for (s, spec) in SOURCES.iter().enumerate() {
            for top in spec.tops {
                for sub in SUBFOLDERS {
                    let i = units.len();
                    let marker = format!(
                        "mk{}{}tu",
                        char::from(b'a' + (i / 26) as u8),
                        char::from(b'a' + (i % 26) as u8)
                    );
                    let rule = if spec.restricted {
                        restricted_rule(rng, &users)
                    } else {
                        random_rule(rng, &users)
                    };
                    units.push(Unit {
                        source: s,
                        top,
                        sub,
                        marker,
                        rule,
                    });
                }
            }
        }
        // The cases that must be there whatever the seed, in open folders chosen at random:
        // a group reached through three levels of nesting, a group in the cycle, no rule, an
        // empty list, principals nobody has, every logged-in user (twice), one user.
        let mut open: Vec<usize> = (0..units.len())
            .filter(|&u| !SOURCES[units[u].source].restricted)
            .collect();
        open.shuffle(rng);
        let forced: [Option<Vec<String>>; 8] = [
            Some(vec![format!("group:{}", GROUPS[3])]),
            Some(vec![format!("group:{}", GROUPS[5])]),
            None,
            Some(vec![]),
            Some(vec![
                "group:ingen-saadan-gruppe".into(),
                "user:ghost".into(),
            ]),
            Some(vec!["authenticated".into()]),
            Some(vec!["public".into()]),
            Some(vec![format!("user:{}", users[2].uid)]),
        ];
        for (rule, &u) in forced.into_iter().zip(&open) {
            units[u].rule = rule;
        }

        let docs = (0..DOCS)
            .map(|n| {
                let unit = rng.random_range(0..units.len());
                let u = &units[unit];
                let title = format!("Notat {n:04} {}", u.marker);
                let body = random_body(rng, &u.marker);
                let words = terms(&format!("{title} {body}"));
                let year = rng.random_range(2015..=2025);
                let date = format!(
                    "{year}-{:02}-{:02}",
                    rng.random_range(1..=12),
                    rng.random_range(1..=28)
                );
                Doc {
                    source: u.source,
                    id: format!("{}/{}/notat-{n:04}.md", u.top, u.sub),
                    unit,
                    title,
                    body,
                    words,
                    date,
                    year,
                }
            })
            .collect();
        World {
            users,
            nesting,
            units,
            docs,
        }
    }

    fn acl(&self, doc: &Doc) -> &[String] {
        self.units[doc.unit].acl()
    }

    fn visible(&self, user: &User, doc: &Doc) -> bool {
        self.acl(doc).iter().any(|p| user.principals.contains(p))
    }

    fn source_id(&self, doc: &Doc) -> &'static str {
        SOURCES[doc.source].id
    }

    /// The directory as LDIF for `ldapmodify -a`: people, then groups after their members,
    /// then the edge that closes the cycle.
    fn ldif(&self) -> String {
        let group_dn = |g: usize| format!("cn={},ou=groups,{SUFFIX}", GROUPS[g]);
        let user_dn = |u: &User| format!("uid={},ou=people,{SUFFIX}", u.uid);
        let mut out = String::new();
        for (i, u) in self.users.iter().enumerate() {
            out.push_str(&format!(
                "dn: {}\nobjectClass: inetOrgPerson\nuid: {}\ncn: Ansat {:02}\nsn: Ansat\n\
                 displayName: Ansat {:02}\nuserPassword: {}\n\n",
                user_dn(u),
                u.uid,
                i + 1,
                i + 1,
                u.password
            ));
        }
        // Every nesting edge goes from a lower to a higher index except the one closing the
        // cycle, so groups in index order come after their member groups.
        let (back_child, back_parent) = CYCLE[2];
        for (g, name) in GROUPS.iter().enumerate() {
            out.push_str(&format!(
                "dn: {}\nobjectClass: groupOfNames\ncn: {name}\n",
                group_dn(g)
            ));
            for u in self.users.iter().filter(|u| u.direct.contains(&g)) {
                out.push_str(&format!("member: {}\n", user_dn(u)));
            }
            for &(child, parent) in &self.nesting {
                if parent == g && (child, parent) != (back_child, back_parent) {
                    assert!(child < parent);
                    out.push_str(&format!("member: {}\n", group_dn(child)));
                }
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n\n",
            group_dn(back_parent),
            group_dn(back_child)
        ));
        out
    }

    /// Writes the share (one folder per source) and the configuration; returns its path.
    fn write_portal(&self, dir: &Path, directory_toml: &str) -> std::path::PathBuf {
        for doc in &self.docs {
            let path = dir.join("share").join(self.source_id(doc)).join(&doc.id);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(
                &path,
                format!(
                    "---\ntitle: {}\ndate: {}\n---\n\n{}\n",
                    doc.title, doc.date, doc.body
                ),
            )
            .unwrap();
        }
        let mut toml = format!(
            "{directory_toml}\n[auth]\nlogin_burst_per_client = 100000\n\
             login_burst_per_account = 1000\n\n[index]\ncommit_interval = \"10s\"\n"
        );
        for (s, spec) in SOURCES.iter().enumerate() {
            let mut rules = String::new();
            for unit in self.units.iter().filter(|u| u.source == s) {
                if let Some(principals) = &unit.rule {
                    let list: Vec<String> = principals.iter().map(|p| format!("\"{p}\"")).collect();
                    rules.push_str(&format!(
                        "  {{ path = \"{}/{}/**\", principals = [{}] }},\n",
                        unit.top,
                        unit.sub,
                        list.join(", ")
                    ));
                }
            }
            toml.push_str(&format!(
                r#"
[[sources]]
id = "{id}"
name = "{name}"
kind = "file-share"
schedule = "manual"
run_on_start = false

[sources.file-share]
root = "{root}"
language = "da"
kind = "{kind}"
access = [
{rules}]
"#,
                id = spec.id,
                name = spec.name,
                kind = spec.kind,
                root = dir.join("share").join(spec.id).display(),
            ));
        }
        let config = dir.join("samle.toml");
        std::fs::write(&config, toml).unwrap();
        config
    }
}

/// The groups reached from `direct` by following "is a member of" upwards, cycle-safe.
fn transitive_groups(direct: &BTreeSet<usize>, nesting: &[(usize, usize)]) -> BTreeSet<String> {
    let mut seen: BTreeSet<usize> = direct.clone();
    let mut queue: VecDeque<usize> = direct.iter().copied().collect();
    while let Some(g) = queue.pop_front() {
        for &(child, parent) in nesting {
            if child == g && seen.insert(parent) {
                queue.push_back(parent);
            }
        }
    }
    seen.into_iter().map(|g| GROUPS[g].to_string()).collect()
}

fn random_rule(rng: &mut StdRng, users: &[User]) -> Option<Vec<String>> {
    let roll = rng.random_range(0..100);
    match roll {
        0..8 => None,
        8..12 => Some(vec![]),
        12..16 => Some(vec!["group:ingen-saadan-gruppe".into()]),
        16..24 => Some(vec!["authenticated".into()]),
        24..28 => Some(vec!["public".into()]),
        _ => {
            let n = rng.random_range(1..=3);
            Some(
                (0..n)
                    .map(|_| {
                        if rng.random_bool(0.75) {
                            format!("group:{}", GROUPS.choose(rng).unwrap())
                        } else {
                            format!("user:{}", users.choose(rng).unwrap().uid)
                        }
                    })
                    .collect(),
            )
        }
    }
}

fn restricted_rule(rng: &mut StdRng, users: &[User]) -> Option<Vec<String>> {
    match rng.random_range(0..3) {
        0 => None,
        1 => Some(vec![format!("user:{}", users.choose(rng).unwrap().uid)]),
        _ => Some(vec![format!("group:{}", GROUPS.choose(rng).unwrap())]),
    }
}

/// Sentences of vocabulary words (a few words per document, repeated) with the folder's
/// marker word in one or two places.
fn random_body(rng: &mut StdRng, marker: &str) -> String {
    let n = rng.random_range(3..=7);
    let own: Vec<&str> = VOCAB.choose_multiple(rng, n).copied().collect();
    let mut words: Vec<&str> = (0..rng.random_range(25..=45))
        .map(|_| *own.choose(rng).unwrap())
        .collect();
    for _ in 0..rng.random_range(1..=2) {
        let at = rng.random_range(0..=words.len());
        words.insert(at, marker);
    }
    let mut body = String::new();
    for sentence in words.chunks(7) {
        let mut s = sentence.join(" ");
        s[..1].make_ascii_uppercase();
        body.push_str(&s);
        body.push_str(". ");
    }
    body.trim_end().to_string()
}

/// Lowercase terms: runs of letters and digits.
fn terms(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

// ---- queries and what they must answer ----------------------------------------------------

#[derive(Clone, Debug)]
struct Query {
    words: Vec<String>,
    source: Option<&'static str>,
    kind: Option<&'static str>,
    tag: Option<&'static str>,
    year: Option<i32>,
    sort: &'static str,
    page: usize,
    limit: usize,
}

impl Query {
    fn random(rng: &mut StdRng, world: &World) -> Query {
        let mut words: Vec<String> = Vec::new();
        if rng.random_bool(0.75) {
            let n = rng.random_range(1..=2);
            words.extend(VOCAB.choose_multiple(rng, n).map(|w| w.to_string()));
        } else {
            words.push(world.units.choose(rng).unwrap().marker.clone());
            if rng.random_bool(0.5) {
                words.push(VOCAB.choose(rng).unwrap().to_string());
            }
        }
        let all_tags: BTreeSet<&'static str> = SOURCES
            .iter()
            .flat_map(|s| s.tops.iter().copied())
            .collect();
        let all_tags: Vec<&'static str> = all_tags.into_iter().collect();
        Query {
            words,
            source: rng
                .random_bool(0.25)
                .then(|| SOURCES.choose(rng).unwrap().id),
            kind: rng
                .random_bool(0.1)
                .then(|| SOURCES.choose(rng).unwrap().kind),
            tag: rng
                .random_bool(0.25)
                .then(|| *all_tags.choose(rng).unwrap()),
            year: rng.random_bool(0.1).then(|| rng.random_range(2015..=2025)),
            sort: ["relevance", "newest", "oldest"].choose(rng).unwrap(),
            page: rng.random_range(1..=4),
            limit: *[10, 50].choose(rng).unwrap(),
        }
    }

    fn params(&self, with_limit: bool) -> Vec<(&'static str, String)> {
        let mut p = vec![("q", self.words.join(" "))];
        if let Some(s) = self.source {
            p.push(("source", s.into()));
        }
        if let Some(k) = self.kind {
            p.push(("kind", k.into()));
        }
        if let Some(t) = self.tag {
            p.push(("tag", t.into()));
        }
        if let Some(y) = self.year {
            p.push(("year", y.to_string()));
        }
        p.push(("sort", self.sort.into()));
        p.push(("page", self.page.to_string()));
        if with_limit {
            p.push(("limit", self.limit.to_string()));
        }
        p
    }

    /// Whether a document matches the words and filters, whoever looks.
    fn matches(&self, doc: &Doc) -> bool {
        let spec = &SOURCES[doc.source];
        let tag = doc.id.split('/').next().unwrap();
        self.words.iter().all(|w| doc.words.contains(w))
            && self.source.is_none_or(|s| s == spec.id)
            && self.kind.is_none_or(|k| k == spec.kind)
            && self.tag.is_none_or(|t| t == tag)
            && self.year.is_none_or(|y| y == doc.year)
    }
}

/// What one user's query must find, computed from the world alone.
struct Expected<'w> {
    /// Matching documents the user may see, by (source, id).
    visible: HashMap<(&'static str, &'w str), &'w Doc>,
    /// Matching documents the user may not see.
    hidden: Vec<&'w Doc>,
    /// Facet counts over the visible matches.
    facets: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

impl<'w> Expected<'w> {
    fn new(world: &'w World, user: &User, q: &Query) -> Expected<'w> {
        let mut visible = HashMap::new();
        let mut hidden = Vec::new();
        let mut facets: BTreeMap<&'static str, BTreeMap<String, u64>> = BTreeMap::new();
        for key in ["source", "kind", "year", "tag"] {
            facets.insert(key, BTreeMap::new());
        }
        for doc in world.docs.iter().filter(|d| q.matches(d)) {
            if world.visible(user, doc) {
                visible.insert((world.source_id(doc), doc.id.as_str()), doc);
                let spec = &SOURCES[doc.source];
                for (key, value) in [
                    ("source", spec.id.to_string()),
                    ("kind", spec.kind.to_string()),
                    ("year", doc.year.to_string()),
                    ("tag", doc.id.split('/').next().unwrap().to_string()),
                ] {
                    *facets.get_mut(key).unwrap().entry(value).or_default() += 1;
                }
            } else {
                hidden.push(doc);
            }
        }
        Expected {
            visible,
            hidden,
            facets,
        }
    }

    fn total(&self) -> usize {
        self.visible.len()
    }

    fn on_page(&self, page: usize, limit: usize) -> usize {
        self.total().saturating_sub((page - 1) * limit).min(limit)
    }
}

/// One user's view of the world.
struct Viewer<'w> {
    world: &'w World,
    user: &'w User,
    /// Marker words of the folders this user may not see: words only invisible documents have.
    hidden_markers: Vec<&'w str>,
}

impl<'w> Viewer<'w> {
    fn new(world: &'w World, user: &'w User) -> Viewer<'w> {
        let hidden_markers = world
            .units
            .iter()
            .filter(|u| !u.acl().iter().any(|p| user.principals.contains(p)))
            .map(|u| u.marker.as_str())
            .collect();
        Viewer {
            world,
            user,
            hidden_markers,
        }
    }

    fn check_api(&self, q: &Query, expected: &Expected, v: &Value, ctx: &str) {
        let total = v["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("{ctx}: no total: {v}"));
        assert_eq!(total as usize, expected.total(), "{ctx}: total");
        let hits = v["hits"].as_array().unwrap();
        assert_eq!(
            hits.len(),
            expected.on_page(q.page, q.limit),
            "{ctx}: hits on the page"
        );
        let mut seen = HashSet::new();
        let mut dates = Vec::new();
        for hit in hits {
            let source = hit["source"].as_str().unwrap();
            let id = hit["id"].as_str().unwrap();
            let Some(doc) = expected.visible.get(&(source, id)).copied() else {
                let hidden = expected
                    .hidden
                    .iter()
                    .any(|d| self.world.source_id(d) == source && d.id == id);
                panic!(
                    "{ctx}: hit {source}/{id} is not in the allowed set (a hidden match: {hidden})"
                );
            };
            assert!(
                seen.insert((source, id)),
                "{ctx}: {source}/{id} twice on one page"
            );
            assert_eq!(hit["title"], doc.title.as_str(), "{ctx}: title of {id}");
            assert_eq!(hit["kind"], SOURCES[doc.source].kind, "{ctx}: kind of {id}");
            let tag = doc.id.split('/').next().unwrap();
            assert_eq!(hit["tags"], serde_json::json!([tag]), "{ctx}: tags of {id}");
            self.check_snippet(q, doc, &hit["snippet"], ctx);
            dates.push(doc.date.as_str());
        }
        let ordered = match q.sort {
            "newest" => dates.windows(2).all(|w| w[0] >= w[1]),
            "oldest" => dates.windows(2).all(|w| w[0] <= w[1]),
            _ => true,
        };
        assert!(ordered, "{ctx}: not sorted {}: {dates:?}", q.sort);
        for (key, want) in &expected.facets {
            let got: BTreeMap<String, u64> = v["facets"][key]
                .as_array()
                .unwrap_or_else(|| panic!("{ctx}: no {key} facet: {v}"))
                .iter()
                .map(|f| {
                    (
                        f["value"].as_str().unwrap().to_string(),
                        f["count"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(&got, want, "{ctx}: {key} facet counts");
        }
    }

    /// Every word of a snippet comes from the hit itself, no hidden folder's word shows, and
    /// only query words are highlighted.
    fn check_snippet(&self, q: &Query, doc: &Doc, snippet: &Value, ctx: &str) {
        let parts = snippet.as_array().unwrap();
        assert!(!parts.is_empty(), "{ctx}: {} has no snippet", doc.id);
        let body = doc.body.to_lowercase();
        let mut text = String::new();
        for part in parts {
            let t = part["text"].as_str().unwrap();
            if part["highlighted"] == true {
                assert!(
                    q.words.contains(&t.to_lowercase()),
                    "{ctx}: {} highlights {t:?}, which is not a query word",
                    doc.id
                );
            }
            text.push_str(t);
        }
        let text = text.to_lowercase();
        for word in terms(&text) {
            assert!(
                body.contains(&word),
                "{ctx}: the snippet of {} shows {word:?}, which is not in it: {text:?}",
                doc.id
            );
        }
        for marker in &self.hidden_markers {
            assert!(
                !text.contains(marker),
                "{ctx}: the snippet of {} shows {marker:?}, a word of documents hidden from {}",
                doc.id,
                self.user.uid
            );
        }
    }

    fn check_page(&self, q: &Query, expected: &Expected, html: &str, ctx: &str) {
        let links = hit_links(html);
        assert_eq!(
            links.len(),
            expected.on_page(q.page, PAGE_SIZE),
            "{ctx}: hits on the page"
        );
        for (source, id) in &links {
            assert!(
                expected
                    .visible
                    .contains_key(&(source.as_str(), id.as_str())),
                "{ctx}: the page links {source}/{id}, which is not in the allowed set"
            );
        }
        // Each document has exactly one source, kind, year and tag: the facet counts on the
        // page add up to four times the total.
        let counts: u64 = facet_counts(html).iter().sum();
        assert_eq!(
            counts,
            4 * expected.total() as u64,
            "{ctx}: facet counts on the page"
        );
        for marker in &self.hidden_markers {
            if !q.words.iter().any(|w| w == marker) {
                assert!(
                    !html.contains(marker),
                    "{ctx}: the page shows {marker:?}, a hidden word"
                );
            }
        }
        for doc in &expected.hidden {
            assert!(
                !html.contains(&doc.title),
                "{ctx}: the page shows the hidden title {:?}",
                doc.title
            );
        }
        for spec in &SOURCES {
            if !expected.facets["source"].contains_key(spec.id) && q.source != Some(spec.id) {
                assert!(
                    !html.contains(spec.name),
                    "{ctx}: the page names the source {}",
                    spec.name
                );
            }
        }
        for &tag in SOURCES.iter().flat_map(|s| s.tops.iter()) {
            if !expected.facets["tag"].contains_key(tag) && q.tag != Some(tag) {
                assert!(
                    !html.contains(&format!(">{tag}</a>")),
                    "{ctx}: the page offers the tag {tag}"
                );
            }
        }
    }
}

/// `GET path`: the status and the body, without what differs from one request to the next
/// (the request id) and without the path itself in any form a page could echo it in, so that
/// the answers for two paths can be compared.
async fn fetch_normalised(client: &reqwest::Client, base: &str, path: &str) -> (u16, String) {
    let r = client.get(format!("{base}{path}")).send().await.unwrap();
    let status = r.status().as_u16();
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let mut body = r.text().await.unwrap().replace(&rid, "");
    let encoded: String = path
        .bytes()
        .map(|b| {
            if b.is_ascii_graphic() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    for form in [encoded.as_str(), path] {
        body = body.replace(&html_escape(form), "").replace(form, "");
    }
    (status, body)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The `/doc/<source>/<id>` links of the hits on a search page, decoded.
fn hit_links(html: &str) -> Vec<(String, String)> {
    let start = "<h3 class=\"hit-title\"><a href=\"";
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(start) {
        rest = &rest[at + start.len()..];
        let end = rest.find('"').unwrap();
        let href = html_unescape(&rest[..end]);
        let path = href
            .strip_prefix("/doc/")
            .unwrap_or_else(|| panic!("a hit links somewhere else: {href}"));
        let (source, id) = path.split_once('/').unwrap();
        out.push((percent_decode(source), percent_decode(id)));
    }
    out
}

/// The numbers of the facet lists on a search page.
fn facet_counts(html: &str) -> Vec<u64> {
    html.split("<span class=\"count\">")
        .skip(1)
        .map(|s| {
            let n: String = s[..s.find('<').unwrap()]
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            n.parse().unwrap()
        })
        .collect()
}

fn html_unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// What one user's run found, for the checks that the test exercised something.
#[derive(Default)]
struct Tally {
    queries: usize,
    hits: usize,
    /// Queries whose words and filters matched documents the user may not see.
    trimmed: usize,
    denied_fetches: usize,
}

async fn run_user(base: String, world: Arc<World>, u: usize, seed: u64) -> Tally {
    let world = &*world;
    let user = &world.users[u];
    let viewer = Viewer::new(world, user);
    let portal_url = |path: &str| format!("{base}{path}");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Log in through the form.
    let html = client
        .get(portal_url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = common::csrf_in(&html).unwrap();
    let r = client
        .post(portal_url("/login"))
        .form(&[
            ("username", user.uid.as_str()),
            ("password", &user.password),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "login as {} failed: {}",
        user.uid,
        r.text().await.unwrap()
    );

    // The groups the portal resolved are the ones the test computed.
    let me: Value = client
        .get(portal_url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups: BTreeSet<String> = me["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    assert_eq!(groups, user.groups, "seed {seed}: groups of {}", user.uid);

    let mut rng = StdRng::seed_from_u64(seed ^ (u as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut tally = Tally::default();
    for n in 0..QUERIES_PER_USER {
        let q = Query::random(&mut rng, world);
        let expected = Expected::new(world, user, &q);
        let page = n < PAGE_QUERIES_PER_USER;
        let (path, params) = if page {
            ("/search", q.params(false))
        } else {
            ("/api/v1/search", q.params(true))
        };
        let ctx = format!("seed {seed}, user {}, {path} {params:?}", user.uid);
        let r = client
            .get(portal_url(path))
            .query(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ctx}");
        if page {
            viewer.check_page(&q, &expected, &r.text().await.unwrap(), &ctx);
        } else {
            viewer.check_api(&q, &expected, &r.json().await.unwrap(), &ctx);
        }
        tally.queries += 1;
        tally.hits += expected.on_page(q.page, if page { PAGE_SIZE } else { q.limit });
        tally.trimmed += usize::from(!expected.hidden.is_empty());
    }

    // Documents the user may not see are "not found", like documents that do not exist, and
    // the answer names neither their title nor who may see them.
    let hidden: Vec<&Doc> = world
        .docs
        .iter()
        .filter(|d| !world.visible(user, d))
        .collect();
    let (status, missing_body) =
        fetch_normalised(&client, &base, "/doc/arkiv/findes/ikke.md").await;
    assert_eq!(status, 404);
    for doc in hidden.choose_multiple(&mut rng, DENIED_FETCHES_PER_USER) {
        let path = format!("/doc/{}/{}", world.source_id(doc), doc.id);
        let (status, body) = fetch_normalised(&client, &base, &path).await;
        assert_eq!(
            status, 404,
            "seed {seed}: {} fetched hidden {path}",
            user.uid
        );
        assert!(
            !body.contains(&doc.title),
            "{path}: the denial shows the title"
        );
        assert!(
            !body.contains(&world.units[doc.unit].marker),
            "{path}: the denial shows content"
        );
        for principal in world.acl(doc) {
            if let Some((_, name)) = principal.split_once(':') {
                assert!(!body.contains(name), "{path}: the denial names {principal}");
            }
        }
        assert_eq!(
            body, missing_body,
            "{path}: a hidden document must look exactly like a missing one"
        );
        tally.denied_fetches += 1;
    }
    // ... while documents the user may see are shown.
    let shown: Vec<&Doc> = world
        .docs
        .iter()
        .filter(|d| world.visible(user, d))
        .collect();
    for doc in shown.choose_multiple(&mut rng, 2) {
        let path = format!("/doc/{}/{}", world.source_id(doc), doc.id);
        let r = client.get(portal_url(&path)).send().await.unwrap();
        assert_eq!(
            r.status(),
            200,
            "seed {seed}: {} cannot open {path}",
            user.uid
        );
        assert!(r.text().await.unwrap().contains(&doc.title), "{path}");
    }
    tally
}

#[tokio::test]
async fn no_user_ever_sees_a_document_outside_their_allowed_set() {
    let seed = std::env::var("SAMLE_PERMISSIONS_SEED")
        .ok()
        .map(|s| s.parse().expect("SAMLE_PERMISSIONS_SEED is a number"))
        .unwrap_or(DEFAULT_SEED);
    eprintln!("permission property test: seed {seed} (SAMLE_PERMISSIONS_SEED replays one)");
    let mut rng = StdRng::seed_from_u64(seed);
    let world = World::generate(&mut rng);

    let slapd = Slapd::start();
    slapd.ldapmodify(&world.ldif());
    let dir = tempfile::tempdir().unwrap();
    let config = world.write_portal(dir.path(), &slapd.portal_directory_toml(dir.path()));
    let portal = Portal::start(&config, &dir.path().join("data"));

    // Everything was indexed: the model and the index hold the same documents.
    let ready: Value = reqwest::get(portal.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["documents"], DOCS, "{ready}");

    let world = Arc::new(world);
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_USERS));
    let mut tasks = tokio::task::JoinSet::new();
    for u in 0..USERS {
        let (base, world, permits) = (portal.base.clone(), world.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            run_user(base, world, u, seed).await
        });
    }
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        let tally = match done {
            Ok(t) => t,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("{e}"),
        };
        total.queries += tally.queries;
        total.hits += tally.hits;
        total.trimmed += tally.trimmed;
        total.denied_fetches += tally.denied_fetches;
    }
    eprintln!(
        "{} queries, {} hits checked, {} queries trimmed, {} denied fetches",
        total.queries, total.hits, total.trimmed, total.denied_fetches
    );
    // The run was not vacuous: many hits were checked, and most queries had matches the
    // user may not see that had to be left out.
    assert_eq!(total.queries, USERS * QUERIES_PER_USER);
    assert!(
        total.hits > total.queries * 3,
        "too few hits to mean anything"
    );
    assert!(
        total.trimmed > total.queries / 2,
        "too few queries met hidden documents"
    );
    assert_eq!(total.denied_fetches, USERS * DENIED_FETCHES_PER_USER);
}
