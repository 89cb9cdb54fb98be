//! The assessment service against each storage backend: every test runs on
//! SQLite, and on PostgreSQL when `CHISO_TEST_DATABASE_URL` is set. Each test
//! starts a real units service (Thanh Hóa history) and the assessment service
//! on port 0, and calls it through generated clients with signed tokens.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chiso_auth::{NATIONAL_SCOPE, Role};
use chiso_proto::assessment::v1 as pb;
use chiso_proto::units::v1::UnitLevel;
use chiso_server::field_violations;
use chiso_testkit::on_every_backend;
use chiso_testkit::requests::{approve, reopen, send_back, submit, verify};
use support::*;
use tokio::sync::{Barrier, watch};
use tonic::Code;

on_every_backend!(Env:
    // Events
    concurrent_writers_leave_no_gap_for_a_follower_or_a_resuming_reader,
    concurrent_writes_over_one_etag_let_exactly_one_through,
    an_edit_racing_a_submission_never_lands_after_it,
    a_watcher_hears_a_write_committed_after_it_started,
    // Criteria sets
    a_criteria_set_is_drafted_published_and_never_replaced,
    a_stale_etag_cannot_publish,
    a_broken_definition_names_its_path_and_line,
    only_admins_manage_criteria_sets,
    criteria_sets_list_in_pages_by_level_and_year,
    // Ingest
    an_atomic_ingest_with_one_bad_row_writes_nothing_and_reports_every_row,
    a_partial_ingest_writes_the_good_rows_across_units_and_years,
    an_ingest_retry_returns_the_first_answer_and_writes_nothing_twice,
    an_ingest_row_outside_the_callers_scope_is_rejected,
    // Upsert
    an_upsert_retry_returns_the_first_answer_and_validate_only_writes_nothing,
    overlapping_retries_of_one_request_write_once_and_get_one_answer,
    // Validation
    every_bad_value_is_named_in_one_answer,
    a_set_of_another_level_or_years_is_named_with_the_bad_values,
    a_unit_that_did_not_exist_that_year_is_named,
    edits_and_moves_in_the_wrong_state_are_failed_preconditions,
    // Authorization
    a_commune_cannot_read_or_write_its_neighbour,
    a_district_reviewer_verifies_only_its_own_communes_and_cannot_approve,
    readers_cannot_write_and_only_services_and_admins_watch_events,
    calls_without_a_valid_token_are_unauthenticated,
);

// ---------------------------------------------------------------------------
// Helpers

/// The commune set that applies to every commune in `YEAR`.
async fn commune_set(env: &Env) -> pb::CriteriaSet {
    env.criteria(&[Role::Reader], NATIONAL_SCOPE)
        .get_criteria_set(pb::GetCriteriaSetRequest {
            id: "th-commune-2023".into(),
            version: 0,
        })
        .await
        .expect("GetCriteriaSet")
        .into_inner()
        .criteria_set
        .expect("a set")
}

/// Every indicator of the commune set, met.
async fn all_met(env: &Env) -> Vec<pb::IndicatorValue> {
    commune_set(env)
        .await
        .indicators
        .iter()
        .map(meeting)
        .collect()
}

async fn write(
    env: &Env,
    unit: &str,
    year: i32,
    values: Vec<pb::IndicatorValue>,
) -> pb::Assessment {
    env.commune(unit)
        .upsert_indicator_values(upsert(unit, year, values))
        .await
        .unwrap_or_else(|s| panic!("UpsertIndicatorValues {unit} {year}: {s:?}"))
        .into_inner()
        .assessment
        .expect("an assessment")
}

async fn get(env: &Env, unit: &str, year: i32) -> Result<pb::Assessment, tonic::Status> {
    env.client(&[Role::Reader], NATIONAL_SCOPE)
        .get_assessment(pb::GetAssessmentRequest {
            unit_code: unit.into(),
            year,
        })
        .await
        .map(|r| r.into_inner().assessment.expect("an assessment"))
}

fn value_of<'a>(a: &'a pb::Assessment, code: &str) -> Option<&'a pb::indicator_value::Value> {
    a.values
        .iter()
        .find(|v| v.indicator_code == code)
        .and_then(|v| v.value.as_ref())
}

/// Every event from `after`, read until `n` have come (then a short wait
/// shows nothing more does).
async fn events(env: &Env, after: i64, n: usize) -> Vec<pb::AssessmentEvent> {
    let mut stream = env
        .service()
        .watch_assessment_events(pb::WatchAssessmentEventsRequest {
            after_sequence: after,
        })
        .await
        .expect("WatchAssessmentEvents")
        .into_inner();
    let mut out = Vec::new();
    while out.len() < n {
        let message = tokio::time::timeout(WAIT, stream.message())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events came", out.len()))
            .expect("the stream goes on")
            .expect("the stream stays open");
        out.push(message.event.expect("an event"));
    }
    let more = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(more.is_err(), "more than {n} events: {more:?}");
    out
}

async fn ingest(
    client: &mut pb::assessment_service_client::AssessmentServiceClient<Authed>,
    options: pb::IngestOptions,
    rows: Vec<pb::IngestRow>,
) -> Result<pb::IngestIndicatorValuesResponse, tonic::Status> {
    use pb::ingest_indicator_values_request::Item;
    let mut messages = vec![pb::IngestIndicatorValuesRequest {
        item: Some(Item::Options(options)),
    }];
    messages.extend(rows.into_iter().map(|r| pb::IngestIndicatorValuesRequest {
        item: Some(Item::Row(r)),
    }));
    client
        .ingest_indicator_values(futures::stream::iter(messages))
        .await
        .map(|r| r.into_inner())
}

fn row(unit: &str, year: i32, value: pb::IndicatorValue) -> pb::IngestRow {
    pb::IngestRow {
        unit_code: unit.into(),
        year,
        value: Some(value),
    }
}

/// A commune set of the suite with one indicator of each kind, for `years`.
fn suite_set_toml(id: &str, version: u32, years: &str) -> String {
    format!(
        r#"id = "{id}"
version = {version}
title = "Bộ tiêu chí thử nghiệm"
level = "commune"
years = {years}
source = "chiso assessment suite"

[completion]
all_mandatory = true

[[groups]]
code = "G"
name = "Nhóm thử nghiệm"

[[groups.indicators]]
code = "G.01"
name = "Có kế hoạch chuyển đổi số"
kind = "yes_no"
mandatory = true
max_points = 1

[[groups.indicators]]
code = "G.02"
name = "Tỷ lệ hộ thanh toán không dùng tiền mặt"
kind = "ratio"
unit = "%"
threshold = 60
direction = ">="
mandatory = true
max_points = 1

[[groups.indicators]]
code = "G.03"
name = "Số điểm phát wifi công cộng"
kind = "count"
met_at = 1
max_points = 1

[[groups.indicators]]
code = "G.04"
name = "Tỷ trọng kinh tế số"
kind = "target"
unit = "%"
threshold = 20
direction = ">="
evidence_required = true
max_points = 1
"#
    )
}

