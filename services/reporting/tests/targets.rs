//! Targets as pure functions: the plan shipped for Thanh Hóa holds the
//! province's own numbers, a caller's target is checked field by field, and
//! a target is judged from the units it counts and their first completion
//! years — in-year or cumulative, named units, a share, a KPI either way.

use std::collections::{BTreeSet, HashMap};

use chiso_proto::assessment::v1::Comparison;
use chiso_proto::google::r#type::Date as PbDate;
use chiso_proto::reporting::v1::{Target, TargetKind};
use chiso_proto::units::v1::UnitLevel;
use chiso_reporting::targets::{Facts, as_of, check, evaluate, thanh_hoa_plan, year_end};
use time::{Date, Month};

fn date(year: i32, month: Month, day: u8) -> Date {
    Date::from_calendar_date(year, month, day).expect("a date")
}

fn find<'a>(plan: &'a [Target], id: &str) -> &'a Target {
    plan.iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("the plan has {id}"))
}

// ---------------------------------------------------------------------------
// The shipped plan

#[test]
fn the_plan_holds_qd_969_commune_counts_for_each_year_and_cumulatively() {
    let plan = thanh_hoa_plan();
    for (year, in_year, by_year) in [
        (2022, 94, 94),
        (2023, 132, 226),
        (2024, 133, 359),
        (2025, 118, 477),
    ] {
        for (id, count, cumulative) in [
            (format!("th-qd969-communes-{year}"), in_year, false),
            (format!("th-qd969-communes-by-{year}"), by_year, true),
        ] {
            let t = find(&plan, &id);
            assert_eq!(t.kind, TargetKind::UnitsCompleted as i32, "{id}");
            assert_eq!(
                (
                    t.scope_code.as_str(),
                    t.level,
                    t.year,
                    t.count,
                    t.cumulative
                ),
                ("38", UnitLevel::Commune as i32, year, count, cumulative),
                "{id}"
            );
            assert_eq!(t.source, "QĐ 969/QĐ-UBND (18/3/2022)", "{id}");
            // 2025 is read in the last hierarchy with districts; earlier
            // years at their end.
            let expected = if year == 2025 {
                date(2025, Month::June, 30)
            } else {
                year_end(year)
            };
            assert_eq!(as_of(t), expected, "{id}");
        }
    }
}

#[test]
fn the_plan_names_the_12_district_level_units_of_qd_969() {
    let plan = thanh_hoa_plan();
    let t = find(&plan, "th-qd969-12-districts-2025");
    assert_eq!(t.kind, TargetKind::NamedUnits as i32);
    assert_eq!((t.scope_code.as_str(), t.year), ("38", 2025));
    assert_eq!(as_of(t), date(2025, Month::June, 30));
    // TP Thanh Hóa, TX Bỉm Sơn, TP Sầm Sơn, Quan Hóa, Ngọc Lặc, Cẩm Thủy,
    // Vĩnh Lộc, Yên Định, Thường Xuân, Hoằng Hóa, Quảng Xương, TX Nghi Sơn.
    let codes: BTreeSet<&str> = t.unit_codes.iter().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "380", "381", "382", "385", "389", "390", "393", "394", "396", "399", "406", "407",
    ]
    .into();
    assert_eq!(codes, expected);
    assert_eq!(t.unit_codes.len(), 12, "no code twice");
}

