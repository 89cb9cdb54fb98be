//! Random histories of a small made-up province: snapshots at increasing
//! dates with renames, reclassifications, moves, recodes, removals, additions
//! (with lineage), merges and codes reused over time. After importing them:
//!
//! (a) as of any date — each import date, the day before, between imports
//!     and long after — the province holds exactly the (code, name, kind,
//!     parent code) rows of the snapshot in force on that date;
//! (b) no two versions holding one code overlap in time;
//! (c) each unit's versions follow each other without gap or overlap and
//!     span exactly the unit's [valid_from, valid_to);
//! (d) a unit keeps its id across renames, moves and recodes, and a new unit
//!     (an addition, a merger, a reused code) gets an id never used before.
//!
//! SQLite always; PostgreSQL, with fewer cases, when `CHISO_TEST_DATABASE_URL`
//! is set.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chiso_auth::{Caller, Role, Scope};
use chiso_proto::from_date;
use chiso_proto::units::v1::{self as pb, units_service_server::UnitsService};
use chiso_storage::sqlx::{self, Row};
use chiso_storage::testing::{POSTGRES_ENV, TestDb};
use chiso_units::domain::Kind;
use chiso_units::{MIGRATIONS, Units};
use proptest::prelude::*;
use time::{Date, Duration};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request};

const PROVINCE: &str = "90";
const PROVINCE_NAME: &str = "Tỉnh Thử";
const DISTRICT_CODES: [&str; 6] = ["900", "901", "902", "903", "904", "905"];
const COMMUNE_CODES: [&str; 12] = [
    "30001", "30002", "30003", "30004", "30005", "30006", "30007", "30008", "30009", "30010",
    "30011", "30012",
];
const DISTRICT_NAMES: [&str; 6] = [
    "Huyện Đông",
    "Huyện Tây",
    "Huyện Nam",
    "Huyện Bắc",
    "Huyện Trung",
    "Huyện Thượng",
];
const COMMUNE_NAMES: [&str; 14] = [
    "Xã An",
    "Xã Bình",
    "Xã Cường",
    "Xã Dũng",
    "Xã Đức",
    "Xã Giang",
    "Xã Hà",
    "Xã Khánh",
    "Xã Lâm",
    "Xã Minh",
    "Xã Ninh",
    "Xã Phú",
    "Xã Quang",
    "Xã Sơn",
];
const DISTRICT_KINDS: [Kind; 3] = [Kind::Huyen, Kind::ThiXa, Kind::ThanhPho];
const COMMUNE_KINDS: [Kind; 3] = [Kind::Xa, Kind::Phuong, Kind::ThiTran];

// ---------------------------------------------------------------------------
// The model: a province's units with stable model ids, evolved by operations
// whose parameters proptest draws (and shrinks) as plain numbers.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    /// Model identity: the same across renames, moves and recodes.
    mid: usize,
    code: String,
    name: String,
    kind: Kind,
    /// `None`: directly under the province.
    parent: Option<usize>,
    district: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Rename {
        unit: u8,
        name: u8,
    },
    Reclassify {
        unit: u8,
        kind: u8,
    },
    Move {
        commune: u8,
        to: u8,
    },
    Recode {
        unit: u8,
        code: u8,
    },
    Remove {
        commune: u8,
    },
    RemoveDistrict {
        district: u8,
        to: u8,
    },
    Add {
        district: bool,
        code: u8,
        name: u8,
        kind: u8,
        parent: u8,
        from: u8,
    },
    Merge {
        a: u8,
        b: u8,
        name: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(unit, name)| Op::Rename { unit, name }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(unit, kind)| Op::Reclassify { unit, kind }),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(commune, to)| Op::Move { commune, to }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(unit, code)| Op::Recode { unit, code }),
        2 => any::<u8>().prop_map(|commune| Op::Remove { commune }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(district, to)| Op::RemoveDistrict { district, to }),
        3 => (prop::bool::weighted(0.25), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(district, code, name, kind, parent, from)| Op::Add { district, code, name, kind, parent, from }),
        2 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, name)| Op::Merge { a, b, name }),
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Days after 2019-01-01 of the first snapshot.
    start: u16,
    /// The first snapshot: districts, then communes (code, name, kind, parent).
    districts: Vec<(u8, u8, u8)>,
    communes: Vec<(u8, u8, u8, u8)>,
    /// Later snapshots: days after the previous one, and what changes.
    steps: Vec<(u16, Vec<Op>)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        0u16..2000,
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..=3),
        prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..=7),
        prop::collection::vec((1u16..=400, prop::collection::vec(op(), 1..=8)), 1..=6),
    )
        .prop_map(|(start, districts, communes, steps)| Scenario {
            start,
            districts,
            communes,
            steps,
        })
}

