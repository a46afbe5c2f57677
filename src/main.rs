//! The `safeguard` command: serve, migrate.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let settings = settings(&cli)?;
    match cli.command {
        Command::Serve { .. } => {
            let app = App::build(settings).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            let store = connect_store(&settings).await?;
            store.migrate().await.context("migration failed")?;
            let (revision, _) = store.head().await?;
            eprintln!("migrations applied; registry at revision {revision}");
            Ok(())
        }
    }
}
