//! The projector against a real assessment service: a units service and the
//! assessment service served over gRPC on 127.0.0.1 port 0, values written
//! and moved through the review workflow, the projector cancelled mid-stream
//! and restarted, the assessment server stopped and brought back on its port
//! while the projector retries — and at the end the projection equals a
//! from-scratch recomputation of the assessment service's event log: no
//! event lost, none counted twice.
//!
//! On PostgreSQL also the election: two replicas over one database run one
//! projector between them (a session advisory lock), every event is applied
//! by the session holding that lock, and when the leader is cancelled or
//! loses its lock the other carries on from the cursor.
//!
//! SQLite always; PostgreSQL when `CHISO_TEST_DATABASE_URL` is set (and a
//! failure, not a pass, when it is set but unusable). `TEST_LOG=1` shows the
//! services' logs.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chiso_assessment::Assessments;
use chiso_assessment::units_client::UnitsDirectory;
use chiso_auth::{AuthInterceptor, Caller, Issuer, NATIONAL_SCOPE, Role, Verifier};
use chiso_proto::assessment::v1::{
    self as apb, assessment_service_server::AssessmentService,
    assessment_service_server::AssessmentServiceServer, criteria_service_server::CriteriaService,
    criteria_service_server::CriteriaServiceServer,
};
use chiso_reporting::{MIGRATIONS, Projection, Projector};
use chiso_server::{ServeOptions, Server};
use chiso_storage::sqlx::{self, Row};
use chiso_storage::{Backend, Db};
use chiso_testkit::{POSTGRES_ENV, TestDb, UnitsServer, on_every_backend, requests};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Request;

/// The HS256 key every token of the suite is signed with.
const SECRET: &[u8] = b"chiso reporting suite test key, not a real one";
/// How long anything may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);
/// Thọ Xuân communes (district 395), all of which exist in 2023 and 2024.
const COMMUNES: [&str; 7] = [
    "15493", "15499", "15502", "15505", "15508", "15511", "15514",
];

// ---------------------------------------------------------------------------
// Servers

fn token(subject: &str, roles: &[Role]) -> String {
    Issuer::hs256(SECRET)
        .issue(subject, roles, NATIONAL_SCOPE, Duration::from_secs(3600))
        .expect("a token")
}

/// The assessment service over one database, served on one port that it
/// keeps across a stop and a restart.
struct AssessmentServer {
    db: Db,
    units_url: String,
    addr: SocketAddr,
    running: Option<Running>,
}

