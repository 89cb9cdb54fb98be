//! The projection against a from-scratch recomputation. Random histories of
//! assessment events (several units, years and assessments moving through
//! the review workflow, scorecards complete or not) are delivered the way a
//! real stream delivers them to a projector that crashes and resumes: in
//! order, but with duplicates, replays of ranges already applied (a stream
//! resumed from an older position), restarts over the same database resuming
//! after the cursor, and applies interrupted part-way (a crash inside the
//! transaction). After every step the projection must equal the events up to
//! its cursor applied once, in order, to an in-memory model: the latest event
//! of each assessment, and per unit the first year it was approved complete.
//!
//! SQLite always; PostgreSQL, with fewer cases, when `CHISO_TEST_DATABASE_URL`
//! is set (and a failure, not a pass, when it is set but unusable).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use chiso_proto::assessment::v1 as apb;
use chiso_proto::units::v1::UnitLevel;
use chiso_reporting::{MIGRATIONS, Projection};
use chiso_storage::sqlx::{self, Row};
use chiso_storage::testing::{POSTGRES_ENV, TestDb};
use chiso_storage::{Backend, Db};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Histories

/// Units assessed: (id, code, name, level).
const UNITS: [(i64, &str, &str, UnitLevel); 4] = [
    (274, "15499", "Thị trấn Thọ Xuân", UnitLevel::Commune),
    (275, "15502", "Xã Bắc Lương", UnitLevel::Commune),
    (301, "15781", "Thị trấn Thiệu Hóa", UnitLevel::Commune),
    (16, "395", "Huyện Thọ Xuân", UnitLevel::District),
];
const YEARS: std::ops::RangeInclusive<i32> = 2022..=2025;
/// Indicators a scorecard may hold: (code, group, mandatory).
const INDICATORS: [(&str, &str, bool); 4] = [
    ("CQS.01", "CQS", true),
    ("KTS.01", "KTS", false),
    ("XHS.01", "XHS", true),
    ("HTS.01", "HTS", false),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Values,
    Submit,
    Verify,
    Approve,
    Return,
    Reopen,
}

/// What may happen to an assessment in `status` (`None`: not created yet),
/// as the assessment service's workflow allows it: the step forward first.
fn allowed(status: Option<apb::AssessmentStatus>, level: UnitLevel) -> &'static [Action] {
    use apb::AssessmentStatus as S;
    match (status, level) {
        (None, _) => &[Action::Values],
        (Some(S::Draft | S::Returned), _) => &[Action::Submit, Action::Values],
        (Some(S::Submitted), UnitLevel::Commune) => &[Action::Verify, Action::Return],
        (Some(S::Submitted), _) => &[Action::Approve, Action::Return],
        (Some(S::Verified), _) => &[Action::Approve, Action::Return],
        (Some(S::Approved), _) => &[Action::Reopen],
        (Some(S::Unspecified), _) => unreachable!("never generated"),
    }
}

/// A scorecard as drawn: per indicator, absent or met/unmet; and whether the
/// completion rule passed.
type CardDraw = (Vec<Option<bool>>, bool);

fn scorecard((indicators, complete): &CardDraw) -> apb::Scorecard {
    let mut card = apb::Scorecard {
        complete: *complete,
        ..Default::default()
    };
    for (&(code, group, mandatory), met) in INDICATORS.iter().zip(indicators) {
        let Some(met) = *met else { continue };
        card.indicators.push(apb::IndicatorResult {
            code: code.into(),
            name: format!("Chỉ tiêu {code}"),
            group_code: group.into(),
            mandatory,
            has_value: true,
            met,
            points: if met { 10.0 } else { 0.0 },
            max_points: 10.0,
            measured: Some(if met { 80.0 } else { 40.0 }),
            ..Default::default()
        });
        if !met {
            card.failing.push(code.into());
        }
    }
    card.total_points = card.indicators.iter().map(|i| i.points).sum();
    card.max_points = card.indicators.iter().map(|i| i.max_points).sum();
    card
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Each assessment's (unit index, year); unique pairs.
    assessments: Vec<(usize, i32)>,
    /// (which assessment, which way it moves, the card drawn for a change of
    /// values). The way: below 16 the step forward, above it the other step
    /// (back, or more values); an approved assessment is reopened on 19
    /// only, and otherwise the next one not approved moves instead.
    steps: Vec<(usize, u8, CardDraw)>,
    /// How the events are delivered.
    delivery: Vec<Delivery>,
}

