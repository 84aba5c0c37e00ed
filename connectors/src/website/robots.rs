//! `robots.txt` as RFC 9309 reads it, parsed by texting_robots for the user agent `Samle`.

use std::time::Duration;

use texting_robots::Robot;
use url::Url;

use super::ROBOTS_AGENT;
use crate::http::{HttpClient, HttpError};

/// RFC 9309 asks crawlers to read at least 500 KiB of a robots.txt; the rest is ignored.
const MAX_ROBOTS_BYTES: usize = 512 * 1024;
/// A `Crawl-delay` above this is taken as this: a day between requests is no crawl at all.
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(30);

/// A site's `robots.txt`, as far as it could be read.
pub(super) enum RobotsTxt {
    /// Absent (a 4xx answer, or a redirect the client may not follow): everything is allowed.
    Absent,
    Rules(Box<Robot>),
    /// A 5xx, 429 or no answer: RFC 9309 says to assume that everything is disallowed.
    Unreachable(String),
    /// Served but not parseable: everything is allowed, but the crawl is not complete.
    Unreadable(String),
}

pub(super) struct Robots {
    pub(super) url: Url,
    pub(super) txt: RobotsTxt,
}

impl Robots {
    pub(super) fn allows(&self, url: &Url) -> bool {
        match &self.txt {
            RobotsTxt::Absent | RobotsTxt::Unreadable(_) => true,
            RobotsTxt::Rules(robot) => robot.allowed(robots_target(url)),
            RobotsTxt::Unreachable(_) => false,
        }
    }

    pub(super) fn delay(&self) -> Option<Duration> {
        match &self.txt {
            RobotsTxt::Rules(robot) => robot
                .delay
                .filter(|d| d.is_finite() && *d > 0.0)
                .map(|d| Duration::from_secs_f32(d).min(MAX_CRAWL_DELAY)),
            _ => None,
        }
    }

    pub(super) fn sitemaps(&self) -> &[String] {
        match &self.txt {
            RobotsTxt::Rules(robot) => &robot.sitemaps,
            _ => &[],
        }
    }

    pub(super) fn describe(&self) -> String {
        match &self.txt {
            RobotsTxt::Absent => "absent".to_owned(),
            RobotsTxt::Rules(_) => "present".to_owned(),
            RobotsTxt::Unreachable(reason) => format!("unreachable ({reason})"),
            RobotsTxt::Unreadable(reason) => format!("unreadable ({reason})"),
        }
    }
}

/// What to match a URL against robots rules by: its path and query. The rules look at nothing
/// else, and given a whole URL `texting_robots` parses it for every page to cut that part out.
/// A URL's path and query never hold what the library would percent-encode in a relative URL,
/// except a backtick in a query: then the whole URL goes, as before.
fn robots_target(url: &Url) -> &str {
    let target = &url[url::Position::BeforePath..];
    if target.contains('`') {
        url.as_str()
    } else {
        target
    }
}

/// Fetches and parses the `robots.txt` of `url`'s origin.
pub(super) async fn fetch_robots(client: &HttpClient, url: &Url) -> Robots {
    let mut robots_url = url.clone();
    robots_url.set_path("/robots.txt");
    robots_url.set_query(None);
    robots_url.set_fragment(None);
    let txt = match client.get(&robots_url).await {
        Ok(fetched) => {
            let body = &fetched.body[..fetched.body.len().min(MAX_ROBOTS_BYTES)];
            match Robot::new(ROBOTS_AGENT, body) {
                Ok(robot) => RobotsTxt::Rules(Box::new(robot)),
                Err(e) => RobotsTxt::Unreadable(e.to_string()),
            }
        }
        Err(HttpError::Status { status, .. })
            if status.is_client_error() && status.as_u16() != 429 =>
        {
            RobotsTxt::Absent
        }
        Err(HttpError::RedirectRefused { .. }) => RobotsTxt::Absent,
        Err(e) => RobotsTxt::Unreachable(e.to_string()),
    };
    Robots {
        url: robots_url,
        txt,
    }
}

/// The sitemaps to read for a seed: those its `robots.txt` names, else `/sitemap.xml`.
/// `true` marks a declared sitemap, whose failure matters.
pub(super) fn sitemap_roots(seed: &Url, robots: Option<&Robots>) -> Vec<(Url, bool)> {
    let declared: Vec<(Url, bool)> = robots
        .map(Robots::sitemaps)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| seed.join(s.trim()).ok())
        .map(|u| (u, true))
        .collect();
    if !declared.is_empty() {
        return declared;
    }
    let mut default = seed.clone();
    default.set_path("/sitemap.xml");
    default.set_query(None);
    vec![(default, false)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_see_the_same_target_as_with_the_whole_url() {
        let robots = Robot::new(
            ROBOTS_AGENT,
            b"User-agent: *\nDisallow: /intern/\nDisallow: /*?side=\nDisallow: /s%C3%B8g\nAllow: /intern/aaben\nDisallow: /*`\nDisallow: /robots\n",
        )
        .unwrap();
        // The decision must be the one the whole URL gets; where it is plain, that too.
        let cases = [
            ("http://intra/", Some(true)),
            ("http://intra/intern/", Some(false)),
            ("http://intra/intern/aaben.html", Some(true)),
            ("http://intra:8080/nyt?side=2", Some(false)),
            ("http://intra/nyt?sort=ny", Some(true)),
            ("http://intra/søg", Some(false)),
            ("http://intra/s%C3%B8g?q=x", Some(false)),
            ("http://intra/a?q=`x`", None),
            ("http://intra/a?q=%60x", None),
            ("http://intra/a%60", None),
            ("http://intra/robots.txt", Some(true)),
            ("https://[::1]:8443/intern/x", Some(false)),
        ];
        for (url, expected) in cases {
            let url = Url::parse(url).unwrap();
            let whole = robots.allowed(url.as_str());
            if let Some(expected) = expected {
                assert_eq!(whole, expected, "the whole {url}");
            }
            assert_eq!(robots.allowed(robots_target(&url)), whole, "{url}");
        }
    }
}
