//! The planner on small hand-built histories: every identity rule and every
//! rejection, with the exact rows, ids and changes it produces.

use time::Date;
use time::macros::date;

use super::*;
use crate::domain::{Change, Kind, Part};

/// When the hand-built history starts, and when the snapshots take effect.
const START: Date = date!(2020 - 01 - 01);
const ON: Date = date!(2022 - 01 - 01);
/// The first id a new unit gets over [`history`].
const NEXT: i64 = 8;

fn version(id: i64, code: &str, name: &str, kind: Kind, parent: Option<i64>) -> Version {
    Version {
        unit_id: id,
        code: code.to_owned(),
        name: name.to_owned(),
        kind,
        parent_id: parent,
        valid_from: START,
        valid_to: None,
    }
}

/// Province 38 with two districts and four communes, all current since
/// [`START`]:
///
/// ```text
/// 1 38 Tỉnh Thanh Hóa
/// ├─ 2 380 Thành phố Thanh Hóa
/// │  ├─ 4 14755 Phường Hàm Rồng
/// │  └─ 5 14758 Phường Đông Thọ
/// └─ 3 395 Huyện Thọ Xuân
///    ├─ 6 15499 Xã Xuân Hồng
///    └─ 7 15502 Xã Xuân Trường
/// ```
fn history() -> Vec<Version> {
    vec![
        version(1, "38", "Tỉnh Thanh Hóa", Kind::Tinh, None),
        version(2, "380", "Thành phố Thanh Hóa", Kind::ThanhPho, Some(1)),
        version(3, "395", "Huyện Thọ Xuân", Kind::Huyen, Some(1)),
        version(4, "14755", "Phường Hàm Rồng", Kind::Phuong, Some(2)),
        version(5, "14758", "Phường Đông Thọ", Kind::Phuong, Some(2)),
        version(6, "15499", "Xã Xuân Hồng", Kind::Xa, Some(3)),
        version(7, "15502", "Xã Xuân Trường", Kind::Xa, Some(3)),
    ]
}

fn row(code: &str, name: &str, kind: Kind, parent: &str) -> RowIn {
    RowIn {
        code: code.to_owned(),
        name: name.to_owned(),
        kind: Some(kind),
        parent_code: parent.to_owned(),
    }
}

/// The snapshot that matches [`history`] exactly; indexes 0..=6 in the order
/// of the tree above.
fn rows() -> Vec<RowIn> {
    vec![
        row("38", "Tỉnh Thanh Hóa", Kind::Tinh, ""),
        row("380", "Thành phố Thanh Hóa", Kind::ThanhPho, "38"),
        row("395", "Huyện Thọ Xuân", Kind::Huyen, "38"),
        row("14755", "Phường Hàm Rồng", Kind::Phuong, "380"),
        row("14758", "Phường Đông Thọ", Kind::Phuong, "380"),
        row("15499", "Xã Xuân Hồng", Kind::Xa, "395"),
        row("15502", "Xã Xuân Trường", Kind::Xa, "395"),
    ]
}

/// [`rows`] without the rows of `codes`.
fn rows_without(codes: &[&str]) -> Vec<RowIn> {
    rows()
        .into_iter()
        .filter(|r| !codes.contains(&r.code.as_str()))
        .collect()
}

fn lineage(old: &str, new: &str, part: Part) -> LineageIn {
    LineageIn {
        old_code: old.to_owned(),
        new_code: new.to_owned(),
        part: Some(part),
    }
}

fn facts(id: i64, code: &str, name: &str, kind: Kind, parent: Option<i64>) -> Facts {
    Facts {
        unit_id: id,
        code: code.to_owned(),
        name: name.to_owned(),
        kind,
        parent_id: parent,
    }
}

/// The facts of unit `id` in [`history`].
fn was(id: i64) -> Facts {
    let v = history()
        .into_iter()
        .find(|v| v.unit_id == id)
        .expect("a unit of the history");
    facts(v.unit_id, &v.code, &v.name, v.kind, v.parent_id)
}

fn change(change: Change, facts: Facts, previous: Option<Facts>) -> ChangeRecord {
    ChangeRecord {
        change,
        facts,
        previous,
        related_unit_id: None,
        part: None,
    }
}

fn establish(facts: Facts) -> ChangeRecord {
    change(Change::Establish, facts, None)
}

fn dissolve(id: i64) -> ChangeRecord {
    change(Change::Dissolve, was(id), None)
}

/// A merge (full) or split (partial) of unit `old` of [`history`] into `new`.
fn went_into(old: i64, new: i64, part: Part) -> ChangeRecord {
    ChangeRecord {
        change: match part {
            Part::Full => Change::Merge,
            Part::Partial => Change::Split,
        },
        facts: was(old),
        previous: None,
        related_unit_id: Some(new),
        part: Some(part),
    }
}

fn link(old: i64, new: i64, part: Part) -> Link {
    Link {
        old_unit_id: old,
        new_unit_id: new,
        part,
    }
}

/// (list, index, field) of each rejection, in the order reported.
fn rejections(plan: &Plan) -> Vec<(List, usize, &'static str)> {
    plan.rejected
        .iter()
        .map(|r| (r.list, r.index, r.field))
        .collect()
}

