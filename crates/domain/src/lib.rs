//! The vocabulary every chiso service shares, parsed once at the edge: a
//! [`GsoCode`], a reporting [`Year`], a caller's [`Scope`], and "today" as
//! Vietnam counts days. Each type has one constructor that checks it and one
//! message for what is wrong, so the cores never see an unchecked value.

mod code;
mod scope;
mod year;

pub use code::{CodeLevel, GsoCode};
pub use scope::{NATIONAL_SCOPE, Scope};
pub use year::Year;

/// Vietnam's offset from UTC (UTC+7, no daylight saving).
pub const VIETNAM_OFFSET: time::UtcOffset = match time::UtcOffset::from_hms(7, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("UTC+7 is a valid offset"),
};

/// Today in Vietnam: "as of today" means the local calendar day.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(VIETNAM_OFFSET)
        .date()
}

/// Why a value from outside was refused; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.0
    }
}
