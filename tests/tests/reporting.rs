//! Reporting from outside: an approval shows in the province's progress as
//! soon as the projection reflects its event.

use std::time::{Duration, Instant};

use chiso_auth::Role;
use chiso_proto::assessment::v1::{
    self as apb, assessment_service_client::AssessmentServiceClient,
    criteria_service_client::CriteriaServiceClient,
};
use chiso_proto::reporting::v1::{
    self as pb, reporting_service_client::ReportingServiceClient,
    targets_service_client::TargetsServiceClient,
};
use chiso_testkit::requests;
use chiso_tests::{TestApp, meeting};
use tonic::Code;

/// Approves Thị trấn Thọ Xuân's complete 2023 assessment; returns the
/// sequence of the approval event.
async fn approve_tho_xuan_2023(app: &TestApp) -> i64 {
    let set = CriteriaServiceClient::new(app.authed(&app.token(&[Role::Reader], "VN")).await)
        .get_criteria_set(apb::GetCriteriaSetRequest {
            id: "th-commune-2023".into(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .criteria_set
        .unwrap();
    let commune = app.token(&[Role::Submitter], "15499");
    let district = app.token(&[Role::Reviewer], "395");
    let province = app.token(&[Role::Approver], "38");
    let mut as_commune = AssessmentServiceClient::new(app.authed(&commune).await);
    as_commune
        .upsert_indicator_values(apb::UpsertIndicatorValuesRequest {
            unit_code: "15499".into(),
            year: 2023,
            values: set.indicators.iter().map(meeting).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    as_commune
        .submit_assessment(requests::submit("15499", 2023))
        .await
        .unwrap();
    AssessmentServiceClient::new(app.authed(&district).await)
        .verify_assessment(requests::verify("15499", 2023))
        .await
        .unwrap();
    AssessmentServiceClient::new(app.authed(&province).await)
        .approve_assessment(requests::approve("15499", 2023))
        .await
        .unwrap();
    // The approval is the latest event.
    let mut events =
        AssessmentServiceClient::new(app.authed(&app.token(&[Role::Service], "VN")).await)
            .watch_assessment_events(apb::WatchAssessmentEventsRequest { after_sequence: 0 })
            .await
            .unwrap()
            .into_inner();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        if event.kind == apb::EventKind::Approved as i32 {
            return event.sequence;
        }
    }
}

#[tokio::test]
async fn an_approval_shows_in_progress_once_its_event_is_reflected() {
    let app = TestApp::spawn().await;
    let seq = approve_tho_xuan_2023(&app).await;
    let mut reporting =
        ReportingServiceClient::new(app.authed(&app.token(&[Role::Reader], "38")).await);

    // Wait for the projection to reach the approval's event, then check.
    let deadline = Instant::now() + Duration::from_secs(20);
    let progress = loop {
        let p = reporting
            .get_progress(pb::GetProgressRequest {
                scope_code: "38".into(),
                year: 2023,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if p.reflects_sequence >= seq {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the projection never reached event {seq}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        progress.rows.len(),
        27,
        "a row per district-level unit of 2023"
    );
    let tho_xuan = progress
        .rows
        .iter()
        .find(|r| r.unit.as_ref().is_some_and(|u| u.code == "395"))
        .unwrap();
    assert_eq!(tho_xuan.units, 30);
    assert_eq!(tho_xuan.completed_in_year, 1);
    assert_eq!(tho_xuan.statuses.as_ref().unwrap().approved, 1);
    let totals = progress.totals.unwrap();
    assert_eq!(
        (
            totals.units,
            totals.completed_in_year,
            totals.completed_cumulative
        ),
        (559, 1, 1)
    );
    let yearly = progress
        .targets
        .iter()
        .find(|t| t.target.as_ref().unwrap().id == "th-qd969-communes-2023")
        .expect("the QĐ 969 target for 2023");
    assert_eq!(
        (yearly.current, yearly.goal, yearly.met, yearly.gap),
        (1.0, 132.0, false, 131.0)
    );

    // Scorecard, ranking and breakdown reflect it too.
    let card = reporting
        .get_scorecard(pb::GetScorecardRequest {
            unit_code: "15499".into(),
            year: 2023,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(card.scorecard.unwrap().complete);
    let ranking = reporting
        .list_rankings(pb::ListRankingsRequest {
            scope_code: "395".into(),
            level: 0,
            year: 2023,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ranking.entries.len(), 1);
    assert_eq!(
        (
            ranking.entries[0].rank,
            ranking.entries[0].unit_code.as_str()
        ),
        (1, "15499")
    );
    let breakdown = reporting
        .get_indicator_breakdown(pb::GetIndicatorBreakdownRequest {
            scope_code: "38".into(),
            level: 0,
            year: 2023,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(breakdown.indicators.len(), 37);
    assert!(
        breakdown
            .indicators
            .iter()
            .all(|i| i.share_percent == 100.0)
    );

    // Restated on the two-tier hierarchy of 1/7/2025, the completion counts
    // for the commune Thị trấn Thọ Xuân went into (Xã Thọ Xuân, 15499 again
    // but a new unit).
    let restated = reporting
        .get_progress(pb::GetProgressRequest {
            scope_code: "38".into(),
            year: 2023,
            restate_as_of: Some(chiso_proto::google::r#type::Date {
                year: 2025,
                month: 7,
                day: 1,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restated.rows.len(), 166);
    let totals = restated.totals.unwrap();
    assert_eq!((totals.units, totals.completed_in_year), (166, 1));
    let row = restated
        .rows
        .iter()
        .find(|r| r.completed_in_year == 1)
        .unwrap();
    assert_eq!(row.unit.as_ref().unwrap().name, "Xã Thọ Xuân");

    // The new commune's trend reaches back to its predecessor's 2023.
    let trend = reporting
        .get_trend(pb::GetTrendRequest {
            unit_code: "15499".into(),
            as_of: Some(chiso_proto::google::r#type::Date {
                year: 2025,
                month: 7,
                day: 1,
            }),
            from_year: 2022,
            to_year: 2025,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(trend.points.len(), 1, "{:?}", trend.points);
    let point = &trend.points[0];
    assert_eq!(
        (
            point.year,
            point.unit_name.as_str(),
            point.predecessor,
            point.complete
        ),
        (2023, "Thị trấn Thọ Xuân", true, true)
    );

    // The same progress as CSV.
    let mut export = reporting
        .export_report(pb::ExportReportRequest {
            report: Some(pb::export_report_request::Report::Progress(
                pb::GetProgressRequest {
                    scope_code: "38".into(),
                    year: 2023,
                    ..Default::default()
                },
            )),
        })
        .await
        .unwrap()
        .into_inner();
    let mut csv = Vec::new();
    while let Some(chunk) = export.message().await.unwrap() {
        csv.extend(chunk.chunk);
    }
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.starts_with("code,name,units,completed_in_year"),
        "{csv}"
    );
    assert!(csv.contains("395,Huyện Thọ Xuân,30,1,1,0,0,0,1,0"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 27 + 1);

    // A commune's reader sees its own scorecard, not the province.
    let mut neighbour =
        ReportingServiceClient::new(app.authed(&app.token(&[Role::Reader], "15502")).await);
    let denied = neighbour
        .get_progress(pb::GetProgressRequest {
            scope_code: "38".into(),
            year: 2023,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_plan_is_loaded_and_targets_need_the_province_admin() {
    let app = TestApp::spawn().await;
    let mut reader = TargetsServiceClient::new(app.authed(&app.token(&[Role::Reader], "38")).await);
    let targets = reader
        .list_targets(pb::ListTargetsRequest {
            scope_code: "38".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .targets;
    let counts: Vec<i32> = targets
        .iter()
        .filter(|t| t.id.starts_with("th-qd969-communes-by-"))
        .map(|t| t.count)
        .collect();
    assert_eq!(counts, [94, 226, 359, 477]);
    assert!(targets.iter().all(|t| !t.source.is_empty()));
    // Paging returns the same targets, each once.
    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = reader
            .list_targets(pb::ListTargetsRequest {
                scope_code: "38".into(),
                page_size: 5,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.targets.len() <= 5);
        paged.extend(page.targets.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut all: Vec<_> = targets.iter().map(|t| t.id.clone()).collect();
    all.sort();
    paged.sort();
    assert_eq!(paged, all);

    let target = pb::Target {
        kind: pb::TargetKind::Share as i32,
        title: "Mọi xã Thọ Xuân hoàn thành CĐS năm 2024".into(),
        scope_code: "395".into(),
        level: chiso_proto::units::v1::UnitLevel::Commune as i32,
        year: 2024,
        share_percent: 100.0,
        source: "Kế hoạch huyện".into(),
        ..Default::default()
    };
    let denied = reader
        .create_target(pb::CreateTargetRequest {
            target: Some(target.clone()),
            validate_only: false,
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut district_admin =
        TargetsServiceClient::new(app.authed(&app.token(&[Role::Admin], "395")).await);
    assert_eq!(
        district_admin
            .create_target(pb::CreateTargetRequest {
                target: Some(target.clone()),
                validate_only: false,
            })
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let mut province_admin =
        TargetsServiceClient::new(app.authed(&app.token(&[Role::Admin], "38")).await);
    let created = province_admin
        .create_target(pb::CreateTargetRequest {
            target: Some(target),
            validate_only: false,
        })
        .await
        .unwrap()
        .into_inner()
        .target
        .unwrap();
    assert!(!created.id.is_empty());
    let bad = province_admin
        .create_target(pb::CreateTargetRequest {
            target: Some(pb::Target {
                kind: pb::TargetKind::Share as i32,
                scope_code: "38".into(),
                year: 2024,
                share_percent: 140.0,
                ..Default::default()
            }),
            validate_only: true,
        })
        .await
        .unwrap_err();
    let fields: Vec<_> = chiso_server::field_violations(&bad)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert!(
        fields.contains(&"target.share_percent".to_owned()),
        "{fields:?}"
    );
    assert!(fields.contains(&"target.source".to_owned()), "{fields:?}");
    province_admin
        .delete_target(pb::DeleteTargetRequest { id: created.id })
        .await
        .unwrap();
    app.stop().await.unwrap();
}
