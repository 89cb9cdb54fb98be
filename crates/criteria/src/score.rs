//! Scoring: a pure function from a set and a unit's values to a scorecard.
//!
//! # Rules
//!
//! For every indicator the scorer decides *met* and *points*. Points never
//! leave `[0, max_points]` and are kept to hundredths (see
//! [`round_points`]). An indicator with no value is not met and scores 0.
//!
//! | kind | met when | points |
//! |---|---|---|
//! | yes_no | the answer is yes | `max_points` on yes, else 0 |
//! | choice | the chosen option has `met = true` | the chosen option's `points` |
//! | ratio | `p = 100 × numerator / denominator` is on the good side of `threshold` | by `scoring`, from `p` |
//! | count | `n ≥ met_at` | with tiers: the `points` of the highest tier with `at ≤ n`, 0 below the first; without tiers: by `scoring`, from `n` against `met_at` |
//! | target | the number is on the good side of `threshold` | by `scoring`, from the number |
//!
//! "On the good side": `v ≥ t` for `>=`, `v ≤ t` for `<=`; equality meets
//! both. With `scoring`:
//!
//! - `all_or_nothing`: `max_points` when met, else 0.
//! - `proportional`, `>=`: `max_points × min(1, v / t)`: the share of the
//!   threshold reached (52% against ≥ 60% earns 52/60 of the points). When
//!   `t = 0` every value meets and earns `max_points`.
//! - `proportional`, `<=`: `max_points` when `v ≤ t`, else
//!   `max_points × t / v`: the share of the value that is within the limit
//!   (rank 20 against ≤ 10 earns half). When `t = 0` any `v > 0` earns 0.
//!
//! Either way, raising `v` never lowers the points of a `>=` indicator nor
//! raises those of a `<=` one, and a met indicator always has its full
//! proportional points.
//!
//! **Zero denominator.** A ratio reported as `n / 0` has no percentage to
//! judge: it is not met and scores 0, whichever the direction, and its
//! shortfall says why. A commune with no enterprises has not shown that its
//! enterprises use e-invoices; whether to excuse it is the reviewer's call,
//! not the scorer's.
//!
//! The set is complete when every mandatory indicator is met (if the rule
//! says `all_mandatory`) and the total reaches `min_points` (if given).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{CriteriaSet, Direction, Indicator, Kind, Scoring, round_points};
use super::values::{Value, validate_values};
use super::violation::Violations;

