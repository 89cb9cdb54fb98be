//! The CSV of each report: its columns and how one row is written, used by
//! `ExportReport`, and public so any other writer of the same report (the
//! CLI) uses the very same columns.

use chiso_proto::assessment::v1 as apb;
use chiso_proto::reporting::v1 as pb;

/// One report's CSV: a header line, then one line per row.
pub struct CsvSchema<R: 'static> {
    pub columns: &'static [&'static str],
    pub row: fn(&R) -> Vec<String>,
}

impl<R> CsvSchema<R> {
    /// The header and one line per row, each ending in a line break.
    pub fn lines<'a>(&self, rows: impl IntoIterator<Item = &'a R>) -> Vec<String>
    where
        R: 'a,
    {
        let header: Vec<String> = self.columns.iter().map(|c| (*c).to_owned()).collect();
        std::iter::once(csv_line(&header))
            .chain(rows.into_iter().map(|r| csv_line(&(self.row)(r))))
            .collect()
    }
}

/// Rows by child unit, then the totals (no unit: named "total").
pub const PROGRESS: CsvSchema<pb::ProgressRow> = CsvSchema {
    columns: &[
        "code",
        "name",
        "units",
        "completed_in_year",
        "completed_cumulative",
        "draft",
        "submitted",
        "verified",
        "approved",
        "returned",
    ],
    row: |row| {
        let s = row.statuses.unwrap_or_default();
        let (code, name) = row
            .unit
            .as_ref()
            .map_or(("", "total"), |u| (u.code.as_str(), u.name.as_str()));
        [code.to_owned(), name.to_owned()]
            .into_iter()
            .chain(
                [
                    row.units,
                    row.completed_in_year,
                    row.completed_cumulative,
                    s.draft,
                    s.submitted,
                    s.verified,
                    s.approved,
                    s.returned,
                ]
                .map(|n| n.to_string()),
            )
            .collect()
    },
};

pub const TARGET_PROGRESS: CsvSchema<pb::TargetStatus> = CsvSchema {
    columns: &[
        "id", "title", "scope", "year", "current", "goal", "met", "gap", "source",
    ],
    row: |s| {
        let t = s.target.clone().unwrap_or_default();
        vec![
            t.id,
            t.title,
            t.scope_code,
            t.year.to_string(),
            s.current.to_string(),
            s.goal.to_string(),
            s.met.to_string(),
            s.gap.to_string(),
            t.source,
        ]
    },
};

pub const SCORECARD: CsvSchema<apb::IndicatorResult> = CsvSchema {
    columns: &[
        "code",
        "name",
        "group",
        "mandatory",
        "met",
        "points",
        "max_points",
        "shortfall",
    ],
    row: |i| {
        vec![
            i.code.clone(),
            i.name.clone(),
            i.group_code.clone(),
            i.mandatory.to_string(),
            i.met.to_string(),
            i.points.to_string(),
            i.max_points.to_string(),
            i.shortfall.clone(),
        ]
    },
};

pub const RANKINGS: CsvSchema<pb::RankingEntry> = CsvSchema {
    columns: &["rank", "code", "name", "points", "max_points", "complete"],
    row: |e| {
        vec![
            e.rank.to_string(),
            e.unit_code.clone(),
            e.unit_name.clone(),
            e.points.to_string(),
            e.max_points.to_string(),
            e.complete.to_string(),
        ]
    },
};

pub const INDICATOR_BREAKDOWN: CsvSchema<pb::IndicatorShare> = CsvSchema {
    columns: &[
        "code",
        "name",
        "group",
        "mandatory",
        "units",
        "met",
        "share_percent",
    ],
    row: |i| {
        vec![
            i.code.clone(),
            i.name.clone(),
            i.group_code.clone(),
            i.mandatory.to_string(),
            i.units.to_string(),
            i.met.to_string(),
            format!("{:.1}", i.share_percent),
        ]
    },
};

pub const TREND: CsvSchema<pb::TrendPoint> = CsvSchema {
    columns: &[
        "year",
        "code",
        "name",
        "predecessor",
        "points",
        "max_points",
        "complete",
    ],
    row: |t| {
        vec![
            t.year.to_string(),
            t.unit_code.clone(),
            t.unit_name.clone(),
            t.predecessor.to_string(),
            t.total_points.to_string(),
            t.max_points.to_string(),
            t.complete.to_string(),
        ]
    },
};

/// One CSV line, quoting fields that need it.
pub fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Lines gathered into chunks of about `size` bytes, each ending at a line
/// break, so a stream never splits a row.
pub fn chunks(lines: impl IntoIterator<Item = String>, size: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut chunk = String::new();
    for line in lines {
        chunk.push_str(&line);
        if chunk.len() >= size {
            chunks.push(std::mem::take(&mut chunk));
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_need_it_are_quoted() {
        let line = csv_line(&["a".into(), "b,c".into(), "say \"hi\"".into()]);
        assert_eq!(line, "a,\"b,c\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn chunks_end_at_line_breaks() {
        let lines = ["ab\n", "cd\n", "e\n"].map(String::from);
        assert_eq!(chunks(lines, 5), ["ab\ncd\n", "e\n"]);
    }

    #[test]
    fn the_progress_totals_row_is_named_total() {
        let lines = PROGRESS.lines([&pb::ProgressRow {
            units: 3,
            ..Default::default()
        }]);
        assert_eq!(lines[0].split(',').count(), PROGRESS.columns.len());
        assert_eq!(lines[1], ",total,3,0,0,0,0,0,0,0\n");
    }
}
