//! A recorded decision explained: its request replayed at its recorded time, with the same code as
//! ExplainDecision ([`crate::audit::explain`]), shown beside the record with whether they agree.
//! A replay that disagrees is evidence: the log or the policy changed since, or the record is wrong.

use std::sync::Arc;

use axum::extract::{Path, State};
use maud::{Markup, html};

use super::ConsoleState;
use super::page::{PageResult, html_page, shell, when};
use super::session::Session;
use super::text::Lang;
use crate::auth::Role;
use crate::domain::record::DecisionRecord;
use crate::domain::verify::{Reason, Verdict, VerifyRequest};
use crate::domain::{DataCategory, Vocab};
use crate::error::Error;

/// The request a record answered; `None` for a lost-records marker, which answered none.
fn request_of(r: &DecisionRecord) -> Option<VerifyRequest> {
    Some(VerifyRequest {
        seller_id: r.seller_id.clone()?,
        categories: r.categories.clone(),
        purpose: r.purpose?,
        basis: r.basis,
        basis_evidence_ref: r.basis_evidence_ref.clone(),
        min_revision: 0,
    })
}

/// Whether the replay gives the recorded answer: outcome, categories and every reason.
pub fn matches(r: &DecisionRecord, v: &Verdict) -> bool {
    r.decision == Some(v.decision)
        && r.allowed == v.allowed
        && r.outcome.denied == v.denied
        && r.outcome.reasons == v.reasons
}

fn reasons(list: &[Reason]) -> Markup {
    html! { @for r in list { code.reason { (r.code.name()) @if let Some(c) = r.clause { " " (c.name()) } } " " } }
}

fn outcome(
    lang: Lang,
    id: &str,
    decision: Option<crate::domain::Decision>,
    allowed: &[DataCategory],
    denied: &[(DataCategory, Vec<Reason>)],
    seller: &[Reason],
) -> Markup {
    html! {
        table id=(id) { tbody {
            tr { th { (lang.t("decision")) } td { @if let Some(d) = decision { span class={ "badge decision " (d.name()) } { (d.name()) } } } }
            tr { th { (lang.t("allowed_categories")) } td { @for c in allowed { code { (c.name()) } " " } } }
            @for (c, why) in denied { tr.denied { th { code { (c.name()) } } td { (reasons(why)) } } }
            tr { th { (lang.t("reasons")) } td { (reasons(seller)) } }
        } }
    }
}

/// `GET /audit/decisions/{id}`.
pub async fn show(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
) -> PageResult {
    session.require(&[Role::Auditor])?;
    let id = crate::domain::input::text(&id, "decision_id", crate::domain::input::MAX_REF, true)
        .map_err(|v| Error::Invalid(vec![v]))?;
    let record = state.store.get_decision(&id).await?.ok_or_else(|| Error::NotFound(format!("decision {id}")))?;
    let replay = match request_of(&record) {
        Some(req) => Some(crate::audit::explain(&state.store, state.registry.policy(), &req, record.time).await?),
        None => None,
    };
    let policy = state.registry.policy();
    let body = html! {
        h1 { (lang.t("explain")) " " code { (record.decision_id) } }
        table { tbody {
            tr { th { (lang.t("time")) } td { (when(record.time)) } }
            tr { th { (lang.t("caller")) } td { (record.caller) } }
            tr { th { (lang.t("seller_id")) } td { @if let Some(s) = &record.seller_id { a href={ "/sellers/" (s) } { code { (s) } } } } }
            tr { th { (lang.t("purpose")) } td { (record.purpose.map_or("", |p| p.name())) } }
            tr { th { (lang.t("basis")) } td { (record.basis.map_or("—", |b| b.name())) } }
            tr { th { (lang.t("categories")) } td { @for c in &record.categories { code { (c.name()) } " " } } }
        } }
        @match &replay {
            None => p.flash.bad #not-replayable { (lang.t("not_replayable")) },
            Some(d) => {
                @if matches(&record, &d.verdict) {
                    p.flash #replay-matches { (lang.t("replay_matches")) }
                } @else {
                    p.flash.bad #replay-differs { (lang.t("replay_differs")) }
                }
                div.grid {
                    div.card {
                        h2 { (lang.t("recorded")) " · " (lang.t("revision")) " " span #recorded-revision { (record.revision) } " · " (record.policy_version) }
                        (outcome(lang, "recorded", record.decision, &record.allowed, &record.outcome.denied, &record.outcome.reasons))
                    }
                    div.card {
                        h2 { (lang.t("replayed")) " · " (lang.t("revision")) " " span #replayed-revision { (d.revision) } " · " (policy.version) }
                        (outcome(lang, "replayed", Some(d.verdict.decision), &d.verdict.allowed, &d.verdict.denied, &d.verdict.reasons))
                    }
                }
            }
        }
        p { a href="/audit/decisions" { "← " (lang.t("decisions")) } }
    };
    Ok(html_page(shell(lang, Some(&session), lang.t("explain"), body)))
}
