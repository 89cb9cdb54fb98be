//! `chiso units ls|show|lineage|import`.

use std::path::PathBuf;

use anyhow::Context;
use chiso_proto::from_date;
use chiso_proto::units::v1::{self as pb, units_service_client::UnitsServiceClient};
use clap::Subcommand;
use time::Date;

use crate::cli::common::args::{LevelArg, parse_date};
use crate::cli::common::client::{ClientArgs, explain};
use crate::cli::common::format::date_text;
use crate::cli::common::output::{Table, render_sections};
use crate::cli::common::paging::{PAGE_SIZE, every_page};

#[derive(Debug, Subcommand)]
pub enum UnitsClientCommand {
    /// List the units under a parent (or the provinces) as of a date.
    Ls {
        /// Parent unit code; omit for the provinces.
        #[arg(long)]
        parent: Option<String>,
        /// Every descendant at this level instead of the direct children.
        #[arg(long, value_enum)]
        level: Option<LevelArg>,
        /// Date (YYYY-MM-DD) [default: today].
        #[arg(long, value_parser = parse_date)]
        as_of: Option<Date>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One unit: its facts as of a date, its ancestors and its history.
    Show {
        code: String,
        #[arg(long, value_parser = parse_date)]
        as_of: Option<Date>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// What a unit came from and went into.
    Lineage {
        code: String,
        #[arg(long, value_parser = parse_date)]
        as_of: Option<Date>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Import a GSO snapshot (CSV: code,name,kind,parent_code) effective on a date.
    Import {
        file: PathBuf,
        #[arg(long, value_parser = parse_date)]
        effective_date: Date,
        /// Lineage CSV: old_code,new_code,part.
        #[arg(long)]
        lineage: Option<PathBuf>,
        /// Legal act or description kept with the changes.
        #[arg(long, default_value = "")]
        source: String,
        /// Check and report only.
        #[arg(long)]
        validate_only: bool,
        /// Apply the acceptable rows even if some are rejected.
        #[arg(long)]
        partial: bool,
        /// Makes a retry safe [default: derived from the file contents and date].
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn kind_name(kind: i32) -> String {
    pb::UnitKind::try_from(kind)
        .ok()
        .and_then(chiso_units::domain::Kind::from_pb)
        .map_or_else(|| "?".to_owned(), |k| k.gso_name().to_owned())
}

fn change_name(change: i32) -> &'static str {
    match pb::ChangeKind::try_from(change).unwrap_or(pb::ChangeKind::Unspecified) {
        pb::ChangeKind::Unspecified => "?",
        pb::ChangeKind::Establish => "established",
        pb::ChangeKind::Dissolve => "dissolved",
        pb::ChangeKind::Merge => "merged",
        pb::ChangeKind::Split => "split",
        pb::ChangeKind::Rename => "renamed",
        pb::ChangeKind::Reparent => "reparented",
        pb::ChangeKind::Reclassify => "reclassified",
        pb::ChangeKind::Recode => "recoded",
    }
}

fn part_name(part: i32) -> &'static str {
    match pb::LineagePart::try_from(part).unwrap_or(pb::LineagePart::Unspecified) {
        pb::LineagePart::Full => "full",
        pb::LineagePart::Partial => "partial",
        pb::LineagePart::Unspecified => "",
    }
}

fn unit_table(units: &[pb::Unit]) -> Table {
    let mut t = Table::new(&[
        "code",
        "name",
        "kind",
        "parent",
        "id",
        "valid_from",
        "valid_to",
    ]);
    for u in units {
        t.push(vec![
            u.code.clone(),
            u.name.clone(),
            kind_name(u.kind),
            u.parent_code.clone(),
            u.id.to_string(),
            date_text(u.valid_from.as_ref()),
            date_text(u.valid_to.as_ref()),
        ]);
    }
    t
}

fn by_code(code: &str) -> Option<pb::UnitRef> {
    Some(pb::UnitRef {
        r#ref: Some(pb::unit_ref::Ref::Code(code.to_owned())),
    })
}

impl UnitsClientCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            UnitsClientCommand::Ls {
                parent,
                level,
                as_of,
                client,
            } => {
                let mut api = UnitsServiceClient::new(client.connect().await?);
                let level = level.map_or(pb::UnitLevel::Unspecified, LevelArg::to_pb);
                let mut total = 0;
                let units = every_page(async |page_token| {
                    let page = api
                        .list_units(pb::ListUnitsRequest {
                            parent_code: parent.clone().unwrap_or_default(),
                            level: level as i32,
                            as_of: as_of.map(from_date),
                            page_size: PAGE_SIZE,
                            page_token,
                        })
                        .await?
                        .into_inner();
                    total = page.total_size;
                    Ok((page.units, page.next_page_token))
                })
                .await?;
                let when = as_of.map_or_else(|| "today".to_owned(), |d| d.to_string());
                let title = format!("{total} units as of {when}");
                print!(
                    "{}",
                    unit_table(&units).titled(title).render(client.output)?
                );
                Ok(())
            }
            UnitsClientCommand::Show {
                code,
                as_of,
                client,
            } => {
                let mut api = UnitsServiceClient::new(client.connect().await?);
                let found = api
                    .get_unit(pb::GetUnitRequest {
                        unit: by_code(&code),
                        as_of: as_of.map(from_date),
                    })
                    .await
                    .map_err(explain)?
                    .into_inner();
                let ancestors = api
                    .list_ancestors(pb::ListAncestorsRequest {
                        unit: by_code(&code),
                        as_of: as_of.map(from_date),
                    })
                    .await
                    .map_err(explain)?
                    .into_inner();
                let unit = found.unit.context("the server sent no unit")?;
                let mut chain = vec![unit.clone()];
                chain.extend(ancestors.ancestors);
                let mut versions =
                    Table::new(&["valid_from", "valid_to", "code", "name", "kind", "parent"]);
                for v in &found.versions {
                    versions.push(vec![
                        date_text(v.valid_from.as_ref()),
                        date_text(v.valid_to.as_ref()),
                        v.code.clone(),
                        v.name.clone(),
                        kind_name(v.kind),
                        v.parent_code.clone(),
                    ]);
                }
                let chain = unit_table(&chain)
                    .titled(format!("{} {} and its ancestors", unit.code, unit.name));
                let versions = versions.titled("history of its facts");
                print!(
                    "{}",
                    render_sections(&[("unit", &chain), ("versions", &versions)], client.output)?
                );
                Ok(())
            }
            UnitsClientCommand::Lineage {
                code,
                as_of,
                client,
            } => {
                let mut api = UnitsServiceClient::new(client.connect().await?);
                let lineage = api
                    .list_lineage(pb::ListLineageRequest {
                        unit: by_code(&code),
                        as_of: as_of.map(from_date),
                    })
                    .await
                    .map_err(explain)?
                    .into_inner();
                let unit = lineage.unit.context("the server sent no unit")?;
                let links = |links: &[pb::LineageLink]| {
                    let mut t = Table::new(&[
                        "effective",
                        "change",
                        "part",
                        "code",
                        "name",
                        "kind",
                        "id",
                        "source",
                    ]);
                    for l in links {
                        let u = l.unit.clone().unwrap_or_default();
                        t.push(vec![
                            date_text(l.effective_date.as_ref()),
                            change_name(l.change).to_owned(),
                            part_name(l.part).to_owned(),
                            u.code,
                            u.name,
                            kind_name(u.kind),
                            u.id.to_string(),
                            l.source.clone(),
                        ]);
                    }
                    t
                };
                let mut changes = Table::new(&[
                    "seq",
                    "effective",
                    "change",
                    "code",
                    "name",
                    "before",
                    "source",
                ]);
                for c in &lineage.changes {
                    let before = [c.previous_code.as_str(), c.previous_name.as_str()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ");
                    changes.push(vec![
                        c.sequence.to_string(),
                        date_text(c.effective_date.as_ref()),
                        change_name(c.change).to_owned(),
                        c.code.clone(),
                        c.name.clone(),
                        before,
                        c.source.clone(),
                    ]);
                }
                let predecessors = links(&lineage.predecessors).titled(format!(
                    "{} {} (id {}) came from",
                    unit.code, unit.name, unit.id
                ));
                let successors = links(&lineage.successors).titled("and went into");
                let changes = changes.titled("its own recorded changes");
                print!(
                    "{}",
                    render_sections(
                        &[
                            ("predecessors", &predecessors),
                            ("successors", &successors),
                            ("changes", &changes)
                        ],
                        client.output
                    )?
                );
                Ok(())
            }
            UnitsClientCommand::Import {
                file,
                effective_date,
                lineage,
                source,
                validate_only,
                partial,
                request_id,
                client,
            } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let rows = chiso_units::reference::parse_rows(&text)
                    .with_context(|| format!("{}", file.display()))?;
                let lineage_rows = match &lineage {
                    Some(path) => {
                        let text = std::fs::read_to_string(path)
                            .with_context(|| format!("cannot read {}", path.display()))?;
                        chiso_units::reference::parse_lineage(&text)
                            .with_context(|| format!("{}", path.display()))?
                    }
                    None => Vec::new(),
                };
                let request_id = request_id.unwrap_or_else(|| {
                    use std::hash::{DefaultHasher, Hash, Hasher};
                    let mut h = DefaultHasher::new();
                    (
                        text.as_str(),
                        effective_date.to_string(),
                        &lineage_rows.len(),
                        &source,
                    )
                        .hash(&mut h);
                    format!("cli/{effective_date}/{:016x}", h.finish())
                });
                let mut api = UnitsServiceClient::new(client.connect().await?);
                let response = api
                    .import_snapshot(pb::ImportSnapshotRequest {
                        effective_date: Some(from_date(effective_date)),
                        rows,
                        lineage: lineage_rows,
                        source,
                        validate_only,
                        partial,
                        request_id,
                    })
                    .await
                    .map_err(explain)?
                    .into_inner();
                let s = response.summary.unwrap_or_default();
                let mut summary = Table::new(&["change", "units"]);
                for (name, n) in [
                    ("established", s.established),
                    ("dissolved", s.dissolved),
                    ("merged", s.merged),
                    ("split", s.split),
                    ("renamed", s.renamed),
                    ("reparented", s.reparented),
                    ("reclassified", s.reclassified),
                    ("recoded", s.recoded),
                    ("unchanged", s.unchanged),
                    ("lineage links", s.lineage_links),
                ] {
                    summary.push(vec![name.to_owned(), n.to_string()]);
                }
                let mut rejected = Table::new(&["list", "index", "code", "field", "reason"]);
                for r in &response.rejected {
                    rejected.push(vec![
                        r.list.clone(),
                        r.index.to_string(),
                        r.code.clone(),
                        r.field.clone(),
                        r.reason.clone(),
                    ]);
                }
                let title = if response.applied {
                    format!(
                        "import {} applied (last change #{})",
                        response.import_id, response.last_sequence
                    )
                } else {
                    "checked only: nothing was written".to_owned()
                };
                let summary = summary.titled(title);
                let rejected =
                    rejected.titled(format!("{} rows rejected", response.rejected.len()));
                print!(
                    "{}",
                    render_sections(
                        &[("summary", &summary), ("rejected", &rejected)],
                        client.output
                    )?
                );
                Ok(())
            }
        }
    }
}
