//! `cargo run --release -p chiso-bench`: measures chiso against baselines
//! taken in the same process, so the figures are ratios that hold on a
//! noisy machine.
//!
//! - import: importing the national GSO list of 10/4/2022 (63 provinces,
//!   705 districts, 10,599 communes) into an empty units database, against
//!   planning the same snapshot in memory (the pure diff, no I/O).
//! - lookups: `GetUnit` by code as of a date and `ListUnits` of a province's
//!   communes over gRPC, against the gRPC health check on the same server
//!   (the cost of a call that does no work).
//! - memory: peak resident memory after the national import, against the
//!   peak before it.
//!
//! Pass `--postgres URL` to run the import against PostgreSQL too.

use std::io::Read;
use std::time::{Duration, Instant};

use chiso_auth::Role;
use chiso_proto::units::v1 as pb;
use chiso_storage::testing::TestDb;
use chiso_units::Units;
use chiso_units::plan::{LineageIn, RowIn, plan};
use tokio_util::sync::CancellationToken;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const NATIONAL: &[u8] = include_bytes!("../../../data/units/vn-2022-04-10.csv.gz");
const LOOKUPS: usize = 2000;

fn national_request() -> anyhow::Result<pb::ImportSnapshotRequest> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(NATIONAL).read_to_string(&mut text)?;
    Ok(pb::ImportSnapshotRequest {
        effective_date: Some(chiso_proto::from_date(time::macros::date!(2022 - 04 - 10))),
        rows: chiso_units::reference::parse_rows(&text)?,
        source: "GSO 10/4/2022".into(),
        ..Default::default()
    })
}

/// Peak resident set size of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn per_call(total: Duration, n: usize) -> Duration {
    total / n as u32
}

async fn import(db: &TestDb, label: &str) -> anyhow::Result<()> {
    let request = national_request()?;
    let rows: Vec<RowIn> = request
        .rows
        .iter()
        .map(|r| RowIn {
            code: r.code.clone(),
            name: r.name.clone(),
            kind: pb::UnitKind::try_from(r.kind)
                .ok()
                .and_then(chiso_units::domain::Kind::from_pb),
            parent_code: r.parent_code.clone(),
        })
        .collect();
    let lineage: Vec<LineageIn> = Vec::new();

    // Baseline: the planner alone, best of three.
    let mut plan_time = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let p = plan(&[], time::macros::date!(2022 - 04 - 10), &rows, &lineage, 1);
        plan_time = plan_time.min(start.elapsed());
        assert!(p.rejected.is_empty(), "the national list plans cleanly");
    }

    db.db.migrate(&chiso_units::MIGRATIONS).await?;
    let units = Units::new(db.db.clone(), CancellationToken::new());
    let rss_before = peak_rss_kib();
    let start = Instant::now();
    let response = units.import_snapshot_as(&request, "bench").await?;
    let import_time = start.elapsed();
    let rss_after = peak_rss_kib();
    let summary = response.summary.unwrap_or_default();
    println!(
        "import[{label}]: {} units in {:.0} ms; planning alone {:.1} ms; import/plan = {:.1}x",
        summary.established,
        import_time.as_secs_f64() * 1e3,
        plan_time.as_secs_f64() * 1e3,
        import_time.as_secs_f64() / plan_time.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "memory[{label}]: peak RSS {} MiB before the import, {} MiB after; after/before = {:.2}x",
            before / 1024,
            after / 1024,
            after as f64 / before as f64
        );
    }
    Ok(())
}

async fn lookups() -> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let embedded =
        chiso::server::open_embedded(data_dir.path(), &listener, shutdown.clone()).await?;
    let server = tokio::spawn(embedded.serve(listener, shutdown.clone(), Duration::from_secs(5)));
    let secret = chiso_auth::dev_secret(data_dir.path())?;
    let token = chiso_auth::Issuer::hs256(&secret).issue(
        "bench",
        &[Role::Reader],
        "VN",
        Duration::from_secs(600),
    )?;
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let authed = tonic::service::interceptor::InterceptedService::new(
        channel.clone(),
        chiso_server::BearerInterceptor::new(&token).map_err(anyhow::Error::msg)?,
    );
    let mut units = pb::units_service_client::UnitsServiceClient::new(authed);
    let mut health = HealthClient::new(channel);

    // Warm up both paths.
    for _ in 0..50 {
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
    }
    let start = Instant::now();
    for _ in 0..LOOKUPS {
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?;
    }
    let baseline = per_call(start.elapsed(), LOOKUPS);

    let codes = ["15499", "14758", "16408", "15493", "380"];
    let dates = [(2019, 11, 30), (2022, 6, 30), (2025, 3, 1), (2025, 7, 1)];
    let start = Instant::now();
    for i in 0..LOOKUPS {
        let (y, m, d) = dates[i % dates.len()];
        let result = units
            .get_unit(pb::GetUnitRequest {
                unit: Some(pb::UnitRef {
                    r#ref: Some(pb::unit_ref::Ref::Code(codes[i % codes.len()].into())),
                }),
                as_of: Some(chiso_proto::google::r#type::Date {
                    year: y,
                    month: m,
                    day: d,
                }),
            })
            .await;
        // Some codes did not exist on some dates: NotFound is a lookup too.
        if let Err(status) = result
            && status.code() != tonic::Code::NotFound
        {
            return Err(status.into());
        }
    }
    let get_unit = per_call(start.elapsed(), LOOKUPS);

    let n = LOOKUPS / 10;
    let start = Instant::now();
    for _ in 0..n {
        let page = units
            .list_units(pb::ListUnitsRequest {
                parent_code: "38".into(),
                level: pb::UnitLevel::Commune as i32,
                as_of: Some(chiso_proto::google::r#type::Date {
                    year: 2022,
                    month: 6,
                    day: 30,
                }),
                page_size: 1000,
                page_token: String::new(),
            })
            .await?
            .into_inner();
        assert_eq!(page.units.len(), 559);
    }
    let list = per_call(start.elapsed(), n);

    println!(
        "lookups: health check {:.0} µs/call (baseline); GetUnit as of a date {:.0} µs/call = {:.2}x; \
         ListUnits of 559 communes {:.0} µs/call = {:.1}x",
        baseline.as_secs_f64() * 1e6,
        get_unit.as_secs_f64() * 1e6,
        get_unit.as_secs_f64() / baseline.as_secs_f64(),
        list.as_secs_f64() * 1e6,
        list.as_secs_f64() / baseline.as_secs_f64()
    );
    shutdown.cancel();
    server.await??;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let postgres = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1).cloned());

    import(&TestDb::sqlite().await?, "sqlite").await?;
    if let Some(url) = postgres {
        import(&TestDb::postgres_on(&url).await?, "postgres").await?;
    }
    lookups().await?;
    Ok(())
}
