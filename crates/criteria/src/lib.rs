//! Criteria sets as data (DESIGN.md §3 "Criteria as data"): the model, its
//! TOML file form, the checks a set and a reported value must pass, and
//! scoring as a pure function.
//!
//! A crate of its own so that the CLI checks and scores files with the same
//! rules as the assessment service without linking the service.

mod defaults;
mod file;
mod model;
mod score;
mod validate;
mod values;
mod violation;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod props;

pub use defaults::defaults;
pub use file::{from_toml, load_toml, to_toml};
pub use model::{
    ChoiceOption, Completion, CriteriaSet, Direction, Group, Indicator, Kind, Level, Scoring, Tier,
    round_points,
};
pub use score::{Gap, GroupScore, IndicatorScore, Scorecard, Shortfall, score, score_indicator};
pub use validate::validate;
pub use values::{Value, expected_value, validate_value, validate_values};
pub use violation::{Violation, Violations};
