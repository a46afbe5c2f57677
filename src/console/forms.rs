//! Legal's seller forms, create and edit (a stale etag shows both versions, so nothing typed is
//! lost), and the helpers every form shares ([`attest`](super::attest), [`orders`](super::orders)).
//! Fields are validated by the domain's validator (`domain::input`), as the API's are, and their
//! violations are shown next to each field. Every form carries the session's CSRF token and a
//! fresh request id, so a re-posted form is applied once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use http::StatusCode;
use maud::{Markup, html};
use tracing::Instrument;

use super::ConsoleState;
use super::page::{Fields, PageResult, field_errors, html_page, shell, when};
use super::session::{Session, random_token};
use super::text::Lang;
use crate::auth::Role;
use crate::domain::input::{self, SellerInput, SellerPatch};
use crate::domain::registry::{Attestation, Seller};
use crate::domain::{SellerId, SellerRole, SellerStatus};
use crate::domain::{Violation, Vocab};
use crate::error::Error;

/// The hidden fields every form carries.
pub fn hidden(session: &Session) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session.csrf);
        (request_id_field(session))
    }
}

/// A fresh request id: posting the same form twice applies it once.
pub fn request_id_field(_: &Session) -> Markup {
    html! { input type="hidden" name="request_id" value=(random_token()); }
}

/// Parses a posted form and checks its CSRF token before anything else is looked at.
pub(super) fn posted(session: &Session, body: &Bytes) -> Result<Fields, Error> {
    let f = Fields::parse(body);
    session.check_csrf(f.get("csrf"))?;
    Ok(f)
}

/// A legal write to seller `id`: the role, the form (its CSRF token checked), the seller id and
/// the form's request id, in that order, so nothing is parsed for a caller who may not write.
pub(super) fn legal_post(
    session: &Session,
    id: &str,
    body: &Bytes,
) -> Result<(Fields, SellerId, Option<String>), Error> {
    session.require(&[Role::Legal])?;
    let f = posted(session, body)?;
    let id = parse_id(id)?;
    let request_id = request_id(&f)?;
    Ok((f, id, request_id))
}

/// The validator's verdict on a form, merged with the faults the form itself found reading its
/// fields (dates); `keep` drops what would only repeat one of those.
pub(super) fn merged<T>(
    read: crate::domain::Violations,
    validated: Result<T, Vec<Violation>>,
    keep: impl Fn(&Violation) -> bool,
) -> Result<T, Vec<Violation>> {
    match validated {
        Ok(value) if read.is_empty() => Ok(value),
        Ok(_) => Err(read.into_vec()),
        Err(more) => {
            let mut all = read.into_vec();
            all.extend(more.into_iter().filter(keep));
            Err(all)
        }
    }
}

pub(super) fn request_id(f: &Fields) -> Result<Option<String>, Error> {
    input::request_id(f.str("request_id")).map_err(|v| Error::Invalid(vec![v]))
}

pub(super) fn text_input(lang: Lang, v: &[Violation], name: &'static str, value: &str, kind: &str) -> Markup {
    html! {
        label for=(name) { (lang.t(name)) }
        input type=(kind) id=(name) name=(name) value=(value);
        (field_errors(v, name))
    }
}

pub(super) fn select<T: Vocab>(lang: Lang, v: &[Violation], name: &'static str, selected: &str) -> Markup {
    html! {
        label for=(name) { (lang.t(name)) }
        select id=(name) name=(name) {
            option value="" { "—" }
            @for x in T::ALL { option value=(x.name()) selected[x.name() == selected] { (x.name()) } }
        }
        (field_errors(v, name))
    }
}

/// The seller form, filled with `f` (what was typed) and showing `v` next to each field.
fn seller_form(lang: Lang, session: &Session, action: &str, f: &Fields, v: &[Violation], edit: bool) -> Markup {
    html! {
        form.stack #seller-form method="post" action=(action) {
            (hidden(session))
            @if edit {
                input type="hidden" name="etag" value=(f.str("etag"));
                p { (lang.t("seller_id")) ": " code { (f.str("seller_id")) } }
            } @else {
                (text_input(lang, v, "seller_id", f.str("seller_id"), "text"))
            }
            (text_input(lang, v, "legal_name", f.str("legal_name"), "text"))
            (text_input(lang, v, "country", f.str("country"), "text"))
            (select::<SellerRole>(lang, v, "role", f.str("role")))
            @if edit { (select::<SellerStatus>(lang, v, "status", f.str("status"))) }
            (text_input(lang, v, "contact_email", f.str("contact_email"), "email"))
            (text_input(lang, v, "privacy_contact", f.str("privacy_contact"), "text"))
            p { button #save type="submit" { (if edit { lang.t("save") } else { lang.t("create") }) } }
        }
    }
}

