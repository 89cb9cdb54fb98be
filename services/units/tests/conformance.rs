//! The units service against each storage backend: every test runs on SQLite,
//! and on PostgreSQL when `CHISO_TEST_DATABASE_URL` is set. Calls go through
//! the `UnitsService` trait with the caller the auth interceptor would attach,
//! and through `Units::import_snapshot_as`, the path of the reference loader.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chiso_auth::{Caller, NATIONAL_SCOPE, Role};
use chiso_proto::google::r#type::Date as PbDate;
use chiso_proto::units::v1::{self as pb, units_service_server::UnitsService};
use chiso_server::field_violations;
use chiso_storage::sqlx;
use chiso_testkit::{TestDb, on_every_backend, postgres_db, sqlite_db};
use chiso_units::{MIGRATIONS, Units, reference};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Status};

/// A migrated database of one backend and the service over it.
struct Env {
    units: Units,
    shutdown: CancellationToken,
    // Dropped last: the database goes away with it.
    _db: TestDb,
}

impl Env {
    async fn over(db: TestDb) -> Env {
        db.db
            .migrate(&MIGRATIONS)
            .await
            .expect("the migrations run");
        let shutdown = CancellationToken::new();
        Env {
            units: Units::new(db.db.clone(), shutdown.clone()),
            shutdown,
            _db: db,
        }
    }

    async fn sqlite() -> Env {
        Env::over(sqlite_db().await).await
    }

