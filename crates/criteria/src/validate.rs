//! Checks a criteria set before it is published. Everything found is
//! reported at once, each problem with the path of the field at fault.
//!
//! Beyond field ranges, the checks make sure the set can actually be used:
//! every indicator can be met and can reach its `max_points`, and the
//! completion rule both requires something and can be satisfied.

use std::collections::HashMap;

use super::model::{CriteriaSet, Indicator, Kind, Scoring, round_points};
use super::violation::{Violation, Violations};

/// Checks `set`, returning every problem found.
pub fn validate(set: &CriteriaSet) -> Result<(), Violations> {
    let mut out = Vec::new();
    check_header(set, &mut out);

    let mut group_codes: HashMap<&str, usize> = HashMap::new();
    let mut indicator_codes: HashMap<&str, String> = HashMap::new();
    if set.groups.is_empty() {
        out.push(Violation::new("groups", "a set needs at least one group"));
    }
    for (g, group) in set.groups.iter().enumerate() {
        let gpath = format!("groups[{g}]");
        check_code(&mut out, &format!("{gpath}.code"), &group.code);
        if let Some(first) = group_codes.insert(&group.code, g) {
            out.push(Violation::new(
                format!("{gpath}.code"),
                format!("{:?} is already the code of groups[{first}]", group.code),
            ));
        }
        check_text(&mut out, &format!("{gpath}.name"), &group.name);
        if group.indicators.is_empty() {
            out.push(Violation::new(
                format!("{gpath}.indicators"),
                "a group needs at least one indicator",
            ));
        }
        for (i, indicator) in group.indicators.iter().enumerate() {
            let ipath = format!("{gpath}.indicators[{i}]");
            if let Some(first) = indicator_codes.insert(&indicator.code, ipath.clone()) {
                out.push(Violation::new(
                    format!("{ipath}.code"),
                    format!("{:?} is already the code of {first}", indicator.code),
                ));
                // Keep pointing at the first use for any third one.
                indicator_codes.insert(&indicator.code, first);
            }
            check_indicator(&mut out, &ipath, indicator);
        }
    }

    check_completion(set, &mut out);
    Violations::into_result(out)
}

fn check_header(set: &CriteriaSet, out: &mut Vec<Violation>) {
    if !is_slug(&set.id) {
        out.push(Violation::new(
            "id",
            format!(
                "{:?} is not a slug (3–64 lowercase letters, digits and single hyphens, \
                 starting with a letter)",
                set.id
            ),
        ));
    }
    if set.version == 0 {
        out.push(Violation::new("version", "versions start at 1"));
    }
    check_text(out, "title", &set.title);
    check_text(out, "source", &set.source);
    if set.years.is_empty() {
        out.push(Violation::new(
            "years",
            "a set applies to at least one year",
        ));
    }
    for (k, year) in set.years.iter().enumerate() {
        if let Err(e) = chiso_domain::Year::new(*year) {
            out.push(Violation::new(format!("years[{k}]"), e));
        } else if set.years[..k].contains(year) {
            out.push(Violation::new(
                format!("years[{k}]"),
                format!("{year} is listed twice"),
            ));
        }
    }
}

