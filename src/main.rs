//! The `safeguard` command: serve, migrate, token.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use safeguard::auth::Role;
use safeguard::auth::keys::mint_hs256;
use safeguard::auth::secret::resolve_hs256_secret;
use safeguard::config::Settings;
use safeguard::startup::{App, connect_store};

#[derive(Parser)]
#[command(name = "safeguard", version, about = "Decides whether a buyer's personal data may go to a foreign seller.")]
struct Cli {
    /// A TOML settings file (below SAFEGUARD__SECTION__KEY environment variables and flags).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database URL (overrides database.url).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC service.
    Serve {
        /// Listen address (overrides server.listen_addr).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration (defaults < file < environment < flags), secrets redacted.
    Config,
    /// Exit 0 if the server at ADDR reports SERVING on grpc.health.v1 (for container health checks).
    Healthcheck {
        /// The server's gRPC URL.
        #[arg(long, default_value = "http://127.0.0.1:50051", value_name = "URL")]
        addr: String,
        /// The service to ask about; empty: the server as a whole.
        #[arg(long, default_value = "", value_name = "NAME")]
        service: String,
    },
    /// Print a token signed with the configured HS256 secret.
    Token {
        /// checkout, legal, auditor or admin; repeat for several.
        #[arg(long = "role", required = true, value_name = "ROLE")]
        roles: Vec<String>,
        /// The subject: recorded as the actor of registry writes.
        #[arg(long, value_name = "NAME")]
        sub: String,
        /// Lifetime: a number with s, m, h or d (1h, 30m, 7d).
        #[arg(long, default_value = "1h", value_name = "DURATION")]
        ttl: String,
        /// Print a console sign-in link instead of the bare token, for local use. The token rides
        /// in the URL's fragment, which browsers never send to a server or write to its logs.
        #[arg(long)]
        link: bool,
    },
    /// Load sellers and attestations from a CSV or JSON Lines file (docs/import-format.md).
    Import(safeguard::cli::ImportArgs),
    /// Write the registry's sellers and active attestations in an import format.
    Export(safeguard::cli::ExportArgs),
    /// Write synthetic sellers and attestations for demos and benchmarks.
    Generate(safeguard::cli::GenerateArgs),
    /// Write the recipient register: every active seller that may receive buyer data now, with
    /// what it may receive per purpose (as ExportRecipientRegister answers; no server needed).
    Register(safeguard::cli::RegisterArgs),
    /// Export the verifiable log, or verify an export or a tlog-proof offline (docs/verifiable-log.md).
    Audit(safeguard::cli::AuditArgs),
}

fn parse_ttl(raw: &str) -> anyhow::Result<u64> {
    let (digits, unit) = raw.split_at(raw.len().saturating_sub(1));
    let n: u64 = digits.parse().with_context(|| format!("--ttl {raw:?}: expected a number and s, m, h or d"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--ttl {raw:?}: expected a number and s, m, h or d"),
    };
    anyhow::ensure!(seconds > 0, "--ttl must be positive");
    Ok(seconds)
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(url) = &cli.database_url {
        settings.database.url = url.clone();
    }
    if let Command::Serve { listen: Some(addr) } = &cli.command {
        settings.server.listen_addr = *addr;
    }
    settings.validate()?;
    Ok(settings)
}

async fn healthcheck(addr: String, service: String) -> anyhow::Result<()> {
    safeguard::grpc::health::check(addr, service).await?;
    println!("SERVING");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Per-thread free lists instead of glibc's arenas: see Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = settings(&cli)?;
    safeguard::telemetry::init_tracing(settings.log.format, &settings.log.level);
    match cli.command {
        Command::Serve { .. } => {
            let app = App::build(settings).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Healthcheck { addr, service } => healthcheck(addr, service).await,
        Command::Config => {
            print!("{}", toml::to_string(&settings.redacted())?);
            Ok(())
        }
        Command::Migrate => {
            let store = connect_store(&settings).await?;
            store.migrate().await.context("migration failed")?;
            let (revision, _) = store.head().await?;
            eprintln!("migrations applied; registry at revision {revision}");
            Ok(())
        }
        Command::Token { roles, sub, ttl, link } => {
            let roles = roles
                .iter()
                .map(|r| {
                    Role::parse(r).with_context(|| format!("unknown role {r:?}: use checkout, legal, auditor or admin"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let secret = resolve_hs256_secret(&settings, true)?.context(
                "no HS256 secret is configured: tokens for public-key algorithms come from your identity provider",
            )?;
            let auth = &settings.auth;
            let token =
                mint_hs256(&secret, &sub, &roles, parse_ttl(&ttl)?, auth.issuer.as_deref(), auth.audience.as_deref())?;
            if link {
                println!("{}", safeguard::console::sign_in_link(settings.console.listen_addr, &token));
            } else {
                println!("{token}");
            }
            Ok(())
        }
        Command::Import(args) => safeguard::cli::run_import(&settings, args).await,
        Command::Export(args) => safeguard::cli::run_export(&settings, args).await,
        Command::Generate(args) => safeguard::cli::run_generate(args).await,
        Command::Register(args) => safeguard::cli::run_register(&settings, args).await,
        Command::Audit(args) => safeguard::cli::run_audit(&settings, args).await,
    }
}
