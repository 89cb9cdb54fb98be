//! `chiso token issue`: development tokens.

use std::path::PathBuf;
use std::time::Duration;

use chiso_auth::{Issuer, NATIONAL_SCOPE, Role};
use clap::Subcommand;

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

impl TokenCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let TokenCommand::Issue {
            data_dir,
            roles,
            scope,
            subject,
            ttl_hours,
        } = self;
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
