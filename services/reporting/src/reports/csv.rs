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

/// A value as one CSV field: text as it is, numbers and booleans as Rust
/// writes them (`true`, `2.5`, `3`).
pub trait Cell {
    fn cell(&self) -> String;
}

impl Cell for str {
    fn cell(&self) -> String {
        self.to_owned()
    }
}

impl Cell for String {
    fn cell(&self) -> String {
        self.clone()
    }
}

impl<T: Cell + ?Sized> Cell for &T {
    fn cell(&self) -> String {
        (**self).cell()
    }
}

macro_rules! scalar_cells {
    ($($t:ty),*) => {
        $(impl Cell for $t {
            fn cell(&self) -> String {
                self.to_string()
            }
        })*
    };
}

scalar_cells!(bool, i32, i64, f64);

/// A schema from `"column" => value` pairs, so a column and its value are
/// written side by side and cannot drift apart.
macro_rules! schema {
    ($row:ident: $ty:ty { $($column:literal => $value:expr),+ $(,)? }) => {
        CsvSchema {
            columns: &[$($column),+],
            row: |$row: &$ty| vec![$(Cell::cell(&$value)),+],
        }
    };
}

/// Rows by child unit, then the totals (no unit: named "total").
pub const PROGRESS: CsvSchema<pb::ProgressRow> = schema!(r: pb::ProgressRow {
    "code" => r.unit.as_ref().map_or("", |u| u.code.as_str()),
    "name" => r.unit.as_ref().map_or("total", |u| u.name.as_str()),
    "units" => r.units, "completed_in_year" => r.completed_in_year,
    "completed_cumulative" => r.completed_cumulative,
    "draft" => counts(r).draft, "submitted" => counts(r).submitted,
    "verified" => counts(r).verified, "approved" => counts(r).approved,
    "returned" => counts(r).returned,
});

fn counts(row: &pb::ProgressRow) -> pb::StatusCounts {
    row.statuses.unwrap_or_default()
}

pub const TARGET_PROGRESS: CsvSchema<pb::TargetStatus> = schema!(s: pb::TargetStatus {
    "id" => target(s).id, "title" => target(s).title, "scope" => target(s).scope_code,
    "year" => target(s).year, "current" => s.current, "goal" => s.goal, "met" => s.met,
    "gap" => s.gap, "source" => target(s).source,
});

fn target(status: &pb::TargetStatus) -> &pb::Target {
    static NONE: std::sync::OnceLock<pb::Target> = std::sync::OnceLock::new();
    status
        .target
        .as_ref()
        .unwrap_or_else(|| NONE.get_or_init(pb::Target::default))
}

pub const SCORECARD: CsvSchema<apb::IndicatorResult> = schema!(i: apb::IndicatorResult {
    "code" => i.code, "name" => i.name, "group" => i.group_code, "mandatory" => i.mandatory,
    "met" => i.met, "points" => i.points, "max_points" => i.max_points,
    "shortfall" => i.shortfall,
});

pub const RANKINGS: CsvSchema<pb::RankingEntry> = schema!(e: pb::RankingEntry {
    "rank" => e.rank, "code" => e.unit_code, "name" => e.unit_name, "points" => e.points,
    "max_points" => e.max_points, "complete" => e.complete,
});

pub const INDICATOR_BREAKDOWN: CsvSchema<pb::IndicatorShare> = schema!(i: pb::IndicatorShare {
    "code" => i.code, "name" => i.name, "group" => i.group_code, "mandatory" => i.mandatory,
    "units" => i.units, "met" => i.met, "share_percent" => format!("{:.1}", i.share_percent),
});

pub const TREND: CsvSchema<pb::TrendPoint> = schema!(t: pb::TrendPoint {
    "year" => t.year, "code" => t.unit_code, "name" => t.unit_name,
    "predecessor" => t.predecessor, "points" => t.total_points, "max_points" => t.max_points,
    "complete" => t.complete,
});

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
    fn each_report_keeps_its_columns_and_row_encoding() {
        let unit = chiso_proto::units::v1::Unit {
            code: "395".into(),
            name: "Huyện Thọ Xuân".into(),
            ..Default::default()
        };
        let statuses = pb::StatusCounts {
            draft: 1,
            submitted: 2,
            verified: 3,
            approved: 4,
            returned: 5,
        };
        let rows = [
            pb::ProgressRow {
                unit: Some(unit),
                units: 30,
                completed_in_year: 6,
                completed_cumulative: 7,
                statuses: Some(statuses),
            },
            pb::ProgressRow {
                units: 3,
                ..Default::default()
            },
        ];
        assert_eq!(
            PROGRESS.lines(&rows),
            [
                "code,name,units,completed_in_year,completed_cumulative,draft,submitted,verified,approved,returned\n",
                "395,Huyện Thọ Xuân,30,6,7,1,2,3,4,5\n",
                ",total,3,0,0,0,0,0,0,0\n",
            ]
        );
        let status = pb::TargetStatus {
            target: Some(pb::Target {
                id: "t1".into(),
                title: "94 xã, lũy kế".into(),
                scope_code: "38".into(),
                year: 2022,
                source: "QĐ 969".into(),
                ..Default::default()
            }),
            current: 2.5,
            goal: 94.0,
            met: false,
            gap: 91.5,
            reported: true,
        };
        assert_eq!(
            TARGET_PROGRESS.lines([&status, &pb::TargetStatus::default()]),
            [
                "id,title,scope,year,current,goal,met,gap,source\n",
                "t1,\"94 xã, lũy kế\",38,2022,2.5,94,false,91.5,QĐ 969\n",
                ",,,0,0,0,false,0,\n",
            ]
        );
        let indicator = apb::IndicatorResult {
            code: "CQS.01".into(),
            name: "Họp trực tuyến".into(),
            group_code: "CQS".into(),
            mandatory: true,
            met: true,
            points: 10.0,
            max_points: 10.0,
            shortfall: String::new(),
            ..Default::default()
        };
        assert_eq!(
            SCORECARD.lines([&indicator]),
            [
                "code,name,group,mandatory,met,points,max_points,shortfall\n",
                "CQS.01,Họp trực tuyến,CQS,true,true,10,10,\n",
            ]
        );
        let entry = pb::RankingEntry {
            rank: 2,
            unit_code: "15499".into(),
            unit_name: "Xã A".into(),
            points: 77.5,
            max_points: 100.0,
            complete: true,
            status: 4,
        };
        assert_eq!(
            RANKINGS.lines([&entry]),
            [
                "rank,code,name,points,max_points,complete\n",
                "2,15499,Xã A,77.5,100,true\n",
            ]
        );
        let share = pb::IndicatorShare {
            code: "CQS.01".into(),
            name: "Họp trực tuyến".into(),
            group_code: "CQS".into(),
            mandatory: false,
            units: 3,
            met: 2,
            share_percent: 200.0 / 3.0,
        };
        assert_eq!(
            INDICATOR_BREAKDOWN.lines([&share]),
            [
                "code,name,group,mandatory,units,met,share_percent\n",
                "CQS.01,Họp trực tuyến,CQS,false,3,2,66.7\n",
            ]
        );
        let point = pb::TrendPoint {
            year: 2022,
            unit_code: "15499".into(),
            unit_name: "Xã A".into(),
            predecessor: true,
            status: 4,
            total_points: 80.0,
            max_points: 100.0,
            complete: true,
        };
        assert_eq!(
            TREND.lines([&point]),
            [
                "year,code,name,predecessor,points,max_points,complete\n",
                "2022,15499,Xã A,true,80,100,true\n",
            ]
        );
    }
}