fn plan_on_history(rows: &[RowIn], lineage: &[LineageIn]) -> Plan {
    plan(&history(), ON, rows, lineage, NEXT)
}

#[test]
fn an_unchanged_snapshot_plans_nothing() {
    let p = plan_on_history(&rows(), &[]);
    assert_eq!(p.rejected, vec![]);
    assert!(p.is_noop());
    assert_eq!(p.changes, vec![]);
    assert_eq!(p.unchanged, 7);
    assert_eq!(p.provinces, vec!["38".to_owned()]);
}

#[test]
fn a_first_import_establishes_every_row_parents_first() {
    // Listed children first: ids still go to parents first, then by row.
    let rows = vec![
        row("15499", "Xã Xuân Hồng", Kind::Xa, "395"),
        row("395", "Huyện Thọ Xuân", Kind::Huyen, "38"),
        row("14755", "Phường Hàm Rồng", Kind::Phuong, "38"),
        row("38", "Tỉnh Thanh Hóa", Kind::Tinh, ""),
    ];
    let p = plan(&[], ON, &rows, &[], 10);
    assert_eq!(p.rejected, vec![]);
    let expected = vec![
        facts(10, "38", "Tỉnh Thanh Hóa", Kind::Tinh, None),
        facts(11, "395", "Huyện Thọ Xuân", Kind::Huyen, Some(10)),
        facts(12, "15499", "Xã Xuân Hồng", Kind::Xa, Some(11)),
        facts(13, "14755", "Phường Hàm Rồng", Kind::Phuong, Some(10)),
    ];
    assert_eq!(p.established, expected);
    assert_eq!(
        p.changes,
        expected.into_iter().map(establish).collect::<Vec<_>>()
    );
    assert_eq!((p.updated.len(), p.ended.len(), p.links.len()), (0, 0, 0));
}

