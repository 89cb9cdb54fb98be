//! The `chiso` command line. Each command lives in a module of its own and
//! shares only `common` with the others.

pub mod assess;
pub mod common;
pub mod criteria;
pub mod report;
pub mod serve;
pub mod token;
pub mod units;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use assess::AssessCommand;
use criteria::CriteriaCommand;
use report::ReportCommand;
use serve::{MigrateArgs, ServerArgs, UpArgs};
use token::TokenCommand;
use units::UnitsClientCommand;

use crate::server::Service;

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

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Up(args) => serve::up(config, args).await,
        Command::Units {
            command:
                UnitsCommand::Serve {
                    server,
                    database_url,
                },
        } => serve::serve(Service::Units, config, server, database_url).await,
        Command::Units {
            command: UnitsCommand::Client(command),
        } => command.run().await,
        Command::Assessment {
            command:
                AssessmentCommand::Serve {
                    server,
                    database_url,
                },
        } => serve::serve(Service::Assessment, config, server, database_url).await,
        Command::Reporting {
            command:
                ReportingCommand::Serve {
                    server,
                    database_url,
                },
        } => serve::serve(Service::Reporting, config, server, database_url).await,
        Command::Report { command } => command.run().await,
        Command::Criteria { command } => command.run().await,
        Command::Assess { command } => command.run().await,
        Command::Migrate(args) => serve::migrate(config, args).await,
        Command::Token { command } => command.run(),
    }
}
