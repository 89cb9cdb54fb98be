//! A criteria set as data: what a province measures, how each indicator is
//! scored, and what "completing CĐS" means under it.
//!
//! This is the canonical form, stored as JSON once a set is published. It is
//! deliberately plain data: checks live in [`super::validate`], scoring in
//! [`super::score`], and the human-editable TOML form in [`super::file`].

use serde::{Deserialize, Serialize};

/// One version of a criteria set. A published version never changes; a
/// revision is a new `version` (or a new `id` when the legal basis changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriteriaSet {
    /// Slug naming the set across its versions, e.g. `th-commune-2023`.
    pub id: String,
    /// 1, 2, …; an assessment pins the version it was scored with.
    pub version: u32,
    pub title: String,
    /// The tier of unit the set assesses.
    pub level: Level,
    /// Report years the set applies to.
    pub years: Vec<i32>,
    /// The legal document the set comes from.
    pub source: String,
    /// Which parts come from the cited document and which are illustrative or
    /// local conventions; shown to whoever reads a scorecard.
    pub notes: String,
    pub groups: Vec<Group>,
    pub completion: Completion,
}

/// The tier of administrative unit a set assesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Commune,
    District,
    Province,
}

/// A named group of indicators ("Chính quyền số", "Hạ tầng số", …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub code: String,
    pub name: String,
    pub indicators: Vec<Indicator>,
}

/// When a unit "completes CĐS" under a set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// Every indicator marked `mandatory` must be met.
    pub all_mandatory: bool,
    /// And, when set, the total must reach this many points.
    pub min_points: Option<f64>,
}

/// One thing a unit reports and is scored on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    /// Unique within the set, ASCII (`CQS.01`); values are keyed by it.
    pub code: String,
    /// As the decision words it, in Vietnamese.
    pub name: String,
    /// Unit of the value as people read it: `%`, `cuộc họp`, `hạng`. A target
    /// whose unit is exactly `%` is a share and must stay within 0–100.
    pub unit: Option<String>,
    /// Counts for the completion rule's `all_mandatory`.
    pub mandatory: bool,
    /// A value needs supporting documents before review (handled elsewhere).
    pub evidence_required: bool,
    /// The most this indicator can contribute to the total.
    pub max_points: f64,
    /// How points follow the value for ratio, target and untiered count
    /// indicators; yes/no, choice and tiered count indicators score by their
    /// own rule and must leave this at `AllOrNothing`.
    pub scoring: Scoring,
    pub kind: Kind,
}

/// How an indicator's points follow its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// `max_points` when met, else 0.
    #[default]
    AllOrNothing,
    /// The share of the threshold reached, times `max_points`, capped at
    /// `max_points` (see [`super::score`] for the exact rule per direction).
    Proportional,
}

/// Which side of a threshold is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Met when value ≥ threshold (shares, counts: more is better).
    #[serde(rename = ">=", alias = "≥")]
    AtLeast,
    /// Met when value ≤ threshold (ranks, delays: less is better).
    #[serde(rename = "<=", alias = "≤")]
    AtMost,
}

impl Direction {
    pub fn symbol(self) -> &'static str {
        match self {
            Direction::AtLeast => "≥",
            Direction::AtMost => "≤",
        }
    }
}

/// What kind of value an indicator takes and how it is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// Value: yes or no. Met, with `max_points`, on yes.
    YesNo,
    /// A yes/no question with graded answers (head of the commune chairs the
    /// steering committee: 20, a deputy: 10, nobody: 0). Value: an option code.
    Choice { options: Vec<ChoiceOption> },
    /// Value: numerator and denominator; judged as the percentage
    /// 100 × numerator / denominator against `threshold` (a percentage).
    Ratio {
        threshold: f64,
        direction: Direction,
        /// The numerator is a part of the denominator (households paying
        /// electricity without cash / all households), so it cannot exceed
        /// it and the threshold lies within 0–100. False for ratios that may
        /// pass 100% (growth against last year).
        part_of_whole: bool,
    },
    /// Value: a non-negative whole number (meetings held, portals run).
    /// Met at or above `met_at`. With tiers, points are those of the highest
    /// tier reached; without, `scoring` applies against `met_at`.
    Count { met_at: i64, tiers: Vec<Tier> },
    /// Value: a number (a percentage when `unit` is `%`) against `threshold`.
    Target {
        threshold: f64,
        direction: Direction,
    },
}

impl Kind {
    /// The name used for the kind in files and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::YesNo => "yes_no",
            Kind::Choice { .. } => "choice",
            Kind::Ratio { .. } => "ratio",
            Kind::Count { .. } => "count",
            Kind::Target { .. } => "target",
        }
    }
}

/// One answer to a graded yes/no question. The file form writes it as is
/// (`{ code, label, points, met }`), so a misspelt key is refused here too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    pub code: String,
    pub label: String,
    pub points: f64,
    /// Choosing this answer counts as meeting the indicator; files may leave
    /// it out for the answers that do not.
    #[serde(default)]
    pub met: bool,
}

/// Points earned once a count reaches `at`; written as is in the file form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub at: i64,
    pub points: f64,
}

impl CriteriaSet {
    /// Every indicator with its group, in set order.
    pub fn indicators(&self) -> impl Iterator<Item = (&Group, &Indicator)> {
        self.groups
            .iter()
            .flat_map(|g| g.indicators.iter().map(move |i| (g, i)))
    }

    pub fn indicator(&self, code: &str) -> Option<&Indicator> {
        self.indicators().map(|(_, i)| i).find(|i| i.code == code)
    }

    /// The most points a unit can score under this set.
    pub fn max_points(&self) -> f64 {
        round_points(self.groups.iter().map(Group::max_points).sum())
    }

    /// Whether a value for `code` needs supporting documents; `None` for a
    /// code the set does not have.
    pub fn requires_evidence(&self, code: &str) -> Option<bool> {
        self.indicator(code).map(|i| i.evidence_required)
    }
}

impl Group {
    pub fn max_points(&self) -> f64 {
        round_points(self.indicators.iter().map(|i| i.max_points).sum())
    }
}

impl Indicator {
    /// The unit a shortfall is stated in: ratios are always percentages.
    pub fn display_unit(&self) -> Option<&str> {
        match self.kind {
            Kind::Ratio { .. } => Some("%"),
            _ => self.unit.as_deref(),
        }
    }

    /// A target whose value is a share of a whole, so bounded by 0–100.
    pub fn is_percent(&self) -> bool {
        match self.kind {
            Kind::Ratio { part_of_whole, .. } => part_of_whole,
            Kind::Target { .. } => self.unit.as_deref() == Some("%"),
            _ => false,
        }
    }
}

/// Points are kept to hundredths, as the province's forms print them, so that
/// sums of fractions compare against `min_points` without float noise
/// (`79.99999999` must not fail an 80-point rule).
pub fn round_points(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