#[test]
fn the_plan_holds_the_nq_06_goals_and_tho_xuans_own() {
    let plan = thanh_hoa_plan();
    let communes = find(&plan, "th-nq06-300-communes");
    assert_eq!(
        (
            communes.level,
            communes.count,
            communes.cumulative,
            communes.year
        ),
        (UnitLevel::Commune as i32, 300, true, 2025)
    );
    let districts = find(&plan, "th-nq06-6-districts");
    assert_eq!(
        (
            districts.level,
            districts.count,
            districts.cumulative,
            districts.year
        ),
        (UnitLevel::District as i32, 6, true, 2025)
    );
    for (id, indicator, comparison, threshold) in [
        (
            "th-nq06-digital-economy",
            "KTS.01",
            Comparison::AtLeast,
            20.0,
        ),
        (
            "th-nq06-cds-enterprises",
            "KTS.02",
            Comparison::AtLeast,
            50.0,
        ),
        ("th-nq06-dti-rank", "DTI.01", Comparison::AtMost, 10.0),
    ] {
        let t = find(&plan, id);
        assert_eq!(t.kind, TargetKind::Kpi as i32, "{id}");
        assert_eq!(
            (
                t.indicator_code.as_str(),
                t.comparison,
                t.threshold,
                t.level
            ),
            (
                indicator,
                comparison as i32,
                threshold,
                UnitLevel::Province as i32
            ),
            "{id}"
        );
        assert_eq!(t.source, "NQ 06-NQ/TU", "{id}");
    }
    let tho_xuan = find(&plan, "tho-xuan-all-communes-2025");
    assert_eq!(tho_xuan.kind, TargetKind::Share as i32);
    assert_eq!(
        (
            tho_xuan.scope_code.as_str(),
            tho_xuan.level,
            tho_xuan.share_percent
        ),
        ("395", UnitLevel::Commune as i32, 100.0)
    );

    // Every target passes the checks a caller's would, under its own id.
    let ids: BTreeSet<&str> = plan.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), plan.len(), "ids are unique");
    assert_eq!(plan.len(), 8 + 1 + 2 + 3 + 1);
    for t in &plan {
        let v = check(t);
        assert!(v.is_empty(), "{}: {v:?}", t.id);
    }
}

// ---------------------------------------------------------------------------
// Checking a caller's target

fn fields(t: &Target) -> BTreeSet<String> {
    check(t).iter().map(|(f, _)| f.to_owned()).collect()
}

fn valid(kind: TargetKind) -> Target {
    Target {
        kind: kind as i32,
        title: "mục tiêu".into(),
        scope_code: "38".into(),
        level: UnitLevel::Commune as i32,
        year: 2025,
        count: 10,
        unit_codes: vec!["395".into()],
        share_percent: 50.0,
        indicator_code: "KTS.01".into(),
        comparison: Comparison::AtLeast as i32,
        threshold: 20.0,
        source: "QĐ 969/QĐ-UBND (18/3/2022)".into(),
        ..Default::default()
    }
}

#[test]
fn a_target_of_each_kind_is_checked_field_by_field() {
    for kind in [
        TargetKind::UnitsCompleted,
        TargetKind::NamedUnits,
        TargetKind::Share,
        TargetKind::Kpi,
    ] {
        assert!(check(&valid(kind)).is_empty(), "{kind:?}");
    }
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|s| (*s).to_owned()).collect() };

    let bad = Target {
        kind: 0,
        title: " ".into(),
        scope_code: "3a".into(),
        year: 1999,
        source: String::new(),
        as_of: Some(PbDate {
            year: 2025,
            month: 2,
            day: 30,
        }),
        ..Default::default()
    };
    assert_eq!(
        fields(&bad),
        set(&[
            "target.kind",
            "target.title",
            "target.scope_code",
            "target.year",
            "target.source",
            "target.as_of"
        ])
    );

    let mut t = valid(TargetKind::UnitsCompleted);
    t.level = 0;
    t.count = 0;
    assert_eq!(fields(&t), set(&["target.level", "target.count"]));

    let mut t = valid(TargetKind::NamedUnits);
    t.unit_codes.clear();
    assert_eq!(fields(&t), set(&["target.unit_codes"]));
    t.unit_codes = vec!["380".into(), "38x".into(), "1".into()];
    assert_eq!(
        fields(&t),
        set(&["target.unit_codes[1]", "target.unit_codes[2]"])
    );

    for share in [0.0, -5.0, 100.5, f64::NAN] {
        let mut t = valid(TargetKind::Share);
        t.share_percent = share;
        assert_eq!(fields(&t), set(&["target.share_percent"]), "{share}");
    }
    let mut t = valid(TargetKind::Share);
    t.share_percent = 100.0;
    assert!(check(&t).is_empty(), "100% is a share");

    let mut t = valid(TargetKind::Kpi);
    t.indicator_code = " ".into();
    t.comparison = 0;
    t.threshold = f64::INFINITY;
    assert_eq!(
        fields(&t),
        set(&[
            "target.indicator_code",
            "target.comparison",
            "target.threshold"
        ])
    );
}