struct Running {
    assessments: Assessments,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl AssessmentServer {
    async fn start(db: Db, units_url: &str) -> AssessmentServer {
        db.migrate(&chiso_assessment::MIGRATIONS)
            .await
            .expect("the assessment migrations run");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let mut server = AssessmentServer {
            db,
            units_url: units_url.to_owned(),
            addr: listener.local_addr().expect("local addr"),
            running: None,
        };
        chiso_assessment::publish_defaults(server.instance(CancellationToken::new()).repo())
            .await
            .expect("the shipped criteria sets publish");
        server.serve(listener);
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A service instance over the database (its watch streams end with
    /// `shutdown`).
    fn instance(&self, shutdown: CancellationToken) -> Assessments {
        let directory = UnitsDirectory::new(
            &self.units_url,
            &token("chiso-assessment", &[Role::Service]),
        )
        .expect("a units directory");
        Assessments::new(self.db.clone(), directory, shutdown)
    }

    fn serve(&mut self, listener: TcpListener) {
        let shutdown = CancellationToken::new();
        let assessments = self.instance(shutdown.clone());
        let auth = AuthInterceptor::new(Arc::new(Verifier::hs256(SECRET)));
        let server = Server::new()
            .add_service(CriteriaServiceServer::with_interceptor(
                assessments.clone(),
                auth.clone(),
            ))
            .add_service(AssessmentServiceServer::with_interceptor(
                assessments.clone(),
                auth,
            ))
            .serve(
                listener,
                shutdown.clone(),
                ServeOptions {
                    grace: Duration::from_secs(1),
                },
            );
        let task = tokio::spawn(async move {
            server.await.expect("the assessment server serves");
        });
        self.running = Some(Running {
            assessments,
            shutdown,
            task,
        });
    }

    /// Stops serving: open streams end, the port closes.
    async fn stop(&mut self) {
        let running = self.running.take().expect("the server is running");
        running.shutdown.cancel();
        tokio::time::timeout(WAIT, running.task)
            .await
            .expect("the server stops")
            .expect("the server task ends");
    }

    /// Serves again on the same port.
    async fn restart(&mut self) {
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot bind {} again: {e}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
    }

    /// What to write through: the service being served, or, while it is
    /// stopped, an instance over the same database (another replica).
    fn writer(&self) -> Assessments {
        match &self.running {
            Some(r) => r.assessments.clone(),
            None => self.instance(CancellationToken::new()),
        }
    }

    /// Every event the service has written, in order.
    async fn events(&self) -> Vec<apb::AssessmentEvent> {
        self.instance(CancellationToken::new())
            .repo()
            .events_after(0, 1_000_000)
            .await
            .expect("the event log")
    }
}

impl Drop for AssessmentServer {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.shutdown.cancel();
        }
    }
}

// ---------------------------------------------------------------------------
// Writing: a province officer with every role, calling the service in
// process (so writes go on while its port is closed)

fn as_officer<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(Caller {
        subject: "so-tttt-thanh-hoa".to_owned(),
        roles: [
            Role::Submitter,
            Role::Reviewer,
            Role::Approver,
            Role::Reader,
        ]
        .into_iter()
        .collect(),
        scope: chiso_auth::Scope::National,
    });
    request
}

async fn commune_set(svc: &Assessments) -> apb::CriteriaSet {
    svc.get_criteria_set(as_officer(apb::GetCriteriaSetRequest {
        id: "th-commune-2023".into(),
        version: 0,
    }))
    .await
    .expect("the commune criteria set")
    .into_inner()
    .criteria_set
    .expect("a set")
}

fn value(code: &str, v: apb::indicator_value::Value) -> apb::IndicatorValue {
    apb::IndicatorValue {
        indicator_code: code.into(),
        value: Some(v),
        evidence: Some(apb::Evidence {
            document_number: "12/BC-UBND".into(),
            link: String::new(),
            note: "báo cáo năm".into(),
        }),
    }
}

/// A value that meets `ind`, or (`meet` false) fails it.
fn reported(ind: &apb::Indicator, meet: bool) -> apb::IndicatorValue {
    use apb::indicator_value::Value as V;
    let at_most = ind.comparison == apb::Comparison::AtMost as i32;
    let high = meet != at_most;
    let v = match apb::IndicatorKind::try_from(ind.kind).expect("a kind") {
        apb::IndicatorKind::YesNo => V::Yes(meet),
        apb::IndicatorKind::Ratio => V::Ratio(apb::Ratio {
            numerator: if high { 100.0 } else { 0.0 },
            denominator: 100.0,
        }),
        apb::IndicatorKind::Choice => V::Choice(
            ind.options
                .iter()
                .find(|o| o.meets == meet)
                .expect("an option")
                .code
                .clone(),
        ),
        apb::IndicatorKind::Count => V::Count(if meet {
            ind.tiers
                .iter()
                .map(|t| t.at_least)
                .max()
                .unwrap_or(0)
                .max(ind.threshold as i64)
        } else {
            0
        }),
        apb::IndicatorKind::Target => V::Number(if meet { ind.threshold } else { 0.0 }),
        apb::IndicatorKind::Unspecified => panic!("an indicator without a kind"),
    };
    value(&ind.code, v)
}

