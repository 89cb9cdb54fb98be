//! Property tests over generated valid sets and values.

use chiso_domain::Year;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::model::*;
use super::score::{score, score_indicator};
use super::validate::{reachable_points, validate};
use super::values::{Value, validate_values};
use super::{from_toml, to_toml};

/// Points as the forms write them: hundredths from 0 to `max`.
fn points_upto(max_hundredths: u32) -> impl Strategy<Value = f64> {
    (0..=max_hundredths).prop_map(|k| f64::from(k) / 100.0)
}

/// Text with the characters that trouble TOML writers: quotes, backslashes,
/// newlines, `#`, `=`, brackets, diacritics. Never blank.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 àáạảãđĐêôơưỹ\"'\\\\\n\t#=\\[\\]{}]{0,16}[a-zđ]"
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::AtLeast), Just(Direction::AtMost)]
}

fn scoring() -> impl Strategy<Value = Scoring> {
    prop_oneof![Just(Scoring::AllOrNothing), Just(Scoring::Proportional)]
}

/// A threshold with one decimal, within `0..=max`.
fn threshold(max: u32) -> impl Strategy<Value = f64> {
    (0..=max * 10).prop_map(|k| f64::from(k) / 10.0)
}

fn choice(max_points: f64) -> impl Strategy<Value = (Kind, Scoring)> {
    let max_k = (max_points * 100.0).round() as u32;
    (
        prop::collection::vec((points_upto(max_k), any::<bool>(), text()), 2..5),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(raw, best, met)| {
            let best = best.index(raw.len());
            let met = met.index(raw.len());
            let options = raw
                .into_iter()
                .enumerate()
                .map(|(k, (points, is_met, label))| ChoiceOption {
                    code: format!("o{k}"),
                    label,
                    points: if k == best { max_points } else { points },
                    met: is_met || k == met,
                })
                .collect();
            (Kind::Choice { options }, Scoring::AllOrNothing)
        })
}

fn count(max_points: f64) -> impl Strategy<Value = (Kind, Scoring)> {
    let max_k = (max_points * 100.0).round() as u32;
    (
        0..10i64,
        prop::collection::btree_set(0..30i64, 0..5),
        prop::collection::btree_set(0..max_k.max(1), 0..5),
        scoring(),
    )
        .prop_map(move |(met_at, ats, below_max, scoring)| {
            // Tier points rise strictly and the top one is `max_points`.
            let mut points: Vec<f64> = below_max
                .into_iter()
                .map(|k| f64::from(k) / 100.0)
                .filter(|p| *p < max_points)
                .collect();
            let n = ats.len().min(points.len() + 1);
            points.truncate(n.saturating_sub(1));
            if n > 0 {
                points.push(max_points);
            }
            let tiers: Vec<Tier> = ats
                .into_iter()
                .take(n)
                .zip(points)
                .map(|(at, points)| Tier { at, points })
                .collect();
            let scoring = if tiers.is_empty() {
                scoring
            } else {
                Scoring::AllOrNothing
            };
            (Kind::Count { met_at, tiers }, scoring)
        })
}

fn kind(max_points: f64) -> impl Strategy<Value = (Kind, Scoring, Option<String>)> {
    let none = || Just(None::<String>);
    prop_oneof![
        Just((Kind::YesNo, Scoring::AllOrNothing))
            .prop_flat_map(move |k| (Just(k), none()))
            .prop_map(|((k, s), u)| (k, s, u)),
        choice(max_points).prop_map(|(k, s)| (k, s, None)),
        (
            any::<bool>(),
            threshold(100),
            threshold(500),
            direction(),
            scoring(),
            prop_oneof![Just(None), Just(Some("%".to_string()))],
        )
            .prop_map(|(part_of_whole, pct, any, direction, scoring, unit)| {
                let threshold = if part_of_whole { pct } else { any };
                let kind = Kind::Ratio {
                    threshold,
                    direction,
                    part_of_whole,
                };
                (kind, scoring, unit)
            }),
        count(max_points).prop_map(|(k, s)| (k, s, Some("cuộc họp".to_string()))),
        (
            prop_oneof![
                Just(None),
                Just(Some("%".to_string())),
                Just(Some("hạng".to_string()))
            ],
            threshold(100),
            (0..=100_000u32).prop_map(|k| f64::from(k) / 100.0),
            direction(),
            scoring(),
        )
            .prop_map(|(unit, pct, any, direction, scoring)| {
                let threshold = if unit.as_deref() == Some("%") {
                    pct
                } else {
                    any
                };
                let kind = Kind::Target {
                    threshold,
                    direction,
                };
                (kind, scoring, unit)
            }),
    ]
}