// ---------------------------------------------------------------------------
// Judging a target

/// Units 1..=6 of the scope: first completions 1 → 2022, 2 and 3 → 2023,
/// 4 → 2024, 5 → 2026; 6 never. Unit 99 completed but is not counted.
fn first_completions() -> HashMap<i64, i32> {
    [
        (1, 2022),
        (2, 2023),
        (3, 2023),
        (4, 2024),
        (5, 2026),
        (99, 2022),
    ]
    .into()
}

const UNITS: [i64; 6] = [1, 2, 3, 4, 5, 6];

fn judge(t: &Target, units: &[i64], measured: Option<f64>) -> (f64, f64, bool, f64) {
    let first = first_completions();
    let s = evaluate(
        t,
        &Facts {
            units,
            first_completion: &first,
            measured,
        },
    );
    assert_eq!(s.target.as_ref(), Some(t), "the status names its target");
    (s.current, s.goal, s.met, s.gap)
}

/// Whether the status says the target's value was reported.
fn reported(t: &Target, measured: Option<f64>) -> bool {
    let first = first_completions();
    evaluate(
        t,
        &Facts {
            units: &[],
            first_completion: &first,
            measured,
        },
    )
    .reported
}

fn units_completed(year: i32, count: i32, cumulative: bool) -> Target {
    Target {
        count,
        year,
        cumulative,
        ..valid(TargetKind::UnitsCompleted)
    }
}

#[test]
fn in_year_counts_units_completing_for_the_first_time_that_year_and_cumulative_counts_up_to_it() {
    // In-year: only first completions in that very year.
    for (year, done) in [
        (2021, 0.0),
        (2022, 1.0),
        (2023, 2.0),
        (2024, 1.0),
        (2025, 0.0),
    ] {
        assert_eq!(
            judge(&units_completed(year, 2, false), &UNITS, None).0,
            done,
            "in {year}"
        );
    }
    // Cumulative: everything up to and including the year, never later.
    for (year, done) in [
        (2021, 0.0),
        (2022, 1.0),
        (2023, 3.0),
        (2024, 4.0),
        (2025, 4.0),
        (2026, 5.0),
    ] {
        assert_eq!(
            judge(&units_completed(year, 2, true), &UNITS, None).0,
            done,
            "by {year}"
        );
    }
    // Met at the count exactly; the gap is what is missing.
    assert_eq!(
        judge(&units_completed(2023, 2, false), &UNITS, None),
        (2.0, 2.0, true, 0.0)
    );
    assert_eq!(
        judge(&units_completed(2023, 3, false), &UNITS, None),
        (2.0, 3.0, false, 1.0)
    );
    assert_eq!(
        judge(&units_completed(2024, 6, true), &UNITS, None),
        (4.0, 6.0, false, 2.0)
    );
    // Above the count is met too, with no gap.
    assert_eq!(
        judge(&units_completed(2024, 1, true), &UNITS, None),
        (4.0, 1.0, true, 0.0)
    );
    // A unit outside the scope never counts, however early it completed.
    assert_eq!(
        judge(&units_completed(2022, 1, false), &[2, 3], None).0,
        0.0
    );
}

