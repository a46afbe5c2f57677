//! Legal's CSV import (the format of `safeguard import`, docs/import-format.md), in three steps:
//! 1. the upload is read and validated by the CLI's own importer in dry-run mode, so every row
//!    error is shown with its line and column before anything is written;
//! 2. legal confirms the very upload that was previewed (kept server-side under an unguessable id,
//!    so it cannot change between preview and import);
//! 3. the importer writes it in the background, batch by batch, and the progress view (htmx
//!    polling a fragment) shows rows done of the total and errors, then the revision it produced.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use http::StatusCode;
use maud::{Markup, html};

use super::ConsoleState;
use super::forms::{hidden, page, posted};
use super::page::{PageResult, field_errors};
use super::session::{Session, random_token};
use super::text::Lang;
use crate::auth::Role;
use crate::cli::{Format, ImportOptions, ImportReport, RowError, import_reader};
use crate::domain::Violation;
use crate::error::Error;

/// Uploads kept at once (previewed or importing); the oldest finished ones make room. With
/// [`MAX_UPLOAD`] this bounds what uploads can hold in memory.
const KEPT: usize = 8;
/// The largest upload (bytes of the posted form): tens of thousands of rows. Bulk loads of the
/// whole registry are for `safeguard import`, which streams a file of any size.
pub const MAX_UPLOAD: usize = 16 << 20;
/// Row errors listed on a page; beyond it they are counted.
const LISTED: usize = 1000;
/// Rows per transaction: smaller than the CLI's, so that progress moves on a modest upload.
const BATCH: usize = 200;

/// Where an import stands.
#[derive(Default)]
struct Progress {
    started: bool,
    rows: u64,
    errors: usize,
    /// The final report, or why the import stopped.
    done: Option<Result<ImportReport, String>>,
}

/// One previewed upload.
pub struct Job {
    owner: String,
    csv: Bytes,
    /// Data rows in the upload, from the dry run.
    total: u64,
    progress: Mutex<Progress>,
}

impl Job {
    fn progress<T>(&self, f: impl FnOnce(&mut Progress) -> T) -> T {
        // A poisoned lock only means a progress update panicked; the state is still readable.
        let mut p = self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut p)
    }
}

/// The uploads the console keeps.
#[derive(Default)]
pub struct Jobs(Mutex<VecDeque<(String, Arc<Job>)>>);

impl Jobs {
    fn insert(&self, job: Job) -> String {
        let id = random_token();
        let mut jobs = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while jobs.len() >= KEPT {
            // Drop the oldest upload that is not importing; if every one is, the oldest.
            let idle = jobs.iter().position(|(_, j)| j.progress(|p| !p.started || p.done.is_some()));
            jobs.remove(idle.unwrap_or(0));
        }
        jobs.push_back((id.clone(), Arc::new(job)));
        id
    }

    /// The upload `id`, only for the person who uploaded it.
    fn get(&self, id: &str, session: &Session) -> Result<Arc<Job>, Error> {
        let jobs = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        jobs.iter()
            .find(|(k, j)| k == id && j.owner == session.sub)
            .map(|(_, j)| j.clone())
            .ok_or_else(|| Error::NotFound(format!("import {id}")))
    }
}

fn options(actor: &str) -> ImportOptions {
    ImportOptions { format: Some(Format::Csv), actor: actor.to_owned(), batch_size: BATCH, progress: false }
}

fn upload_form(lang: Lang, session: &Session, csv: &str, v: &[Violation]) -> Markup {
    html! {
        form.stack #import-form method="post" action="/import" {
            (hidden(session))
            label for="csv-file" { (lang.t("csv_file")) }
            // Read in the browser into the text area below (console.js); the text is what is sent.
            input #csv-file type="file" accept=".csv,text/csv" data-read-into="csv";
            label for="csv" { (lang.t("csv_text")) }
            textarea.mono #csv name="csv" rows="10" spellcheck="false" { (csv) }
            (field_errors(v, "csv"))
            p { button #preview type="submit" { (lang.t("dry_run")) } }
        }
        p.muted { (lang.t("import_format")) " " code { "docs/import-format.md" } }
    }
}

fn errors_table(lang: Lang, errors: &[RowError]) -> Markup {
    html! {
        @if !errors.is_empty() {
            table #row-errors {
                thead { tr { th.num { (lang.t("line")) } th { (lang.t("field")) } th { (lang.t("message")) } } }
                tbody { @for e in errors.iter().take(LISTED) {
                    tr.row-error data-line=(e.line) data-field=(e.field) { td.num { (e.line) } td { code { (e.field) } } td { (e.message) } }
                } }
            }
            @if errors.len() > LISTED { p.muted { (errors.len() - LISTED) " " (lang.t("more_errors")) } }
        }
    }
}

/// `GET /import`.
pub async fn form(session: Session, lang: Lang) -> PageResult {
    session.require(&[Role::Legal])?;
    let body = html! { h1 { (lang.t("import")) } (upload_form(lang, &session, "", &[])) };
    page(lang, &session, "import", StatusCode::OK, body)
}

