//! What a unit reports for an indicator, and the checks a value must pass
//! before it is stored or scored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{CriteriaSet, Indicator, Kind};
use super::violation::{Violation, Violations};

/// One reported value. Which variant an indicator takes follows its kind:
/// yes_no → `Bool`, choice → `Choice`, ratio → `Ratio`, count → `Count`,
/// target → `Number`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Bool(bool),
    /// The code of the chosen option.
    Choice(String),
    Ratio {
        numerator: f64,
        denominator: f64,
    },
    /// Signed so that a negative count from a form reaches validation and
    /// gets a message, instead of failing to decode.
    Count(i64),
    Number(f64),
}

impl Value {
    /// The name used in messages; matches the serde tag.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Choice(_) => "choice",
            Value::Ratio { .. } => "ratio",
            Value::Count(_) => "count",
            Value::Number(_) => "number",
        }
    }
}

/// The value kind an indicator takes.
pub fn expected_value(kind: &Kind) -> &'static str {
    match kind {
        Kind::YesNo => "bool",
        Kind::Choice { .. } => "choice",
        Kind::Ratio { .. } => "ratio",
        Kind::Count { .. } => "count",
        Kind::Target { .. } => "number",
    }
}

/// Checks one value as a request carries it: paths are `code` (the indicator
/// code) and `value`, `value.numerator`, `value.denominator`.
pub fn validate_value(set: &CriteriaSet, code: &str, value: &Value) -> Result<(), Violations> {
    let mut out = Vec::new();
    match set.indicator(code) {
        None => out.push(Violation::new(
            "code",
            format!(
                "{code:?} is not an indicator of {} v{}",
                set.id, set.version
            ),
        )),
        Some(ind) => check(&mut out, "value", ind, value),
    }
    Violations::into_result(out)
}

/// Checks every value of an assessment; paths are `values["CQS.01"]`,
/// `values["CQS.01"].numerator`, …. Missing indicators are fine: a draft
/// fills up over time and scoring treats them as not met.
pub fn validate_values(
    set: &CriteriaSet,
    values: &BTreeMap<String, Value>,
) -> Result<(), Violations> {
    let mut out = Vec::new();
    for (code, value) in values {
        let path = format!("values[{code:?}]");
        match set.indicator(code) {
            None => out.push(Violation::new(
                path,
                format!(
                    "{code:?} is not an indicator of {} v{}",
                    set.id, set.version
                ),
            )),
            Some(ind) => check(&mut out, &path, ind, value),
        }
    }
    Violations::into_result(out)
}

fn check(out: &mut Vec<Violation>, path: &str, ind: &Indicator, value: &Value) {
    match (&ind.kind, value) {
        (Kind::YesNo, Value::Bool(_)) => {}
        (Kind::Choice { options }, Value::Choice(chosen)) => {
            if !options.iter().any(|o| &o.code == chosen) {
                let known: Vec<&str> = options.iter().map(|o| o.code.as_str()).collect();
                out.push(Violation::new(
                    path,
                    format!(
                        "{chosen:?} is not an option of {} (one of: {})",
                        ind.code,
                        known.join(", ")
                    ),
                ));
            }
        }
        (
            Kind::Ratio { part_of_whole, .. },
            Value::Ratio {
                numerator,
                denominator,
            },
        ) => {
            let n_ok = amount(out, &format!("{path}.numerator"), *numerator);
            let d_ok = amount(out, &format!("{path}.denominator"), *denominator);
            if n_ok && d_ok && *part_of_whole && numerator > denominator {
                out.push(Violation::new(
                    format!("{path}.numerator"),
                    format!(
                        "{numerator} is more than the denominator {denominator}: \
                         a part cannot exceed its whole"
                    ),
                ));
            }
        }
        (Kind::Count { .. }, Value::Count(n)) => {
            if *n < 0 {
                out.push(Violation::new(
                    path,
                    format!("{n} is negative; counts start at 0"),
                ));
            }
        }
        (Kind::Target { .. }, Value::Number(x)) => {
            if amount(out, path, *x) && ind.is_percent() && *x > 100.0 {
                out.push(Violation::new(path, format!("{x}% is outside 0–100")));
            }
        }
        (kind, _) => out.push(Violation::new(
            path,
            format!(
                "{} is a {} indicator and takes a {} value, not a {}",
                ind.code,
                kind.name(),
                expected_value(kind),
                value.kind_name()
            ),
        )),
    }
}

