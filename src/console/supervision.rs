//! Supervision evidence (PIPA 26(4)): the form on the seller page (the evidence file is hashed in
//! the browser like a contract, never uploaded), validated by the domain's validator as
//! RecordSupervision is, and the evidence recorded so far, read back from the seller's own log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use http::StatusCode;
use maud::{Markup, html};
use tracing::Instrument;

use super::ConsoleState;
use super::forms::{hidden, legal_post, merged, page, select, text_input};
use super::page::{Fields, PageResult, day, field_errors, parse_day, when};
use super::session::Session;
use super::text::Lang;
use crate::domain::input::{SupervisionInput, TimeInput};
use crate::domain::registry::{EventKind, RegistryChange, Supervision};
use crate::domain::{SellerId, SupervisionKind, Timestamp, Violation, Violations, Vocab};
use crate::error::Error;
use crate::store::StoredEvent;

/// The form, filled with `f` and showing `v` next to each field.
pub fn form(lang: Lang, session: &Session, id: &SellerId, f: &Fields, v: &[Violation]) -> Markup {
    let date = if f.get("csrf").is_none() { day(Timestamp::now()) } else { f.str("time").to_owned() };
    html! {
        form.stack #supervision-form method="post" action={ "/sellers/" (id) "/supervision" } {
            (hidden(session))
            (select::<SupervisionKind>(lang, v, "kind", f.str("kind")))
            (text_input(lang, v, "time", &date, "date"))
            label for="evidence" { (lang.t("evidence")) }
            input #evidence type="file" data-hash-into="evidence_sha256";
            label for="evidence_sha256" { (lang.t("evidence_sha256")) }
            input #evidence_sha256 type="text" name="evidence_sha256" value=(f.str("evidence_sha256")) autocomplete="off";
            p.mono #evidence_sha256-shown { (f.str("evidence_sha256")) }
            (field_errors(v, "evidence_sha256"))
            (text_input(lang, v, "note", f.str("note"), "text"))
            p { button #record-supervision type="submit" { (lang.t("record_supervision")) } }
        }
    }
}

/// The supervision evidence among a seller's own events, oldest first.
pub fn recorded(history: &[StoredEvent]) -> Result<Vec<Supervision>, Error> {
    history
        .iter()
        .filter(|e| EventKind::parse(&e.kind) == Some(EventKind::SupervisionRecorded))
        .map(|e| match RegistryChange::from_event(&e.kind, &e.payload) {
            Ok(RegistryChange::SupervisionRecorded(s)) => Ok(s),
            Ok(_) => Err(Error::Internal(format!("registry event {} is not supervision", e.revision))),
            Err(why) => Err(Error::Internal(format!("registry event {}: {why}", e.revision))),
        })
        .collect()
}

/// The evidence as a table.
pub fn table(lang: Lang, records: &[Supervision]) -> Markup {
    html! {
        @if records.is_empty() { p.muted #supervision { (lang.t("none")) } } @else {
            table #supervision {
                thead { tr { th { (lang.t("kind")) } th { (lang.t("time")) } th { (lang.t("evidence_sha256")) } th { (lang.t("note")) } th { (lang.t("actor")) } th.num { (lang.t("revision")) } } }
                tbody { @for s in records {
                    tr.supervision { td.kind { (s.kind.name()) } td { (when(s.time)) } td.mono.evidence { (s.evidence_sha256.as_str()) }
                        td { (s.note) } td { (s.recorded_by) } td.num { (s.revision) } }
                } }
            }
        }
    }
}

/// The form's evidence, validated by the domain's validator; a date that does not parse is
/// reported once, as the form's own violation.
fn fields(id: &SellerId, f: &Fields) -> Result<crate::domain::registry::SupervisionFields, Vec<Violation>> {
    let mut v = Violations::new();
    let raw = f.str("time").trim();
    let time = if raw.is_empty() { None } else { v.check(parse_day(raw, "time")).map(TimeInput::from) };
    let kind = f.str("kind");
    let input = SupervisionInput {
        seller_id: id.to_string(),
        kind: if kind.is_empty() { 0 } else { SupervisionKind::from_name(kind).map_or(-1, Vocab::number) },
        time,
        evidence_sha256: f.str("evidence_sha256").trim().to_owned(),
        note: f.str("note").to_owned(),
    };
    let unread = !v.is_empty();
    merged(v, input.validate(""), |x| !(unread && x.field == "time"))
}

/// `POST /sellers/{id}/supervision`.
pub async fn record(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let (f, id, request_id) = legal_post(&session, &id, &body)?;
    let fields = match fields(&id, &f) {
        Ok(fields) => fields,
        Err(v) => {
            let body = html! {
                h1 { (lang.t("supervision")) " — " code { (id) } }
                p.flash.bad { (lang.t("fix_fields")) }
                (form(lang, &session, &id, &f, &v))
                p { a href={ "/sellers/" (id) } { "← " (lang.t("sellers")) } }
            };
            return page(lang, &session, "supervision", StatusCode::BAD_REQUEST, body);
        }
    };
    let span = tracing::info_span!("console_record_supervision", actor = %session.sub, seller = %id);
    state.store.record_supervision(&session.sub, request_id.as_deref(), fields).instrument(span).await?;
    Ok(Redirect::to(&format!("/sellers/{id}")).into_response())
}
