//! The gRPC edge of `chiso.assessment.v1`: each handler parses its request
//! into checked values, authorizes the caller, calls the core
//! (`crate::assessments`) and converts the answer.

mod assessment;
mod criteria;

use chiso_domain::{GsoCode, Year};
use chiso_proto::assessment::v1 as pb;
use chiso_server::{ApiError, Violations};

use crate::assessments::{Assessments, ValueWrite};
use crate::convert::value_from_pb;
use crate::repo::StoredValue;
use crate::units_client::ResolvedUnit;

/// A unit code and a year from the wire, or their violations.
fn unit_year(code: &str, year: i32) -> Result<(GsoCode, Year), Violations> {
    let mut v = Violations::new();
    let code = GsoCode::parse(code.trim()).map_err(|e| v.add("unit_code", e));
    let year = Year::new(year).map_err(|e| v.add("year", e));
    match (code, year) {
        (Ok(code), Ok(year)) => Ok((code, year)),
        _ => Err(v),
    }
}

fn evidence(e: Option<&pb::Evidence>) -> pb::Evidence {
    let e = e.cloned().unwrap_or_default();
    pb::Evidence {
        document_number: e.document_number.trim().to_owned(),
        link: e.link.trim().to_owned(),
        note: e.note.trim().to_owned(),
    }
}

/// A value from the wire at `path` (`values[3]`), or why it carries none.
fn value_write(
    value: &pb::IndicatorValue,
    path: &str,
    index: usize,
) -> Result<ValueWrite, Violations> {
    let mut v = Violations::new();
    let code = value.indicator_code.trim();
    if code.is_empty() {
        v.add(format!("{path}.indicator_code"), "missing");
        return Err(v);
    }
    match value_from_pb(value) {
        Some(val) => Ok(ValueWrite {
            index,
            value: StoredValue {
                code: code.to_owned(),
                value: val,
                evidence: evidence(value.evidence.as_ref()),
            },
        }),
        None => {
            v.add(
                format!("{path}.value"),
                format!("no value given for {code}"),
            );
            Err(v)
        }
    }
}

impl Assessments {
    /// The unit a code named at the end of a year, with the year checked.
    async fn locate(&self, code: &str, year: i32) -> Result<(ResolvedUnit, Year), ApiError> {
        let (code, year) = unit_year(code, year)?;
        let unit = self.resolve_unit(&code, year).await?;
        Ok((unit, year))
    }
}
