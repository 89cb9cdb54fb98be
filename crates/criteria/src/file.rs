//! The TOML form of a criteria set: one file per set, written and reviewed by
//! people at the provincial department before it is published.
//!
//! The file is flat where the model nests: each indicator is one
//! `[[groups.indicators]]` table with a `kind` and only the fields that kind
//! uses, so a reviewer reads an indicator top to bottom. Unknown fields are
//! refused (a misspelt `treshold` must not silently vanish), and every problem
//! names its line and field path.
//!
//! ```toml
//! id = "th-commune-2023"
//! version = 1
//! title = "Bộ tiêu chí xã hoàn thành chuyển đổi số"
//! level = "commune"               # commune | district | province
//! years = [2023, 2024, 2025]
//! source = "QĐ 1829/QĐ-UBND ngày 30/5/2023 của UBND tỉnh Thanh Hóa"
//! notes = "Which parts come from the decision, which are illustrative."
//!
//! [completion]
//! all_mandatory = true
//! # min_points = 80
//!
//! [[groups]]
//! code = "CQS"
//! name = "Chính quyền số"
//!
//! [[groups.indicators]]
//! code = "CQS.01"
//! name = "Tỷ lệ hộ gia đình thanh toán tiền điện không dùng tiền mặt"
//! kind = "ratio"                  # yes_no | choice | ratio | count | target
//! unit = "%"
//! threshold = 60
//! direction = ">="                # or "<="
//! mandatory = true                # default false
//! evidence_required = true        # default false
//! max_points = 1
//! scoring = "all_or_nothing"      # default; or "proportional"
//! ```
//!
//! Per kind: `ratio` takes `threshold`, `direction` and `part_of_whole`
//! (default true); `target` takes `threshold` and `direction`; `count` takes
//! `met_at` and optional `tiers = [{ at = 1, points = 5 }, …]`; `choice` takes
//! `options = [{ code, label, points, met }, …]` (`met` defaults to false);
//! `yes_no` takes nothing more.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::model::{
    ChoiceOption, Completion, CriteriaSet, Direction, Group, Indicator, Kind, Level, Scoring, Tier,
};
use super::validate::validate;
use super::violation::{Violation, Violations};

/// Reads a set from its TOML form. Checks the shape only (fields present,
/// of the right type, belonging to the indicator's kind); see [`load_toml`]
/// for the full check. Every problem carries the line it points at.
pub fn from_toml(text: &str) -> Result<CriteriaSet, Violations> {
    let lines = Lines::new(text);
    let file: SetFile = toml::from_str(text).map_err(|e| {
        let span = e.span();
        Violations(vec![Violation {
            line: span.as_ref().map(|s| lines.line_at(s.start)),
            path: span.map(|s| lines.path_at(s)).unwrap_or_default(),
            message: e.message().trim().to_string(),
        }])
    })?;
    let mut problems = Vec::new();
    let set = file.into_model(&mut problems);
    Violations::into_result(problems).map_err(|found| lines.locate(found))?;
    Ok(set)
}

/// Reads a set and checks it as [`validate`] would before publishing, each
/// problem with the line it points at.
pub fn load_toml(text: &str) -> Result<CriteriaSet, Violations> {
    let set = from_toml(text)?;
    validate(&set).map_err(|found| Lines::new(text).locate(found))?;
    Ok(set)
}

/// Writes a set in its TOML form; [`from_toml`] reads it back unchanged.
/// Every field is written out, defaults included, so a reviewer never has
/// to know them.
pub fn to_toml(set: &CriteriaSet) -> String {
    toml::to_string(&SetFile::from_model(set))
        .expect("a set file holds only strings, numbers, booleans, arrays and tables")
}

// The file form. Field order is the order people read and write them in.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFile {
    id: String,
    version: u32,
    title: String,
    level: Level,
    years: Vec<i32>,
    source: String,
    #[serde(default)]
    notes: String,
    completion: CompletionFile,
    groups: Vec<GroupFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompletionFile {
    all_mandatory: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_points: Option<f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    code: String,
    name: String,
    #[serde(default)]
    indicators: Vec<IndicatorFile>,
}

