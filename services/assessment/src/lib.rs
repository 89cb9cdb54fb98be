//! The assessment service: criteria sets, unit assessments against them,
//! review, and scores. The pure criteria rules it applies live in
//! `chiso_criteria`.

pub mod assessments;
mod convert;
pub mod repo;
mod service;
pub mod units_client;
pub mod workflow;

pub use assessments::{AssessmentError, Assessments};
pub use repo::MIGRATIONS;
pub use workflow::Review;

/// Stores and publishes the shipped criteria sets that are not there yet;
/// returns how many were published.
pub async fn publish_defaults(repo: &repo::Repo) -> Result<usize, chiso_server::ApiError> {
    let mut published = 0;
    for set in chiso_criteria::defaults() {
        match repo.get_set(None, &set.id, set.version).await? {
            Some(stored) if stored.state == repo::SetState::Published => continue,
            _ => {}
        }
        assessments::draft_set(repo, &set, &chiso_criteria::to_toml(&set), "chiso defaults")
            .await?;
        assessments::publish_set(repo, &set.id, set.version, "").await?;
        published += 1;
    }
    Ok(published)
}