fn indicator() -> impl Strategy<Value = Indicator> {
    points_upto(5000).prop_flat_map(|max_points| {
        (kind(max_points), text(), any::<bool>(), any::<bool>()).prop_map(
            move |((kind, scoring, unit), name, mandatory, evidence_required)| Indicator {
                code: String::new(),
                name,
                unit,
                mandatory,
                evidence_required,
                max_points,
                scoring,
                kind,
            },
        )
    })
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        Just(Level::Commune),
        Just(Level::District),
        Just(Level::Province)
    ]
}

/// A set that passes validation, codes and completion rule made consistent.
fn valid_set() -> impl Strategy<Value = CriteriaSet> {
    (
        ("[a-z]{1,8}", Year::FIRST..=Year::LAST).prop_map(|(s, y)| format!("th-{s}-{y}")),
        1..50u32,
        text(),
        level(),
        prop::collection::btree_set(Year::FIRST..=Year::LAST, 1..4),
        text(),
        prop::option::of(text()),
        prop::collection::vec((text(), prop::collection::vec(indicator(), 1..5)), 1..4),
        any::<bool>(),
        prop::option::of(0.0..=1.0f64),
    )
        .prop_map(
            |(id, version, title, level, years, source, notes, groups, all_mandatory, share)| {
                let groups = groups
                    .into_iter()
                    .enumerate()
                    .map(|(g, (name, indicators))| Group {
                        code: format!("G{g}"),
                        name,
                        indicators: indicators
                            .into_iter()
                            .enumerate()
                            .map(|(i, ind)| Indicator {
                                code: format!("G{g}.{i:02}"),
                                ..ind
                            })
                            .collect(),
                    })
                    .collect();
                let mut set = CriteriaSet {
                    id,
                    version,
                    title,
                    level,
                    years: years.into_iter().collect(),
                    source,
                    notes: notes.unwrap_or_default(),
                    groups,
                    completion: Completion {
                        all_mandatory,
                        min_points: None,
                    },
                };
                // Without all_mandatory the rule needs points to require
                // anything; a set worth nothing must fall back on mandatory.
                if !all_mandatory && set.max_points() < 0.01 {
                    set.completion.all_mandatory = true;
                }
                if set.completion.all_mandatory {
                    set.groups[0].indicators[0].mandatory = true;
                }
                let reachable = reachable_points(&set);
                let mut min = share.map(|s| (s * reachable * 100.0).floor() / 100.0);
                if !set.completion.all_mandatory {
                    min = Some(min.unwrap_or(0.0).max(0.01));
                }
                set.completion.min_points = min;
                set
            },
        )
}

/// A value of the right kind for `ind`, within the ranges validation allows.
fn value_for(ind: &Indicator) -> BoxedStrategy<Value> {
    match &ind.kind {
        Kind::YesNo => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Choice { options } => {
            let codes: Vec<String> = options.iter().map(|o| o.code.clone()).collect();
            prop::sample::select(codes).prop_map(Value::Choice).boxed()
        }
        Kind::Ratio { part_of_whole, .. } => {
            let part = *part_of_whole;
            (0..2000u32, 0..2000u32)
                .prop_map(move |(a, b)| {
                    let (n, d) = if part { (a.min(b), a.max(b)) } else { (a, b) };
                    Value::Ratio {
                        numerator: f64::from(n),
                        denominator: f64::from(d),
                    }
                })
                .boxed()
        }
        Kind::Count { .. } => (0..40i64).prop_map(Value::Count).boxed(),
        Kind::Target { .. } if ind.is_percent() => threshold(100).prop_map(Value::Number).boxed(),
        Kind::Target { .. } => (0..200_000u32)
            .prop_map(|k| Value::Number(f64::from(k) / 100.0))
            .boxed(),
    }
}