fn check_indicator(out: &mut Vec<Violation>, path: &str, ind: &Indicator) {
    check_code(out, &format!("{path}.code"), &ind.code);
    check_text(out, &format!("{path}.name"), &ind.name);
    if let Some(unit) = &ind.unit {
        check_text(out, &format!("{path}.unit"), unit);
    }
    check_points(out, &format!("{path}.max_points"), ind.max_points);

    let proportional_makes_sense = match &ind.kind {
        Kind::Ratio { .. } | Kind::Target { .. } => true,
        Kind::Count { tiers, .. } => tiers.is_empty(),
        Kind::YesNo | Kind::Choice { .. } => false,
    };
    if ind.scoring == Scoring::Proportional && !proportional_makes_sense {
        let why = match &ind.kind {
            Kind::Count { .. } => "the tiers decide the points",
            Kind::Choice { .. } => "the options decide the points",
            _ => "a yes/no answer has no share to be proportional to",
        };
        out.push(Violation::new(
            format!("{path}.scoring"),
            format!(
                "proportional scoring does not apply to this {}: {why}",
                ind.kind.name()
            ),
        ));
    }

    match &ind.kind {
        Kind::YesNo => {}
        Kind::Choice { options } => check_choice(out, path, ind, options),
        Kind::Ratio {
            threshold,
            part_of_whole,
            ..
        } => {
            let tpath = format!("{path}.threshold");
            if *part_of_whole {
                check_percent(out, &tpath, *threshold);
            } else {
                check_non_negative(out, &tpath, *threshold);
            }
            if let Some(unit) = &ind.unit
                && unit != "%"
            {
                out.push(Violation::new(
                    format!("{path}.unit"),
                    format!("a ratio is a percentage; its unit is \"%\", not {unit:?}"),
                ));
            }
        }
        Kind::Count { met_at, tiers } => check_count(out, path, ind, *met_at, tiers),
        Kind::Target { threshold, .. } => {
            let tpath = format!("{path}.threshold");
            if ind.is_percent() {
                check_percent(out, &tpath, *threshold);
            } else {
                check_non_negative(out, &tpath, *threshold);
            }
        }
    }
}

fn check_choice(
    out: &mut Vec<Violation>,
    path: &str,
    ind: &Indicator,
    options: &[super::model::ChoiceOption],
) {
    if options.len() < 2 {
        out.push(Violation::new(
            format!("{path}.options"),
            "a choice needs at least two options (use yes_no for a plain yes/no)",
        ));
    }
    let mut codes: HashMap<&str, usize> = HashMap::new();
    for (k, option) in options.iter().enumerate() {
        let opath = format!("{path}.options[{k}]");
        check_code(out, &format!("{opath}.code"), &option.code);
        if let Some(first) = codes.insert(&option.code, k) {
            out.push(Violation::new(
                format!("{opath}.code"),
                format!("{:?} is already the code of options[{first}]", option.code),
            ));
        }
        check_text(out, &format!("{opath}.label"), &option.label);
        check_part_points(out, &format!("{opath}.points"), option.points, ind);
    }
    if options.is_empty() {
        return;
    }
    if !options.iter().any(|o| o.met) {
        out.push(Violation::new(
            format!("{path}.options"),
            "no option counts as met, so the indicator can never be met",
        ));
    }
    let best = options.iter().map(|o| o.points).fold(0.0, f64::max);
    if best < ind.max_points {
        out.push(Violation::new(
            format!("{path}.max_points"),
            format!(
                "no option reaches max_points {}; the best gives {best}",
                ind.max_points
            ),
        ));
    }
}

fn check_count(
    out: &mut Vec<Violation>,
    path: &str,
    ind: &Indicator,
    met_at: i64,
    tiers: &[super::model::Tier],
) {
    if met_at < 0 {
        out.push(Violation::new(
            format!("{path}.met_at"),
            format!("{met_at} is negative; counts start at 0"),
        ));
    }
    for (k, tier) in tiers.iter().enumerate() {
        let tpath = format!("{path}.tiers[{k}]");
        if tier.at < 0 {
            out.push(Violation::new(
                format!("{tpath}.at"),
                format!("{} is negative; counts start at 0", tier.at),
            ));
        }
        check_part_points(out, &format!("{tpath}.points"), tier.points, ind);
        if k > 0 {
            let prev = &tiers[k - 1];
            if tier.at <= prev.at {
                out.push(Violation::new(
                    format!("{tpath}.at"),
                    format!(
                        "tiers must rise strictly: {} does not come after {}",
                        tier.at, prev.at
                    ),
                ));
            }
            if tier.points <= prev.points {
                out.push(Violation::new(
                    format!("{tpath}.points"),
                    format!(
                        "tiers must rise strictly: {} points do not come after {}",
                        tier.points, prev.points
                    ),
                ));
            }
        }
    }
    if let Some(top) = tiers.last()
        && top.points < ind.max_points
    {
        out.push(Violation::new(
            format!("{path}.max_points"),
            format!(
                "no tier reaches max_points {}; the highest gives {}",
                ind.max_points, top.points
            ),
        ));
    }
}

