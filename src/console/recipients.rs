//! The public recipient register (PIPA 28-8(2)) at `/recipients`, with no sign-in: every seller
//! that may receive buyers' data now, by country, with purposes, categories and retention. The
//! privacy policy links it, so it is cacheable: the list is computed once per registry revision
//! (the engine judges every seller, which is CPU work), pages are slices of it, and the ETag names
//! the revision, so an unchanged registry answers 304.

use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::html;

use super::ConsoleState;
use super::page::{Fields, PageError, html_page, shell};
use super::text::Lang;
use crate::domain::replay::compliance::{Recipient, asks, recipient};
use crate::domain::verify::Context;
use crate::domain::{Vocab, replay::compliance::RecipientPurpose};
use crate::error::Error;
use crate::snapshot::Registry;

/// Entries per page.
const PAGE: usize = 200;

/// The register at one revision.
#[derive(Default)]
pub struct Cache(Mutex<Option<(i64, Arc<Vec<Recipient>>)>>);

impl Cache {
    /// The register at the registry's current revision, computed if not cached yet.
    pub async fn get(&self, registry: &Arc<Registry>) -> Result<(i64, Arc<Vec<Recipient>>), Error> {
        let revision = registry.revision();
        if let Ok(slot) = self.0.lock()
            && let Some((at, list)) = slot.as_ref()
            && *at == revision
        {
            return Ok((*at, Arc::clone(list)));
        }
        let registry = Arc::clone(registry);
        let (at, list) = tokio::task::spawn_blocking(move || build(&registry))
            .await
            .map_err(|e| Error::Internal(format!("the register task failed: {e}")))?;
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((at, Arc::clone(&list)));
        }
        Ok((at, list))
    }
}

/// Judges every seller of the current snapshot; the list is ordered by country, then seller id.
pub fn build(registry: &Registry) -> (i64, Arc<Vec<Recipient>>) {
    let snapshot = registry.snapshot();
    let policy = registry.policy();
    let ctx = Context { policy, orders: &snapshot.orders, now: registry.clock().now(), stale: false };
    let asks = asks(policy);
    let mut list: Vec<Recipient> = snapshot.sellers.values().filter_map(|s| recipient(&ctx, s, &asks)).collect();
    list.sort_unstable_by(|a, b| (a.country, &a.seller_id).cmp(&(b.country, &b.seller_id)));
    (snapshot.revision, Arc::new(list))
}

fn purpose_line(p: &RecipientPurpose) -> String {
    let cats: Vec<&str> = p.categories.iter().map(|c| c.name()).collect();
    format!("{} · {} · {} d", p.purpose.name(), cats.join(", "), p.retention_days)
}

/// `GET /recipients?country=XX&page=N`.
pub async fn show(
    State(state): State<Arc<ConsoleState>>,
    lang: Lang,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match render(&state, lang, &headers, q.as_deref()).await {
        Ok(r) => r,
        Err(e) => PageError(e).into_response(),
    }
}

async fn render(state: &ConsoleState, lang: Lang, headers: &HeaderMap, q: Option<&str>) -> Result<Response, Error> {
    let f = Fields::query(q);
    let page: usize = f.str("page").parse().unwrap_or(0);
    let country = f.str("country").trim().to_uppercase();
    let (revision, list) = state.register.get(&state.registry).await?;
    // The representation depends on the revision, the language and the slice asked for.
    let etag = format!("W/\"r{revision}-{}-{country}-{page}\"", lang.code());
    let cache = [
        (header::ETAG, etag.clone()),
        // Shared caches may keep it, but must revalidate: a revocation shows at once, and an
        // unchanged registry costs a 304.
        (header::CACHE_CONTROL, "public, no-cache".to_owned()),
        (header::VARY, "Accept-Language, Cookie".to_owned()),
    ];
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matched {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let hits: Vec<&Recipient> = list.iter().filter(|r| country.is_empty() || r.country.as_str() == country).collect();
    let more = hits.len() > (page + 1) * PAGE;
    let shown = hits.iter().skip(page * PAGE).take(PAGE);
    let mut countries: Vec<_> = list.iter().map(|r| r.country).collect();
    countries.dedup();
    let link = |p: usize| format!("/recipients?country={country}&page={p}");
    let body = html! {
        h1 { (lang.t("recipients_title")) }
        p { (lang.t("recipients_intro")) }
        p.muted { (lang.t("revision")) " " (revision) " · " (hits.len()) }
        p.filters { a href="/recipients" { (lang.t("any")) } @for c in &countries { a href={ "/recipients?country=" (c) } { (c) } } }
        table #recipients {
            thead { tr { th { (lang.t("country")) } th { (lang.t("legal_name")) } th { (lang.t("privacy_contact")) }
                th { (lang.t("purpose")) " · " (lang.t("categories")) " · " (lang.t("retention")) } } }
            tbody { @for r in shown {
                tr data-seller=(r.seller_id) { td { (r.country) } td { (r.legal_name) } td { (r.privacy_contact) }
                    td { @for p in &r.purposes { (purpose_line(p)) br; } } }
            } }
        }
        div.pager {
            @if page > 0 { a href=(link(page - 1)) { "← " (lang.t("previous")) } }
            @if more { a href=(link(page + 1)) { (lang.t("next")) " →" } }
        }
    };
    let mut res = html_page(shell(lang, None, lang.t("register"), body));
    for (name, value) in cache {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, v);
        }
    }
    Ok(res)
}
