//! The dashboard: sellers by compliance standing and by country, contracts expiring within 30, 60
//! and 90 days (a bar chart drawn server-side as SVG), the clauses most often missing, suspension
//! orders in force, and the registry's revision and health. The standings are the compliance
//! report's: each seller judged by the decision engine for every baseline purpose.

use std::sync::Arc;

use axum::extract::State;
use maud::{Markup, html};

use super::ConsoleState;
use super::page::{PageResult, html_page, shell, when};
use super::session::Session;
use super::text::Lang;
use crate::auth::Role;
use crate::domain::replay::compliance::{Compliance, CountryCounts, compliance};
use crate::domain::verify::{Context, SuspensionScope};
use crate::domain::{Timestamp, Vocab};
use crate::error::Error;

/// The chart's horizons, in days.
const HORIZONS: [i64; 3] = [30, 60, 90];

/// `GET /`.
pub async fn show(State(state): State<Arc<ConsoleState>>, session: Session, lang: Lang) -> PageResult {
    session.require(&[Role::Legal, Role::Auditor])?;
    let registry = Arc::clone(&state.registry);
    // Judging every seller is CPU work proportional to the registry: off the async workers.
    let (report, now, revision) = tokio::task::spawn_blocking(move || {
        let snapshot = registry.snapshot();
        let now = registry.clock().now();
        let ctx = Context { policy: registry.policy(), orders: &snapshot.orders, now, stale: false };
        (compliance(&ctx, snapshot.iter().map(|s| s.view()), 90), now, snapshot.revision)
    })
    .await
    .map_err(|e| Error::Internal(format!("the dashboard task failed: {e}")))?;
    let orders = state.store.list_suspension_orders(false).await?;
    let in_force: Vec<_> = orders.iter().filter(|o| o.effective_time <= now).collect();
    let halted = state.registry.halted();
    let fresh = state.registry.is_fresh();
    let mut total = CountryCounts::default();
    for c in report.countries.values() {
        total.allowed += c.allowed;
        total.partial += c.partial;
        total.denied += c.denied;
        total.suspended += c.suspended;
        total.no_contract += c.no_contract;
    }
    let body = html! {
        h1 { (lang.t("dashboard")) }
        div.grid {
            div.card #by-state {
                h2 { (lang.t("by_state")) }
                table { tbody {
                    tr { td { (lang.t("allowed")) } td.num { (total.allowed) } }
                    tr { td { (lang.t("partial")) } td.num { (total.partial) } }
                    tr { td { (lang.t("denied")) } td.num { (total.denied) } }
                    tr { td { (lang.t("suspended")) } td.num { (total.suspended) } }
                    tr { td { (lang.t("no_contract")) } td.num { (total.no_contract) } }
                } }
            }
            div.card #expiring {
                h2 { (lang.t("expiring")) }
                (expiring_chart(lang, &report, now))
            }
            div.card #health {
                h2 { (lang.t("registry")) }
                p { (lang.t("revision")) ": " strong #revision { (revision) } }
                p { (lang.t("health")) ": "
                    @if fresh { span.badge.ok { (lang.t("serving")) } } @else { span.badge.bad { (lang.t("not_serving")) } }
                }
                @if let Some(why) = halted { p.flash.bad { (why) } }
                p.muted { "policy " (state.registry.policy().version) }
            }
        }
        div.grid {
            div.card.wide #by-country {
                h2 { (lang.t("by_country")) }
                table {
                    thead { tr { th { (lang.t("country")) } th.num { (lang.t("allowed")) } th.num { (lang.t("partial")) }
                        th.num { (lang.t("denied")) } th.num { (lang.t("suspended")) } th.num { (lang.t("no_contract")) } } }
                    tbody { @for (country, n) in &report.countries {
                        tr { td { a href={ "/sellers?country=" (country) } { (country) } } td.num { (n.allowed) } td.num { (n.partial) }
                            td.num { (n.denied) } td.num { (n.suspended) } td.num { (n.no_contract) } }
                    } }
                }
            }
            div.card #missing {
                h2 { (lang.t("missing_clauses")) }
                @if report.missing_clauses.is_empty() { p.muted { (lang.t("none")) } }
                table { tbody { @for (clause, sellers) in report.missing_clauses.iter().take(8) {
                    tr { td { code { (clause.name()) } } td.num { (sellers) } }
                } } }
            }
            div.card #orders {
                h2 { (lang.t("orders_in_force")) }
                @if in_force.is_empty() { p.muted { (lang.t("none")) } }
                ul { @for o in &in_force {
                    li { strong { (o.order_ref) } " — " (scope(&o.scope)) " " span.muted { (when(o.effective_time)) } }
                } }
            }
        }
    };
    Ok(html_page(shell(lang, Some(&session), lang.t("dashboard"), body)))
}

/// What an order applies to, for display.
pub fn scope(s: &SuspensionScope) -> String {
    match s {
        SuspensionScope::Seller(id) => format!("seller {id}"),
        SuspensionScope::Country(c) => format!("country {c}"),
    }
}

/// Contracts in force expiring within each horizon, as a bar chart. SVG attributes, not `style`,
/// carry the geometry, because the CSP refuses inline styles.
fn expiring_chart(lang: Lang, report: &Compliance, now: Timestamp) -> Markup {
    let counts: Vec<(i64, usize)> = HORIZONS
        .iter()
        .map(|&d| (d, report.expiring.iter().filter(|e| e.expire <= now.plus_days(d)).count()))
        .collect();
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (width, bar_h, gap, label_w) = (320usize, 26usize, 12usize, 80usize);
    let height = counts.len() * (bar_h + gap);
    html! {
        svg #expiring-chart xmlns="http://www.w3.org/2000/svg" width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } role="img" aria-label=(lang.t("expiring")) {
            @for (i, (days, n)) in counts.iter().enumerate() {
                @let y = i * (bar_h + gap);
                @let w = (width - label_w - 40) * n / max;
                text x="0" y=(y + bar_h / 2 + 4) { "≤ " (days) " " (lang.t("within_days")) }
                rect x=(label_w) y=(y) width=(w.max(2)) height=(bar_h) rx="3" fill="#1f5fbf" {}
                text x=(label_w + w.max(2) + 6) y=(y + bar_h / 2 + 4) data-days=(days) { (n) }
            }
        }
    }
}
