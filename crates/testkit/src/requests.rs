//! The requests of the assessment workflow as the suites send them: a
//! unit's assessment for a year, no etag, no request id.

use chiso_proto::assessment::v1 as pb;

pub fn submit(unit: &str, year: i32) -> pb::SubmitAssessmentRequest {
    pb::SubmitAssessmentRequest {
        unit_code: unit.into(),
        year,
        ..Default::default()
    }
}

pub fn verify(unit: &str, year: i32) -> pb::VerifyAssessmentRequest {
    pb::VerifyAssessmentRequest {
        unit_code: unit.into(),
        year,
        ..Default::default()
    }
}

pub fn approve(unit: &str, year: i32) -> pb::ApproveAssessmentRequest {
    pb::ApproveAssessmentRequest {
        unit_code: unit.into(),
        year,
        ..Default::default()
    }
}

pub fn send_back(unit: &str, year: i32, reason: &str) -> pb::ReturnAssessmentRequest {
    pb::ReturnAssessmentRequest {
        unit_code: unit.into(),
        year,
        reason: reason.into(),
        ..Default::default()
    }
}

pub fn reopen(unit: &str, year: i32, reason: &str) -> pb::ReopenAssessmentRequest {
    pb::ReopenAssessmentRequest {
        unit_code: unit.into(),
        year,
        reason: reason.into(),
        ..Default::default()
    }
}

/// Evidence as a commune would attach it.
pub fn evidence() -> Option<pb::Evidence> {
    Some(pb::Evidence {
        document_number: "12/BC-UBND".into(),
        link: String::new(),
        note: "báo cáo năm".into(),
    })
}
