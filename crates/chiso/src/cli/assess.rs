//! `chiso assess show|ls|set-values|submit|verify|approve|return|reopen|history`:
//! a unit's yearly assessment, as the people who fill and review it use it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chiso_criteria::Violation as Problem;
use chiso_proto::assessment::v1::{
    self as pb, assessment_service_client::AssessmentServiceClient,
    criteria_service_client::CriteriaServiceClient, indicator_value::Value as V,
};
use chiso_proto::units::v1::{self as units_pb, units_service_client::UnitsServiceClient};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::cli::common::client::{AuthedChannel, ClientArgs, explain};
use crate::cli::common::format::{num, time_text, yes_no};
use crate::cli::common::names::{level_name, status_name};
use crate::cli::common::output::{Output, Table, counted};
use crate::cli::common::paging::{PAGE_SIZE, every_page, list_sets};
use crate::cli::common::problems::report_problems;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Draft,
    Submitted,
    Verified,
    Approved,
    Returned,
}

impl StatusArg {
    fn to_pb(self) -> pb::AssessmentStatus {
        match self {
            StatusArg::Draft => pb::AssessmentStatus::Draft,
            StatusArg::Submitted => pb::AssessmentStatus::Submitted,
            StatusArg::Verified => pb::AssessmentStatus::Verified,
            StatusArg::Approved => pb::AssessmentStatus::Approved,
            StatusArg::Returned => pb::AssessmentStatus::Returned,
        }
    }
}

/// Which assessment: a unit's GSO code (as of the end of the year) and a year.
#[derive(Debug, Clone, Args)]
pub struct UnitYear {
    /// GSO code of the unit, as of the end of the year.
    #[arg(long)]
    pub unit: String,
    /// Report year.
    #[arg(long)]
    pub year: i32,
}