async fn create_set(env: &Env, toml: String) -> pb::CriteriaSet {
    env.admin()
        .create_criteria_set(pb::CreateCriteriaSetRequest {
            definition_toml: toml,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("CreateCriteriaSet: {s:?}"))
        .into_inner()
        .criteria_set
        .expect("a set")
}

async fn publish(
    env: &Env,
    id: &str,
    version: i32,
    etag: &str,
) -> Result<pb::CriteriaSet, tonic::Status> {
    env.admin()
        .publish_criteria_set(pb::PublishCriteriaSetRequest {
            id: id.into(),
            version,
            etag: etag.into(),
        })
        .await
        .map(|r| r.into_inner().criteria_set.expect("a set"))
}

// ---------------------------------------------------------------------------
// Events without gaps

/// What one successful write did: who wrote which assessment, and the
/// scorecard it answered with (for upserts).
#[derive(Debug, Clone)]
struct Committed {
    actor: String,
    unit: String,
    scorecard: Option<pb::Scorecard>,
}

/// A follower that stays on the stream from 0, until it has `target` events.
async fn follow(
    env_url: String,
    target: watch::Receiver<Option<usize>>,
) -> Vec<pb::AssessmentEvent> {
    let mut target = target;
    let mut client = service_client(&env_url);
    let mut stream = client
        .watch_assessment_events(pb::WatchAssessmentEventsRequest { after_sequence: 0 })
        .await
        .expect("WatchAssessmentEvents")
        .into_inner();
    let mut seen = Vec::new();
    loop {
        if let Some(n) = *target.borrow_and_update()
            && seen.len() >= n
        {
            break;
        }
        tokio::select! {
            message = stream.message() => {
                let message = message.expect("the stream goes on").expect("the stream stays open");
                seen.push(message.event.expect("an event"));
            }
            _ = target.changed() => {}
            () = tokio::time::sleep(WAIT) => panic!("the follower stalled after {} events", seen.len()),
        }
    }
    // Nothing more comes once every write has been seen.
    let more = tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
    assert!(more.is_err(), "an event beyond the writes: {more:?}");
    seen
}

/// A reader that takes a few events at a time, drops the stream and resumes
/// after the last sequence it saw, until it has `target` events.
async fn resume_repeatedly(
    env_url: String,
    target: watch::Receiver<Option<usize>>,
) -> (Vec<pb::AssessmentEvent>, usize) {
    let mut target = target;
    let mut client = service_client(&env_url);
    let mut seen: Vec<pb::AssessmentEvent> = Vec::new();
    let mut resumes = 0;
    'outer: loop {
        let after = seen.last().map_or(0, |e| e.sequence);
        let mut stream = client
            .watch_assessment_events(pb::WatchAssessmentEventsRequest {
                after_sequence: after,
            })
            .await
            .expect("WatchAssessmentEvents")
            .into_inner();
        resumes += 1;
        let take = 1 + resumes % 3;
        for _ in 0..take {
            loop {
                if let Some(n) = *target.borrow_and_update()
                    && seen.len() >= n
                {
                    break 'outer;
                }
                tokio::select! {
                    message = stream.message() => {
                        let event = message
                            .expect("the stream goes on")
                            .expect("the stream stays open")
                            .event
                            .expect("an event");
                        let expected = seen.last().map_or(0, |e| e.sequence) + 1;
                        assert_eq!(event.sequence, expected, "resumed after {after}");
                        seen.push(event);
                        break;
                    }
                    _ = target.changed() => {}
                    () = tokio::time::sleep(WAIT) => panic!("the resuming reader stalled after {} events", seen.len()),
                }
            }
        }
    }
    (seen, resumes)
}

fn service_client(url: &str) -> pb::assessment_service_client::AssessmentServiceClient<Authed> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("url")
        .connect_lazy();
    pb::assessment_service_client::AssessmentServiceClient::new(
        tonic::service::interceptor::InterceptedService::new(
            channel,
            chiso_server::BearerInterceptor::new(&token(
                "reporting",
                &[Role::Service],
                NATIONAL_SCOPE,
            ))
            .expect("a token"),
        ),
    )
}

/// The issue's hard requirement: a reader that resumes after sequence N never
/// misses or repeats an event, with several writers committing at once.
async fn concurrent_writers_leave_no_gap_for_a_follower_or_a_resuming_reader(env: Env) {
    const ROUNDS: usize = 4;
    // Eight communes with a writer each; one commune shared by four writers
    // (one indicator each); two agency systems ingesting rows for four
    // communes each, two of which others write at the same time.
    let own: Vec<&str> = THO_XUAN_COMMUNES[..8].to_vec();
    let shared = THO_XUAN_COMMUNES[8];
    let shared_codes = ["CQS.03", "CQS.04", "CQS.05", "CQS.06"];
    let ingested = [
        (
            "CQS.07",
            [own[0], shared, THO_XUAN_COMMUNES[9], THO_XUAN_COMMUNES[10]],
        ),
        (
            "CQS.10",
            [own[1], shared, THO_XUAN_COMMUNES[10], THO_XUAN_COMMUNES[11]],
        ),
    ];

    let (set_target, target) = watch::channel(None);
    let follower = tokio::spawn(follow(env.url.clone(), target.clone()));
    let resumer = tokio::spawn(resume_repeatedly(env.url.clone(), target));

    let writers = own.len() + shared_codes.len() + ingested.len();
    let start = Arc::new(Barrier::new(writers));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, unit) in own.iter().enumerate() {
        let unit = unit.to_string();
        let actor = format!("writer-{i}");
        let mut client = env.client_as(&actor, &[Role::Submitter], &unit);
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            let mut done = Vec::new();
            for round in 0..ROUNDS {
                let numerator = (10 * round + i) as f64;
                let a = client
                    .upsert_indicator_values(upsert(
                        &unit,
                        YEAR,
                        vec![ratio("CQS.03", numerator, 100.0)],
                    ))
                    .await
                    .unwrap_or_else(|s| panic!("{actor} round {round}: {s:?}"))
                    .into_inner()
                    .assessment
                    .expect("an assessment");
                done.push(Committed {
                    actor: actor.clone(),
                    unit: unit.clone(),
                    scorecard: a.scorecard,
                });
            }
            done
        });
    }
    for (j, code) in shared_codes.into_iter().enumerate() {
        let actor = format!("shared-{j}");
        let mut client = env.client_as(&actor, &[Role::Submitter], shared);
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            let mut done = Vec::new();
            for round in 0..ROUNDS {
                let numerator = (20 * round + j + 1) as f64;
                let a = client
                    .upsert_indicator_values(upsert(
                        shared,
                        YEAR,
                        vec![ratio(code, numerator, 100.0)],
                    ))
                    .await
                    .unwrap_or_else(|s| panic!("{actor} round {round}: {s:?}"))
                    .into_inner()
                    .assessment
                    .expect("an assessment");
                done.push(Committed {
                    actor: actor.clone(),
                    unit: shared.to_owned(),
                    scorecard: a.scorecard,
                });
            }
            done
        });
    }
    for (k, (code, units)) in ingested.into_iter().enumerate() {
        let actor = format!("ingest-{k}");
        let mut client = env.client_as(&actor, &[Role::Submitter], DISTRICT);
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            let mut done = Vec::new();
            for round in 0..ROUNDS {
                let rows = units
                    .iter()
                    .map(|u| row(u, YEAR, ratio(code, (30 * round + k + 2) as f64, 100.0)))
                    .collect();
                let answer = ingest(
                    &mut client,
                    pb::IngestOptions {
                        atomic: true,
                        ..Default::default()
                    },
                    rows,
                )
                .await
                .unwrap_or_else(|s| panic!("{actor} round {round}: {s:?}"));
                assert!(
                    answer.committed && answer.rejected == 0,
                    "{actor} round {round}: {answer:?}"
                );
                done.extend(units.iter().map(|u| Committed {
                    actor: actor.clone(),
                    unit: u.to_string(),
                    scorecard: None,
                }));
            }
            done
        });
    }
    let mut committed: Vec<Committed> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        committed.extend(done.expect("a writer finished"));
    }
    let n = committed.len();
    assert_eq!(
        n,
        own.len() * ROUNDS + shared_codes.len() * ROUNDS + ingested.len() * ROUNDS * 4
    );
    set_target.send_replace(Some(n));
    let followed = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .expect("the follower finishes")
        .expect("the follower does not panic");
    let (resumed, resumes) = tokio::time::timeout(Duration::from_secs(60), resumer)
        .await
        .expect("the resuming reader finishes")
        .expect("the resuming reader does not panic");
    drop(set_target);

    // Exactly 1..=N, in order, for both readers.
    let expected: Vec<i64> = (1..=n as i64).collect();
    let sequences = |events: &[pb::AssessmentEvent]| -> Vec<i64> {
        events.iter().map(|e| e.sequence).collect()
    };
    assert_eq!(sequences(&followed), expected, "the follower from 0");
    assert_eq!(sequences(&resumed), expected, "the resuming reader");
    assert!(resumes > n / 3, "the reader resumed {resumes} times");
    assert_eq!(followed, resumed, "both readers saw the same events");

    // Each event is one committed write: same writer, same unit, as many.
    let mut by_write: BTreeMap<(String, String), Vec<&Committed>> = BTreeMap::new();
    for c in &committed {
        by_write
            .entry((c.actor.clone(), c.unit.clone()))
            .or_default()
            .push(c);
    }
    let mut by_event: BTreeMap<(String, String), Vec<&pb::AssessmentEvent>> = BTreeMap::new();
    for e in &followed {
        assert_eq!(e.kind, pb::EventKind::ValuesChanged as i32, "{e:?}");
        assert_eq!(e.year, YEAR);
        by_event
            .entry((e.actor.clone(), e.unit_code.clone()))
            .or_default()
            .push(e);
    }
    assert_eq!(
        by_write.keys().collect::<Vec<_>>(),
        by_event.keys().collect::<Vec<_>>()
    );
    for (key, writes) in &by_write {
        let events = &by_event[key];
        assert_eq!(writes.len(), events.len(), "{key:?}");
        // An upsert's answer and its event carry the same scorecard (the
        // writes of one writer commit in order).
        for (w, e) in writes.iter().zip(events.iter()) {
            if let Some(card) = &w.scorecard {
                assert_eq!(Some(card), e.scorecard.as_ref(), "{key:?}");
            }
        }
    }

    // Nothing was lost: every assessment holds each writer's last value, and
    // its last event carries the score of the values it holds.
    let mut last_event: BTreeMap<&str, &pb::AssessmentEvent> = BTreeMap::new();
    for e in &followed {
        last_event.insert(&e.unit_code, e);
    }
    let assessments: BTreeSet<&str> = committed.iter().map(|c| c.unit.as_str()).collect();
    for unit in assessments {
        let a = get(&env, unit, YEAR).await.expect("GetAssessment");
        let last = last_event[unit];
        assert_eq!(last.assessment_id, a.id, "{unit}");
        assert_eq!(
            last.scorecard, a.scorecard,
            "{unit}: the last event's score is the score of what is stored"
        );
        assert!(
            followed
                .iter()
                .filter(|e| e.unit_code == unit)
                .all(|e| e.assessment_id == a.id),
            "{unit}: one assessment"
        );
    }
    let last_round = (ROUNDS - 1) as f64;
    let shared_now = get(&env, shared, YEAR).await.expect("GetAssessment");
    for (j, code) in shared_codes.iter().enumerate() {
        assert_eq!(
            value_of(&shared_now, code),
            Some(&pb::indicator_value::Value::Ratio(pb::Ratio {
                numerator: 20.0 * last_round + j as f64 + 1.0,
                denominator: 100.0
            })),
            "{code} of the shared commune"
        );
    }
    for (k, (code, _)) in ingested.iter().enumerate() {
        assert_eq!(
            value_of(&shared_now, code),
            Some(&pb::indicator_value::Value::Ratio(pb::Ratio {
                numerator: 30.0 * last_round + k as f64 + 2.0,
                denominator: 100.0
            })),
            "{code} of the shared commune"
        );
    }
    assert_eq!(env.count("events").await, n as i64);
}

