//! The harness of the assessment suite: a real units service on a port of
//! its own (SQLite, Thanh Hóa history loaded), and the assessment service
//! over the backend under test, served with the auth interceptor on port 0
//! and called through generated clients with signed tokens.

use std::sync::Arc;
use std::time::Duration;

use chiso_assessment::Assessments;
use chiso_assessment::units_client::UnitsDirectory;
use chiso_auth::{AuthInterceptor, Issuer, NATIONAL_SCOPE, Role, Verifier};
use chiso_proto::assessment::v1::{
    self as pb, assessment_service_client::AssessmentServiceClient,
    assessment_service_server::AssessmentServiceServer,
    criteria_service_client::CriteriaServiceClient, criteria_service_server::CriteriaServiceServer,
};
use chiso_server::{BearerInterceptor, ServeOptions, Server, field_violations};
use chiso_storage::sqlx;
use chiso_testkit::{TestDb, UnitsServer, postgres_db, sqlite_db};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The HS256 key every token of the suite is signed with.
pub const SECRET: &[u8] = b"chiso assessment suite test key, not a real one";

/// Thị trấn Thọ Xuân, a commune of Thọ Xuân district (395) until 1/7/2025.
pub const COMMUNE: &str = "15499";
/// Xã Bắc Lương, its neighbour in the same district.
pub const NEIGHBOUR: &str = "15502";
pub const DISTRICT: &str = "395";
/// Thiệu Hóa district, and one of its communes.
pub const OTHER_DISTRICT: &str = "398";
pub const OTHER_DISTRICT_COMMUNE: &str = "15781";
/// Xã Thiệu Phú (Thiệu Hóa): dissolved on 1/5/2024, so no unit holds the
/// code at the end of 2024.
pub const DISSOLVED_IN_2024: &str = "15790";
pub const PROVINCE: &str = "38";
/// Thọ Xuân's 30 communes before 1/7/2025.
pub const THO_XUAN_COMMUNES: [&str; 30] = [
    "15493", "15499", "15502", "15505", "15508", "15511", "15514", "15517", "15520", "15523",
    "15526", "15532", "15535", "15538", "15541", "15544", "15547", "15550", "15553", "15556",
    "15559", "15565", "15568", "15571", "15574", "15577", "15583", "15586", "15592", "15598",
];

/// The year most tests write: the commune set th-commune-2023 is the only
/// one that applies to communes in it.
pub const YEAR: i32 = 2024;

pub const WAIT: Duration = Duration::from_secs(20);

pub type Authed = InterceptedService<Channel, BearerInterceptor>;

pub fn token(subject: &str, roles: &[Role], scope: &str) -> String {
    Issuer::hs256(SECRET)
        .issue(subject, roles, scope, Duration::from_secs(3600))
        .expect("a token")
}

/// The assessment service over one backend, served on port 0.
pub struct Env {
    pub url: String,
    shutdown: CancellationToken,
    channel: Channel,
    // Dropped last: the databases go away with them.
    _units: Option<UnitsServer>,
    db: TestDb,
}

impl Env {
    /// The service over `db`, asking a units service of its own, or the one
    /// at `units_url` when given.
    async fn over(db: TestDb, units_url: Option<&str>) -> Env {
        chiso_telemetry::init_for_tests();
        let (units, units_url) = match units_url {
            Some(url) => (None, url.to_owned()),
            None => {
                let units = UnitsServer::start(SECRET).await;
                let url = units.url.clone();
                (Some(units), url)
            }
        };
        db.db
            .migrate(&chiso_assessment::MIGRATIONS)
            .await
            .expect("the assessment migrations run");
        let shutdown = CancellationToken::new();
        let service_token = token("chiso-assessment", &[Role::Service], NATIONAL_SCOPE);
        let directory = UnitsDirectory::new(&units_url, &service_token).expect("a units directory");
        let assessments = Assessments::new(db.db.clone(), directory, shutdown.clone());
        chiso_assessment::publish_defaults(assessments.repo())
            .await
            .expect("the shipped criteria sets publish");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let auth = AuthInterceptor::new(Arc::new(Verifier::hs256(SECRET)));
        let server = Server::new()
            .add_service(CriteriaServiceServer::with_interceptor(
                assessments.clone(),
                auth.clone(),
            ))
            .add_service(AssessmentServiceServer::with_interceptor(assessments, auth))
            .serve(
                listener,
                shutdown.clone(),
                ServeOptions {
                    grace: Duration::from_secs(1),
                },
            );
        tokio::spawn(server);
        let url = format!("http://{addr}");
        let channel = Endpoint::from_shared(url.clone())
            .expect("url")
            .connect_lazy();
        Env {
            url,
            shutdown,
            channel,
            _units: units,
            db,
        }
    }

    pub async fn sqlite() -> Env {
        Env::over(sqlite_db().await, None).await
    }