/// A valid set with values for some of its indicators.
fn set_with_values() -> impl Strategy<Value = (CriteriaSet, BTreeMap<String, Value>)> {
    valid_set().prop_flat_map(|set| {
        let per_indicator: Vec<_> = set
            .indicators()
            .map(|(_, ind)| {
                let code = ind.code.clone();
                prop::option::weighted(0.8, value_for(ind)).prop_map(move |v| (code.clone(), v))
            })
            .collect();
        (Just(set), per_indicator).prop_map(|(set, pairs)| {
            let values = pairs
                .into_iter()
                .filter_map(|(code, v)| v.map(|v| (code, v)))
                .collect();
            (set, values)
        })
    })
}

/// The value that earns everything `ind` offers and meets it when possible.
fn best_value(ind: &Indicator) -> Value {
    match &ind.kind {
        Kind::YesNo => Value::Bool(true),
        Kind::Choice { options } => {
            let best = options
                .iter()
                .filter(|o| o.points == ind.max_points)
                .max_by_key(|o| o.met)
                .expect("a valid choice reaches its max_points");
            Value::Choice(best.code.clone())
        }
        // 100% meets any part-of-whole threshold; 100 000% any other.
        Kind::Ratio {
            direction: Direction::AtLeast,
            part_of_whole,
            ..
        } => Value::Ratio {
            numerator: if *part_of_whole { 1.0 } else { 1000.0 },
            denominator: 1.0,
        },
        Kind::Ratio { .. } => Value::Ratio {
            numerator: 0.0,
            denominator: 1.0,
        },
        Kind::Count { met_at, tiers } => {
            Value::Count((*met_at).max(tiers.last().map_or(0, |t| t.at)))
        }
        Kind::Target {
            threshold,
            direction: Direction::AtLeast,
        } => Value::Number(*threshold),
        Kind::Target { .. } => Value::Number(0.0),
    }
}

/// One numeric indicator and two of its values, `low ≤ high`.
fn ordered_pair() -> impl Strategy<Value = (Indicator, Value, Value)> {
    indicator()
        .prop_filter("numeric kinds only", |ind| {
            matches!(
                ind.kind,
                Kind::Ratio { .. } | Kind::Count { .. } | Kind::Target { .. }
            )
        })
        .prop_flat_map(|ind| {
            let pair: BoxedStrategy<(Value, Value)> = match &ind.kind {
                Kind::Ratio { part_of_whole, .. } => {
                    let part = *part_of_whole;
                    (1..2000u32, 0..2000u32, 0..2000u32)
                        .prop_map(move |(d, a, b)| {
                            let cap = if part { d } else { u32::MAX };
                            let (lo, hi) = (a.min(b).min(cap), a.max(b).min(cap));
                            let ratio = |n: u32| Value::Ratio {
                                numerator: f64::from(n),
                                denominator: f64::from(d),
                            };
                            (ratio(lo), ratio(hi))
                        })
                        .boxed()
                }
                Kind::Count { .. } => (0..40i64, 0..40i64)
                    .prop_map(|(a, b)| (Value::Count(a.min(b)), Value::Count(a.max(b))))
                    .boxed(),
                _ => (0..20_000u32, 0..20_000u32)
                    .prop_map(|(a, b)| {
                        let n = |k: u32| Value::Number(f64::from(k) / 100.0);
                        (n(a.min(b)), n(a.max(b)))
                    })
                    .boxed(),
            };
            (Just(ind), pair)
        })
        .prop_map(|(ind, (lo, hi))| (ind, lo, hi))
}

