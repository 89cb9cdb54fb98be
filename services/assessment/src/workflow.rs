//! Who may do what to an assessment, and in which state: pure rules, so
//! they can be read and tested in one place. Among them: a district
//! reviewer may verify only its own communes (`authorize`, `Action::Verify`:
//! the caller's scope strictly above the unit).

use chiso_auth::{Caller, Role};
use chiso_proto::units::v1::UnitLevel;

use crate::units_client::ResolvedUnit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Draft,
    Submitted,
    Verified,
    Approved,
    Returned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::Verified => "verified",
            Status::Approved => "approved",
            Status::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Draft,
            Status::Submitted,
            Status::Verified,
            Status::Approved,
            Status::Returned,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Values can change only while the unit holds the assessment.
    pub fn is_editable(self) -> bool {
        matches!(self, Status::Draft | Status::Returned)
    }

    pub fn to_pb(self) -> chiso_proto::assessment::v1::AssessmentStatus {
        use chiso_proto::assessment::v1::AssessmentStatus as S;
        match self {
            Status::Draft => S::Draft,
            Status::Submitted => S::Submitted,
            Status::Verified => S::Verified,
            Status::Approved => S::Approved,
            Status::Returned => S::Returned,
        }
    }

    pub fn from_pb(s: chiso_proto::assessment::v1::AssessmentStatus) -> Option<Status> {
        use chiso_proto::assessment::v1::AssessmentStatus as S;
        match s {
            S::Unspecified => None,
            S::Draft => Some(Status::Draft),
            S::Submitted => Some(Status::Submitted),
            S::Verified => Some(Status::Verified),
            S::Approved => Some(Status::Approved),
            S::Returned => Some(Status::Returned),
        }
    }
}

/// Something a caller does to an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Edit,
    Submit,
    Verify,
    Approve,
    Return,
    Reopen,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Edit => "value",
            Action::Submit => "submit",
            Action::Verify => "verify",
            Action::Approve => "approve",
            Action::Return => "return",
            Action::Reopen => "reopen",
        }
    }
}

/// A step of review: one per review RPC and per CLI command, with what each
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Review {
    Submit,
    Verify,
    Approve,
    Return,
    Reopen,
}

impl Review {
    pub const ALL: [Review; 5] = [
        Review::Submit,
        Review::Verify,
        Review::Approve,
        Review::Return,
        Review::Reopen,
    ];

    pub fn action(self) -> Action {
        match self {
            Review::Submit => Action::Submit,
            Review::Verify => Action::Verify,
            Review::Approve => Action::Approve,
            Review::Return => Action::Return,
            Review::Reopen => Action::Reopen,
        }
    }

    /// The verb, as the audit log and the CLI name it ("submit", …).
    pub fn as_str(self) -> &'static str {
        self.action().as_str()
    }

    /// The RPC that takes this step ("SubmitAssessment", …); retries of it
    /// are told apart by it.
    pub fn method(self) -> &'static str {
        match self {
            Review::Submit => "SubmitAssessment",
            Review::Verify => "VerifyAssessment",
            Review::Approve => "ApproveAssessment",
            Review::Return => "ReturnAssessment",
            Review::Reopen => "ReopenAssessment",
        }
    }

    /// Whether the step needs a reason: sending work back says what must
    /// change.
    pub fn needs_reason(self) -> bool {
        matches!(self, Review::Return | Review::Reopen)
    }

    /// The state the step leads to (when [`transition`] allows it).
    pub fn target(self) -> Status {
        match self {
            Review::Submit => Status::Submitted,
            Review::Verify => Status::Verified,
            Review::Approve => Status::Approved,
            Review::Return | Review::Reopen => Status::Returned,
        }
    }

    /// The roles that may take the step, each within its reach (see
    /// [`authorize`]).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Review::Submit => &[Role::Submitter],
            Review::Verify => &[Role::Reviewer],
            Review::Approve | Review::Reopen => &[Role::Approver],
            Review::Return => &[Role::Reviewer, Role::Approver],
        }
    }
}

/// Whether a commune's assessment needs a district's verification: only
/// where a district stands between it and the province (not after the
/// districts were abolished on 1/7/2025).
pub fn needs_verification(unit: &ResolvedUnit) -> bool {
    unit.level == UnitLevel::Commune && unit.ancestor_at(UnitLevel::District).is_some()
}

/// `Err` with the reason when `caller` may not do `action` on `unit`'s
/// assessment. The scope is read as of the end of the assessed year.
pub fn authorize(caller: &Caller, unit: &ResolvedUnit, action: Action) -> Result<(), String> {
    let national = caller.is_national();
    // The caller's scope is the unit itself or contains it.
    let covers = national || unit.is_within(caller.scope.as_str());
    // The caller's scope is strictly above the unit.
    let above =
        national || (caller.scope.as_str() != unit.code && unit.is_within(caller.scope.as_str()));
    // The caller's scope is the unit's province (or the country).
    let province = national
        || unit
            .ancestor_at(UnitLevel::Province)
            .is_some_and(|p| p.code == caller.scope.as_str())
        || (unit.level == UnitLevel::Province && unit.code == caller.scope.as_str());
    let has = |r: Role| caller.has_role(r);
    let allowed = match action {
        Action::Read => covers && Role::ALL.iter().any(|r| has(*r)),
        Action::Edit | Action::Submit => covers && has(Role::Submitter),
        Action::Verify => above && has(Role::Reviewer),
        Action::Approve | Action::Reopen => province && has(Role::Approver),
        Action::Return => (above && has(Role::Reviewer)) || (province && has(Role::Approver)),
    };
    if allowed {
        return Ok(());
    }
    let roles: Vec<_> = caller.roles.iter().map(|r| r.as_str()).collect();
    Err(format!(
        "{} (roles {}, scope {}) may not {} the assessment of {} {}",
        caller.subject,
        roles.join(","),
        caller.scope,
        action.as_str(),
        unit.code,
        unit.name
    ))
}

