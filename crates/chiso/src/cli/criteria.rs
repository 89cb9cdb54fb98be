//! `chiso criteria validate|publish|ls|show`: criteria set files and the
//! sets the server holds.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chiso_criteria::{self as criteria, CriteriaSet, Violation};
use chiso_proto::assessment::v1::{self as pb, criteria_service_client::CriteriaServiceClient};
use chiso_proto::units::v1::UnitLevel;
use clap::Subcommand;
use serde_json::json;
use tonic::Code;

use crate::cli::common::args::LevelArg;
use crate::cli::common::client::{ClientArgs, explain};
use crate::cli::common::format::{num, yes_no};
use crate::cli::common::names::level_name;
use crate::cli::common::output::{Output, Table, counted};
use crate::cli::common::paging::list_sets;
use crate::cli::common::problems::report_problems;

#[derive(Debug, Subcommand)]
pub enum CriteriaCommand {
    /// Check a criteria set file (TOML): every problem with its line, or a
    /// summary of the set. Checks here; --remote asks the server instead.
    Validate {
        /// Criteria set file (TOML).
        file: PathBuf,
        /// Let the server check the file (nothing is stored).
        #[arg(long)]
        remote: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create a draft from a file and publish it (admin). A published version
    /// never changes: change the file's `version` to publish a revision.
    Publish {
        /// Criteria set file (TOML).
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the criteria sets (published ones unless --drafts).
    Ls {
        #[arg(long, value_enum)]
        level: Option<LevelArg>,
        /// Only sets that apply to this report year.
        #[arg(long)]
        year: Option<i32>,
        /// Include drafts.
        #[arg(long)]
        drafts: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One set and its indicators.
    Show {
        id: String,
        /// [default: the latest published version]
        #[arg(long)]
        version: Option<u32>,
        /// Print the set's TOML definition instead (a start for a new version).
        #[arg(long)]
        toml: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The problems the server found in a definition it was sent, from its
/// `definition_toml…` field violations; `None` when the status is not about
/// the definition.
fn remote_problems(status: &tonic::Status) -> Option<Vec<Violation>> {
    if status.code() != Code::InvalidArgument {
        return None;
    }
    let found: Option<Vec<Violation>> = chiso_server::field_violations(status)
        .iter()
        .map(|(field, description)| {
            Violation::from_field_violation("definition_toml", field, description)
        })
        .collect();
    found.filter(|problems| !problems.is_empty())
}

/// What people check in a set before it goes to the server.
#[derive(Debug, Clone)]
struct Summary {
    id: String,
    version: i64,
    title: String,
    level: &'static str,
    years: Vec<i32>,
    source: String,
    state: &'static str,
    etag: String,
    groups: Vec<GroupSummary>,
    max_points: f64,
    all_mandatory: bool,
    min_points: Option<f64>,
}

#[derive(Debug, Clone)]
struct GroupSummary {
    code: String,
    name: String,
    indicators: usize,
    mandatory: usize,
    max_points: f64,
}

fn state_name(state: i32) -> &'static str {
    match pb::CriteriaSetState::try_from(state).unwrap_or(pb::CriteriaSetState::Unspecified) {
        pb::CriteriaSetState::Draft => "draft",
        pb::CriteriaSetState::Published => "published",
        pb::CriteriaSetState::Unspecified => "?",
    }
}

impl Summary {
    fn of_file(set: &CriteriaSet) -> Summary {
        Summary {
            id: set.id.clone(),
            version: i64::from(set.version),
            title: set.title.clone(),
            level: match set.level {
                criteria::Level::Commune => "commune",
                criteria::Level::District => "district",
                criteria::Level::Province => "province",
            },
            years: set.years.clone(),
            source: set.source.clone(),
            state: "file",
            etag: String::new(),
            groups: set
                .groups
                .iter()
                .map(|g| GroupSummary {
                    code: g.code.clone(),
                    name: g.name.clone(),
                    indicators: g.indicators.len(),
                    mandatory: g.indicators.iter().filter(|i| i.mandatory).count(),
                    max_points: g.max_points(),
                })
                .collect(),
            max_points: set.max_points(),
            all_mandatory: set.completion.all_mandatory,
            min_points: set.completion.min_points,
        }
    }

    fn of_server(set: &pb::CriteriaSet) -> Summary {
        let mut groups: Vec<GroupSummary> = Vec::new();
        for ind in &set.indicators {
            let group = match groups.iter_mut().find(|g| g.code == ind.group_code) {
                Some(g) => g,
                None => {
                    groups.push(GroupSummary {
                        code: ind.group_code.clone(),
                        name: ind.group_name.clone(),
                        indicators: 0,
                        mandatory: 0,
                        max_points: 0.0,
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group.indicators += 1;
            group.mandatory += usize::from(ind.mandatory);
            group.max_points = criteria::round_points(group.max_points + ind.max_points);
        }
        let completion = set.completion.unwrap_or_default();
        Summary {
            id: set.id.clone(),
            version: i64::from(set.version),
            title: set.title.clone(),
            level: level_name(set.level),
            years: set.years.clone(),
            source: set.source.clone(),
            state: state_name(set.state),
            etag: set.etag.clone(),
            groups,
            max_points: set.max_points,
            all_mandatory: completion.all_mandatory,
            min_points: (completion.min_points > 0.0).then_some(completion.min_points),
        }
    }

    fn rule(&self) -> String {
        let mandatory: usize = self.groups.iter().map(|g| g.mandatory).sum();
        let mut parts = Vec::new();
        if self.all_mandatory {
            parts.push(format!("all {mandatory} mandatory indicators met"));
        }
        if let Some(min) = self.min_points {
            parts.push(format!("at least {min} of {} points", self.max_points));
        }
        parts.join(" and ")
    }

    fn years_text(&self) -> String {
        let years: Vec<String> = self.years.iter().map(|y| y.to_string()).collect();
        years.join(", ")
    }

    fn heading(&self) -> String {
        let indicators: usize = self.groups.iter().map(|g| g.indicators).sum();
        let state = if self.state == "file" {
            String::new()
        } else {
            format!(" ({})", self.state)
        };
        format!(
            "{} v{}{state}: {}\nlevel {} · years {} · {indicators} indicators · {} points\n\
             completes when: {}\nsource: {}",
            self.id,
            self.version,
            self.title,
            self.level,
            self.years_text(),
            self.max_points,
            self.rule(),
            self.source,
        )
    }

    fn groups_table(&self) -> Table {
        let mut t = Table::new(&["group", "name", "indicators", "mandatory", "points"]);
        for g in &self.groups {
            t.push(vec![
                g.code.clone(),
                g.name.clone(),
                g.indicators.to_string(),
                g.mandatory.to_string(),
                g.max_points.to_string(),
            ]);
        }
        t
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "state": self.state,
            "level": self.level,
            "years": self.years,
            "source": self.source,
            "etag": self.etag,
            "max_points": self.max_points,
            "completion": {
                "all_mandatory": self.all_mandatory,
                "min_points": self.min_points,
            },
            "groups": self.groups.iter().map(|g| json!({
                "code": g.code,
                "name": g.name,
                "indicators": g.indicators,
                "mandatory": g.mandatory,
                "max_points": g.max_points,
            })).collect::<Vec<_>>(),
        })
    }

    /// The summary as people or scripts read it; `lead` goes first for people.
    fn render(&self, lead: &str, output: Output) -> anyhow::Result<String> {
        match output {
            Output::Table => {
                let title = if lead.is_empty() {
                    self.heading()
                } else {
                    format!("{lead}\n{}", self.heading())
                };
                self.groups_table().titled(title).render(output)
            }
            Output::Json => Ok(serde_json::to_string_pretty(&self.to_json())? + "\n"),
            Output::Csv => self.groups_table().render(output),
        }
    }
}

fn read(file: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(text))
}

/// What an indicator takes and when it is met, for people.
pub fn requirement(ind: &pb::Indicator) -> String {
    let op = if ind.comparison == pb::Comparison::AtMost as i32 {
        "≤"
    } else {
        "≥"
    };
    let unit = |u: &str| match u {
        "" => String::new(),
        "%" => "%".to_owned(),
        u => format!(" {u}"),
    };
    match pb::IndicatorKind::try_from(ind.kind).unwrap_or(pb::IndicatorKind::Unspecified) {
        pb::IndicatorKind::YesNo => "yes".to_owned(),
        pb::IndicatorKind::Choice => {
            let options: Vec<String> = ind
                .options
                .iter()
                .map(|o| {
                    let met = if o.meets { ", met" } else { "" };
                    format!("{} ({}{met})", o.code, num(o.points))
                })
                .collect();
            format!("one of {}", options.join(", "))
        }
        pb::IndicatorKind::Ratio => format!("{op} {}%", num(ind.threshold)),
        pb::IndicatorKind::Count => {
            let mut text = format!("{op} {}{}", num(ind.threshold), unit(&ind.unit));
            if !ind.tiers.is_empty() {
                let tiers: Vec<String> = ind
                    .tiers
                    .iter()
                    .map(|t| format!("{}→{}", t.at_least, num(t.points)))
                    .collect();
                text.push_str(&format!("; tiers {}", tiers.join(", ")));
            }
            text
        }
        pb::IndicatorKind::Target => format!("{op} {}{}", num(ind.threshold), unit(&ind.unit)),
        pb::IndicatorKind::Unspecified => "?".to_owned(),
    }
}

pub fn kind_name(kind: i32) -> &'static str {
    match pb::IndicatorKind::try_from(kind).unwrap_or(pb::IndicatorKind::Unspecified) {
        pb::IndicatorKind::YesNo => "yes_no",
        pb::IndicatorKind::Choice => "choice",
        pb::IndicatorKind::Ratio => "ratio",
        pb::IndicatorKind::Count => "count",
        pb::IndicatorKind::Target => "target",
        pb::IndicatorKind::Unspecified => "?",
    }
}

fn indicator_table(set: &pb::CriteriaSet) -> Table {
    let mut t = Table::new(&[
        "code",
        "group",
        "name",
        "kind",
        "requirement",
        "points",
        "mandatory",
        "evidence",
    ]);
    for ind in &set.indicators {
        let points = if ind.scoring == pb::Scoring::Proportional as i32 {
            format!("{} proportional", num(ind.max_points))
        } else {
            num(ind.max_points)
        };
        t.push(vec![
            ind.code.clone(),
            ind.group_code.clone(),
            ind.name.clone(),
            kind_name(ind.kind).to_owned(),
            requirement(ind),
            points,
            yes_no(ind.mandatory),
            yes_no(ind.evidence_required),
        ]);
    }
    t
}

impl CriteriaCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            CriteriaCommand::Validate {
                file,
                remote,
                client,
            } => {
                let text = read(&file)?;
                let summary = if remote {
                    let mut api = CriteriaServiceClient::new(client.connect().await?);
                    let answer = api
                        .create_criteria_set(pb::CreateCriteriaSetRequest {
                            definition_toml: text,
                            validate_only: true,
                            request_id: String::new(),
                        })
                        .await;
                    match answer {
                        Ok(answer) => Summary::of_server(
                            &answer
                                .into_inner()
                                .criteria_set
                                .context("the server sent no set")?,
                        ),
                        Err(status) => {
                            return Err(match remote_problems(&status) {
                                Some(problems) => report_problems(&file, &problems, client.output),
                                None => explain(status),
                            });
                        }
                    }
                } else {
                    match criteria::load_toml(&text) {
                        Ok(set) => Summary::of_file(&set),
                        Err(found) => {
                            return Err(report_problems(&file, &found.0, client.output));
                        }
                    }
                };
                let lead = format!("{}: no problems", file.display());
                print!("{}", summary.render(&lead, client.output)?);
                Ok(())
            }
            CriteriaCommand::Publish { file, client } => {
                let text = read(&file)?;
                let mut api = CriteriaServiceClient::new(client.connect().await?);
                let drafted = api
                    .create_criteria_set(pb::CreateCriteriaSetRequest {
                        definition_toml: text.clone(),
                        validate_only: false,
                        request_id: String::new(),
                    })
                    .await;
                let draft = match drafted {
                    Ok(answer) => answer
                        .into_inner()
                        .criteria_set
                        .context("the server sent no set")?,
                    Err(status) => {
                        if let Some(problems) = remote_problems(&status) {
                            return Err(report_problems(&file, &problems, client.output));
                        }
                        // Publishing the same file again is a safe retry.
                        if status.code() == Code::FailedPrecondition
                            && let Ok(set) = criteria::from_toml(&text)
                            && let Ok(stored) = api
                                .get_criteria_set(pb::GetCriteriaSetRequest {
                                    id: set.id.clone(),
                                    version: set.version as i32,
                                })
                                .await
                            && let Some(stored) = stored.into_inner().criteria_set
                            && stored.state == pb::CriteriaSetState::Published as i32
                            && stored.definition_toml == text
                        {
                            let lead = format!(
                                "{} v{} was already published from this file; nothing changed",
                                stored.id, stored.version
                            );
                            print!(
                                "{}",
                                Summary::of_server(&stored).render(&lead, client.output)?
                            );
                            return Ok(());
                        }
                        return Err(explain(status));
                    }
                };
                let published = api
                    .publish_criteria_set(pb::PublishCriteriaSetRequest {
                        id: draft.id.clone(),
                        version: draft.version,
                        etag: draft.etag.clone(),
                    })
                    .await
                    .map_err(explain)?
                    .into_inner()
                    .criteria_set
                    .context("the server sent no set")?;
                let lead = format!(
                    "published {} v{} from {}",
                    published.id,
                    published.version,
                    file.display()
                );
                print!(
                    "{}",
                    Summary::of_server(&published).render(&lead, client.output)?
                );
                Ok(())
            }
            CriteriaCommand::Ls {
                level,
                year,
                drafts,
                client,
            } => {
                let mut api = CriteriaServiceClient::new(client.connect().await?);
                let sets = list_sets(
                    &mut api,
                    level.map_or(UnitLevel::Unspecified, LevelArg::to_pb),
                    year.unwrap_or(0),
                    drafts,
                )
                .await?;
                let mut t = Table::new(&[
                    "id", "version", "state", "level", "years", "points", "title",
                ]);
                for s in &sets {
                    let years: Vec<String> = s.years.iter().map(|y| y.to_string()).collect();
                    t.push(vec![
                        s.id.clone(),
                        s.version.to_string(),
                        state_name(s.state).to_owned(),
                        level_name(s.level).to_owned(),
                        years.join(" "),
                        num(s.max_points),
                        s.title.clone(),
                    ]);
                }
                let title = counted(sets.len(), "criteria set", "criteria sets");
                print!("{}", t.titled(title).render(client.output)?);
                Ok(())
            }
            CriteriaCommand::Show {
                id,
                version,
                toml,
                client,
            } => {
                let mut api = CriteriaServiceClient::new(client.connect().await?);
                let set = api
                    .get_criteria_set(pb::GetCriteriaSetRequest {
                        id,
                        version: version.unwrap_or(0) as i32,
                    })
                    .await
                    .map_err(explain)?
                    .into_inner()
                    .criteria_set
                    .context("the server sent no set")?;
                if toml {
                    print!("{}", set.definition_toml);
                    return Ok(());
                }
                let summary = Summary::of_server(&set);
                let indicators = indicator_table(&set);
                let text = match client.output {
                    Output::Table => indicators.titled(summary.heading()).render(Output::Table)?,
                    Output::Json => {
                        let mut object = summary.to_json();
                        object["indicators"] = indicators.to_json();
                        serde_json::to_string_pretty(&object)? + "\n"
                    }
                    Output::Csv => indicators.render(Output::Csv)?,
                };
                print!("{text}");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_violations_become_file_problems() {
        let mut v = chiso_server::Violations::new();
        v.add(
            "definition_toml.years[0]",
            "line 6: 20223 is outside 2000–2100",
        );
        v.add("definition_toml", "missing field `id`");
        let problems = remote_problems(&v.into_status()).unwrap();
        assert_eq!(
            problems,
            [
                Violation {
                    line: Some(6),
                    path: "years[0]".into(),
                    message: "20223 is outside 2000–2100".into()
                },
                Violation {
                    line: None,
                    path: String::new(),
                    message: "missing field `id`".into()
                }
            ]
        );
    }

    #[test]
    fn a_shipped_file_summarises() {
        let set = criteria::defaults()
            .into_iter()
            .find(|s| s.id == "th-commune-2023")
            .unwrap();
        let summary = Summary::of_file(&set);
        let counts: Vec<_> = summary
            .groups
            .iter()
            .map(|g| (g.code.as_str(), g.indicators))
            .collect();
        assert_eq!(counts, [("CQS", 11), ("KTS", 6), ("XHS", 12), ("HTS", 8)]);
        assert_eq!(summary.max_points, 37.0);
        assert!(summary.rule().contains("all 37 mandatory"));
    }
}