/// The result of scoring one unit's values against one set version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    pub set_id: String,
    pub set_version: u32,
    /// In set order.
    pub indicators: Vec<IndicatorScore>,
    /// In set order.
    pub groups: Vec<GroupScore>,
    pub total: f64,
    pub max_total: f64,
    /// Whether the unit completes CĐS under the set's completion rule.
    pub complete: bool,
    /// Codes of the indicators not met: mandatory ones first, each part in
    /// set order.
    pub failing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorScore {
    pub code: String,
    /// The code of the indicator's group.
    pub group: String,
    pub mandatory: bool,
    /// `None` when nothing was reported.
    pub value: Option<Value>,
    /// The number judged against the threshold: the percentage of a ratio,
    /// the count, the target's number. `None` for yes/no and choices, for a
    /// missing value and for a ratio over 0.
    pub measured: Option<f64>,
    pub met: bool,
    pub points: f64,
    pub max_points: f64,
    /// Why and by how much a failing indicator fails; `None` when met.
    pub shortfall: Option<Shortfall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupScore {
    pub code: String,
    pub name: String,
    pub points: f64,
    pub max_points: f64,
    /// Indicators met, out of `indicators`.
    pub met: usize,
    pub indicators: usize,
}

/// How a failing indicator falls short, for machines (`gap`) and people
/// (`text`, e.g. `52.0 of 60%`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shortfall {
    pub gap: Gap,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Gap {
    /// Nothing was reported.
    Missing,
    /// A yes/no indicator answered no.
    No,
    /// The chosen option does not count as met; `met_by` lists those that do.
    Choice { chosen: String, met_by: Vec<String> },
    /// A ratio over a zero denominator.
    NoBase,
    /// A number on the wrong side of its threshold, in the indicator's unit
    /// (percent for ratios). `by` is the distance to the threshold, ≥ 0.
    Short {
        reached: f64,
        required: f64,
        direction: Direction,
        by: f64,
        unit: Option<String>,
    },
}

/// Scores `values` against `set`. Values are checked first (unknown codes,
/// wrong kinds, out-of-range numbers), and every problem is returned instead
/// of a scorecard; indicators without a value are scored as not met.
///
/// The set is assumed to have passed [`super::validate`]; on an unchecked
/// set the function still returns, with points kept within `[0, max]`.
pub fn score(set: &CriteriaSet, values: &BTreeMap<String, Value>) -> Result<Scorecard, Violations> {
    validate_values(set, values)?;

    let mut indicators = Vec::new();
    let mut groups = Vec::new();
    for group in &set.groups {
        let mut points = 0.0;
        let mut met = 0;
        for ind in &group.indicators {
            let scored = score_indicator(&group.code, ind, values.get(&ind.code));
            points += scored.points;
            met += usize::from(scored.met);
            indicators.push(scored);
        }
        groups.push(GroupScore {
            code: group.code.clone(),
            name: group.name.clone(),
            points: round_points(points),
            max_points: group.max_points(),
            met,
            indicators: group.indicators.len(),
        });
    }

    let total = round_points(indicators.iter().map(|i| i.points).sum());
    let mandatory_met = indicators.iter().all(|i| i.met || !i.mandatory);
    let rule = &set.completion;
    let complete =
        (!rule.all_mandatory || mandatory_met) && rule.min_points.is_none_or(|min| total >= min);

    let failing_where = |mandatory: bool| {
        indicators
            .iter()
            .filter(move |i| !i.met && i.mandatory == mandatory)
            .map(|i| i.code.clone())
    };
    let failing = failing_where(true).chain(failing_where(false)).collect();

    Ok(Scorecard {
        set_id: set.id.clone(),
        set_version: set.version,
        indicators,
        groups,
        total,
        max_total: set.max_points(),
        complete,
        failing,
    })
}

/// Scores one indicator on its own; `score` is this applied to each.
pub fn score_indicator(group: &str, ind: &Indicator, value: Option<&Value>) -> IndicatorScore {
    let judged = judge(ind, value);
    // `max` ignores NaN, so `hi` is a number even on an unchecked set.
    let hi = ind.max_points.max(0.0);
    let points = if judged.points.is_nan() {
        0.0
    } else {
        round_points(judged.points.clamp(0.0, hi)).min(hi)
    };
    let shortfall = match (judged.met, judged.gap) {
        (true, _) => None,
        (false, gap) => {
            let gap = gap.unwrap_or(Gap::Missing);
            let text = describe(ind, &gap);
            Some(Shortfall { gap, text })
        }
    };
    IndicatorScore {
        code: ind.code.clone(),
        group: group.to_string(),
        mandatory: ind.mandatory,
        value: value.cloned(),
        measured: judged.measured,
        met: judged.met,
        points,
        max_points: ind.max_points,
        shortfall,
    }
}

struct Judged {
    met: bool,
    points: f64,
    measured: Option<f64>,
    gap: Option<Gap>,
}

impl Judged {
    fn not_met(gap: Gap) -> Judged {
        Judged {
            met: false,
            points: 0.0,
            measured: None,
            gap: Some(gap),
        }
    }
}

fn judge(ind: &Indicator, value: Option<&Value>) -> Judged {
    let max = ind.max_points;
    let Some(value) = value else {
        return Judged::not_met(Gap::Missing);
    };
    match (&ind.kind, value) {
        (Kind::YesNo, Value::Bool(yes)) => Judged {
            met: *yes,
            points: if *yes { max } else { 0.0 },
            measured: None,
            gap: Some(Gap::No),
        },
        (Kind::Choice { options }, Value::Choice(chosen)) => {
            match options.iter().find(|o| &o.code == chosen) {
                Some(option) => Judged {
                    met: option.met,
                    points: option.points,
                    measured: None,
                    gap: Some(Gap::Choice {
                        chosen: chosen.clone(),
                        met_by: options
                            .iter()
                            .filter(|o| o.met)
                            .map(|o| o.code.clone())
                            .collect(),
                    }),
                },
                None => Judged::not_met(Gap::Missing),
            }
        }
        (
            Kind::Ratio {
                threshold,
                direction,
                ..
            },
            Value::Ratio {
                numerator,
                denominator,
            },
        ) => {
            if *denominator == 0.0 {
                return Judged::not_met(Gap::NoBase);
            }
            let percent = 100.0 * numerator / denominator;
            against(ind.scoring, max, percent, *threshold, *direction)
        }
        (Kind::Count { met_at, tiers }, Value::Count(n)) => {
            let met = n >= met_at;
            let points = if tiers.is_empty() {
                let v = *n as f64;
                let t = *met_at as f64;
                match ind.scoring {
                    Scoring::AllOrNothing => all_or_nothing(met, max),
                    Scoring::Proportional if t <= 0.0 => all_or_nothing(met, max),
                    Scoring::Proportional => max * (v / t).clamp(0.0, 1.0),
                }
            } else {
                tiers
                    .iter()
                    .filter(|tier| tier.at <= *n)
                    .map(|tier| tier.points)
                    .fold(0.0, f64::max)
            };
            Judged {
                met,
                points,
                measured: Some(*n as f64),
                gap: Some(Gap::Short {
                    reached: *n as f64,
                    required: *met_at as f64,
                    direction: Direction::AtLeast,
                    by: met_at.saturating_sub(*n).max(0) as f64,
                    unit: None,
                }),
            }
        }
        (
            Kind::Target {
                threshold,
                direction,
            },
            Value::Number(x),
        ) => against(ind.scoring, max, *x, *threshold, *direction),
        // `score` validates values first, so only `score_indicator` called
        // directly with a mismatched value lands here.
        _ => Judged::not_met(Gap::Missing),
    }
    .with_unit(ind)
}

impl Judged {
    fn with_unit(mut self, ind: &Indicator) -> Judged {
        if let Some(Gap::Short { unit, .. }) = &mut self.gap {
            *unit = ind.display_unit().map(Into::into);
        }
        self
    }
}

fn all_or_nothing(met: bool, max: f64) -> f64 {
    if met { max } else { 0.0 }
}

/// A number against a threshold; see the module doc for the rules.
fn against(scoring: Scoring, max: f64, v: f64, t: f64, direction: Direction) -> Judged {
    let met = match direction {
        Direction::AtLeast => v >= t,
        Direction::AtMost => v <= t,
    };
    let points = match (scoring, direction) {
        (Scoring::AllOrNothing, _) => all_or_nothing(met, max),
        (Scoring::Proportional, _) if met => max,
        (Scoring::Proportional, Direction::AtLeast) if t > 0.0 => max * (v / t).clamp(0.0, 1.0),
        (Scoring::Proportional, Direction::AtMost) if v > 0.0 => max * (t / v).clamp(0.0, 1.0),
        (Scoring::Proportional, _) => 0.0,
    };
    Judged {
        met,
        points,
        measured: Some(v),
        gap: Some(Gap::Short {
            reached: v,
            required: t,
            direction,
            by: (v - t).abs(),
            unit: None,
        }),
    }
}

/// The shortfall as people read it: `52.0 of 60%`, `3 of 4 cuộc họp`,
/// `14 against ≤ 10 hạng`.
fn describe(ind: &Indicator, gap: &Gap) -> String {
    match gap {
        Gap::Missing => "no value reported".into(),
        Gap::No => "answered no".into(),
        Gap::NoBase => "denominator is 0, so there is no share to judge".into(),
        Gap::Choice { chosen, met_by } => {
            let label = |code: &str| match &ind.kind {
                Kind::Choice { options } => options
                    .iter()
                    .find(|o| o.code == code)
                    .map_or(code.to_string(), |o| o.label.clone()),
                _ => code.to_string(),
            };
            let met_by: Vec<String> = met_by.iter().map(|c| format!("\"{}\"", label(c))).collect();
            format!(
                "\"{}\" does not count as met; met by {}",
                label(chosen),
                met_by.join(" or ")
            )
        }
        Gap::Short {
            reached,
            required,
            direction,
            unit,
            ..
        } => {
            let unit = match unit.as_deref() {
                None => String::new(),
                Some("%") => "%".into(),
                Some(u) => format!(" {u}"),
            };
            // A percentage computed from a ratio is rarely round; one decimal
            // is what the forms print. Counts and typed numbers show as is.
            let reached = if ind.display_unit() == Some("%") {
                format!("{reached:.1}")
            } else {
                format!("{reached}")
            };
            match direction {
                Direction::AtLeast => format!("{reached} of {required}{unit}"),
                Direction::AtMost => format!("{reached} against ≤ {required}{unit}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::one_group_set;
    use crate::model::*;

    fn indicator(kind: Kind, scoring: Scoring, unit: Option<&str>) -> Indicator {
        Indicator {
            code: "X.01".into(),
            name: "x".into(),
            unit: unit.map(Into::into),
            mandatory: true,
            evidence_required: false,
            max_points: 20.0,
            scoring,
            kind,
        }
    }

    fn ratio(threshold: f64, direction: Direction) -> Kind {
        Kind::Ratio {
            threshold,
            direction,
            part_of_whole: true,
        }
    }

    fn target(threshold: f64, direction: Direction) -> Kind {
        Kind::Target {
            threshold,
            direction,
        }
    }

    fn run(ind: &Indicator, value: Value) -> IndicatorScore {
        score_indicator("X", ind, Some(&value))
    }

    #[test]
    fn ratios_are_judged_as_percentages() {
        let ind = indicator(ratio(60.0, Direction::AtLeast), Scoring::AllOrNothing, None);
        let s = run(
            &ind,
            Value::Ratio {
                numerator: 52.0,
                denominator: 100.0,
            },
        );
        assert!(!s.met);
        assert_eq!(s.points, 0.0);
        assert_eq!(s.measured, Some(52.0));
        assert_eq!(s.shortfall.unwrap().text, "52.0 of 60%");

        let s = run(
            &ind,
            Value::Ratio {
                numerator: 18.0,
                denominator: 30.0,
            },
        );
        assert!(s.met && s.points == 20.0 && s.shortfall.is_none());
    }

    #[test]
    fn proportional_points_follow_the_share_reached() {
        let ind = indicator(ratio(60.0, Direction::AtLeast), Scoring::Proportional, None);
        let s = run(
            &ind,
            Value::Ratio {
                numerator: 52.0,
                denominator: 100.0,
            },
        );
        assert_eq!(s.points, 17.33);
        let s = run(
            &ind,
            Value::Ratio {
                numerator: 90.0,
                denominator: 100.0,
            },
        );
        assert_eq!(s.points, 20.0);
    }

    #[test]
    fn at_most_targets_reward_staying_under() {
        let ind = indicator(
            target(10.0, Direction::AtMost),
            Scoring::Proportional,
            Some("hạng"),
        );
        let top = run(&ind, Value::Number(7.0));
        assert!(top.met && top.points == 20.0);
        let s = run(&ind, Value::Number(20.0));
        assert!(!s.met);
        assert_eq!(s.points, 10.0);
        let shortfall = s.shortfall.unwrap();
        assert_eq!(shortfall.text, "20 against ≤ 10 hạng");
        assert!(matches!(shortfall.gap, Gap::Short { by, .. } if by == 10.0));

        let zero = indicator(target(0.0, Direction::AtMost), Scoring::Proportional, None);
        assert_eq!(run(&zero, Value::Number(0.0)).points, 20.0);
        assert_eq!(run(&zero, Value::Number(1.0)).points, 0.0);
    }

    #[test]
    fn a_zero_denominator_is_not_met_either_way() {
        for direction in [Direction::AtLeast, Direction::AtMost] {
            let ind = indicator(ratio(5.0, direction), Scoring::Proportional, None);
            let s = run(
                &ind,
                Value::Ratio {
                    numerator: 0.0,
                    denominator: 0.0,
                },
            );
            assert!(!s.met && s.points == 0.0 && s.measured.is_none());
            assert_eq!(s.shortfall.unwrap().gap, Gap::NoBase);
        }
    }

    #[test]
    fn count_tiers_give_the_highest_reached() {
        let ind = indicator(
            Kind::Count {
                met_at: 4,
                tiers: [(1, 5.0), (2, 10.0), (3, 15.0), (4, 20.0)]
                    .map(|(at, points)| Tier { at, points })
                    .to_vec(),
            },
            Scoring::AllOrNothing,
            Some("cuộc họp"),
        );
        let points: Vec<f64> = (0..6).map(|n| run(&ind, Value::Count(n)).points).collect();
        assert_eq!(points, [0.0, 5.0, 10.0, 15.0, 20.0, 20.0]);
        let s = run(&ind, Value::Count(3));
        assert!(!s.met);
        assert_eq!(s.shortfall.unwrap().text, "3 of 4 cuộc họp");
        assert!(run(&ind, Value::Count(4)).met);
    }

    #[test]
    fn choices_score_their_option() {
        let option = |code: &str, label: &str, points: f64, met: bool| ChoiceOption {
            code: code.into(),
            label: label.into(),
            points,
            met,
        };
        let ind = indicator(
            Kind::Choice {
                options: vec![
                    option("chu_tich", "Chủ tịch", 20.0, true),
                    option("pho_chu_tich", "Phó Chủ tịch", 10.0, true),
                    option("khong", "Không", 0.0, false),
                ],
            },
            Scoring::AllOrNothing,
            None,
        );
        let deputy = run(&ind, Value::Choice("pho_chu_tich".into()));
        assert!(deputy.met && deputy.points == 10.0);
        let nobody = run(&ind, Value::Choice("khong".into()));
        assert!(!nobody.met);
        assert_eq!(
            nobody.shortfall.unwrap().text,
            "\"Không\" does not count as met; met by \"Chủ tịch\" or \"Phó Chủ tịch\""
        );
    }

    fn small_set(min_points: Option<f64>) -> CriteriaSet {
        let mut optional = indicator(Kind::YesNo, Scoring::AllOrNothing, None);
        optional.code = "B".into();
        optional.mandatory = false;
        optional.max_points = 5.0;
        let mut mandatory = indicator(
            target(20.0, Direction::AtLeast),
            Scoring::Proportional,
            Some("%"),
        );
        mandatory.code = "A".into();
        let mut set = one_group_set(3, ("KTS", "Kinh tế số"), vec![optional, mandatory]);
        set.completion.min_points = min_points;
        set
    }

    #[test]
    fn a_scorecard_totals_groups_and_lists_failures_mandatory_first() {
        let set = small_set(None);
        let card = score(&set, &BTreeMap::new()).unwrap();
        assert_eq!(card.failing, ["A", "B"]);
        assert_eq!((card.total, card.max_total), (0.0, 25.0));
        assert!(!card.complete);

        let values = BTreeMap::from([("A".to_string(), Value::Number(21.5))]);
        let card = score(&set, &values).unwrap();
        assert!(card.complete);
        assert_eq!(card.failing, ["B"]);
        assert_eq!(card.groups[0].points, 20.0);
        assert_eq!((card.groups[0].met, card.groups[0].indicators), (1, 2));

        let card = score(&small_set(Some(24.0)), &values).unwrap();
        assert!(!card.complete);
    }

    #[test]
    fn invalid_values_are_refused_not_scored() {
        let values = BTreeMap::from([("A".to_string(), Value::Bool(true))]);
        assert!(
            score(&small_set(None), &values)
                .unwrap_err()
                .has("values[\"A\"]")
        );
    }

    #[test]
    fn scorecards_serialize() {
        let values = BTreeMap::from([("A".to_string(), Value::Number(12.0))]);
        let card = score(&small_set(None), &values).unwrap();
        let json = serde_json::to_string(&card).unwrap();
        assert!(json.contains(r#""text":"12.0 of 20%""#), "{json}");
        let back: Scorecard = serde_json::from_str(&json).unwrap();
        assert_eq!(back, card);
    }
}
