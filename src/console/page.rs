//! The page shell and what every page shares: security headers, embedded assets, form and query
//! parsing (repeated keys included, which checkbox lists need), field errors, and error pages.

use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;
use super::text::Lang;
use crate::domain::{Timestamp, Violation};
use crate::error::Error;

const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
const SCRIPT: &[u8] = include_bytes!("assets/hash.js");
const STYLE: &[u8] = include_bytes!("assets/console.css");

/// No inline script or style may run (the only scripts are the embedded files), no page may be
/// framed (clickjacking of legal's forms), and forms post only back to the console.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response; pages that carry registry data are not cached
/// unless they say otherwise (the public register does).
pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

fn asset(body: &'static [u8], kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// The embedded htmx.
pub async fn htmx() -> Response {
    asset(HTMX, "text/javascript; charset=utf-8")
}

/// The console's own script (hashing a chosen file, filling a sign-in link's token).
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// The stylesheet.
pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

/// A whole page: header with navigation for `session`'s roles, the language switch, and `body`.
pub fn shell(lang: Lang, session: Option<&Session>, title: &str, body: Markup) -> Markup {
    use crate::auth::Role;
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // Indicator styles would be an inline <style>, which the CSP refuses; eval is off.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
                title { (title) " · safeguard" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/htmx.min.js" defer {}
                script src="/assets/console.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { (lang.t("console")) }
                    @if let Some(s) = session {
                        a href="/" { (lang.t("dashboard")) }
                        a href="/sellers" { (lang.t("sellers")) }
                        @if s.can(&[Role::Legal]) { a href="/sellers/new" { (lang.t("new_seller")) } a href="/import" { (lang.t("import")) } }
                        a href="/orders" { (lang.t("orders")) }
                        @if s.can(&[Role::Auditor]) {
                            a href="/audit" { (lang.t("audit")) }
                            a href="/audit/decisions" { (lang.t("decisions")) }
                            a href="/audit/chain" { (lang.t("chain")) }
                        }
                    }
                    a href="/recipients" { (lang.t("register")) }
                    div.right {
                        a #lang-switch href={ "/lang?to=" (if lang == Lang::Ko { "en" } else { "ko" }) } { (lang.t("language")) }
                        @if let Some(s) = session {
                            span #whoami { (lang.t("signed_in_as")) " " strong { (s.sub) } " (" (s.roles.join(", ")) ")" }
                            form method="post" action="/signout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.link type="submit" { (lang.t("sign_out")) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML response.
pub fn html_page(markup: Markup) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response()
}

/// An error shown as a page: the crate error mapped to an HTTP status, once, here (as
/// `From<Error> for Status` does for gRPC). Internal errors are logged and shown generically.
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match &self.0 {
            Error::Invalid(_) => (StatusCode::BAD_REQUEST, self.0.to_string()),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, self.0.to_string()),
            Error::AlreadyExists(_) | Error::Aborted(_) | Error::FailedPrecondition(_) => {
                (StatusCode::CONFLICT, self.0.to_string())
            }
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, self.0.to_string()),
            Error::Unauthenticated => return Redirect::to("/signin").into_response(),
            Error::PermissionDenied(_) => (StatusCode::FORBIDDEN, self.0.to_string()),
            Error::Database(_) | Error::Internal(_) => {
                tracing::error!(error = %self.0, cause = ?std::error::Error::source(&self.0), "console request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_owned())
            }
        };
        let body = html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.flash.bad #error { (message) }
            p { a href="/" { "← safeguard" } }
        };
        (status, html_page(shell(Lang::En, None, "Error", body))).into_response()
    }
}

/// The result of a page handler.
pub type PageResult = Result<Response, PageError>;

/// Decoded `application/x-www-form-urlencoded` fields (a body or a query string), in order.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses `raw`.
    pub fn parse(raw: &[u8]) -> Self {
        Self(form_urlencoded::parse(raw).into_owned().collect())
    }

    /// Parses an optional query string.
    pub fn query(raw: Option<&str>) -> Self {
        Self::parse(raw.unwrap_or("").as_bytes())
    }

    /// The first value of `name`, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "".
    pub fn str(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// The violations of one field, shown next to it.
pub fn field_errors(violations: &[Violation], field: &str) -> Markup {
    html! {
        @for v in violations.iter().filter(|v| v.field == field || v.field.starts_with(&format!("{field}["))) {
            p.field-error data-field=(field) { (v.description) }
        }
    }
}

/// A time as `YYYY-MM-DD HH:MM UTC`.
pub fn when(t: Timestamp) -> String {
    let (secs, _) = t.to_parts();
    chrono::DateTime::from_timestamp(secs, 0)
        .map_or_else(|| secs.to_string(), |d| d.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// A time as `YYYY-MM-DD`.
pub fn day(t: Timestamp) -> String {
    let (secs, _) = t.to_parts();
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(|| secs.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// Midnight UTC of a `YYYY-MM-DD` date.
pub fn parse_day(raw: &str, field: &str) -> Result<Timestamp, Violation> {
    let date = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| Violation::new(field, "must be a date (YYYY-MM-DD)"))?;
    let secs = date.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp()).unwrap_or_default();
    Timestamp::from_parts(secs, 0).ok_or_else(|| Violation::new(field, "is out of range"))
}