fn pick<T: Copy>(pool: &[T], n: u8) -> T {
    pool[n as usize % pool.len()]
}

/// One snapshot: its date, the units in force from it, and its lineage rows.
#[derive(Debug, Clone)]
struct Snapshot {
    date: Date,
    units: Vec<Unit>,
    lineage: Vec<(String, String, pb::LineagePart)>,
}

impl Snapshot {
    fn code_of(&self, mid: Option<usize>) -> String {
        match mid {
            None => PROVINCE.to_owned(),
            Some(m) => self
                .units
                .iter()
                .find(|u| u.mid == m)
                .expect("a parent in the snapshot")
                .code
                .clone(),
        }
    }

    fn request(&self) -> pb::ImportSnapshotRequest {
        let mut rows = vec![pb::SnapshotRow {
            code: PROVINCE.to_owned(),
            name: PROVINCE_NAME.to_owned(),
            kind: pb::UnitKind::Tinh as i32,
            parent_code: String::new(),
        }];
        for u in &self.units {
            rows.push(pb::SnapshotRow {
                code: u.code.clone(),
                name: u.name.clone(),
                kind: u.kind.to_pb() as i32,
                parent_code: self.code_of(u.parent),
            });
        }
        pb::ImportSnapshotRequest {
            effective_date: Some(from_date(self.date)),
            rows,
            lineage: self
                .lineage
                .iter()
                .map(|(old, new, part)| pb::LineageRow {
                    old_code: old.clone(),
                    new_code: new.clone(),
                    part: *part as i32,
                })
                .collect(),
            source: "property test".to_owned(),
            ..Default::default()
        }
    }

    /// (code, name, kind, parent code) of every unit under the province.
    fn expected(&self) -> BTreeSet<(String, String, i32, String)> {
        self.units
            .iter()
            .map(|u| {
                (
                    u.code.clone(),
                    u.name.clone(),
                    u.kind.to_pb() as i32,
                    self.code_of(u.parent),
                )
            })
            .collect()
    }
}

