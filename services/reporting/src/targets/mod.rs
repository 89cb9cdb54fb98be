//! Targets: the rules that check one and judge how far it has come. The
//! plan shipped for Thanh Hóa is data, read by [`plan`].

mod plan;

pub use plan::{parse_plan, thanh_hoa_plan};

use std::collections::HashMap;

use chiso_domain::{GsoCode, Year};
use chiso_proto::assessment::v1::Comparison;
use chiso_proto::reporting::v1::{self as pb, TargetKind};
use chiso_proto::units::v1::UnitLevel;
use chiso_server::Violations;

use crate::projection::AssessmentState;

/// Checks a target as given by a caller.
pub fn check(t: &pb::Target) -> Violations {
    let mut v = Violations::new();
    let kind = TargetKind::try_from(t.kind).unwrap_or(TargetKind::Unspecified);
    let code = t.scope_code.trim();
    if let Err(e) = GsoCode::parse(code) {
        v.add("target.scope_code", e);
    }
    if let Err(e) = Year::new(t.year) {
        v.add("target.year", e);
    }
    if t.title.trim().is_empty() {
        v.add("target.title", "missing");
    }
    if t.source.trim().is_empty() {
        v.add(
            "target.source",
            "missing: name the document that sets the target",
        );
    }
    if let Some(d) = &t.as_of
        && chiso_proto::to_date(d).is_err()
    {
        v.add(
            "target.as_of",
            format!("{}-{}-{} is not a date", d.year, d.month, d.day),
        );
    }
    let level_set = UnitLevel::try_from(t.level).is_ok_and(|l| l != UnitLevel::Unspecified);
    match kind {
        TargetKind::Unspecified => v.add("target.kind", "missing"),
        TargetKind::UnitsCompleted => {
            if !level_set {
                v.add("target.level", "missing: which units are counted");
            }
            if t.count < 1 {
                v.add(
                    "target.count",
                    format!("{} is not a positive count", t.count),
                );
            }
        }
        TargetKind::NamedUnits => {
            if t.unit_codes.is_empty() {
                v.add("target.unit_codes", "no units named");
            }
            for (i, c) in t.unit_codes.iter().enumerate() {
                if let Err(e) = GsoCode::parse(c) {
                    v.add(format!("target.unit_codes[{i}]"), e);
                }
            }
        }
        TargetKind::Share => {
            if !level_set {
                v.add("target.level", "missing: which units are counted");
            }
            if !(t.share_percent > 0.0 && t.share_percent <= 100.0) {
                v.add(
                    "target.share_percent",
                    format!("{} is outside (0, 100]", t.share_percent),
                );
            }
        }
        TargetKind::Kpi => {
            if t.indicator_code.trim().is_empty() {
                v.add("target.indicator_code", "missing");
            }
            if Comparison::try_from(t.comparison).unwrap_or(Comparison::Unspecified)
                == Comparison::Unspecified
            {
                v.add("target.comparison", "missing: at least or at most");
            }
            if !t.threshold.is_finite() {
                v.add("target.threshold", "not a number");
            }
        }
    }
    v
}

/// The date whose hierarchy a target is read in.
pub fn as_of(t: &pb::Target) -> time::Date {
    t.as_of
        .as_ref()
        .and_then(|d| chiso_proto::to_date(d).ok())
        .unwrap_or_else(|| year_end(t.year))
}

pub fn year_end(year: i32) -> time::Date {
    time::Date::from_calendar_date(year, time::Month::December, 31).expect("31 December exists")
}

/// What a target needs to be judged: the units it counts, which of them
/// completed by when, and the KPI's measured value.
pub struct Facts<'a> {
    /// Unit ids of the counted level under the scope (or the named units).
    pub units: &'a [i64],
    /// First completion year by unit id.
    pub first_completion: &'a HashMap<i64, i32>,
    /// For a KPI: the measured value of the indicator, if reported.
    pub measured: Option<f64>,
}