#[test]
fn named_units_are_met_when_every_named_unit_has_completed_by_the_year() {
    let named = |year: i32, codes: usize| Target {
        year,
        unit_codes: (0..codes).map(|i| format!("{}", 380 + i)).collect(),
        ..valid(TargetKind::NamedUnits)
    };
    // Three named units resolved to 1, 2 and 4.
    assert_eq!(
        judge(&named(2023, 3), &[1, 2, 4], None),
        (2.0, 3.0, false, 1.0)
    );
    assert_eq!(
        judge(&named(2024, 3), &[1, 2, 4], None),
        (3.0, 3.0, true, 0.0)
    );
    // A later completion does not count for an earlier year.
    assert_eq!(
        judge(&named(2025, 2), &[1, 5], None),
        (1.0, 2.0, false, 1.0)
    );
    // A named code that names no unit on the target's date cannot complete:
    // the goal is still every code named.
    assert_eq!(
        judge(&named(2025, 3), &[1, 2], None),
        (2.0, 3.0, false, 1.0)
    );
}

#[test]
fn a_share_is_the_percentage_of_counted_units_completed_by_the_year() {
    let share = |year: i32, percent: f64| Target {
        year,
        share_percent: percent,
        ..valid(TargetKind::Share)
    };
    assert_eq!(
        judge(&share(2023, 50.0), &UNITS, None),
        (50.0, 50.0, true, 0.0)
    );
    let (current, goal, met, gap) = judge(&share(2024, 100.0), &UNITS, None);
    assert!((current - 400.0 / 6.0).abs() < 1e-9, "{current}");
    assert_eq!((goal, met), (100.0, false));
    assert!((gap - 200.0 / 6.0).abs() < 1e-9, "{gap}");
    // Thọ Xuân's 100%: every unit, and only by the year.
    assert_eq!(
        judge(&share(2024, 100.0), &[1, 2, 3, 4], None),
        (100.0, 100.0, true, 0.0)
    );
    assert!(!judge(&share(2025, 100.0), &[1, 5], None).2);
    // No unit to count: nothing is met.
    assert_eq!(
        judge(&share(2025, 10.0), &[], None),
        (0.0, 10.0, false, 10.0)
    );
}

#[test]
fn a_kpi_is_met_at_or_beyond_its_threshold_in_the_direction_it_states() {
    let kpi = |comparison: Comparison, threshold: f64| Target {
        comparison: comparison as i32,
        threshold,
        ..valid(TargetKind::Kpi)
    };
    // Digital economy ≥ 20% of GRDP.
    let at_least = kpi(Comparison::AtLeast, 20.0);
    assert_eq!(judge(&at_least, &[], Some(20.0)), (20.0, 20.0, true, 0.0));
    assert_eq!(judge(&at_least, &[], Some(23.5)), (23.5, 20.0, true, 0.0));
    assert_eq!(judge(&at_least, &[], Some(18.5)), (18.5, 20.0, false, 1.5));
    // DTI rank ≤ 10: the gap is the places still to climb.
    let at_most = kpi(Comparison::AtMost, 10.0);
    assert_eq!(judge(&at_most, &[], Some(10.0)), (10.0, 10.0, true, 0.0));
    assert_eq!(judge(&at_most, &[], Some(4.0)), (4.0, 10.0, true, 0.0));
    assert_eq!(judge(&at_most, &[], Some(13.0)), (13.0, 10.0, false, 3.0));
    // Not reported: not met, whichever way, and no gap to speak of.
    for t in [&at_least, &at_most] {
        let (_, goal, met, gap) = judge(t, &[], None);
        assert_eq!((goal, met, gap), (t.threshold, false, 0.0));
        assert!(!reported(t, None));
        assert!(reported(t, Some(1.0)));
    }
    // Completions play no part in a KPI.
    assert_eq!(judge(&at_least, &UNITS, Some(5.0)).0, 5.0);
}

// ---------------------------------------------------------------------------
// The plan against the Thanh Hóa history it is read in