/// Builds the snapshots of a scenario. Every snapshot is one the importer must
/// accept: codes and names unique, parents present, and every unit with a
/// code not held the day before either a recode (same name, kind and parent,
/// possibly back to a code it held before) or named in lineage rows.
fn snapshots(s: &Scenario) -> Vec<Snapshot> {
    let mut next_mid = 0;
    let mut new_mid = || {
        next_mid += 1;
        next_mid
    };
    let mut units: Vec<Unit> = Vec::new();
    for &(code, name, kind) in &s.districts {
        let (code, name) = (pick(&DISTRICT_CODES, code), pick(&DISTRICT_NAMES, name));
        if units.iter().any(|u| u.code == code || u.name == name) {
            continue;
        }
        units.push(Unit {
            mid: new_mid(),
            code: code.to_owned(),
            name: name.to_owned(),
            kind: pick(&DISTRICT_KINDS, kind),
            parent: None,
            district: true,
        });
    }
    let districts: Vec<usize> = units.iter().map(|u| u.mid).collect();
    for &(code, name, kind, parent) in &s.communes {
        let (code, name) = (pick(&COMMUNE_CODES, code), pick(&COMMUNE_NAMES, name));
        if units.iter().any(|u| u.code == code || u.name == name) {
            continue;
        }
        let parent = parent as usize % (districts.len() + 1);
        units.push(Unit {
            mid: new_mid(),
            code: code.to_owned(),
            name: name.to_owned(),
            kind: pick(&COMMUNE_KINDS, kind),
            parent: districts.get(parent).copied(),
            district: false,
        });
    }
    let first = date_after(time::macros::date!(2019 - 01 - 01), s.start);
    let mut out = vec![Snapshot {
        date: first,
        units,
        lineage: Vec::new(),
    }];
    for (gap, ops) in &s.steps {
        let prev = out.last().expect("a previous snapshot");
        let prev_codes: HashSet<String> = prev.units.iter().map(|u| u.code.clone()).collect();
        let mut cur = prev.units.clone();
        let mut lineage = Vec::new();
        // Recoded units must keep name, kind and parent, and must not be
        // anyone's predecessor: nothing else may touch them.
        let mut frozen: HashSet<usize> = HashSet::new();
        let mut added: HashSet<usize> = HashSet::new();
        let mut predecessors: HashSet<usize> = HashSet::new();
        let name_free = |cur: &[Unit], name: &str| cur.iter().all(|u| u.name != name);
        let code_free = |cur: &[Unit], code: &str| cur.iter().all(|u| u.code != code);
        for op in ops {
            let communes: Vec<usize> = cur.iter().filter(|u| !u.district).map(|u| u.mid).collect();
            let districts: Vec<usize> = cur.iter().filter(|u| u.district).map(|u| u.mid).collect();
            let at = |cur: &[Unit], mid: usize| cur.iter().position(|u| u.mid == mid).unwrap();
            match *op {
                Op::Rename { unit, name } => {
                    if cur.is_empty() {
                        continue;
                    }
                    let i = unit as usize % cur.len();
                    let pool: &[&str] = if cur[i].district {
                        &DISTRICT_NAMES
                    } else {
                        &COMMUNE_NAMES
                    };
                    let name = pick(pool, name);
                    if frozen.contains(&cur[i].mid) || !name_free(&cur, name) {
                        continue;
                    }
                    cur[i].name = name.to_owned();
                }
                Op::Reclassify { unit, kind } => {
                    if cur.is_empty() {
                        continue;
                    }
                    let i = unit as usize % cur.len();
                    if frozen.contains(&cur[i].mid) {
                        continue;
                    }
                    let pool: &[Kind] = if cur[i].district {
                        &DISTRICT_KINDS
                    } else {
                        &COMMUNE_KINDS
                    };
                    cur[i].kind = pick(pool, kind);
                }
                Op::Move { commune, to } => {
                    if communes.is_empty() {
                        continue;
                    }
                    let mid = pick(&communes, commune);
                    if frozen.contains(&mid) {
                        continue;
                    }
                    let to = to as usize % (districts.len() + 1);
                    let i = at(&cur, mid);
                    cur[i].parent = districts.get(to).copied();
                }
                Op::Recode { unit, code } => {
                    if cur.is_empty() {
                        continue;
                    }
                    let i = unit as usize % cur.len();
                    let u = &cur[i];
                    let pool: &[&str] = if u.district {
                        &DISTRICT_CODES
                    } else {
                        &COMMUNE_CODES
                    };
                    let code = pick(pool, code);
                    let untouched = prev.units.contains(u);
                    if !untouched
                        || predecessors.contains(&u.mid)
                        || prev_codes.contains(code)
                        || !code_free(&cur, code)
                    {
                        continue;
                    }
                    frozen.insert(u.mid);
                    cur[i].code = code.to_owned();
                }
                Op::Remove { commune } => {
                    if communes.is_empty() {
                        continue;
                    }
                    let mid = pick(&communes, commune);
                    if frozen.contains(&mid) || added.contains(&mid) {
                        continue;
                    }
                    cur.retain(|u| u.mid != mid);
                }
                Op::RemoveDistrict { district, to } => {
                    if districts.is_empty() {
                        continue;
                    }
                    let mid = pick(&districts, district);
                    let children: Vec<usize> = cur
                        .iter()
                        .filter(|u| u.parent == Some(mid))
                        .map(|u| u.mid)
                        .collect();
                    if frozen.contains(&mid)
                        || added.contains(&mid)
                        || children.iter().any(|c| frozen.contains(c))
                    {
                        continue;
                    }
                    let others: Vec<usize> =
                        districts.iter().copied().filter(|&d| d != mid).collect();
                    let to = others.get(to as usize % (others.len() + 1)).copied();
                    for u in cur.iter_mut().filter(|u| u.parent == Some(mid)) {
                        u.parent = to;
                    }
                    cur.retain(|u| u.mid != mid);
                }
                Op::Add {
                    district,
                    code,
                    name,
                    kind,
                    parent,
                    from,
                } => {
                    let (codes, names, kinds): (&[&str], &[&str], &[Kind]) = if district {
                        (&DISTRICT_CODES, &DISTRICT_NAMES, &DISTRICT_KINDS)
                    } else {
                        (&COMMUNE_CODES, &COMMUNE_NAMES, &COMMUNE_KINDS)
                    };
                    let (code, name) = (pick(codes, code), pick(names, name));
                    if !code_free(&cur, code) || !name_free(&cur, name) {
                        continue;
                    }
                    // Formed from part of a unit of its tier that existed
                    // the day before (the province when there is none).
                    let sources: Vec<&Unit> = prev
                        .units
                        .iter()
                        .filter(|u| u.district == district && !frozen.contains(&u.mid))
                        .collect();
                    let from_code = match sources.get(from as usize % sources.len().max(1)) {
                        Some(u) => {
                            predecessors.insert(u.mid);
                            u.code.clone()
                        }
                        None => PROVINCE.to_owned(),
                    };
                    let mid = new_mid();
                    added.insert(mid);
                    cur.push(Unit {
                        mid,
                        code: code.to_owned(),
                        name: name.to_owned(),
                        kind: pick(kinds, kind),
                        parent: if district {
                            None
                        } else {
                            districts
                                .get(parent as usize % (districts.len() + 1))
                                .copied()
                        },
                        district,
                    });
                    lineage.push((from_code, code.to_owned(), pb::LineagePart::Partial));
                }
                Op::Merge { a, b, name } => {
                    // Two communes of the day before go wholly into a new one
                    // that takes the first one's code.
                    let olds: Vec<usize> = communes
                        .iter()
                        .copied()
                        .filter(|m| !frozen.contains(m) && !added.contains(m))
                        .collect();
                    if olds.len() < 2 {
                        continue;
                    }
                    let a = pick(&olds, a);
                    let b = pick(&olds, b);
                    if a == b {
                        continue;
                    }
                    let (ua, ub) = (cur[at(&cur, a)].clone(), cur[at(&cur, b)].clone());
                    cur.retain(|u| u.mid != a && u.mid != b);
                    let name = pick(&COMMUNE_NAMES, name);
                    if !name_free(&cur, name) {
                        // Put them back: the merger does not happen.
                        cur.push(ua);
                        cur.push(ub);
                        continue;
                    }
                    predecessors.insert(a);
                    predecessors.insert(b);
                    let mid = new_mid();
                    added.insert(mid);
                    lineage.push((ua.code.clone(), ua.code.clone(), pb::LineagePart::Full));
                    lineage.push((ub.code.clone(), ua.code.clone(), pb::LineagePart::Full));
                    cur.push(Unit {
                        mid,
                        code: ua.code.clone(),
                        name: name.to_owned(),
                        kind: ua.kind,
                        parent: ua.parent,
                        district: false,
                    });
                }
            }
        }
        // Districts before communes, then by code: the order GSO lists them.
        cur.sort_by(|x, y| (!x.district, &x.code).cmp(&(!y.district, &y.code)));
        let date = date_after(prev.date, *gap);
        out.push(Snapshot {
            date,
            units: cur,
            lineage,
        });
    }
    out
}

