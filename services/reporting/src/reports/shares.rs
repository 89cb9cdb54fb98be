//! The indicator breakdown: for each indicator, the share of the counted
//! units that met it, weakest first.

use std::collections::{BTreeMap, HashSet};

use chiso_proto::reporting::v1 as pb;

use crate::projection::AssessmentState;

pub fn indicator_shares(
    states: Vec<AssessmentState>,
    units: &HashSet<i64>,
) -> Vec<pb::IndicatorShare> {
    let mut shares: BTreeMap<String, pb::IndicatorShare> = BTreeMap::new();
    for s in states {
        if !units.contains(&s.event.unit_id) {
            continue;
        }
        for ind in s.event.scorecard.iter().flat_map(|c| &c.indicators) {
            let share = shares
                .entry(ind.code.clone())
                .or_insert_with(|| pb::IndicatorShare {
                    code: ind.code.clone(),
                    name: ind.name.clone(),
                    group_code: ind.group_code.clone(),
                    mandatory: ind.mandatory,
                    ..Default::default()
                });
            share.units += 1;
            share.met += i32::from(ind.met);
        }
    }
    let mut indicators: Vec<pb::IndicatorShare> = shares
        .into_values()
        .map(|mut s| {
            s.share_percent = 100.0 * f64::from(s.met) / f64::from(s.units.max(1));
            s
        })
        .collect();
    indicators.sort_by(|a, b| {
        a.share_percent
            .total_cmp(&b.share_percent)
            .then_with(|| a.code.cmp(&b.code))
    });
    indicators
}
