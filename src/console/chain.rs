//! The chain page: every hash link of the log recomputed, the latest signed checkpoint of the
//! registry log and of the decision log (origin, tree size, root, and the signed note to keep),
//! and the check of today's
//! log against a checkpoint an auditor kept, with the same code as VerifyAuditChain's trusted
//! checkpoint ([`crate::audit::check_trusted`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use maud::{Markup, html};

use super::ConsoleState;
use super::forms::{hidden, posted};
use super::page::{PageResult, field_errors, html_page, shell};
use super::session::Session;
use super::text::Lang;
use crate::audit::TrustedCheck;
use crate::auth::Role;
use crate::domain::Violation;
use crate::error::Error;
use crate::store::merkle::{DECISIONS_LOG, REGISTRY_LOG};
use crate::tlog::Signed;

/// The latest checkpoint, signing one first if the log grew (as GetCheckpoint does); the error
/// when the log no longer extends the last checkpoint, which is itself what an auditor must see.
async fn latest(state: &ConsoleState, log: &str) -> Option<Result<Arc<Signed>, String>> {
    let tlog = state.tlog.as_ref()?.get(log)?;
    Some(tlog.sign_now().await.map_err(|e| e.to_string()))
}

/// What the check of a kept checkpoint found: its result, or why the note was refused.
enum Checked {
    Nothing,
    Refused(Vec<Violation>),
    Done(TrustedCheck),
}

async fn page(state: &ConsoleState, session: &Session, lang: Lang, note: &str, checked: Checked) -> PageResult {
    let report = state.store.verify_chain(1000).await?;
    let registry = latest(state, REGISTRY_LOG).await;
    let decisions = latest(state, DECISIONS_LOG).await;
    let body = html! {
        h1 { (lang.t("chain")) }
        @if report.ok { p.flash #chain-ok { (lang.t("chain_ok")) } } @else {
            p.flash.bad #chain-broken { (lang.t("chain_broken")) ": " (report.first_broken_revision) " — " (report.problem) }
        }
        table { tbody {
            tr { th { (lang.t("revision")) } td { (report.head_revision) } }
            tr { th { "head" } td.mono { (report.head_hash) } }
            tr { th { "events" } td { (report.events_checked) } }
        } }
        h2 { (lang.t("checkpoints")) }
        (checkpoint(lang, REGISTRY_LOG, "checkpoint", registry))
        (checkpoint(lang, DECISIONS_LOG, "decisions-checkpoint", decisions))
        h2 { (lang.t("check_kept")) }
        (result(lang, &checked))
        form.stack #trusted-form method="post" action="/audit/chain" {
            (hidden(session))
            label for="note" { (lang.t("kept_checkpoint")) }
            textarea #note name="note" rows="6" { (note) }
            @if let Checked::Refused(v) = &checked { (field_errors(v, "note")) }
            p { button #check-trusted type="submit" { (lang.t("check")) } }
        }
    };
    Ok(html_page(shell(lang, Some(session), lang.t("chain"), body)))
}

/// One log's latest checkpoint; element ids start with `id` (`checkpoint`, `checkpoint-size`, …).
fn checkpoint(lang: Lang, log: &str, id: &str, latest: Option<Result<Arc<Signed>, String>>) -> Markup {
    let el = |suffix: &str| if suffix.is_empty() { id.to_owned() } else { format!("{id}-{suffix}") };
    match latest {
        None if log == REGISTRY_LOG => html! { p.muted #no-checkpoints { (lang.t("checkpoints_off")) } },
        None => html! {},
        Some(Err(why)) => html! { p.flash.bad id=(el("error")) { (why) } },
        Some(Ok(s)) => html! {
            table id=(el("")) { tbody {
                tr { th { "log" } td { (log) } }
                tr { th { "origin" } td id=(el("origin")) { (s.checkpoint.origin) } }
                tr { th { (lang.t("tree_size")) } td id=(el("size")) { (s.checkpoint.size) } }
                tr { th { "root" } td.mono id=(el("root")) { (hex::encode(s.checkpoint.root)) } }
            } }
            pre.mono id=(el("note")) { (s.note) }
            p { a id=(format!("download-{id}")) href=(format!("/audit/checkpoint.txt?log={log}")) {
                (lang.t("download")) " " (log) " checkpoint.txt" } }
        },
    }
}

fn result(lang: Lang, checked: &Checked) -> Markup {
    match checked {
        Checked::Done(c) if c.consistent => html! {
            p.flash #trusted-consistent { (lang.t("consistent")) " (" (c.size) ")" }
        },
        Checked::Done(c) => html! {
            p.flash.bad #trusted-inconsistent { (lang.t("inconsistent")) ": " (c.problem)
                @if let Some(r) = c.first_bad { " — " (lang.t("revision")) " " (r) } }
        },
        _ => html! {},
    }
}

/// `GET /audit/chain`.
pub async fn show(State(state): State<Arc<ConsoleState>>, session: Session, lang: Lang) -> PageResult {
    session.require(&[Role::Auditor])?;
    page(&state, &session, lang, "", Checked::Nothing).await
}

/// `POST /audit/chain`: checks today's log against the pasted checkpoint. A note that does not
/// verify, or is for another log, is shown next to the field; it never counts as consistent.
pub async fn check(State(state): State<Arc<ConsoleState>>, session: Session, lang: Lang, body: Bytes) -> PageResult {
    session.require(&[Role::Auditor])?;
    let f = posted(&session, &body)?;
    // A pasted note often loses its final newline (and gains CRs); a signed note ends with one.
    let mut note = f.str("note").replace("\r\n", "\n");
    if !note.ends_with('\n') {
        note.push('\n');
    }
    let tlog =
        state.tlog.as_ref().map(|t| &t.registry).ok_or_else(|| {
            Error::FailedPrecondition("checkpoints are off on this server (audit.checkpoints)".into())
        })?;
    let checked = match crate::audit::check_trusted(&state.store, tlog, &note, "note").await {
        Ok(c) => Checked::Done(c),
        Err(Error::Invalid(v)) => Checked::Refused(v),
        Err(e) => return Err(e.into()),
    };
    page(&state, &session, lang, &note, checked).await
}

/// `GET /audit/checkpoint.txt?log=registry|decisions`: the latest signed note, verbatim, to keep.
pub async fn download_checkpoint(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> PageResult {
    session.require(&[Role::Auditor])?;
    let f = super::page::Fields::query(q.as_deref());
    let log = match f.str("log") {
        "" | REGISTRY_LOG => REGISTRY_LOG,
        DECISIONS_LOG => DECISIONS_LOG,
        other => return Err(Error::invalid("log", format!("unknown log {other:?}")).into()),
    };
    let signed = match latest(&state, log).await {
        None => return Err(Error::FailedPrecondition("checkpoints are off on this server".into()).into()),
        Some(Err(why)) => return Err(Error::FailedPrecondition(why).into()),
        Some(Ok(s)) => s,
    };
    Ok(super::audit::download(
        "text/plain; charset=utf-8",
        "attachment; filename=\"checkpoint.txt\"",
        signed.note.clone(),
    ))
}
