//! The user interface's languages: Danish by default, English by choice.
//!
//! Every text lives in a message catalogue (`templates/i18n/da.toml` and `en.toml`, embedded
//! in the binary). The language comes from the visitor's choice (a cookie set by the language
//! switch), else from `Accept-Language`, else from the configuration.

use std::collections::BTreeMap;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::app::AppState;

pub const LANG_COOKIE: &str = "samle_lang";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UiLang {
    Da,
    En,
}

impl UiLang {
    pub fn as_str(self) -> &'static str {
        match self {
            UiLang::Da => "da",
            UiLang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<UiLang> {
        let s = s.trim().to_ascii_lowercase();
        let primary = s.split(['-', '_']).next().unwrap_or("");
        match primary {
            "da" | "dk" => Some(UiLang::Da),
            "en" => Some(UiLang::En),
            _ => None,
        }
    }

    /// Cookie, then `Accept-Language` (by quality), then the default.
    pub fn negotiate(headers: &HeaderMap, default: &str) -> UiLang {
        if let Some(lang) = cookie(headers, LANG_COOKIE).and_then(|v| UiLang::parse(&v)) {
            return lang;
        }
        if let Some(lang) = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(from_accept_language)
        {
            return lang;
        }
        UiLang::parse(default).unwrap_or(UiLang::Da)
    }
}

/// Picks the supported language with the highest quality from an `Accept-Language` value.
fn from_accept_language(value: &str) -> Option<UiLang> {
    let mut best: Option<(f32, UiLang)> = None;
    for part in value.split(',') {
        let mut pieces = part.split(';');
        let tag = pieces.next().unwrap_or("").trim();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(lang) = UiLang::parse(tag)
            && q > 0.0
            && best.is_none_or(|(bq, _)| q > bq)
        {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// Reads one cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl<S> FromRequestParts<S> for UiLang
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        Ok(UiLang::negotiate(
            &parts.headers,
            &state.config.server.default_language,
        ))
    }
}

/// One language's messages.
#[derive(Clone, Debug)]
pub struct Catalog {
    messages: BTreeMap<String, String>,
}

pub const DA_TOML: &str = include_str!("../../templates/i18n/da.toml");
pub const EN_TOML: &str = include_str!("../../templates/i18n/en.toml");

impl Catalog {
    pub fn parse(text: &str) -> Result<Catalog, toml::de::Error> {
        let table: toml::Table = toml::from_str(text)?;
        let mut messages = BTreeMap::new();
        flatten("", &table, &mut messages);
        Ok(Catalog { messages })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.messages.get(key).map(String::as_str)
    }

    /// The message, or the key itself when it is missing (tests make sure none is).
    pub fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or(key).to_string()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            other => {
                out.insert(key, other.to_string());
            }
        }
    }
}

/// Fills `{name}` placeholders.
pub fn format_message(template: &str, args: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn catalogues_have_the_same_keys() {
        let da = Catalog::parse(DA_TOML).unwrap();
        let en = Catalog::parse(EN_TOML).unwrap();
        let dk: Vec<_> = da.keys().collect();
        let ek: Vec<_> = en.keys().collect();
        let only_da: Vec<_> = dk.iter().filter(|k| !ek.contains(k)).collect();
        let only_en: Vec<_> = ek.iter().filter(|k| !dk.contains(k)).collect();
        assert!(
            only_da.is_empty() && only_en.is_empty(),
            "only in da: {only_da:?}; only in en: {only_en:?}"
        );
        assert!(dk.len() > 40, "the catalogues look empty");
    }

    #[test]
    fn negotiation_table() {
        let cases = [
            (None, None, "da", UiLang::Da),
            (None, Some("en-GB,en;q=0.9"), "da", UiLang::En),
            (None, Some("de-DE,da;q=0.5,en;q=0.8"), "da", UiLang::En),
            (None, Some("de-DE"), "en", UiLang::En),
            (Some("samle_lang=da"), Some("en"), "en", UiLang::Da),
            (Some("x=1; samle_lang=en"), None, "da", UiLang::En),
            (Some("samle_lang=fr"), Some("da"), "en", UiLang::Da),
        ];
        for (cookie, accept, default, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(c) = cookie {
                h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
            }
            if let Some(a) = accept {
                h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(a).unwrap());
            }
            assert_eq!(
                UiLang::negotiate(&h, default),
                want,
                "{cookie:?} {accept:?}"
            );
        }
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            format_message(
                "{n} af {total}",
                &[("n", "3".into()), ("total", "9".into())]
            ),
            "3 af 9"
        );
    }
}