/// Writes a whole year's values: every indicator met, or (`complete`
/// false) one mandatory yes/no or ratio indicator failing.
async fn fill(svc: &Assessments, set: &apb::CriteriaSet, unit: &str, year: i32, complete: bool) {
    let failing = set
        .indicators
        .iter()
        .find(|i| {
            i.mandatory
                && [
                    apb::IndicatorKind::YesNo as i32,
                    apb::IndicatorKind::Ratio as i32,
                ]
                .contains(&i.kind)
        })
        .expect("a mandatory yes/no or ratio indicator");
    let values = set
        .indicators
        .iter()
        .map(|i| reported(i, complete || i.code != failing.code))
        .collect();
    let answer = svc
        .upsert_indicator_values(as_officer(apb::UpsertIndicatorValuesRequest {
            unit_code: unit.into(),
            year,
            values,
            ..Default::default()
        }))
        .await
        .unwrap_or_else(|s| panic!("values of {unit} {year}: {s:?}"))
        .into_inner();
    let card = answer.assessment.and_then(|a| a.scorecard).expect("a card");
    assert_eq!(card.complete, complete, "{unit} {year}: {:?}", card.failing);
}

#[derive(Debug, Clone, Copy)]
enum Move {
    Submit,
    Verify,
    Approve,
    Return,
    Reopen,
}

async fn act(svc: &Assessments, unit: &str, year: i32, m: Move) {
    let reason = "thiếu minh chứng";
    let result = match m {
        Move::Submit => svc
            .submit_assessment(as_officer(requests::submit(unit, year)))
            .await
            .map(drop),
        Move::Verify => svc
            .verify_assessment(as_officer(requests::verify(unit, year)))
            .await
            .map(drop),
        Move::Approve => svc
            .approve_assessment(as_officer(requests::approve(unit, year)))
            .await
            .map(drop),
        Move::Return => svc
            .return_assessment(as_officer(requests::send_back(unit, year, reason)))
            .await
            .map(drop),
        Move::Reopen => svc
            .reopen_assessment(as_officer(requests::reopen(unit, year, reason)))
            .await
            .map(drop),
    };
    result.unwrap_or_else(|s| panic!("{m:?} {unit} {year}: {s:?}"));
}

/// Values, submission, verification by the district, approval.
async fn approve(svc: &Assessments, set: &apb::CriteriaSet, unit: &str, year: i32, complete: bool) {
    fill(svc, set, unit, year, complete).await;
    for m in [Move::Submit, Move::Verify, Move::Approve] {
        act(svc, unit, year, m).await;
    }
}

// ---------------------------------------------------------------------------
// Checking

