use crate::google::r#type::Date as PbDate;

/// A `google.type.Date` that is not a full calendar date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateError {
    pub year: i32,
    pub month: i32,
    pub day: i32,
}

impl std::fmt::Display for DateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{{year: {}, month: {}, day: {}}} is not a calendar date",
            self.year, self.month, self.day
        )
    }
}

impl std::error::Error for DateError {}

/// A full date from the wire; partial dates (year or month 0) are refused
/// because every use here needs a day.
pub fn to_date(d: &PbDate) -> Result<time::Date, DateError> {
    let err = || DateError {
        year: d.year,
        month: d.month,
        day: d.day,
    };
    let month = u8::try_from(d.month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(err)?;
    let day = u8::try_from(d.day).map_err(|_| err())?;
    if !(1..=9999).contains(&d.year) {
        return Err(err());
    }
    time::Date::from_calendar_date(d.year, month, day).map_err(|_| err())
}

pub fn from_date(d: time::Date) -> PbDate {
    PbDate {
        year: d.year(),
        month: i32::from(u8::from(d.month())),
        day: i32::from(d.day()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_partial_dates() {
        let d = time::macros::date!(2025 - 07 - 01);
        assert_eq!(to_date(&from_date(d)).unwrap(), d);
        for bad in [
            (2025, 0, 1),
            (2025, 2, 30),
            (0, 1, 1),
            (2025, 13, 1),
            (2025, 1, 0),
        ] {
            let pb = PbDate {
                year: bad.0,
                month: bad.1,
                day: bad.2,
            };
            assert!(to_date(&pb).is_err(), "{bad:?} accepted");
        }
    }
}