fn check_completion(set: &CriteriaSet, out: &mut Vec<Violation>) {
    let rule = &set.completion;
    let any_mandatory = set.indicators().any(|(_, i)| i.mandatory);
    if rule.all_mandatory && !any_mandatory {
        out.push(Violation::new(
            "completion.all_mandatory",
            "no indicator is mandatory, so requiring all of them requires nothing",
        ));
    }
    match rule.min_points {
        None if !rule.all_mandatory => out.push(Violation::new(
            "completion",
            "the rule requires nothing, so every unit would complete: \
             set all_mandatory, min_points, or both",
        )),
        None => {}
        Some(min) => {
            check_points(out, "completion.min_points", min);
            if min == 0.0 && !rule.all_mandatory {
                out.push(Violation::new(
                    "completion.min_points",
                    "0 points with all_mandatory off requires nothing, so every unit \
                     would complete",
                ));
            }
            let reachable = reachable_points(set);
            if min > reachable {
                let how = if rule.all_mandatory {
                    "while meeting every mandatory indicator"
                } else {
                    "in all"
                };
                out.push(Violation::new(
                    "completion.min_points",
                    format!("{min} is more than the {reachable} points a unit can score {how}"),
                ));
            }
        }
    }
}

/// The most points a unit can score while satisfying `all_mandatory`. Every
/// kind reaches its maximum at a value that also meets it, except a choice
/// whose best-scoring answers do not count as met.
pub(crate) fn reachable_points(set: &CriteriaSet) -> f64 {
    let sum = set
        .indicators()
        .map(|(_, ind)| match &ind.kind {
            Kind::Choice { options } if ind.mandatory && set.completion.all_mandatory => options
                .iter()
                .filter(|o| o.met)
                .map(|o| o.points.min(ind.max_points))
                .fold(0.0, f64::max),
            _ => ind.max_points,
        })
        .sum();
    round_points(sum)
}

