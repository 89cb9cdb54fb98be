//! Rankings of the counted units by points, in total or in one group.

use std::collections::HashSet;

use chiso_proto::assessment::v1::AssessmentStatus;
use chiso_proto::reporting::v1 as pb;

use crate::projection::AssessmentState;

/// What a ranking ranks: which units, by which points.
pub struct RankingQuery<'a> {
    pub units: &'a HashSet<i64>,
    /// A group's code, or empty for the total.
    pub group: &'a str,
    pub approved_only: bool,
}

/// The units' assessments ranked by points, highest first; ties by code.
pub fn rank(states: Vec<AssessmentState>, query: &RankingQuery<'_>) -> Vec<pb::RankingEntry> {
    let mut entries: Vec<pb::RankingEntry> = states
        .into_iter()
        .filter(|s| query.units.contains(&s.event.unit_id))
        .filter(|s| !query.approved_only || s.event.status == AssessmentStatus::Approved as i32)
        .map(|s| {
            let card = s.event.scorecard.unwrap_or_default();
            let (points, max_points) = if query.group.is_empty() {
                (card.total_points, card.max_points)
            } else {
                card.groups
                    .iter()
                    .find(|g| g.code == query.group)
                    .map_or((0.0, 0.0), |g| (g.points, g.max_points))
            };
            pb::RankingEntry {
                rank: 0,
                unit_code: s.event.unit_code,
                unit_name: s.event.unit_name,
                points,
                max_points,
                complete: card.complete,
                status: s.event.status,
            }
        })
        .collect();
    entries.sort_by(|a, b| {
        b.points
            .total_cmp(&a.points)
            .then_with(|| a.unit_code.cmp(&b.unit_code))
    });
    // Competition ranking: equal points share a rank, the next rank skips.
    for i in 0..entries.len() {
        entries[i].rank = if i > 0 && entries[i].points == entries[i - 1].points {
            entries[i - 1].rank
        } else {
            i as i32 + 1
        };
    }
    entries
}
