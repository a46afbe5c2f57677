//! The public recipient register (PIPA 28-8(2)) at `/recipients`, with no sign-in: every seller
//! that may receive buyers' data now, by country, with purposes, categories and retention. The
//! privacy policy links it, so it must be cheap at 180,000 sellers and cacheable:
//! - the register is computed once per registry revision (the engine judges every seller, which is
//!   CPU work), by one background task however many requests arrive meanwhile, and at least every
//!   [`MAX_AGE`] even without a write, because contracts expire with time alone; a reader waits
//!   at most [`WAIT`] for a recomputation (a small registry is done by then), else gets the
//!   previous register, with its own revision in the page and the ETag;
//! - it is kept sorted by country with an index of each country's range, so a page (all
//!   countries, or one) is a slice: its cost is the page, not the registry;
//! - it holds the snapshot it judged and, per recipient, only where the seller's record lies in it
//!   and what it may receive, as bitsets ([`Entry`]): names and contacts are read from the record
//!   when a page shows them, so the register costs a few tens of bytes per seller, not a copy of
//!   every seller's text;
//! - the ETag names the register's build and the slice, and is checked before any page work, so an
//!   unchanged register answers 304 at once.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::html;

use super::ConsoleState;
use super::page::{Fields, PageError, html_page, shell};
use super::text::Lang;
use crate::domain::replay::compliance::{Grant, Grants, asks, grants};
use crate::domain::verify::{Context, SellerFacts};
use crate::domain::{Country, Vocab};
use crate::error::Error;
use crate::snapshot::{RecordAt, Registry, Snapshot};

/// Entries per page.
const PAGE: usize = 200;
/// Longest a register is served without being recomputed: a contract that expires drops out of it
/// within this, with no write to the registry.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// One recipient, compact: where its record lies in the register's snapshot and what it may
/// receive, with no text of its own (about 50 bytes, against the kilobyte of an owned entry).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    grants: Grants,
    at: RecordAt,
}

/// One recipient as a page shows it: the seller's fields read in place from its record.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub seller_id: &'a str,
    pub legal_name: &'a str,
    pub privacy_contact: &'a str,
    pub country: Country,
    /// Only purposes with something allowed; never empty.
    pub grants: &'a Grants,
}

/// The register as of one build.
pub struct Register {
    pub revision: i64,
    /// The snapshot judged, whose records the entries point into. Its shards are copy-on-write,
    /// so until the registry changes they are the live snapshot's own memory, and after a write
    /// only the shards written are held twice, until the next build.
    snapshot: Arc<Snapshot>,
    /// Ordered by country, then seller id.
    list: Vec<Entry>,
    /// Each country present, with its range in `list`, in list order.
    pub countries: Vec<(Country, Range<usize>)>,
    /// Distinguishes two builds at the same revision (in ETags).
    pub build: u64,
    built: Instant,
}

impl Register {
    /// The entries of `country` (every entry when `None`); empty for a country with none.
    pub fn of(&self, country: Option<&str>) -> &[Entry] {
        match country {
            None => &self.list,
            Some(c) => self.countries.iter().find(|(k, _)| k.as_str() == c).map_or(&[], |(_, r)| &self.list[r.clone()]),
        }
    }

    /// The row of `entry`, an entry of this register.
    pub fn row<'a>(&'a self, entry: &'a Entry) -> Option<Row<'a>> {
        let r = self.snapshot.at(entry.at)?;
        Some(Row {
            seller_id: r.id(),
            legal_name: r.name(),
            privacy_contact: r.contact(),
            country: r.country(),
            grants: &entry.grants,
        })
    }

    /// The rows of `entries`, entries of this register.
    pub fn rows<'a>(&'a self, entries: impl IntoIterator<Item = &'a Entry>) -> impl Iterator<Item = Row<'a>> {
        entries.into_iter().filter_map(|e| self.row(e))
    }
}

/// The current register, and the lock that makes one task rebuild it.
#[derive(Default, Clone)]
pub struct Cache(Arc<Slots>);

#[derive(Default)]
struct Slots {
    current: Mutex<Option<Arc<Register>>>,
    building: Arc<tokio::sync::Mutex<()>>,
    /// Woken when a build is stored.
    built: tokio::sync::Notify,
}

/// Longest a reader waits for a recomputation before it is answered with the previous register.
pub const WAIT: Duration = Duration::from_millis(50);

impl Cache {
    fn current(&self) -> Option<Arc<Register>> {
        self.0.current.lock().ok()?.clone()
    }

    fn is_fresh(r: &Register, registry: &Registry) -> bool {
        r.revision == registry.revision() && r.built.elapsed() < MAX_AGE
    }

