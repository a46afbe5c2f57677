//! The seller list (search, filters, paging, read from the in-memory registry) and the seller page:
//! fields, contracts with their clause × contract matrix, the history timeline from the event log,
//! suspension orders that apply, supervision, recent decisions, and "try a checkout", which asks
//! `Registry::verify` exactly as VerifySeller does (it is a preview, so it is not recorded).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use http::HeaderMap;
use maud::{Markup, html};

use super::ConsoleState;
use super::attest::attestation_actions;
use super::dashboard::scope;
use super::page::{Fields, PageResult, day, html_page, shell, when};
use super::session::Session;
use super::text::Lang;
use crate::auth::Role;
use crate::domain::registry::{Attestation, Seller};
use crate::domain::replay::compliance::{Standing, asks, evaluate, missing_clauses, standing};
use crate::domain::verify::{Context, Reason, SellerFacts, SellerView, SuspensionScope, Verdict, VerifyRequest};
use crate::domain::{Clause, DataCategory, Purpose, SellerId, SellerRole, SellerStatus, TransferBasis, Vocab};
use crate::error::Error;
use crate::snapshot::Record;
use crate::store::DecisionFilter;

/// Sellers per list page.
const PAGE: usize = 50;

fn standing_name(s: Standing) -> &'static str {
    match s {
        Standing::Allowed => "allowed",
        Standing::Partial => "partial",
        Standing::Denied => "denied",
        Standing::Suspended => "suspended",
        Standing::NoContract => "no_contract",
    }
}

/// Whether `s` passes the list's filters (the costly ones, standing and missing clause, judge the
/// seller with the decision engine only when asked for).
/// The seller is read in place, and materialised only for the costly filters.
fn matches(r: &Record<'_>, f: &Fields, ctx: &Context<'_>) -> bool {
    let q = f.str("q").trim().to_lowercase();
    if !q.is_empty() && !r.seller_id().to_lowercase().contains(&q) && !r.legal_name().to_lowercase().contains(&q) {
        return false;
    }
    let eq = |name: &str, value: &str| f.str(name).is_empty() || f.str(name) == value;
    if !eq("country", r.country().as_str()) || !eq("status", r.status().name()) || !eq("role", r.role().name()) {
        return false;
    }
    if let Ok(days) = f.str("expiring").parse::<i64>() {
        let horizon = ctx.now.plus_days(days);
        if !r.terms().any(|c| c.in_force(ctx.now) && c.expire <= horizon) {
            return false;
        }
    }
    let (state, clause) = (f.str("state"), f.str("missing"));
    if state.is_empty() && clause.is_empty() {
        return true;
    }
    let view = r.view();
    let s = &view;
    let asks = asks(ctx.policy);
    let verdicts = if s.status == SellerStatus::Active { evaluate(ctx, s, &asks) } else { Vec::new() };
    (state.is_empty() || standing_name(standing(s, &verdicts)) == state)
        && (clause.is_empty() || Clause::from_name(clause).is_some_and(|c| missing_clauses(&verdicts).contains(c)))
}

fn options<T: Vocab>(selected: &str, lang: Lang) -> Markup {
    html! {
        option value="" { (lang.t("any")) }
        @for v in T::ALL { option value=(v.name()) selected[v.name() == selected] { (v.name()) } }
    }
}

