//! Auditors' screens: the change feed with filters (from the event log, with each write's actor),
//! a seller as it stood at a date or revision (the log replayed, as GetSellerAsOf does), decision
//! search (seller, caller, outcome, time) over the decision records, and the recipient register as
//! CSV or JSON. The chain and its checkpoints are [`super::chain`]'s.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use http::header;
use maud::html;

use super::ConsoleState;
use super::page::{Fields, PageResult, html_page, parse_day, shell, when};
use super::session::Session;
use super::text::Lang;
use crate::auth::Role;
use crate::domain::Decision;
use crate::domain::{SellerId, Vocab};
use crate::error::Error;
use crate::store::{DecisionFilter, EventFilter};

/// Events per feed page.
const PAGE: u64 = 100;

/// `GET /audit?seller=&actor=&kind=&from=&to=&after=`.
pub async fn feed(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    RawQuery(q): RawQuery,
) -> PageResult {
    session.require(&[Role::Auditor])?;
    let f = Fields::query(q.as_deref());
    let invalid = |v| Error::Invalid(vec![v]);
    let opt = |name: &str| (!f.str(name).trim().is_empty()).then(|| f.str(name).trim().to_owned());
    let filter = EventFilter {
        after: f.str("after").parse().unwrap_or(0),
        seller_id: opt("seller").map(|s| SellerId::parse_field(&s, "seller")).transpose().map_err(invalid)?,
        kind: opt("kind"),
        actor: opt("actor"),
        start: opt("from").map(|d| parse_day(&d, "from")).transpose().map_err(invalid)?,
        end: opt("to").map(|d| parse_day(&d, "to").map(|t| t.plus_days(1))).transpose().map_err(invalid)?,
    };
    let events = state.store.list_events(&filter, PAGE).await?;
    let next = (events.len() as u64 == PAGE).then(|| events.last().map(|e| e.revision)).flatten();
    let next_link = next.map(|after| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for k in ["seller", "actor", "kind", "from", "to"] {
            out.append_pair(k, f.str(k));
        }
        out.append_pair("after", &after.to_string());
        format!("/audit?{}", out.finish())
    });
    let body = html! {
        h1 { (lang.t("audit")) }
        form.filters method="get" action="/audit" {
            label { (lang.t("seller_id")) br; input type="text" name="seller" value=(f.str("seller")); }
            label { (lang.t("actor")) br; input type="text" name="actor" value=(f.str("actor")); }
            label { (lang.t("kind")) br; select name="kind" {
                option value="" { (lang.t("any")) }
                @for k in crate::domain::registry::EventKind::ALL { option value=(k.name()) selected[k.name() == f.str("kind")] { (k.name()) } }
            } }
            label { "from" br; input type="date" name="from" value=(f.str("from")); }
            label { "to" br; input type="date" name="to" value=(f.str("to")); }
            button type="submit" { (lang.t("filter")) }
        }
        p { a href="/audit/register.csv" { (lang.t("register")) " CSV" } " · " a href="/audit/register.json" { (lang.t("register")) " JSON" } }
        table #feed {
            thead { tr { th.num { (lang.t("revision")) } th { (lang.t("time")) } th { (lang.t("actor")) } th { (lang.t("kind")) } th { (lang.t("seller_id")) } } }
            tbody { @for e in &events {
                tr.event { td.num { (e.revision) } td { (when(e.time)) } td.actor { (e.actor) } td.kind { (e.kind) }
                    td { @if !e.seller_id.is_empty() { a href={ "/sellers/" (e.seller_id) } { code { (e.seller_id) } } } } }
            } }
        }
        @if let Some(link) = next_link { p.pager { a href=(link) { (lang.t("next")) " →" } } }
    };
    Ok(html_page(shell(lang, Some(&session), lang.t("audit"), body)))
}

pub(super) fn download(kind: &'static str, name: &'static str, body: String) -> axum::response::Response {
    ([(header::CONTENT_TYPE, kind), (header::CONTENT_DISPOSITION, name)], body).into_response()
}

