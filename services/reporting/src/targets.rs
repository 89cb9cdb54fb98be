//! Targets: checking one, the plan shipped for Thanh Hóa, and how far a
//! target has come.

use std::collections::HashMap;

use chiso_domain::{GsoCode, Year};
use chiso_proto::assessment::v1::Comparison;
use chiso_proto::google::r#type::Date as PbDate;
use chiso_proto::reporting::v1::{self as pb, TargetKind};
use chiso_proto::units::v1::UnitLevel;
use chiso_server::Violations;

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
                if ![2, 3, 5].contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_digit()) {
                    v.add(
                        format!("target.unit_codes[{i}]"),
                        format!("{c:?} is not a GSO code"),
                    );
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

fn date(year: i32, month: i32, day: i32) -> Option<PbDate> {
    Some(PbDate { year, month, day })
}

/// Thanh Hóa's plan: QĐ 969/QĐ-UBND (18/3/2022), NQ 06-NQ/TU, and Thọ
/// Xuân's own goal. District-level targets are read in the hierarchy of
/// 30/6/2025, the last day districts existed.
pub fn thanh_hoa_plan() -> Vec<pb::Target> {
    const QD969: &str = "QĐ 969/QĐ-UBND (18/3/2022)";
    const NQ06: &str = "NQ 06-NQ/TU";
    let mut plan = Vec::new();
    let mut cumulative = 0;
    for (year, count) in [(2022, 94), (2023, 132), (2024, 133), (2025, 118)] {
        cumulative += count;
        plan.push(pb::Target {
            id: format!("th-qd969-communes-{year}"),
            kind: TargetKind::UnitsCompleted as i32,
            title: format!("{count} xã hoàn thành CĐS trong năm {year}"),
            scope_code: "38".into(),
            level: UnitLevel::Commune as i32,
            year,
            count,
            source: QD969.into(),
            as_of: (year == 2025).then(|| date(2025, 6, 30)).flatten(),
            ..Default::default()
        });
        plan.push(pb::Target {
            id: format!("th-qd969-communes-by-{year}"),
            kind: TargetKind::UnitsCompleted as i32,
            title: format!("{cumulative} xã hoàn thành CĐS lũy kế đến năm {year}"),
            scope_code: "38".into(),
            level: UnitLevel::Commune as i32,
            year,
            cumulative: true,
            count: cumulative,
            source: QD969.into(),
            as_of: (year == 2025).then(|| date(2025, 6, 30)).flatten(),
            ..Default::default()
        });
    }
    plan.push(pb::Target {
        id: "th-qd969-12-districts-2025".into(),
        kind: TargetKind::NamedUnits as i32,
        title: "12 đơn vị cấp huyện hoàn thành CĐS đến năm 2025".into(),
        scope_code: "38".into(),
        level: UnitLevel::District as i32,
        year: 2025,
        // TP Thanh Hóa, TP Sầm Sơn, TX Bỉm Sơn, TX Nghi Sơn, Hoằng Hóa,
        // Quảng Xương, Vĩnh Lộc, Ngọc Lặc, Quan Hóa, Cẩm Thủy, Yên Định,
        // Thường Xuân.
        unit_codes: [
            "380", "382", "381", "407", "399", "406", "393", "389", "385", "390", "394", "396",
        ]
        .map(String::from)
        .to_vec(),
        source: QD969.into(),
        as_of: date(2025, 6, 30),
        ..Default::default()
    });
    for (id, title, level, count) in [
        (
            "th-nq06-300-communes",
            "Ít nhất 300 xã hoàn thành CĐS đến năm 2025",
            UnitLevel::Commune,
            300,
        ),
        (
            "th-nq06-6-districts",
            "Ít nhất 6 huyện hoàn thành CĐS đến năm 2025",
            UnitLevel::District,
            6,
        ),
    ] {
        plan.push(pb::Target {
            id: id.into(),
            kind: TargetKind::UnitsCompleted as i32,
            title: title.into(),
            scope_code: "38".into(),
            level: level as i32,
            year: 2025,
            cumulative: true,
            count,
            source: NQ06.into(),
            as_of: date(2025, 6, 30),
            ..Default::default()
        });
    }
    for (id, title, indicator, comparison, threshold) in [
        (
            "th-nq06-digital-economy",
            "Kinh tế số ≥ 20% GRDP",
            "KTS.01",
            Comparison::AtLeast,
            20.0,
        ),
        (
            "th-nq06-cds-enterprises",
            "Doanh nghiệp CĐS ≥ 50% doanh nghiệp nộp thuế",
            "KTS.02",
            Comparison::AtLeast,
            50.0,
        ),
        (
            "th-nq06-dti-rank",
            "Top 10 cả nước về chỉ số DTI",
            "DTI.01",
            Comparison::AtMost,
            10.0,
        ),
    ] {
        plan.push(pb::Target {
            id: id.into(),
            kind: TargetKind::Kpi as i32,
            title: title.into(),
            scope_code: "38".into(),
            level: UnitLevel::Province as i32,
            year: 2025,
            indicator_code: indicator.into(),
            comparison: comparison as i32,
            threshold,
            source: NQ06.into(),
            ..Default::default()
        });
    }
    plan.push(pb::Target {
        id: "tho-xuan-all-communes-2025".into(),
        kind: TargetKind::Share as i32,
        title: "100% xã của huyện Thọ Xuân hoàn thành CĐS đến năm 2025".into(),
        scope_code: "395".into(),
        level: UnitLevel::Commune as i32,
        year: 2025,
        share_percent: 100.0,
        source: "Kế hoạch CĐS của huyện Thọ Xuân".into(),
        as_of: date(2025, 6, 30),
        ..Default::default()
    });
    plan
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