/// For a KPI: the value of `indicator` in `unit`'s assessment, if reported.
pub fn measured(states: &[AssessmentState], unit: i64, indicator: &str) -> Option<f64> {
    states
        .iter()
        .find(|s| s.event.unit_id == unit)
        .and_then(|s| s.event.scorecard.as_ref())
        .and_then(|c| c.indicators.iter().find(|i| i.code == indicator))
        .and_then(|i| i.measured)
}

/// Where a target stands.
pub fn evaluate(t: &pb::Target, facts: &Facts<'_>) -> pb::TargetStatus {
    let kind = TargetKind::try_from(t.kind).unwrap_or(TargetKind::Unspecified);
    let done = |cumulative: bool| {
        facts
            .units
            .iter()
            .filter(|u| {
                facts
                    .first_completion
                    .get(u)
                    .is_some_and(|&y| if cumulative { y <= t.year } else { y == t.year })
            })
            .count() as f64
    };
    let (current, goal, met) = match kind {
        TargetKind::UnitsCompleted => {
            let current = done(t.cumulative);
            (current, f64::from(t.count), current >= f64::from(t.count))
        }
        TargetKind::NamedUnits => {
            let current = done(true);
            let goal = t.unit_codes.len() as f64;
            (current, goal, current >= goal)
        }
        TargetKind::Share => {
            let current = if facts.units.is_empty() {
                0.0
            } else {
                100.0 * done(true) / facts.units.len() as f64
            };
            (current, t.share_percent, current >= t.share_percent)
        }
        TargetKind::Kpi => {
            let at_most = t.comparison == Comparison::AtMost as i32;
            match facts.measured {
                Some(v) => (
                    v,
                    t.threshold,
                    if at_most {
                        v <= t.threshold
                    } else {
                        v >= t.threshold
                    },
                ),
                None => (0.0, t.threshold, false),
            }
        }
        TargetKind::Unspecified => (0.0, 0.0, false),
    };
    let reported = kind != TargetKind::Kpi || facts.measured.is_some();
    let gap = if met || !reported {
        0.0
    } else if kind == TargetKind::Kpi && t.comparison == Comparison::AtMost as i32 {
        current - goal
    } else {
        goal - current
    };
    pb::TargetStatus {
        target: Some(t.clone()),
        current,
        goal,
        met,
        gap,
        reported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_plan_is_valid_and_adds_up() {
        let plan = thanh_hoa_plan();
        for t in &plan {
            let v = check(t);
            assert!(v.is_empty(), "{}: {v:?}", t.id);
        }
        let by_2025 = plan
            .iter()
            .find(|t| t.id == "th-qd969-communes-by-2025")
            .unwrap();
        assert_eq!(by_2025.count, 477);
        let named = plan
            .iter()
            .find(|t| t.kind == TargetKind::NamedUnits as i32)
            .unwrap();
        assert_eq!(named.unit_codes.len(), 12);
    }

    #[test]
    fn targets_count_first_completions() {
        let units = [1, 2, 3, 4];
        let first: HashMap<i64, i32> = [(1, 2022), (2, 2023), (3, 2023)].into();
        let facts = Facts {
            units: &units,
            first_completion: &first,
            measured: None,
        };
        let mut t = pb::Target {
            kind: TargetKind::UnitsCompleted as i32,
            year: 2023,
            count: 2,
            ..Default::default()
        };
        let s = evaluate(&t, &facts);
        assert_eq!((s.current, s.met), (2.0, true));
        t.cumulative = true;
        t.count = 4;
        let s = evaluate(&t, &facts);
        assert_eq!((s.current, s.goal, s.met, s.gap), (3.0, 4.0, false, 1.0));
        let share = pb::Target {
            kind: TargetKind::Share as i32,
            year: 2023,
            share_percent: 100.0,
            ..Default::default()
        };
        assert_eq!(evaluate(&share, &facts).current, 75.0);
        let rank = pb::Target {
            kind: TargetKind::Kpi as i32,
            year: 2025,
            comparison: Comparison::AtMost as i32,
            threshold: 10.0,
            ..Default::default()
        };
        let ranked = Facts {
            measured: Some(13.0),
            ..facts
        };
        let s = evaluate(&rank, &ranked);
        assert_eq!((s.met, s.gap), (false, 3.0));
    }
}
