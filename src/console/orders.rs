//! Suspension orders (PIPA 28-9): the list, issuing one for a seller or a country, and lifting
//! one with a reason, validated by the domain's order validator.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use http::StatusCode;
use maud::html;
use tracing::Instrument;

use super::ConsoleState;
use super::dashboard::scope;
use super::forms::{checkboxes, hidden, page, posted, request_id, text_input};
use super::page::{Fields, PageResult, field_errors, when};
use super::session::Session;
use super::text::Lang;
use crate::auth::Role;
use crate::domain::input::{self, SuspensionOrderInput};
use crate::domain::{DataCategory, Violation, Vocab};
use crate::error::Error;

/// `GET /orders`: every suspension order, and (for legal) the form to issue one.
pub async fn orders(State(state): State<Arc<ConsoleState>>, session: Session, lang: Lang) -> PageResult {
    orders_page(&state, &session, lang, &Fields::default(), &[], StatusCode::OK).await
}

async fn orders_page(
    state: &ConsoleState,
    session: &Session,
    lang: Lang,
    f: &Fields,
    v: &[Violation],
    status: StatusCode,
) -> PageResult {
    session.require(&[Role::Legal, Role::Auditor])?;
    let all = state.store.list_suspension_orders(true).await?;
    let body = html! {
        h1 { (lang.t("orders")) }
        table #order-list { tbody { @for o in &all {
            tr { td { strong { (o.order_ref) } } td { (scope(&o.scope)) } td { @for c in &o.categories { code { (c.name()) } " " } }
                td { (when(o.effective_time)) } td { @if o.lifted { span.badge { "lifted" } " " (o.lift_reason) } @else {
                    @if session.can(&[Role::Legal]) {
                        form.inline method="post" action={ "/orders/" (o.order_id) "/lift" } {
                            (hidden(session))
                            input type="text" name="reason" placeholder=(lang.t("reason")) required;
                            button type="submit" { (lang.t("lift")) }
                        }
                    }
                } } }
        } } }
        @if session.can(&[Role::Legal]) {
            h2 { (lang.t("create_order")) }
            form.stack #order-form method="post" action="/orders" {
                (hidden(session))
                (text_input(lang, v, "order_ref", f.str("order_ref"), "text"))
                (text_input(lang, v, "scope", f.str("scope"), "text"))
                (field_errors(v, "seller_id")) (field_errors(v, "country"))
                (checkboxes::<DataCategory>(lang, v, "categories", f, &[]))
                (text_input(lang, v, "note", f.str("note"), "text"))
                p { button type="submit" { (lang.t("create")) } }
            }
        }
    };
    page(lang, session, "orders", status, body)
}

/// `POST /orders`: the scope is a country when it is two capital letters, else a seller id.
pub async fn create_order(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    lang: Lang,
    body: Bytes,
) -> PageResult {
    session.require(&[Role::Legal])?;
    let f = posted(&session, &body)?;
    let request_id = request_id(&f)?;
    let target = f.str("scope").trim();
    let is_country = target.len() == 2 && target.bytes().all(|b| b.is_ascii_uppercase());
    let o = SuspensionOrderInput {
        order_ref: f.str("order_ref").to_owned(),
        seller_id: if is_country { String::new() } else { target.to_owned() },
        country: if is_country { target.to_owned() } else { String::new() },
        categories: f
            .all("categories")
            .into_iter()
            .map(|n| DataCategory::from_name(n).map_or(-1, Vocab::number))
            .collect(),
        note: f.str("note").to_owned(),
        effective_time: None,
    };
    let fields = match o.validate("") {
        Ok(fields) => fields,
        Err(v) => return orders_page(&state, &session, lang, &f, &v, StatusCode::BAD_REQUEST).await,
    };
    let span = tracing::info_span!("console_create_order", actor = %session.sub);
    state.store.create_suspension_order(&session.sub, request_id.as_deref(), fields).instrument(span).await?;
    Ok(Redirect::to("/orders").into_response())
}

/// `POST /orders/{id}/lift`.
pub async fn lift_order(
    State(state): State<Arc<ConsoleState>>,
    session: Session,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    session.require(&[Role::Legal])?;
    let f = posted(&session, &body)?;
    let request_id = request_id(&f)?;
    let (id, reason) = input::id_and_reason(&id, "order_id", f.str("reason")).map_err(Error::Invalid)?;
    state.store.lift_suspension_order(&session.sub, request_id.as_deref(), &id, &reason).await?;
    Ok(Redirect::to("/orders").into_response())
}