    /// The register. When the registry moved on (or the register is older than [`MAX_AGE`]) one
    /// background task recomputes it; a reader waits for it at most [`WAIT`], then is served the
    /// previous register, so a write never makes a reader of the public page wait for 180,000
    /// sellers to be judged. The very first build is waited for ([`Cache::warm`] does it when the
    /// console starts).
    pub async fn get(&self, registry: &Arc<Registry>) -> Result<Arc<Register>, Error> {
        match self.current() {
            Some(r) if Self::is_fresh(&r, registry) => Ok(r),
            Some(stale) => {
                // Registered before the build starts, so its end cannot be missed.
                let built = self.0.built.notified();
                if let Ok(guard) = Arc::clone(&self.0.building).try_lock_owned() {
                    let (cache, registry) = (self.clone(), Arc::clone(registry));
                    tokio::spawn(async move {
                        if let Err(e) = cache.rebuild(&registry).await {
                            tracing::warn!(error = %e, "cannot recompute the recipient register");
                        }
                        drop(guard);
                    });
                }
                // A small registry is judged within the wait, and the reader sees the write at once.
                let _ = tokio::time::timeout(WAIT, built).await;
                Ok(self.current().unwrap_or(stale))
            }
            None => {
                // One build at a time: whoever waited here finds the register the first one made.
                let _building = self.0.building.lock().await;
                match self.current() {
                    Some(r) => Ok(r),
                    None => self.rebuild(registry).await,
                }
            }
        }
    }

    /// Computes the register now, so that the first reader does not wait for it.
    pub async fn warm(&self, registry: &Arc<Registry>) -> Result<(), Error> {
        self.get(registry).await.map(drop)
    }

    /// Computes the register (the caller holds `building`).
    async fn rebuild(&self, registry: &Arc<Registry>) -> Result<Arc<Register>, Error> {
        let build = self.current().map_or(1, |r| r.build + 1);
        let registry = Arc::clone(registry);
        let register = tokio::task::spawn_blocking(move || build_register(&registry, build))
            .await
            .map_err(|e| Error::Internal(format!("the register task failed: {e}")))?;
        let register = Arc::new(register);
        if let Ok(mut slot) = self.0.current.lock() {
            *slot = Some(Arc::clone(&register));
        }
        self.0.built.notify_waiters();
        Ok(register)
    }
}

/// Judges every seller of the current snapshot; the list is ordered by country, then seller id.
fn build_register(registry: &Registry, build: u64) -> Register {
    let snapshot = registry.snapshot();
    let policy = registry.policy();
    let ctx = Context { policy, orders: &snapshot.orders, now: registry.clock().now(), stale: false };
    let asks = asks(policy);
    // At most one entry per seller: sized once, never grown by doubling.
    let mut judged: Vec<Entry> = Vec::with_capacity(snapshot.len());
    judged.extend(snapshot.iter_at().filter_map(|(at, r)| {
        let grants = grants(&ctx, &r, &asks);
        (!grants.is_empty()).then_some(Entry { grants, at })
    }));
    // Held until the next build, so copied into an allocation of its exact size: shrinking in place
    // (`shrink_to_fit`) may keep the block, slack and all, when the allocator finds it close enough.
    let mut list: Vec<Entry> = Vec::with_capacity(judged.len());
    list.extend_from_slice(&judged);
    drop(judged);
    // Every entry's record is in this snapshot; the key reads it in place.
    let key = |e: &Entry| snapshot.at(e.at).map(|r| (r.country(), r.id()));
    list.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    let mut countries: Vec<(Country, Range<usize>)> = Vec::new();
    for (i, country) in list.iter().map(|e| snapshot.at(e.at).map(|r| r.country())).enumerate() {
        let Some(country) = country else { continue };
        match countries.last_mut() {
            Some((c, range)) if *c == country => range.end = i + 1,
            _ => countries.push((country, i..i + 1)),
        }
    }
    Register { revision: snapshot.revision, snapshot, list, countries, build, built: Instant::now() }
}

/// One purpose of an entry as the page shows it: `PURPOSE · CATEGORY, CATEGORY · N d`.
fn purpose_line(g: &Grant) -> String {
    let cats: Vec<&str> = g.categories().iter().map(|c| c.name()).collect();
    format!("{} · {} · {} d", g.purpose().name(), cats.join(", "), g.retention_days())
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
    let register = state.register.get(&state.registry).await?;
    // The representation depends on the build, the language and the slice asked for.
    let etag = format!("W/\"r{}-b{}-{}-{country}-{page}\"", register.revision, register.build, lang.code());
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
    let hits = register.of((!country.is_empty()).then_some(country.as_str()));
    let more = hits.len() > (page + 1) * PAGE;
    let shown = hits.iter().skip(page * PAGE).take(PAGE);
    let link = |p: usize| format!("/recipients?country={country}&page={p}");
    let body = html! {
        h1 { (lang.t("recipients_title")) }
        p { (lang.t("recipients_intro")) }
        p.muted { (lang.t("revision")) " " (register.revision) " · " span #recipients-count { (hits.len()) } }
        p.filters { a href="/recipients" { (lang.t("any")) }
            @for (c, range) in &register.countries { a href={ "/recipients?country=" (c) } { (c) " " span.muted { (range.len()) } } } }
        table #recipients {
            thead { tr { th { (lang.t("country")) } th { (lang.t("legal_name")) } th { (lang.t("privacy_contact")) }
                th { (lang.t("purpose")) " · " (lang.t("categories")) " · " (lang.t("retention")) } } }
            tbody { @for r in register.rows(shown) {
                tr data-seller=(r.seller_id) { td { (r.country) } td { (r.legal_name) } td { (r.privacy_contact) }
                    td { @for g in r.grants.iter() { (purpose_line(g)) br; } } }
            } }
        }
        div.pager {
            @if page > 0 { a href=(link(page - 1)) { "← " (lang.t("previous")) } }
            @if more { a #next-page href=(link(page + 1)) { (lang.t("next")) " →" } }
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

#[cfg(test)]
#[path = "recipients_tests.rs"]
mod tests;