fn seller_as_fields(s: &Seller) -> Fields {
    let pairs = [
        ("seller_id", s.seller_id.to_string()),
        ("legal_name", s.legal_name.clone()),
        ("country", s.country.to_string()),
        ("role", s.role.name().to_owned()),
        ("status", s.status.name().to_owned()),
        ("contact_email", s.contact_email.clone()),
        ("privacy_contact", s.privacy_contact.clone()),
        ("etag", s.etag()),
    ];
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        out.append_pair(k, v);
    }
    Fields::parse(out.finish().as_bytes())
}

/// The form's seller as the input the shared validator takes.
fn seller_input(id: &str, f: &Fields) -> SellerInput {
    let number = |name: &str, n: Option<i32>| if f.str(name).is_empty() { 0 } else { n.unwrap_or(-1) };
    SellerInput {
        seller_id: id.to_owned(),
        legal_name: f.str("legal_name").to_owned(),
        country: f.str("country").trim().to_owned(),
        status: number("status", SellerStatus::from_name(f.str("status")).map(Vocab::number)),
        role: number("role", SellerRole::from_name(f.str("role")).map(Vocab::number)),
        contact_email: f.str("contact_email").trim().to_owned(),
        privacy_contact: f.str("privacy_contact").to_owned(),
        etag: f.str("etag").to_owned(),
    }
}

pub(super) fn page(lang: Lang, session: &Session, title: &'static str, status: StatusCode, body: Markup) -> PageResult {
    Ok((status, html_page(shell(lang, Some(session), lang.t(title), body))).into_response())
}

/// `GET /sellers/new`.
pub async fn new_seller(session: Session, lang: Lang) -> PageResult {
    session.require(&[Role::Legal])?;
    let body = html! { h1 { (lang.t("new_seller")) } (seller_form(lang, &session, "/sellers/new", &Fields::default(), &[], false)) };
    page(lang, &session, "new_seller", StatusCode::OK, body)
}

