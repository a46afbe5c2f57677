//! Attestations: the form (the signed PDF is chosen in the browser and hashed there by
//! `assets/hash.js` with SubtleCrypto SHA-256; the file input has no name, so the file is never
//! sent), its submission through the domain's validator, and revocation with a reason.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use http::StatusCode;
use maud::{Markup, html};
use tracing::Instrument;

use super::ConsoleState;
use super::forms::{checkboxes, current, hidden, legal_post, merged, page, parse_id, posted, request_id, text_input};
use super::page::{Fields, PageResult, day, field_errors, parse_day};
use super::session::Session;
use super::text::Lang;
use crate::auth::Role;
use crate::domain::input::{self, AttestationInput, TimeInput};
use crate::domain::registry::Attestation;
use crate::domain::{AttestationState, Clause, DataCategory, Purpose, SellerId, Timestamp, Violation, Vocab};
use crate::error::Error;

const DEFAULT_PURPOSES: [Purpose; 4] =
    [Purpose::OrderFulfillment, Purpose::CustomsClearance, Purpose::CustomerSupport, Purpose::ReturnsRefunds];
const DEFAULT_CATEGORIES: [DataCategory; 5] = [
    DataCategory::RecipientName,
    DataCategory::PhoneNumber,
    DataCategory::ShippingAddress,
    DataCategory::OrderContents,
    DataCategory::PlatformBuyerId,
];

fn attestation_form(lang: Lang, session: &Session, id: &SellerId, f: &Fields, v: &[Violation]) -> Markup {
    let today = Timestamp::now();
    let or = |name: &str, default: String| if f.str(name).is_empty() { default } else { f.str(name).to_owned() };
    html! {
        form.stack #attest-form method="post" action={ "/sellers/" (id) "/attest" } {
            (hidden(session))
            (text_input(lang, v, "contract_ref", f.str("contract_ref"), "text"))
            label for="document" { (lang.t("document")) }
            // No name: the browser never sends the file; hash.js writes its digest below.
            input #document type="file" accept="application/pdf,.pdf" data-hash-into="document_sha256";
            label for="document_sha256" { (lang.t("document_sha256")) }
            input #document_sha256 type="text" name="document_sha256" value=(f.str("document_sha256")) pattern="[0-9a-fA-F]{64}" autocomplete="off";
            p.mono #document_sha256-shown { (f.str("document_sha256")) }
            (field_errors(v, "document_sha256"))
            (checkboxes::<Clause>(lang, v, "clauses", f, Clause::ALL))
            (checkboxes::<Purpose>(lang, v, "purposes", f, &DEFAULT_PURPOSES))
            (checkboxes::<DataCategory>(lang, v, "categories", f, &DEFAULT_CATEGORIES))
            (text_input(lang, v, "signed", &or("signed", day(today)), "date"))
            (text_input(lang, v, "effective", &or("effective", day(today)), "date"))
            (text_input(lang, v, "expires", &or("expires", day(today.plus_days(365))), "date"))
            (text_input(lang, v, "signatory", f.str("signatory"), "text"))
            (text_input(lang, v, "retention_days", &or("retention_days", "0".into()), "number"))
            p { button #submit-attestation type="submit" { (lang.t("submit")) } }
        }
    }
}

/// `GET /sellers/{id}/attest`.
pub async fn new_attestation(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
) -> PageResult {
    session.require(&[Role::Legal])?;
    let (seller, _) = current(&state, &parse_id(&id)?).await?;
    let body = html! { h1 { (lang.t("attest")) " — " (seller.legal_name) } (attestation_form(lang, &session, &seller.seller_id, &Fields::default(), &[])) };
    page(lang, &session, "attest", StatusCode::OK, body)
}

