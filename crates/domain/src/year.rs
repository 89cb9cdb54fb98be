use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// A programme year. chiso records 2000–2100: wide enough for every plan,
/// narrow enough to catch a day or a two-digit year sent by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct Year(i32);

impl Year {
    pub const FIRST: i32 = 2000;
    pub const LAST: i32 = 2100;

    pub fn new(year: i32) -> Result<Year, Invalid> {
        if (Year::FIRST..=Year::LAST).contains(&year) {
            Ok(Year(year))
        } else {
            Err(Invalid(format!(
                "{year} is outside {}–{}",
                Year::FIRST,
                Year::LAST
            )))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }

    /// 31 December of the year: the hierarchy a year's report reads by default.
    pub fn last_day(self) -> time::Date {
        time::Date::from_calendar_date(self.0, time::Month::December, 31)
            .expect("31 December exists in every year")
    }
}

impl fmt::Display for Year {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<i32> for Year {
    type Error = Invalid;

    fn try_from(y: i32) -> Result<Self, Self::Error> {
        Year::new(y)
    }
}

impl From<Year> for i32 {
    fn from(y: Year) -> i32 {
        y.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_one_message() {
        assert_eq!(Year::new(2025).unwrap().get(), 2025);
        assert_eq!(
            Year::new(2025).unwrap().last_day(),
            time::macros::date!(2025 - 12 - 31)
        );
        for bad in [0, 25, 1999, 2101, -2025] {
            assert_eq!(
                Year::new(bad).unwrap_err().0,
                format!("{bad} is outside 2000–2100")
            );
        }
    }
}