#[test]
fn a_code_listed_twice_is_rejected_at_its_second_row() {
    let mut rows = rows();
    rows.push(row("14755", "Phường Khác", Kind::Phuong, "380"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(rejections(&p), vec![(List::Rows, 7, "code")]);
    assert_eq!(p.rejected[0].code, "14755");
    assert!(
        p.rejected[0].reason.contains("first at rows[3]"),
        "{}",
        p.rejected[0].reason
    );
    assert_eq!(p.rejected[0].path(), "rows[7].code");
    // The first listing stands.
    assert!(p.is_noop());
    assert_eq!(p.unchanged, 7);
}

#[test]
fn a_row_under_a_parent_not_in_the_snapshot_is_rejected() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "396"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(rejections(&p), vec![(List::Rows, 7, "parent_code")]);
    assert_eq!(p.rejected[0].reason, "parent 396 is not in the snapshot");
}

#[test]
fn a_rejected_parent_takes_its_children_with_it() {
    let mut rows = rows();
    rows[2].name = String::new();
    let p = plan_on_history(&rows, &[]);
    assert_eq!(
        rejections(&p),
        vec![
            (List::Rows, 2, "name"),
            (List::Rows, 5, "parent_code"),
            (List::Rows, 6, "parent_code"),
        ]
    );
    assert_eq!(p.rejected[1].reason, "parent 395 was rejected");
}

#[test]
fn a_rejection_cascades_through_every_tier() {
    // The province itself is rejected: everything under it goes too.
    let mut rows = rows();
    rows[0].parent_code = "01".to_owned();
    let p = plan_on_history(&rows, &[]);
    let mut got = rejections(&p);
    got.sort_by_key(|&(_, i, _)| i);
    assert_eq!(
        got,
        vec![
            (List::Rows, 0, "parent_code"),
            (List::Rows, 1, "parent_code"),
            (List::Rows, 2, "parent_code"),
            (List::Rows, 3, "parent_code"),
            (List::Rows, 4, "parent_code"),
            (List::Rows, 5, "parent_code"),
            (List::Rows, 6, "parent_code"),
        ]
    );
    assert_eq!(p.provinces, Vec::<String>::new());
    assert!(p.is_noop());
}

#[test]
fn units_whose_rows_are_rejected_are_left_as_they_are() {
    // A partial import applies the plan of the accepted rows: a unit whose
    // row it could not take is still listed, so it must not end.
    let mut rows = rows();
    rows[2].name = String::new(); // 395 and, with it, 15499 and 15502
    rows[4].kind = None; // 14758
    let p = plan_on_history(&rows, &[]);
    assert_eq!(
        rejections(&p),
        vec![
            (List::Rows, 2, "name"),
            (List::Rows, 4, "kind"),
            (List::Rows, 5, "parent_code"),
            (List::Rows, 6, "parent_code"),
        ]
    );
    assert_eq!(p.ended, vec![]);
    assert_eq!(p.changes, vec![]);
    assert!(p.is_noop());
}

#[test]
fn a_unit_whose_row_is_rejected_still_ends_with_its_parent() {
    // 395 is gone; its communes' rows are rejected (their parent is not in
    // the snapshot), and they cannot stay under a unit that no longer exists.
    let p = plan_on_history(&rows_without(&["395"]), &[]);
    assert_eq!(
        rejections(&p),
        vec![
            (List::Rows, 4, "parent_code"),
            (List::Rows, 5, "parent_code")
        ]
    );
    assert_eq!(p.rejected[0].reason, "parent 395 is not in the snapshot");
    assert_eq!(p.changes, vec![dissolve(3), dissolve(6), dissolve(7)]);
    assert_eq!(p.ended, vec![was(3), was(6), was(7)]);
}

#[test]
fn a_rejected_row_does_not_offer_its_unit_for_a_recode() {
    // 15502's row is rejected; another row with its name, kind and parent
    // is a new unit (and needs lineage), not 15502 under a new code.
    let mut rows = rows();
    rows[6].kind = None;
    rows.push(row("15510", "Xã Xuân Trường", Kind::Xa, "395"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(
        rejections(&p),
        vec![(List::Rows, 6, "kind"), (List::Rows, 7, "code")]
    );
    assert!(p.is_noop());
}

#[test]
fn a_unit_sits_only_under_a_higher_tier() {
    let mut rows = rows();
    rows.push(row("396", "Huyện Mới", Kind::Huyen, "380")); // district under district
    rows.push(row("15505", "Xã Con", Kind::Xa, "15499")); // commune under commune
    rows.push(row("40", "Tỉnh Nghệ An", Kind::Tinh, "38")); // province with a parent
    rows.push(row("397", "Huyện Mồ Côi", Kind::Huyen, "")); // district without one
    let p = plan_on_history(&rows, &[]);
    assert_eq!(
        rejections(&p),
        vec![
            (List::Rows, 9, "parent_code"),
            (List::Rows, 10, "parent_code"),
            (List::Rows, 7, "parent_code"),
            (List::Rows, 8, "parent_code"),
        ]
    );
    assert_eq!(
        p.rejected[2].reason,
        "a district cannot sit under 380 (district)"
    );
    assert_eq!(
        p.rejected[3].reason,
        "a commune cannot sit under 15499 (commune)"
    );
}

#[test]
fn a_commune_may_sit_directly_under_its_province() {
    let mut rows = rows_without(&["395", "15499", "15502"]);
    rows.push(row("15499", "Xã Xuân Hồng", Kind::Xa, "38"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(p.rejected, vec![]);
    assert_eq!(
        p.changes,
        vec![
            change(
                Change::Reparent,
                facts(6, "15499", "Xã Xuân Hồng", Kind::Xa, Some(1)),
                Some(was(6))
            ),
            dissolve(3),
            dissolve(7),
        ]
    );
}

#[test]
fn an_unknown_kind_is_rejected() {
    let mut rows = rows();
    rows.push(RowIn {
        code: "15505".to_owned(),
        name: "Làng Mới".to_owned(),
        kind: None,
        parent_code: "395".to_owned(),
    });
    let p = plan_on_history(&rows, &[]);
    assert_eq!(rejections(&p), vec![(List::Rows, 7, "kind")]);
    assert_eq!(p.rejected[0].code, "15505");
}

#[test]
fn a_code_must_have_its_levels_length_and_only_digits() {
    let mut rows = rows();
    rows.push(row("1475", "Phường Ngắn", Kind::Phuong, "380"));
    rows.push(row("3960", "Huyện Dài", Kind::Huyen, "38"));
    rows.push(row("380", "Tỉnh Ba Số", Kind::Tinh, ""));
    rows.push(row("1476a", "Phường Chữ", Kind::Phuong, "380"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(
        rejections(&p),
        vec![
            (List::Rows, 7, "code"),
            (List::Rows, 8, "code"),
            (List::Rows, 9, "code"),
            (List::Rows, 10, "code"),
        ]
    );
    assert_eq!(
        p.rejected[0].reason,
        "\"1475\" is not a commune code (5 digits)"
    );
    // Nothing else moved: the real 380 is untouched.
    assert!(p.is_noop());
}

#[test]
fn an_empty_name_is_rejected() {
    let mut rows = rows();
    rows.push(row("14760", "", Kind::Phuong, "380"));
    rows.push(row("14761", "   ", Kind::Phuong, "380"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(
        rejections(&p),
        vec![(List::Rows, 7, "name"), (List::Rows, 8, "name")]
    );
    assert_eq!(p.rejected[0].reason, "name is empty");
}

/// [`history`] where 15502 Xã Xuân Trường ended on 2021-01-01.
fn history_with_15502_retired() -> Vec<Version> {
    let mut h = history();
    h[6].valid_to = Some(date!(2021 - 01 - 01));
    h
}

#[test]
fn a_retired_unit_cannot_come_back_without_lineage() {
    let p = plan(&history_with_15502_retired(), ON, &rows(), &[], NEXT);
    assert_eq!(rejections(&p), vec![(List::Rows, 6, "code")]);
    assert!(
        p.rejected[0].reason.contains("no longer exists")
            && p.rejected[0].reason.contains("2021-01-01"),
        "{}",
        p.rejected[0].reason
    );
    assert!(p.is_noop());
}

#[test]
fn a_unit_recoded_back_to_a_code_it_held_before_is_a_recode() {
    // 15502 became 15510 on 2021-01-01; now GSO gives it 15502 again.
    let mut h = history();
    h[6].valid_to = Some(date!(2021 - 01 - 01));
    h.push(Version {
        code: "15510".to_owned(),
        valid_from: date!(2021 - 01 - 01),
        valid_to: None,
        ..h[6].clone()
    });
    let p = plan(&h, ON, &rows(), &[], NEXT);
    assert_eq!(p.rejected, vec![]);
    let now = facts(7, "15502", "Xã Xuân Trường", Kind::Xa, Some(3));
    let before = facts(7, "15510", "Xã Xuân Trường", Kind::Xa, Some(3));
    assert_eq!(p.changes, vec![change(Change::Recode, now, Some(before))]);

    // Under another parent it is no recode: then it is the retired pair
    // coming back, and refused as such.
    let mut rows = rows();
    rows[6].parent_code = "380".to_owned();
    let p = plan(&h, ON, &rows, &[], NEXT);
    assert_eq!(rejections(&p), vec![(List::Rows, 6, "code")]);
    assert!(
        p.rejected[0].reason.contains("no longer exists"),
        "{}",
        p.rejected[0].reason
    );
}

#[test]
fn a_retired_code_and_name_come_back_with_lineage_as_a_new_unit() {
    let p = plan(
        &history_with_15502_retired(),
        ON,
        &rows(),
        &[lineage("15499", "15502", Part::Partial)],
        NEXT,
    );
    assert_eq!(p.rejected, vec![]);
    let new = facts(NEXT, "15502", "Xã Xuân Trường", Kind::Xa, Some(3));
    assert_eq!(p.established, vec![new.clone()]);
    assert_eq!(p.links, vec![link(6, NEXT, Part::Partial)]);
    assert_eq!(
        p.changes,
        vec![establish(new), went_into(6, NEXT, Part::Partial)]
    );
    // 15499 gave part of itself and goes on.
    assert_eq!(p.ended, vec![]);
    assert_eq!(p.unchanged, 6);
}

#[test]
fn two_units_of_one_name_and_kind_under_one_parent_are_a_duplicate() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Hồng", Kind::Xa, "395"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(rejections(&p), vec![(List::Rows, 7, "name")]);
    assert!(
        p.rejected[0].reason.contains("duplicates rows[5] (15499)"),
        "{}",
        p.rejected[0].reason
    );
}

#[test]
fn the_same_name_of_another_kind_or_under_another_parent_is_no_duplicate() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Hồng", Kind::ThiTran, "395"));
    rows.push(row("14760", "Xã Xuân Hồng", Kind::Xa, "380"));
    let p = plan_on_history(
        &rows,
        &[
            lineage("15499", "15505", Part::Partial),
            lineage("14755", "14760", Part::Partial),
        ],
    );
    assert_eq!(p.rejected, vec![]);
    assert_eq!(p.established.len(), 2);
}

#[test]
fn a_duplicate_district_takes_its_children_with_it() {
    let mut rows = rows();
    rows.push(row("396", "Huyện Thọ Xuân", Kind::Huyen, "38"));
    rows.push(row("15510", "Xã Con", Kind::Xa, "396"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(
        rejections(&p),
        vec![(List::Rows, 7, "name"), (List::Rows, 8, "parent_code")]
    );
    assert_eq!(p.rejected[1].reason, "parent 396 was rejected");
    assert!(p.is_noop());
}

#[test]
fn a_code_held_outside_the_snapshots_provinces_cannot_be_taken() {
    let h = history_with_nghe_an();
    let mut rows = rows();
    rows.push(row("16681", "Xã Tri Lễ", Kind::Xa, "395"));
    let p = plan(&h, ON, &rows, &[], 11);
    assert_eq!(rejections(&p), vec![(List::Rows, 7, "code")]);
    assert!(
        p.rejected[0].reason.contains("outside the provinces"),
        "{}",
        p.rejected[0].reason
    );
    // Nghệ An is not this snapshot's business.
    assert!(p.is_noop());
}

/// [`history`] with province 40: district 412 (9) and commune 16681 (10).
fn history_with_nghe_an() -> Vec<Version> {
    let mut h = history();
    h.push(version(8, "40", "Tỉnh Nghệ An", Kind::Tinh, None));
    h.push(version(9, "412", "Huyện Quế Phong", Kind::Huyen, Some(8)));
    h.push(version(10, "16681", "Xã Tri Lễ", Kind::Xa, Some(9)));
    h
}

#[test]
fn a_unit_of_another_province_giving_part_of_itself_goes_on_there() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "395"));
    let p = plan(
        &history_with_nghe_an(),
        ON,
        &rows,
        &[lineage("16681", "15505", Part::Partial)],
        11,
    );
    assert_eq!(p.rejected, vec![]);
    let new = facts(11, "15505", "Xã Xuân Mới", Kind::Xa, Some(3));
    assert_eq!(p.links, vec![link(10, 11, Part::Partial)]);
    let tri_le = facts(10, "16681", "Xã Tri Lễ", Kind::Xa, Some(9));
    assert_eq!(
        p.changes,
        vec![
            establish(new),
            ChangeRecord {
                change: Change::Split,
                facts: tri_le,
                previous: None,
                related_unit_id: Some(11),
                part: Some(Part::Partial),
            }
        ]
    );
    assert_eq!(p.ended, vec![], "Xã Tri Lễ still exists in Nghệ An");
}

#[test]
fn a_unit_of_another_province_going_wholly_into_a_new_one_ends() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "395"));
    let p = plan(
        &history_with_nghe_an(),
        ON,
        &rows,
        &[lineage("16681", "15505", Part::Full)],
        11,
    );
    assert_eq!(p.rejected, vec![]);
    assert_eq!(p.links, vec![link(10, 11, Part::Full)]);
    assert_eq!(p.count(Change::Merge), 1);
    assert_eq!(
        p.ended,
        vec![facts(10, "16681", "Xã Tri Lễ", Kind::Xa, Some(9))]
    );
}

#[test]
fn a_unit_named_in_lineage_can_move_to_another_province() {
    let mut rows = rows();
    rows.push(row("16681", "Xã Tri Lễ", Kind::Xa, "395"));
    let p = plan(
        &history_with_nghe_an(),
        ON,
        &rows,
        &[lineage("16681", "16681", Part::Full)],
        11,
    );
    assert_eq!(p.rejected, vec![]);
    let moved = facts(10, "16681", "Xã Tri Lễ", Kind::Xa, Some(3));
    assert_eq!(
        p.changes,
        vec![change(
            Change::Reparent,
            moved,
            Some(facts(10, "16681", "Xã Tri Lễ", Kind::Xa, Some(9)))
        )]
    );
    assert_eq!(p.ended, vec![]);
}

#[test]
fn a_unit_leaving_with_a_new_code_and_the_same_name_kind_and_parent_is_recoded() {
    let mut rows = rows_without(&["15502"]);
    rows.push(row("15510", "Xã Xuân Trường", Kind::Xa, "395"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(p.rejected, vec![]);
    let now = facts(7, "15510", "Xã Xuân Trường", Kind::Xa, Some(3));
    assert_eq!(p.updated, vec![now.clone()]);
    assert_eq!(p.changes, vec![change(Change::Recode, now, Some(was(7)))]);
    assert_eq!((p.established.len(), p.ended.len()), (0, 0));
    assert_eq!(p.unchanged, 6);
    assert_eq!(p.count(Change::Recode), 1);
}

#[test]
fn a_recode_under_a_reparented_parent_follows_the_parent() {
    // A district and one of its communes recoded together: the commune's
    // parent is still the same unit (3), so it is a recode too.
    let mut rows = rows_without(&["395", "15499", "15502"]);
    rows.push(row("396", "Huyện Thọ Xuân", Kind::Huyen, "38"));
    rows.push(row("15499", "Xã Xuân Hồng", Kind::Xa, "396"));
    rows.push(row("15510", "Xã Xuân Trường", Kind::Xa, "396"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(p.rejected, vec![]);
    assert_eq!(
        p.changes,
        vec![
            change(
                Change::Recode,
                facts(3, "396", "Huyện Thọ Xuân", Kind::Huyen, Some(1)),
                Some(was(3))
            ),
            change(
                Change::Recode,
                facts(7, "15510", "Xã Xuân Trường", Kind::Xa, Some(3)),
                Some(was(7))
            ),
        ]
    );
    assert_eq!(p.unchanged, 5);
}

#[test]
fn renames_reclassifications_and_moves_keep_the_unit() {
    let mut rows = rows();
    rows[3].name = "Phường Hàm Rồng Mới".to_owned(); // rename
    rows[5].parent_code = "380".to_owned(); // reparent
    rows[6].kind = Some(Kind::ThiTran); // reclassify
    let p = plan_on_history(&rows, &[]);
    assert_eq!(p.rejected, vec![]);
    let renamed = facts(4, "14755", "Phường Hàm Rồng Mới", Kind::Phuong, Some(2));
    let moved = facts(6, "15499", "Xã Xuân Hồng", Kind::Xa, Some(2));
    let reclassified = facts(7, "15502", "Xã Xuân Trường", Kind::ThiTran, Some(3));
    assert_eq!(
        p.changes,
        vec![
            change(Change::Rename, renamed.clone(), Some(was(4))),
            change(Change::Reparent, moved.clone(), Some(was(6))),
            change(Change::Reclassify, reclassified.clone(), Some(was(7))),
        ]
    );
    assert_eq!(p.updated, vec![renamed, moved, reclassified]);
    assert_eq!((p.established.len(), p.ended.len()), (0, 0));
    assert_eq!(p.unchanged, 4);
}

#[test]
fn one_unit_can_be_renamed_reclassified_and_moved_at_once() {
    let mut rows = rows();
    rows[6] = row("15502", "Thị trấn Xuân Trường", Kind::ThiTran, "380");
    let p = plan_on_history(&rows, &[]);
    let now = facts(7, "15502", "Thị trấn Xuân Trường", Kind::ThiTran, Some(2));
    assert_eq!(
        p.changes,
        vec![
            change(Change::Rename, now.clone(), Some(was(7))),
            change(Change::Reclassify, now.clone(), Some(was(7))),
            change(Change::Reparent, now.clone(), Some(was(7))),
        ]
    );
    assert_eq!(p.updated, vec![now]);
}

#[test]
fn units_going_wholly_into_a_new_one_merge() {
    let mut rows = rows_without(&["14755", "14758"]);
    rows.push(row("14760", "Phường Hạc Thành", Kind::Phuong, "380"));
    let p = plan_on_history(
        &rows,
        &[
            lineage("14755", "14760", Part::Full),
            lineage("14758", "14760", Part::Full),
        ],
    );
    assert_eq!(p.rejected, vec![]);
    let new = facts(NEXT, "14760", "Phường Hạc Thành", Kind::Phuong, Some(2));
    assert_eq!(p.established, vec![new.clone()]);
    assert_eq!(
        p.links,
        vec![link(4, NEXT, Part::Full), link(5, NEXT, Part::Full)]
    );
    assert_eq!(
        p.changes,
        vec![
            establish(new),
            went_into(4, NEXT, Part::Full),
            went_into(5, NEXT, Part::Full),
        ]
    );
    assert_eq!(p.ended, vec![was(4), was(5)]);
    assert_eq!(p.count(Change::Dissolve), 0);
}

#[test]
fn a_unit_giving_part_of_itself_to_a_new_one_splits_and_goes_on() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "395"));
    let p = plan_on_history(&rows, &[lineage("15499", "15505", Part::Partial)]);
    assert_eq!(p.rejected, vec![]);
    let new = facts(NEXT, "15505", "Xã Xuân Mới", Kind::Xa, Some(3));
    assert_eq!(p.established, vec![new.clone()]);
    assert_eq!(p.links, vec![link(6, NEXT, Part::Partial)]);
    assert_eq!(
        p.changes,
        vec![establish(new), went_into(6, NEXT, Part::Partial)]
    );
    assert_eq!(p.ended, vec![]);
    assert_eq!(p.unchanged, 7);
}

#[test]
fn a_unit_divided_between_new_ones_splits_into_each_and_ends() {
    let mut rows = rows_without(&["15499"]);
    rows.push(row("15505", "Xã Xuân Bắc", Kind::Xa, "395"));
    rows.push(row("15506", "Xã Xuân Nam", Kind::Xa, "395"));
    let p = plan_on_history(
        &rows,
        &[
            lineage("15499", "15505", Part::Partial),
            lineage("15499", "15506", Part::Partial),
        ],
    );
    assert_eq!(p.rejected, vec![]);
    assert_eq!(
        p.links,
        vec![
            link(6, NEXT, Part::Partial),
            link(6, NEXT + 1, Part::Partial)
        ]
    );
    assert_eq!(
        p.changes[2..],
        [
            went_into(6, NEXT, Part::Partial),
            went_into(6, NEXT + 1, Part::Partial)
        ]
    );
    assert_eq!(p.ended, vec![was(6)]);
    assert_eq!(p.count(Change::Dissolve), 0);
}

#[test]
fn a_code_reused_by_a_new_unit_ends_its_old_holder() {
    // Like 14758 on 2025-07-01: the new Phường Hàm Rồng takes the code of the
    // old Phường Đông Thọ, which went partly into it and partly elsewhere.
    let mut rows = rows_without(&["14755", "14758"]);
    rows.push(row("14758", "Phường Hàm Rồng", Kind::Phuong, "380"));
    rows.push(row("14760", "Phường Đông Tiến", Kind::Phuong, "380"));
    let p = plan_on_history(
        &rows,
        &[
            lineage("14755", "14758", Part::Full),
            lineage("14758", "14758", Part::Partial),
            lineage("14758", "14760", Part::Partial),
        ],
    );
    assert_eq!(p.rejected, vec![]);
    let ham_rong = facts(NEXT, "14758", "Phường Hàm Rồng", Kind::Phuong, Some(2));
    let dong_tien = facts(NEXT + 1, "14760", "Phường Đông Tiến", Kind::Phuong, Some(2));
    assert_eq!(p.established, vec![ham_rong.clone(), dong_tien.clone()]);
    assert_eq!(
        p.links,
        vec![
            link(4, NEXT, Part::Full),
            link(5, NEXT, Part::Partial),
            link(5, NEXT + 1, Part::Partial),
        ]
    );
    assert_eq!(
        p.changes,
        vec![
            establish(ham_rong),
            establish(dong_tien),
            went_into(4, NEXT, Part::Full),
            went_into(5, NEXT, Part::Partial),
            went_into(5, NEXT + 1, Part::Partial),
        ]
    );
    assert_eq!(p.ended, vec![was(4), was(5)]);
    assert_eq!(p.updated, vec![]);
}

#[test]
fn the_unnamed_old_holder_of_a_reused_code_dissolves_or_is_recoded() {
    // 14755 goes wholly into a new unit that takes 14758's code; 14758 itself
    // is named nowhere.
    let mut rows = rows_without(&["14755", "14758"]);
    rows.push(row("14758", "Phường Hàm Rồng", Kind::Phuong, "380"));
    let merge = [lineage("14755", "14758", Part::Full)];
    let p = plan_on_history(&rows, &merge);
    assert_eq!(p.rejected, vec![]);
    let new = facts(NEXT, "14758", "Phường Hàm Rồng", Kind::Phuong, Some(2));
    assert_eq!(
        p.changes,
        vec![establish(new), went_into(4, NEXT, Part::Full), dissolve(5)]
    );
    assert_eq!(p.ended, vec![was(4), was(5)]);

    // Listed under a new code with its name, kind and parent, it was recoded.
    rows.push(row("14770", "Phường Đông Thọ", Kind::Phuong, "380"));
    let p = plan_on_history(&rows, &merge);
    assert_eq!(p.rejected, vec![]);
    let recoded = facts(5, "14770", "Phường Đông Thọ", Kind::Phuong, Some(2));
    assert_eq!(
        p.changes,
        vec![
            establish(facts(
                NEXT,
                "14758",
                "Phường Hàm Rồng",
                Kind::Phuong,
                Some(2)
            )),
            change(Change::Recode, recoded.clone(), Some(was(5))),
            went_into(4, NEXT, Part::Full),
        ]
    );
    assert_eq!(p.updated, vec![recoded]);
    assert_eq!(p.ended, vec![was(4)]);
}

#[test]
fn a_unit_whose_only_predecessor_is_itself_wholly_continues() {
    let mut rows = rows();
    rows[4].name = "Phường Đông Thọ Mới".to_owned();
    let p = plan_on_history(&rows, &[lineage("14758", "14758", Part::Full)]);
    assert_eq!(p.rejected, vec![]);
    let now = facts(5, "14758", "Phường Đông Thọ Mới", Kind::Phuong, Some(2));
    assert_eq!(
        p.changes,
        vec![change(Change::Rename, now.clone(), Some(was(5)))]
    );
    assert_eq!(p.updated, vec![now]);
    assert_eq!(
        (p.established.len(), p.links.len(), p.ended.len()),
        (0, 0, 0)
    );

    // Unchanged, it is simply unchanged.
    let p = plan_on_history(&self::rows(), &[lineage("14758", "14758", Part::Full)]);
    assert!(p.is_noop());
    assert_eq!(p.unchanged, 7);
}

#[test]
fn a_unit_whose_code_continues_but_takes_in_another_is_a_new_unit() {
    // 14758 keeps its code and takes in all of 14755: the result is a new
    // unit, not 14758 grown.
    let rows = rows_without(&["14755"]);
    let p = plan_on_history(
        &rows,
        &[
            lineage("14758", "14758", Part::Full),
            lineage("14755", "14758", Part::Full),
        ],
    );
    assert_eq!(p.rejected, vec![]);
    let new = facts(NEXT, "14758", "Phường Đông Thọ", Kind::Phuong, Some(2));
    assert_eq!(p.established, vec![new]);
    assert_eq!(
        p.links,
        vec![link(5, NEXT, Part::Full), link(4, NEXT, Part::Full)]
    );
    assert_eq!(p.ended, vec![was(4), was(5)]);
}

#[test]
fn lineage_from_a_code_nobody_holds_is_rejected() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "395"));
    let p = plan_on_history(&rows, &[lineage("99999", "15505", Part::Partial)]);
    // The link goes, and with it the new unit's only claim to a past.
    assert_eq!(
        rejections(&p),
        vec![(List::Lineage, 0, "old_code"), (List::Rows, 7, "code")]
    );
    assert_eq!(p.rejected[0].code, "15505");
    assert_eq!(p.rejected[0].path(), "lineage[0].old_code");
    assert_eq!(
        p.rejected[0].reason,
        "no unit holds code 99999 on 2022-01-01"
    );
}

#[test]
fn lineage_into_a_code_not_in_the_snapshot_is_rejected() {
    let p = plan_on_history(&rows(), &[lineage("15499", "15505", Part::Partial)]);
    assert_eq!(rejections(&p), vec![(List::Lineage, 0, "new_code")]);
    assert_eq!(
        p.rejected[0].reason,
        "new unit 15505 is not in the snapshot"
    );

    // A successor whose row was rejected is no successor either.
    let mut rows = rows();
    rows.push(row("15505", "", Kind::Xa, "395"));
    let p = plan_on_history(&rows, &[lineage("15499", "15505", Part::Partial)]);
    assert_eq!(
        rejections(&p),
        vec![(List::Rows, 7, "name"), (List::Lineage, 0, "new_code")]
    );
    assert_eq!(p.rejected[1].reason, "new unit 15505 was rejected");
}

#[test]
fn a_predecessor_that_went_wholly_elsewhere_cannot_still_be_listed() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "395"));
    let p = plan_on_history(&rows, &[lineage("15499", "15505", Part::Full)]);
    assert_eq!(
        rejections(&p),
        vec![(List::Lineage, 0, "part"), (List::Rows, 7, "code")]
    );
    assert!(
        p.rejected[0].reason.contains("still listed"),
        "{}",
        p.rejected[0].reason
    );
}

