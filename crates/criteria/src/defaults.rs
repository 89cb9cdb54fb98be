//! The criteria sets shipped with chiso, for a fresh installation to publish
//! and for tests to score against.
//!
//! The files stay with the assessment service that publishes them; this crate
//! compiles them in so the CLI and tests have them without the service.

use super::file::from_toml;
use super::model::CriteriaSet;

/// File name and text of every shipped set, oldest first.
const FILES: [(&str, &str); 4] = [
    (
        "th-commune-2022.toml",
        include_str!("../../../services/assessment/criteria/th-commune-2022.toml"),
    ),
    (
        "th-commune-2023.toml",
        include_str!("../../../services/assessment/criteria/th-commune-2023.toml"),
    ),
    (
        "th-district-2024.toml",
        include_str!("../../../services/assessment/criteria/th-district-2024.toml"),
    ),
    (
        "th-province-2025.toml",
        include_str!("../../../services/assessment/criteria/th-province-2025.toml"),
    ),
];

/// The shipped sets, parsed. They are compiled in and checked by the tests
/// below, so a failure here is a bug in the shipped files, not in the input.
pub fn defaults() -> Vec<CriteriaSet> {
    FILES
        .iter()
        .map(|(name, text)| from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::{Direction, Kind, Value, from_toml, load_toml, score, to_toml, validate};

    fn set(id: &str) -> CriteriaSet {
        defaults().into_iter().find(|s| s.id == id).unwrap()
    }

    fn kind<'a>(set: &'a CriteriaSet, code: &str) -> &'a Kind {
        &set.indicator(code).unwrap().kind
    }

    #[test]
    fn every_file_in_the_folder_loads_validates_and_is_shipped() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../services/assessment/criteria");
        let mut found = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let set = load_toml(&text).unwrap_or_else(|e| panic!("{name}:\n{e}"));
            assert_eq!(
                format!("{}.toml", set.id),
                name,
                "a file is named after its set"
            );
            found.insert(name);
        }
        let shipped: BTreeSet<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            found, shipped,
            "every file in criteria/ is shipped by defaults()"
        );
    }

    #[test]
    fn shipped_sets_are_valid_and_round_trip() {
        let sets = defaults();
        assert_eq!(sets.len(), FILES.len());
        for set in sets {
            assert_eq!(validate(&set), Ok(()), "{}", set.id);
            assert!(
                !set.notes.trim().is_empty(),
                "{} says what is illustrative",
                set.id
            );
            assert_eq!(from_toml(&to_toml(&set)).unwrap(), set);
            let json = serde_json::to_string(&set).unwrap();
            assert_eq!(serde_json::from_str::<CriteriaSet>(&json).unwrap(), set);
        }
    }

    #[test]
    fn the_2022_commune_set_scores_awareness_out_of_100() {
        let set = set("th-commune-2022");
        assert_eq!(set.years, [2022]);
        let nts = &set.groups[0];
        assert_eq!(
            (nts.name.as_str(), nts.max_points()),
            ("Nhận thức số", 100.0)
        );
        let Kind::Choice { options } = kind(&set, "NTS.01") else {
            panic!("NTS.01 is a choice");
        };
        let points: Vec<f64> = options.iter().map(|o| o.points).collect();
        assert_eq!(points, [20.0, 10.0, 0.0]);
        assert!(!set.completion.all_mandatory);
        assert!(set.completion.min_points.is_some());
    }

    #[test]
    fn the_2023_commune_set_has_the_structure_of_qd_1829() {
        let set = set("th-commune-2023");
        let sizes: Vec<(&str, usize)> = set
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.indicators.len()))
            .collect();
        assert_eq!(
            sizes,
            [
                ("Chính quyền số", 11),
                ("Kinh tế số", 6),
                ("Xã hội số", 12),
                ("Hạ tầng số", 8)
            ]
        );
        assert!(set.indicators().all(|(_, i)| i.mandatory));
        assert!(set.completion.all_mandatory);
        for (code, threshold) in [("KTS.01", 60.0), ("XHS.01", 30.0), ("XHS.02", 95.0)] {
            assert_eq!(
                kind(&set, code),
                &Kind::Ratio {
                    threshold,
                    direction: Direction::AtLeast,
                    part_of_whole: true
                },
                "{code}"
            );
        }
        assert_eq!(set.max_points(), 37.0);
    }

    #[test]
    fn the_2025_province_set_carries_the_resolution_goals() {
        let set = set("th-province-2025");
        assert_eq!(
            kind(&set, "KTS.01"),
            &Kind::Target {
                threshold: 20.0,
                direction: Direction::AtLeast
            }
        );
        assert!(set.indicator("KTS.01").unwrap().is_percent());
        assert!(
            matches!(kind(&set, "KTS.02"), Kind::Ratio { threshold, .. } if *threshold == 50.0)
        );
        assert_eq!(
            kind(&set, "DTI.01"),
            &Kind::Target {
                threshold: 10.0,
                direction: Direction::AtMost
            }
        );
        assert!(!set.indicator("DTI.02").unwrap().mandatory, "illustrative");
    }

    #[test]
    fn tho_xuan_2022_figures_meet_the_district_indicators_they_feed() {
        let set = set("th-district-2024");
        let all = |n: f64| Value::Ratio {
            numerator: n,
            denominator: n,
        };
        let values = BTreeMap::from([
            ("HTS.01".to_string(), all(30.0)),
            ("HTS.02".to_string(), all(30.0)),
            ("CQS.01".to_string(), Value::Bool(true)),
            ("CQS.02".to_string(), all(30.0)),
            ("CQS.03".to_string(), all(31.0)),
            ("CQS.04".to_string(), all(1000.0)),
            ("CQS.05".to_string(), Value::Count(42)),
            ("CQS.06".to_string(), Value::Count(57)),
        ]);
        let card = score(&set, &values).unwrap();
        for code in values.keys() {
            let s = card.indicators.iter().find(|s| &s.code == code).unwrap();
            assert!(s.met && s.points == s.max_points, "{s:?}");
        }
        assert!(!card.complete, "the rest is not reported yet");
        assert_eq!(card.failing[..2], ["NTS.01", "NTS.03"], "mandatory first");
        assert_eq!(card.total, 37.0);
    }

    #[test]
    fn the_province_falls_short_of_a_top_10_rank_by_its_distance() {
        let set = set("th-province-2025");
        let values = BTreeMap::from([("DTI.01".to_string(), Value::Number(20.0))]);
        let card = score(&set, &values).unwrap();
        let rank = card.indicators.iter().find(|s| s.code == "DTI.01").unwrap();
        assert!(!rank.met);
        assert_eq!(rank.points, 5.0);
        assert_eq!(
            rank.shortfall.as_ref().unwrap().text,
            "20 against ≤ 10 hạng"
        );
    }
}
