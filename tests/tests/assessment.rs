//! The assessment service from outside: a Thọ Xuân commune's year through
//! submission, review, return, approval and reopening, on a running
//! `chiso up`.

use std::time::Duration;

use chiso_auth::Role;
use chiso_proto::assessment::v1::{
    self as pb, assessment_service_client::AssessmentServiceClient,
    criteria_service_client::CriteriaServiceClient,
};
use chiso_server::field_violations;
use chiso_testkit::requests;
use chiso_tests::{TestApp, evidence, meeting};
use tonic::Code;

/// A Thọ Xuân commune (Thị trấn Thọ Xuân) and its district.
const COMMUNE: &str = "15499";
const NEIGHBOUR: &str = "15502";
const DISTRICT: &str = "395";

async fn commune_set(app: &TestApp) -> pb::CriteriaSet {
    let mut criteria =
        CriteriaServiceClient::new(app.authed(&app.token(&[Role::Reader], "VN")).await);
    criteria
        .get_criteria_set(pb::GetCriteriaSetRequest {
            id: "th-commune-2023".into(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .criteria_set
        .unwrap()
}

async fn client(
    app: &TestApp,
    roles: &[Role],
    scope: &str,
) -> AssessmentServiceClient<chiso::cli::common::client::AuthedChannel> {
    AssessmentServiceClient::new(app.authed(&app.token(roles, scope)).await)
}

#[tokio::test]
async fn a_commune_year_goes_through_review() {
    let app = TestApp::spawn().await;
    let set = commune_set(&app).await;
    assert_eq!(set.indicators.len(), 37);
    let mut commune = client(&app, &[Role::Submitter, Role::Reader], COMMUNE).await;
    let mut district = client(
        &app,
        &[Role::Reviewer, Role::Approver, Role::Reader],
        DISTRICT,
    )
    .await;
    let mut province = client(&app, &[Role::Approver, Role::Reviewer, Role::Reader], "38").await;

    // Everything met except the non-cash electricity payment share: 52%.
    let mut values: Vec<_> = set.indicators.iter().map(meeting).collect();
    let electricity = set
        .indicators
        .iter()
        .position(|i| i.threshold == 60.0 && i.kind == pb::IndicatorKind::Ratio as i32)
        .expect("the non-cash electricity indicator (≥ 60%)");
    values[electricity].value = Some(pb::indicator_value::Value::Ratio(pb::Ratio {
        numerator: 52.0,
        denominator: 100.0,
    }));
    let request = pb::UpsertIndicatorValuesRequest {
        unit_code: COMMUNE.into(),
        year: 2023,
        values,
        request_id: "thoxuan-2023-1".into(),
        ..Default::default()
    };
    let first = commune
        .upsert_indicator_values(request.clone())
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(first.status, pb::AssessmentStatus::Draft as i32);
    assert_eq!(first.criteria_set_id, "th-commune-2023");
    let card = first.scorecard.clone().unwrap();
    assert!(!card.complete);
    let code = &set.indicators[electricity].code;
    assert!(card.failing.contains(code), "{:?}", card.failing);
    let failing = card.indicators.iter().find(|i| &i.code == code).unwrap();
    assert!(
        (failing.gap - 8.0).abs() < 1e-9,
        "52% is 8 points short of 60%: {failing:?}"
    );

    // A retry returns the first answer and writes nothing twice.
    let retry = commune
        .upsert_indicator_values(request)
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(retry, first);

    // Fix the value; a stale etag is refused.
    let fix = pb::UpsertIndicatorValuesRequest {
        unit_code: COMMUNE.into(),
        year: 2023,
        values: vec![pb::IndicatorValue {
            indicator_code: code.clone(),
            value: Some(pb::indicator_value::Value::Ratio(pb::Ratio {
                numerator: 61.0,
                denominator: 100.0,
            })),
            evidence: evidence(),
        }],
        etag: first.etag.clone(),
        ..Default::default()
    };
    let fixed = commune
        .upsert_indicator_values(fix.clone())
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert!(fixed.scorecard.as_ref().unwrap().complete);
    assert_eq!(
        commune
            .upsert_indicator_values(fix)
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );

    // Submit; the district returns it with a reason; resubmit; verify; approve.
    let submitted = commune
        .submit_assessment(requests::submit(COMMUNE, 2023))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(submitted.status, pb::AssessmentStatus::Submitted as i32);
    let no_reason = district
        .return_assessment(requests::send_back(COMMUNE, 2023, ""))
        .await
        .unwrap_err();
    assert_eq!(field_violations(&no_reason)[0].0, "reason");
    let returned = district
        .return_assessment(requests::send_back(
            COMMUNE,
            2023,
            "thiếu văn bản chứng minh camera an ninh",
        ))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(returned.status, pb::AssessmentStatus::Returned as i32);
    assert_eq!(returned.reason, "thiếu văn bản chứng minh camera an ninh");
    commune
        .submit_assessment(requests::submit(COMMUNE, 2023))
        .await
        .unwrap();
    // The district cannot approve; the province cannot skip verification.
    let denied = district
        .approve_assessment(requests::approve(COMMUNE, 2023))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let early = province
        .approve_assessment(requests::approve(COMMUNE, 2023))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    district
        .verify_assessment(requests::verify(COMMUNE, 2023))
        .await
        .unwrap();
    let approved = province
        .approve_assessment(requests::approve(COMMUNE, 2023))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(approved.status, pb::AssessmentStatus::Approved as i32);

    // Approved values are frozen.
    let frozen = commune
        .upsert_indicator_values(pb::UpsertIndicatorValuesRequest {
            unit_code: COMMUNE.into(),
            year: 2023,
            values: vec![meeting(&set.indicators[0])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(frozen.code(), Code::FailedPrecondition);

    // The history names who did what, with the return's reason.
    let history = commune
        .list_assessment_history(pb::ListAssessmentHistoryRequest {
            unit_code: COMMUNE.into(),
            year: 2023,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let actions: Vec<_> = history
        .iter()
        .filter(|e| e.action != "value")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(actions, ["submit", "return", "submit", "verify", "approve"]);
    assert_eq!(history.iter().filter(|e| e.action == "value").count(), 38);
    let change = history.iter().rfind(|e| e.action == "value").unwrap();
    assert!(
        change.old_value.contains("52") && change.new_value.contains("61"),
        "{change:?}"
    );
    assert!(history.iter().any(|e| e.reason.contains("camera")));

    // Events: a follower sees every change in order, ending with the approval.
    let mut events = client(&app, &[Role::Service], "VN")
        .await
        .watch_assessment_events(pb::WatchAssessmentEventsRequest { after_sequence: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    let mut last = 0;
    while kinds.len() < 7 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap()
            .event
            .unwrap();
        assert_eq!(event.sequence, last + 1, "no gaps");
        last = event.sequence;
        kinds.push(event.kind);
        if event.kind == pb::EventKind::Approved as i32 {
            assert!(event.scorecard.unwrap().complete);
            let ancestors: Vec<_> = event.ancestors.iter().map(|a| a.code.as_str()).collect();
            assert_eq!(ancestors, [DISTRICT, "38"]);
        }
    }
    assert_eq!(kinds.last(), Some(&(pb::EventKind::Approved as i32)));

    // The province reopens with a reason.
    let reopened = province
        .reopen_assessment(requests::reopen(
            COMMUNE,
            2023,
            "số liệu camera cần kiểm tra lại",
        ))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap();
    assert_eq!(reopened.status, pb::AssessmentStatus::Returned as i32);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn scope_keeps_neighbours_apart_and_bad_values_are_named() {
    let app = TestApp::spawn().await;
    let set = commune_set(&app).await;
    let mut neighbour = client(&app, &[Role::Submitter, Role::Reader], NEIGHBOUR).await;
    let write = |code: &str| pb::UpsertIndicatorValuesRequest {
        unit_code: code.into(),
        year: 2023,
        values: vec![meeting(&set.indicators[0])],
        ..Default::default()
    };
    assert_eq!(
        neighbour
            .upsert_indicator_values(write(COMMUNE))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    neighbour
        .upsert_indicator_values(write(NEIGHBOUR))
        .await
        .unwrap();
    let mut commune = client(&app, &[Role::Submitter, Role::Reader], COMMUNE).await;
    let err = commune
        .get_assessment(pb::GetAssessmentRequest {
            unit_code: NEIGHBOUR.into(),
            year: 2023,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // The neighbour's own list shows only itself.
    let listed = neighbour
        .list_assessments(pb::ListAssessmentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .assessments;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].unit_code, NEIGHBOUR);

    // Every bad value is named in one answer, and nothing is written.
    let ratio = set
        .indicators
        .iter()
        .find(|i| i.kind == pb::IndicatorKind::Ratio as i32)
        .unwrap();
    let count = set
        .indicators
        .iter()
        .find(|i| i.kind == pb::IndicatorKind::Count as i32);
    let mut values = vec![
        pb::IndicatorValue {
            indicator_code: "NO.SUCH".into(),
            value: Some(pb::indicator_value::Value::Yes(true)),
            evidence: evidence(),
        },
        pb::IndicatorValue {
            indicator_code: ratio.code.clone(),
            value: Some(pb::indicator_value::Value::Ratio(pb::Ratio {
                numerator: 120.0,
                denominator: 100.0,
            })),
            evidence: evidence(),
        },
        pb::IndicatorValue {
            indicator_code: set.indicators[0].code.clone(),
            value: Some(pb::indicator_value::Value::Number(3.0)),
            evidence: evidence(),
        },
    ];
    if let Some(count) = count {
        values.push(pb::IndicatorValue {
            indicator_code: count.code.clone(),
            value: Some(pb::indicator_value::Value::Count(-1)),
            evidence: evidence(),
        });
    }
    let err = commune
        .upsert_indicator_values(pb::UpsertIndicatorValuesRequest {
            unit_code: COMMUNE.into(),
            year: 2023,
            values: values.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<_> = field_violations(&err).into_iter().map(|(f, _)| f).collect();
    for i in 0..values.len() {
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with(&format!("values[{i}]"))),
            "values[{i}] not named: {fields:?}"
        );
    }
    let none = commune
        .get_assessment(pb::GetAssessmentRequest {
            unit_code: COMMUNE.into(),
            year: 2023,
        })
        .await
        .unwrap_err();
    assert_eq!(
        none.code(),
        Code::NotFound,
        "nothing of a rejected request is written"
    );

    // A year outside the set, and a unit that did not exist that year.
    let err = commune
        .upsert_indicator_values(pb::UpsertIndicatorValuesRequest {
            unit_code: "14758".into(),
            year: 2019,
            values: vec![meeting(&set.indicators[0])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            Code::FailedPrecondition | Code::PermissionDenied | Code::InvalidArgument
        ),
        "{err:?}"
    );
    let err = client(&app, &[Role::Submitter], "VN")
        .await
        .upsert_indicator_values(pb::UpsertIndicatorValuesRequest {
            unit_code: "16411".into(),
            year: 2023,
            values: vec![meeting(&set.indicators[0])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field_violations(&err)[0].0, "unit_code");
    app.stop().await.unwrap();
}