#[test]
fn one_unit_cannot_go_wholly_into_two() {
    let mut rows = rows_without(&["15499"]);
    rows.push(row("15505", "Xã Xuân Bắc", Kind::Xa, "395")); // rows[6]
    rows.push(row("15506", "Xã Xuân Nam", Kind::Xa, "395")); // rows[7]
    let p = plan_on_history(
        &rows,
        &[
            lineage("15499", "15505", Part::Full),
            lineage("15499", "15506", Part::Full),
        ],
    );
    assert_eq!(
        rejections(&p),
        vec![(List::Lineage, 1, "part"), (List::Rows, 7, "code")]
    );
    assert_eq!(p.rejected[0].reason, "15499 already went wholly into 15505");
}

#[test]
fn a_lineage_row_without_a_part_or_listed_twice_is_rejected() {
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "395"));
    let no_part = LineageIn {
        part: None,
        ..lineage("15502", "15505", Part::Partial)
    };
    let p = plan_on_history(
        &rows,
        &[
            no_part,
            lineage("15499", "15505", Part::Partial),
            lineage("15499", "15505", Part::Partial),
        ],
    );
    assert_eq!(
        rejections(&p),
        vec![(List::Lineage, 0, "part"), (List::Lineage, 2, "new_code")]
    );
    // The one good link stands.
    assert_eq!(p.links, vec![link(6, NEXT, Part::Partial)]);
}