#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// The stream yields its next `n` events.
    Next(usize),
    /// The last event delivered comes again.
    Duplicate,
    /// The stream is resumed `n` events back: what follows was applied.
    Replay(usize),
    /// The projector restarts: a new pool and projection over the same
    /// database, resuming `n` events before its cursor (0: right after it).
    Restart(usize),
    /// The projector crashes inside an apply, after `n` polls of it, and
    /// resumes after the cursor.
    Interrupt(usize),
}

fn card_draw() -> impl Strategy<Value = CardDraw> {
    (
        prop::collection::vec(prop::option::weighted(0.75, any::<bool>()), 4),
        any::<bool>(),
    )
}

fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![
        6 => (1usize..=6).prop_map(Delivery::Next),
        1 => Just(Delivery::Duplicate),
        1 => (1usize..=8).prop_map(Delivery::Replay),
        1 => (0usize..=3).prop_map(Delivery::Restart),
        1 => (0usize..=12).prop_map(Delivery::Interrupt),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    // Units assessed in one to three years each.
    prop::collection::btree_map(
        0..UNITS.len(),
        prop::collection::btree_set(YEARS, 1..=3),
        1..=3,
    )
    .prop_flat_map(|years| {
        let assessments: Vec<(usize, i32)> = years
            .into_iter()
            .flat_map(|(unit, years)| years.into_iter().map(move |y| (unit, y)))
            .collect();
        let n = assessments.len();
        (
            Just(assessments),
            prop::collection::vec((0..n, 0u8..20, card_draw()), 12..=60),
            prop::collection::vec(delivery(), 0..=24),
        )
    })
    .prop_map(|(assessments, steps, delivery)| Scenario {
        assessments,
        steps,
        delivery,
    })
}

/// The events of a scenario, numbered 1..=N as the assessment service
/// numbers its outbox.
fn events(s: &Scenario) -> Vec<apb::AssessmentEvent> {
    let mut current: Vec<Option<apb::AssessmentEvent>> = vec![None; s.assessments.len()];
    let mut out = Vec::new();
    let n = s.assessments.len();
    for (picked, way, draw) in &s.steps {
        let approved = |e: &Option<apb::AssessmentEvent>| {
            e.as_ref()
                .is_some_and(|e| e.status == apb::AssessmentStatus::Approved as i32)
        };
        let which = if *way == 19 {
            Some(*picked)
        } else {
            (0..n)
                .map(|k| (picked + k) % n)
                .find(|&i| !approved(&current[i]))
        };
        let Some(which) = which else { continue };
        let which = &which;
        let (unit, year) = s.assessments[*which];
        let (unit_id, code, name, level) = UNITS[unit];
        let status = current[*which]
            .as_ref()
            .map(|e| apb::AssessmentStatus::try_from(e.status).expect("a status"));
        let choices = allowed(status, level);
        let action = match *way {
            0..=15 => choices[0],
            _ => choices[choices.len() - 1],
        };
        use apb::{AssessmentStatus as S, EventKind as K};
        let (kind, status) = match action {
            Action::Values => (K::ValuesChanged, status.unwrap_or(S::Draft)),
            Action::Submit => (K::Submitted, S::Submitted),
            Action::Verify => (K::Verified, S::Verified),
            Action::Approve => (K::Approved, S::Approved),
            Action::Return => (K::Returned, S::Returned),
            Action::Reopen => (K::Reopened, S::Returned),
        };
        let card = match (&current[*which], action) {
            (Some(e), a) if a != Action::Values => e.scorecard.clone(),
            _ => Some(scorecard(draw)),
        };
        let event = apb::AssessmentEvent {
            sequence: out.len() as i64 + 1,
            kind: kind as i32,
            assessment_id: *which as i64 + 1,
            unit_id,
            unit_code: code.into(),
            unit_name: name.into(),
            level: level as i32,
            ancestors: vec![apb::AncestorRef {
                unit_id: 1,
                code: "38".into(),
                name: "Tỉnh Thanh Hóa".into(),
                level: UnitLevel::Province as i32,
            }],
            year,
            status: status as i32,
            criteria_set_id: if level == UnitLevel::Commune {
                "th-commune-2023".into()
            } else {
                "th-district-2024".into()
            },
            criteria_set_version: 1,
            scorecard: card,
            occurred_at: None,
            actor: format!("system-{code}"),
        };
        current[*which] = Some(event.clone());
        out.push(event);
    }
    out
}

