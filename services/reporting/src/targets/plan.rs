//! Plans as data: a TOML file of targets, each with the fields of
//! `chiso.reporting.v1.Target` and enum values by their proto names. The
//! plan shipped for Thanh Hóa is one such file, built into the binary.

use chiso_proto::assessment::v1::Comparison;
use chiso_proto::google::r#type::Date as PbDate;
use chiso_proto::reporting::v1::{Target, TargetKind};
use chiso_proto::units::v1::UnitLevel;
use serde::Deserialize;

const THANH_HOA: &str = include_str!("../../data/thanh_hoa_plan.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    target: Vec<PlanTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanTarget {
    id: String,
    kind: String,
    title: String,
    scope_code: String,
    level: String,
    year: i32,
    #[serde(default)]
    count: i32,
    #[serde(default)]
    cumulative: bool,
    #[serde(default)]
    unit_codes: Vec<String>,
    #[serde(default)]
    share_percent: f64,
    #[serde(default)]
    indicator_code: String,
    comparison: Option<String>,
    #[serde(default)]
    threshold: f64,
    source: String,
    /// `YYYY-MM-DD`: the hierarchy the target is read in.
    as_of: Option<String>,
}

/// An enum value by its proto name, as `from_str_name` reads it.
fn named<T>(id: &str, field: &str, name: &str, from: fn(&str) -> Option<T>) -> Result<T, String> {
    from(name).ok_or_else(|| format!("target {id}: {field} {name:?} is not a value of it"))
}

fn date(id: &str, text: &str) -> Result<PbDate, String> {
    let d = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|e| format!("target {id}: as_of {text:?}: {e}"))?;
    Ok(chiso_proto::from_date(d))
}

/// The targets of a plan file, in file order; checking them is
/// [`super::check`]'s work.
pub fn parse_plan(text: &str) -> Result<Vec<Target>, String> {
    let file: PlanFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.target
        .into_iter()
        .map(|t| {
            let comparison = match &t.comparison {
                Some(c) => named(&t.id, "comparison", c, Comparison::from_str_name)? as i32,
                None => Comparison::Unspecified as i32,
            };
            Ok(Target {
                kind: named(&t.id, "kind", &t.kind, TargetKind::from_str_name)? as i32,
                level: named(&t.id, "level", &t.level, UnitLevel::from_str_name)? as i32,
                as_of: t.as_of.as_deref().map(|d| date(&t.id, d)).transpose()?,
                comparison,
                title: t.title,
                scope_code: t.scope_code,
                year: t.year,
                count: t.count,
                cumulative: t.cumulative,
                unit_codes: t.unit_codes,
                share_percent: t.share_percent,
                indicator_code: t.indicator_code,
                threshold: t.threshold,
                source: t.source,
                id: t.id,
            })
        })
        .collect()
}

/// Thanh Hóa's plan: QĐ 969/QĐ-UBND (18/3/2022), NQ 06-NQ/TU, and Thọ
/// Xuân's own goal (`data/thanh_hoa_plan.toml`).
pub fn thanh_hoa_plan() -> Vec<Target> {
    parse_plan(THANH_HOA).expect("the shipped plan parses")
}