    async fn postgres() -> Option<Env> {
        Some(Env::over(postgres_db().await?).await)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

on_every_backend!(Env:
    the_thanh_hoa_history_answers_as_of_any_date,
    the_reused_code_14758_names_two_units,
    loading_the_history_twice_changes_nothing,
    the_raw_gso_list_is_refused_for_its_two_ghosts,
    the_raw_gso_list_is_reported_with_validate_only,
    the_raw_gso_list_applies_partially_without_its_ghosts,
    a_partial_import_leaves_units_whose_rows_it_refused,
    a_retry_with_the_same_request_id_gets_the_first_answer,
    a_request_id_cannot_be_reused_for_another_snapshot,
    imports_must_come_in_date_order,
    a_late_import_cannot_end_a_unit_changed_later_elsewhere,
    malformed_requests_name_the_bad_field,
    unknown_codes_and_ids_are_not_found,
    calls_need_a_caller_and_imports_an_admin,
    a_watch_from_zero_streams_every_change_in_order,
    a_watcher_hears_an_import_committed_after_it_started,
    a_watch_resumed_after_n_yields_exactly_the_changes_after_n,
);

// ---------------------------------------------------------------------------
// Helpers

const WAIT: Duration = Duration::from_secs(20);

fn caller(roles: &[Role], scope: &str) -> Caller {
    Caller {
        subject: "conformance-test".to_owned(),
        roles: roles.iter().copied().collect(),
        scope: chiso_auth::Scope::parse(scope).expect("a valid scope"),
    }
}

fn admin() -> Caller {
    caller(&[Role::Admin], NATIONAL_SCOPE)
}

/// A request as the auth interceptor hands it on.
fn as_caller<T>(who: Caller, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(who);
    request
}

fn req<T>(message: T) -> Request<T> {
    as_caller(admin(), message)
}

fn date(year: i32, month: i32, day: i32) -> Option<PbDate> {
    Some(PbDate { year, month, day })
}

fn ymd(d: &Option<PbDate>) -> (i32, i32, i32) {
    let d = d.as_ref().expect("a date");
    (d.year, d.month, d.day)
}

fn code(c: &str) -> Option<pb::UnitRef> {
    Some(pb::UnitRef {
        r#ref: Some(pb::unit_ref::Ref::Code(c.to_owned())),
    })
}

fn id(id: i64) -> Option<pb::UnitRef> {
    Some(pb::UnitRef {
        r#ref: Some(pb::unit_ref::Ref::Id(id)),
    })
}

/// The fields an `InvalidArgument` names.
fn bad_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    field_violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

async fn get(
    units: &Units,
    unit: Option<pb::UnitRef>,
    as_of: Option<PbDate>,
) -> pb::GetUnitResponse {
    units
        .get_unit(req(pb::GetUnitRequest { unit, as_of }))
        .await
        .unwrap_or_else(|s| panic!("GetUnit: {s:?}"))
        .into_inner()
}

async fn get_err(units: &Units, request: pb::GetUnitRequest) -> Status {
    units
        .get_unit(req(request))
        .await
        .expect_err("GetUnit should fail")
}

/// One page of ListUnits.
async fn page(
    units: &Units,
    parent: &str,
    level: pb::UnitLevel,
    as_of: Option<PbDate>,
    page_size: i32,
    page_token: String,
) -> Result<pb::ListUnitsResponse, Status> {
    units
        .list_units(req(pb::ListUnitsRequest {
            parent_code: parent.to_owned(),
            level: level as i32,
            as_of,
            page_size,
            page_token,
        }))
        .await
        .map(tonic::Response::into_inner)
}

/// Every unit of a listing, page by page, checking that pages are full until
/// the last, in code order, without repeats, and that `total_size` counts
/// exactly what the pages hold.
async fn list_all(
    units: &Units,
    parent: &str,
    level: pb::UnitLevel,
    as_of: Option<PbDate>,
    page_size: i32,
) -> Vec<pb::Unit> {
    let mut all: Vec<pb::Unit> = Vec::new();
    let mut token = String::new();
    let mut total = None;
    for pages in 1.. {
        assert!(pages < 1000, "paging does not end");
        let p = page(units, parent, level, as_of, page_size, token)
            .await
            .unwrap_or_else(|s| panic!("ListUnits: {s:?}"));
        assert_eq!(*total.get_or_insert(p.total_size), p.total_size);
        assert!(p.units.len() <= page_size as usize);
        if !p.next_page_token.is_empty() {
            assert_eq!(
                p.units.len(),
                page_size as usize,
                "only the last page is short"
            );
        }
        all.extend(p.units);
        if p.next_page_token.is_empty() {
            break;
        }
        token = p.next_page_token;
    }
    let codes: Vec<&str> = all.iter().map(|u| u.code.as_str()).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(codes, sorted, "pages are in code order without repeats");
    assert_eq!(
        all.len() as i32,
        total.unwrap_or(0),
        "total_size counts every unit"
    );
    all
}

async fn count(units: &Units, parent: &str, level: pb::UnitLevel, as_of: Option<PbDate>) -> i32 {
    page(units, parent, level, as_of, 1, String::new())
        .await
        .unwrap_or_else(|s| panic!("ListUnits: {s:?}"))
        .total_size
}

/// Row counts of every table and the last change sequence: equal before and
/// after a call means the call wrote nothing.
async fn footprint(units: &Units) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in [
        "units",
        "unit_versions",
        "imports",
        "import_provinces",
        "lineage",
        "unit_changes",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(units.repo().db().pool())
            .await
            .expect("a count");
        out.push((table, n));
    }
    out.push(("last_sequence", units.repo().last_sequence().await.unwrap()));
    out
}

/// The shipped history up to and including `last_date`.
async fn load_history_until(units: &Units, last_date: &str) {
    for snapshot in reference::THANH_HOA_HISTORY {
        if snapshot.effective_date > last_date {
            break;
        }
        let request = reference::reference_request(snapshot).unwrap();
        let response = units
            .import_snapshot_as(&request, "conformance")
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", snapshot.effective_date));
        assert!(response.applied && response.rejected.is_empty());
    }
}

async fn import(
    units: &Units,
    request: pb::ImportSnapshotRequest,
) -> Result<pb::ImportSnapshotResponse, Status> {
    units
        .import_snapshot(req(request))
        .await
        .map(tonic::Response::into_inner)
}

/// A made-up province 90 with two districts and three communes.
fn small_province(effective: Option<PbDate>) -> pb::ImportSnapshotRequest {
    pb::ImportSnapshotRequest {
        effective_date: effective,
        rows: vec![
            row("90", "Tỉnh Thử", pb::UnitKind::Tinh, ""),
            row("900", "Huyện Một", pb::UnitKind::Huyen, "90"),
            row("901", "Huyện Hai", pb::UnitKind::Huyen, "90"),
            row("30001", "Xã An", pb::UnitKind::Xa, "900"),
            row("30002", "Xã Bình", pb::UnitKind::Xa, "900"),
            row("30003", "Xã Cường", pb::UnitKind::Xa, "901"),
        ],
        source: "conformance".to_owned(),
        ..Default::default()
    }
}

fn row(code: &str, name: &str, kind: pb::UnitKind, parent: &str) -> pb::SnapshotRow {
    pb::SnapshotRow {
        code: code.to_owned(),
        name: name.to_owned(),
        kind: kind as i32,
        parent_code: parent.to_owned(),
    }
}

async fn next_change(
    stream: &mut <Units as UnitsService>::WatchUnitChangesStream,
) -> pb::UnitChange {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a change arrives in time")
        .expect("the stream goes on")
        .expect("a change, not an error")
        .change
        .expect("the message carries a change")
}

async fn watch(units: &Units, after: i64) -> <Units as UnitsService>::WatchUnitChangesStream {
    units
        .watch_unit_changes(req(pb::WatchUnitChangesRequest {
            after_sequence: after,
        }))
        .await
        .expect("WatchUnitChanges")
        .into_inner()
}

// ---------------------------------------------------------------------------
// The shipped Thanh Hóa history

async fn the_thanh_hoa_history_answers_as_of_any_date(env: Env) {
    let units = &env.units;
    reference::load_thanh_hoa(units)
        .await
        .expect("the history loads");
    use pb::UnitLevel::{Commune, District, Unspecified};

    // Mid-2022: 27 districts, 559 communes, 30 of them in Thọ Xuân.
    let mid_2022 = date(2022, 6, 30);
    assert_eq!(count(units, "38", District, mid_2022).await, 27);
    let districts = list_all(units, "38", Unspecified, mid_2022, 10).await;
    assert_eq!(districts.len(), 27);
    assert!(
        districts
            .iter()
            .all(|u| u.level == District as i32 && u.parent_code == "38")
    );
    let communes = list_all(units, "38", Commune, mid_2022, 100).await;
    assert_eq!(communes.len(), 559);
    // Exactly the communes of the snapshot in force (2021-07-01).
    let in_force = reference::THANH_HOA_HISTORY
        .iter()
        .find(|s| s.effective_date == "2021-07-01")
        .unwrap();
    let expected: BTreeSet<(String, String, String)> = reference::parse_rows(in_force.rows)
        .unwrap()
        .into_iter()
        .filter(|r| r.code.len() == 5)
        .map(|r| (r.code, r.name, r.parent_code))
        .collect();
    let got: BTreeSet<(String, String, String)> = communes
        .iter()
        .map(|u| (u.code.clone(), u.name.clone(), u.parent_code.clone()))
        .collect();
    assert_eq!(got, expected);
    // One big page holds the same units as pages of 100.
    let one_page = page(units, "38", Commune, mid_2022, 1000, String::new())
        .await
        .unwrap();
    assert!(one_page.next_page_token.is_empty());
    assert_eq!(one_page.units, communes);
    let tho_xuan = list_all(units, "395", Unspecified, mid_2022, 100).await;
    assert_eq!(tho_xuan.len(), 30);
    assert_eq!(count(units, "395", Commune, mid_2022).await, 30);

    // Before and after the 2019 mergers, the 2025 district merger and the
    // end of districts.
    assert_eq!(count(units, "38", Commune, date(2019, 11, 30)).await, 635);
    assert_eq!(count(units, "38", Commune, date(2020, 6, 30)).await, 559);
    assert_eq!(count(units, "38", District, date(2025, 3, 1)).await, 26);
    assert_eq!(count(units, "38", Commune, date(2025, 3, 1)).await, 547);
    let july_2025 = date(2025, 7, 1);
    assert_eq!(count(units, "38", District, july_2025).await, 0);
    assert_eq!(count(units, "38", Commune, july_2025).await, 166);
    let children = list_all(units, "38", Unspecified, july_2025, 100).await;
    assert_eq!(children.len(), 166);
    assert!(
        children
            .iter()
            .all(|u| u.level == Commune as i32 && u.parent_code == "38")
    );
    // Before the first snapshot there is nothing.
    assert_eq!(count(units, "", Unspecified, date(2019, 9, 10)).await, 0);
    assert_eq!(count(units, "", Unspecified, mid_2022).await, 1);

    // A Thọ Xuân commune's ancestors in 2022.
    let commune = &tho_xuan[0];
    let ancestors = units
        .list_ancestors(req(pb::ListAncestorsRequest {
            unit: code(&commune.code),
            as_of: mid_2022,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ancestors.unit.unwrap().id, commune.id);
    let chain: Vec<&str> = ancestors
        .ancestors
        .iter()
        .map(|u| u.code.as_str())
        .collect();
    assert_eq!(chain, ["395", "38"]);
    let province = get(units, code("38"), mid_2022).await.unit.unwrap();
    assert_eq!(ancestors.ancestors[1].id, province.id);
    assert_eq!(province.name, "Tỉnh Thanh Hóa");
    assert_eq!(province.parent_id, 0);
}

async fn the_reused_code_14758_names_two_units(env: Env) {
    let units = &env.units;
    reference::load_thanh_hoa(units)
        .await
        .expect("the history loads");

    let before = get(units, code("14758"), date(2025, 6, 30)).await;
    let old = before.unit.unwrap();
    assert_eq!(old.name, "Phường Đông Thọ");
    assert_eq!(old.parent_code, "380");
    assert_eq!(old.valid_to, date(2025, 7, 1));
    let after = get(units, code("14758"), date(2025, 7, 1)).await;
    let new = after.unit.unwrap();
    assert_eq!(new.name, "Phường Hàm Rồng");
    assert_eq!(new.parent_code, "38");
    assert_ne!(new.id, old.id, "a reused code is a different unit");
    assert_eq!(new.valid_from, date(2025, 7, 1));
    assert_eq!(after.versions.len(), 1);

    let lineage = units
        .list_lineage(req(pb::ListLineageRequest {
            unit: code("14758"),
            as_of: date(2025, 7, 1),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lineage.unit.as_ref().unwrap().id, new.id);
    let predecessors: Vec<(String, String, i32)> = lineage
        .predecessors
        .iter()
        .map(|l| {
            let u = l.unit.as_ref().expect("the predecessor as it was");
            (u.code.clone(), u.name.clone(), l.part)
        })
        .collect();
    assert!(
        predecessors.contains(&(
            "14758".to_owned(),
            "Phường Đông Thọ".to_owned(),
            pb::LineagePart::Partial as i32
        )),
        "{predecessors:?}"
    );
    assert!(
        predecessors.contains(&(
            "14755".to_owned(),
            "Phường Hàm Rồng".to_owned(),
            pb::LineagePart::Full as i32
        )),
        "{predecessors:?}"
    );
    let from_old = lineage
        .predecessors
        .iter()
        .find(|l| l.unit.as_ref().unwrap().code == "14758")
        .unwrap();
    assert_eq!(from_old.unit.as_ref().unwrap().id, old.id);
    assert_eq!(from_old.change, pb::ChangeKind::Split as i32);
    assert_eq!(from_old.effective_date, date(2025, 7, 1));
    assert!(from_old.source.contains("1686"), "{}", from_old.source);

    // The old unit, by id: its last facts, and where it went.
    let by_id = get(units, id(old.id), None).await;
    assert_eq!(by_id.unit.unwrap().name, "Phường Đông Thọ");
    let old_lineage = units
        .list_lineage(req(pb::ListLineageRequest {
            unit: id(old.id),
            as_of: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let went_to: HashSet<i64> = old_lineage
        .successors
        .iter()
        .map(|l| l.unit.as_ref().unwrap().id)
        .collect();
    assert!(
        went_to.contains(&new.id) && went_to.len() == 2,
        "{went_to:?}"
    );
    // Its ancestors as of its last version: TP Thanh Hóa, then the province.
    let ancestors = units
        .list_ancestors(req(pb::ListAncestorsRequest {
            unit: id(old.id),
            as_of: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let chain: Vec<&str> = ancestors
        .ancestors
        .iter()
        .map(|u| u.code.as_str())
        .collect();
    assert_eq!(chain, ["380", "38"]);
}

async fn loading_the_history_twice_changes_nothing(env: Env) {
    let units = &env.units;
    let first = reference::load_thanh_hoa(units).await.unwrap();
    assert!(
        first > 1000,
        "the history records over a thousand changes, got {first}"
    );
    let written = footprint(units).await;
    let last = units.repo().last_sequence().await.unwrap();
    let old_14758 = get(units, code("14758"), date(2025, 6, 30)).await;
    let new_14758 = get(units, code("14758"), date(2025, 7, 1)).await;

    let mut watcher = watch(units, last).await;
    let again = reference::load_thanh_hoa(units).await.unwrap();
    assert_eq!(again, first, "a reload answers with the first summaries");
    assert_eq!(footprint(units).await, written);
    assert_eq!(units.repo().changes_after(last, 10).await.unwrap(), vec![]);
    assert_eq!(
        get(units, code("14758"), date(2025, 6, 30)).await,
        old_14758
    );
    assert_eq!(get(units, code("14758"), date(2025, 7, 1)).await, new_14758);
    assert_eq!(
        count(units, "38", pb::UnitLevel::Commune, date(2025, 7, 1)).await,
        166
    );

    // The watcher saw nothing of the reload: the next change it hears is the
    // next import's first.
    let response = import(units, {
        let mut r = small_province(date(2026, 1, 1));
        r.request_id = "after-reload".to_owned();
        r
    })
    .await
    .unwrap();
    assert_eq!(next_change(&mut watcher).await.sequence, last + 1);
    assert_eq!(response.last_sequence, last + 6);
}

// ---------------------------------------------------------------------------
// The raw GSO list of 01/03/2025 and its two ghost rows

fn raw_gso_request() -> pb::ImportSnapshotRequest {
    let rows = reference::parse_rows(include_str!(
        "../../../data/units/gso-2025-03-01-thanh-hoa-raw.csv"
    ))
    .expect("the raw list parses");
    pb::ImportSnapshotRequest {
        effective_date: date(2025, 1, 1),
        rows,
        source: "GSO 01/03/2025 as published".to_owned(),
        ..Default::default()
    }
}

/// Where the ghost rows 16387 and 16411 sit in the raw list.
fn ghost_indexes(request: &pb::ImportSnapshotRequest) -> [usize; 2] {
    let at = |c: &str| {
        request
            .rows
            .iter()
            .position(|r| r.code == c)
            .unwrap_or_else(|| panic!("{c} is in the raw list"))
    };
    [at("16387"), at("16411")]
}

async fn the_raw_gso_list_is_refused_for_its_two_ghosts(env: Env) {
    let units = &env.units;
    load_history_until(units, "2024-05-01").await;
    let before = footprint(units).await;

    let request = raw_gso_request();
    let [a, b] = ghost_indexes(&request);
    let status = import(units, request)
        .await
        .expect_err("the ghosts are refused");
    assert_eq!(
        bad_fields(&status),
        vec![format!("rows[{a}].code"), format!("rows[{b}].code")]
    );
    let violations = field_violations(&status);
    assert!(violations[0].1.contains("16387"), "{violations:?}");
    assert!(violations[1].1.contains("16411"), "{violations:?}");
    assert_eq!(footprint(units).await, before, "nothing is written");
    assert_eq!(
        count(units, "38", pb::UnitLevel::Commune, date(2025, 1, 1)).await,
        558
    );
}

async fn the_raw_gso_list_is_reported_with_validate_only(env: Env) {
    let units = &env.units;
    load_history_until(units, "2024-05-01").await;
    let before = footprint(units).await;

    let mut request = raw_gso_request();
    request.validate_only = true;
    let [a, b] = ghost_indexes(&request);
    let response = import(units, request).await.expect("a dry run answers");
    assert!(!response.applied);
    assert_eq!((response.import_id, response.last_sequence), (0, 0));
    let rejected: Vec<(&str, i32, &str, &str)> = response
        .rejected
        .iter()
        .map(|r| (r.list.as_str(), r.index, r.code.as_str(), r.field.as_str()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            ("rows", a as i32, "16387", "code"),
            ("rows", b as i32, "16411", "code"),
        ]
    );
    // What the snapshot would do without them: Đông Sơn (405) and 11
    // communes end; its communes move into TP Thanh Hóa.
    let summary = response.summary.unwrap();
    assert_eq!(summary.established, 0);
    assert_eq!(summary.dissolved, 12);
    assert_eq!(footprint(units).await, before, "a dry run writes nothing");
}

async fn the_raw_gso_list_applies_partially_without_its_ghosts(env: Env) {
    let units = &env.units;
    load_history_until(units, "2024-05-01").await;

    let mut request = raw_gso_request();
    request.partial = true;
    let response = import(units, request)
        .await
        .expect("a partial import applies");
    assert!(response.applied);
    assert!(response.import_id > 0 && response.last_sequence > 0);
    let codes: Vec<&str> = response.rejected.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, ["16387", "16411"]);
    assert_eq!(
        response.last_sequence,
        units.repo().last_sequence().await.unwrap()
    );

    let march = date(2025, 3, 1);
    assert_eq!(count(units, "38", pb::UnitLevel::District, march).await, 26);
    assert_eq!(count(units, "38", pb::UnitLevel::Commune, march).await, 547);
    // Exactly the cleaned list the history ships for 2025-01-01.
    let cleaned = reference::THANH_HOA_HISTORY
        .iter()
        .find(|s| s.effective_date == "2025-01-01")
        .unwrap();
    let expected: BTreeSet<(String, String, i32, String)> = reference::parse_rows(cleaned.rows)
        .unwrap()
        .into_iter()
        .filter(|r| !r.parent_code.is_empty())
        .map(|r| (r.code, r.name, r.kind, r.parent_code))
        .collect();
    let mut got: BTreeSet<(String, String, i32, String)> = BTreeSet::new();
    for level in [pb::UnitLevel::District, pb::UnitLevel::Commune] {
        for u in list_all(units, "38", level, march, 1000).await {
            got.insert((u.code, u.name, u.kind, u.parent_code));
        }
    }
    assert_eq!(got, expected);
    for ghost in ["16387", "16411"] {
        let status = get_err(
            units,
            pb::GetUnitRequest {
                unit: code(ghost),
                as_of: march,
            },
        )
        .await;
        assert_eq!(status.code(), Code::NotFound, "{ghost}: {status:?}");
    }
}

async fn a_partial_import_leaves_units_whose_rows_it_refused(env: Env) {
    let units = &env.units;
    import(units, small_province(date(2024, 1, 1)))
        .await
        .unwrap();
    let an = get(units, code("30001"), date(2024, 1, 1))
        .await
        .unit
        .unwrap();

    // 30001's row comes with an unknown kind, 30002 is renamed.
    let mut request = small_province(date(2025, 1, 1));
    request.rows[3].kind = pb::UnitKind::Unspecified as i32;
    request.rows[4].name = "Xã Bình Mới".to_owned();
    request.partial = true;
    let response = import(units, request).await.unwrap();
    assert!(response.applied);
    let rejected: Vec<(&str, &str)> = response
        .rejected
        .iter()
        .map(|r| (r.code.as_str(), r.field.as_str()))
        .collect();
    assert_eq!(rejected, [("30001", "kind")]);
    let summary = response.summary.unwrap();
    assert_eq!((summary.renamed, summary.dissolved), (1, 0));

    let still = get(units, code("30001"), date(2025, 1, 1))
        .await
        .unit
        .unwrap();
    assert_eq!(still, an, "the refused row's unit is left as it was");
    assert_eq!(
        get(units, code("30002"), date(2025, 1, 1))
            .await
            .unit
            .unwrap()
            .name,
        "Xã Bình Mới"
    );
}

// ---------------------------------------------------------------------------
// Retries, ordering and bad input

async fn a_retry_with_the_same_request_id_gets_the_first_answer(env: Env) {
    let units = &env.units;
    let mut request = small_province(date(2024, 1, 1));
    request.request_id = "import-90-2024".to_owned();
    let first = import(units, request.clone()).await.unwrap();
    assert!(first.applied);
    assert_eq!(first.summary.as_ref().unwrap().established, 6);
    let written = footprint(units).await;

    let retry = import(units, request.clone()).await.unwrap();
    assert_eq!(retry, first);
    assert_eq!(footprint(units).await, written, "a retry writes nothing");
    // Through the loader's path too, and as a dry run.
    assert_eq!(
        units
            .import_snapshot_as(&request, "someone else")
            .await
            .unwrap(),
        first
    );
    request.validate_only = true;
    assert_eq!(import(units, request).await.unwrap(), first);
    assert_eq!(footprint(units).await, written);
}

async fn a_request_id_cannot_be_reused_for_another_snapshot(env: Env) {
    let units = &env.units;
    let mut request = small_province(date(2024, 1, 1));
    request.request_id = "import-90".to_owned();
    import(units, request.clone()).await.unwrap();
    let written = footprint(units).await;

    request.rows[3].name = "Xã An Mới".to_owned();
    let status = import(units, request).await.expect_err("another snapshot");
    assert_eq!(bad_fields(&status), ["request_id"]);
    assert_eq!(footprint(units).await, written);
}

async fn imports_must_come_in_date_order(env: Env) {
    let units = &env.units;
    import(units, small_province(date(2024, 1, 1)))
        .await
        .unwrap();
    let written = footprint(units).await;

    let mut earlier = small_province(date(2023, 6, 1));
    earlier.rows[3].name = "Xã An Cũ".to_owned();
    let status = import(units, earlier).await.expect_err("out of order");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(footprint(units).await, written);

    // On the same date, a change is out of order too; the same snapshot
    // again changes nothing and is accepted.
    let mut same_day = small_province(date(2024, 1, 1));
    same_day.rows[3].name = "Xã An Cũ".to_owned();
    let status = import(units, same_day)
        .await
        .expect_err("same date, a change");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(footprint(units).await, written);
    let again = import(units, small_province(date(2024, 1, 1)))
        .await
        .unwrap();
    assert_eq!(again.last_sequence, 0);
    assert_eq!(again.summary.unwrap().unchanged, 6);

    // Later is fine.
    let mut later = small_province(date(2025, 1, 1));
    later.rows[3].name = "Xã An Mới".to_owned();
    assert_eq!(
        import(units, later).await.unwrap().summary.unwrap().renamed,
        1
    );
}

async fn a_late_import_cannot_end_a_unit_changed_later_elsewhere(env: Env) {
    let units = &env.units;
    import(units, small_province(date(2022, 1, 1)))
        .await
        .unwrap();
    let neighbour = |effective, rows: Vec<pb::SnapshotRow>, lineage| pb::ImportSnapshotRequest {
        effective_date: effective,
        rows: [vec![row("91", "Tỉnh Bên", pb::UnitKind::Tinh, "")], rows].concat(),
        lineage,
        source: "conformance".to_owned(),
        ..Default::default()
    };
    import(
        units,
        neighbour(
            date(2022, 1, 1),
            vec![row("31001", "Xã Cũ", pb::UnitKind::Xa, "91")],
            vec![],
        ),
    )
    .await
    .unwrap();
    // Province 90 renames 30001 in 2024…
    let mut renamed = small_province(date(2024, 1, 1));
    renamed.rows[3].name = "Xã An Mới".to_owned();
    import(units, renamed).await.unwrap();
    let written = footprint(units).await;

    // …then province 91 says 30001 went wholly into one of its communes in
    // 2023: that would end facts recorded from 2024.
    let late = neighbour(
        date(2023, 6, 1),
        vec![
            row("31001", "Xã Cũ", pb::UnitKind::Xa, "91"),
            row("31002", "Xã Mới", pb::UnitKind::Xa, "91"),
        ],
        vec![pb::LineageRow {
            old_code: "30001".to_owned(),
            new_code: "31002".to_owned(),
            part: pb::LineagePart::Full as i32,
        }],
    );
    let status = import(units, late.clone()).await.expect_err("out of order");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("30001"), "{status:?}");
    assert_eq!(footprint(units).await, written);

    // Giving only part of itself, 30001 goes on in province 90.
    let mut partial = late;
    partial.lineage[0].part = pb::LineagePart::Partial as i32;
    let response = import(units, partial).await.unwrap();
    assert_eq!(response.summary.unwrap().split, 1);
    let an = get(units, code("30001"), date(2025, 1, 1))
        .await
        .unit
        .unwrap();
    assert_eq!((an.name.as_str(), an.valid_to), ("Xã An Mới", None));
}

async fn malformed_requests_name_the_bad_field(env: Env) {
    let units = &env.units;
    import(units, small_province(date(2024, 1, 1)))
        .await
        .unwrap();
    let written = footprint(units).await;

    let status = import(units, small_province(None)).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["effective_date"]);
    let status = import(units, small_province(date(2024, 13, 1)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["effective_date"]);
    let status = import(units, small_province(date(2025, 2, 30)))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["effective_date"]);
    let mut empty = small_province(date(2025, 1, 1));
    empty.rows.clear();
    let status = import(units, empty).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["rows"]);
    // Bad rows name themselves.
    let mut bad_rows = small_province(date(2025, 1, 1));
    bad_rows.rows[2].parent_code = "999".to_owned();
    bad_rows.rows[4].code = "3000".to_owned();
    let status = import(units, bad_rows).await.unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["rows[4].code", "rows[2].parent_code", "rows[5].parent_code"]
    );
    assert_eq!(footprint(units).await, written, "nothing is written");

    let status = get_err(
        units,
        pb::GetUnitRequest {
            unit: code("3a"),
            as_of: date(2024, 1, 1),
        },
    )
    .await;
    assert_eq!(bad_fields(&status), ["unit.code"]);
    let status = get_err(
        units,
        pb::GetUnitRequest {
            unit: code("90"),
            as_of: date(2024, 13, 1),
        },
    )
    .await;
    assert_eq!(bad_fields(&status), ["as_of"]);
    let status = get_err(
        units,
        pb::GetUnitRequest {
            unit: None,
            as_of: None,
        },
    )
    .await;
    assert_eq!(bad_fields(&status), ["unit"]);
    let status = get_err(
        units,
        pb::GetUnitRequest {
            unit: id(-4),
            as_of: None,
        },
    )
    .await;
    assert_eq!(bad_fields(&status), ["unit.id"]);

    use pb::UnitLevel::{Commune, District};
    let status = page(units, "90", Commune, date(2024, 1, 1), -1, String::new())
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["page_size"]);
    let status = page(units, "9x", Commune, date(2024, 1, 1), 10, String::new())
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["parent_code"]);
    let status = units
        .list_units(req(pb::ListUnitsRequest {
            parent_code: "90".to_owned(),
            level: 7,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["level"]);

    // A page token works only for the query it came from.
    let first = page(units, "90", Commune, date(2024, 1, 1), 1, String::new())
        .await
        .unwrap();
    assert!(!first.next_page_token.is_empty());
    let token = first.next_page_token;
    let second = page(units, "90", Commune, date(2024, 1, 1), 1, token.clone())
        .await
        .unwrap();
    assert_eq!(second.units[0].code, "30002");
    for (parent, level, as_of) in [
        ("90", District, date(2024, 1, 1)),
        ("900", Commune, date(2024, 1, 1)),
        ("90", Commune, date(2024, 6, 1)),
    ] {
        let status = page(units, parent, level, as_of, 1, token.clone())
            .await
            .unwrap_err();
        assert_eq!(
            bad_fields(&status),
            ["page_token"],
            "{parent} {level:?} {as_of:?}"
        );
    }
    let status = page(
        units,
        "90",
        Commune,
        date(2024, 1, 1),
        1,
        "not a token!".to_owned(),
    )
    .await
    .unwrap_err();
    assert_eq!(bad_fields(&status), ["page_token"]);
    // Several problems at once are all named.
    let status = page(
        units,
        "9x",
        Commune,
        date(2024, 1, 1),
        -5,
        "junk".to_owned(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        bad_fields(&status),
        ["parent_code", "page_size", "page_token"]
    );

    let status = units
        .watch_unit_changes(req(pb::WatchUnitChangesRequest { after_sequence: -1 }))
        .await
        .err()
        .expect("a negative sequence is refused");
    assert_eq!(bad_fields(&status), ["after_sequence"]);
}

async fn unknown_codes_and_ids_are_not_found(env: Env) {
    let units = &env.units;
    import(units, small_province(date(2024, 1, 1)))
        .await
        .unwrap();
    for request in [
        pb::GetUnitRequest {
            unit: code("91"),
            as_of: date(2024, 1, 1),
        },
        // 30001 did not exist yet.
        pb::GetUnitRequest {
            unit: code("30001"),
            as_of: date(2023, 12, 31),
        },
        pb::GetUnitRequest {
            unit: id(9999),
            as_of: None,
        },
        pb::GetUnitRequest {
            unit: id(1),
            as_of: date(2023, 12, 31),
        },
    ] {
        let status = get_err(units, request.clone()).await;
        assert_eq!(status.code(), Code::NotFound, "{request:?}: {status:?}");
    }
    let status = page(
        units,
        "902",
        pb::UnitLevel::Unspecified,
        date(2024, 1, 1),
        10,
        String::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = units
        .list_lineage(req(pb::ListLineageRequest {
            unit: code("30009"),
            as_of: date(2024, 1, 1),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = units
        .list_ancestors(req(pb::ListAncestorsRequest {
            unit: code("30009"),
            as_of: date(2024, 1, 1),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn calls_need_a_caller_and_imports_an_admin(env: Env) {
    let units = &env.units;
    let status = units
        .get_unit(Request::new(pb::GetUnitRequest {
            unit: code("90"),
            as_of: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let before = footprint(units).await;
    let reader = caller(&[Role::Reader], NATIONAL_SCOPE);
    let status = units
        .import_snapshot(as_caller(reader, small_province(date(2024, 1, 1))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let other_province = caller(&[Role::Admin], "38");
    let status = units
        .import_snapshot(as_caller(other_province, small_province(date(2024, 1, 1))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(footprint(units).await, before);

    let own_province = caller(&[Role::Admin], "90");
    let response = units
        .import_snapshot(as_caller(own_province, small_province(date(2024, 1, 1))))
        .await
        .unwrap()
        .into_inner();
    assert!(response.applied);
}

// ---------------------------------------------------------------------------
// The change feed

async fn a_watch_from_zero_streams_every_change_in_order(env: Env) {
    let units = &env.units;
    reference::load_thanh_hoa(units).await.unwrap();
    let last = units.repo().last_sequence().await.unwrap();
    assert!(last > 1000, "more than one batch of 500");

    let stored = units.repo().changes_after(0, last + 10).await.unwrap();
    assert_eq!(stored.len() as i64, last);
    let mut stream = watch(units, 0).await;
    let mut previous: Option<pb::UnitChange> = None;
    for expected in &stored {
        let change = next_change(&mut stream).await;
        assert_eq!(change.sequence, expected.seq);
        assert_eq!(change.unit_id, expected.unit_id);
        assert_eq!(change.code, expected.code);
        if let Some(p) = &previous {
            assert!(change.sequence > p.sequence, "sequences strictly increase");
            assert!(change.import_id >= p.import_id, "imports in commit order");
            assert!(
                ymd(&change.effective_date) >= ymd(&p.effective_date),
                "one province's changes come in date order"
            );
        }
        previous = Some(change);
    }
    let last_change = previous.unwrap();
    assert_eq!(last_change.sequence, last);
    assert_eq!(last_change.effective_date, date(2025, 7, 1));
    // Sequences have no gaps: 1..=last.
    assert_eq!(stored.first().unwrap().seq, 1);
}

async fn a_watcher_hears_an_import_committed_after_it_started(env: Env) {
    let units = &env.units;
    import(units, small_province(date(2024, 1, 1)))
        .await
        .unwrap();
    let last = units.repo().last_sequence().await.unwrap();
    assert_eq!(last, 6);

    let mut watcher = watch(units, last).await;
    // Let the stream reach its wait before the import commits.
    let waiting = tokio::spawn(async move { next_change(&mut watcher).await });
    tokio::task::yield_now().await;

    let mut request = small_province(date(2025, 1, 1));
    request.rows[5].parent_code = "900".to_owned(); // 30003 moves
    request.rows[1].name = "Huyện Một Mới".to_owned();
    let response = import(units, request).await.unwrap();
    assert_eq!(response.last_sequence, last + 2);

    let first = waiting.await.expect("the watcher task");
    assert_eq!(first.sequence, last + 1);
    assert_eq!(first.change, pb::ChangeKind::Rename as i32);
    assert_eq!(
        (first.previous_name.as_str(), first.name.as_str()),
        ("Huyện Một", "Huyện Một Mới")
    );
    assert_eq!(first.effective_date, date(2025, 1, 1));
    assert_eq!(first.import_id, response.import_id);
    assert_eq!(first.source, "conformance");
}

async fn a_watch_resumed_after_n_yields_exactly_the_changes_after_n(env: Env) {
    let units = &env.units;
    import(units, small_province(date(2024, 1, 1)))
        .await
        .unwrap();
    let mut request = small_province(date(2025, 1, 1));
    request.rows[3].name = "Xã An Mới".to_owned();
    request.rows[4].name = "Xã Bình Mới".to_owned();
    request.rows.truncate(5); // 30003 dissolves
    import(units, request).await.unwrap();
    let seqs: Vec<i64> = units
        .repo()
        .changes_after(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<i64>>());

    for n in [0, 3, 6, 8, 9] {
        // Every change so far, including those of earlier rounds.
        let all = units.repo().changes_after(0, 100).await.unwrap();
        let mut stream = watch(units, n).await;
        for expected in &all[n as usize..] {
            let change = next_change(&mut stream).await;
            assert_eq!(change.sequence, expected.seq, "after {n}");
        }
        // Nothing else is queued: the next thing heard is the next import.
        let mut request = small_province(date(2026 + n as i32, 1, 1));
        request.rows[3].name = format!("Xã An {n}");
        request.rows[4].name = "Xã Bình Mới".to_owned();
        request.rows.truncate(5);
        let response = import(units, request).await.unwrap();
        let change = next_change(&mut stream).await;
        assert_eq!(change.sequence, response.last_sequence, "after {n}");
        assert_eq!(change.name, format!("Xã An {n}"));
    }
}