/// Concurrency and retries for a write.
#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    /// Act only if the assessment is still as read (its etag from `show`).
    #[arg(long)]
    pub etag: Option<String>,
    /// Makes a retry safe: a repeated id returns the first answer.
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AssessCommand {
    /// A unit's assessment for a year: status, score and every indicator.
    Show {
        #[command(flatten)]
        at: UnitYear,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Assessments within a scope (every page).
    Ls {
        /// Units under this code [default: the token's scope].
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        year: Option<i32>,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set indicator values from a CSV file.
    ///
    /// The header is indicator_code,value,evidence_document,evidence_link,evidence_note
    /// (only the first two are required). A value is written as the indicator's kind takes it: yes or no; an
    /// option code; a/b for a ratio (52/100); a whole number for a count; a
    /// number for a target. Rows with neither value nor evidence are skipped.
    /// The request id is derived from the file, unit and year, so running the
    /// same file again is a safe retry (pass --request-id to write it anew).
    SetValues {
        #[command(flatten)]
        at: UnitYear,
        /// CSV: indicator_code,value,evidence_document,evidence_link,evidence_note.
        file: PathBuf,
        /// Check and score only; nothing is written.
        #[arg(long)]
        validate_only: bool,
        /// For the year's first write: the criteria set to pin [default: the
        /// published set for the unit's level and year].
        #[arg(long)]
        criteria_set: Option<String>,
        /// With --criteria-set [default: its latest published version].
        #[arg(long, requires = "criteria_set")]
        criteria_set_version: Option<u32>,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Submit for review (submitter of the unit).
    Submit {
        #[command(flatten)]
        at: UnitYear,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Verify a commune's submitted assessment (reviewer of its district).
    Verify {
        #[command(flatten)]
        at: UnitYear,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve (approver of the province).
    Approve {
        #[command(flatten)]
        at: UnitYear,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Send a submitted or verified assessment back to be fixed.
    Return {
        #[command(flatten)]
        at: UnitYear,
        /// What must change.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reopen an approved assessment (approver of the province).
    Reopen {
        #[command(flatten)]
        at: UnitYear,
        /// Why it is reopened.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        write: WriteArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Every change to an assessment: values, transitions, who and why.
    History {
        #[command(flatten)]
        at: UnitYear,
        #[command(flatten)]
        client: ClientArgs,
    },
}

// ---- reading values from a file

/// The columns of a values file.
const COLUMNS: [&str; 5] = [
    "indicator_code",
    "value",
    "evidence_document",
    "evidence_link",
    "evidence_note",
];

/// Columns `show --output csv` adds for people; read and ignored, so that a
/// shown assessment can be edited and written back.
const INFORMATIONAL: [&str; 7] = [
    "name",
    "group",
    "mandatory",
    "met",
    "points",
    "max_points",
    "shortfall",
];

/// One row of a values file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    pub line: usize,
    pub code: String,
    pub value: String,
    pub evidence: pb::Evidence,
}

/// The rows of a values file and the problems found reading it. Rows without
/// value and evidence are left out; their lines are in the third part.
pub fn read_rows(text: &str) -> (Vec<CsvRow>, Vec<Problem>, Vec<usize>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut problems = Vec::new();
    let mut skipped = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let problem = |line: Option<usize>, path: &str, message: String| Problem {
        line,
        path: path.to_owned(),
        message,
    };
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.push(problem(Some(1), "", e.to_string()));
            return (Vec::new(), problems, skipped);
        }
    };
    let mut at: HashMap<&str, usize> = HashMap::new();
    for (i, name) in headers.iter().enumerate() {
        if let Some(column) = COLUMNS.iter().find(|c| **c == name) {
            if at.insert(column, i).is_some() {
                problems.push(problem(Some(1), name, "the column appears twice".into()));
            }
        } else if !INFORMATIONAL.contains(&name) {
            problems.push(problem(
                Some(1),
                name,
                format!("unknown column (expected {})", COLUMNS.join(",")),
            ));
        }
    }
    for required in &COLUMNS[..2] {
        if !at.contains_key(required) {
            problems.push(problem(
                Some(1),
                "",
                format!("no {required} column (the header is {})", COLUMNS.join(",")),
            ));
        }
    }
    if !problems.is_empty() {
        return (Vec::new(), problems, skipped);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                problems.push(problem(line, "", e.to_string()));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let field = |name: &str| {
            at.get(name)
                .and_then(|i| record.get(*i))
                .unwrap_or_default()
                .to_owned()
        };
        let row = CsvRow {
            line,
            code: field("indicator_code"),
            value: field("value"),
            evidence: pb::Evidence {
                document_number: field("evidence_document"),
                link: field("evidence_link"),
                note: field("evidence_note"),
            },
        };
        let has_evidence = !(row.evidence.document_number.is_empty()
            && row.evidence.link.is_empty()
            && row.evidence.note.is_empty());
        if row.value.is_empty() && !has_evidence {
            skipped.push(line);
            continue;
        }
        if row.code.is_empty() {
            problems.push(problem(Some(line), "", "no indicator_code".into()));
            continue;
        }
        if row.value.is_empty() {
            problems.push(problem(
                Some(line),
                &row.code,
                "evidence but no value".into(),
            ));
            continue;
        }
        rows.push(row);
    }
    (rows, problems, skipped)
}

fn finite(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A value as written in a file, read by the indicator's kind.
pub fn parse_value(ind: &pb::Indicator, text: &str) -> Result<V, String> {
    let kind = pb::IndicatorKind::try_from(ind.kind).unwrap_or(pb::IndicatorKind::Unspecified);
    match kind {
        pb::IndicatorKind::YesNo => match text.to_lowercase().as_str() {
            "yes" | "y" | "true" | "có" => Ok(V::Yes(true)),
            "no" | "n" | "false" | "không" => Ok(V::Yes(false)),
            _ => Err(format!("{text:?} is not yes or no (a yes/no indicator)")),
        },
        pb::IndicatorKind::Choice => {
            let codes: Vec<&str> = ind.options.iter().map(|o| o.code.as_str()).collect();
            if codes.contains(&text) {
                Ok(V::Choice(text.to_owned()))
            } else {
                Err(format!(
                    "{text:?} is not an option (one of: {})",
                    codes.join(", ")
                ))
            }
        }
        pb::IndicatorKind::Ratio => {
            let parsed = text
                .split_once('/')
                .and_then(|(n, d)| Some((finite(n)?, finite(d)?)));
            match parsed {
                Some((numerator, denominator)) => Ok(V::Ratio(pb::Ratio {
                    numerator,
                    denominator,
                })),
                None => Err(format!(
                    "{text:?} is not a ratio a/b (a ratio indicator, e.g. 52/100)"
                )),
            }
        }
        pb::IndicatorKind::Count => text
            .parse::<i64>()
            .map(V::Count)
            .map_err(|_| format!("{text:?} is not a whole number (a count indicator)")),
        pb::IndicatorKind::Target => {
            let number = if ind.unit == "%" {
                text.strip_suffix('%').unwrap_or(text)
            } else {
                text
            };
            finite(number)
                .map(V::Number)
                .ok_or_else(|| format!("{text:?} is not a number (a target indicator)"))
        }
        pb::IndicatorKind::Unspecified => Err("the set gives no kind for this indicator".into()),
    }
}

/// The rows as values of `set`, each with its line; or every problem found.
pub fn to_values(
    rows: &[CsvRow],
    set: &pb::CriteriaSet,
) -> Result<Vec<(usize, pb::IndicatorValue)>, Vec<Problem>> {
    let indicators: HashMap<&str, &pb::Indicator> = set
        .indicators
        .iter()
        .map(|i| (i.code.as_str(), i))
        .collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for row in rows {
        let mut fail = |message: String| {
            problems.push(Problem {
                line: Some(row.line),
                path: row.code.clone(),
                message,
            })
        };
        let Some(ind) = indicators.get(row.code.as_str()) else {
            fail(format!("not an indicator of {} v{}", set.id, set.version));
            continue;
        };
        if let Some(first) = seen.insert(&row.code, row.line) {
            fail(format!("already given on line {first}"));
            continue;
        }
        match parse_value(ind, &row.value) {
            Ok(value) => values.push((
                row.line,
                pb::IndicatorValue {
                    indicator_code: row.code.clone(),
                    value: Some(value),
                    evidence: Some(row.evidence.clone()),
                },
            )),
            Err(message) => fail(message),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

/// The server's complaints about `values[i]…`, at the lines they came from;
/// `None` when some complaint is not about a value.
fn value_problems(
    status: &tonic::Status,
    sent: &[(usize, pb::IndicatorValue)],
) -> Option<Vec<Problem>> {
    if status.code() != Code::InvalidArgument {
        return None;
    }
    let found = chiso_server::field_violations(status);
    let mut problems = Vec::new();
    for (field, description) in &found {
        let rest = field.strip_prefix("values[")?;
        let (index, rest) = rest.split_once(']')?;
        let (line, value) = sent.get(index.parse::<usize>().ok()?)?;
        let part = rest.trim_start_matches('.');
        let path = if part.is_empty() {
            value.indicator_code.clone()
        } else {
            format!("{} {part}", value.indicator_code)
        };
        problems.push(Problem {
            line: Some(*line),
            path,
            message: description.clone(),
        });
    }
    (!problems.is_empty()).then_some(problems)
}

/// The default request id of a values file: the same file for the same unit
/// and year is the same request.
pub fn derived_request_id(text: &str, unit: &str, year: i32) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("set-values\n{unit}\n{year}\n").as_bytes());
    hash.update(text.as_bytes());
    let digest = hash.finalize();
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("cli/set-values/{unit}/{year}/{hex}")
}

// ---- showing assessments

/// A value as a values file writes it.
pub fn value_text(value: Option<&V>) -> String {
    match value {
        None => String::new(),
        Some(V::Yes(b)) => if *b { "yes" } else { "no" }.to_owned(),
        Some(V::Choice(c)) => c.clone(),
        Some(V::Ratio(r)) => format!("{}/{}", num(r.numerator), num(r.denominator)),
        Some(V::Count(n)) => n.to_string(),
        Some(V::Number(x)) => num(*x),
    }
}

/// A stored value (as the history records it) as a values file writes it.
fn stored_value_text(value: &chiso_criteria::Value) -> String {
    use chiso_criteria::Value;
    match value {
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Choice(c) => c.clone(),
        Value::Ratio {
            numerator,
            denominator,
        } => format!("{}/{}", num(*numerator), num(*denominator)),
        Value::Count(n) => n.to_string(),
        Value::Number(x) => num(*x),
    }
}

fn points_text(points: f64, max: f64) -> String {
    format!("{}/{}", num(points), num(max))
}

/// One line on where an assessment stands.
fn standing(a: &pb::Assessment) -> String {
    let card = a.scorecard.clone().unwrap_or_default();
    let complete = if card.complete {
        "complete".to_owned()
    } else if card.failing.is_empty() {
        "not complete".to_owned()
    } else {
        let shown: Vec<&str> = card.failing.iter().take(8).map(String::as_str).collect();
        let more = if card.failing.len() > shown.len() {
            ", …"
        } else {
            ""
        };
        format!(
            "not complete: {} failing ({}{more})",
            card.failing.len(),
            shown.join(", ")
        )
    };
    format!(
        "{} v{} · {} points · {complete}",
        a.criteria_set_id,
        a.criteria_set_version,
        points_text(card.total_points, card.max_points)
    )
}

fn heading(a: &pb::Assessment) -> String {
    let mut text = format!(
        "{} {} · {} · {}\n{}",
        a.unit_code,
        a.unit_name,
        a.year,
        status_name(a.status),
        standing(a)
    );
    if !a.reason.is_empty() {
        text.push_str(&format!("\nreason: {}", a.reason));
    }
    if !a.etag.is_empty() {
        text.push_str(&format!(
            "\netag {} · updated {}",
            a.etag,
            time_text(a.updated_at.as_ref().map(|t| t.seconds))
        ));
    }
    text
}

fn evidence_of(value: Option<&pb::IndicatorValue>) -> pb::Evidence {
    value.and_then(|v| v.evidence.clone()).unwrap_or_default()
}

fn assessment_json(a: &pb::Assessment) -> serde_json::Value {
    let card = a.scorecard.clone().unwrap_or_default();
    let values: HashMap<&str, &pb::IndicatorValue> = a
        .values
        .iter()
        .map(|v| (v.indicator_code.as_str(), v))
        .collect();
    json!({
        "unit_code": a.unit_code,
        "unit_name": a.unit_name,
        "level": level_name(a.level),
        "year": a.year,
        "status": status_name(a.status),
        "criteria_set_id": a.criteria_set_id,
        "criteria_set_version": a.criteria_set_version,
        "total_points": card.total_points,
        "max_points": card.max_points,
        "complete": card.complete,
        "failing": card.failing,
        "reason": a.reason,
        "etag": a.etag,
        "updated_at": time_text(a.updated_at.as_ref().map(|t| t.seconds)),
        "groups": card.groups.iter().map(|g| json!({
            "code": g.code,
            "name": g.name,
            "points": g.points,
            "max_points": g.max_points,
        })).collect::<Vec<_>>(),
        "indicators": card.indicators.iter().map(|i| {
            let value = values.get(i.code.as_str()).copied();
            let evidence = evidence_of(value);
            json!({
                "code": i.code,
                "name": i.name,
                "group": i.group_code,
                "mandatory": i.mandatory,
                "value": value.map(|v| value_text(v.value.as_ref())),
                "met": i.met,
                "points": i.points,
                "max_points": i.max_points,
                "gap": i.gap,
                "shortfall": i.shortfall,
                "evidence": {
                    "document_number": evidence.document_number,
                    "link": evidence.link,
                    "note": evidence.note,
                },
            })
        }).collect::<Vec<_>>(),
    })
}

/// The indicator table: for people, failing ones marked; for CSV, the
/// columns of a values file plus what people read.
fn indicator_table(a: &pb::Assessment, output: Output) -> Table {
    let card = a.scorecard.clone().unwrap_or_default();
    let values: HashMap<&str, &pb::IndicatorValue> = a
        .values
        .iter()
        .map(|v| (v.indicator_code.as_str(), v))
        .collect();
    if output == Output::Table {
        let mut t = Table::new(&["code", "name", "value", "met", "points", "shortfall"]);
        for i in &card.indicators {
            let value = values.get(i.code.as_str()).copied();
            let met = match (i.met, i.mandatory) {
                (true, _) => "yes",
                (false, true) => "✗ no (mandatory)",
                (false, false) => "✗ no",
            };
            t.push(vec![
                i.code.clone(),
                i.name.clone(),
                value.map_or_else(String::new, |v| value_text(v.value.as_ref())),
                met.to_owned(),
                points_text(i.points, i.max_points),
                i.shortfall.clone(),
            ]);
        }
        return t;
    }
    let mut t = Table::new(&[
        "indicator_code",
        "name",
        "group",
        "mandatory",
        "value",
        "met",
        "points",
        "max_points",
        "shortfall",
        "evidence_document",
        "evidence_link",
        "evidence_note",
    ]);
    for i in &card.indicators {
        let value = values.get(i.code.as_str()).copied();
        let evidence = evidence_of(value);
        t.push(vec![
            i.code.clone(),
            i.name.clone(),
            i.group_code.clone(),
            yes_no(i.mandatory),
            value.map_or_else(String::new, |v| value_text(v.value.as_ref())),
            yes_no(i.met),
            num(i.points),
            num(i.max_points),
            i.shortfall.clone(),
            evidence.document_number,
            evidence.link,
            evidence.note,
        ]);
    }
    t
}

/// A whole assessment, with `lead` above it for people.
fn render_assessment(a: &pb::Assessment, lead: &str, output: Output) -> anyhow::Result<String> {
    match output {
        Output::Table => {
            let title = if lead.is_empty() {
                heading(a)
            } else {
                format!("{lead}\n{}", heading(a))
            };
            indicator_table(a, output).titled(title).render(output)
        }
        Output::Json => Ok(serde_json::to_string_pretty(&assessment_json(a))? + "\n"),
        Output::Csv => indicator_table(a, output).render(output),
    }
}

fn list_table(list: &[pb::Assessment]) -> Table {
    let mut t = Table::new(&[
        "unit", "name", "year", "status", "criteria", "points", "complete", "updated", "reason",
    ]);
    for a in list {
        let card = a.scorecard.clone().unwrap_or_default();
        t.push(vec![
            a.unit_code.clone(),
            a.unit_name.clone(),
            a.year.to_string(),
            status_name(a.status).to_owned(),
            format!("{} v{}", a.criteria_set_id, a.criteria_set_version),
            points_text(card.total_points, card.max_points),
            yes_no(card.complete),
            time_text(a.updated_at.as_ref().map(|t| t.seconds)),
            a.reason.clone(),
        ]);
    }
    t
}

/// The result of a transition: one line for people, the assessment for scripts.
fn render_moved(a: &pb::Assessment, output: Output) -> anyhow::Result<String> {
    match output {
        Output::Table => {
            let mut text = format!(
                "{}: the {} assessment of {} {}\n{}\n",
                status_name(a.status),
                a.year,
                a.unit_code,
                a.unit_name,
                standing(a)
            );
            if !a.reason.is_empty() {
                text.push_str(&format!("reason: {}\n", a.reason));
            }
            Ok(text)
        }
        Output::Json => Ok(serde_json::to_string_pretty(&assessment_json(a))? + "\n"),
        Output::Csv => list_table(std::slice::from_ref(a)).render(output),
    }
}

/// A history entry's stored value (JSON of value and evidence) for people.
fn history_value(json_text: &str) -> String {
    if json_text.is_empty() {
        return String::new();
    }
    #[derive(serde::Deserialize)]
    struct Stored {
        value: chiso_criteria::Value,
        #[serde(default)]
        evidence: Evidence,
    }
    #[derive(serde::Deserialize, Default)]
    struct Evidence {
        #[serde(default)]
        document_number: String,
    }
    match serde_json::from_str::<Stored>(json_text) {
        Ok(s) if s.evidence.document_number.is_empty() => stored_value_text(&s.value),
        Ok(s) => format!(
            "{} [{}]",
            stored_value_text(&s.value),
            s.evidence.document_number
        ),
        Err(_) => json_text.to_owned(),
    }
}

fn history_table(entries: &[pb::HistoryEntry], output: Output) -> Table {
    let change = |e: &pb::HistoryEntry| -> (String, String) {
        if e.action == "value" {
            (history_value(&e.old_value), history_value(&e.new_value))
        } else {
            (
                status_name(e.from_status).to_owned(),
                status_name(e.to_status).to_owned(),
            )
        }
    };
    if output == Output::Table {
        let mut t = Table::new(&[
            "seq",
            "time",
            "actor",
            "action",
            "indicator",
            "old → new",
            "reason",
        ]);
        for e in entries {
            let (old, new) = change(e);
            let arrow = if old.is_empty() {
                format!("→ {new}")
            } else {
                format!("{old} → {new}")
            };
            t.push(vec![
                e.sequence.to_string(),
                time_text(e.at.as_ref().map(|t| t.seconds)),
                e.actor.clone(),
                e.action.clone(),
                e.indicator_code.clone(),
                arrow,
                e.reason.clone(),
            ]);
        }
        return t;
    }
    let mut t = Table::new(&[
        "sequence",
        "time",
        "actor",
        "action",
        "indicator",
        "old",
        "new",
        "reason",
        "request_id",
    ]);
    for e in entries {
        let (old, new) = change(e);
        t.push(vec![
            e.sequence.to_string(),
            time_text(e.at.as_ref().map(|t| t.seconds)),
            e.actor.clone(),
            e.action.clone(),
            e.indicator_code.clone(),
            old,
            new,
            e.reason.clone(),
            e.request_id.clone(),
        ]);
    }
    t
}

// ---- talking to the server

struct Api {
    assessments: AssessmentServiceClient<AuthedChannel>,
    criteria: CriteriaServiceClient<AuthedChannel>,
    units: UnitsServiceClient<AuthedChannel>,
}

impl Api {
    async fn connect(client: &ClientArgs) -> anyhow::Result<Api> {
        let channel = client.connect().await?;
        Ok(Api {
            assessments: AssessmentServiceClient::new(channel.clone()),
            criteria: CriteriaServiceClient::new(channel.clone()),
            units: UnitsServiceClient::new(channel),
        })
    }

    async fn get(&mut self, at: &UnitYear) -> Result<pb::Assessment, tonic::Status> {
        self.assessments
            .get_assessment(pb::GetAssessmentRequest {
                unit_code: at.unit.clone(),
                year: at.year,
            })
            .await?
            .into_inner()
            .assessment
            .ok_or_else(|| tonic::Status::internal("the server sent no assessment"))
    }

    /// The criteria set values for `at` are read with: the one its
    /// assessment pins, the one asked for, or the only published one for
    /// the unit's level and year.
    async fn set_for(
        &mut self,
        at: &UnitYear,
        asked: Option<(String, u32)>,
    ) -> anyhow::Result<pb::CriteriaSet> {
        let (id, version) = match self.get(at).await {
            Ok(a) => {
                if let Some((id, version)) = &asked
                    && (*id != a.criteria_set_id
                        || (*version != 0 && *version as i32 != a.criteria_set_version))
                {
                    anyhow::bail!(
                        "the {} assessment of {} is scored with {} v{}, not {id}{}",
                        at.year,
                        a.unit_code,
                        a.criteria_set_id,
                        a.criteria_set_version,
                        if *version == 0 {
                            String::new()
                        } else {
                            format!(" v{version}")
                        }
                    );
                }
                (a.criteria_set_id, a.criteria_set_version)
            }
            Err(status) if status.code() == Code::NotFound => match asked {
                Some((id, version)) => (id, version as i32),
                None => self.published_set_for(at).await?,
            },
            Err(status) => return Err(explain(status)),
        };
        self.criteria
            .get_criteria_set(pb::GetCriteriaSetRequest { id, version })
            .await
            .map_err(explain)?
            .into_inner()
            .criteria_set
            .context("the server sent no criteria set")
    }

    async fn published_set_for(&mut self, at: &UnitYear) -> anyhow::Result<(String, i32)> {
        let unit = self
            .units
            .get_unit(units_pb::GetUnitRequest {
                unit: Some(units_pb::UnitRef {
                    r#ref: Some(units_pb::unit_ref::Ref::Code(at.unit.clone())),
                }),
                as_of: Some(chiso_proto::google::r#type::Date {
                    year: at.year,
                    month: 12,
                    day: 31,
                }),
            })
            .await
            .map_err(explain)?
            .into_inner()
            .unit
            .context("the server sent no unit")?;
        let level = units_pb::UnitLevel::try_from(unit.level).unwrap_or_default();
        let sets = list_sets(&mut self.criteria, level, at.year, false).await?;
        // The latest version of each set that applies.
        let mut latest: Vec<(String, i32)> = Vec::new();
        for s in sets {
            match latest.iter_mut().find(|(id, _)| *id == s.id) {
                Some(have) => have.1 = have.1.max(s.version),
                None => latest.push((s.id, s.version)),
            }
        }
        match latest.len() {
            1 => Ok(latest.remove(0)),
            0 => anyhow::bail!(
                "no published criteria set applies to {} units in {} ({} {})",
                level_name(unit.level),
                at.year,
                unit.code,
                unit.name
            ),
            _ => {
                let ids: Vec<String> = latest.iter().map(|(id, _)| id.clone()).collect();
                anyhow::bail!(
                    "several published criteria sets apply to {} units in {} ({}); name one with --criteria-set",
                    level_name(unit.level),
                    at.year,
                    ids.join(", ")
                )
            }
        }
    }
}

fn etag(write: &WriteArgs) -> String {
    write.etag.clone().unwrap_or_default()
}

fn request_id(write: &WriteArgs) -> String {
    write.request_id.clone().unwrap_or_default()
}

/// Moves an assessment through review with `call` and prints where it
/// stands.
async fn review(
    client: &ClientArgs,
    call: impl AsyncFnOnce(
        &mut AssessmentServiceClient<AuthedChannel>,
    ) -> Result<Option<pb::Assessment>, tonic::Status>,
) -> anyhow::Result<()> {
    let mut api = Api::connect(client).await?;
    let a = call(&mut api.assessments)
        .await
        .map_err(explain)?
        .context("the server sent no assessment")?;
    print!("{}", render_moved(&a, client.output)?);
    Ok(())
}

async fn set_values(
    at: UnitYear,
    file: &Path,
    validate_only: bool,
    asked: Option<(String, u32)>,
    write: WriteArgs,
    client: ClientArgs,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (rows, problems, skipped) = read_rows(&text);
    if !problems.is_empty() {
        return Err(report_problems(file, &problems, client.output));
    }
    anyhow::ensure!(!rows.is_empty(), "{}: no values to set", file.display());
    if !skipped.is_empty() {
        let lines: Vec<String> = skipped.iter().map(|l| l.to_string()).collect();
        eprintln!(
            "{}: skipped {} rows without a value (lines {})",
            file.display(),
            skipped.len(),
            lines.join(", ")
        );
    }
    let mut api = Api::connect(&client).await?;
    let set = api.set_for(&at, asked).await?;
    let values = to_values(&rows, &set).map_err(|p| report_problems(file, &p, client.output))?;
    let request_id = write
        .request_id
        .clone()
        .unwrap_or_else(|| derived_request_id(&text, at.unit.trim(), at.year));
    let answer = api
        .assessments
        .upsert_indicator_values(pb::UpsertIndicatorValuesRequest {
            unit_code: at.unit.clone(),
            year: at.year,
            values: values.iter().map(|(_, v)| v.clone()).collect(),
            criteria_set_id: set.id.clone(),
            criteria_set_version: set.version,
            etag: etag(&write),
            request_id,
            validate_only,
        })
        .await;
    let assessment = match answer {
        Ok(answer) => answer
            .into_inner()
            .assessment
            .context("the server sent no assessment")?,
        Err(status) => {
            return Err(match value_problems(&status, &values) {
                Some(problems) => report_problems(file, &problems, client.output),
                None => explain(status),
            });
        }
    };
    let sent = counted(values.len(), "value", "values");
    let lead = if validate_only {
        format!(
            "checked {sent} from {}: nothing was written",
            file.display()
        )
    } else {
        format!("set {sent} from {}", file.display())
    };
    print!("{}", render_assessment(&assessment, &lead, client.output)?);
    Ok(())
}

impl AssessCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            AssessCommand::Show { at, client } => {
                let mut api = Api::connect(&client).await?;
                let a = api.get(&at).await.map_err(explain)?;
                print!("{}", render_assessment(&a, "", client.output)?);
                Ok(())
            }
            AssessCommand::Ls {
                scope,
                year,
                status,
                client,
            } => {
                let mut api = Api::connect(&client).await?;
                let list = every_page(async |page_token| {
                    let page = api
                        .assessments
                        .list_assessments(pb::ListAssessmentsRequest {
                            scope_code: scope.clone().unwrap_or_default(),
                            year: year.unwrap_or(0),
                            status: status.map_or(pb::AssessmentStatus::Unspecified, |s| s.to_pb())
                                as i32,
                            page_size: PAGE_SIZE,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.assessments, page.next_page_token))
                })
                .await?;
                let title = counted(list.len(), "assessment", "assessments");
                print!("{}", list_table(&list).titled(title).render(client.output)?);
                Ok(())
            }
            AssessCommand::SetValues {
                at,
                file,
                validate_only,
                criteria_set,
                criteria_set_version,
                write,
                client,
            } => {
                let asked = criteria_set.map(|id| (id, criteria_set_version.unwrap_or(0)));
                set_values(at, &file, validate_only, asked, write, client).await
            }
            AssessCommand::Submit { at, write, client } => {
                review(&client, async move |api| {
                    let answer = api
                        .submit_assessment(pb::SubmitAssessmentRequest {
                            unit_code: at.unit,
                            year: at.year,
                            etag: etag(&write),
                            request_id: request_id(&write),
                        })
                        .await?;
                    Ok(answer.into_inner().assessment)
                })
                .await
            }
            AssessCommand::Verify { at, write, client } => {
                review(&client, async move |api| {
                    let answer = api
                        .verify_assessment(pb::VerifyAssessmentRequest {
                            unit_code: at.unit,
                            year: at.year,
                            etag: etag(&write),
                            request_id: request_id(&write),
                        })
                        .await?;
                    Ok(answer.into_inner().assessment)
                })
                .await
            }
            AssessCommand::Approve { at, write, client } => {
                review(&client, async move |api| {
                    let answer = api
                        .approve_assessment(pb::ApproveAssessmentRequest {
                            unit_code: at.unit,
                            year: at.year,
                            etag: etag(&write),
                            request_id: request_id(&write),
                        })
                        .await?;
                    Ok(answer.into_inner().assessment)
                })
                .await
            }
            AssessCommand::Return {
                at,
                reason,
                write,
                client,
            } => {
                review(&client, async move |api| {
                    let answer = api
                        .return_assessment(pb::ReturnAssessmentRequest {
                            unit_code: at.unit,
                            year: at.year,
                            reason,
                            etag: etag(&write),
                            request_id: request_id(&write),
                        })
                        .await?;
                    Ok(answer.into_inner().assessment)
                })
                .await
            }
            AssessCommand::Reopen {
                at,
                reason,
                write,
                client,
            } => {
                review(&client, async move |api| {
                    let answer = api
                        .reopen_assessment(pb::ReopenAssessmentRequest {
                            unit_code: at.unit,
                            year: at.year,
                            reason,
                            etag: etag(&write),
                            request_id: request_id(&write),
                        })
                        .await?;
                    Ok(answer.into_inner().assessment)
                })
                .await
            }
            AssessCommand::History { at, client } => {
                let mut api = Api::connect(&client).await?;
                let entries = every_page(async |page_token| {
                    let page = api
                        .assessments
                        .list_assessment_history(pb::ListAssessmentHistoryRequest {
                            unit_code: at.unit.clone(),
                            year: at.year,
                            page_size: PAGE_SIZE,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    Ok((page.entries, page.next_page_token))
                })
                .await?;
                let title = format!(
                    "{} to the {} assessment of {}",
                    counted(entries.len(), "change", "changes"),
                    at.year,
                    at.unit
                );
                print!(
                    "{}",
                    history_table(&entries, client.output)
                        .titled(title)
                        .render(client.output)?
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indicator(code: &str, kind: pb::IndicatorKind) -> pb::Indicator {
        pb::Indicator {
            code: code.into(),
            kind: kind as i32,
            options: vec![
                pb::ChoiceOption {
                    code: "chu_tich".into(),
                    meets: true,
                    ..Default::default()
                },
                pb::ChoiceOption {
                    code: "khong".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn set() -> pb::CriteriaSet {
        pb::CriteriaSet {
            id: "th-test".into(),
            version: 1,
            indicators: vec![
                indicator("A.01", pb::IndicatorKind::YesNo),
                indicator("A.02", pb::IndicatorKind::Choice),
                indicator("A.03", pb::IndicatorKind::Ratio),
                indicator("A.04", pb::IndicatorKind::Count),
                indicator("A.05", pb::IndicatorKind::Target),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn values_are_read_by_the_indicator_kind() {
        let text = "\u{feff}indicator_code,value,evidence_document,evidence_link,evidence_note\n\
                    A.01,yes,12/BC-UBND,,\n\
                    A.02,chu_tich,,,\"họp, ngày 3/5\"\n\
                    A.03, 52/100 ,,,\n\
                    A.04,3,,,\n\
                    A.05,85.5,,,\n\
                    A.06,,,,\n";
        let (rows, problems, skipped) = read_rows(text);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(skipped, [7]);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[1].evidence.note, "họp, ngày 3/5");
        let values = to_values(&rows, &set()).unwrap();
        let read: Vec<_> = values
            .iter()
            .map(|(line, v)| (*line, value_text(v.value.as_ref())))
            .collect();
        assert_eq!(
            read,
            [
                (2, "yes".to_owned()),
                (3, "chu_tich".to_owned()),
                (4, "52/100".to_owned()),
                (5, "3".to_owned()),
                (6, "85.5".to_owned())
            ]
        );
        assert_eq!(
            values[2].1.value,
            Some(V::Ratio(pb::Ratio {
                numerator: 52.0,
                denominator: 100.0
            }))
        );
    }

    #[test]
    fn every_bad_row_is_named_by_its_line() {
        let text = "indicator_code,value\n\
                    A.01,maybe\n\
                    A.02,pho\n\
                    A.03,52\n\
                    A.04,2.5\n\
                    A.05,lots\n\
                    B.01,yes\n\
                    A.01,no\n";
        let (rows, problems, _) = read_rows(text);
        assert!(problems.is_empty());
        let problems = to_values(&rows, &set()).unwrap_err();
        let lines: Vec<_> = problems.iter().map(|p| p.line.unwrap()).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8]);
        assert!(problems[1].message.contains("chu_tich, khong"));
        assert!(problems[6].message.contains("line 2"));
        assert_eq!(
            problems[0].render(Path::new("v.csv")),
            "v.csv:2: A.01: \"maybe\" is not yes or no (a yes/no indicator)"
        );
    }

    #[test]
    fn a_bad_header_is_refused() {
        let (_, problems, _) = read_rows("indicator_code,valeu\nA.01,yes\n");
        let messages: Vec<_> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(messages[0].starts_with("unknown column"), "{messages:?}");
        assert!(messages[1].starts_with("no value column"), "{messages:?}");
        // What `show --output csv` writes reads back.
        let (rows, problems, _) = read_rows(
            "indicator_code,name,group,mandatory,value,met,points,max_points,shortfall,\
             evidence_document,evidence_link,evidence_note\n\
             A.01,Kế hoạch,CQS,yes,yes,yes,1,1,,12/BC,,\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rows[0].evidence.document_number, "12/BC");
    }

    #[test]
    fn server_complaints_point_at_lines() {
        let mut v = chiso_server::Violations::new();
        v.add("values[1].value", "numerator 120 exceeds denominator 100");
        v.add("values[0].evidence", "A.01 requires evidence");
        let sent = vec![
            (
                4,
                pb::IndicatorValue {
                    indicator_code: "A.01".into(),
                    ..Default::default()
                },
            ),
            (
                9,
                pb::IndicatorValue {
                    indicator_code: "A.03".into(),
                    ..Default::default()
                },
            ),
        ];
        let problems = value_problems(&v.into_status(), &sent).unwrap();
        let rendered: Vec<_> = problems
            .iter()
            .map(|p| p.render(Path::new("v.csv")))
            .collect();
        assert_eq!(
            rendered,
            [
                "v.csv:9: A.03 value: numerator 120 exceeds denominator 100",
                "v.csv:4: A.01 evidence: A.01 requires evidence"
            ]
        );
    }

    #[test]
    fn the_request_id_follows_the_content() {
        let a = derived_request_id("x", "15499", 2023);
        assert_eq!(a, derived_request_id("x", "15499", 2023));
        assert_ne!(a, derived_request_id("y", "15499", 2023));
        assert_ne!(a, derived_request_id("x", "15502", 2023));
        assert_ne!(a, derived_request_id("x", "15499", 2024));
    }

    #[test]
    fn history_values_read_like_the_file() {
        assert_eq!(
            history_value(
                r#"{"value":{"ratio":{"numerator":52.0,"denominator":100.0}},"evidence":{"document_number":"12/BC","link":"","note":""}}"#
            ),
            "52/100 [12/BC]"
        );
        assert_eq!(history_value(r#"{"value":{"bool":true}}"#), "yes");
        assert_eq!(history_value(""), "");
    }
}
