//! Signing in by pasting a token that the gRPC verifier accepts, signing out, and the language
//! switch. The sign-in form has no session yet, so its CSRF token is a double-submit cookie.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, header};
use maud::html;

use super::ConsoleState;
use super::page::{Fields, PageError, PageResult, html_page, shell};
use super::session::{self, COOKIE, Session, cookie, same_token, set_cookie, unix_now};
use super::text::Lang;
use crate::auth::Role;

/// The sign-in form's CSRF cookie.
const LOGIN_CSRF: &str = "sg_login";
/// Roles that may use the console; checkout is a service, not a person.
const CONSOLE_ROLES: [Role; 2] = [Role::Legal, Role::Auditor];

fn page(lang: Lang, csrf: &str, problem: Option<&str>) -> maud::Markup {
    shell(
        lang,
        None,
        lang.t("sign_in"),
        html! {
            h1 { (lang.t("sign_in")) }
            @if let Some(p) = problem { p.flash.bad #signin-error { (p) } }
            form.stack method="post" action="/signin" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { (lang.t("paste_token")) }
                textarea.token #token name="token" required autocomplete="off" spellcheck="false" {}
                p { button #signin type="submit" { (lang.t("sign_in")) } }
            }
        },
    )
}

fn with_login_cookie(state: &ConsoleState, status: StatusCode, lang: Lang, problem: Option<&str>) -> Response {
    let csrf = session::random_token();
    let cookie = set_cookie(LOGIN_CSRF, &csrf, 600, state.secure_cookies);
    (status, [(header::SET_COOKIE, cookie)], html_page(page(lang, &csrf, problem))).into_response()
}

/// `GET /signin`.
pub async fn form(State(state): State<Arc<ConsoleState>>, lang: Lang) -> Response {
    with_login_cookie(&state, StatusCode::OK, lang, None)
}

/// `POST /signin`: verifies the token, refuses roles that are not people's, starts a session.
pub async fn submit(State(state): State<Arc<ConsoleState>>, lang: Lang, headers: HeaderMap, body: Bytes) -> Response {
    let fields = Fields::parse(&body);
    let expected = cookie(&headers, LOGIN_CSRF).unwrap_or("");
    if expected.is_empty() || !same_token(expected, fields.str("csrf")) {
        return with_login_cookie(&state, StatusCode::FORBIDDEN, lang, Some("The sign-in form expired: try again."));
    }
    let Some(verifier) = &state.verifier else {
        return with_login_cookie(&state, StatusCode::FORBIDDEN, lang, Some("Authentication is disabled."));
    };
    let verified = match verifier.verify(fields.str("token").trim()) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(reason = e.refusal().name(), "console sign-in refused");
            return with_login_cookie(&state, StatusCode::UNAUTHORIZED, lang, Some("This token is not valid here."));
        }
    };
    if verified.principal.require(&CONSOLE_ROLES).is_err() {
        return with_login_cookie(
            &state,
            StatusCode::FORBIDDEN,
            lang,
            Some("This token grants no console role (legal, auditor or admin): checkout tokens cannot sign in."),
        );
    }
    let now = unix_now();
    let session = Session::for_principal(&verified.principal, verified.exp, now);
    let sealed = match state.key.seal(&session) {
        Ok(s) => s,
        Err(e) => return PageError(e).into_response(),
    };
    tracing::info!(actor = %session.sub, roles = ?session.roles, "console sign-in");
    let cookie = set_cookie(COOKIE, &sealed, session.exp.saturating_sub(now), state.secure_cookies);
    let clear = set_cookie(LOGIN_CSRF, "", 0, state.secure_cookies);
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().append(header::SET_COOKIE, header_value(&cookie));
    res.headers_mut().append(header::SET_COOKIE, header_value(&clear));
    res
}

fn header_value(v: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(v).unwrap_or_else(|_| http::HeaderValue::from_static(""))
}

/// `POST /signout`.
pub async fn sign_out(State(state): State<Arc<ConsoleState>>, session: Session, body: Bytes) -> PageResult {
    session.check_csrf(Fields::parse(&body).get("csrf"))?;
    let clear = set_cookie(COOKIE, "", 0, state.secure_cookies);
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/signin")).into_response())
}

/// `GET /lang?to=ko|en`: remembers the choice for a year and goes back to the dashboard. Only a
/// preference changes, so a GET (and no CSRF token) is enough.
pub async fn switch_language(State(state): State<Arc<ConsoleState>>, RawQuery(q): RawQuery) -> Response {
    let to = if Fields::query(q.as_deref()).get("to") == Some("ko") { "ko" } else { "en" };
    let cookie = set_cookie("sg_lang", to, 365 * 86_400, state.secure_cookies);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