    pub async fn postgres() -> Option<Env> {
        Some(Env::over(postgres_db().await?, None).await)
    }

    pub fn db(&self) -> &chiso_storage::Db {
        &self.db.db
    }

    fn authed(&self, token: &str) -> Authed {
        InterceptedService::new(
            self.channel.clone(),
            BearerInterceptor::new(token).expect("a token"),
        )
    }

    /// An assessment client for a system `subject` with `roles` over `scope`.
    pub fn client_as(
        &self,
        subject: &str,
        roles: &[Role],
        scope: &str,
    ) -> AssessmentServiceClient<Authed> {
        AssessmentServiceClient::new(self.authed(&token(subject, roles, scope)))
    }

    pub fn client(&self, roles: &[Role], scope: &str) -> AssessmentServiceClient<Authed> {
        self.client_as(&format!("system-{scope}"), roles, scope)
    }

    pub fn criteria(&self, roles: &[Role], scope: &str) -> CriteriaServiceClient<Authed> {
        CriteriaServiceClient::new(self.authed(&token(&format!("system-{scope}"), roles, scope)))
    }

    /// A commune's own system: enters and reads its values.
    pub fn commune(&self, code: &str) -> AssessmentServiceClient<Authed> {
        self.client(&[Role::Submitter, Role::Reader], code)
    }

    /// Another chiso service: follows events.
    pub fn service(&self) -> AssessmentServiceClient<Authed> {
        self.client_as("reporting", &[Role::Service], NATIONAL_SCOPE)
    }

    pub fn admin(&self) -> CriteriaServiceClient<Authed> {
        self.criteria(&[Role::Admin], NATIONAL_SCOPE)
    }

    /// Rows of a table, straight from the database.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.db().pool())
            .await
            .expect("a count")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The service with its units directory pointing at a port nothing listens
/// on.
pub struct UnitsDown;

impl UnitsDown {
    pub async fn sqlite() -> Env {
        let url = closed_port_url().await;
        Env::over(sqlite_db().await, Some(&url)).await
    }

    pub async fn postgres() -> Option<Env> {
        let url = closed_port_url().await;
        Some(Env::over(postgres_db().await?, Some(&url)).await)
    }
}

/// A port nothing listens on.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------
// Values and requests

pub use chiso_testkit::requests::evidence;

pub fn value(code: &str, v: pb::indicator_value::Value) -> pb::IndicatorValue {
    pb::IndicatorValue {
        indicator_code: code.into(),
        value: Some(v),
        evidence: evidence(),
    }
}

pub fn yes(code: &str, b: bool) -> pb::IndicatorValue {
    value(code, pb::indicator_value::Value::Yes(b))
}

pub fn ratio(code: &str, numerator: f64, denominator: f64) -> pb::IndicatorValue {
    value(
        code,
        pb::indicator_value::Value::Ratio(pb::Ratio {
            numerator,
            denominator,
        }),
    )
}

pub fn count(code: &str, n: i64) -> pb::IndicatorValue {
    value(code, pb::indicator_value::Value::Count(n))
}

pub fn number(code: &str, x: f64) -> pb::IndicatorValue {
    value(code, pb::indicator_value::Value::Number(x))
}

pub fn upsert(
    unit: &str,
    year: i32,
    values: Vec<pb::IndicatorValue>,
) -> pb::UpsertIndicatorValuesRequest {
    pb::UpsertIndicatorValuesRequest {
        unit_code: unit.into(),
        year,
        values,
        ..Default::default()
    }
}

/// A value that meets `ind`.
pub fn meeting(ind: &pb::Indicator) -> pb::IndicatorValue {
    use pb::indicator_value::Value as V;
    let at_most = ind.comparison == pb::Comparison::AtMost as i32;
    let v = match pb::IndicatorKind::try_from(ind.kind).expect("a kind") {
        pb::IndicatorKind::YesNo => V::Yes(true),
        pb::IndicatorKind::Choice => V::Choice(
            ind.options
                .iter()
                .find(|o| o.meets)
                .expect("an option that meets")
                .code
                .clone(),
        ),
        pb::IndicatorKind::Ratio => V::Ratio(pb::Ratio {
            numerator: if at_most { 0.0 } else { 100.0 },
            denominator: 100.0,
        }),
        pb::IndicatorKind::Count => V::Count(
            ind.tiers
                .iter()
                .map(|t| t.at_least)
                .max()
                .unwrap_or(0)
                .max(ind.threshold as i64),
        ),
        pb::IndicatorKind::Target => V::Number(ind.threshold),
        pb::IndicatorKind::Unspecified => panic!("indicator without a kind"),
    };
    value(&ind.code, v)
}

/// The fields an `InvalidArgument` names.
pub fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

/// Expects `result` to fail with `code`.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            status
        }
    }
}