#[test]
fn a_new_unit_in_a_recorded_province_needs_lineage() {
    // Like the ghost 16411 Xã Đông Xuân of the GSO list of 01/03/2025: a unit
    // cannot appear out of nothing where the province is already recorded.
    let mut rows = rows();
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "395"));
    let p = plan_on_history(&rows, &[]);
    assert_eq!(rejections(&p), vec![(List::Rows, 7, "code")]);
    assert!(
        p.rejected[0].reason.contains("lineage"),
        "{}",
        p.rejected[0].reason
    );
    assert!(p.is_noop());

    // A retired code with another name is new too.
    let mut rows = self::rows();
    rows[6].name = "Xã Xuân Trường Mới".to_owned();
    let p = plan(&history_with_15502_retired(), ON, &rows, &[], NEXT);
    assert_eq!(rejections(&p), vec![(List::Rows, 6, "code")]);
    assert!(
        p.rejected[0].reason.contains("lineage"),
        "{}",
        p.rejected[0].reason
    );
}

#[test]
fn a_rejected_new_district_takes_its_children_with_it_and_leaves_them_be() {
    let mut rows = rows();
    rows[6].parent_code = "396".to_owned(); // 15502 would move into it
    rows.push(row("396", "Huyện Mới", Kind::Huyen, "38")); // rows[7]
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "396")); // rows[8]
    let p = plan_on_history(&rows, &[]);
    assert_eq!(
        rejections(&p),
        vec![
            (List::Rows, 7, "code"),
            (List::Rows, 6, "parent_code"),
            (List::Rows, 8, "parent_code"),
        ]
    );
    assert_eq!(p.rejected[1].reason, "parent 396 was rejected");
    // 15502 stays where it was.
    assert!(p.is_noop());
    assert_eq!(p.ended, vec![]);
}

