//! Tables for people, JSON and CSV for scripts: every client command prints
//! through here.

use clap::ValueEnum;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table as Grid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
    Csv,
}

/// Rows under named columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: Option<String>,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Columns (by index) aligned right in a table, e.g. numbers.
    pub right: Vec<usize>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            title: None,
            headers: headers.to_vec(),
            rows: Vec::new(),
            right: Vec::new(),
        }
    }

    /// Aligns the named columns right in a table (numbers line up).
    pub fn align_right(mut self, columns: &[&str]) -> Table {
        self.right = columns
            .iter()
            .filter_map(|c| self.headers.iter().position(|h| h == c))
            .collect();
        self
    }

    pub fn titled(mut self, title: impl Into<String>) -> Table {
        self.title = Some(title.into());
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        self.rows.push(row);
    }

    /// The rows as JSON objects keyed by column.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        self.headers
                            .iter()
                            .zip(row)
                            .map(|(h, v)| ((*h).to_owned(), serde_json::Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    pub fn render(&self, output: Output) -> anyhow::Result<String> {
        match output {
            Output::Table => {
                let mut grid = Grid::new();
                grid.load_preset(UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_header(self.headers.clone());
                for row in &self.rows {
                    grid.add_row(row.clone());
                }
                for &i in &self.right {
                    if let Some(column) = grid.column_mut(i) {
                        column.set_cell_alignment(CellAlignment::Right);
                    }
                }
                Ok(match &self.title {
                    Some(title) => format!("{title}\n{grid}\n"),
                    None => format!("{grid}\n"),
                })
            }
            Output::Json => Ok(serde_json::to_string_pretty(&self.to_json())? + "\n"),
            Output::Csv => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                writer.write_record(&self.headers)?;
                for row in &self.rows {
                    writer.write_record(row)?;
                }
                Ok(String::from_utf8(writer.into_inner()?)?)
            }
        }
    }
}

/// `1 problem`, `3 problems`.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Several tables printed as one answer: one JSON object keyed by section,
/// CSV sections separated by a blank line.
pub fn render_sections(sections: &[(&str, &Table)], output: Output) -> anyhow::Result<String> {
    match output {
        Output::Json => {
            let object: serde_json::Map<_, _> = sections
                .iter()
                .map(|(name, t)| ((*name).to_owned(), t.to_json()))
                .collect();
            Ok(serde_json::to_string_pretty(&object)? + "\n")
        }
        _ => {
            let parts: anyhow::Result<Vec<String>> =
                sections.iter().map(|(_, t)| t.render(output)).collect();
            Ok(parts?.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["code", "name"]);
        t.push(vec!["15499".into(), "Thị trấn Thọ Xuân".into()]);
        t.push(vec!["15502".into(), "Xã Xuân Hồng, mới".into()]);
        t
    }

    #[test]
    fn formats_keep_vietnamese_names_and_quote_csv() {
        let t = sample();
        assert!(
            t.render(Output::Table)
                .unwrap()
                .contains("Thị trấn Thọ Xuân")
        );
        let json: serde_json::Value =
            serde_json::from_str(&t.render(Output::Json).unwrap()).unwrap();
        assert_eq!(json[1]["name"], "Xã Xuân Hồng, mới");
        let csv = t.render(Output::Csv).unwrap();
        assert_eq!(csv.lines().nth(2).unwrap(), "15502,\"Xã Xuân Hồng, mới\"");
    }
}
