//! Snapshot files (GSO lists as CSV) and the Thanh Hóa history shipped with
//! chiso. The facts come from the General Statistics Office of Vietnam (GSO);
//! `data/units/README.md` says how they were derived.

use chiso_proto::units::v1 as pb;

use crate::domain::{Kind, Part};
use crate::error::UnitsError;
use crate::service::Units;

/// One dated snapshot of the shipped history.
#[derive(Debug, Clone, Copy)]
pub struct ReferenceSnapshot {
    pub effective_date: &'static str,
    /// CSV: `code,name,kind,parent_code`, kind as GSO writes it.
    pub rows: &'static str,
    /// CSV: `old_code,new_code,part`.
    pub lineage: Option<&'static str>,
    pub source: &'static str,
}

/// Thanh Hóa (38) from 2019-09-11 to 2025-07-01, one snapshot per change.
pub const THANH_HOA_HISTORY: &[ReferenceSnapshot] =
    include!(concat!(env!("OUT_DIR"), "/thanh_hoa_history.rs"));

/// A CSV file that could not be read, with the line at fault.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CsvError {
    pub line: u64,
    pub message: String,
}

/// Reads snapshot rows. An unknown kind is passed on as unspecified so the
/// import reports it against its row.
pub fn parse_rows(text: &str) -> Result<Vec<pb::SnapshotRow>, CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| CsvError {
                line: 1,
                message: format!("missing column {name:?} (need code,name,kind,parent_code)"),
            })
    };
    let (code, name, kind, parent) = (
        column("code")?,
        column("name")?,
        column("kind")?,
        column("parent_code")?,
    );
    reader
        .records()
        .map(|r| {
            let r = r.map_err(csv_error)?;
            Ok(pb::SnapshotRow {
                code: r[code].to_owned(),
                name: r[name].to_owned(),
                kind: Kind::from_gso_name(&r[kind])
                    .or_else(|| Kind::parse(&r[kind]))
                    .map_or(pb::UnitKind::Unspecified, Kind::to_pb) as i32,
                parent_code: r[parent].to_owned(),
            })
        })
        .collect()
}

/// Reads lineage rows; an unknown part is passed on as unspecified.
pub fn parse_lineage(text: &str) -> Result<Vec<pb::LineageRow>, CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.map_err(csv_error)?;
            if r.len() < 3 {
                return Err(CsvError {
                    line: r.position().map_or(0, |p| p.line()),
                    message: "need old_code,new_code,part".to_owned(),
                });
            }
            Ok(pb::LineageRow {
                old_code: r[0].to_owned(),
                new_code: r[1].to_owned(),
                part: Part::parse(&r[2]).map_or(pb::LineagePart::Unspecified, Part::to_pb) as i32,
            })
        })
        .collect()
}

fn csv_error(e: csv::Error) -> CsvError {
    CsvError {
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
    }
}

/// The import request for one shipped snapshot. Its request id is fixed, so
/// loading the history again changes nothing.
pub fn reference_request(
    snapshot: &ReferenceSnapshot,
) -> Result<pb::ImportSnapshotRequest, UnitsError> {
    let date = crate::domain::date_from_sql(snapshot.effective_date).map_err(|e| {
        UnitsError::Internal(format!("reference date {}: {e}", snapshot.effective_date))
    })?;
    let rows = parse_rows(snapshot.rows).map_err(|e| {
        UnitsError::Internal(format!(
            "reference snapshot {}: {e}",
            snapshot.effective_date
        ))
    })?;
    let lineage = snapshot
        .lineage
        .map(parse_lineage)
        .transpose()
        .map_err(|e| {
            UnitsError::Internal(format!(
                "reference lineage {}: {e}",
                snapshot.effective_date
            ))
        })?
        .unwrap_or_default();
    Ok(pb::ImportSnapshotRequest {
        effective_date: Some(chiso_proto::from_date(date)),
        rows,
        lineage,
        source: snapshot.source.to_owned(),
        validate_only: false,
        partial: false,
        request_id: format!("reference/thanh-hoa/{}", snapshot.effective_date),
    })
}

/// Loads the shipped Thanh Hóa history; already loaded snapshots are skipped.
pub async fn load_thanh_hoa(units: &Units) -> Result<usize, UnitsError> {
    let mut changes = 0;
    for snapshot in THANH_HOA_HISTORY {
        let request = reference_request(snapshot)?;
        let response = units
            .import_snapshot_as(&request, "chiso reference data")
            .await?;
        changes += response.summary.map_or(0, |s| {
            (s.established
                + s.dissolved
                + s.merged
                + s.split
                + s.renamed
                + s.reparented
                + s.reclassified
                + s.recoded) as usize
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_history_parses() {
        assert_eq!(THANH_HOA_HISTORY.len(), 9);
        for s in THANH_HOA_HISTORY {
            let req = reference_request(s).unwrap();
            assert!(
                req.rows.iter().all(|r| r.kind != 0),
                "{}: a row of unknown kind",
                s.effective_date
            );
            assert_eq!(req.rows[0].code, "38");
        }
        let last = THANH_HOA_HISTORY.last().unwrap();
        assert_eq!(last.effective_date, "2025-07-01");
        assert!(!parse_lineage(last.lineage.unwrap()).unwrap().is_empty());
    }

    #[test]
    fn bad_csv_names_the_line() {
        let err = parse_rows("code,name\n38,Thanh Hóa\n").unwrap_err();
        assert!(err.message.contains("kind"), "{err}");
        let rows = parse_rows("code,name,kind,parent_code\n38,Tỉnh Thanh Hóa,Làng,\n").unwrap();
        assert_eq!(rows[0].kind, 0);
    }
}
