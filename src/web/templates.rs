//! The minijinja environment: templates, the `t()` translation function and filters.
//!
//! Release builds embed every template; debug builds read them from `templates/` on each
//! render, so a page can be edited without restarting. HTML templates autoescape.

use std::path::PathBuf;
use std::sync::Arc;

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use crate::web::i18n::{Catalog, DA_TOML, EN_TOML, UiLang};

/// Every template, embedded at compile time.
const EMBEDDED: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("search.html", include_str!("../../templates/search.html")),
    ("doc.html", include_str!("../../templates/doc.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "admin_macros.html",
        include_str!("../../templates/admin_macros.html"),
    ),
    (
        "admin_sources.html",
        include_str!("../../templates/admin_sources.html"),
    ),
    (
        "admin_source.html",
        include_str!("../../templates/admin_source.html"),
    ),
];

/// The stylesheet, served at `/static/samle.css`.
pub const STYLESHEET: &str = include_str!("../../templates/static/samle.css");

pub struct Templates {
    embedded: Environment<'static>,
    dev_dir: Option<PathBuf>,
    da: Arc<Catalog>,
    en: Arc<Catalog>,
}

impl Templates {
    pub fn new() -> anyhow::Result<Templates> {
        let da = Arc::new(Catalog::parse(DA_TOML)?);
        let en = Arc::new(Catalog::parse(EN_TOML)?);
        let mut embedded = Environment::new();
        configure(&mut embedded, &da, &en);
        for (name, source) in EMBEDDED {
            embedded.add_template(name, source)?;
        }
        let dev_dir = if cfg!(debug_assertions) {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates");
            dir.is_dir().then_some(dir)
        } else {
            None
        };
        Ok(Templates {
            embedded,
            dev_dir,
            da,
            en,
        })
    }

    pub fn catalog(&self, lang: UiLang) -> &Catalog {
        match lang {
            UiLang::Da => &self.da,
            UiLang::En => &self.en,
        }
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, Error> {
        match &self.dev_dir {
            Some(dir) => {
                let mut env = Environment::new();
                configure(&mut env, &self.da, &self.en);
                env.set_loader(minijinja::path_loader(dir));
                env.get_template(name)?.render(ctx)
            }
            None => self.embedded.get_template(name)?.render(ctx),
        }
    }
}

fn configure(env: &mut Environment<'static>, da: &Arc<Catalog>, en: &Arc<Catalog>) {
    // A misspelt variable fails the render tests instead of printing nothing; `if x` on
    // an undefined value stays allowed.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    let (da_c, en_c) = (da.clone(), en.clone());
    env.add_function(
        "t",
        move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, Error> {
            let catalog = match lang_of(state) {
                UiLang::Da => &da_c,
                UiLang::En => &en_c,
            };
            let template = catalog.get(key).ok_or_else(|| {
                Error::new(
                    ErrorKind::UndefinedError,
                    format!("no message `{key}` in the catalogue"),
                )
            })?;
            let mut out = template.to_string();
            for name in kwargs.args() {
                let v: Value = kwargs.get(name)?;
                out = out.replace(&format!("{{{name}}}"), &v.to_string());
            }
            Ok(out)
        },
    );
    env.add_filter("date", |state: &State, value: Value| -> String {
        let Some(s) = value.as_str() else {
            return String::new();
        };
        let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) else {
            return s.to_string();
        };
        let dt = dt.with_timezone(&chrono::Local);
        match lang_of(state) {
            UiLang::Da => dt.format("%-d.%-m.%Y").to_string(),
            UiLang::En => dt.format("%-d %b %Y").to_string(),
        }
    });
    env.add_filter("number", |state: &State, value: Value| -> String {
        let Ok(n) = i64::try_from(value.clone()) else {
            return value.to_string();
        };
        let sep = match lang_of(state) {
            UiLang::Da => '.',
            UiLang::En => ',',
        };
        group_thousands(n, sep)
    });
}

fn lang_of(state: &State) -> UiLang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(UiLang::parse))
        .unwrap_or(UiLang::Da)
}

/// `12345` → `12.345` (Danish) or `12,345` (English).
pub fn group_thousands(n: i64, sep: char) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(0, '.'), "0");
        assert_eq!(group_thousands(999, '.'), "999");
        assert_eq!(group_thousands(1000, '.'), "1.000");
        assert_eq!(group_thousands(1234567, ','), "1,234,567");
    }

    #[test]
    fn embedded_templates_parse() {
        let t = Templates::new().unwrap();
        for (name, _) in EMBEDDED {
            assert!(t.embedded.get_template(name).is_ok(), "{name}");
        }
    }
}