// ---------------------------------------------------------------------------
// The model: the events applied once, in order

struct Model {
    latest: BTreeMap<i64, apb::AssessmentEvent>,
    cursor: i64,
}

impl Model {
    fn of(events: &[apb::AssessmentEvent]) -> Model {
        let mut latest = BTreeMap::new();
        for e in events {
            latest.insert(e.assessment_id, e.clone());
        }
        Model {
            latest,
            cursor: events.last().map_or(0, |e| e.sequence),
        }
    }

    fn first_completions(&self) -> HashMap<i64, i32> {
        let mut first: HashMap<i64, i32> = HashMap::new();
        for e in self.latest.values() {
            let complete = e.status == apb::AssessmentStatus::Approved as i32
                && e.scorecard.as_ref().is_some_and(|c| c.complete);
            if complete {
                let y = first.entry(e.unit_id).or_insert(e.year);
                *y = (*y).min(e.year);
            }
        }
        first
    }
}

/// The projection answers exactly what the model of its first `cursor`
/// events does.
async fn check(p: &Projection, events: &[apb::AssessmentEvent], context: &str) -> i64 {
    let cursor = p.cursor().await.expect("the cursor");
    assert!(
        (0..=events.len() as i64).contains(&cursor),
        "{context}: cursor {cursor} outside 0..={}",
        events.len()
    );
    let model = Model::of(&events[..cursor as usize]);
    assert_eq!(cursor, model.cursor, "{context}");

    let states: BTreeMap<i64, apb::AssessmentEvent> = p
        .states(0)
        .await
        .expect("states")
        .into_iter()
        .map(|s| (s.event.assessment_id, s.event))
        .collect();
    assert_eq!(
        states, model.latest,
        "{context}: the latest event of each assessment, at cursor {cursor}"
    );
    for year in YEARS {
        let of_year: BTreeSet<i64> = p
            .states(year)
            .await
            .expect("states of a year")
            .into_iter()
            .map(|s| s.event.assessment_id)
            .collect();
        let expected: BTreeSet<i64> = model
            .latest
            .values()
            .filter(|e| e.year == year)
            .map(|e| e.assessment_id)
            .collect();
        assert_eq!(of_year, expected, "{context}: assessments of {year}");
    }
    assert_eq!(
        p.first_completions().await.expect("first completions"),
        model.first_completions(),
        "{context}: first completion year by unit, at cursor {cursor}"
    );

    // The columns the service filters on, and the indicator rows kept for
    // breakdowns, agree with the event they came from.
    let rows = sqlx::query(
        "SELECT assessment_id, unit_id, unit_code, level, year, status, complete, total_points, \
         max_points, criteria_set_id, criteria_set_version, seq FROM assessment_state",
    )
    .fetch_all(p.db().pool())
    .await
    .expect("assessment rows");
    let mut seen = BTreeMap::new();
    for row in &rows {
        let id: i64 = row.get(0);
        let e = model
            .latest
            .get(&id)
            .unwrap_or_else(|| panic!("{context}: a row for assessment {id}, never seen"));
        let card = e.scorecard.clone().unwrap_or_default();
        let status = apb::AssessmentStatus::try_from(e.status).expect("a status");
        let columns = (
            row.get::<i64, _>(1),
            row.get::<String, _>(2),
            row.get::<i64, _>(3),
            row.get::<i64, _>(4),
            row.get::<String, _>(5),
            row.get::<i64, _>(6),
            row.get::<f64, _>(7),
            row.get::<f64, _>(8),
            row.get::<String, _>(9),
            row.get::<i64, _>(10),
            row.get::<i64, _>(11),
        );
        let expected = (
            e.unit_id,
            e.unit_code.clone(),
            i64::from(e.level),
            i64::from(e.year),
            status
                .as_str_name()
                .trim_start_matches("ASSESSMENT_STATUS_")
                .to_lowercase(),
            i64::from(card.complete),
            card.total_points,
            card.max_points,
            e.criteria_set_id.clone(),
            i64::from(e.criteria_set_version),
            e.sequence,
        );
        assert_eq!(columns, expected, "{context}: columns of assessment {id}");
        seen.insert(id, ());
    }
    assert_eq!(seen.len(), model.latest.len(), "{context}: one row each");

    let indicator_rows = sqlx::query(
        "SELECT assessment_id, code, name, group_code, mandatory, met FROM indicator_state",
    )
    .fetch_all(p.db().pool())
    .await
    .expect("indicator rows");
    let indicators: BTreeSet<(i64, String, String, String, i64, i64)> = indicator_rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get::<i64, _>(4),
                r.get::<i64, _>(5),
            )
        })
        .collect();
    assert_eq!(indicator_rows.len(), indicators.len(), "{context}");
    let expected: BTreeSet<(i64, String, String, String, i64, i64)> = model
        .latest
        .values()
        .flat_map(|e| {
            e.scorecard.iter().flat_map(|c| &c.indicators).map(|i| {
                (
                    e.assessment_id,
                    i.code.clone(),
                    i.name.clone(),
                    i.group_code.clone(),
                    i64::from(i.mandatory),
                    i64::from(i.met),
                )
            })
        })
        .collect();
    assert_eq!(
        indicators, expected,
        "{context}: indicator rows at cursor {cursor}"
    );
    cursor
}