fn date_after(d: Date, days: u16) -> Date {
    d + Duration::days(i64::from(days))
}

// ---------------------------------------------------------------------------
// Running a scenario against the service

fn req<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(Caller {
        subject: "property-test".to_owned(),
        roles: [Role::Admin].into_iter().collect(),
        scope: Scope::National,
    });
    request
}

async fn listed(units: &Units, as_of: Date) -> Option<BTreeSet<(String, String, i32, String)>> {
    let mut all = BTreeSet::new();
    for level in [pb::UnitLevel::District, pb::UnitLevel::Commune] {
        let response = units
            .list_units(req(pb::ListUnitsRequest {
                parent_code: PROVINCE.to_owned(),
                level: level as i32,
                as_of: Some(from_date(as_of)),
                page_size: 1000,
                page_token: String::new(),
            }))
            .await;
        let page = match response {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return None,
            Err(s) => panic!("ListUnits as of {as_of}: {s:?}"),
        };
        assert!(page.next_page_token.is_empty());
        assert_eq!(page.total_size as usize, page.units.len());
        for u in page.units {
            assert!(
                all.insert((u.code, u.name, u.kind, u.parent_code)),
                "listed twice"
            );
        }
    }
    Some(all)
}

/// Checks (a) as of `as_of`: `expected` is `None` before the first import.
async fn check_as_of(units: &Units, as_of: Date, expected: Option<&Snapshot>) {
    let got = listed(units, as_of).await;
    match expected {
        None => assert_eq!(got, None, "nothing exists on {as_of}"),
        Some(s) => {
            assert_eq!(
                got.as_ref(),
                Some(&s.expected()),
                "as of {as_of}, the snapshot of {} is in force",
                s.date
            );
            // The direct children agree with the parent codes.
            let children = units
                .list_units(req(pb::ListUnitsRequest {
                    parent_code: PROVINCE.to_owned(),
                    level: 0,
                    as_of: Some(from_date(as_of)),
                    page_size: 1000,
                    page_token: String::new(),
                }))
                .await
                .unwrap()
                .into_inner();
            let direct: BTreeSet<String> = children.units.into_iter().map(|u| u.code).collect();
            let expected_direct: BTreeSet<String> = s
                .units
                .iter()
                .filter(|u| u.parent.is_none())
                .map(|u| u.code.clone())
                .collect();
            assert_eq!(direct, expected_direct, "children of {PROVINCE} on {as_of}");
        }
    }
}

