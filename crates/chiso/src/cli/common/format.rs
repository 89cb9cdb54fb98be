//! Numbers, flags, dates and times as the commands print them.

use chiso_proto::google::r#type::Date as PbDate;

/// A number in full: 62.5, 100.
pub fn num(x: f64) -> String {
    format!("{x}")
}

pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// A date as YYYY-MM-DD; empty when absent or invalid.
pub fn date_text(d: Option<&PbDate>) -> String {
    d.and_then(|d| chiso_proto::to_date(d).ok())
        .map_or_else(String::new, |d| d.to_string())
}

/// A time in Vietnam (UTC+7), RFC 3339.
pub fn time_text(seconds: Option<i64>) -> String {
    let Some(seconds) = seconds else {
        return String::new();
    };
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .map(|t| t.to_offset(chiso_domain::VIETNAM_OFFSET))
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
