//! Arguments several commands take.

use chiso_proto::units::v1::UnitLevel;
use clap::ValueEnum;
use time::Date;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LevelArg {
    Province,
    District,
    Commune,
}

impl LevelArg {
    pub fn to_pb(self) -> UnitLevel {
        match self {
            LevelArg::Province => UnitLevel::Province,
            LevelArg::District => UnitLevel::District,
            LevelArg::Commune => UnitLevel::Commune,
        }
    }
}

pub fn parse_date(s: &str) -> Result<Date, String> {
    chiso_units::domain::date_from_sql(s).map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}