/// Polls until the projection's cursor reaches `seq`; it must never pass it.
async fn wait_for_cursor(projection: &Projection, seq: i64, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let cursor = projection.cursor().await.expect("the cursor");
        assert!(
            cursor <= seq,
            "{what}: cursor {cursor} past the last event {seq}"
        );
        if cursor == seq {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the projection stayed at {cursor}, short of {seq}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `rx` holds a value that `done` accepts.
async fn wait_for_watch(rx: &mut watch::Receiver<i64>, what: &str, done: impl Fn(i64) -> bool) {
    let reached = tokio::time::timeout(WAIT, rx.wait_for(|v| done(*v)))
        .await
        .map(|r| r.map(drop));
    match reached {
        Ok(r) => r.expect("the projector is alive"),
        Err(_) => panic!("{what}: still at {}", *rx.borrow()),
    }
}

/// The projection equals the event log applied once, in order: the latest
/// event of each assessment, the first year each unit was approved complete
/// and the cursor at the last event. Returns the first completions by unit
/// code.
async fn assert_recomputed(
    projection: &Projection,
    events: &[apb::AssessmentEvent],
) -> BTreeMap<String, i32> {
    let seqs: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "the assessment service numbers its events without gaps"
    );
    let mut latest: BTreeMap<i64, apb::AssessmentEvent> = BTreeMap::new();
    for e in events {
        latest.insert(e.assessment_id, e.clone());
    }
    let mut first: HashMap<i64, i32> = HashMap::new();
    let mut codes = HashMap::new();
    for e in latest.values() {
        codes.insert(e.unit_id, e.unit_code.clone());
        if e.status == apb::AssessmentStatus::Approved as i32
            && e.scorecard.as_ref().is_some_and(|c| c.complete)
        {
            let y = first.entry(e.unit_id).or_insert(e.year);
            *y = (*y).min(e.year);
        }
    }
    assert_eq!(
        projection.cursor().await.expect("the cursor"),
        events.len() as i64
    );
    let states: BTreeMap<i64, apb::AssessmentEvent> = projection
        .states(0)
        .await
        .expect("states")
        .into_iter()
        .map(|s| (s.event.assessment_id, s.event))
        .collect();
    assert_eq!(states, latest, "the latest event of each assessment");
    assert_eq!(
        projection.first_completions().await.expect("completions"),
        first,
        "first completion year by unit"
    );
    first
        .into_iter()
        .map(|(unit, year)| (codes[&unit].clone(), year))
        .collect()
}

// ---------------------------------------------------------------------------
// The projector through crashes and outages, on each backend

/// Expands each named `async fn(reporting: TestDb, assessment: TestDb)` into
/// a module with a `sqlite` and a `postgres` test.
/// A reporting database and an assessment database on one backend.
struct Dbs {
    reporting: TestDb,
    assessment: TestDb,
}

impl Dbs {
    async fn sqlite() -> Dbs {
        Dbs {
            reporting: sqlite_db().await,
            assessment: sqlite_db().await,
        }
    }

    async fn postgres() -> Option<Dbs> {
        let reporting = postgres_db().await?;
        let assessment = postgres_db().await.expect("the variable is set");
        Some(Dbs {
            reporting,
            assessment,
        })
    }
}

on_every_backend!(Dbs: the_projector_survives_crashes_and_outages_without_losing_or_repeating_events);

async fn sqlite_db() -> TestDb {
    chiso_telemetry::init_for_tests();
    chiso_testkit::sqlite_db().await
}

async fn postgres_db() -> Option<TestDb> {
    chiso_telemetry::init_for_tests();
    let db = chiso_testkit::postgres_db().await?;
    assert_eq!(db.db.backend(), Backend::Postgres);
    Some(db)
}

fn projector_over(projection: &Projection, url: &str) -> Projector {
    Projector::new(
        projection.clone(),
        url,
        &token("chiso-reporting", &[Role::Service]),
    )
    .expect("a projector")
}

async fn the_projector_survives_crashes_and_outages_without_losing_or_repeating_events(
    Dbs {
        reporting,
        assessment: assessment_db,
    }: Dbs,
) {
    let units = UnitsServer::start(SECRET).await;
    let mut assessment = AssessmentServer::start(assessment_db.db.clone(), &units.url).await;
    reporting
        .db
        .migrate(&MIGRATIONS)
        .await
        .expect("the reporting migrations run");
    let projection = Projection::new(reporting.db.clone());
    let svc = assessment.writer();
    let set = commune_set(&svc).await;
    let [c1, c2, c3, c4, c5, c6, c7] = COMMUNES;

    // Before any projector runs: two complete approvals, an incomplete one,
    // one returned to its commune.
    approve(&svc, &set, c1, 2023, true).await;
    approve(&svc, &set, c2, 2023, true).await;
    approve(&svc, &set, c3, 2023, false).await;
    fill(&svc, &set, c4, 2023, true).await;
    act(&svc, c4, 2023, Move::Submit).await;
    act(&svc, c4, 2023, Move::Return).await;
    let last = assessment.events().await.len() as i64;

    // A projector that is killed as soon as it has applied its first event.
    let first = projector_over(&projection, &assessment.url());
    let mut applied = first.subscribe();
    let stop = CancellationToken::new();
    let run = tokio::spawn(first.run(stop.clone()));
    wait_for_watch(&mut applied, "the first projector", |v| v > 0).await;
    stop.cancel();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("a cancelled projector stops")
        .expect("the projector task ends");
    let killed_at = projection.cursor().await.expect("the cursor");
    assert!(
        killed_at >= 1 && killed_at < last,
        "killed mid-stream: at {killed_at} of {last}"
    );

    // More writes while no projector runs: the second commune's later
    // completion does not move its first year; two new completions.
    approve(&svc, &set, c5, 2023, true).await;
    approve(&svc, &set, c6, 2023, true).await;
    approve(&svc, &set, c1, 2024, true).await;
    let last = assessment.events().await.len() as i64;

    // A second projector, itself killed part-way, then a third.
    let second = projector_over(&projection, &assessment.url());
    let mut applied = second.subscribe();
    let stop = CancellationToken::new();
    let run = tokio::spawn(second.run(stop.clone()));
    wait_for_watch(&mut applied, "the second projector", |v| v > killed_at).await;
    stop.cancel();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("a cancelled projector stops")
        .expect("the projector task ends");
    let third = projector_over(&projection, &assessment.url());
    let mut applied = third.subscribe();
    let stop = CancellationToken::new();
    let run = tokio::spawn(third.run(stop.clone()));
    wait_for_cursor(&projection, last, "after two restarts").await;
    wait_for_watch(&mut applied, "the third projector", |v| v == last).await;

    // The assessment server goes away; writes go on through another
    // instance; the projector retries with backoff until the server is back
    // on its port.
    assessment.stop().await;
    let offline = assessment.writer();
    act(&offline, c2, 2023, Move::Reopen).await;
    approve(&offline, &set, c7, 2024, true).await;
    fill(&offline, &set, c3, 2024, true).await;
    let while_down = assessment.events().await.len() as i64;
    assert_eq!(
        projection.cursor().await.expect("the cursor"),
        last,
        "nothing to read while the server is down"
    );
    assessment.restart().await;
    wait_for_cursor(&projection, while_down, "after the server came back").await;

    // And the projector follows live writes again.
    let svc = assessment.writer();
    for m in [Move::Submit, Move::Verify, Move::Approve] {
        act(&svc, c3, 2024, m).await;
    }
    fill(&svc, &set, c4, 2023, false).await;
    act(&svc, c4, 2023, Move::Submit).await;
    fill(&svc, &set, c2, 2023, true).await;
    act(&svc, c2, 2023, Move::Submit).await;
    let events = assessment.events().await;
    let last = events.len() as i64;
    wait_for_cursor(&projection, last, "following live writes").await;
    wait_for_watch(&mut applied, "the third projector", |v| v == last).await;

    let first = assert_recomputed(&projection, &events).await;
    // And the recomputation is the story written above: c2's completion was
    // reopened, c3 completed only in 2024, c4 never.
    let expected: BTreeMap<String, i32> =
        [(c1, 2023), (c5, 2023), (c6, 2023), (c7, 2024), (c3, 2024)]
            .into_iter()
            .map(|(c, y)| (c.to_owned(), y))
            .collect();
    assert_eq!(first, expected);
    stop.cancel();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("a cancelled projector stops")
        .expect("the projector task ends");
}

// ---------------------------------------------------------------------------
// Leadership on PostgreSQL

/// Two replicas of the reporting service over one PostgreSQL database, each
/// with its own pool (named by `application_name`) and projector.
struct Replicas {
    reporting: TestDb,
    _units: UnitsServer,
    assessment: AssessmentServer,
    _assessment_db: TestDb,
}

struct Replica {
    projection: Projection,
    applied: watch::Receiver<i64>,
    stop: CancellationToken,
    run: JoinHandle<()>,
}

impl Replicas {
    async fn start() -> Option<Replicas> {
        let reporting = postgres_db().await?;
        reporting
            .db
            .migrate(&MIGRATIONS)
            .await
            .expect("the reporting migrations run");
        // Every cursor move, with the session that made it and whether that
        // session held the projector's advisory lock while it did.
        sqlx::raw_sql(
            "CREATE TABLE apply_log (id BIGSERIAL PRIMARY KEY, seq BIGINT NOT NULL, \
                 writer TEXT NOT NULL, holds_lock BOOLEAN NOT NULL); \
             CREATE FUNCTION log_apply() RETURNS trigger AS $$ BEGIN \
                 INSERT INTO apply_log (seq, writer, holds_lock) VALUES (NEW.seq, \
                     current_setting('application_name'), \
                     EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                             AND pid = pg_backend_pid())); \
                 RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER cursors_log AFTER INSERT OR UPDATE ON cursors \
                 FOR EACH ROW EXECUTE FUNCTION log_apply();",
        )
        .execute(reporting.db.pool())
        .await
        .expect("the apply log");
        let units = UnitsServer::start(SECRET).await;
        let assessment_db = sqlite_db().await;
        let assessment = AssessmentServer::start(assessment_db.db.clone(), &units.url).await;
        Some(Replicas {
            reporting,
            _units: units,
            assessment,
            _assessment_db: assessment_db,
        })
    }

    async fn replica(&self, name: &str) -> Replica {
        let sep = if self.reporting.url.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}application_name={name}", self.reporting.url);
        let projection = Projection::new(Db::connect(&url).await.expect("a replica's pool"));
        let projector = projector_over(&projection, &self.assessment.url());
        let applied = projector.subscribe();
        let stop = CancellationToken::new();
        let run = tokio::spawn(projector.run(stop.clone()));
        Replica {
            projection,
            applied,
            stop,
            run,
        }
    }

    fn projection(&self) -> Projection {
        Projection::new(self.reporting.db.clone())
    }

    /// Approves the next `n` communes (four events each) for `year`.
    async fn write(&self, year: i32, communes: &[&str]) -> i64 {
        let svc = self.assessment.writer();
        let set = commune_set(&svc).await;
        for c in communes {
            approve(&svc, &set, c, year, true).await;
        }
        self.assessment.events().await.len() as i64
    }

    /// The replicas (by application name) holding the projector's lock.
    async fn lock_holders(&self) -> Vec<(String, i32)> {
        sqlx::query(
            "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()",
        )
        .fetch_all(self.reporting.db.pool())
        .await
        .expect("the lock holders")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    /// Waits until `name` has asked for the lock and been refused: it holds
    /// a session whose last query asked, and no lock.
    async fn wait_until_refused(&self, name: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity a WHERE a.datname = current_database() \
                 AND a.application_name = $1 AND a.query LIKE '%pg_try_advisory_lock%' \
                 AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid \
                                 AND l.locktype = 'advisory' AND l.granted)",
            )
            .bind(name)
            .fetch_one(self.reporting.db.pool())
            .await
            .expect("the sessions");
            if waiting > 0 {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never asked for the lock");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_for_holder(&self, name: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let holders = self.lock_holders().await;
            if holders.iter().any(|(n, _)| n == name) {
                assert_eq!(holders.len(), 1, "one holder: {holders:?}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never took the lock; holders {holders:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every cursor move: (event, replica, whether it held the lock).
    async fn apply_log(&self) -> Vec<(i64, String, bool)> {
        sqlx::query("SELECT seq, writer, holds_lock FROM apply_log ORDER BY id")
            .fetch_all(self.reporting.db.pool())
            .await
            .expect("the apply log")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    /// Each event was applied once, in order, by the replica holding the
    /// lock: `leaders` says which replica up to which event.
    async fn assert_applied_by(&self, leaders: &[(&str, i64)]) {
        let log = self.apply_log().await;
        let mut expected = Vec::new();
        let mut from = 1;
        for &(name, to) in leaders {
            for seq in from..=to {
                expected.push((seq, name.to_owned(), true));
            }
            from = to + 1;
        }
        assert_eq!(log, expected, "(event, applied by, holding the lock)");
    }
}

/// Stops a replica's projector; its pool stays open (the replica still
/// answers reads) as long as the returned projection lives.
async fn stop(replica: Replica) -> Projection {
    replica.stop.cancel();
    tokio::time::timeout(WAIT, replica.run)
        .await
        .expect("a cancelled projector stops")
        .expect("the projector task ends");
    replica.projection
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_elect_one_projector_and_the_other_takes_over_when_it_stops() {
    let Some(env) = Replicas::start().await else {
        eprintln!("not run: {POSTGRES_ENV} is not set");
        return;
    };
    let projection = env.projection();
    let [c1, c2, c3, c4, c5, c6, _] = COMMUNES;
    let first = env.write(2023, &[c1, c2]).await;

    let mut a = env.replica("replica-a").await;
    wait_for_watch(&mut a.applied, "replica-a", |v| v == first).await;
    env.wait_for_holder("replica-a").await;
    let mut b = env.replica("replica-b").await;
    env.wait_until_refused("replica-b").await;

    // While a leads, b applies nothing.
    let second = env.write(2023, &[c3, c4]).await;
    wait_for_cursor(&projection, second, "replica-a leading").await;
    wait_for_watch(&mut a.applied, "replica-a", |v| v == second).await;
    assert_eq!(*b.applied.borrow(), 0, "replica-b has not followed");
    assert!(!b.applied.has_changed().expect("b runs"));
    env.wait_for_holder("replica-a").await;

    // a's projector stops while the replica goes on serving reads from its
    // pool (as while it drains on a rolling restart): b takes over from the
    // cursor.
    let a = stop(a).await;
    env.wait_for_holder("replica-b").await;
    wait_for_watch(&mut b.applied, "replica-b taking over", |v| v == second).await;
    let third = env.write(2024, &[c5, c6]).await;
    wait_for_cursor(&projection, third, "replica-b leading").await;
    wait_for_watch(&mut b.applied, "replica-b", |v| v == third).await;

    env.assert_applied_by(&[("replica-a", second), ("replica-b", third)])
        .await;
    let events = env.assessment.events().await;
    assert_recomputed(&b.projection, &events).await;
    assert_recomputed(&a, &events).await;
    stop(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_leader_that_loses_its_lock_session_applies_nothing_more() {
    let Some(env) = Replicas::start().await else {
        eprintln!("not run: {POSTGRES_ENV} is not set");
        return;
    };
    let projection = env.projection();
    let [c1, c2, c3, c4, ..] = COMMUNES;
    let first = env.write(2023, &[c1, c2]).await;

    let mut a = env.replica("replica-a").await;
    wait_for_watch(&mut a.applied, "replica-a", |v| v == first).await;
    env.wait_for_holder("replica-a").await;
    let mut b = env.replica("replica-b").await;
    env.wait_until_refused("replica-b").await;

    // The database ends a's lock session (a failover, an idle timeout, an
    // operator); a's projector is not told. b takes the lock.
    let holders = env.lock_holders().await;
    let [(name, pid)] = holders.as_slice() else {
        panic!("one holder: {holders:?}")
    };
    assert_eq!(name, "replica-a");
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(*pid)
        .fetch_one(env.reporting.db.pool())
        .await
        .expect("terminate");
    assert!(ended);
    env.wait_for_holder("replica-b").await;

    // From now on only b may apply.
    let second = env.write(2024, &[c3, c4]).await;
    wait_for_cursor(&projection, second, "after a lost its lock").await;
    wait_for_watch(&mut b.applied, "replica-b", |v| v == second).await;
    env.assert_applied_by(&[("replica-a", first), ("replica-b", second)])
        .await;
    assert_recomputed(&projection, &env.assessment.events().await).await;
    stop(a).await;
    stop(b).await;
}