/// Optimistic concurrency holds under concurrent writers: of several writes
/// over the same etag, one commits and the rest are told `Aborted`.
async fn concurrent_writes_over_one_etag_let_exactly_one_through(env: Env) {
    const ROUNDS: usize = 4;
    const WRITERS: usize = 8;
    // No racer writes the value already there (that would change nothing
    // and keep the etag valid for the others).
    let mut current = write(&env, COMMUNE, YEAR, vec![ratio("CQS.03", 99.0, 100.0)]).await;
    for round in 0..ROUNDS {
        let start = Arc::new(Barrier::new(WRITERS));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..WRITERS {
            let mut client = env.commune(COMMUNE);
            let start = start.clone();
            let mut request = upsert(
                COMMUNE,
                YEAR,
                vec![ratio("CQS.03", (10 * round + i) as f64, 100.0)],
            );
            request.etag = current.etag.clone();
            tasks.spawn(async move {
                start.wait().await;
                client.upsert_indicator_values(request).await
            });
        }
        let mut winners = Vec::new();
        while let Some(result) = tasks.join_next().await {
            match result.expect("a writer finished") {
                Ok(answer) => winners.push(answer.into_inner().assessment.expect("an assessment")),
                Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: writes over one etag that committed"
        );
        current = winners.remove(0);
        let stored = get(&env, COMMUNE, YEAR).await.expect("GetAssessment");
        assert_eq!(stored.etag, current.etag, "round {round}");
        assert_eq!(stored.values, current.values, "round {round}");
    }
    assert_eq!(env.count("events").await, 1 + ROUNDS as i64);
    assert_eq!(env.count("history").await, 1 + ROUNDS as i64);
}

/// Values can change only while the unit holds the assessment, even when an
/// edit and the submission arrive together.
async fn an_edit_racing_a_submission_never_lands_after_it(env: Env) {
    write(&env, COMMUNE, YEAR, all_met(&env).await).await;
    let start = Arc::new(Barrier::new(7));
    let mut edits = tokio::task::JoinSet::new();
    for i in 0..6 {
        let mut client = env.commune(COMMUNE);
        let start = start.clone();
        edits.spawn(async move {
            start.wait().await;
            client
                .upsert_indicator_values(upsert(
                    COMMUNE,
                    YEAR,
                    vec![ratio("CQS.04", 96.0 + i as f64 * 0.5, 100.0)],
                ))
                .await
        });
    }
    let mut submitter = env.commune(COMMUNE);
    start.wait().await;
    submitter
        .submit_assessment(submit(COMMUNE, YEAR))
        .await
        .expect("SubmitAssessment");
    let mut edited = 0;
    while let Some(result) = edits.join_next().await {
        match result.expect("an edit finished") {
            Ok(_) => edited += 1,
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    let history = env
        .commune(COMMUNE)
        .list_assessment_history(pb::ListAssessmentHistoryRequest {
            unit_code: COMMUNE.into(),
            year: YEAR,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner()
        .entries;
    let submitted = history
        .iter()
        .position(|e| e.action == "submit")
        .expect("the submission is in the history");
    let after: Vec<_> = history[submitted + 1..].iter().collect();
    assert!(after.is_empty(), "changes after the submission: {after:?}");
    assert!(
        history[..submitted]
            .iter()
            .all(|e| e.from_status == pb::AssessmentStatus::Draft as i32),
        "{history:?}"
    );
    let values = history.iter().filter(|e| e.action == "value").count();
    assert_eq!(values, 37 + edited, "one entry per accepted edit");
    let now = get(&env, COMMUNE, YEAR).await.expect("GetAssessment");
    assert_eq!(now.status, pb::AssessmentStatus::Submitted as i32);
    assert_eq!(env.count("events").await, 1 + edited as i64 + 1);
}

async fn a_watcher_hears_a_write_committed_after_it_started(env: Env) {
    write(&env, COMMUNE, YEAR, vec![yes("CQS.01", true)]).await;
    let mut stream = env
        .service()
        .watch_assessment_events(pb::WatchAssessmentEventsRequest { after_sequence: 1 })
        .await
        .expect("WatchAssessmentEvents")
        .into_inner();
    let pending = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
    assert!(pending.is_err(), "nothing after 1 yet: {pending:?}");
    let a = write(&env, NEIGHBOUR, YEAR, vec![yes("CQS.01", false)]).await;
    let event = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("the write is heard")
        .expect("the stream goes on")
        .expect("the stream stays open")
        .event
        .expect("an event");
    assert_eq!(event.sequence, 2);
    assert_eq!(event.assessment_id, a.id);
    assert_eq!(event.unit_code, NEIGHBOUR);
    assert_eq!(event.level, UnitLevel::Commune as i32);
    let ancestors: Vec<_> = event.ancestors.iter().map(|a| a.code.as_str()).collect();
    assert_eq!(ancestors, [DISTRICT, PROVINCE]);
    assert_eq!(event.criteria_set_id, "th-commune-2023");
    assert_eq!(event.status, pb::AssessmentStatus::Draft as i32);
    assert_eq!(event.actor, format!("system-{NEIGHBOUR}"));
    assert!(event.occurred_at.is_some());

    let bad = env
        .service()
        .watch_assessment_events(pb::WatchAssessmentEventsRequest { after_sequence: -1 })
        .await;
    assert_eq!(
        bad_fields(&expect_code(bad, Code::InvalidArgument)),
        ["after_sequence"]
    );
    assert_eq!(events(&env, 0, 2).await.len(), 2);
}

// ---------------------------------------------------------------------------
// Criteria sets

async fn a_criteria_set_is_drafted_published_and_never_replaced(env: Env) {
    let draft = create_set(&env, suite_set_toml("suite-commune", 1, "[2024]")).await;
    assert_eq!(draft.state, pb::CriteriaSetState::Draft as i32);
    assert_eq!(draft.indicators.len(), 4);
    assert_eq!(draft.level, UnitLevel::Commune as i32);
    // A draft does not count as the latest published version.
    let latest = env
        .admin()
        .get_criteria_set(pb::GetCriteriaSetRequest {
            id: "suite-commune".into(),
            version: 0,
        })
        .await;
    expect_code(latest, Code::NotFound);
    // A draft can be replaced.
    let redrafted = create_set(&env, suite_set_toml("suite-commune", 1, "[2024, 2025]")).await;
    assert_ne!(redrafted.etag, draft.etag);
    assert_eq!(redrafted.years, [2024, 2025]);

    let published = publish(&env, "suite-commune", 1, &redrafted.etag)
        .await
        .expect("PublishCriteriaSet");
    assert_eq!(published.state, pb::CriteriaSetState::Published as i32);
    // Publishing again changes nothing.
    let again = publish(&env, "suite-commune", 1, "")
        .await
        .expect("publish again");
    assert_eq!(again.state, pb::CriteriaSetState::Published as i32);

    // A published set cannot be replaced; a new version is a new set.
    let replaced = env
        .admin()
        .create_criteria_set(pb::CreateCriteriaSetRequest {
            definition_toml: suite_set_toml("suite-commune", 1, "[2023]"),
            ..Default::default()
        })
        .await;
    let status = expect_code(replaced, Code::FailedPrecondition);
    assert!(status.message().contains("version 2"), "{status:?}");
    let v1 = env
        .admin()
        .get_criteria_set(pb::GetCriteriaSetRequest {
            id: "suite-commune".into(),
            version: 1,
        })
        .await
        .expect("GetCriteriaSet")
        .into_inner()
        .criteria_set
        .expect("a set");
    assert_eq!(v1.years, [2024, 2025], "the published set did not change");

    create_set(&env, suite_set_toml("suite-commune", 2, "[2025]")).await;
    let latest = |env: &Env| {
        let mut client = env.criteria(&[Role::Reader], "15499");
        async move {
            client
                .get_criteria_set(pb::GetCriteriaSetRequest {
                    id: "suite-commune".into(),
                    version: 0,
                })
                .await
                .expect("GetCriteriaSet")
                .into_inner()
                .criteria_set
                .expect("a set")
        }
    };
    assert_eq!(latest(&env).await.version, 1, "version 2 is a draft");
    publish(&env, "suite-commune", 2, "")
        .await
        .expect("publish v2");
    let now = latest(&env).await;
    assert_eq!((now.version, now.years.clone()), (2, vec![2025]));
    assert!(now.definition_toml.contains("version = 2"));

    // validate_only checks and writes nothing.
    let checked = env
        .admin()
        .create_criteria_set(pb::CreateCriteriaSetRequest {
            definition_toml: suite_set_toml("suite-other", 1, "[2024]"),
            validate_only: true,
            ..Default::default()
        })
        .await
        .expect("validate_only")
        .into_inner()
        .criteria_set
        .expect("a set");
    assert_eq!(checked.id, "suite-other");
    let missing = env
        .admin()
        .get_criteria_set(pb::GetCriteriaSetRequest {
            id: "suite-other".into(),
            version: 1,
        })
        .await;
    expect_code(missing, Code::NotFound);
    expect_code(publish(&env, "suite-other", 1, "").await, Code::NotFound);
    let bad = publish(&env, "", 0, "").await;
    let mut fields = bad_fields(&expect_code(bad, Code::InvalidArgument));
    fields.sort();
    assert_eq!(fields, ["id", "version"]);
}

async fn a_stale_etag_cannot_publish(env: Env) {
    let first = create_set(&env, suite_set_toml("suite-commune", 1, "[2024]")).await;
    let second = create_set(&env, suite_set_toml("suite-commune", 1, "[2025]")).await;
    let stale = publish(&env, "suite-commune", 1, &first.etag).await;
    expect_code(stale, Code::Aborted);
    let draft = env
        .admin()
        .get_criteria_set(pb::GetCriteriaSetRequest {
            id: "suite-commune".into(),
            version: 1,
        })
        .await
        .expect("GetCriteriaSet")
        .into_inner()
        .criteria_set
        .expect("a set");
    assert_eq!(
        draft.state,
        pb::CriteriaSetState::Draft as i32,
        "not published"
    );
    let published = publish(&env, "suite-commune", 1, &second.etag)
        .await
        .expect("publish over the current etag");
    assert_eq!(published.years, [2025]);
}

async fn a_broken_definition_names_its_path_and_line(env: Env) {
    // A misspelt field, and (separately) a threshold out of range.
    let misspelt = suite_set_toml("suite-commune", 1, "[2024]").replace("met_at = 1", "met_a = 1");
    let line = misspelt
        .lines()
        .position(|l| l.starts_with("met_a "))
        .expect("the line")
        + 1;
    let err = env
        .admin()
        .create_criteria_set(pb::CreateCriteriaSetRequest {
            definition_toml: misspelt,
            ..Default::default()
        })
        .await;
    let violations = field_violations(&expect_code(err, Code::InvalidArgument));
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(
        violations[0].0,
        "definition_toml.groups[0].indicators[2].met_a"
    );
    assert!(
        violations[0].1.starts_with(&format!("line {line}: ")),
        "{violations:?}"
    );

    let out_of_range = suite_set_toml("suite-commune", 1, "[2024]")
        .replace("threshold = 60", "threshold = 160")
        .replace("years = [2024]", "years = [2024, 1999]");
    let line = out_of_range
        .lines()
        .position(|l| l.starts_with("threshold = 160"))
        .expect("the line")
        + 1;
    let err = env
        .admin()
        .create_criteria_set(pb::CreateCriteriaSetRequest {
            definition_toml: out_of_range,
            ..Default::default()
        })
        .await;
    let violations = field_violations(&expect_code(err, Code::InvalidArgument));
    let fields: Vec<&str> = violations.iter().map(|(f, _)| f.as_str()).collect();
    assert!(
        fields.contains(&"definition_toml.years[1]"),
        "{violations:?}"
    );
    let threshold = violations
        .iter()
        .find(|(f, _)| f == "definition_toml.groups[0].indicators[1].threshold")
        .unwrap_or_else(|| panic!("the threshold is named: {violations:?}"));
    assert!(
        threshold.1.starts_with(&format!("line {line}: ")),
        "{threshold:?}"
    );

    let garbage = env
        .admin()
        .create_criteria_set(pb::CreateCriteriaSetRequest {
            definition_toml: "id = \"x\"\nversion = [".into(),
            ..Default::default()
        })
        .await;
    let fields = bad_fields(&expect_code(garbage, Code::InvalidArgument));
    assert!(
        fields.iter().all(|f| f.starts_with("definition_toml")),
        "{fields:?}"
    );
    assert_eq!(env.count("criteria_sets").await, 4, "only the shipped sets");
}

async fn only_admins_manage_criteria_sets(env: Env) {
    let toml = suite_set_toml("suite-commune", 1, "[2024]");
    for (roles, scope) in [
        (vec![Role::Approver, Role::Reviewer, Role::Reader], PROVINCE),
        (vec![Role::Service], NATIONAL_SCOPE),
        (vec![Role::Submitter], COMMUNE),
    ] {
        let mut client = env.criteria(&roles, scope);
        let created = client
            .create_criteria_set(pb::CreateCriteriaSetRequest {
                definition_toml: toml.clone(),
                ..Default::default()
            })
            .await;
        expect_code(created, Code::PermissionDenied);
        let published = client
            .publish_criteria_set(pb::PublishCriteriaSetRequest {
                id: "th-commune-2023".into(),
                version: 1,
                ..Default::default()
            })
            .await;
        expect_code(published, Code::PermissionDenied);
        // Everyone may read them.
        let listed = client
            .list_criteria_sets(pb::ListCriteriaSetsRequest::default())
            .await
            .expect("ListCriteriaSets")
            .into_inner();
        assert_eq!(listed.criteria_sets.len(), 4);
    }
    assert_eq!(env.count("criteria_sets").await, 4);
}

async fn criteria_sets_list_in_pages_by_level_and_year(env: Env) {
    // Five more commune sets: four published, one draft.
    for (id, version, years) in [
        ("suite-a", 1, "[2024]"),
        ("suite-a", 2, "[2024, 2025]"),
        ("suite-b", 1, "[2022]"),
        ("suite-c", 1, "[2025]"),
    ] {
        create_set(&env, suite_set_toml(id, version, years)).await;
        publish(&env, id, version as i32, "")
            .await
            .expect("publish");
    }
    create_set(&env, suite_set_toml("suite-d", 1, "[2024]")).await;

    let list = |level: UnitLevel, year: i32, include_drafts: bool, page_size: i32| {
        let mut client = env.criteria(&[Role::Reader], COMMUNE);
        async move {
            let mut names = Vec::new();
            let mut token = String::new();
            let mut pages = 0;
            loop {
                let page = client
                    .list_criteria_sets(pb::ListCriteriaSetsRequest {
                        level: level as i32,
                        year,
                        include_drafts,
                        page_size,
                        page_token: token,
                    })
                    .await
                    .expect("ListCriteriaSets")
                    .into_inner();
                pages += 1;
                if page_size > 0 {
                    assert!(page.criteria_sets.len() <= page_size as usize);
                }
                assert!(
                    page.criteria_sets.iter().all(|s| s.indicators.is_empty()),
                    "lists are summaries"
                );
                names.extend(
                    page.criteria_sets
                        .iter()
                        .map(|s| format!("{}@{}", s.id, s.version)),
                );
                token = page.next_page_token;
                if token.is_empty() {
                    break;
                }
                assert!(pages < 20, "paging ends");
            }
            (names, pages)
        }
    };
    let (all, pages) = list(UnitLevel::Unspecified, 0, false, 2).await;
    assert_eq!(
        all,
        [
            "suite-a@1",
            "suite-a@2",
            "suite-b@1",
            "suite-c@1",
            "th-commune-2022@1",
            "th-commune-2023@1",
            "th-district-2024@1",
            "th-province-2025@1"
        ]
    );
    assert_eq!(pages, 4);
    let (with_drafts, _) = list(UnitLevel::Unspecified, 0, true, 3).await;
    assert_eq!(with_drafts.len(), 9);
    assert!(with_drafts.contains(&"suite-d@1".to_owned()));
    let (communes_2024, _) = list(UnitLevel::Commune, 2024, false, 1).await;
    assert_eq!(
        communes_2024,
        ["suite-a@1", "suite-a@2", "th-commune-2023@1"]
    );
    let (districts, _) = list(UnitLevel::District, 0, false, 100).await;
    assert_eq!(districts, ["th-district-2024@1"]);
    let (province_2025, _) = list(UnitLevel::Province, 2025, false, 0).await;
    assert_eq!(province_2025, ["th-province-2025@1"]);
    let (none, _) = list(UnitLevel::District, 2022, false, 5).await;
    assert!(none.is_empty());

    // A token from another query, a bad level, a year out of range.
    let first = env
        .criteria(&[Role::Reader], COMMUNE)
        .list_criteria_sets(pb::ListCriteriaSetsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("ListCriteriaSets")
        .into_inner();
    let bad = env
        .criteria(&[Role::Reader], COMMUNE)
        .list_criteria_sets(pb::ListCriteriaSetsRequest {
            level: 42,
            year: 1900,
            page_size: -1,
            include_drafts: true,
            page_token: first.next_page_token,
        })
        .await;
    let mut fields = bad_fields(&expect_code(bad, Code::InvalidArgument));
    fields.sort();
    assert_eq!(fields, ["level", "page_size", "page_token", "year"]);
}

// ---------------------------------------------------------------------------
// Ingest

async fn an_atomic_ingest_with_one_bad_row_writes_nothing_and_reports_every_row(env: Env) {
    let mut client = env.client(&[Role::Submitter], DISTRICT);
    let rows = vec![
        row(COMMUNE, YEAR, yes("CQS.01", true)),
        row(NEIGHBOUR, YEAR, ratio("CQS.03", 120.0, 100.0)),
        row(NEIGHBOUR, YEAR, count("KTS.04", 3)),
        row(COMMUNE, 2023, yes("CQS.02", true)),
    ];
    let answer = ingest(
        &mut client,
        pb::IngestOptions {
            atomic: true,
            ..Default::default()
        },
        rows,
    )
    .await
    .expect("IngestIndicatorValues");
    assert!(!answer.committed);
    assert_eq!((answer.accepted, answer.rejected), (0, 1));
    assert_eq!(answer.rows.len(), 4);
    for (i, r) in answer.rows.iter().enumerate() {
        assert_eq!(r.index, i as i32);
        assert_eq!(r.accepted, i != 1, "row {i}: {r:?}");
    }
    let fields: Vec<_> = answer.rows[1]
        .violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["value.ratio.numerator"], "{:?}", answer.rows[1]);
    assert_eq!(env.count("assessments").await, 0, "nothing written");
    assert_eq!(env.count("indicator_values").await, 0);
    assert_eq!(env.count("events").await, 0);
    expect_code(get(&env, COMMUNE, YEAR).await, Code::NotFound);
}

async fn a_partial_ingest_writes_the_good_rows_across_units_and_years(env: Env) {
    let mut client = env.client(&[Role::Submitter], DISTRICT);
    let rows = vec![
        row(COMMUNE, YEAR, yes("CQS.01", true)),
        row(COMMUNE, YEAR, ratio("CQS.03", 100.0, 100.0)),
        row(NEIGHBOUR, YEAR, count("KTS.04", -2)),
        row(NEIGHBOUR, YEAR, count("KTS.04", 4)),
        row(COMMUNE, 2023, yes("CQS.02", true)),
        row(COMMUNE, 2022, yes("NO.SUCH", true)),
        // 2022 is scored with the 2022 commune set.
        row(COMMUNE, 2022, yes("HTS.01", true)),
        pb::IngestRow {
            unit_code: NEIGHBOUR.into(),
            year: YEAR,
            value: None,
        },
    ];
    let answer = ingest(
        &mut client,
        pb::IngestOptions {
            atomic: false,
            ..Default::default()
        },
        rows,
    )
    .await
    .expect("IngestIndicatorValues");
    assert!(answer.committed);
    assert_eq!((answer.accepted, answer.rejected), (5, 3), "{answer:?}");
    let rejected: Vec<(i32, Vec<&str>)> = answer
        .rows
        .iter()
        .filter(|r| !r.accepted)
        .map(|r| {
            (
                r.index,
                r.violations.iter().map(|v| v.field.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (2, vec!["value.count"]),
            (5, vec!["value.indicator_code"]),
            (7, vec!["value"]),
        ]
    );

    let commune = get(&env, COMMUNE, YEAR).await.expect("GetAssessment");
    assert_eq!(commune.values.len(), 2);
    let neighbour = get(&env, NEIGHBOUR, YEAR).await.expect("GetAssessment");
    assert_eq!(
        value_of(&neighbour, "KTS.04"),
        Some(&pb::indicator_value::Value::Count(4))
    );
    let earlier = get(&env, COMMUNE, 2023).await.expect("GetAssessment");
    assert_eq!(earlier.criteria_set_id, "th-commune-2023");
    assert_eq!(earlier.values.len(), 1);
    let first = get(&env, COMMUNE, 2022).await.expect("GetAssessment");
    assert_eq!(first.criteria_set_id, "th-commune-2022");
    assert_eq!(first.values.len(), 1);
    // One event per assessment written.
    let seen = events(&env, 0, 4).await;
    let units: BTreeSet<_> = seen
        .iter()
        .map(|e| (e.unit_code.as_str(), e.year))
        .collect();
    assert_eq!(units.len(), 4);
}

async fn an_ingest_retry_returns_the_first_answer_and_writes_nothing_twice(env: Env) {
    let mut client = env.client(&[Role::Submitter], DISTRICT);
    let options = pb::IngestOptions {
        atomic: false,
        request_id: "agency-2024-batch-1".into(),
        ..Default::default()
    };
    let rows = vec![
        row(COMMUNE, YEAR, yes("CQS.01", true)),
        row(NEIGHBOUR, YEAR, yes("CQS.01", false)),
        row(NEIGHBOUR, YEAR, count("KTS.04", -1)),
    ];
    let first = ingest(&mut client, options.clone(), rows.clone())
        .await
        .expect("IngestIndicatorValues");
    assert!(first.committed);
    let counts = (
        env.count("indicator_values").await,
        env.count("history").await,
        env.count("events").await,
    );
    assert_eq!(counts, (2, 2, 2));
    // Someone changes a value in between; the retry must not undo it.
    write(&env, COMMUNE, YEAR, vec![yes("CQS.01", false)]).await;
    let retry = ingest(&mut client, options.clone(), rows.clone())
        .await
        .expect("the retry");
    assert_eq!(retry, first);
    assert_eq!(
        (
            env.count("indicator_values").await,
            env.count("history").await,
            env.count("events").await
        ),
        (2, 3, 3)
    );
    let now = get(&env, COMMUNE, YEAR).await.expect("GetAssessment");
    assert_eq!(
        value_of(&now, "CQS.01"),
        Some(&pb::indicator_value::Value::Yes(false))
    );
    // The same id for other rows is refused.
    let other = ingest(&mut client, options, rows[..1].to_vec()).await;
    assert_eq!(
        bad_fields(&expect_code(other, Code::InvalidArgument)),
        ["request_id"]
    );
    // An atomic call that commits nothing stores no answer: after the fix, the
    // same id goes through.
    let atomic = pb::IngestOptions {
        atomic: true,
        request_id: "agency-2024-batch-2".into(),
        ..Default::default()
    };
    let refused = ingest(
        &mut client,
        atomic.clone(),
        vec![row(COMMUNE, YEAR, count("KTS.04", -1))],
    )
    .await
    .expect("IngestIndicatorValues");
    assert!(!refused.committed);
    let fixed = ingest(
        &mut client,
        atomic,
        vec![row(COMMUNE, YEAR, count("KTS.04", 1))],
    )
    .await
    .expect("IngestIndicatorValues");
    assert!(fixed.committed, "{fixed:?}");
}

async fn an_ingest_row_outside_the_callers_scope_is_rejected(env: Env) {
    let mut client = env.client(&[Role::Submitter], DISTRICT);
    let rows = vec![
        row(COMMUNE, YEAR, yes("CQS.01", true)),
        row(OTHER_DISTRICT_COMMUNE, YEAR, yes("CQS.01", true)),
        row(DISTRICT, YEAR, yes("CQS.01", true)),
    ];
    let answer = ingest(
        &mut client,
        pb::IngestOptions {
            atomic: false,
            ..Default::default()
        },
        rows.clone(),
    )
    .await
    .expect("IngestIndicatorValues");
    assert_eq!((answer.accepted, answer.rejected), (2, 1), "{answer:?}");
    let r = &answer.rows[1];
    assert!(!r.accepted);
    assert_eq!(r.violations.len(), 1, "{r:?}");
    assert_eq!(r.violations[0].field, "unit_code");
    assert!(r.violations[0].description.contains("may not"), "{r:?}");
    expect_code(
        get(&env, OTHER_DISTRICT_COMMUNE, YEAR).await,
        Code::NotFound,
    );
    // The district's own assessment (the district set) is in its scope.
    let district = get(&env, DISTRICT, YEAR).await.expect("GetAssessment");
    assert_eq!(district.criteria_set_id, "th-district-2024");

    // A commune's own system cannot ingest for its neighbour.
    let mut commune = env.client(&[Role::Submitter], COMMUNE);
    let answer = ingest(
        &mut commune,
        pb::IngestOptions {
            atomic: true,
            ..Default::default()
        },
        vec![
            row(COMMUNE, YEAR, yes("CQS.02", true)),
            row(NEIGHBOUR, YEAR, yes("CQS.02", true)),
        ],
    )
    .await
    .expect("IngestIndicatorValues");
    assert!(!answer.committed);
    assert!(answer.rows[0].accepted && !answer.rows[1].accepted);
    let now = get(&env, COMMUNE, YEAR).await.expect("GetAssessment");
    assert_eq!(now.values.len(), 1, "the atomic call wrote nothing");
}

// ---------------------------------------------------------------------------
// Upsert

async fn an_upsert_retry_returns_the_first_answer_and_validate_only_writes_nothing(env: Env) {
    let mut client = env.commune(COMMUNE);
    let mut dry = upsert(COMMUNE, YEAR, vec![yes("CQS.01", true)]);
    dry.validate_only = true;
    let checked = client
        .upsert_indicator_values(dry)
        .await
        .expect("validate_only")
        .into_inner()
        .assessment
        .expect("an assessment");
    assert_eq!(checked.criteria_set_id, "th-commune-2023");
    assert_eq!(env.count("assessments").await, 0);
    assert_eq!(env.count("events").await, 0);

    let mut request = upsert(COMMUNE, YEAR, vec![yes("CQS.01", true)]);
    request.request_id = "form-1".into();
    let first = client
        .upsert_indicator_values(request.clone())
        .await
        .expect("first")
        .into_inner();
    write(&env, COMMUNE, YEAR, vec![yes("CQS.01", false)]).await;
    let retry = client
        .upsert_indicator_values(request.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry, first);
    assert_eq!(env.count("events").await, 2);
    let now = get(&env, COMMUNE, YEAR).await.expect("GetAssessment");
    assert_eq!(
        value_of(&now, "CQS.01"),
        Some(&pb::indicator_value::Value::Yes(false)),
        "the retry did not write again"
    );
    request.values = vec![yes("CQS.02", true)];
    let reused = client.upsert_indicator_values(request).await;
    assert_eq!(
        bad_fields(&expect_code(reused, Code::InvalidArgument)),
        ["request_id"]
    );
    // Writing what is already there changes nothing and tells no one.
    write(&env, COMMUNE, YEAR, vec![yes("CQS.01", false)]).await;
    assert_eq!(env.count("events").await, 2);
}

/// A client that times out and retries while its first call is still being
/// served gets the first answer, and the values are written once.
async fn overlapping_retries_of_one_request_write_once_and_get_one_answer(env: Env) {
    let mut request = upsert(COMMUNE, YEAR, vec![ratio("CQS.03", 42.0, 100.0)]);
    request.request_id = "form-retried".into();
    let rows = vec![
        row(NEIGHBOUR, YEAR, yes("CQS.01", true)),
        row(COMMUNE, 2023, yes("CQS.01", true)),
    ];
    let options = pb::IngestOptions {
        atomic: true,
        request_id: "batch-retried".into(),
        ..Default::default()
    };
    const RETRIES: usize = 6;
    let start = Arc::new(Barrier::new(2 * RETRIES));
    let mut upserts = tokio::task::JoinSet::new();
    let mut ingests = tokio::task::JoinSet::new();
    for _ in 0..RETRIES {
        let (mut client, request, barrier) = (env.commune(COMMUNE), request.clone(), start.clone());
        upserts.spawn(async move {
            barrier.wait().await;
            client.upsert_indicator_values(request).await
        });
        let mut client = env.client(&[Role::Submitter], DISTRICT);
        let (rows, options, barrier) = (rows.clone(), options.clone(), start.clone());
        ingests.spawn(async move {
            barrier.wait().await;
            ingest(&mut client, options, rows).await
        });
    }
    let mut answers = BTreeSet::new();
    while let Some(result) = upserts.join_next().await {
        let answer = result
            .expect("a retry finished")
            .unwrap_or_else(|s| panic!("UpsertIndicatorValues: {s:?}"));
        answers.insert(answer.into_inner().assessment.expect("an assessment").etag);
    }
    assert_eq!(answers.len(), 1, "one answer: {answers:?}");
    let mut answers = Vec::new();
    while let Some(result) = ingests.join_next().await {
        answers.push(
            result
                .expect("a retry finished")
                .unwrap_or_else(|s| panic!("IngestIndicatorValues: {s:?}")),
        );
    }
    assert!(
        answers.iter().all(|a| a == &answers[0] && a.committed),
        "{answers:?}"
    );
    assert_eq!(env.count("events").await, 3, "each assessment written once");
    assert_eq!(env.count("history").await, 3);
    assert_eq!(env.count("requests").await, 2);
}

// ---------------------------------------------------------------------------
// Validation

async fn every_bad_value_is_named_in_one_answer(env: Env) {
    create_set(&env, suite_set_toml("suite-commune", 1, "[2024]")).await;
    publish(&env, "suite-commune", 1, "")
        .await
        .expect("publish");
    let mut request = upsert(
        COMMUNE,
        YEAR,
        vec![
            yes("G.01", true),             // fine
            yes("NO.SUCH", true),          // unknown code
            count("G.01", 1),              // wrong kind
            number("G.04", 120.0),         // percent outside 0–100
            ratio("G.02", 31.0, 30.0),     // numerator > denominator
            count("G.03", -3),             // negative count
            ratio("G.02", -1.0, f64::NAN), // negative, not a number
            pb::IndicatorValue {
                // evidence required
                indicator_code: "G.04".into(),
                value: Some(pb::indicator_value::Value::Number(25.0)),
                evidence: None,
            },
            pb::IndicatorValue {
                // no value
                indicator_code: "G.03".into(),
                value: None,
                evidence: evidence(),
            },
            pb::IndicatorValue {
                // no code
                indicator_code: " ".into(),
                value: Some(pb::indicator_value::Value::Yes(true)),
                evidence: evidence(),
            },
        ],
    );
    request.criteria_set_id = "suite-commune".into();
    let err = env.commune(COMMUNE).upsert_indicator_values(request).await;
    let mut fields = bad_fields(&expect_code(err, Code::InvalidArgument));
    fields.sort();
    assert_eq!(
        fields,
        [
            "values[1].indicator_code",
            "values[2].count",
            "values[3].number",
            "values[4].ratio.numerator",
            "values[5].count",
            "values[6].ratio.denominator",
            "values[6].ratio.numerator",
            "values[7].evidence",
            "values[8].value",
            "values[9].indicator_code",
        ]
    );
    assert_eq!(env.count("assessments").await, 0, "nothing written");
    assert_eq!(env.count("events").await, 0);
}

async fn a_set_of_another_level_or_years_is_named_with_the_bad_values(env: Env) {
    // The district set, for a commune, in a year it does not cover, with a
    // value the set does not know.
    let mut request = upsert(COMMUNE, 2023, vec![yes("NO.SUCH", true)]);
    request.criteria_set_id = "th-district-2024".into();
    let err = env.commune(COMMUNE).upsert_indicator_values(request).await;
    let violations = field_violations(&expect_code(err, Code::InvalidArgument));
    let fields: BTreeSet<&str> = violations.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        BTreeSet::from(["criteria_set_id", "year", "values[0].indicator_code"]),
        "{violations:?}"
    );
    let level = &violations
        .iter()
        .find(|(f, _)| f == "criteria_set_id")
        .expect("the level")
        .1;
    assert!(
        level.contains("district") && level.contains("commune"),
        "{level}"
    );

    // A draft or unknown set cannot score.
    create_set(&env, suite_set_toml("suite-commune", 1, "[2024]")).await;
    for id in ["suite-commune", "no-such-set"] {
        let mut request = upsert(COMMUNE, YEAR, vec![yes("G.01", true)]);
        request.criteria_set_id = id.into();
        let err = env.commune(COMMUNE).upsert_indicator_values(request).await;
        assert_eq!(
            bad_fields(&expect_code(err, Code::InvalidArgument)),
            ["criteria_set_id"]
        );
    }
    // Two published sets apply: the writer must name one; once named, the
    // assessment keeps it.
    publish(&env, "suite-commune", 1, "")
        .await
        .expect("publish");
    let err = env
        .commune(COMMUNE)
        .upsert_indicator_values(upsert(COMMUNE, YEAR, vec![yes("G.01", true)]))
        .await;
    assert_eq!(
        bad_fields(&expect_code(err, Code::InvalidArgument)),
        ["criteria_set_id"]
    );
    let mut pinned = upsert(COMMUNE, YEAR, vec![yes("G.01", true)]);
    pinned.criteria_set_id = "suite-commune".into();
    let a = env
        .commune(COMMUNE)
        .upsert_indicator_values(pinned)
        .await
        .expect("pinned")
        .into_inner()
        .assessment
        .expect("an assessment");
    assert_eq!(
        (a.criteria_set_id.as_str(), a.criteria_set_version),
        ("suite-commune", 1)
    );
    let again = write(&env, COMMUNE, YEAR, vec![yes("G.01", false)]).await;
    assert_eq!(again.criteria_set_id, "suite-commune");
    let mut other = upsert(COMMUNE, YEAR, vec![yes("CQS.01", true)]);
    other.criteria_set_id = "th-commune-2023".into();
    let err = env.commune(COMMUNE).upsert_indicator_values(other).await;
    assert_eq!(
        bad_fields(&expect_code(err, Code::InvalidArgument)),
        ["criteria_set_id", "values[0].indicator_code"],
        "the assessment keeps its set, which has no CQS.01"
    );
    // No set at all for communes in 2021.
    let err = env
        .commune(COMMUNE)
        .upsert_indicator_values(upsert(COMMUNE, 2021, vec![yes("CQS.01", true)]))
        .await;
    expect_code(err, Code::FailedPrecondition);
}

async fn a_unit_that_did_not_exist_that_year_is_named(env: Env) {
    // Xã Thiệu Phú held 15790 until 1/5/2024: its 2023 assessment exists,
    // its 2024 one cannot.
    let national = env.client(&[Role::Submitter], NATIONAL_SCOPE);
    let mut client = national.clone();
    client
        .upsert_indicator_values(upsert(DISSOLVED_IN_2024, 2023, vec![yes("CQS.01", true)]))
        .await
        .expect("2023");
    let err = client
        .upsert_indicator_values(upsert(
            DISSOLVED_IN_2024,
            2024,
            vec![
                yes("CQS.01", true),
                pb::IndicatorValue {
                    indicator_code: String::new(),
                    value: None,
                    evidence: None,
                },
            ],
        ))
        .await;
    let violations = field_violations(&expect_code(err, Code::InvalidArgument));
    let fields: Vec<&str> = violations.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["values[1].indicator_code", "unit_code"],
        "{violations:?}"
    );
    assert!(violations[1].1.contains("2024"), "{violations:?}");
    // Malformed codes and years are named together.
    let err = client
        .upsert_indicator_values(upsert("15x99", 1999, vec![]))
        .await;
    let mut fields = bad_fields(&expect_code(err, Code::InvalidArgument));
    fields.sort();
    assert_eq!(fields, ["unit_code", "values", "year"]);
    assert_eq!(env.count("assessments").await, 1);
}

async fn edits_and_moves_in_the_wrong_state_are_failed_preconditions(env: Env) {
    // Mandatory values missing: no submission.
    write(&env, COMMUNE, YEAR, vec![yes("CQS.01", true)]).await;
    let early = env
        .commune(COMMUNE)
        .submit_assessment(submit(COMMUNE, YEAR))
        .await;
    let status = expect_code(early, Code::FailedPrecondition);
    assert!(status.message().contains("CQS.02"), "{status:?}");
    // Nothing to verify or approve in a draft.
    let district = env.client(&[Role::Reviewer, Role::Reader], DISTRICT);
    let province = env.client(&[Role::Approver, Role::Reader], PROVINCE);
    expect_code(
        district
            .clone()
            .verify_assessment(verify(COMMUNE, YEAR))
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        province
            .clone()
            .approve_assessment(approve(COMMUNE, YEAR))
            .await,
        Code::FailedPrecondition,
    );
    // No assessment at all.
    expect_code(
        env.commune(NEIGHBOUR)
            .submit_assessment(submit(NEIGHBOUR, YEAR))
            .await,
        Code::NotFound,
    );

    write(&env, COMMUNE, YEAR, all_met(&env).await).await;
    let submitted = env
        .commune(COMMUNE)
        .submit_assessment(submit(COMMUNE, YEAR))
        .await
        .expect("SubmitAssessment")
        .into_inner()
        .assessment
        .expect("an assessment");
    let events_before = env.count("events").await;
    let values_before = env.count("history").await;
    // Submitted: no edits, no second submission, no approval before the
    // district verifies.
    let edit = env
        .commune(COMMUNE)
        .upsert_indicator_values(upsert(COMMUNE, YEAR, vec![yes("CQS.01", false)]))
        .await;
    expect_code(edit, Code::FailedPrecondition);
    let mut client = env.client(&[Role::Submitter], DISTRICT);
    let ingested = ingest(
        &mut client,
        pb::IngestOptions::default(),
        vec![row(COMMUNE, YEAR, yes("CQS.01", false))],
    )
    .await
    .expect("IngestIndicatorValues");
    assert!(!ingested.committed);
    assert_eq!(ingested.rows[0].violations[0].field, "assessment");
    expect_code(
        env.commune(COMMUNE)
            .submit_assessment(submit(COMMUNE, YEAR))
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        province
            .clone()
            .approve_assessment(approve(COMMUNE, YEAR))
            .await,
        Code::FailedPrecondition,
    );
    // A stale etag is Aborted before the state is looked at.
    let mut stale = verify(COMMUNE, YEAR);
    stale.etag = "1.1".into();
    expect_code(
        district.clone().verify_assessment(stale).await,
        Code::Aborted,
    );
    assert_eq!(env.count("events").await, events_before);
    assert_eq!(env.count("history").await, values_before);

    let mut current = verify(COMMUNE, YEAR);
    current.etag = submitted.etag;
    district
        .clone()
        .verify_assessment(current)
        .await
        .expect("VerifyAssessment");
    province
        .clone()
        .approve_assessment(approve(COMMUNE, YEAR))
        .await
        .expect("ApproveAssessment");
    // Approved: frozen until the province reopens it, with a reason.
    expect_code(
        env.commune(COMMUNE)
            .upsert_indicator_values(upsert(COMMUNE, YEAR, vec![yes("CQS.01", false)]))
            .await,
        Code::FailedPrecondition,
    );
    let no_reason = province
        .clone()
        .reopen_assessment(reopen(COMMUNE, YEAR, ""))
        .await;
    assert_eq!(
        bad_fields(&expect_code(no_reason, Code::InvalidArgument)),
        ["reason"]
    );
    province
        .clone()
        .reopen_assessment(reopen(COMMUNE, YEAR, "kiểm tra lại số liệu"))
        .await
        .expect("ReopenAssessment");
    let edited = write(&env, COMMUNE, YEAR, vec![yes("CQS.01", false)]).await;
    assert_eq!(edited.status, pb::AssessmentStatus::Returned as i32);
    assert_eq!(edited.reason, "kiểm tra lại số liệu");
}

// ---------------------------------------------------------------------------
// Authorization

async fn a_commune_cannot_read_or_write_its_neighbour(env: Env) {
    write(&env, COMMUNE, YEAR, vec![yes("CQS.01", true)]).await;
    write(&env, NEIGHBOUR, YEAR, vec![yes("CQS.01", true)]).await;
    let mut neighbour = env.commune(NEIGHBOUR);
    expect_code(
        neighbour
            .upsert_indicator_values(upsert(COMMUNE, YEAR, vec![yes("CQS.02", true)]))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        neighbour
            .get_assessment(pb::GetAssessmentRequest {
                unit_code: COMMUNE.into(),
                year: YEAR,
            })
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        neighbour
            .list_assessment_history(pb::ListAssessmentHistoryRequest {
                unit_code: COMMUNE.into(),
                year: YEAR,
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        neighbour.submit_assessment(submit(COMMUNE, YEAR)).await,
        Code::PermissionDenied,
    );
    // Asking for the district's list shows only what lies in its own scope.
    let listed = neighbour
        .list_assessments(pb::ListAssessmentsRequest {
            scope_code: DISTRICT.into(),
            ..Default::default()
        })
        .await
        .expect("ListAssessments")
        .into_inner()
        .assessments;
    let units: Vec<_> = listed.iter().map(|a| a.unit_code.as_str()).collect();
    assert_eq!(units, [NEIGHBOUR]);
    // Its own is fine.
    neighbour
        .get_assessment(pb::GetAssessmentRequest {
            unit_code: NEIGHBOUR.into(),
            year: YEAR,
        })
        .await
        .expect("its own");
    // The district sees both; the commune values were not touched.
    let listed = env
        .client(&[Role::Reader], DISTRICT)
        .list_assessments(pb::ListAssessmentsRequest::default())
        .await
        .expect("ListAssessments")
        .into_inner()
        .assessments;
    assert_eq!(listed.len(), 2);
    let mine = get(&env, COMMUNE, YEAR).await.expect("GetAssessment");
    assert_eq!(mine.values.len(), 1);
}

async fn a_district_reviewer_verifies_only_its_own_communes_and_cannot_approve(env: Env) {
    let met = all_met(&env).await;
    for unit in [COMMUNE, OTHER_DISTRICT_COMMUNE] {
        let mut client = env.client(&[Role::Submitter], unit);
        client
            .upsert_indicator_values(upsert(unit, YEAR, met.clone()))
            .await
            .expect("values");
        client
            .submit_assessment(submit(unit, YEAR))
            .await
            .expect("SubmitAssessment");
    }
    // A reviewer and approver of Thọ Xuân.
    let mut district = env.client(&[Role::Reviewer, Role::Approver, Role::Reader], DISTRICT);
    expect_code(
        district
            .verify_assessment(verify(OTHER_DISTRICT_COMMUNE, YEAR))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        district
            .return_assessment(send_back(OTHER_DISTRICT_COMMUNE, YEAR, "không thuộc huyện"))
            .await,
        Code::PermissionDenied,
    );
    // A commune cannot verify itself.
    expect_code(
        env.client(&[Role::Reviewer], COMMUNE)
            .verify_assessment(verify(COMMUNE, YEAR))
            .await,
        Code::PermissionDenied,
    );
    let verified = district
        .verify_assessment(verify(COMMUNE, YEAR))
        .await
        .expect("VerifyAssessment")
        .into_inner()
        .assessment
        .expect("an assessment");
    assert_eq!(verified.status, pb::AssessmentStatus::Verified as i32);
    expect_code(
        district.approve_assessment(approve(COMMUNE, YEAR)).await,
        Code::PermissionDenied,
    );
    // Reviewers of another district, and the province without the approver
    // role, cannot approve either.
    expect_code(
        env.client(&[Role::Approver], OTHER_DISTRICT)
            .approve_assessment(approve(COMMUNE, YEAR))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        env.client(&[Role::Reviewer, Role::Reader], PROVINCE)
            .approve_assessment(approve(COMMUNE, YEAR))
            .await,
        Code::PermissionDenied,
    );
    let approved = env
        .client(&[Role::Approver], PROVINCE)
        .approve_assessment(approve(COMMUNE, YEAR))
        .await
        .expect("ApproveAssessment")
        .into_inner()
        .assessment
        .expect("an assessment");
    assert_eq!(approved.status, pb::AssessmentStatus::Approved as i32);
    assert!(approved.scorecard.expect("a scorecard").complete);
    // Thiệu Hóa's reviewer verifies its own commune.
    env.client(&[Role::Reviewer], OTHER_DISTRICT)
        .verify_assessment(verify(OTHER_DISTRICT_COMMUNE, YEAR))
        .await
        .expect("VerifyAssessment");
}

async fn readers_cannot_write_and_only_services_and_admins_watch_events(env: Env) {
    write(&env, COMMUNE, YEAR, vec![yes("CQS.01", true)]).await;
    for scope in [COMMUNE, DISTRICT, PROVINCE, NATIONAL_SCOPE] {
        let mut reader = env.client(&[Role::Reader], scope);
        reader
            .get_assessment(pb::GetAssessmentRequest {
                unit_code: COMMUNE.into(),
                year: YEAR,
            })
            .await
            .expect("a reader reads");
        expect_code(
            reader
                .upsert_indicator_values(upsert(COMMUNE, YEAR, vec![yes("CQS.02", true)]))
                .await,
            Code::PermissionDenied,
        );
        expect_code(
            reader.submit_assessment(submit(COMMUNE, YEAR)).await,
            Code::PermissionDenied,
        );
        let answer = ingest(
            &mut reader,
            pb::IngestOptions::default(),
            vec![row(COMMUNE, YEAR, yes("CQS.02", true))],
        )
        .await
        .expect("IngestIndicatorValues");
        assert!(!answer.committed && answer.rows[0].violations[0].field == "unit_code");
    }
    for (roles, scope) in [
        (vec![Role::Reader], NATIONAL_SCOPE),
        (
            vec![Role::Submitter, Role::Reviewer, Role::Approver],
            PROVINCE,
        ),
        (vec![Role::Approver, Role::Reader], NATIONAL_SCOPE),
    ] {
        let watched = env
            .client(&roles, scope)
            .watch_assessment_events(pb::WatchAssessmentEventsRequest { after_sequence: 0 })
            .await;
        expect_code(watched, Code::PermissionDenied);
    }
    for (roles, scope) in [
        (vec![Role::Service], NATIONAL_SCOPE),
        (vec![Role::Admin], NATIONAL_SCOPE),
    ] {
        let mut stream = env
            .client(&roles, scope)
            .watch_assessment_events(pb::WatchAssessmentEventsRequest { after_sequence: 0 })
            .await
            .expect("WatchAssessmentEvents")
            .into_inner();
        let first = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("an event")
            .expect("the stream goes on")
            .expect("the stream stays open");
        assert_eq!(first.event.expect("an event").sequence, 1);
    }
    assert_eq!(env.count("history").await, 1);
}

async fn calls_without_a_valid_token_are_unauthenticated(env: Env) {
    let channel = tonic::transport::Endpoint::from_shared(env.url.clone())
        .expect("url")
        .connect_lazy();
    let mut anonymous =
        pb::assessment_service_client::AssessmentServiceClient::new(channel.clone());
    expect_code(
        anonymous
            .get_assessment(pb::GetAssessmentRequest {
                unit_code: COMMUNE.into(),
                year: YEAR,
            })
            .await,
        Code::Unauthenticated,
    );
    let forged = chiso_auth::Issuer::hs256(b"another key entirely, not the suite's")
        .issue(
            "forger",
            &[Role::Admin],
            NATIONAL_SCOPE,
            Duration::from_secs(60),
        )
        .expect("a token");
    let mut forger = pb::criteria_service_client::CriteriaServiceClient::new(
        tonic::service::interceptor::InterceptedService::new(
            channel,
            chiso_server::BearerInterceptor::new(&forged).expect("a token"),
        ),
    );
    expect_code(
        forger
            .create_criteria_set(pb::CreateCriteriaSetRequest {
                definition_toml: suite_set_toml("suite-commune", 1, "[2024]"),
                ..Default::default()
            })
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(env.count("criteria_sets").await, 4);
}

// ---------------------------------------------------------------------------
// Without the units service

/// When the units service cannot be reached, writes answer `Unavailable`
/// and nothing is written.
async fn the_units_service_is_down(env: Env) {
    let err = env
        .commune(COMMUNE)
        .upsert_indicator_values(upsert(COMMUNE, YEAR, vec![yes("CQS.01", true)]))
        .await;
    let status = expect_code(err, Code::Unavailable);
    assert!(
        status.message().contains("nothing was written"),
        "{status:?}"
    );
    let mut client = env.client(&[Role::Submitter], DISTRICT);
    let err = ingest(
        &mut client,
        pb::IngestOptions::default(),
        vec![row(COMMUNE, YEAR, yes("CQS.01", true))],
    )
    .await;
    expect_code(err, Code::Unavailable);
    expect_code(
        env.commune(COMMUNE)
            .submit_assessment(submit(COMMUNE, YEAR))
            .await,
        Code::Unavailable,
    );
    expect_code(get(&env, COMMUNE, YEAR).await, Code::Unavailable);
    for table in [
        "assessments",
        "indicator_values",
        "history",
        "events",
        "requests",
    ] {
        assert_eq!(env.count(table).await, 0, "{table}");
    }
    // Criteria sets do not need the units service.
    assert_eq!(commune_set(&env).await.indicators.len(), 37);
}

on_every_backend!(UnitsDown: the_units_service_is_down);