fn direction_of(kind: &Kind) -> Direction {
    match kind {
        Kind::Ratio { direction, .. } | Kind::Target { direction, .. } => *direction,
        _ => Direction::AtLeast,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn validation_accepts_every_generated_set(set in valid_set()) {
        prop_assert_eq!(validate(&set), Ok(()));
    }

    #[test]
    fn a_set_round_trips_through_toml(set in valid_set()) {
        let text = to_toml(&set);
        prop_assert_eq!(from_toml(&text).map_err(|e| e.to_string()), Ok(set), "{}", text);
    }

    #[test]
    fn a_set_round_trips_through_json(set in valid_set()) {
        let json = serde_json::to_string(&set).unwrap();
        let back: CriteriaSet = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, set);
    }

    #[test]
    fn the_maximum_is_the_sum_of_the_indicators_and_can_be_reached(set in valid_set()) {
        let sum: f64 = set.indicators().map(|(_, i)| i.max_points).sum();
        prop_assert_eq!(set.max_points(), round_points(sum));
        let best: BTreeMap<String, Value> = set
            .indicators()
            .map(|(_, i)| (i.code.clone(), best_value(i)))
            .collect();
        let card = score(&set, &best).unwrap();
        prop_assert_eq!(card.max_total, set.max_points());
        prop_assert_eq!(card.total, card.max_total);
    }

    #[test]
    fn generated_values_are_valid_and_points_stay_within_bounds(
        (set, values) in set_with_values()
    ) {
        prop_assert_eq!(validate_values(&set, &values), Ok(()));
        let card = score(&set, &values).unwrap();
        for s in &card.indicators {
            prop_assert!(s.points >= 0.0 && s.points <= s.max_points, "{:?}", s);
            prop_assert_eq!(s.shortfall.is_some(), !s.met);
        }
        for g in &card.groups {
            prop_assert!(g.points >= 0.0 && g.points <= g.max_points, "{:?}", g);
        }
        prop_assert!(card.total >= 0.0 && card.total <= card.max_total);
    }

    #[test]
    fn completion_is_exactly_the_rule((set, values) in set_with_values()) {
        let card = score(&set, &values).unwrap();
        let total = round_points(card.indicators.iter().map(|i| i.points).sum());
        prop_assert_eq!(card.total, total);
        let mandatory_met = card.indicators.iter().filter(|i| i.mandatory).all(|i| i.met);
        let rule = &set.completion;
        let expected = (!rule.all_mandatory || mandatory_met)
            && rule.min_points.is_none_or(|min| total >= min);
        prop_assert_eq!(card.complete, expected);

        let failing: Vec<&str> = card.indicators.iter()
            .filter(|i| !i.met && i.mandatory)
            .chain(card.indicators.iter().filter(|i| !i.met && !i.mandatory))
            .map(|i| i.code.as_str())
            .collect();
        prop_assert_eq!(card.failing.iter().map(String::as_str).collect::<Vec<_>>(), failing);
    }

    #[test]
    fn more_is_never_worse_for_at_least_and_never_better_for_at_most(
        (ind, low, high) in ordered_pair()
    ) {
        let lo = score_indicator("G", &ind, Some(&low));
        let hi = score_indicator("G", &ind, Some(&high));
        match direction_of(&ind.kind) {
            Direction::AtLeast => {
                prop_assert!(lo.points <= hi.points, "{:?} then {:?}", lo, hi);
                prop_assert!(!lo.met || hi.met, "{:?} then {:?}", lo, hi);
            }
            Direction::AtMost => {
                prop_assert!(lo.points >= hi.points, "{:?} then {:?}", lo, hi);
                prop_assert!(!hi.met || lo.met, "{:?} then {:?}", lo, hi);
            }
        }
    }
}