/// The state a review step leads to, or why it cannot be taken now.
pub fn transition(status: Status, review: Review, unit: &ResolvedUnit) -> Result<Status, String> {
    let verified_by_district = needs_verification(unit);
    let allowed = match (review, status) {
        (Review::Submit, Status::Draft | Status::Returned) => true,
        (Review::Verify, Status::Submitted) if !verified_by_district => {
            return Err(format!(
                "{} is approved by the province directly; there is no district verification",
                unit.code
            ));
        }
        (Review::Verify, Status::Submitted) => true,
        (Review::Approve, Status::Verified) => true,
        (Review::Approve, Status::Submitted) if verified_by_district => {
            return Err(
                "a commune's assessment is verified by its district before approval".to_owned(),
            );
        }
        (Review::Approve, Status::Submitted) => true,
        (Review::Return, Status::Submitted | Status::Verified) => true,
        (Review::Reopen, Status::Approved) => true,
        _ => false,
    };
    if allowed {
        Ok(review.target())
    } else {
        Err(format!(
            "cannot {} an assessment that is {}",
            review.as_str(),
            status.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chiso_proto::assessment::v1::AncestorRef;

    use super::*;

    fn commune(with_district: bool) -> ResolvedUnit {
        let mut ancestors = Vec::new();
        if with_district {
            ancestors.push(AncestorRef {
                unit_id: 16,
                code: "395".into(),
                name: "Huyện Thọ Xuân".into(),
                level: UnitLevel::District as i32,
            });
        }
        ancestors.push(AncestorRef {
            unit_id: 1,
            code: "38".into(),
            name: "Tỉnh Thanh Hóa".into(),
            level: UnitLevel::Province as i32,
        });
        ResolvedUnit {
            id: 274,
            code: "15499".into(),
            name: "Thị trấn Thọ Xuân".into(),
            level: UnitLevel::Commune,
            ancestors,
        }
    }

    fn caller(roles: &[Role], scope: &str) -> Caller {
        Caller {
            subject: "t".into(),
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
            scope: chiso_auth::Scope::parse(scope).expect("a valid scope"),
        }
    }

    #[test]
    fn scope_decides_who_acts_on_a_commune() {
        let unit = commune(true);
        assert!(authorize(&caller(&[Role::Submitter], "15499"), &unit, Action::Edit).is_ok());
        assert!(
            authorize(&caller(&[Role::Submitter], "15502"), &unit, Action::Edit).is_err(),
            "neighbour"
        );
        assert!(
            authorize(&caller(&[Role::Reader], "15502"), &unit, Action::Read).is_err(),
            "neighbour reads"
        );
        assert!(authorize(&caller(&[Role::Reviewer], "395"), &unit, Action::Verify).is_ok());
        assert!(
            authorize(&caller(&[Role::Reviewer], "15499"), &unit, Action::Verify).is_err(),
            "self-verify"
        );
        assert!(
            authorize(&caller(&[Role::Reviewer], "396"), &unit, Action::Verify).is_err(),
            "other district"
        );
        assert!(
            authorize(&caller(&[Role::Approver], "395"), &unit, Action::Approve).is_err(),
            "district approves"
        );
        assert!(authorize(&caller(&[Role::Approver], "38"), &unit, Action::Approve).is_ok());
        assert!(authorize(&caller(&[Role::Approver], "VN"), &unit, Action::Reopen).is_ok());
        assert!(authorize(&caller(&[Role::Reviewer], "395"), &unit, Action::Return).is_ok());
        assert!(
            authorize(&caller(&[Role::Submitter], "38"), &unit, Action::Approve).is_err(),
            "wrong role"
        );
    }

    #[test]
    fn the_lifecycle_follows_the_rules() {
        let unit = commune(true);
        let mut s = Status::Draft;
        for review in [
            Review::Submit,
            Review::Verify,
            Review::Approve,
            Review::Reopen,
            Review::Submit,
        ] {
            s = transition(s, review, &unit).unwrap();
        }
        assert_eq!(s, Status::Submitted);
        assert!(
            transition(Status::Submitted, Review::Approve, &unit).is_err(),
            "verification first"
        );
        assert!(transition(Status::Approved, Review::Submit, &unit).is_err());
        assert!(transition(Status::Draft, Review::Return, &unit).is_err());
        assert_eq!(
            transition(Status::Verified, Review::Return, &unit).unwrap(),
            Status::Returned
        );

        let two_tier = commune(false);
        assert_eq!(
            transition(Status::Submitted, Review::Approve, &two_tier).unwrap(),
            Status::Approved
        );
        assert!(transition(Status::Submitted, Review::Verify, &two_tier).is_err());
    }

    #[test]
    fn the_roles_of_a_review_step_are_those_authorize_lets_through() {
        let unit = commune(true);
        for review in Review::ALL {
            for role in Role::ALL {
                let allowed = authorize(&caller(&[role], "VN"), &unit, review.action()).is_ok();
                assert_eq!(
                    allowed,
                    review.roles().contains(&role),
                    "{review:?} by {role:?}"
                );
            }
        }
    }
}