/// Quantities in these programmes (households, dossiers, shares, ranks) are
/// never negative.
fn amount(out: &mut Vec<Violation>, path: &str, x: f64) -> bool {
    if !x.is_finite() {
        out.push(Violation::new(path, format!("{x} is not a finite number")));
        false
    } else if x < 0.0 {
        out.push(Violation::new(path, format!("{x} is negative")));
        false
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::one_group_set;
    use crate::model::*;

    fn set() -> CriteriaSet {
        let ind = |code: &str, unit: Option<&str>, kind: Kind| Indicator {
            code: code.into(),
            name: "x".into(),
            unit: unit.map(Into::into),
            mandatory: true,
            evidence_required: false,
            max_points: 1.0,
            scoring: Scoring::AllOrNothing,
            kind,
        };
        one_group_set(
            1,
            ("G", "g"),
            vec![
                ind("YES", None, Kind::YesNo),
                ind(
                    "CHOICE",
                    None,
                    Kind::Choice {
                        options: vec![
                            ChoiceOption {
                                code: "a".into(),
                                label: "A".into(),
                                points: 1.0,
                                met: true,
                            },
                            ChoiceOption {
                                code: "b".into(),
                                label: "B".into(),
                                points: 0.0,
                                met: false,
                            },
                        ],
                    },
                ),
                ind(
                    "RATIO",
                    Some("%"),
                    Kind::Ratio {
                        threshold: 60.0,
                        direction: Direction::AtLeast,
                        part_of_whole: true,
                    },
                ),
                ind(
                    "COUNT",
                    None,
                    Kind::Count {
                        met_at: 1,
                        tiers: vec![],
                    },
                ),
                ind(
                    "SHARE",
                    Some("%"),
                    Kind::Target {
                        threshold: 20.0,
                        direction: Direction::AtLeast,
                    },
                ),
                ind(
                    "RANK",
                    Some("hạng"),
                    Kind::Target {
                        threshold: 10.0,
                        direction: Direction::AtMost,
                    },
                ),
            ],
        )
    }

    fn problems(code: &str, value: Value) -> Vec<(String, String)> {
        match validate_value(&set(), code, &value) {
            Ok(()) => vec![],
            Err(v) => v.0.into_iter().map(|v| (v.path, v.message)).collect(),
        }
    }

    #[test]
    fn good_values_pass() {
        assert!(problems("YES", Value::Bool(false)).is_empty());
        assert!(problems("CHOICE", Value::Choice("b".into())).is_empty());
        let r = Value::Ratio {
            numerator: 0.0,
            denominator: 0.0,
        };
        assert!(problems("RATIO", r).is_empty());
        assert!(problems("COUNT", Value::Count(0)).is_empty());
        assert!(problems("SHARE", Value::Number(100.0)).is_empty());
        assert!(problems("RANK", Value::Number(250.0)).is_empty());
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            problems("NOPE", Value::Bool(true)),
            [(
                "code".into(),
                "\"NOPE\" is not an indicator of th-test v1".into()
            )]
        );
        assert_eq!(
            problems("YES", Value::Count(1)),
            [(
                "value".into(),
                "YES is a yes_no indicator and takes a bool value, not a count".into()
            )]
        );
        assert_eq!(
            problems("CHOICE", Value::Choice("c".into())),
            [(
                "value".into(),
                "\"c\" is not an option of CHOICE (one of: a, b)".into()
            )]
        );
        let over = Value::Ratio {
            numerator: 31.0,
            denominator: 30.0,
        };
        assert_eq!(problems("RATIO", over)[0].0, "value.numerator");
        let negative = Value::Ratio {
            numerator: -1.0,
            denominator: f64::INFINITY,
        };
        let found: Vec<_> = problems("RATIO", negative)
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(found, ["value.numerator", "value.denominator"]);
        assert_eq!(
            problems("COUNT", Value::Count(-2)),
            [("value".into(), "-2 is negative; counts start at 0".into())]
        );
        assert_eq!(
            problems("SHARE", Value::Number(120.0)),
            [("value".into(), "120% is outside 0–100".into())]
        );
    }

    #[test]
    fn a_whole_assessment_is_checked_at_once() {
        let values = BTreeMap::from([
            ("RATIO".to_string(), Value::Number(52.0)),
            ("ZZZ".to_string(), Value::Bool(true)),
            ("COUNT".to_string(), Value::Count(3)),
        ]);
        let err = validate_values(&set(), &values).unwrap_err();
        let paths: Vec<_> = err.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["values[\"RATIO\"]", "values[\"ZZZ\"]"]);
    }

    #[test]
    fn values_read_as_tagged_json() {
        let v: Value =
            serde_json::from_str(r#"{"ratio":{"numerator":52,"denominator":100}}"#).unwrap();
        assert_eq!(
            v,
            Value::Ratio {
                numerator: 52.0,
                denominator: 100.0
            }
        );
        assert_eq!(
            serde_json::to_string(&Value::Choice("chu_tich".into())).unwrap(),
            r#"{"choice":"chu_tich"}"#
        );
    }
}