// ---------------------------------------------------------------------------
// Delivery

/// Polls a future at most `polls` times; `None` when it was dropped before
/// it finished, as a crash would drop it.
struct PollLimit<F: Future> {
    future: Pin<Box<F>>,
    polls: usize,
}

impl<F: Future> Future for PollLimit<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            return Poll::Ready(None);
        }
        self.polls -= 1;
        self.future.as_mut().poll(cx).map(Some)
    }
}

async fn open(url: &str) -> Projection {
    Projection::new(Db::connect(url).await.expect("the database reopens"))
}

/// Applies `event`, expecting it to change the projection exactly when it
/// is the one after the cursor.
async fn deliver(p: &Projection, event: &apb::AssessmentEvent, context: &str) {
    let before = p.cursor().await.expect("the cursor");
    let applied = p.apply(event).await.expect("an event applies");
    assert_eq!(
        applied,
        event.sequence > before,
        "{context}: event {} at cursor {before}",
        event.sequence
    );
}

async fn run(s: &Scenario, test_db: TestDb) {
    test_db
        .db
        .migrate(&MIGRATIONS)
        .await
        .expect("the migrations run");
    let events = events(s);
    let n = events.len();
    let mut p = open(&test_db.url).await;
    // The stream's position: the index of the next event it yields.
    let mut next = 0usize;
    let mut last: Option<usize> = None;
    // The furthest the stream has been.
    let mut furthest = 0usize;
    check(&p, &events, "at the start").await;
    for (step, d) in s.delivery.iter().enumerate() {
        let context = format!("after delivery step {step} ({d:?})");
        match *d {
            Delivery::Next(k) => {
                for _ in 0..k {
                    if next < n {
                        deliver(&p, &events[next], &context).await;
                        last = Some(next);
                        next += 1;
                        furthest = furthest.max(next);
                    }
                }
            }
            Delivery::Duplicate => {
                if let Some(i) = last {
                    deliver(&p, &events[i], &context).await;
                }
            }
            Delivery::Replay(k) => next = next.saturating_sub(k),
            Delivery::Restart(back) => {
                p.db().close().await;
                p = open(&test_db.url).await;
                let cursor = p.cursor().await.expect("the cursor") as usize;
                next = cursor.saturating_sub(back);
            }
            Delivery::Interrupt(polls) => {
                if next < n {
                    furthest = furthest.max(next + 1);
                    let outcome = PollLimit {
                        future: Box::pin(p.apply(&events[next])),
                        polls,
                    }
                    .await;
                    if let Some(result) = outcome {
                        result.expect("an event applies");
                    }
                }
                p.db().close().await;
                p = open(&test_db.url).await;
                next = p.cursor().await.expect("the cursor") as usize;
            }
        }
        let cursor = check(&p, &events, &context).await;
        assert!(
            cursor as usize <= furthest,
            "{context}: cursor {cursor} ahead of the {furthest} events delivered"
        );
    }
    // The stream then runs to its end.
    let cursor = p.cursor().await.expect("the cursor") as usize;
    for (i, event) in events.iter().enumerate().skip(cursor) {
        deliver(&p, event, &format!("draining event {}", i + 1)).await;
    }
    assert_eq!(check(&p, &events, "at the end").await, n as i64);
    // A full replay from the start changes nothing.
    for event in &events {
        assert!(!p.apply(event).await.expect("a replay applies"));
    }
    assert_eq!(check(&p, &events, "after a full replay").await, n as i64);
    p.db().close().await;
    drop(test_db);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn sqlite_projection_equals_a_recomputation(s in scenario()) {
        runtime().block_on(async {
            run(&s, TestDb::sqlite().await.expect("a SQLite test database")).await;
        });
    }
}