mod in_the_history {
    use chiso_auth::{Caller, Role, Scope};
    use chiso_proto::from_date;
    use chiso_proto::units::v1::{self as upb, UnitLevel, units_service_server::UnitsService};
    use chiso_testkit::UnitsServer;
    use tonic::Request;

    use super::*;

    fn reader<T>(message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(Caller {
            subject: "targets-test".into(),
            roles: [Role::Reader].into_iter().collect(),
            scope: Scope::National,
        });
        request
    }

    async fn units_under(
        units: &chiso_units::Units,
        code: &str,
        level: UnitLevel,
        on: Date,
    ) -> Vec<upb::Unit> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = units
                .list_units(reader(upb::ListUnitsRequest {
                    parent_code: code.into(),
                    level: level as i32,
                    as_of: Some(from_date(on)),
                    page_size: 1000,
                    page_token,
                }))
                .await
                .expect("units")
                .into_inner();
            all.extend(page.units);
            if page.next_page_token.is_empty() {
                return all;
            }
            page_token = page.next_page_token;
        }
    }

    /// The 12 named units are the district-level units of Thanh Hóa on
    /// 30/6/2025; each counted target counts the units the province had on
    /// its date (559 communes until 2023, 547 and 26 district-level units on
    /// 30/6/2025, Thọ Xuân's 30 communes) — and a day after 30/6/2025 no
    /// district is left to count, which is why the 2025 targets are read on
    /// that date.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_plans_units_exist_on_the_dates_its_targets_are_read() {
        let server = UnitsServer::start(b"targets suite test key, not a real one").await;
        let units = server.units();
        let plan = thanh_hoa_plan();

        let named = find(&plan, "th-qd969-12-districts-2025");
        let mut names = Vec::new();
        for code in &named.unit_codes {
            let placed = units
                .list_ancestors(reader(upb::ListAncestorsRequest {
                    unit: Some(upb::UnitRef {
                        r#ref: Some(upb::unit_ref::Ref::Code(code.clone())),
                    }),
                    as_of: Some(from_date(as_of(named))),
                }))
                .await
                .unwrap_or_else(|s| panic!("{code}: {s:?}"))
                .into_inner();
            let unit = placed.unit.expect("a unit");
            assert_eq!(unit.level, UnitLevel::District as i32, "{code}");
            let parents: Vec<&str> = placed.ancestors.iter().map(|a| a.code.as_str()).collect();
            assert_eq!(parents, ["38"], "{code}");
            names.push(unit.name);
        }
        assert_eq!(
            names,
            [
                "Thành phố Thanh Hóa",
                "Thành phố Sầm Sơn",
                "Thị xã Bỉm Sơn",
                "Thị xã Nghi Sơn",
                "Huyện Hoằng Hóa",
                "Huyện Quảng Xương",
                "Huyện Vĩnh Lộc",
                "Huyện Ngọc Lặc",
                "Huyện Quan Hóa",
                "Huyện Cẩm Thủy",
                "Huyện Yên Định",
                "Huyện Thường Xuân",
            ]
        );

        for (id, counted) in [
            ("th-qd969-communes-2022", 559),
            ("th-qd969-communes-by-2023", 559),
            ("th-qd969-communes-2024", 558),
            ("th-qd969-communes-by-2025", 547),
            ("th-qd969-12-districts-2025", 26),
            ("th-nq06-300-communes", 547),
            ("th-nq06-6-districts", 26),
            ("tho-xuan-all-communes-2025", 30),
        ] {
            let t = find(&plan, id);
            let level = UnitLevel::try_from(t.level).expect("a level");
            let n = units_under(units, &t.scope_code, level, as_of(t))
                .await
                .len();
            assert_eq!(n, counted, "{id}: units counted on {}", as_of(t));
        }
        let after = date(2025, Month::July, 1);
        assert!(
            units_under(units, "38", UnitLevel::District, after)
                .await
                .is_empty(),
            "no district after 1/7/2025"
        );
    }
}