type Interval = (String, String);

fn overlaps(a: &Interval, b: &Interval) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Checks (b) and (c) on the stored tables.
async fn check_stored_intervals(units: &Units) {
    const OPEN: &str = "9999-12-31";
    let pool = units.repo().db().pool();
    let versions = sqlx::query("SELECT unit_id, code, valid_from, valid_to FROM unit_versions")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut by_code: HashMap<String, Vec<(i64, Interval)>> = HashMap::new();
    let mut by_unit: BTreeMap<i64, Vec<Interval>> = BTreeMap::new();
    for row in &versions {
        let unit: i64 = row.get(0);
        let code: String = row.get(1);
        let from: String = row.get(2);
        let to: Option<String> = row.get(3);
        let interval = (from, to.unwrap_or_else(|| OPEN.to_owned()));
        assert!(interval.0 < interval.1, "an empty version: {interval:?}");
        by_code
            .entry(code)
            .or_default()
            .push((unit, interval.clone()));
        by_unit.entry(unit).or_default().push(interval);
    }
    // (b) one holder per code per day.
    for (code, held) in &by_code {
        for (i, (u1, a)) in held.iter().enumerate() {
            for (u2, b) in &held[i + 1..] {
                assert!(
                    !overlaps(a, b),
                    "code {code} is held by units {u1} {a:?} and {u2} {b:?} at once"
                );
            }
        }
    }
    // (c) versions tile the unit's lifetime.
    let lifetimes = sqlx::query("SELECT id, valid_from, valid_to FROM units")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(lifetimes.len(), by_unit.len(), "every unit has versions");
    for row in &lifetimes {
        let id: i64 = row.get(0);
        let from: String = row.get(1);
        let to: String = row
            .get::<Option<String>, _>(2)
            .unwrap_or_else(|| OPEN.to_owned());
        let mut own = by_unit.remove(&id).expect("versions of the unit");
        own.sort();
        assert_eq!(own[0].0, from, "unit {id}'s first version starts with it");
        assert_eq!(
            own[own.len() - 1].1,
            to,
            "unit {id}'s last version ends with it"
        );
        for pair in own.windows(2) {
            assert_eq!(
                pair[0].1, pair[1].0,
                "unit {id}'s versions neither overlap nor leave a gap: {own:?}"
            );
        }
    }
}

