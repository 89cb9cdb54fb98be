//! Enum values named in text (messages, CSV, the CLI) the one way: from the
//! generated `as_str_name`, so a new value needs no new match arm.

/// `UNIT_LEVEL_COMMUNE` without `UNIT_LEVEL_`, in lower case: `commune`.
///
/// `enum_name(status.as_str_name(), "ASSESSMENT_STATUS_")` is `draft`,
/// `submitted`, … and `unspecified` for the zero value.
pub fn enum_name(generated: &str, prefix: &str) -> String {
    generated
        .strip_prefix(prefix)
        .unwrap_or(generated)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use chiso_proto::assessment::v1::AssessmentStatus;
    use chiso_proto::units::v1::UnitLevel;

    use super::enum_name;

    #[test]
    fn names_are_the_generated_ones_without_their_prefix() {
        assert_eq!(
            enum_name(UnitLevel::Commune.as_str_name(), "UNIT_LEVEL_"),
            "commune"
        );
        assert_eq!(
            enum_name(
                AssessmentStatus::Returned.as_str_name(),
                "ASSESSMENT_STATUS_"
            ),
            "returned"
        );
        assert_eq!(
            enum_name(
                AssessmentStatus::Unspecified.as_str_name(),
                "ASSESSMENT_STATUS_"
            ),
            "unspecified"
        );
    }
}