/// The form's attestation, validated by the domain's validator; dates map to its field names.
fn attestation_fields(id: &SellerId, f: &Fields) -> Result<crate::domain::registry::AttestationFields, Vec<Violation>> {
    let mut v = crate::domain::Violations::new();
    let numbers = |name: &str, all: &dyn Fn(&str) -> Option<i32>| {
        f.all(name).into_iter().map(|n| all(n).unwrap_or(-1)).collect::<Vec<_>>()
    };
    let times = [("signed", "signed"), ("effective", "effective"), ("expires", "expires")]
        .map(|(name, field)| v.check(parse_day(f.str(name), field)).map(TimeInput::from));
    let retention = f
        .str("retention_days")
        .trim()
        .parse::<u32>()
        .map_err(|_| Violation::new("retention_days", "must be a whole number of days"));
    let retention_days = v.check(retention).unwrap_or(0);
    let [signed_time, effective_time, expire_time] = times;
    let a = AttestationInput {
        seller_id: id.to_string(),
        contract_ref: f.str("contract_ref").to_owned(),
        document_sha256: f.str("document_sha256").trim().to_owned(),
        clauses: numbers("clauses", &|n| Clause::from_name(n).map(Vocab::number)),
        purposes: numbers("purposes", &|n| Purpose::from_name(n).map(Vocab::number)),
        categories: numbers("categories", &|n| DataCategory::from_name(n).map(Vocab::number)),
        signed_time,
        effective_time,
        expire_time,
        signatory: f.str("signatory").to_owned(),
        retention_days,
    };
    let rename = |mut x: Violation| {
        for (wire, form) in [("signed_time", "signed"), ("effective_time", "effective"), ("expire_time", "expires")] {
            if x.field == wire {
                x.field = form.to_owned();
            }
        }
        x
    };
    // A date that did not parse is reported once, as the form's own violation.
    merged(v, a.validate("").map_err(|more| more.into_iter().map(rename).collect()), |x| {
        !["signed", "effective", "expires"].contains(&x.field.as_str()) || f.str(&x.field).len() == 10
    })
}

/// `POST /sellers/{id}/attest`.
pub async fn submit_attestation(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let (f, id, request_id) = legal_post(&session, &id, &body)?;
    let fields = match attestation_fields(&id, &f) {
        Ok(fields) => fields,
        Err(v) => {
            let body = html! { h1 { (lang.t("attest")) } p.flash.bad { (lang.t("fix_fields")) } (attestation_form(lang, &session, &id, &f, &v)) };
            return page(lang, &session, "attest", StatusCode::BAD_REQUEST, body);
        }
    };
    let span = tracing::info_span!("console_submit_attestation", actor = %session.sub, seller = %id);
    state.store.submit_attestation(&session.sub, request_id.as_deref(), fields).instrument(span).await?;
    Ok(Redirect::to(&format!("/sellers/{id}")).into_response())
}

/// The revoke form under an active attestation.
pub fn attestation_actions(lang: Lang, session: &Session, a: &Attestation) -> Markup {
    if a.state != AttestationState::Active {
        return html! { span.muted { (a.revoke_reason) } };
    }
    html! {
        form.inline.revoke method="post" action={ "/attestations/" (a.attestation_id) "/revoke" } {
            (hidden(session))
            input type="text" name="reason" placeholder=(lang.t("reason")) required;
            button.danger type="submit" { (lang.t("revoke")) }
        }
    }
}

/// `POST /attestations/{id}/revoke`.
pub async fn revoke(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    session.require(&[Role::Legal])?;
    let f = posted(&session, &body)?;
    let request_id = request_id(&f)?;
    let (id, reason) = input::id_and_reason(&id, "attestation_id", f.str("reason")).map_err(Error::Invalid)?;
    let span = tracing::info_span!("console_revoke_attestation", actor = %session.sub, attestation = %id);
    let (att, _) =
        state.store.revoke_attestation(&session.sub, request_id.as_deref(), &id, &reason).instrument(span).await?;
    Ok(Redirect::to(&format!("/sellers/{}", att.seller_id)).into_response())
}