/// `POST /import`: the dry run. Nothing is written; the upload is kept for the confirmation.
pub async fn preview(State(state): State<Arc<ConsoleState>>, session: Session, lang: Lang, body: Bytes) -> PageResult {
    session.require(&[Role::Legal])?;
    let f = posted(&session, &body)?;
    let csv = f.str("csv").replace("\r\n", "\n");
    let refused = |why: String| {
        let v = [Violation::new("csv", why)];
        let body = html! { h1 { (lang.t("import")) } p.flash.bad { (lang.t("fix_fields")) } (upload_form(lang, &session, &csv, &v)) };
        page(lang, &session, "import", StatusCode::BAD_REQUEST, body)
    };
    if csv.trim().is_empty() {
        return refused("must not be empty: choose a CSV file or paste its text".into());
    }
    let bytes = Bytes::from(csv.clone().into_bytes());
    let input = std::io::Cursor::new(bytes.clone());
    let report = match import_reader(None, Format::Csv, input, "the upload", &options(&session.sub), |_, _| {}).await {
        Ok(report) => report,
        Err(e) => return refused(format!("{e:#}")),
    };
    let bad_rows = report.failed_rows();
    let valid = report.rows.saturating_sub(bad_rows as u64);
    let id = state.imports.insert(Job {
        owner: session.sub.clone(),
        csv: bytes,
        total: report.rows,
        progress: Mutex::new(Progress::default()),
    });
    let body = html! {
        h1 { (lang.t("import")) " — " (lang.t("dry_run")) }
        p.flash #preview-summary {
            span #preview-rows { (report.rows) } " " (lang.t("rows")) ": "
            span #preview-valid { (valid) } " " (lang.t("valid")) ", "
            span #preview-bad { (bad_rows) } " " (lang.t("with_errors")) ". " (lang.t("nothing_written"))
        }
        (errors_table(lang, &report.errors))
        form.stack #confirm-form method="post" action={ "/import/" (id) "/run" } {
            (hidden(&session))
            @if bad_rows > 0 { p.muted { (lang.t("skipped_rows")) } }
            p.muted { (lang.t("registry_faults")) }
            p { button #confirm-import type="submit" disabled[valid == 0] { (lang.t("confirm_import")) } }
        }
        p { a href="/import" { "← " (lang.t("import")) } }
    };
    page(lang, &session, "import", StatusCode::OK, body)
}

/// `POST /import/{id}/run`: starts the import of a previewed upload, once.
pub async fn run(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    session.require(&[Role::Legal])?;
    posted(&session, &body)?;
    let job = state.imports.get(&id, &session)?;
    // A second confirmation (a double click, a re-post) watches the running import.
    if !job.progress(|p| std::mem::replace(&mut p.started, true)) {
        let (store, tlog, actor) = (state.store.clone(), state.tlog.clone(), session.sub.clone());
        let span = tracing::info_span!("console_import", %actor, rows = job.total);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let input = std::io::Cursor::new(job.csv.clone());
                let outcome =
                    import_reader(Some(&store), Format::Csv, input, "the upload", &options(&actor), |r, _| {
                        job.progress(|p| {
                            p.rows = r.rows;
                            p.errors = r.errors.len();
                        });
                    })
                    .await;
                if let (Ok(_), Some(tlog)) = (&outcome, &tlog) {
                    // A bulk load is a natural point for a checkpoint, as after ImportSellers.
                    tlog.registry.sign_soon();
                }
                job.progress(|p| p.done = Some(outcome.map_err(|e| format!("{e:#}"))));
            },
            span,
        ));
    }
    Ok(Redirect::to(&format!("/import/{id}")).into_response())
}

fn progress_fragment(lang: Lang, id: &str, job: &Job) -> Markup {
    job.progress(|p| {
        let url = format!("/import/{id}/progress");
        html! {
            @match &p.done {
                None => div #import-progress hx-get=(url) hx-trigger="every 500ms" hx-swap="outerHTML" {
                    p { (lang.t("importing")) " " span #rows-done { (p.rows) } " / " span #rows-total { (job.total) } " "
                        (lang.t("rows")) " · " span #errors-count { (p.errors) } " " (lang.t("errors")) }
                    progress max=(job.total.max(1)) value=(p.rows) {}
                },
                Some(Ok(r)) => div #import-progress {
                    p.flash #import-done { (lang.t("import_done")) " " (lang.t("revision")) " " span #import-revision { (r.revision) } }
                    p { span #rows-done { (r.rows) } " / " span #rows-total { (job.total) } " " (lang.t("rows")) " · "
                        (r.sellers_created) " + " (r.sellers_updated) " " (lang.t("sellers")) " · "
                        (r.attestations_created) " " (lang.t("contracts")) " · "
                        span #errors-count { (r.errors.len()) } " " (lang.t("errors")) }
                    (errors_table(lang, &r.errors))
                },
                Some(Err(why)) => div #import-progress { p.flash.bad #import-failed { (why) } },
            }
        }
    })
}

/// `GET /import/{id}`: the progress view.
pub async fn show(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
) -> PageResult {
    session.require(&[Role::Legal])?;
    let job = state.imports.get(&id, &session)?;
    let body = html! { h1 { (lang.t("import")) } (progress_fragment(lang, &id, &job)) p { a href="/import" { "← " (lang.t("import")) } } };
    page(lang, &session, "import", StatusCode::OK, body)
}

/// `GET /import/{id}/progress`: the fragment htmx polls.
pub async fn progress(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    Path(id): Path<String>,
) -> PageResult {
    session.require(&[Role::Legal])?;
    let job = state.imports.get(&id, &session)?;
    Ok(progress_fragment(lang, &id, &job).into_response())
}
