//! Requests parsed into typed queries at the edge, with every bad field
//! named at once, so the reports below see checked values only.

use std::ops::RangeInclusive;

use chiso_domain::{GsoCode, Year};
use chiso_proto::google::r#type::Date as PbDate;
use chiso_proto::units::v1::UnitLevel;
use chiso_server::{ApiError, Violations};
use time::Date;

use crate::targets::year_end;

pub(crate) fn code(field: &str, text: &str, v: &mut Violations) -> Option<GsoCode> {
    GsoCode::parse(text.trim())
        .map_err(|e| v.add(field, e))
        .ok()
}

fn year(field: &str, year: i32, v: &mut Violations) -> Option<Year> {
    Year::new(year).map_err(|e| v.add(field, e)).ok()
}

fn level_or(level: i32, default: UnitLevel, v: &mut Violations) -> UnitLevel {
    match UnitLevel::try_from(level) {
        Ok(UnitLevel::Unspecified) => default,
        Ok(l) => l,
        Err(_) => {
            v.add("level", format!("{level} is not a UnitLevel"));
            default
        }
    }
}

/// `InvalidArgument` naming every field in `v`, if any.
pub(crate) fn checked(v: Violations) -> Result<(), ApiError> {
    if v.is_empty() { Ok(()) } else { Err(v.into()) }
}

/// The units of a level under a scope, in a year (commune unless named).
pub struct ScopeQuery {
    pub scope: GsoCode,
    pub year: Year,
    pub level: UnitLevel,
}

impl ScopeQuery {
    pub fn parse(scope_code: &str, year_value: i32, level: i32) -> Result<ScopeQuery, ApiError> {
        let mut v = Violations::new();
        let scope = code("scope_code", scope_code, &mut v);
        let year = year("year", year_value, &mut v);
        let level = level_or(level, UnitLevel::Commune, &mut v);
        match (scope, year) {
            (Some(scope), Some(year)) if v.is_empty() => Ok(ScopeQuery { scope, year, level }),
            _ => Err(v.into()),
        }
    }

    /// The hierarchy the year is reported in.
    pub fn as_of(&self) -> Date {
        self.year.last_day()
    }
}

/// Restating maps onto a later hierarchy: `restate_as_of` must not come
/// before the end of the reported year.
pub fn restate_date(restate_as_of: Option<&PbDate>, year: Year) -> Result<Option<Date>, ApiError> {
    let Some(d) = restate_as_of else {
        return Ok(None);
    };
    match chiso_proto::to_date(d) {
        Ok(d) if d >= year.last_day() => Ok(Some(d)),
        Ok(d) => Err(ApiError::invalid(
            "restate_as_of",
            format!(
                "{d} is before the end of {}; restating maps onto a later hierarchy",
                year.get()
            ),
        )),
        Err(e) => Err(ApiError::invalid("restate_as_of", e.to_string())),
    }
}

/// One unit's assessment of one year.
pub struct UnitYear {
    pub unit: GsoCode,
    pub year: Year,
}

impl UnitYear {
    pub fn parse(unit_code: &str, year_value: i32) -> Result<UnitYear, ApiError> {
        let mut v = Violations::new();
        let unit = code("unit_code", unit_code, &mut v);
        let year = year("year", year_value, &mut v);
        match (unit, year) {
            (Some(unit), Some(year)) => Ok(UnitYear { unit, year }),
            _ => Err(v.into()),
        }
    }
}

/// A unit's results over a range of years, the unit read in the hierarchy
/// of `as_of` (today unless given).
pub struct TrendQuery {
    pub unit: GsoCode,
    pub years: RangeInclusive<i32>,
    pub as_of: Date,
}

impl TrendQuery {
    pub fn parse(
        unit_code: &str,
        from_year: i32,
        to_year: i32,
        as_of: Option<&PbDate>,
    ) -> Result<TrendQuery, ApiError> {
        let mut v = Violations::new();
        let unit = code("unit_code", unit_code, &mut v);
        // Both ends are named "year", as they always were.
        year("year", from_year, &mut v);
        year("year", to_year, &mut v);
        if from_year > to_year {
            v.add(
                "to_year",
                format!("{to_year} is before from_year {from_year}"),
            );
        }
        let as_of = match as_of.map(chiso_proto::to_date) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                v.add("as_of", e.to_string());
                year_end(to_year.clamp(Year::FIRST, Year::LAST))
            }
            None => chiso_domain::today(),
        };
        match unit {
            Some(unit) if v.is_empty() => Ok(TrendQuery {
                unit,
                years: from_year..=to_year,
                as_of,
            }),
            _ => Err(v.into()),
        }
    }
}
