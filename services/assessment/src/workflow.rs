//! Who may do what to an assessment, and in which state: pure rules, so
//! they can be read and tested in one place.

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

/// The state an action leads to, or why it cannot be taken now.
pub fn transition(status: Status, action: Action, unit: &ResolvedUnit) -> Result<Status, String> {
    let next = match (action, status) {
        (Action::Submit, Status::Draft | Status::Returned) => Status::Submitted,
        (Action::Verify, Status::Submitted) if needs_verification(unit) => Status::Verified,
        (Action::Verify, Status::Submitted) => {
            return Err(format!(
                "{} is approved by the province directly; there is no district verification",
                unit.code
            ));
        }
        (Action::Approve, Status::Verified) => Status::Approved,
        (Action::Approve, Status::Submitted) if !needs_verification(unit) => Status::Approved,
        (Action::Approve, Status::Submitted) => {
            return Err(
                "a commune's assessment is verified by its district before approval".to_owned(),
            );
        }
        (Action::Return, Status::Submitted | Status::Verified) => Status::Returned,
        (Action::Reopen, Status::Approved) => Status::Returned,
        (action, status) => {
            return Err(format!(
                "cannot {} an assessment that is {}",
                action.as_str(),
                status.as_str()
            ));
        }
    };
    Ok(next)
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
        for action in [
            Action::Submit,
            Action::Verify,
            Action::Approve,
            Action::Reopen,
            Action::Submit,
        ] {
            s = transition(s, action, &unit).unwrap();
        }
        assert_eq!(s, Status::Submitted);
        assert!(
            transition(Status::Submitted, Action::Approve, &unit).is_err(),
            "verification first"
        );
        assert!(transition(Status::Approved, Action::Submit, &unit).is_err());
        assert!(transition(Status::Draft, Action::Return, &unit).is_err());
        assert_eq!(
            transition(Status::Verified, Action::Return, &unit).unwrap(),
            Status::Returned
        );

        let two_tier = commune(false);
        assert_eq!(
            transition(Status::Submitted, Action::Approve, &two_tier).unwrap(),
            Status::Approved
        );
        assert!(transition(Status::Submitted, Action::Verify, &two_tier).is_err());
    }
}