/// Fewer cases on PostgreSQL, each on a fresh database. The server is
/// reached once before any case runs, so that an unreachable server fails
/// the test at once rather than as a counterexample proptest would shrink.
#[test]
fn postgres_projection_equals_a_recomputation() {
    use proptest::test_runner::TestRunner;
    if std::env::var_os(POSTGRES_ENV).is_none() {
        eprintln!("postgres property test not run: {POSTGRES_ENV} is not set");
        return;
    }
    let postgres = || async {
        let db = TestDb::postgres()
            .await
            .unwrap_or_else(|e| {
                panic!("{POSTGRES_ENV} is set, but no test database could be created there: {e}")
            })
            .expect("the variable is set");
        assert_eq!(db.db.backend(), Backend::Postgres);
        db
    };
    drop(runtime().block_on(postgres()));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&scenario(), |s| {
            runtime().block_on(async { run(&s, postgres().await).await });
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The generator itself: over many scenarios, every workflow action and
/// every kind of delivery happens, and some units complete.
#[test]
fn the_generator_covers_the_workflow_and_every_delivery() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut kinds = BTreeSet::new();
    let mut deliveries = BTreeSet::new();
    let mut completions = 0;
    let mut lost_completions = 0;
    let mut units_completing_twice = 0;
    for _ in 0..200 {
        let s = scenario().new_tree(&mut runner).unwrap().current();
        let events = events(&s);
        let seqs: Vec<i64> = events.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
        for e in &events {
            kinds.insert(e.kind);
        }
        for d in &s.delivery {
            deliveries.insert(format!("{d:?}").split('(').next().unwrap().to_owned());
        }
        let model = Model::of(&events);
        completions += model.first_completions().len();
        // A completion that a later reopening took back.
        let ever_complete = events.iter().any(|e| {
            e.status == apb::AssessmentStatus::Approved as i32
                && e.scorecard.as_ref().is_some_and(|c| c.complete)
        });
        if ever_complete && model.first_completions().is_empty() {
            lost_completions += 1;
        }
        // A unit complete in two years: its first year is the earlier.
        let mut years: HashMap<i64, usize> = HashMap::new();
        for e in model.latest.values() {
            if e.status == apb::AssessmentStatus::Approved as i32
                && e.scorecard.as_ref().is_some_and(|c| c.complete)
            {
                *years.entry(e.unit_id).or_default() += 1;
            }
        }
        if years.values().any(|&n| n > 1) {
            units_completing_twice += 1;
        }
    }
    assert_eq!(kinds.len(), 6, "every event kind: {kinds:?}");
    assert_eq!(deliveries.len(), 5, "every delivery: {deliveries:?}");
    assert!(completions > 20, "{completions} completions");
    assert!(lost_completions > 0, "no completion was ever reopened");
    assert!(
        units_completing_twice > 30,
        "{units_completing_twice} scenarios with a unit complete in two years"
    );
}