#[derive(Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindName {
    YesNo,
    Choice,
    Ratio,
    Count,
    Target,
}

impl KindName {
    fn as_str(self) -> &'static str {
        match self {
            KindName::YesNo => "yes_no",
            KindName::Choice => "choice",
            KindName::Ratio => "ratio",
            KindName::Count => "count",
            KindName::Target => "target",
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorFile {
    code: String,
    name: String,
    kind: KindName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    part_of_whole: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    met_at: Option<i64>,
    #[serde(default)]
    mandatory: bool,
    #[serde(default)]
    evidence_required: bool,
    max_points: f64,
    #[serde(default)]
    scoring: Scoring,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tiers: Option<Vec<Tier>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<Vec<ChoiceOption>>,
}

impl SetFile {
    fn into_model(self, problems: &mut Vec<Violation>) -> CriteriaSet {
        let groups = self
            .groups
            .into_iter()
            .enumerate()
            .map(|(g, group)| Group {
                code: group.code,
                name: group.name,
                indicators: group
                    .indicators
                    .into_iter()
                    .enumerate()
                    .map(|(i, ind)| {
                        ind.into_model(&format!("groups[{g}].indicators[{i}]"), problems)
                    })
                    .collect(),
            })
            .collect();
        CriteriaSet {
            id: self.id,
            version: self.version,
            title: self.title,
            level: self.level,
            years: self.years,
            source: self.source,
            notes: self.notes,
            groups,
            completion: Completion {
                all_mandatory: self.completion.all_mandatory,
                min_points: self.completion.min_points,
            },
        }
    }

    fn from_model(set: &CriteriaSet) -> SetFile {
        SetFile {
            id: set.id.clone(),
            version: set.version,
            title: set.title.clone(),
            level: set.level,
            years: set.years.clone(),
            source: set.source.clone(),
            notes: set.notes.clone(),
            completion: CompletionFile {
                all_mandatory: set.completion.all_mandatory,
                min_points: set.completion.min_points,
            },
            groups: set
                .groups
                .iter()
                .map(|g| GroupFile {
                    code: g.code.clone(),
                    name: g.name.clone(),
                    indicators: g.indicators.iter().map(IndicatorFile::from_model).collect(),
                })
                .collect(),
        }
    }
}

impl IndicatorFile {
    fn into_model(self, path: &str, problems: &mut Vec<Violation>) -> Indicator {
        let kind_name = self.kind.as_str();
        let mut misplaced = |field: &str, present: bool| {
            if present {
                problems.push(Violation::new(
                    format!("{path}.{field}"),
                    format!("`{field}` does not apply to a {kind_name} indicator"),
                ));
            }
        };
        let k = self.kind;
        misplaced(
            "threshold",
            self.threshold.is_some() && !matches!(k, KindName::Ratio | KindName::Target),
        );
        misplaced(
            "direction",
            self.direction.is_some() && !matches!(k, KindName::Ratio | KindName::Target),
        );
        misplaced(
            "part_of_whole",
            self.part_of_whole.is_some() && k != KindName::Ratio,
        );
        misplaced("met_at", self.met_at.is_some() && k != KindName::Count);
        misplaced("tiers", self.tiers.is_some() && k != KindName::Count);
        misplaced("options", self.options.is_some() && k != KindName::Choice);

        let mut required = |field: &str, present: bool| {
            if !present {
                problems.push(Violation::new(
                    format!("{path}.{field}"),
                    format!("a {kind_name} indicator needs `{field}`"),
                ));
            }
        };
        // Placeholders stand in for a missing field; the problem recorded
        // above keeps them from ever reaching a caller.
        let kind = match k {
            KindName::YesNo => Kind::YesNo,
            KindName::Choice => {
                required("options", self.options.is_some());
                Kind::Choice {
                    options: self.options.unwrap_or_default(),
                }
            }
            KindName::Ratio => {
                required("threshold", self.threshold.is_some());
                required("direction", self.direction.is_some());
                Kind::Ratio {
                    threshold: self.threshold.unwrap_or_default(),
                    direction: self.direction.unwrap_or(Direction::AtLeast),
                    part_of_whole: self.part_of_whole.unwrap_or(true),
                }
            }
            KindName::Count => {
                required("met_at", self.met_at.is_some());
                Kind::Count {
                    met_at: self.met_at.unwrap_or_default(),
                    tiers: self.tiers.unwrap_or_default(),
                }
            }
            KindName::Target => {
                required("threshold", self.threshold.is_some());
                required("direction", self.direction.is_some());
                Kind::Target {
                    threshold: self.threshold.unwrap_or_default(),
                    direction: self.direction.unwrap_or(Direction::AtLeast),
                }
            }
        };
        Indicator {
            code: self.code,
            name: self.name,
            unit: self.unit,
            mandatory: self.mandatory,
            evidence_required: self.evidence_required,
            max_points: self.max_points,
            scoring: self.scoring,
            kind,
        }
    }

    fn from_model(ind: &Indicator) -> IndicatorFile {
        let mut file = IndicatorFile {
            code: ind.code.clone(),
            name: ind.name.clone(),
            kind: KindName::YesNo,
            unit: ind.unit.clone(),
            threshold: None,
            direction: None,
            part_of_whole: None,
            met_at: None,
            mandatory: ind.mandatory,
            evidence_required: ind.evidence_required,
            max_points: ind.max_points,
            scoring: ind.scoring,
            tiers: None,
            options: None,
        };
        match &ind.kind {
            Kind::YesNo => {}
            Kind::Choice { options } => {
                file.kind = KindName::Choice;
                file.options = Some(options.clone());
            }
            Kind::Ratio {
                threshold,
                direction,
                part_of_whole,
            } => {
                file.kind = KindName::Ratio;
                file.threshold = Some(*threshold);
                file.direction = Some(*direction);
                file.part_of_whole = Some(*part_of_whole);
            }
            Kind::Count { met_at, tiers } => {
                file.kind = KindName::Count;
                file.met_at = Some(*met_at);
                file.tiers = Some(tiers.clone());
            }
            Kind::Target {
                threshold,
                direction,
            } => {
                file.kind = KindName::Target;
                file.threshold = Some(*threshold);
                file.direction = Some(*direction);
            }
        }
        file
    }
}

/// Where things are in the text, for messages. It follows the layout files
/// are written in (a `[[groups]]` / `[[groups.indicators]]` header per table,
/// one `key = value` per line) and falls back to the nearest enclosing table
/// when a file is laid out otherwise; it never affects what is parsed.
struct Lines {
    /// Byte offset where each line starts.
    starts: Vec<usize>,
    /// Field path → line of its first appearance; tables map to their header.
    paths: HashMap<String, usize>,
    /// The table path each line belongs to.
    tables: Vec<String>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut paths = HashMap::new();
        let mut tables = Vec::new();
        let mut table = String::new();
        let (mut g, mut i, mut o, mut t) =
            (None::<usize>, None::<usize>, None::<usize>, None::<usize>);
        let next = |n: Option<usize>| Some(n.map_or(0, |n| n + 1));
        let mut in_string = false;
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let s = raw.trim();
            let quotes = s.matches("\"\"\"").count() + s.matches("'''").count();
            let was_in_string = in_string;
            if quotes % 2 == 1 {
                in_string = !in_string;
            }
            if was_in_string {
                tables.push(table.clone());
                continue;
            }
            if let Some(header) = s.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
                table = match header.trim() {
                    "groups" => {
                        (g, i) = (next(g), None);
                        format!("groups[{}]", g.unwrap_or(0))
                    }
                    "groups.indicators" => {
                        (i, o, t) = (next(i), None, None);
                        format!("groups[{}].indicators[{}]", g.unwrap_or(0), i.unwrap_or(0))
                    }
                    h @ ("groups.indicators.options" | "groups.indicators.tiers") => {
                        let (name, k) = if h.ends_with("options") {
                            o = next(o);
                            ("options", o)
                        } else {
                            t = next(t);
                            ("tiers", t)
                        };
                        format!(
                            "groups[{}].indicators[{}].{name}[{}]",
                            g.unwrap_or(0),
                            i.unwrap_or(0),
                            k.unwrap_or(0)
                        )
                    }
                    other => other.to_string(),
                };
                paths.entry(table.clone()).or_insert(line);
            } else if let Some(header) = s.strip_prefix('[').and_then(|h| h.split(']').next()) {
                table = header.trim().to_string();
                paths.entry(table.clone()).or_insert(line);
            } else if let Some((key, _)) = s.split_once('=') {
                let key = key.trim();
                if !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    paths.entry(join(&table, key)).or_insert(line);
                }
            }
            tables.push(table.clone());
        }
        Lines {
            starts,
            paths,
            tables,
        }
    }

    /// The 1-based line holding byte `offset`.
    fn line_at(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// The best field path for an error the parser reports at `span`: the
    /// key written there, or the table the span starts in when it covers a
    /// whole table (a missing field).
    fn path_at(&self, span: std::ops::Range<usize>) -> String {
        let line = self.line_at(span.start);
        if self.line_at(span.end.saturating_sub(1).max(span.start)) != line {
            return self.tables.get(line - 1).cloned().unwrap_or_default();
        }
        let key = self
            .paths
            .iter()
            .filter(|(_, l)| **l == line)
            .map(|(p, _)| p.clone())
            .max_by_key(|p| p.len());
        key.or_else(|| self.tables.get(line - 1).cloned())
            .unwrap_or_default()
    }

    /// `found` with each problem's line.
    fn locate(&self, mut found: Violations) -> Violations {
        for v in &mut found.0 {
            v.line = self.line_of(&v.path);
        }
        found
    }

    /// The line of `path`, or of the nearest enclosing field or table found
    /// (`groups[0].indicators[2].options[1].code` falls back to the
    /// `options = [...]` line when options are written inline).
    fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(line) = self.paths.get(p) {
                return Some(*line);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
id = "th-commune-2022"
version = 1
title = "Bộ tiêu chí xã 2022"
level = "commune"
years = [2022]
source = "Thanh Hóa, 2022"
notes = """
Illustrative.
id = "not a key, inside a string"
"""

[completion]
all_mandatory = false
min_points = 50

[[groups]]
code = "NTS"
name = "Nhận thức số"

[[groups.indicators]]
code = "NTS.01"
name = "Chủ tịch UBND xã làm Trưởng Ban chỉ đạo chuyển đổi số"
kind = "choice"
max_points = 20
options = [
  { code = "chu_tich", label = "Chủ tịch", points = 20, met = true },
  { code = "pho_chu_tich", label = "Phó Chủ tịch", points = 10, met = true },
  { code = "khong", label = "Không có", points = 0 },
]

[[groups.indicators]]
code = "NTS.02"
name = "Số cuộc họp Ban chỉ đạo trong năm"
kind = "count"
unit = "cuộc họp"
met_at = 4
max_points = 20
tiers = [
  { at = 1, points = 5 },
  { at = 2, points = 10 },
  { at = 3, points = 15 },
  { at = 4, points = 20 },
]

[[groups]]
code = "HTS"
name = "Hạ tầng số"

[[groups.indicators]]
code = "HTS.01"
name = "Tỷ lệ thôn có camera an ninh"
kind = "ratio"
threshold = 100
direction = ">="
max_points = 60
scoring = "proportional"
"#;

    #[test]
    fn a_file_reads_into_the_model() {
        let set = load_toml(SMALL).unwrap();
        assert_eq!(set.id, "th-commune-2022");
        assert_eq!(set.completion.min_points, Some(50.0));
        assert_eq!(set.groups[0].indicators.len(), 2);
        let Kind::Choice { options } = &set.groups[0].indicators[0].kind else {
            panic!("not a choice");
        };
        assert!(!options[2].met);
        assert_eq!(
            set.groups[1].indicators[0].kind,
            Kind::Ratio {
                threshold: 100.0,
                direction: Direction::AtLeast,
                part_of_whole: true
            }
        );
    }

    #[test]
    fn a_written_file_reads_back_the_same() {
        let set = from_toml(SMALL).unwrap();
        let text = to_toml(&set);
        assert_eq!(from_toml(&text).unwrap(), set, "{text}");
    }

    #[test]
    fn unknown_fields_name_their_line() {
        let text = SMALL.replace("threshold = 100", "treshold = 100");
        let err = from_toml(&text).unwrap_err();
        let p = &err.0[0];
        assert!(p.message.contains("treshold"), "{err}");
        let line = text
            .lines()
            .position(|l| l.starts_with("treshold"))
            .unwrap()
            + 1;
        assert_eq!(p.line, Some(line), "{err}");
        assert_eq!(p.path, "groups[1].indicators[0].treshold");
    }

    #[test]
    fn wrong_types_name_their_line_and_field() {
        let text = SMALL.replace("met_at = 4", "met_at = \"four\"");
        let err = from_toml(&text).unwrap_err();
        let p = &err.0[0];
        let line = text.lines().position(|l| l.starts_with("met_at")).unwrap() + 1;
        assert_eq!(p.line, Some(line), "{err}");
        assert_eq!(p.path, "groups[0].indicators[1].met_at");
    }

    #[test]
    fn fields_must_belong_to_the_kind() {
        let text = SMALL.replace("max_points = 60\n", "max_points = 60\nmet_at = 3\n");
        let text = text.replace("direction = \">=\"\n", "");
        let err = from_toml(&text).unwrap_err();
        let found: Vec<_> = err
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "groups[1].indicators[0].met_at",
                    "`met_at` does not apply to a ratio indicator"
                ),
                (
                    "groups[1].indicators[0].direction",
                    "a ratio indicator needs `direction`"
                ),
            ]
        );
        let met_at_line = text
            .lines()
            .position(|l| l.starts_with("met_at = 3"))
            .unwrap()
            + 1;
        assert_eq!(err.0[0].line, Some(met_at_line));
        // A missing field points at its indicator's header.
        let header = text
            .lines()
            .enumerate()
            .filter(|(_, l)| *l == "[[groups.indicators]]")
            .map(|(n, _)| n + 1)
            .last();
        assert_eq!(err.0[1].line, header);
    }

    #[test]
    fn validation_problems_carry_lines_too() {
        let text = SMALL.replace("threshold = 100", "threshold = 120");
        let err = load_toml(&text).unwrap_err();
        let line = text
            .lines()
            .position(|l| l.starts_with("threshold"))
            .unwrap()
            + 1;
        assert_eq!(
            err.to_string(),
            format!("line {line}: groups[1].indicators[0].threshold: 120 is outside 0–100")
        );
        // Inline options point at the `options = [` line.
        let text = SMALL.replace("code = \"khong\"", "code = \"chu_tich\"");
        let err = load_toml(&text).unwrap_err();
        let line = text.lines().position(|l| l.starts_with("options")).unwrap() + 1;
        assert_eq!(err.0[0].path, "groups[0].indicators[0].options[2].code");
        assert_eq!(err.0[0].line, Some(line));
    }

    #[test]
    fn missing_fields_name_their_table() {
        let text = SMALL.replace("name = \"Hạ tầng số\"\n", "");
        let err = from_toml(&text).unwrap_err();
        let p = &err.0[0];
        assert!(p.message.contains("missing field `name`"), "{err}");
        let header = text
            .lines()
            .enumerate()
            .filter(|(_, l)| *l == "[[groups]]")
            .nth(1);
        assert_eq!(p.line, header.map(|(n, _)| n + 1), "{err}");
        assert_eq!(p.path, "groups[1]");

        let err = from_toml("id = \"x\"\nversion = 1\n").unwrap_err();
        assert_eq!(err.0[0].path, "", "{err}");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let err = from_toml("id = \"x\"\nversion = \n").unwrap_err();
        assert_eq!(err.0[0].line, Some(2), "{err}");
    }
}