/// `GET /audit/register.csv`: one row per recipient and purpose.
pub async fn register_csv(State(state): State<Arc<ConsoleState>>, session: Session) -> PageResult {
    session.require(&[Role::Auditor])?;
    let register = state.register.get(&state.registry).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = ["seller_id", "legal_name", "privacy_contact", "country", "purpose", "categories", "retention_days"];
    let fail = |e: csv::Error| Error::Internal(format!("cannot write the register: {e}"));
    w.write_record(header).map_err(fail)?;
    for r in register.rows(register.of(None)) {
        for g in r.grants.iter() {
            let cats: Vec<&str> = g.categories().iter().map(|c| c.name()).collect();
            w.write_record([
                r.seller_id,
                r.legal_name,
                r.privacy_contact,
                r.country.as_str(),
                g.purpose().name(),
                &cats.join(" "),
                &g.retention_days().to_string(),
            ])
            .map_err(fail)?;
        }
    }
    let bytes = w.into_inner().map_err(|e| Error::Internal(format!("cannot write the register: {e}")))?;
    Ok(download(
        "text/csv; charset=utf-8",
        "attachment; filename=\"recipient-register.csv\"",
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// `GET /audit/register.json`.
pub async fn register_json(State(state): State<Arc<ConsoleState>>, session: Session) -> PageResult {
    session.require(&[Role::Auditor])?;
    let register = state.register.get(&state.registry).await?;
    let entries: Vec<serde_json::Value> = register
        .rows(register.of(None))
        .map(|r| {
            serde_json::json!({
                "seller_id": r.seller_id, "legal_name": r.legal_name, "privacy_contact": r.privacy_contact,
                "country": r.country.as_str(),
                "purposes": r.grants.iter().map(|g| serde_json::json!({
                    "purpose": g.purpose().name(),
                    "categories": g.categories().iter().map(|c| c.name()).collect::<Vec<_>>(),
                    "retention_days": g.retention_days(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let body = serde_json::json!({ "revision": register.revision, "recipients": entries }).to_string();
    Ok(download("application/json", "attachment; filename=\"recipient-register.json\"", body))
}

/// Decisions listed per search.
const DECISIONS: u64 = 200;

/// `GET /audit/decisions?seller=&caller=&outcome=&from=&to=`: recorded decisions, oldest first.
pub async fn decisions(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    RawQuery(q): RawQuery,
) -> PageResult {
    session.require(&[Role::Auditor])?;
    let f = Fields::query(q.as_deref());
    let invalid = |v| Error::Invalid(vec![v]);
    let opt = |name: &str| (!f.str(name).trim().is_empty()).then(|| f.str(name).trim().to_owned());
    let filter = DecisionFilter {
        seller_id: opt("seller").map(|s| SellerId::parse_field(&s, "seller")).transpose().map_err(invalid)?,
        decision: opt("outcome").and_then(|d| Decision::from_name(&d)),
        start: opt("from").map(|d| parse_day(&d, "from")).transpose().map_err(invalid)?,
        end: opt("to").map(|d| parse_day(&d, "to").map(|t| t.plus_days(1))).transpose().map_err(invalid)?,
        ..Default::default()
    };
    // The caller is not a column filter of the store: it narrows the page read.
    let caller = opt("caller");
    let found: Vec<_> = state
        .store
        .list_decisions(&filter, DECISIONS)
        .await?
        .into_iter()
        .filter(|d| caller.as_ref().is_none_or(|c| *d.caller == **c))
        .collect();
    let body = html! {
        h1 { (lang.t("decisions")) }
        form.filters method="get" action="/audit/decisions" {
            label { (lang.t("seller_id")) br; input type="text" name="seller" value=(f.str("seller")); }
            label { (lang.t("caller")) br; input type="text" name="caller" value=(f.str("caller")); }
            label { (lang.t("decision")) br; select name="outcome" {
                option value="" { (lang.t("any")) }
                @for d in Decision::ALL { option value=(d.name()) selected[d.name() == f.str("outcome")] { (d.name()) } }
            } }
            label { "from" br; input type="date" name="from" value=(f.str("from")); }
            label { "to" br; input type="date" name="to" value=(f.str("to")); }
            button type="submit" { (lang.t("filter")) }
        }
        table #decisions {
            thead { tr { th { (lang.t("time")) } th { (lang.t("caller")) } th { (lang.t("seller_id")) } th { (lang.t("purpose")) }
                th { (lang.t("decision")) } th { (lang.t("reasons")) } th.num { (lang.t("revision")) } th { "id" } } }
            tbody { @for d in &found {
                tr { td { (when(d.time)) } td { (d.caller) }
                    td { @if let Some(id) = &d.seller_id { a href={ "/sellers/" (id) } { code { (id) } } } }
                    td { (d.purpose.map_or("", |p| p.name())) }
                    td { @if let Some(x) = d.decision { span class={ "badge " (x.name()) } { (x.name()) } } }
                    td { @for (c, why) in &d.outcome.denied { code { (c.name()) } ": " @for r in why { (r.code.name()) " " } br; }
                        @for r in &d.outcome.reasons { (r.code.name()) " " } }
                    td.num { (d.revision) } td.mono { a.explain href={ "/audit/decisions/" (d.decision_id) } { (d.decision_id) } } }
            } }
        }
    };
    Ok(html_page(shell(lang, Some(&session), lang.t("decisions"), body)))
}

/// `GET /sellers/{id}/asof?date=YYYY-MM-DD` (the end of that day, UTC) or `?revision=N`.
pub async fn seller_as_of(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    use crate::domain::registry::{EventKind, RegistryChange};
    use crate::domain::replay::SellerReplay;
    session.require(&[Role::Auditor])?;
    let f = Fields::query(q.as_deref());
    let id = SellerId::parse_field(&id, "seller_id").map_err(|v| Error::Invalid(vec![v]))?;
    // A date stands for the last revision written by its end: the log's prefix a replica had
    // applied then, whatever the clocks of later writers said.
    let until = match f.str("revision").parse::<i64>() {
        Ok(r) if r > 0 => r,
        _ => {
            let day = parse_day(f.str("date"), "date").map_err(|v| Error::Invalid(vec![v]))?;
            state.store.revision_at(day.plus_seconds(86_399)).await?
        }
    };
    let mut replay = SellerReplay::new(id.clone());
    for e in state.store.replay_events(&id, until, false).await? {
        if EventKind::parse(&e.kind).is_some_and(EventKind::is_sellers_own) {
            let change = RegistryChange::from_event(&e.kind, &e.payload)
                .map_err(|why| Error::Internal(format!("registry event {}: {why}", e.revision)))?;
            replay.apply(e.revision, &change);
        }
    }
    let seller = replay.seller.as_ref().ok_or_else(|| Error::NotFound(format!("seller {id} at revision {until}")))?;
    let body = html! {
        h1 { (seller.legal_name) " " span.muted { (lang.t("as_of")) " " (lang.t("revision")) " " span #as-of-revision { (until) } } }
        (super::sellers::fields_card(lang, &session, seller))
        h2 { (lang.t("contracts")) }
        (super::sellers::matrix(lang, &session, &replay.attestations, false))
        p { a href={ "/sellers/" (id) } { "← " (lang.t("sellers")) } }
    };
    Ok(html_page(shell(lang, Some(&session), &seller.legal_name, body)))
}
