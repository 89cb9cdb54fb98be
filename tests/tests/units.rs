//! The units service from outside, through the gRPC API of a running
//! `chiso up` with the shipped Thanh Hóa history.

use std::time::Duration;

use chiso_auth::Role;
use chiso_proto::units::v1 as pb;
use chiso_proto::{from_date, google::r#type::Date};
use chiso_tests::TestApp;
use tonic::Code;

fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

fn code(c: &str) -> Option<pb::UnitRef> {
    Some(pb::UnitRef {
        r#ref: Some(pb::unit_ref::Ref::Code(c.to_owned())),
    })
}

fn list(parent: &str, level: pb::UnitLevel, as_of: Option<Date>) -> pb::ListUnitsRequest {
    pb::ListUnitsRequest {
        parent_code: parent.to_owned(),
        level: level as i32,
        as_of,
        page_size: 1000,
        page_token: String::new(),
    }
}

#[tokio::test]
async fn thanh_hoa_counts_follow_the_history() {
    let app = TestApp::spawn().await;
    let mut units = app.reader().await;
    let count = |parent: &'static str, level: pb::UnitLevel, as_of: Option<Date>| {
        let mut units = units.clone();
        async move {
            units
                .list_units(list(parent, level, as_of))
                .await
                .unwrap()
                .into_inner()
        }
    };

    let districts = count("38", pb::UnitLevel::Unspecified, date(2022, 6, 30)).await;
    assert_eq!(districts.total_size, 27);
    assert_eq!(districts.units.len(), 27);
    assert!(
        districts
            .units
            .iter()
            .all(|u| u.level == pb::UnitLevel::District as i32)
    );
    assert_eq!(
        count("38", pb::UnitLevel::Commune, date(2022, 6, 30))
            .await
            .total_size,
        559
    );
    assert_eq!(
        count("395", pb::UnitLevel::Unspecified, date(2022, 6, 30))
            .await
            .total_size,
        30
    );

    assert_eq!(
        count("38", pb::UnitLevel::Commune, date(2019, 11, 30))
            .await
            .total_size,
        635
    );
    assert_eq!(
        count("38", pb::UnitLevel::Commune, date(2020, 6, 30))
            .await
            .total_size,
        559
    );
    assert_eq!(
        count("38", pb::UnitLevel::District, date(2025, 3, 1))
            .await
            .total_size,
        26
    );
    assert_eq!(
        count("38", pb::UnitLevel::Commune, date(2025, 3, 1))
            .await
            .total_size,
        547
    );

    assert_eq!(
        count("38", pb::UnitLevel::District, date(2025, 7, 1))
            .await
            .total_size,
        0
    );
    let children = count("38", pb::UnitLevel::Unspecified, date(2025, 7, 1)).await;
    assert_eq!(children.total_size, 166);
    assert!(
        children
            .units
            .iter()
            .all(|u| u.level == pb::UnitLevel::Commune as i32 && u.parent_code == "38")
    );

    // Provinces (the top level) as of 2022: only Thanh Hóa is loaded.
    let provinces = units
        .list_units(list("", pb::UnitLevel::Unspecified, date(2022, 6, 30)))
        .await
        .unwrap();
    let codes: Vec<_> = provinces
        .get_ref()
        .units
        .iter()
        .map(|u| u.code.as_str())
        .collect();
    assert_eq!(codes, ["38"]);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_reused_code_is_two_units_and_lineage_joins_them() {
    let app = TestApp::spawn().await;
    let mut units = app.reader().await;

    let old = units
        .get_unit(pb::GetUnitRequest {
            unit: code("14758"),
            as_of: date(2025, 6, 30),
        })
        .await
        .unwrap()
        .into_inner()
        .unit
        .unwrap();
    let new = units
        .get_unit(pb::GetUnitRequest {
            unit: code("14758"),
            as_of: date(2025, 7, 1),
        })
        .await
        .unwrap()
        .into_inner()
        .unit
        .unwrap();
    assert_eq!(old.name, "Phường Đông Thọ");
    assert_eq!(old.parent_code, "380");
    assert_eq!(old.valid_to, date(2025, 7, 1));
    assert_eq!(new.name, "Phường Hàm Rồng");
    assert_eq!(new.parent_code, "38");
    assert_ne!(old.id, new.id);

    let lineage = units
        .list_lineage(pb::ListLineageRequest {
            unit: code("14758"),
            as_of: date(2025, 7, 1),
        })
        .await
        .unwrap()
        .into_inner();
    let preds: Vec<(String, String, i32)> = lineage
        .predecessors
        .iter()
        .map(|l| {
            let u = l.unit.clone().unwrap();
            (u.code, u.name, l.part)
        })
        .collect();
    assert!(
        preds.contains(&(
            "14758".into(),
            "Phường Đông Thọ".into(),
            pb::LineagePart::Partial as i32
        )),
        "{preds:?}"
    );
    assert!(
        preds.contains(&(
            "14755".into(),
            "Phường Hàm Rồng".into(),
            pb::LineagePart::Full as i32
        )),
        "{preds:?}"
    );
    assert!(
        lineage
            .predecessors
            .iter()
            .all(|l| l.effective_date == date(2025, 7, 1))
    );
    assert!(
        lineage
            .predecessors
            .iter()
            .any(|l| l.unit.as_ref().unwrap().id == old.id)
    );

    // From the old unit's side, by id: it went into the new one.
    let old_side = units
        .list_lineage(pb::ListLineageRequest {
            unit: Some(pb::UnitRef {
                r#ref: Some(pb::unit_ref::Ref::Id(old.id)),
            }),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        old_side
            .successors
            .iter()
            .any(|l| l.unit.as_ref().unwrap().id == new.id)
    );

    // Ancestors follow the date: under TP Thanh Hóa before, the province after.
    let before = units
        .list_ancestors(pb::ListAncestorsRequest {
            unit: code("14758"),
            as_of: date(2025, 6, 30),
        })
        .await
        .unwrap()
        .into_inner();
    let chain: Vec<_> = before.ancestors.iter().map(|u| u.code.as_str()).collect();
    assert_eq!(chain, ["380", "38"]);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let app = TestApp::spawn().await;
    let mut units = app.reader().await;

    let err = units
        .get_unit(pb::GetUnitRequest {
            unit: code("99999"),
            as_of: date(2022, 6, 30),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let err = units
        .get_unit(pb::GetUnitRequest {
            unit: code("38x"),
            as_of: date(2022, 13, 1),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<_> = chiso_server::field_violations(&err)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, ["as_of"]);

    let err = units
        .get_unit(pb::GetUnitRequest {
            unit: code("38x"),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(chiso_server::field_violations(&err)[0].0, "unit.code");
    assert!(chiso_server::field_violations(&err)[0].1.contains("38x"));

    let err = units
        .list_units(pb::ListUnitsRequest {
            parent_code: "38".into(),
            level: 7,
            as_of: None,
            page_size: -1,
            page_token: "garbage".into(),
        })
        .await
        .unwrap_err();
    let mut fields: Vec<_> = chiso_server::field_violations(&err)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    fields.sort();
    assert_eq!(fields, ["level", "page_size", "page_token"]);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn callers_need_a_valid_token_and_the_right_role() {
    let app = TestApp::spawn().await;
    let request = || pb::GetUnitRequest {
        unit: code("38"),
        as_of: None,
    };

    let mut anonymous = pb::units_service_client::UnitsServiceClient::new(app.channel().await);
    assert_eq!(
        anonymous.get_unit(request()).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let mut forged = app
        .units("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
        .await;
    assert_eq!(
        forged.get_unit(request()).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let other_key = chiso_auth::Issuer::hs256(b"a different development key")
        .issue("intruder", &[Role::Admin], "VN", Duration::from_secs(60))
        .unwrap();
    let mut intruder = app.units(&other_key).await;
    assert_eq!(
        intruder.get_unit(request()).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let snapshot = pb::ImportSnapshotRequest {
        effective_date: date(2026, 1, 1),
        rows: vec![pb::SnapshotRow {
            code: "38".into(),
            name: "Tỉnh Thanh Hóa".into(),
            kind: pb::UnitKind::Tinh as i32,
            parent_code: String::new(),
        }],
        validate_only: true,
        ..Default::default()
    };
    let mut reader = app.reader().await;
    assert_eq!(
        reader
            .get_unit(request())
            .await
            .unwrap()
            .into_inner()
            .unit
            .unwrap()
            .code,
        "38"
    );
    assert_eq!(
        reader
            .import_snapshot(snapshot.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    let mut other_province_admin = app.units(&app.token(&[Role::Admin], "01")).await;
    assert_eq!(
        other_province_admin
            .import_snapshot(snapshot.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let mut province_admin = app.units(&app.token(&[Role::Admin], "38")).await;
    let checked = province_admin
        .import_snapshot(snapshot)
        .await
        .unwrap()
        .into_inner();
    assert!(!checked.applied);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_import_is_visible_to_queries_and_watchers() {
    let app = TestApp::spawn().await;
    let admin = app.token(&[Role::Admin], "38");
    let mut units = app.units(&admin).await;

    let mut watch = app
        .units(&app.token(&[Role::Service], "VN"))
        .await
        .watch_unit_changes(pb::WatchUnitChangesRequest { after_sequence: 0 })
        .await
        .unwrap()
        .into_inner();
    // Drain the history first, remembering the last sequence.
    let mut last = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(1500), watch.message()).await {
            Ok(Ok(Some(m))) => {
                let seq = m.change.unwrap().sequence;
                assert!(seq > last, "sequences increase");
                last = seq;
            }
            Ok(other) => panic!("stream ended: {other:?}"),
            Err(_) => break,
        }
    }
    assert!(
        last > 1000,
        "the shipped history has over a thousand changes, saw {last}"
    );

    // 2026: Phường Hàm Rồng is renamed (a made-up change for the test).
    let mut rows = Vec::new();
    let mut token = String::new();
    loop {
        let page = units
            .list_units(pb::ListUnitsRequest {
                parent_code: "38".into(),
                level: 0,
                as_of: date(2025, 12, 31),
                page_size: 50,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        rows.extend(page.units.into_iter().map(|u| pb::SnapshotRow {
            name: if u.code == "14758" {
                "Phường Hàm Rồng Mới".into()
            } else {
                u.name
            },
            code: u.code,
            kind: u.kind,
            parent_code: u.parent_code,
        }));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(rows.len(), 166, "paging returns every child once");
    rows.insert(
        0,
        pb::SnapshotRow {
            code: "38".into(),
            name: "Tỉnh Thanh Hóa".into(),
            kind: pb::UnitKind::Tinh as i32,
            parent_code: String::new(),
        },
    );
    let request = pb::ImportSnapshotRequest {
        effective_date: Some(from_date(time::macros::date!(2026 - 01 - 01))),
        rows,
        source: "test".into(),
        request_id: "e2e-rename".into(),
        ..Default::default()
    };
    let first = units
        .import_snapshot(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(first.applied);
    assert_eq!(first.summary.unwrap().renamed, 1);
    let retry = units.import_snapshot(request).await.unwrap().into_inner();
    assert_eq!(retry, first, "a retry gets the first answer");

    let change = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the watcher hears the import")
        .unwrap()
        .unwrap()
        .change
        .unwrap();
    assert_eq!(change.sequence, last + 1);
    assert_eq!(change.change, pb::ChangeKind::Rename as i32);
    assert_eq!(
        (change.previous_name.as_str(), change.name.as_str()),
        ("Phường Hàm Rồng", "Phường Hàm Rồng Mới")
    );
    assert_eq!(change.sequence, first.last_sequence);

    let renamed = units
        .get_unit(pb::GetUnitRequest {
            unit: code("14758"),
            as_of: date(2026, 1, 1),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.unit.unwrap().name, "Phường Hàm Rồng Mới");
    assert_eq!(renamed.versions.len(), 2);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel().await);
    // Health is set by a background task right after start: wait for it.
    let mut status = ServingStatus::Unknown;
    for _ in 0..100 {
        match health
            .check(HealthCheckRequest {
                service: "chiso.units.v1.UnitsService".into(),
            })
            .await
        {
            Ok(r) => {
                status = r.into_inner().status();
                if status == ServingStatus::Serving {
                    break;
                }
            }
            Err(e) => assert_eq!(e.code(), Code::NotFound, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, ServingStatus::Serving);

    let mut reflection = ServerReflectionClient::new(app.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"chiso.units.v1.UnitsService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_streams_and_stops_within_the_grace_period() {
    let app = TestApp::spawn().await;
    let mut watch = app
        .units(&app.token(&[Role::Service], "VN"))
        .await
        .watch_unit_changes(pb::WatchUnitChangesRequest {
            after_sequence: 1_000_000,
        })
        .await
        .unwrap()
        .into_inner();
    let shutdown = app.shutdown.clone();
    let stopped = tokio::spawn(app.stop());
    shutdown.cancel();
    let end = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the stream ends");
    assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the server stops within its grace period")
        .unwrap()
        .unwrap();
}
