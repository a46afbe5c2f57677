//! The console: server-rendered pages for legal and auditors, and the public recipient register,
//! on their own listener beside gRPC. Pages call the same store, snapshot and domain code the gRPC
//! handlers call (never gRPC itself), and authorize with the same roles: legal writes, auditors read
//! and audit, admins do everything, and a checkout-only token cannot sign in.
//!
//! # Layout
//! - [`session`]: the signed session cookie and CSRF tokens; [`text`]: English and Korean labels.
//! - [`page`]: the page shell, security headers, form parsing and error pages.
//! - [`dashboard`], [`sellers`], [`forms`], [`attest`], [`orders`], [`audit`], [`chain`], [`explain`],
//!   [`supervision`], [`import`]: the signed-in
//!   screens.
//! - [`recipients`]: the public PIPA 28-8(2) register at `/recipients`.
//! - [`signin`]: signing in with a pasted token, and out.

pub mod attest;
pub mod audit;
pub mod chain;
pub mod dashboard;
pub mod explain;
pub mod forms;
pub mod import;
pub mod orders;
pub mod page;
pub mod recipients;
pub mod sellers;
pub mod session;
pub mod signin;
pub mod supervision;
pub mod text;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::auth::keys::Verifier;
use crate::snapshot::Registry;
use crate::store::Store;

/// What every console handler shares.
pub struct ConsoleState {
    pub store: Store,
    pub registry: Arc<Registry>,
    /// The same verifier the gRPC auth layer uses; `None` when authentication is disabled, and
    /// then nobody can sign in (the console never runs open).
    pub verifier: Option<Verifier>,
    pub key: session::SessionKey,
    /// Cookies get `Secure` when the service is configured with TLS.
    pub secure_cookies: bool,
    /// The public register, computed once per registry revision.
    pub register: recipients::Cache,
    /// The checkpoint signer (`None` with checkpoints off).
    pub tlog: Option<crate::tlog::Tlogs>,
    /// Previewed CSV uploads and their imports.
    pub imports: import::Jobs,
}

/// A bound, not yet serving console.
pub struct Console {
    listener: TcpListener,
    state: Arc<ConsoleState>,
}

impl Console {
    /// Binds `addr` for `state`.
    pub async fn bind(addr: SocketAddr, state: ConsoleState) -> std::io::Result<Self> {
        Ok(Self { listener: TcpListener::bind(addr).await?, state: Arc::new(state) })
    }

    /// Where the console listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(addr = ?self.local_addr(), "console serving");
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            if let Err(e) = state.register.warm(&state.registry).await {
                tracing::warn!(error = %e, "cannot compute the recipient register");
            }
        });
        axum::serve(self.listener, router(self.state)).with_graceful_shutdown(shutdown).await
    }
}

/// Every route of the console.
pub fn router(state: Arc<ConsoleState>) -> Router {
    Router::new()
        .route("/", get(dashboard::show))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::sign_out))
        .route("/lang", get(signin::switch_language))
        .route("/sellers", get(sellers::list))
        .route("/sellers/new", get(forms::new_seller).post(forms::create_seller))
        .route("/sellers/{id}", get(sellers::detail))
        .route("/sellers/{id}/try", get(sellers::try_checkout))
        .route("/sellers/{id}/asof", get(audit::seller_as_of))
        .route("/sellers/{id}/edit", get(forms::edit_seller).post(forms::update_seller))
        .route("/sellers/{id}/attest", get(attest::new_attestation).post(attest::submit_attestation))
        .route("/sellers/{id}/supervision", post(supervision::record))
        .route("/attestations/{id}/revoke", post(attest::revoke))
        .route("/import", get(import::form).post(import::preview).layer(DefaultBodyLimit::max(import::MAX_UPLOAD)))
        .route("/import/{id}", get(import::show))
        .route("/import/{id}/run", post(import::run))
        .route("/import/{id}/progress", get(import::progress))
        .route("/orders", get(orders::orders).post(orders::create_order))
        .route("/orders/{id}/lift", post(orders::lift_order))
        .route("/audit", get(audit::feed))
        .route("/audit/chain", get(chain::show).post(chain::check))
        .route("/audit/checkpoint.txt", get(chain::download_checkpoint))
        .route("/audit/decisions", get(audit::decisions))
        .route("/audit/decisions/{id}", get(explain::show))
        .route("/audit/register.csv", get(audit::register_csv))
        .route("/audit/register.json", get(audit::register_json))
        .route("/recipients", get(recipients::show))
        .route("/assets/htmx.min.js", get(page::htmx))
        .route("/assets/console.js", get(page::script))
        .route("/assets/console.css", get(page::style))
        .layer(axum::middleware::map_response(page::security_headers))
        .with_state(state)
}

/// A sign-in link to the console at `addr` for `token` (`safeguard token --link`): the token is in
/// the fragment, which the console's script moves into the sign-in form. An unspecified listen
/// address (0.0.0.0) is shown as loopback, where a local browser reaches it.
pub fn sign_in_link(addr: SocketAddr, token: &str) -> String {
    let host = if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
    format!("http://{host}/signin#token={token}")
}