/// `POST /sellers/new`.
pub async fn create_seller(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    body: Bytes,
) -> PageResult {
    session.require(&[Role::Legal])?;
    let f = posted(&session, &body)?;
    let request_id = request_id(&f)?;
    let invalid = |v: Vec<Violation>| {
        let body = html! { h1 { (lang.t("new_seller")) } p.flash.bad { (lang.t("fix_fields")) } (seller_form(lang, &session, "/sellers/new", &f, &v, false)) };
        page(lang, &session, "new_seller", StatusCode::BAD_REQUEST, body)
    };
    let fields = match seller_input(f.str("seller_id").trim(), &f).validate("") {
        Ok(fields) => fields,
        Err(v) => return invalid(v),
    };
    let span = tracing::info_span!("console_create_seller", actor = %session.sub, seller = %fields.seller_id);
    match state.store.create_seller(&session.sub, request_id.as_deref(), fields).instrument(span).await {
        Ok((seller, _)) => Ok(Redirect::to(&format!("/sellers/{}", seller.seller_id)).into_response()),
        Err(Error::AlreadyExists(what)) => invalid(vec![Violation::new("seller_id", format!("{what} already exists"))]),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn current(state: &ConsoleState, id: &SellerId) -> Result<(Seller, Vec<Attestation>), Error> {
    let (s, atts, _) = state.store.get_seller(id).await?.ok_or_else(|| Error::NotFound(format!("seller {id}")))?;
    Ok((s, atts))
}

pub(super) fn parse_id(raw: &str) -> Result<SellerId, Error> {
    SellerId::parse_field(raw, "seller_id").map_err(|v| Error::Invalid(vec![v]))
}

/// `GET /sellers/{id}/edit`.
pub async fn edit_seller(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
) -> PageResult {
    session.require(&[Role::Legal])?;
    let (seller, _) = current(&state, &parse_id(&id)?).await?;
    let action = format!("/sellers/{}/edit", seller.seller_id);
    let body = html! { h1 { (lang.t("edit_seller")) } (seller_form(lang, &session, &action, &seller_as_fields(&seller), &[], true)) };
    page(lang, &session, "edit_seller", StatusCode::OK, body)
}

/// `POST /sellers/{id}/edit`: every field is written, guarded by the etag the form was read with.
pub async fn update_seller(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let (f, id, request_id) = legal_post(&session, &id, &body)?;
    let action = format!("/sellers/{id}/edit");
    let mut typed = f.clone();
    let (stored, _) = current(&state, &id).await?;
    // The form shows every field, so it patches every field, guarded by its etag.
    let mut update = match SellerPatch::all(seller_input(id.as_str(), &f)).validate(&stored, "") {
        Ok(update) => update,
        Err(v) => {
            let body = html! { h1 { (lang.t("edit_seller")) } p.flash.bad { (lang.t("fix_fields")) } (seller_form(lang, &session, &action, &with_id(&typed, &id), &v, true)) };
            return page(lang, &session, "edit_seller", StatusCode::BAD_REQUEST, body);
        }
    };
    // The form was read with an etag, so it always guards: one lost on the way matches nothing,
    // where the API's empty etag would mean "no guard".
    update.etag = Some(f.str("etag").to_owned());
    let span = tracing::info_span!("console_update_seller", actor = %session.sub, seller = %id);
    match state.store.update_seller(&session.sub, request_id.as_deref(), update).instrument(span).await {
        Ok(_) => Ok(Redirect::to(&format!("/sellers/{id}")).into_response()),
        Err(Error::Aborted(_)) => {
            // Keep what was typed; show what is stored now, and take its etag so that saving again
            // is a deliberate overwrite of the version just shown.
            let (now, _) = current(&state, &id).await?;
            typed = with_etag(&with_id(&typed, &id), &now.etag());
            let body = html! {
                h1 { (lang.t("edit_seller")) }
                p.flash.bad #conflict { (lang.t("conflict")) }
                div.grid {
                    (seller_form(lang, &session, &action, &typed, &[], true))
                    div.card #current-version {
                        table { tbody {
                            tr { th { (lang.t("legal_name")) } td { (now.legal_name) } }
                            tr { th { (lang.t("country")) } td { (now.country) } }
                            tr { th { (lang.t("role")) } td { (now.role.name()) } }
                            tr { th { (lang.t("status")) } td { (now.status.name()) } }
                            tr { th { (lang.t("contact_email")) } td { (now.contact_email) } }
                            tr { th { (lang.t("privacy_contact")) } td { (now.privacy_contact) } }
                            tr { th { (lang.t("revision")) } td { (now.revision) " · " (when(now.update_time)) } }
                        } }
                    }
                }
            };
            page(lang, &session, "edit_seller", StatusCode::CONFLICT, body)
        }
        Err(e) => Err(e.into()),
    }
}

fn replace(f: &Fields, key: &str, value: &str) -> Fields {
    let mut out = form_urlencoded::Serializer::new(String::new());
    out.append_pair(key, value);
    for k in ["seller_id", "legal_name", "country", "role", "status", "contact_email", "privacy_contact", "etag"] {
        if k != key {
            out.append_pair(k, f.str(k));
        }
    }
    Fields::parse(out.finish().as_bytes())
}

fn with_id(f: &Fields, id: &SellerId) -> Fields {
    replace(f, "seller_id", id.as_str())
}

fn with_etag(f: &Fields, etag: &str) -> Fields {
    replace(f, "etag", etag)
}

/// A checkbox per vocabulary value; a fresh form (no CSRF field yet) checks `defaults`.
pub(super) fn checkboxes<T: Vocab>(
    lang: Lang,
    v: &[Violation],
    name: &'static str,
    f: &Fields,
    defaults: &[T],
) -> Markup {
    let sent = f.all(name);
    let fresh = f.get("csrf").is_none();
    html! {
        fieldset #(name) { legend { (lang.t(name)) }
            @for x in T::ALL {
                label { input type="checkbox" name=(name) value=(x.name()) checked[sent.contains(&x.name()) || (fresh && defaults.contains(x))]; " " code { (x.name()) } }
            }
            (field_errors(v, name))
        }
    }
}
