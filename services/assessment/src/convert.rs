//! Between the wire (`chiso.assessment.v1`) and the service's own types:
//! the only place that builds its messages.

use chiso_proto::assessment::v1 as pb;
use chiso_proto::units::v1::UnitLevel;

use crate::repo::{AssessmentRow, HistoryRecord, SetState, StoredSet, StoredValue, timestamp};
use crate::workflow::Review;
use chiso_criteria::{
    self as criteria, CriteriaSet, Direction, Kind, Level, Scorecard, Scoring, Value,
};

/// A level in messages ("commune units"): the generated name without its
/// prefix, in lower case.
pub fn level_name(level: UnitLevel) -> String {
    match level {
        // What the messages have always said of a unit sent without one.
        UnitLevel::Unspecified => "unknown".to_owned(),
        level => chiso_server::enum_name(level.as_str_name(), "UNIT_LEVEL_"),
    }
}

pub fn level_to_pb(level: Level) -> UnitLevel {
    match level {
        Level::Province => UnitLevel::Province,
        Level::District => UnitLevel::District,
        Level::Commune => UnitLevel::Commune,
    }
}

pub fn level_from_pb(level: UnitLevel) -> Option<Level> {
    match level {
        UnitLevel::Unspecified => None,
        UnitLevel::Province => Some(Level::Province),
        UnitLevel::District => Some(Level::District),
        UnitLevel::Commune => Some(Level::Commune),
    }
}

fn comparison(direction: Direction) -> pb::Comparison {
    match direction {
        Direction::AtLeast => pb::Comparison::AtLeast,
        Direction::AtMost => pb::Comparison::AtMost,
    }
}

/// A stored set on the wire; `detailed` adds indicators and the definition.
pub fn set_to_pb(stored: &StoredSet, detailed: bool) -> pb::CriteriaSet {
    let set = &stored.set;
    let indicators = if detailed {
        set.indicators()
            .map(|(group, ind)| {
                let mut out = pb::Indicator {
                    code: ind.code.clone(),
                    name: ind.name.clone(),
                    group_code: group.code.clone(),
                    group_name: group.name.clone(),
                    unit: ind.unit.clone().unwrap_or_default(),
                    mandatory: ind.mandatory,
                    evidence_required: ind.evidence_required,
                    max_points: ind.max_points,
                    scoring: match ind.scoring {
                        Scoring::Proportional => pb::Scoring::Proportional,
                        Scoring::AllOrNothing => pb::Scoring::AllOrNothing,
                    } as i32,
                    ..Default::default()
                };
                match &ind.kind {
                    Kind::YesNo => out.kind = pb::IndicatorKind::YesNo as i32,
                    Kind::Choice { options } => {
                        out.kind = pb::IndicatorKind::Choice as i32;
                        out.options = options
                            .iter()
                            .map(|o| pb::ChoiceOption {
                                code: o.code.clone(),
                                label: o.label.clone(),
                                points: o.points,
                                meets: o.met,
                            })
                            .collect();
                    }
                    Kind::Ratio {
                        threshold,
                        direction,
                        ..
                    } => {
                        out.kind = pb::IndicatorKind::Ratio as i32;
                        out.threshold = *threshold;
                        out.comparison = comparison(*direction) as i32;
                    }
                    Kind::Count { met_at, tiers } => {
                        out.kind = pb::IndicatorKind::Count as i32;
                        out.threshold = *met_at as f64;
                        out.comparison = pb::Comparison::AtLeast as i32;
                        out.tiers = tiers
                            .iter()
                            .map(|t| pb::CountTier {
                                at_least: t.at,
                                points: t.points,
                            })
                            .collect();
                    }
                    Kind::Target {
                        threshold,
                        direction,
                    } => {
                        out.kind = pb::IndicatorKind::Target as i32;
                        out.threshold = *threshold;
                        out.comparison = comparison(*direction) as i32;
                    }
                }
                out
            })
            .collect()
    } else {
        Vec::new()
    };
    pb::CriteriaSet {
        id: set.id.clone(),
        version: set.version as i32,
        title: set.title.clone(),
        level: level_to_pb(set.level) as i32,
        years: set.years.clone(),
        source: set.source.clone(),
        notes: set.notes.clone(),
        indicators,
        completion: Some(pb::CompletionRule {
            all_mandatory: set.completion.all_mandatory,
            min_points: set.completion.min_points.unwrap_or(0.0),
        }),
        max_points: set.max_points(),
        state: match stored.state {
            SetState::Draft => pb::CriteriaSetState::Draft,
            SetState::Published => pb::CriteriaSetState::Published,
        } as i32,
        definition_toml: if detailed {
            stored.toml.clone()
        } else {
            String::new()
        },
        etag: stored.etag(),
    }
}

/// The reported value, if the oneof is set.
pub fn value_from_pb(v: &pb::IndicatorValue) -> Option<Value> {
    use pb::indicator_value::Value as V;
    Some(match v.value.as_ref()? {
        V::Yes(b) => Value::Bool(*b),
        V::Choice(c) => Value::Choice(c.clone()),
        V::Ratio(r) => Value::Ratio {
            numerator: r.numerator,
            denominator: r.denominator,
        },
        V::Count(n) => Value::Count(*n),
        V::Number(x) => Value::Number(*x),
    })
}

