use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Bad input, collected field by field so one answer names every problem.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations {
    items: Vec<(String, String)>,
}

impl Violations {
    pub fn new() -> Violations {
        Violations::default()
    }

    /// Records that `field` (a path such as `rows[3].parent_code`) is bad.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.items.push((field.into(), description.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.iter().map(|(f, d)| (f.as_str(), d.as_str()))
    }

    pub fn extend(&mut self, other: Violations) {
        self.items.extend(other.items);
    }

    /// `Ok` when nothing was recorded, else the `InvalidArgument` status.
    pub fn check(self) -> Result<(), Status> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into_status())
        }
    }

    /// `InvalidArgument` carrying a `google.rpc.BadRequest` with one field
    /// violation per problem; the message repeats them for plain clients.
    pub fn into_status(self) -> Status {
        let message = self
            .items
            .iter()
            .take(5)
            .map(|(f, d)| format!("{f}: {d}"))
            .collect::<Vec<_>>()
            .join("; ");
        let message = if self.items.len() > 5 {
            format!("{message}; and {} more", self.items.len() - 5)
        } else {
            message
        };
        let mut details = ErrorDetails::new();
        for (field, description) in self.items {
            details.add_bad_request_violation(field, description);
        }
        Status::with_error_details(Code::InvalidArgument, message, details)
    }
}

/// The field violations carried by a status, as (field, description) pairs.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_violation_travels_in_the_details() {
        let mut v = Violations::new();
        v.add("rows[0].code", "\"12\" is not a commune code");
        v.add("effective_date", "missing");
        let status = v.into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("rows[0].code"));
        assert_eq!(
            field_violations(&status),
            vec![
                (
                    "rows[0].code".to_owned(),
                    "\"12\" is not a commune code".to_owned()
                ),
                ("effective_date".to_owned(), "missing".to_owned()),
            ]
        );
        assert!(Violations::new().check().is_ok());
    }
}
