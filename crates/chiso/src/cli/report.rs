//! `chiso report progress|targets|scorecard|ranking|indicators|trend|export`:
//! the reporting service's answers, as the province's staff read them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chiso_proto::from_date;
use chiso_proto::reporting::v1::{self as pb, reporting_service_client::ReportingServiceClient};
use chiso_proto::units::v1::UnitLevel;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use time::Date;

use crate::cli::common::args::{LevelArg, parse_date};
use crate::cli::common::client::{AuthedChannel, ClientArgs, explain};
use crate::cli::common::format::date_text;
use crate::cli::common::names::{level_name, status_name};
use crate::cli::common::output::{Output, Table, counted, render_sections};

/// The province `chiso up` loads, the default scope of a report.
const DEFAULT_SCOPE: &str = "38";

#[derive(Debug, Clone, Args)]
pub struct ProgressArgs {
    /// Scope unit (GSO code): a row per unit directly under it.
    #[arg(long, default_value = DEFAULT_SCOPE)]
    pub scope: String,
    /// Report year; the hierarchy is that of 31/12 of the year.
    #[arg(long)]
    pub year: i32,
    /// Level of the units counted [default: commune].
    #[arg(long, value_enum)]
    pub level: Option<LevelArg>,
    /// Restate the year on the hierarchy of this later date (YYYY-MM-DD):
    /// rows are the scope's children then, completions follow lineage.
    #[arg(long, value_parser = parse_date)]
    pub restate_as_of: Option<Date>,
}

#[derive(Debug, Clone, Args)]
pub struct TargetsArgs {
    /// Targets under this unit [default: every target the token may see].
    #[arg(long)]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ScorecardArgs {
    /// GSO code of the unit, as of the end of the year.
    #[arg(long)]
    pub unit: String,
    #[arg(long)]
    pub year: i32,
}

#[derive(Debug, Clone, Args)]
pub struct RankingArgs {
    #[arg(long, default_value = DEFAULT_SCOPE)]
    pub scope: String,
    #[arg(long)]
    pub year: i32,
    /// Level of the units ranked [default: commune].
    #[arg(long, value_enum)]
    pub level: Option<LevelArg>,
    /// Rank by this group's points (e.g. CQS) instead of the total.
    #[arg(long)]
    pub group: Option<String>,
    /// Approved assessments only.
    #[arg(long)]
    pub approved_only: bool,
}

#[derive(Debug, Clone, Args)]
pub struct IndicatorsArgs {
    #[arg(long, default_value = DEFAULT_SCOPE)]
    pub scope: String,
    #[arg(long)]
    pub year: i32,
    /// Level of the units counted [default: commune].
    #[arg(long, value_enum)]
    pub level: Option<LevelArg>,
}

#[derive(Debug, Clone, Args)]
pub struct TrendArgs {
    /// GSO code of the unit, as of --as-of.
    #[arg(long)]
    pub unit: String,
    #[arg(long)]
    pub from: i32,
    #[arg(long)]
    pub to: i32,
    /// Date at which --unit is read (YYYY-MM-DD) [default: today].
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<Date>,
}