/// `th-commune-2023`: readable in URLs and file names, stable across
/// versions.
pub(crate) fn is_slug(s: &str) -> bool {
    (3..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Codes of groups, indicators and options (`CQS.01`, `chu_tich`): ASCII, so
/// they survive every system a report passes through.
pub(crate) fn is_code(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check_code(out: &mut Vec<Violation>, path: &str, code: &str) {
    if !is_code(code) {
        out.push(Violation::new(
            path,
            format!(
                "{code:?} is not a code (1–32 ASCII letters, digits, '.', '_' or '-', \
                 starting with a letter or digit)"
            ),
        ));
    }
}

fn check_text(out: &mut Vec<Violation>, path: &str, text: &str) {
    if text.trim().is_empty() {
        out.push(Violation::new(path, "must not be empty"));
    }
}

fn check_finite(out: &mut Vec<Violation>, path: &str, x: f64) -> bool {
    if !x.is_finite() {
        out.push(Violation::new(path, format!("{x} is not a finite number")));
        return false;
    }
    // A published set is stored as JSON and must read back bit for bit; a
    // number no human would write (17 significant digits) might not.
    if !json_exact(x) {
        out.push(Violation::new(
            path,
            format!("{x} has more digits than a stored set keeps exactly"),
        ));
    }
    true
}

fn check_non_negative(out: &mut Vec<Violation>, path: &str, x: f64) {
    if check_finite(out, path, x) && x < 0.0 {
        out.push(Violation::new(path, format!("{x} is negative")));
    }
}

fn check_percent(out: &mut Vec<Violation>, path: &str, x: f64) {
    if check_finite(out, path, x) && !(0.0..=100.0).contains(&x) {
        out.push(Violation::new(path, format!("{x} is outside 0–100")));
    }
}

/// Points are non-negative and written to hundredths, like the forms.
fn check_points(out: &mut Vec<Violation>, path: &str, x: f64) {
    if !x.is_finite() {
        out.push(Violation::new(path, format!("{x} is not a finite number")));
    } else if x < 0.0 {
        out.push(Violation::new(path, format!("{x} is negative")));
    } else if round_points(x) != x {
        out.push(Violation::new(
            path,
            format!("{x} has more than two decimals"),
        ));
    }
}

/// The points of an option or a tier: points as any, and within what the
/// indicator gives.
fn check_part_points(out: &mut Vec<Violation>, path: &str, points: f64, ind: &Indicator) {
    check_points(out, path, points);
    if points > ind.max_points {
        out.push(Violation::new(
            path,
            format!(
                "{points} is more than the indicator's max_points {}",
                ind.max_points
            ),
        ));
    }
}

fn json_exact(x: f64) -> bool {
    serde_json::to_string(&x)
        .ok()
        .and_then(|s| serde_json::from_str::<f64>(&s).ok())
        .is_some_and(|y| y.to_bits() == x.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn ratio(code: &str, threshold: f64) -> Indicator {
        Indicator {
            code: code.into(),
            name: "Tỷ lệ hộ gia đình thanh toán tiền điện không dùng tiền mặt".into(),
            unit: Some("%".into()),
            mandatory: true,
            evidence_required: true,
            max_points: 10.0,
            scoring: Scoring::AllOrNothing,
            kind: Kind::Ratio {
                threshold,
                direction: Direction::AtLeast,
                part_of_whole: true,
            },
        }
    }

    fn set(groups: Vec<Group>) -> CriteriaSet {
        CriteriaSet {
            id: "th-commune-2023".into(),
            version: 1,
            title: "Bộ tiêu chí xã".into(),
            level: Level::Commune,
            years: vec![2023],
            source: "QĐ 1829/QĐ-UBND".into(),
            notes: String::new(),
            groups,
            completion: Completion {
                all_mandatory: true,
                min_points: None,
            },
        }
    }

    fn group(code: &str, indicators: Vec<Indicator>) -> Group {
        Group {
            code: code.into(),
            name: "Chính quyền số".into(),
            indicators,
        }
    }

    fn paths(set: &CriteriaSet) -> Vec<String> {
        match validate(set) {
            Ok(()) => vec![],
            Err(v) => v.iter().map(|v| v.path.clone()).collect(),
        }
    }

    #[test]
    fn a_sound_set_passes() {
        let s = set(vec![group("CQS", vec![ratio("CQS.01", 60.0)])]);
        assert_eq!(validate(&s), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut s = set(vec![
            group("CQS", vec![ratio("CQS.01", 60.0), ratio("CQS.01", 120.0)]),
            group("CQS", vec![]),
        ]);
        s.id = "TH 2023".into();
        s.version = 0;
        s.years = vec![2023, 2023, 1999];
        let err = validate(&s).unwrap_err();
        let found: Vec<_> = err.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            found,
            [
                "id",
                "version",
                "years[1]",
                "years[2]",
                "groups[0].indicators[1].code",
                "groups[0].indicators[1].threshold",
                "groups[1].code",
                "groups[1].indicators",
            ]
        );
        let threshold = err
            .iter()
            .find(|v| v.path == "groups[0].indicators[1].threshold")
            .unwrap();
        assert_eq!(threshold.message, "120 is outside 0–100");
    }

    #[test]
    fn tiers_must_rise_and_reach_the_maximum() {
        let mut ind = ratio("NTS.02", 0.0);
        ind.max_points = 20.0;
        ind.kind = Kind::Count {
            met_at: 4,
            tiers: vec![
                Tier { at: 1, points: 5.0 },
                Tier {
                    at: 3,
                    points: 15.0,
                },
                Tier {
                    at: 2,
                    points: 10.0,
                },
            ],
        };
        ind.unit = Some("cuộc họp".into());
        let s = set(vec![group("NTS", vec![ind])]);
        assert_eq!(
            paths(&s),
            [
                "groups[0].indicators[0].tiers[2].at",
                "groups[0].indicators[0].tiers[2].points",
                "groups[0].indicators[0].max_points",
            ]
        );
    }

    #[test]
    fn choices_need_distinct_codes_and_a_met_answer() {
        let mut ind = ratio("NTS.01", 0.0);
        ind.max_points = 20.0;
        let option = |code: &str, points: f64| ChoiceOption {
            code: code.into(),
            label: "Chủ tịch UBND xã".into(),
            points,
            met: false,
        };
        ind.kind = Kind::Choice {
            options: vec![option("chu_tich", 20.0), option("chu_tich", 10.0)],
        };
        let s = set(vec![group("NTS", vec![ind.clone()])]);
        assert_eq!(
            paths(&s),
            [
                "groups[0].indicators[0].options[1].code",
                "groups[0].indicators[0].options",
            ]
        );
        ind.kind = Kind::Choice { options: vec![] };
        let s = set(vec![group("NTS", vec![ind])]);
        assert!(
            validate(&s)
                .unwrap_err()
                .has("groups[0].indicators[0].options")
        );
    }

    #[test]
    fn a_rule_that_requires_nothing_or_too_much_is_refused() {
        let mut s = set(vec![group("CQS", vec![ratio("CQS.01", 60.0)])]);
        s.completion = Completion {
            all_mandatory: false,
            min_points: None,
        };
        assert_eq!(paths(&s), ["completion"]);

        s.completion.min_points = Some(10.5);
        assert_eq!(paths(&s), ["completion.min_points"]);

        s.groups[0].indicators[0].mandatory = false;
        s.completion = Completion {
            all_mandatory: true,
            min_points: None,
        };
        assert_eq!(paths(&s), ["completion.all_mandatory"]);
    }

    #[test]
    fn a_mandatory_choice_caps_what_can_be_scored_with_everything_met() {
        // Only "nobody" scores the full 20, and it does not count as met; with
        // all_mandatory on, 10 is the most a completing unit can have.
        let mut ind = ratio("NTS.01", 0.0);
        ind.max_points = 20.0;
        ind.kind = Kind::Choice {
            options: vec![
                ChoiceOption {
                    code: "pho".into(),
                    label: "Phó Chủ tịch".into(),
                    points: 10.0,
                    met: true,
                },
                ChoiceOption {
                    code: "khong".into(),
                    label: "Không".into(),
                    points: 20.0,
                    met: false,
                },
            ],
        };
        let mut s = set(vec![group("NTS", vec![ind])]);
        s.completion.min_points = Some(15.0);
        let err = validate(&s).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(
            err.0[0].message,
            "15 is more than the 10 points a unit can score while meeting every mandatory indicator"
        );
    }

    #[test]
    fn numbers_must_be_usable() {
        let mut s = set(vec![group("CQS", vec![ratio("CQS.01", f64::NAN)])]);
        s.groups[0].indicators[0].max_points = 2.555;
        s.groups[0].indicators[0].scoring = Scoring::Proportional;
        assert_eq!(
            paths(&s),
            [
                "groups[0].indicators[0].max_points",
                "groups[0].indicators[0].threshold",
            ]
        );
        let mut yes_no = ratio("CQS.02", 0.0);
        yes_no.kind = Kind::YesNo;
        yes_no.scoring = Scoring::Proportional;
        let s = set(vec![group("CQS", vec![yes_no])]);
        assert_eq!(paths(&s), ["groups[0].indicators[0].scoring"]);
    }

    #[test]
    fn slugs_and_codes() {
        assert!(is_slug("th-commune-2023"));
        for bad in ["th", "Th-commune", "th--x", "th-", "2023-th", "th_commune"] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert!(is_code("CQS.01") && is_code("chu_tich") && is_code("1"));
        for bad in ["", ".x", "CQS 01", "Chủ"] {
            assert!(!is_code(bad), "{bad}");
        }
    }
}