pub fn value_to_pb(v: &StoredValue) -> pb::IndicatorValue {
    use pb::indicator_value::Value as V;
    pb::IndicatorValue {
        indicator_code: v.code.clone(),
        value: Some(match &v.value {
            Value::Bool(b) => V::Yes(*b),
            Value::Choice(c) => V::Choice(c.clone()),
            Value::Ratio {
                numerator,
                denominator,
            } => V::Ratio(pb::Ratio {
                numerator: *numerator,
                denominator: *denominator,
            }),
            Value::Count(n) => V::Count(*n),
            Value::Number(x) => V::Number(*x),
        }),
        evidence: Some(v.evidence.clone()),
    }
}

pub fn scorecard_to_pb(set: &CriteriaSet, card: &Scorecard) -> pb::Scorecard {
    pb::Scorecard {
        indicators: card
            .indicators
            .iter()
            .map(|i| {
                let gap = match i.shortfall.as_ref().map(|s| &s.gap) {
                    Some(criteria::Gap::Short { by, .. }) => *by,
                    _ => 0.0,
                };
                pb::IndicatorResult {
                    code: i.code.clone(),
                    name: set
                        .indicator(&i.code)
                        .map(|ind| ind.name.clone())
                        .unwrap_or_default(),
                    group_code: i.group.clone(),
                    mandatory: i.mandatory,
                    has_value: i.value.is_some(),
                    met: i.met,
                    points: i.points,
                    max_points: i.max_points,
                    gap,
                    shortfall: i
                        .shortfall
                        .as_ref()
                        .map(|s| s.text.clone())
                        .unwrap_or_default(),
                    measured: i.measured,
                }
            })
            .collect(),
        groups: card
            .groups
            .iter()
            .map(|g| pb::GroupResult {
                code: g.code.clone(),
                name: g.name.clone(),
                points: g.points,
                max_points: g.max_points,
            })
            .collect(),
        total_points: card.total,
        max_points: card.max_total,
        complete: card.complete,
        failing: card.failing.clone(),
    }
}

/// The wire form of an assessment. `scorecard` is the full card for one
/// assessment, or [`summary_scorecard`] in a list.
pub fn assessment_to_pb(
    row: &AssessmentRow,
    values: &[StoredValue],
    scorecard: pb::Scorecard,
) -> pb::Assessment {
    pb::Assessment {
        id: row.id,
        unit_id: row.unit_id,
        unit_code: row.unit_code.clone(),
        unit_name: row.unit_name.clone(),
        level: row.level as i32,
        year: row.year,
        criteria_set_id: row.criteria_set_id.clone(),
        criteria_set_version: row.criteria_set_version as i32,
        status: row.status.to_pb() as i32,
        values: values.iter().map(value_to_pb).collect(),
        scorecard: Some(scorecard),
        etag: row.etag(),
        reason: row.reason.clone(),
        updated_at: timestamp(&row.updated_at),
    }
}

/// The totals an assessment row keeps, as a scorecard without details.
pub fn summary_scorecard(row: &AssessmentRow) -> pb::Scorecard {
    pb::Scorecard {
        total_points: row.total_points,
        max_points: row.max_points,
        complete: row.complete,
        ..Default::default()
    }
}

/// The event a review step appends.
pub fn event_kind(review: Review) -> pb::EventKind {
    match review {
        Review::Submit => pb::EventKind::Submitted,
        Review::Verify => pb::EventKind::Verified,
        Review::Approve => pb::EventKind::Approved,
        Review::Return => pb::EventKind::Returned,
        Review::Reopen => pb::EventKind::Reopened,
    }
}

/// The outbox event of a change to an assessment.
pub fn event_to_pb(
    row: &AssessmentRow,
    kind: pb::EventKind,
    card: &pb::Scorecard,
    actor: &str,
) -> pb::AssessmentEvent {
    pb::AssessmentEvent {
        sequence: 0,
        kind: kind as i32,
        assessment_id: row.id,
        unit_id: row.unit_id,
        unit_code: row.unit_code.clone(),
        unit_name: row.unit_name.clone(),
        level: row.level as i32,
        ancestors: row.ancestors.clone(),
        year: row.year,
        status: row.status.to_pb() as i32,
        criteria_set_id: row.criteria_set_id.clone(),
        criteria_set_version: row.criteria_set_version as i32,
        scorecard: Some(card.clone()),
        occurred_at: timestamp(&row.updated_at),
        actor: actor.to_owned(),
    }
}

pub fn history_to_pb(h: HistoryRecord) -> pb::HistoryEntry {
    let status = |s: Option<crate::workflow::Status>| s.map_or(0, |s| s.to_pb() as i32);
    pb::HistoryEntry {
        sequence: h.sequence,
        at: timestamp(&h.at),
        actor: h.actor,
        action: h.action,
        indicator_code: h.indicator_code,
        old_value: h.old_json,
        new_value: h.new_json,
        from_status: status(h.from_status),
        to_status: status(h.to_status),
        reason: h.reason,
        request_id: h.request_id,
        old_indicator_value: h.old_value.as_ref().map(value_to_pb),
        new_indicator_value: h.new_value.as_ref().map(value_to_pb),
    }
}