/// `GET /sellers`.
pub async fn list(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    RawQuery(q): RawQuery,
) -> PageResult {
    session.require(&[Role::Legal, Role::Auditor])?;
    let f = Fields::query(q.as_deref());
    let page: usize = f.str("page").parse().unwrap_or(0);
    let registry = Arc::clone(&state.registry);
    let filters = f.clone();
    let (rows, more) = tokio::task::spawn_blocking(move || {
        let snapshot = registry.snapshot();
        let ctx =
            Context { policy: registry.policy(), orders: &snapshot.orders, now: registry.clock().now(), stale: false };
        let mut hits: Vec<Record<'_>> = snapshot.iter().filter(|s| matches(s, &filters, &ctx)).collect();
        hits.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        let more = hits.len() > (page + 1) * PAGE;
        // Only the page shown is materialised.
        (hits.into_iter().skip(page * PAGE).take(PAGE).map(|r| r.view()).collect::<Vec<SellerView>>(), more)
    })
    .await
    .map_err(|e| Error::Internal(format!("the seller list task failed: {e}")))?;
    let link = |p: usize| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for key in ["q", "country", "status", "role", "state", "missing", "expiring"] {
            if !f.str(key).is_empty() {
                out.append_pair(key, f.str(key));
            }
        }
        out.append_pair("page", &p.to_string());
        format!("/sellers?{}", out.finish())
    };
    let states = ["allowed", "partial", "denied", "suspended", "no_contract"];
    let body = html! {
        h1 { (lang.t("sellers")) }
        form.filters method="get" action="/sellers" {
            label { (lang.t("search")) br; input type="search" name="q" value=(f.str("q")) placeholder=(lang.t("search_hint")); }
            label { (lang.t("country")) br; input type="text" name="country" value=(f.str("country")) size="3" maxlength="2"; }
            label { (lang.t("status")) br; select name="status" { (options::<SellerStatus>(f.str("status"), lang)) } }
            label { (lang.t("role")) br; select name="role" { (options::<SellerRole>(f.str("role"), lang)) } }
            label { (lang.t("state")) br; select name="state" {
                option value="" { (lang.t("any")) }
                @for s in states { option value=(s) selected[f.str("state") == s] { (lang.t(s)) } }
            } }
            label { (lang.t("missing_clauses")) br; select name="missing" { (options::<Clause>(f.str("missing"), lang)) } }
            label { (lang.t("expiring")) br; input type="number" name="expiring" min="0" value=(f.str("expiring")) size="4"; }
            button type="submit" { (lang.t("filter")) }
        }
        table #seller-list {
            thead { tr { th { (lang.t("seller_id")) } th { (lang.t("legal_name")) } th { (lang.t("country")) }
                th { (lang.t("role")) } th { (lang.t("status")) } th.num { (lang.t("contracts")) } } }
            tbody { @for s in &rows {
                tr { td { a href={ "/sellers/" (s.seller_id) } { code { (s.seller_id) } } } td { (s.legal_name) }
                    td { (s.country) } td { (s.role.name()) } td { span class={ "badge " (s.status.name()) } { (s.status.name()) } }
                    td.num { (s.contracts.len()) } }
            } }
        }
        div.pager {
            @if page > 0 { a href=(link(page - 1)) { "← " (lang.t("previous")) } }
            @if more { a href=(link(page + 1)) { (lang.t("next")) " →" } }
        }
    };
    Ok(html_page(shell(lang, Some(&session), lang.t("sellers"), body)))
}

fn reason_text(r: &Reason) -> String {
    match r.clause {
        Some(c) => format!("{} ({})", r.code.name(), c.name()),
        None => r.code.name().to_owned(),
    }
}

/// A decision and its reasons, as the try-a-checkout panel shows it.
pub fn verdict_panel(lang: Lang, v: &Verdict, revision: i64) -> Markup {
    html! {
        div.card #verdict {
            p { (lang.t("decision")) ": " span #decision class={ "badge " (v.decision.name()) } { (v.decision.name()) }
                " " span.muted { (lang.t("revision")) " " (revision) } }
            @if !v.allowed.is_empty() {
                p { "✓ " @for c in &v.allowed { code { (c.name()) } " " } }
            }
            ul #reasons {
                @for (c, why) in &v.denied {
                    li { code { (c.name()) } ": " @for r in why { span.reason { (reason_text(r)) } " " } }
                }
                @for r in &v.reasons { li { span.reason { (reason_text(r)) } } }
            }
            @if v.retention_days > 0 { p.muted { (lang.t("retention")) ": " (v.retention_days) } }
        }
    }
}

