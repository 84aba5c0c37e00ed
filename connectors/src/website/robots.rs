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
            RobotsTxt::Rules(robot) => robot.allowed(url.as_str()),
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