#[test]
fn under_a_new_district_with_lineage_existing_units_move_and_new_ones_need_lineage() {
    let mut rows = rows();
    rows[6].parent_code = "396".to_owned();
    rows.push(row("396", "Huyện Mới", Kind::Huyen, "38")); // rows[7]
    rows.push(row("15505", "Xã Xuân Mới", Kind::Xa, "396")); // rows[8]
    let p = plan_on_history(&rows, &[lineage("395", "396", Part::Partial)]);
    assert_eq!(rejections(&p), vec![(List::Rows, 8, "code")]);
    let district = facts(NEXT, "396", "Huyện Mới", Kind::Huyen, Some(1));
    let moved = facts(7, "15502", "Xã Xuân Trường", Kind::Xa, Some(NEXT));
    assert_eq!(
        p.changes,
        vec![
            establish(district.clone()),
            change(Change::Reparent, moved.clone(), Some(was(7))),
            went_into(3, NEXT, Part::Partial),
        ]
    );
    assert_eq!(p.established, vec![district]);
    assert_eq!(p.updated, vec![moved]);
    assert_eq!(p.ended, vec![]);
}

#[test]
fn units_not_listed_under_the_snapshots_provinces_dissolve() {
    let p = plan_on_history(&rows_without(&["395", "15499", "15502"]), &[]);
    assert_eq!(p.rejected, vec![]);
    assert_eq!(p.changes, vec![dissolve(3), dissolve(6), dissolve(7)]);
    assert_eq!(p.ended, vec![was(3), was(6), was(7)]);
    assert_eq!(p.unchanged, 4);
}

#[test]
fn the_history_is_read_as_of_the_snapshots_date() {
    // 15502 was renamed on 2021-01-01; a snapshot listing the new name
    // changes nothing, and the old name no longer counts as a retired pair
    // for anyone else.
    let mut h = history();
    h[6].valid_to = Some(date!(2021 - 01 - 01));
    h.push(Version {
        name: "Thị trấn Xuân Trường".to_owned(),
        kind: Kind::ThiTran,
        valid_from: date!(2021 - 01 - 01),
        valid_to: None,
        ..h[6].clone()
    });
    let mut rows = rows();
    rows[6] = row("15502", "Thị trấn Xuân Trường", Kind::ThiTran, "395");
    let p = plan(&h, ON, &rows, &[], NEXT);
    assert_eq!(p.rejected, vec![]);
    assert!(p.is_noop());

    // Going back to the old name is a rename of the unit holding the code,
    // not a retired unit coming back.
    let p = plan(&h, ON, &self::rows(), &[], NEXT);
    assert_eq!(p.rejected, vec![]);
    assert_eq!(p.count(Change::Rename), 1);
    assert_eq!(p.count(Change::Reclassify), 1);
}
