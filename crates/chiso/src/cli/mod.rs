//! The `chiso` command line.

pub mod assess;
pub mod common;
pub mod criteria;
pub mod report;
pub mod units;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chiso_auth::{Issuer, NATIONAL_SCOPE, Role};
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::assess::AssessCommand;
use crate::cli::criteria::CriteriaCommand;
use crate::cli::report::ReportCommand;
use crate::cli::units::UnitsClientCommand;
use crate::server as app;
use crate::server::config::{Config, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "chiso",
    version,
    about = "The system of record for provincial digital-transformation (CĐS) programmes"
)]
pub struct Cli {
    /// Configuration file (TOML); also CHISO_CONFIG.
    #[arg(long, global = true, env = "CHISO_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in one process on one address, with SQLite files in
    /// the data directory and Thanh Hóa's reference data loaded.
    Up(UpArgs),
    /// The units service: serve it, or query and import administrative units.
    Units {
        #[command(subcommand)]
        command: UnitsCommand,
    },
    /// The assessment service: criteria sets, assessments, review.
    Assessment {
        #[command(subcommand)]
        command: AssessmentCommand,
    },
    /// The reporting service: targets, progress, rankings.
    Reporting {
        #[command(subcommand)]
        command: ReportingCommand,
    },
    /// Criteria set files: check, publish, list and show.
    Criteria {
        #[command(subcommand)]
        command: CriteriaCommand,
    },
    /// A unit's yearly assessment: values, score, review and history.
    Assess {
        #[command(subcommand)]
        command: AssessCommand,
    },
    /// Progress against targets, scorecards, rankings, the weakest
    /// indicators and trends, from the reporting service.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Bring a service's database schema up to date.
    Migrate(MigrateArgs),
    /// Development tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

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

#[derive(Debug, Subcommand)]
pub enum UnitsCommand {
    /// Serve the units service alone (database from CHISO_DATABASE_URL).
    Serve {
        #[command(flatten)]
        server: ServerArgs,
        /// sqlite://… or postgres://… [default: units.db in the data directory].
        #[arg(long)]
        database_url: Option<String>,
    },
    #[command(flatten)]
    Client(UnitsClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum AssessmentCommand {
    /// Serve the assessment service alone (database from CHISO_DATABASE_URL;
    /// the units service from CHISO_UNITS__URL and CHISO_UNITS__TOKEN_FILE).
    Serve {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportingCommand {
    /// Serve the reporting service alone (database from CHISO_DATABASE_URL;
    /// the units service from CHISO_UNITS__URL, the assessment service from
    /// CHISO_ASSESSMENT__URL, both called with the token in
    /// CHISO_UNITS__TOKEN_FILE).
    Serve {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Service whose database to migrate.
    #[arg(long, default_value = "units", value_parser = app::SERVICES)]
    pub service: String,
    /// Database URL [default: CHISO_DATABASE_URL, else the data directory's SQLite file].
    #[arg(long)]
    pub database_url: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a token signed with the data directory's development key.
    Issue {
        #[arg(long, default_value = "chiso-data")]
        data_dir: PathBuf,
        /// Role (repeatable): submitter, reviewer, approver, admin, reader, service.
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// GSO code of the unit the token may act on, or VN for the whole country.
        #[arg(long)]
        scope: String,
        /// Name of the calling system.
        #[arg(long, default_value = "chiso-cli")]
        subject: String,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(UpArgs { server: args, demo }) => {
            let config = load(&cli.config, &args, None)?;
            if args.dump_config {
                print!("{}", config.to_toml()?);
                return Ok(());
            }
            let _telemetry = init_telemetry("chiso", &config)?;
            let shutdown = CancellationToken::new();
            chiso_server::shutdown_on_signal(shutdown.clone());
            let listener = bind(config.listen).await?;
            let embedded =
                app::open_embedded(&config.data_dir, &listener, shutdown.clone()).await?;
            let url = format!("http://{}", listener.local_addr()?);
            eprintln!(
                "chiso is up on {url} (data in {}). Try: chiso units ls --parent 38",
                config.data_dir.display()
            );
            if demo {
                let data_dir = config.data_dir.clone();
                let url = url.clone();
                tokio::spawn(async move {
                    match crate::server::demo::run(&url, &data_dir).await {
                        Ok(()) => eprintln!(
                            "demo data ready. Try: chiso report progress --scope 38 --year 2023"
                        ),
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
        Command::Units {
            command:
                UnitsCommand::Serve {
                    server,
                    database_url,
                },
        } => {
            let config = load(&cli.config, &server, database_url)?;
            if server.dump_config {
                print!("{}", config.to_toml()?);
                return Ok(());
            }
            let _telemetry = init_telemetry("chiso-units", &config)?;
            let shutdown = CancellationToken::new();
            chiso_server::shutdown_on_signal(shutdown.clone());
            let listener = bind(config.listen).await?;
            app::serve_units(&config, listener, shutdown).await
        }
        Command::Units {
            command: UnitsCommand::Client(command),
        } => command.run().await,
        Command::Assessment {
            command:
                AssessmentCommand::Serve {
                    server,
                    database_url,
                },
        } => {
            let config = load(&cli.config, &server, database_url)?;
            if server.dump_config {
                print!("{}", config.to_toml()?);
                return Ok(());
            }
            let _telemetry = init_telemetry("chiso-assessment", &config)?;
            let shutdown = CancellationToken::new();
            chiso_server::shutdown_on_signal(shutdown.clone());
            let listener = bind(config.listen).await?;
            app::serve_assessment(&config, listener, shutdown).await
        }
        Command::Reporting {
            command:
                ReportingCommand::Serve {
                    server,
                    database_url,
                },
        } => {
            let config = load(&cli.config, &server, database_url)?;
            if server.dump_config {
                print!("{}", config.to_toml()?);
                return Ok(());
            }
            let _telemetry = init_telemetry("chiso-reporting", &config)?;
            let shutdown = CancellationToken::new();
            chiso_server::shutdown_on_signal(shutdown.clone());
            let listener = bind(config.listen).await?;
            app::serve_reporting(&config, listener, shutdown).await
        }
        Command::Report { command } => command.run().await,
        Command::Criteria { command } => command.run().await,
        Command::Assess { command } => command.run().await,
        Command::Migrate(args) => {
            let overrides = Overrides {
                data_dir: args.data_dir,
                database_url: args.database_url,
                ..Overrides::default()
            };
            let config = Config::load(cli.config.as_deref(), &overrides)?;
            let url = config
                .database_url
                .clone()
                .unwrap_or_else(|| app::sqlite_url(&config.data_dir, &args.service));
            if url.starts_with("sqlite:") {
                std::fs::create_dir_all(&config.data_dir)?;
            }
            app::open_database(&args.service, &url).await?;
            eprintln!("{} database is up to date", args.service);
            Ok(())
        }
        Command::Token {
            command:
                TokenCommand::Issue {
                    data_dir,
                    roles,
                    scope,
                    subject,
                    ttl_hours,
                },
        } => {
            anyhow::ensure!(
                chiso_domain::Scope::parse(&scope).is_ok(),
                "--scope {scope:?} is neither a GSO code nor {NATIONAL_SCOPE}"
            );
            let secret = chiso_auth::dev_secret(&data_dir)?;
            let token = Issuer::hs256(&secret).issue(
                &subject,
                &roles,
                &scope,
                Duration::from_secs(ttl_hours * 3600),
            )?;
            println!("{token}");
            Ok(())
        }
    }
}

fn load(
    file: &Option<PathBuf>,
    args: &ServerArgs,
    database_url: Option<String>,
) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        database_url,
    };
    Config::load(file.as_deref(), &overrides)
}

fn init_telemetry(
    service: &str,
    config: &Config,
) -> anyhow::Result<chiso_telemetry::TelemetryGuard> {
    let format = config.log.format.parse().map_err(anyhow::Error::msg)?;
    chiso_telemetry::init(service, format, &config.log.filter)
}

async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}