/// Where an export goes.
#[derive(Debug, Clone, Args)]
pub struct ExportTo {
    /// Write the CSV to this file [default: standard output].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Progress of a scope in a year: a row per child unit, totals, and the
    /// scope's targets for the year.
    Progress {
        #[command(flatten)]
        query: ProgressArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Every target with where it stands.
    Targets {
        #[command(flatten)]
        query: TargetsArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One unit's year, indicator by indicator.
    Scorecard {
        #[command(flatten)]
        query: ScorecardArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Units of a level under a scope, by points.
    Ranking {
        #[command(flatten)]
        query: RankingArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The share of units meeting each indicator, weakest first.
    Indicators {
        #[command(flatten)]
        query: IndicatorsArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One unit over the years, through the units it came from.
    Trend {
        #[command(flatten)]
        query: TrendArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Any of the reports as the server's CSV, for spreadsheets.
    Export {
        #[command(subcommand)]
        report: ExportCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    Progress {
        #[command(flatten)]
        query: ProgressArgs,
        #[command(flatten)]
        to: ExportTo,
    },
    Targets {
        #[command(flatten)]
        query: TargetsArgs,
        #[command(flatten)]
        to: ExportTo,
    },
    Scorecard {
        #[command(flatten)]
        query: ScorecardArgs,
        #[command(flatten)]
        to: ExportTo,
    },
    Ranking {
        #[command(flatten)]
        query: RankingArgs,
        #[command(flatten)]
        to: ExportTo,
    },
    Indicators {
        #[command(flatten)]
        query: IndicatorsArgs,
        #[command(flatten)]
        to: ExportTo,
    },
    Trend {
        #[command(flatten)]
        query: TrendArgs,
        #[command(flatten)]
        to: ExportTo,
    },
}

fn level(level: Option<LevelArg>) -> i32 {
    level.map_or(UnitLevel::Unspecified, LevelArg::to_pb) as i32
}

/// The level a request counts (commune when unset, as the server reads it).
fn counted_level(level: Option<LevelArg>) -> &'static str {
    level_name(level.map_or(UnitLevel::Commune, LevelArg::to_pb) as i32)
}

impl ProgressArgs {
    fn request(&self) -> pb::GetProgressRequest {
        pb::GetProgressRequest {
            scope_code: self.scope.trim().to_owned(),
            year: self.year,
            level: level(self.level),
            restate_as_of: self.restate_as_of.map(from_date),
        }
    }
}

impl TargetsArgs {
    fn request(&self) -> pb::ListTargetProgressRequest {
        pb::ListTargetProgressRequest {
            scope_code: self.scope.as_deref().unwrap_or_default().trim().to_owned(),
        }
    }
}

impl ScorecardArgs {
    fn request(&self) -> pb::GetScorecardRequest {
        pb::GetScorecardRequest {
            unit_code: self.unit.trim().to_owned(),
            year: self.year,
        }
    }
}

impl RankingArgs {
    fn request(&self) -> pb::ListRankingsRequest {
        pb::ListRankingsRequest {
            scope_code: self.scope.trim().to_owned(),
            level: level(self.level),
            year: self.year,
            group_code: self.group.as_deref().unwrap_or_default().trim().to_owned(),
            approved_only: self.approved_only,
        }
    }
}

impl IndicatorsArgs {
    fn request(&self) -> pb::GetIndicatorBreakdownRequest {
        pb::GetIndicatorBreakdownRequest {
            scope_code: self.scope.trim().to_owned(),
            level: level(self.level),
            year: self.year,
        }
    }
}

impl TrendArgs {
    fn request(&self) -> pb::GetTrendRequest {
        pb::GetTrendRequest {
            unit_code: self.unit.trim().to_owned(),
            as_of: self.as_of.map(from_date),
            from_year: self.from,
            to_year: self.to,
        }
    }
}

// ---- formatting

/// A figure as people write it: 132, 62.5.
pub fn figure(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn tick(yes: bool) -> String {
    if yes { "✓" } else { "✗" }.to_owned()
}

fn reflects(sequence: i64) -> String {
    format!("reflects event #{sequence}")
}

/// A list report as each format shows it: JSON the items under `key` with
/// the event the answer reflects, CSV the bare rows, a table titled and
/// followed by that event.
fn list_answer(
    key: &str,
    items: Vec<Value>,
    table: Table,
    title: String,
    reflects_sequence: i64,
    output: Output,
) -> anyhow::Result<String> {
    match output {
        Output::Json => Ok(serde_json::to_string_pretty(&json!({
            key: items,
            "reflects_sequence": reflects_sequence,
        }))? + "\n"),
        Output::Csv => table.render(output),
        Output::Table => Ok(format!(
            "{}{}\n",
            table.titled(title).render(output)?,
            reflects(reflects_sequence)
        )),
    }
}

/// "approved 1 · submitted 2": the statuses that occur, for a table.
fn statuses_text(s: &pb::StatusCounts) -> String {
    [
        ("draft", s.draft),
        ("submitted", s.submitted),
        ("verified", s.verified),
        ("returned", s.returned),
        ("approved", s.approved),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{name} {n}"))
    .collect::<Vec<_>>()
    .join(" · ")
}

fn statuses_json(s: &pb::StatusCounts) -> Value {
    json!({
        "draft": s.draft,
        "submitted": s.submitted,
        "verified": s.verified,
        "approved": s.approved,
        "returned": s.returned,
    })
}

/// A target's figure with its unit: a share in percent.
fn target_figure(t: &pb::Target, x: f64) -> String {
    if t.kind == pb::TargetKind::Share as i32 {
        format!("{}%", figure(x))
    } else {
        figure(x)
    }
}

fn target_kind(kind: i32) -> &'static str {
    match pb::TargetKind::try_from(kind).unwrap_or(pb::TargetKind::Unspecified) {
        pb::TargetKind::UnitsCompleted => "units_completed",
        pb::TargetKind::NamedUnits => "named_units",
        pb::TargetKind::Share => "share",
        pb::TargetKind::Kpi => "kpi",
        pb::TargetKind::Unspecified => "",
    }
}

pub fn targets_table(statuses: &[pb::TargetStatus], with_scope: bool) -> Table {
    let mut headers = vec!["title", "current", "goal", "met", "gap", "source"];
    if with_scope {
        headers.splice(0..0, ["scope", "year"]);
    }
    let mut table = Table::new(&headers).align_right(&["year", "current", "goal", "gap"]);
    for s in statuses {
        let t = s.target.clone().unwrap_or_default();
        let mut row = vec![
            t.title.clone(),
            target_figure(&t, s.current),
            target_figure(&t, s.goal),
            tick(s.met),
            target_figure(&t, s.gap),
            t.source.clone(),
        ];
        if with_scope {
            row.splice(0..0, [t.scope_code.clone(), t.year.to_string()]);
        }
        table.push(row);
    }
    table
}

fn target_json(s: &pb::TargetStatus) -> Value {
    let t = s.target.clone().unwrap_or_default();
    json!({
        "id": t.id,
        "kind": target_kind(t.kind),
        "title": t.title,
        "scope": t.scope_code,
        "year": t.year,
        "level": level_name(t.level),
        "cumulative": t.cumulative,
        "as_of": date_text(t.as_of.as_ref()),
        "current": s.current,
        "goal": s.goal,
        "met": s.met,
        "gap": s.gap,
        "source": t.source,
    })
}

fn progress_row_json(row: &pb::ProgressRow) -> Value {
    let unit = row.unit.clone().unwrap_or_default();
    json!({
        "code": unit.code,
        "name": unit.name,
        "units": row.units,
        "completed_in_year": row.completed_in_year,
        "completed_cumulative": row.completed_cumulative,
        "statuses": statuses_json(&row.statuses.unwrap_or_default()),
    })
}

/// The progress report in the chosen format.
pub fn render_progress(
    query: &ProgressArgs,
    p: &pb::GetProgressResponse,
    output: Output,
) -> anyhow::Result<String> {
    let year = query.year;
    let hierarchy = query
        .restate_as_of
        .map_or_else(|| format!("{year}-12-31"), |d| d.to_string());
    let counted = counted_level(query.level);
    let totals = p.totals.clone().unwrap_or_default();
    if output == Output::Json {
        let value = json!({
            "scope": query.scope.trim(),
            "year": year,
            "level": counted,
            "hierarchy_as_of": hierarchy,
            "restated": query.restate_as_of.is_some(),
            "rows": p.rows.iter().map(progress_row_json).collect::<Vec<_>>(),
            "totals": progress_row_json(&totals),
            "targets": p.targets.iter().map(target_json).collect::<Vec<_>>(),
            "reflects_sequence": p.reflects_sequence,
        });
        return Ok(serde_json::to_string_pretty(&value)? + "\n");
    }
    let all = p.rows.iter().chain(std::iter::once(&totals));
    let name = |row: &pb::ProgressRow| {
        row.unit
            .as_ref()
            .map_or(("".to_owned(), "total".to_owned()), |u| {
                (u.code.clone(), u.name.clone())
            })
    };
    let rows = if output == Output::Csv {
        let mut t = Table::new(&[
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
        ]);
        for row in all {
            let (code, name) = name(row);
            let s = row.statuses.unwrap_or_default();
            t.push(vec![
                code,
                name,
                row.units.to_string(),
                row.completed_in_year.to_string(),
                row.completed_cumulative.to_string(),
                s.draft.to_string(),
                s.submitted.to_string(),
                s.verified.to_string(),
                s.approved.to_string(),
                s.returned.to_string(),
            ]);
        }
        t
    } else {
        let units = counted_plural(counted);
        let mut t = Table::new(&[
            "code",
            "name",
            units,
            "completed in year",
            "cumulative",
            "statuses",
        ])
        .align_right(&[units, "completed in year", "cumulative"]);
        for row in all {
            let (code, name) = name(row);
            t.push(vec![
                code,
                name,
                row.units.to_string(),
                row.completed_in_year.to_string(),
                row.completed_cumulative.to_string(),
                statuses_text(&row.statuses.unwrap_or_default()),
            ]);
        }
        let restated = if query.restate_as_of.is_some() {
            " (restated)"
        } else {
            ""
        };
        t.titled(format!(
            "{} of {} under {} completed CĐS in {year} ({} by then) · hierarchy of {hierarchy}{restated}",
            totals.completed_in_year,
            counted_n(totals.units, counted),
            query.scope.trim(),
            totals.completed_cumulative,
        ))
    };
    let target_title = if query.restate_as_of.is_some() {
        format!(
            "targets are judged in their own hierarchy: chiso report progress --scope {} --year {year}",
            query.scope.trim()
        )
    } else {
        format!("targets of {} for {year}", query.scope.trim())
    };
    let targets = targets_table(&p.targets, false).titled(target_title);
    let mut text = render_sections(&[("rows", &rows), ("targets", &targets)], output)?;
    if output == Output::Table {
        text.push_str(&reflects(p.reflects_sequence));
        text.push('\n');
    }
    Ok(text)
}

/// "1 commune", "559 communes".
fn counted_n(n: i32, level: &str) -> String {
    if n == 1 {
        format!("1 {level}")
    } else {
        format!("{n} {}", counted_plural(level))
    }
}

/// "communes", "districts" for a column heading.
fn counted_plural(level: &str) -> &'static str {
    match level {
        "district" => "districts",
        "province" => "provinces",
        _ => "communes",
    }
}

fn points_text(points: f64, max: f64) -> String {
    format!("{}/{}", figure(points), figure(max))
}

fn render_targets(p: &pb::ListTargetProgressResponse, output: Output) -> anyhow::Result<String> {
    let met = p.targets.iter().filter(|t| t.met).count();
    list_answer(
        "targets",
        p.targets.iter().map(target_json).collect(),
        targets_table(&p.targets, true),
        format!("{met} of {} targets met", p.targets.len()),
        p.reflects_sequence,
        output,
    )
}

fn render_scorecard(p: &pb::GetScorecardResponse, output: Output) -> anyhow::Result<String> {
    let card = p.scorecard.clone().unwrap_or_default();
    if output == Output::Json {
        let indicators: Vec<Value> = card
            .indicators
            .iter()
            .map(|i| {
                json!({
                    "code": i.code,
                    "name": i.name,
                    "group": i.group_code,
                    "mandatory": i.mandatory,
                    "has_value": i.has_value,
                    "met": i.met,
                    "points": i.points,
                    "max_points": i.max_points,
                    "shortfall": i.shortfall,
                })
            })
            .collect();
        let groups: Vec<Value> = card
            .groups
            .iter()
            .map(|g| json!({"code": g.code, "name": g.name, "points": g.points, "max_points": g.max_points}))
            .collect();
        return Ok(serde_json::to_string_pretty(&json!({
            "unit": p.unit_code,
            "name": p.unit_name,
            "year": p.year,
            "status": status_name(p.status),
            "criteria_set_id": p.criteria_set_id,
            "criteria_set_version": p.criteria_set_version,
            "total_points": card.total_points,
            "max_points": card.max_points,
            "complete": card.complete,
            "failing": card.failing,
            "groups": groups,
            "indicators": indicators,
            "reflects_sequence": p.reflects_sequence,
        }))? + "\n");
    }
    let mut t = Table::new(&["code", "name", "group", "met", "points", "shortfall"])
        .align_right(&["points"]);
    for i in &card.indicators {
        let met = match (i.has_value, i.met, i.mandatory) {
            (false, _, true) => "no value (mandatory)".to_owned(),
            (false, _, false) => "no value".to_owned(),
            (true, met, true) => format!("{} (mandatory)", tick(met)),
            (true, met, false) => tick(met),
        };
        t.push(vec![
            i.code.clone(),
            i.name.clone(),
            i.group_code.clone(),
            met,
            points_text(i.points, i.max_points),
            i.shortfall.clone(),
        ]);
    }
    if output == Output::Csv {
        return t.render(output);
    }
    let groups = card
        .groups
        .iter()
        .map(|g| format!("{} {}", g.code, points_text(g.points, g.max_points)))
        .collect::<Vec<_>>()
        .join(" · ");
    let complete = if card.complete {
        "complete".to_owned()
    } else {
        format!("not complete: {} failing", card.failing.len())
    };
    let title = format!(
        "{} {} · {} · {}\n{} v{} · {} points · {complete}\n{groups}",
        p.unit_code,
        p.unit_name,
        p.year,
        status_name(p.status),
        p.criteria_set_id,
        p.criteria_set_version,
        points_text(card.total_points, card.max_points),
    );
    Ok(format!(
        "{}{}\n",
        t.titled(title).render(output)?,
        reflects(p.reflects_sequence)
    ))
}

fn render_ranking(
    query: &RankingArgs,
    p: &pb::ListRankingsResponse,
    output: Output,
) -> anyhow::Result<String> {
    let mut t = Table::new(&["rank", "code", "name", "points", "complete", "status"])
        .align_right(&["rank", "points"]);
    for e in &p.entries {
        t.push(vec![
            e.rank.to_string(),
            e.unit_code.clone(),
            e.unit_name.clone(),
            points_text(e.points, e.max_points),
            tick(e.complete),
            status_name(e.status).to_owned(),
        ]);
    }
    let by = query
        .group
        .as_deref()
        .map_or_else(|| "total points".to_owned(), |g| format!("{g} points"));
    let which = if query.approved_only {
        counted(
            p.entries.len(),
            "approved assessment",
            "approved assessments",
        )
    } else {
        counted(p.entries.len(), "assessment", "assessments")
    };
    let title = format!(
        "{which} of {} under {} in {}, by {by}",
        counted_plural(counted_level(query.level)),
        query.scope.trim(),
        query.year
    );
    let entries: Vec<Value> = p
        .entries
        .iter()
        .map(|e| {
            json!({
                "rank": e.rank,
                "code": e.unit_code,
                "name": e.unit_name,
                "points": e.points,
                "max_points": e.max_points,
                "complete": e.complete,
                "status": status_name(e.status),
            })
        })
        .collect();
    list_answer("entries", entries, t, title, p.reflects_sequence, output)
}

fn render_indicators(
    query: &IndicatorsArgs,
    p: &pb::GetIndicatorBreakdownResponse,
    output: Output,
) -> anyhow::Result<String> {
    let mut t = Table::new(&["code", "name", "group", "mandatory", "met", "share"])
        .align_right(&["met", "share"]);
    for i in &p.indicators {
        t.push(vec![
            i.code.clone(),
            i.name.clone(),
            i.group_code.clone(),
            if i.mandatory { "yes" } else { "" }.to_owned(),
            format!("{}/{}", i.met, i.units),
            format!("{:.1}%", i.share_percent),
        ]);
    }
    let title = format!(
        "indicators of {} under {} in {}, weakest first",
        counted_plural(counted_level(query.level)),
        query.scope.trim(),
        query.year
    );
    let indicators: Vec<Value> = p
        .indicators
        .iter()
        .map(|i| {
            json!({
                "code": i.code,
                "name": i.name,
                "group": i.group_code,
                "mandatory": i.mandatory,
                "units": i.units,
                "met": i.met,
                "share_percent": i.share_percent,
            })
        })
        .collect();
    list_answer(
        "indicators",
        indicators,
        t,
        title,
        p.reflects_sequence,
        output,
    )
}

fn render_trend(
    query: &TrendArgs,
    p: &pb::GetTrendResponse,
    output: Output,
) -> anyhow::Result<String> {
    let mut t = Table::new(&[
        "year", "code", "name", "unit", "status", "points", "complete",
    ])
    .align_right(&["year", "points"]);
    for point in &p.points {
        t.push(vec![
            point.year.to_string(),
            point.unit_code.clone(),
            point.unit_name.clone(),
            if point.predecessor {
                "← predecessor"
            } else {
                "itself"
            }
            .to_owned(),
            status_name(point.status).to_owned(),
            points_text(point.total_points, point.max_points),
            tick(point.complete),
        ]);
    }
    let when = query
        .as_of
        .map_or_else(|| "today".to_owned(), |d| d.to_string());
    let title = format!(
        "{} as of {when}, {}–{}: {} (a predecessor's through lineage)",
        query.unit.trim(),
        query.from,
        query.to,
        counted(p.points.len(), "assessment", "assessments")
    );
    let points: Vec<Value> = p
        .points
        .iter()
        .map(|t| {
            json!({
                "year": t.year,
                "code": t.unit_code,
                "name": t.unit_name,
                "predecessor": t.predecessor,
                "status": status_name(t.status),
                "total_points": t.total_points,
                "max_points": t.max_points,
                "complete": t.complete,
            })
        })
        .collect();
    list_answer("points", points, t, title, p.reflects_sequence, output)
}

impl ExportCommand {
    fn request(&self) -> (pb::export_report_request::Report, &ExportTo) {
        use pb::export_report_request::Report;
        match self {
            ExportCommand::Progress { query, to } => (Report::Progress(query.request()), to),
            ExportCommand::Targets { query, to } => (Report::TargetProgress(query.request()), to),
            ExportCommand::Scorecard { query, to } => (Report::Scorecard(query.request()), to),
            ExportCommand::Ranking { query, to } => (Report::Rankings(query.request()), to),
            ExportCommand::Indicators { query, to } => {
                (Report::IndicatorBreakdown(query.request()), to)
            }
            ExportCommand::Trend { query, to } => (Report::Trend(query.request()), to),
        }
    }

    async fn run(self) -> anyhow::Result<()> {
        let (report, to) = self.request();
        let mut api = ReportingServiceClient::new(to.client.connect().await?);
        let mut stream = api
            .export_report(pb::ExportReportRequest {
                report: Some(report),
            })
            .await
            .map_err(explain)?
            .into_inner();
        match &to.out {
            None => {
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                while let Some(piece) = stream.message().await.map_err(explain)? {
                    out.write_all(&piece.chunk)?;
                }
                out.flush()?;
            }
            Some(path) => {
                // Into a file beside it first, so a failed export leaves no
                // half-written file under the name asked for.
                let mut partial = path.clone().into_os_string();
                partial.push(".part");
                let partial = PathBuf::from(partial);
                let mut file = std::fs::File::create(&partial)
                    .with_context(|| format!("cannot write {}", partial.display()))?;
                let mut lines = 0;
                let written: anyhow::Result<()> = async {
                    while let Some(piece) = stream.message().await.map_err(explain)? {
                        lines += piece.chunk.iter().filter(|b| **b == b'\n').count();
                        file.write_all(&piece.chunk)?;
                    }
                    file.sync_all()?;
                    Ok(())
                }
                .await;
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
                std::fs::rename(&partial, path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!(
                    "wrote {} to {}",
                    counted(lines.saturating_sub(1), "row", "rows"),
                    path.display()
                );
            }
        }
        Ok(())
    }
}

/// One call to the reporting service with the command's connection.
async fn ask<R>(
    client: &ClientArgs,
    call: impl AsyncFnOnce(
        &mut ReportingServiceClient<AuthedChannel>,
    ) -> Result<tonic::Response<R>, tonic::Status>,
) -> anyhow::Result<R> {
    let mut api = ReportingServiceClient::new(client.connect().await?);
    Ok(call(&mut api).await.map_err(explain)?.into_inner())
}

impl ReportCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let text = match self {
            ReportCommand::Export { report } => return report.run().await,
            ReportCommand::Progress { query, client } => {
                let p = ask(&client, async |api| api.get_progress(query.request()).await).await?;
                if client.output == Output::Csv {
                    eprintln!("{}", reflects(p.reflects_sequence));
                }
                render_progress(&query, &p, client.output)?
            }
            ReportCommand::Targets { query, client } => {
                let p = ask(&client, async |api| {
                    api.list_target_progress(query.request()).await
                })
                .await?;
                render_targets(&p, client.output)?
            }
            ReportCommand::Scorecard { query, client } => {
                let p = ask(&client, async |api| {
                    api.get_scorecard(query.request()).await
                })
                .await?;
                render_scorecard(&p, client.output)?
            }
            ReportCommand::Ranking { query, client } => {
                let p = ask(&client, async |api| {
                    api.list_rankings(query.request()).await
                })
                .await?;
                render_ranking(&query, &p, client.output)?
            }
            ReportCommand::Indicators { query, client } => {
                let p = ask(&client, async |api| {
                    api.get_indicator_breakdown(query.request()).await
                })
                .await?;
                render_indicators(&query, &p, client.output)?
            }
            ReportCommand::Trend { query, client } => {
                let p = ask(&client, async |api| api.get_trend(query.request()).await).await?;
                render_trend(&query, &p, client.output)?
            }
        };
        print!("{text}");
        Ok(())
    }
}
