//! Who may read and change what in reporting. The caller's role comes from
//! its token; a reader sees the units inside its scope, and targets are set
//! and removed by province (or national) admins only.

use chiso_auth::Caller;
use chiso_server::ApiError;

use crate::hierarchy::Placed;

/// Whether `who` may see figures of `unit`.
pub fn sees(who: &Caller, unit: &Placed) -> bool {
    who.is_national() || unit.is_within(who.scope.as_str())
}

/// `PermissionDenied` unless `who` may see figures of `unit`.
pub fn may_read(who: &Caller, unit: &Placed) -> Result<(), ApiError> {
    if sees(who, unit) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied(format!(
            "{} (scope {}) may not read {} {}",
            who.subject, who.scope, unit.unit.code, unit.unit.name
        )))
    }
}

/// What is done to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetChange {
    Create,
    Delete,
}

/// `PermissionDenied` unless `who` is scoped to a province or the whole
/// country: a district or commune system does not set the plan it is
/// measured against.
pub fn may_change_targets(who: &Caller, change: TargetChange) -> Result<(), ApiError> {
    if who.is_national() || who.scope.is_province() {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(match change {
        TargetChange::Create => format!(
            "targets are set by a province admin; {} is scoped to {}",
            who.subject, who.scope
        ),
        TargetChange::Delete => "targets are deleted by a province admin".to_owned(),
    }))
}
