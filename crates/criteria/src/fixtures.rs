//! Sets for unit tests that care about their indicators only.

use crate::model::{Completion, CriteriaSet, Group, Indicator, Level};

/// A province set `th-test` with one group, every mandatory indicator
/// required and no points rule.
pub fn one_group_set(version: u32, group: (&str, &str), indicators: Vec<Indicator>) -> CriteriaSet {
    CriteriaSet {
        id: "th-test".into(),
        version,
        title: "t".into(),
        level: Level::Province,
        years: vec![2025],
        source: "s".into(),
        notes: String::new(),
        groups: vec![Group {
            code: group.0.into(),
            name: group.1.into(),
            indicators,
        }],
        completion: Completion {
            all_mandatory: true,
            min_points: None,
        },
    }
}
