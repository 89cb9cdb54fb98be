//! How the commands name the contract's enums to people and scripts.

use chiso_proto::assessment::v1::AssessmentStatus;
use chiso_proto::units::v1::UnitLevel;

pub fn level_name(level: i32) -> &'static str {
    match UnitLevel::try_from(level).unwrap_or(UnitLevel::Unspecified) {
        UnitLevel::Province => "province",
        UnitLevel::District => "district",
        UnitLevel::Commune => "commune",
        UnitLevel::Unspecified => "?",
    }
}

pub fn status_name(status: i32) -> &'static str {
    match AssessmentStatus::try_from(status).unwrap_or(AssessmentStatus::Unspecified) {
        AssessmentStatus::Draft => "draft",
        AssessmentStatus::Submitted => "submitted",
        AssessmentStatus::Verified => "verified",
        AssessmentStatus::Approved => "approved",
        AssessmentStatus::Returned => "returned",
        AssessmentStatus::Unspecified => "",
    }
}