fn try_form(lang: Lang, id: &SellerId, f: &Fields) -> Markup {
    let chosen = f.all("category");
    let basis = if f.get("basis").is_none() { "SEPARATE_CONSENT" } else { f.str("basis") };
    html! {
        form.stack #try-form method="get" action={ "/sellers/" (id) "/try" } hx-get={ "/sellers/" (id) "/try" } hx-target="#verdict" hx-swap="outerHTML" {
            label for="purpose" { (lang.t("purpose")) }
            select #purpose name="purpose" { @for p in Purpose::ALL { option value=(p.name()) selected[p.name() == f.str("purpose")] { (p.name()) } } }
            fieldset { legend { (lang.t("categories")) }
                @for c in DataCategory::ALL {
                    label { input type="checkbox" name="category" value=(c.name()) checked[chosen.contains(&c.name()) || (chosen.is_empty() && *c == DataCategory::RecipientName)]; " " (c.name()) }
                }
            }
            label for="basis" { (lang.t("basis")) }
            select #basis name="basis" {
                option value="" { "—" }
                @for b in TransferBasis::ALL { option value=(b.name()) selected[b.name() == basis] { (b.name()) } }
            }
            p { button #try type="submit" { (lang.t("decide")) } }
        }
    }
}

/// The request a try-a-checkout form describes, or why it is not one.
fn try_request(id: &SellerId, f: &Fields) -> Result<VerifyRequest, String> {
    let purpose = Purpose::from_name(f.str("purpose")).ok_or("choose a purpose")?;
    let mut categories = Vec::new();
    for name in f.all("category") {
        let c = DataCategory::from_name(name).ok_or("unknown data category")?;
        if !categories.contains(&c) {
            categories.push(c);
        }
    }
    if categories.is_empty() {
        return Err("choose at least one data category".into());
    }
    let basis = TransferBasis::from_name(f.str("basis"));
    Ok(VerifyRequest {
        seller_id: id.clone(),
        categories,
        purpose,
        basis,
        basis_evidence_ref: String::new(),
        min_revision: 0,
    })
}

