//! `chiso up`, `chiso <service> serve` and `chiso migrate`: the commands
//! that run servers or touch their databases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::config::{Config, Overrides};
use crate::server::{self, Service};

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Fill 2022–2024 with a synthetic, clearly labelled demo data set
    /// (through the API, once), then keep serving.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Data directory [default: ./chiso-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    pub dump_config: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Service whose database to migrate.
    #[arg(long, value_enum, default_value = "units")]
    pub service: Service,
    /// Database URL [default: CHISO_DATABASE_URL, else the data directory's SQLite file].
    #[arg(long)]
    pub database_url: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// A server's start: the configuration (or its dump), telemetry, the
/// signal that stops it and its listener.
struct Start {
    config: Config,
    shutdown: CancellationToken,
    listener: TcpListener,
    _telemetry: chiso_telemetry::TelemetryGuard,
}

/// `None` when the configuration was only to be printed.
async fn start(
    file: Option<&Path>,
    args: &ServerArgs,
    database_url: Option<String>,
    telemetry_name: &str,
) -> anyhow::Result<Option<Start>> {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        database_url,
    };
    let config = Config::load(file, &overrides)?;
    if args.dump_config {
        print!("{}", config.to_toml()?);
        return Ok(None);
    }
    let telemetry = chiso_telemetry::init(telemetry_name, config.log.format, &config.log.filter)?;
    let shutdown = CancellationToken::new();
    chiso_server::shutdown_on_signal(shutdown.clone());
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    Ok(Some(Start {
        config,
        shutdown,
        listener,
        _telemetry: telemetry,
    }))
}

pub async fn up(file: Option<&Path>, UpArgs { server: args, demo }: UpArgs) -> anyhow::Result<()> {
    let Some(Start {
        config,
        shutdown,
        listener,
        _telemetry,
    }) = start(file, &args, None, "chiso").await?
    else {
        return Ok(());
    };
    let embedded = server::open_embedded(&config.data_dir, &listener, shutdown.clone()).await?;
    let url = format!("http://{}", listener.local_addr()?);
    eprintln!(
        "chiso is up on {url} (data in {}). Try: chiso units ls --parent 38",
        config.data_dir.display()
    );
    if demo {
        let data_dir = config.data_dir.clone();
        let url = url.clone();
        tokio::spawn(async move {
            match server::demo::run(&url, &data_dir).await {
                Ok(()) => {
                    eprintln!("demo data ready. Try: chiso report progress --scope 38 --year 2023")
                }
                Err(err) => eprintln!("demo data failed: {err:#}"),
            }
        });
    }
    embedded
        .serve(
            listener,
            shutdown,
            Duration::from_secs(config.shutdown_grace_secs),
        )
        .await
}

pub async fn serve(
    service: Service,
    file: Option<&Path>,
    args: ServerArgs,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let telemetry_name = format!("chiso-{}", service.name());
    let Some(Start {
        config,
        shutdown,
        listener,
        _telemetry,
    }) = start(file, &args, database_url, &telemetry_name).await?
    else {
        return Ok(());
    };
    server::serve(service, &config, listener, shutdown).await
}

pub async fn migrate(file: Option<&Path>, args: MigrateArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        data_dir: args.data_dir,
        database_url: args.database_url,
        ..Overrides::default()
    };
    let config = Config::load(file, &overrides)?;
    let url = server::database_url(&config, args.service);
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    server::open_database(args.service, &url).await?;
    eprintln!("{} database is up to date", args.service.name());
    Ok(())
}