async fn run(scenario: &Scenario, db: TestDb) {
    db.db.migrate(&MIGRATIONS).await.expect("migrations");
    let shutdown = CancellationToken::new();
    let units = Units::new(db.db.clone(), shutdown.clone());
    let snapshots = snapshots(scenario);

    // Model id → unit id, and back.
    let mut ids: HashMap<usize, i64> = HashMap::new();
    let mut owners: HashMap<i64, usize> = HashMap::new();
    for s in &snapshots {
        let response = units
            .import_snapshot(req(s.request()))
            .await
            .unwrap_or_else(|e| panic!("the snapshot of {} is refused: {e:?}\n{s:#?}", s.date))
            .into_inner();
        assert!(response.applied, "{response:?}");
        assert_eq!(response.rejected, vec![], "{s:#?}");
        // (d) identities.
        for u in &s.units {
            let got = units
                .get_unit(req(pb::GetUnitRequest {
                    unit: Some(pb::UnitRef {
                        r#ref: Some(pb::unit_ref::Ref::Code(u.code.clone())),
                    }),
                    as_of: Some(from_date(s.date)),
                }))
                .await
                .unwrap()
                .into_inner()
                .unit
                .unwrap();
            let id = *ids.entry(u.mid).or_insert(got.id);
            assert_eq!(
                got.id, id,
                "{} {} keeps its id on {}",
                u.code, u.name, s.date
            );
            let owner = *owners.entry(got.id).or_insert(u.mid);
            assert_eq!(owner, u.mid, "id {} was another unit's", got.id);
        }
    }

    // (a) as of each date, the day before, between imports and long after.
    check_as_of(&units, snapshots[0].date.previous_day().unwrap(), None).await;
    for (k, s) in snapshots.iter().enumerate() {
        check_as_of(&units, s.date, Some(s)).await;
        let next = snapshots.get(k + 1).map(|n| n.date);
        let until = next.unwrap_or(s.date + Duration::days(3650));
        let middle = s.date + (until - s.date) / 2;
        check_as_of(&units, middle, Some(s)).await;
        check_as_of(&units, until.previous_day().unwrap(), Some(s)).await;
    }
    let last = snapshots.last().unwrap();
    check_as_of(&units, last.date + Duration::days(3650), Some(last)).await;

    check_stored_intervals(&units).await;

    // The change feed numbers every change once.
    let changes = units.repo().changes_after(0, 100_000).await.unwrap();
    let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=changes.len() as i64).collect::<Vec<_>>());
    shutdown.cancel();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_keeps_every_snapshot_in_force_on_its_dates(s in scenario()) {
        runtime().block_on(async {
            run(&s, TestDb::sqlite().await.expect("a SQLite test database")).await;
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn postgres_keeps_every_snapshot_in_force_on_its_dates(s in scenario()) {
        if std::env::var_os(POSTGRES_ENV).is_none() {
            eprintln!("postgres property test not run: {POSTGRES_ENV} is not set");
            return Ok(());
        }
        runtime().block_on(async {
            let db = TestDb::postgres()
                .await
                .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set, but no test database could be created there: {e}"))
                .expect("the variable is set");
            run(&s, db).await;
        });
    }
}

/// The generator itself: its snapshots are well formed, and over many
/// scenarios every kind of operation happens.
#[test]
fn the_generator_covers_every_operation() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for _ in 0..200 {
        let s = scenario().new_tree(&mut runner).unwrap().current();
        let snaps = snapshots(&s);
        for pair in snaps.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            assert!(before.date < after.date);
            let old: HashMap<usize, &Unit> = before.units.iter().map(|u| (u.mid, u)).collect();
            for u in &after.units {
                let codes = after.units.iter().filter(|v| v.code == u.code).count();
                let names = after.units.iter().filter(|v| v.name == u.name).count();
                assert_eq!((codes, names), (1, 1), "codes and names are unique");
                match old.get(&u.mid) {
                    None if after
                        .lineage
                        .iter()
                        .any(|l| l.1 == u.code && l.2 == pb::LineagePart::Full) =>
                    {
                        seen.insert("merge");
                    }
                    None => {
                        seen.insert("add");
                    }
                    Some(o) => {
                        if o.code != u.code {
                            seen.insert("recode");
                        }
                        if o.name != u.name {
                            seen.insert("rename");
                        }
                        if o.kind != u.kind {
                            seen.insert("reclassify");
                        }
                        if o.parent != u.parent {
                            seen.insert("move");
                        }
                    }
                }
            }
            if before
                .units
                .iter()
                .any(|u| after.units.iter().all(|v| v.mid != u.mid))
            {
                seen.insert("removal");
            }
            if after
                .units
                .iter()
                .any(|u| !old.contains_key(&u.mid) && before.units.iter().any(|o| o.code == u.code))
            {
                seen.insert("code taken by a new unit");
            }
        }
        // A code used again later by a unit of another name; a unit given
        // back a code it held before.
        let mut holders: HashMap<&str, HashSet<&str>> = HashMap::new();
        let mut codes_of: HashMap<usize, Vec<&str>> = HashMap::new();
        for snap in &snaps {
            for u in &snap.units {
                holders.entry(&u.code).or_default().insert(&u.name);
                let codes = codes_of.entry(u.mid).or_default();
                if codes.last() != Some(&u.code.as_str()) {
                    codes.push(&u.code);
                }
            }
        }
        if holders.values().any(|names| names.len() > 1) {
            seen.insert("code reused for another name");
        }
        if codes_of.values().any(|codes| {
            let distinct: HashSet<&&str> = codes.iter().collect();
            distinct.len() < codes.len()
        }) {
            seen.insert("recode back");
        }
    }
    for kind in [
        "add",
        "recode",
        "rename",
        "reclassify",
        "move",
        "removal",
        "merge",
        "code taken by a new unit",
        "code reused for another name",
        "recode back",
    ] {
        assert!(seen.contains(kind), "no scenario has a {kind}: {seen:?}");
    }
}