/// `GET /sellers/{id}/try`: the decision the API would give now; only the panel for htmx.
pub async fn try_checkout(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    session.require(&[Role::Legal, Role::Auditor])?;
    let id = SellerId::parse_field(&id, "seller_id").map_err(|v| Error::Invalid(vec![v]))?;
    let f = Fields::query(q.as_deref());
    let panel = match try_request(&id, &f) {
        Ok(req) => {
            let decided = state.registry.verify(&req);
            verdict_panel(lang, &decided.verdict, decided.revision)
        }
        Err(why) => html! { div.card #verdict { p.flash.bad { (why) } } },
    };
    if headers.contains_key("hx-request") {
        return Ok(html_page(panel));
    }
    detail_page(&state, &session, lang, id, &f, Some(panel)).await
}

/// `GET /sellers/{id}`.
pub async fn detail(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
) -> PageResult {
    session.require(&[Role::Legal, Role::Auditor])?;
    let id = SellerId::parse_field(&id, "seller_id").map_err(|v| Error::Invalid(vec![v]))?;
    detail_page(&state, &session, lang, id, &Fields::default(), None).await
}

async fn detail_page(
    state: &ConsoleState,
    session: &Session,
    lang: Lang,
    id: SellerId,
    f: &Fields,
    verdict: Option<Markup>,
) -> PageResult {
    let (seller, atts, _) =
        state.store.get_seller(&id).await?.ok_or_else(|| Error::NotFound(format!("seller {id}")))?;
    let history = state.store.seller_history(&id).await?;
    let orders: Vec<_> = state
        .store
        .list_suspension_orders(true)
        .await?
        .into_iter()
        .filter(|o| match &o.scope {
            SuspensionScope::Seller(s) => *s == id,
            SuspensionScope::Country(c) => *c == seller.country,
        })
        .collect();
    let now = state.registry.clock().now();
    let filter = DecisionFilter { seller_id: Some(id.clone()), start: Some(now.plus_days(-7)), ..Default::default() };
    let mut decisions = state.store.list_decisions(&filter, 500).await?;
    decisions.reverse();
    decisions.truncate(10);
    let supervision = super::supervision::recorded(&history)?;
    let body = html! {
        h1 { (seller.legal_name) " " span.muted { code { (seller.seller_id) } } }
        (fields_card(lang, session, &seller))
        h2 { (lang.t("try_checkout")) }
        div.grid {
            (try_form(lang, &id, f))
            @if let Some(v) = verdict { (v) } @else { div #verdict {} }
        }
        h2 { (lang.t("contracts")) }
        @if session.can(&[Role::Legal]) { p { a.button #attest-link href={ "/sellers/" (id) "/attest" } { (lang.t("attest")) } } }
        (matrix(lang, session, &atts, true))
        h2 { (lang.t("orders")) }
        @if orders.is_empty() { p.muted { (lang.t("none")) } }
        ul { @for o in &orders { li { strong { (o.order_ref) } " — " (scope(&o.scope)) " · " (when(o.effective_time))
            @if o.lifted { " " span.badge { "lifted" } } } } }
        h2 { (lang.t("supervision")) }
        (super::supervision::table(lang, &supervision))
        @if session.can(&[Role::Legal]) { (super::supervision::form(lang, session, &id, &Fields::default(), &[])) }
        h2 { (lang.t("recent_decisions")) }
        @if decisions.is_empty() { p.muted { (lang.t("none")) } }
        table { tbody { @for d in &decisions {
            tr { td { (when(d.time)) } td { (d.caller) } td { (d.purpose.map_or("", |p| p.name())) }
                td { (d.decision.map_or("", |x| x.name())) } td.mono { (d.decision_id) } }
        } } }
        h2 { (lang.t("history")) }
        @if session.can(&[Role::Auditor]) {
            form.filters #as-of method="get" action={ "/sellers/" (id) "/asof" } {
                label { (lang.t("as_of")) br; input type="date" name="date"; }
                button type="submit" { (lang.t("as_of")) }
            }
        }
        ol.timeline #history { @for e in &history {
            li { strong { (e.kind) } " · " (lang.t("revision")) " " (e.revision) " · " (when(e.time)) " · " span.actor { (e.actor) } }
        } }
    };
    Ok(html_page(shell(lang, Some(session), &seller.legal_name, body)).into_response())
}

/// A seller's fields (with the edit link for legal).
pub(super) fn fields_card(lang: Lang, session: &Session, s: &Seller) -> Markup {
    html! {
        div.card #seller-fields {
            table { tbody {
                tr { th { (lang.t("legal_name")) } td #legal-name { (s.legal_name) } }
                tr { th { (lang.t("country")) } td { (s.country) } }
                tr { th { (lang.t("role")) } td { (s.role.name()) } }
                tr { th { (lang.t("status")) } td { span class={ "badge " (s.status.name()) } { (s.status.name()) } } }
                tr { th { (lang.t("contact_email")) } td { (s.contact_email) } }
                tr { th { (lang.t("privacy_contact")) } td { (s.privacy_contact) } }
                tr { th { (lang.t("revision")) } td { (s.revision) " · " (when(s.update_time)) } }
            } }
            @if session.can(&[Role::Legal]) { p { a href={ "/sellers/" (s.seller_id) "/edit" } { (lang.t("edit_seller")) } } }
        }
    }
}

/// The clause × contract matrix; `actions` adds legal's revoke forms.
pub(super) fn matrix(lang: Lang, session: &Session, atts: &[Attestation], actions: bool) -> Markup {
    if atts.is_empty() {
        return html! { p.muted #no-contracts { (lang.t("none")) } };
    }
    html! {
        table.matrix #contracts {
            thead {
                tr { th { (lang.t("clause")) } @for a in atts { th { code { (a.contract_ref) } br; span class={ "badge " (a.state.name()) } { (a.state.name()) } } } }
            }
            tbody {
                @for c in Clause::ALL {
                    tr { td { code { (c.name()) } }
                        @for a in atts { @if a.clauses.contains(c) { td.yes { "●" } } @else { td.no { "—" } } } }
                }
                tr { td { (lang.t("purposes")) } @for a in atts { td { @for p in &a.purposes { code { (p.name()) } br; } } } }
                tr { td { (lang.t("categories")) } @for a in atts { td { @for c in &a.categories { code { (c.name()) } br; } } } }
                tr { td { (lang.t("effective")) } @for a in atts { td { (day(a.effective_time)) " → " (day(a.expire_time)) } } }
                tr { td { (lang.t("document_sha256")) } @for a in atts { td.mono.sha { (a.document_sha256.as_str()) } } }
                @if actions && session.can(&[Role::Legal]) {
                    tr { td {} @for a in atts { td { (attestation_actions(lang, session, a)) } } }
                }
            }
        }
    }
}
