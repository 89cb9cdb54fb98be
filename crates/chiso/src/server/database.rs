//! Each service's database: where `chiso up` keeps it, and opening it with
//! its schema up to date.

use std::path::Path;

use anyhow::Context;
use chiso_storage::{Db, Migrations};
use clap::ValueEnum;

/// A service with a database of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    Units,
    Assessment,
    Reporting,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Units => "units",
            Service::Assessment => "assessment",
            Service::Reporting => "reporting",
        }
    }

    fn migrations(self) -> &'static Migrations {
        match self {
            Service::Units => &chiso_units::MIGRATIONS,
            Service::Assessment => &chiso_assessment::MIGRATIONS,
            Service::Reporting => &chiso_reporting::MIGRATIONS,
        }
    }
}

/// The SQLite URL of a service's file in a data directory.
pub fn sqlite_url(data_dir: &Path, service: Service) -> String {
    format!(
        "sqlite://{}",
        data_dir.join(format!("{}.db", service.name())).display()
    )
}

/// Opens (creating and migrating) a service's database.
pub async fn open_database(service: Service, url: &str) -> anyhow::Result<Db> {
    let name = service.name();
    let db = Db::connect(url)
        .await
        .with_context(|| format!("cannot open the {name} database"))?;
    db.migrate(service.migrations())
        .await
        .with_context(|| format!("{name} migrations failed"))?;
    Ok(db)
}
