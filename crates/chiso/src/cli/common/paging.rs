//! Lists the server answers in pages, read to the end.

use chiso_proto::assessment::v1::{self as pb, criteria_service_client::CriteriaServiceClient};
use chiso_proto::units::v1::UnitLevel;

use super::client::{AuthedChannel, explain};

/// The page size the commands ask for.
pub const PAGE_SIZE: i32 = 1000;

/// Every item of a list: `page` fetches the page a token names and returns
/// its items and the next token (empty after the last page).
pub async fn every_page<T>(
    mut page: impl AsyncFnMut(String) -> Result<(Vec<T>, String), tonic::Status>,
) -> anyhow::Result<Vec<T>> {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let (more, next) = page(token).await.map_err(explain)?;
        items.extend(more);
        if next.is_empty() {
            return Ok(items);
        }
        token = next;
    }
}

/// Every criteria set matching.
pub async fn list_sets(
    api: &mut CriteriaServiceClient<AuthedChannel>,
    level: UnitLevel,
    year: i32,
    include_drafts: bool,
) -> anyhow::Result<Vec<pb::CriteriaSet>> {
    every_page(async |page_token| {
        let page = api
            .list_criteria_sets(pb::ListCriteriaSetsRequest {
                level: level as i32,
                year,
                include_drafts,
                page_size: PAGE_SIZE,
                page_token,
            })
            .await?
            .into_inner();
        Ok((page.criteria_sets, page.next_page_token))
    })
    .await
}
