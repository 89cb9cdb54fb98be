//! Problems found in a set or a value, reported all at once so that whoever
//! edits a file or fills a form can fix everything in one pass.

use std::fmt;
use std::path::Path;

/// One problem: where (`groups[1].indicators[3].threshold`, and for a file
/// the line) and what (`120 is outside 0–100`). Paths index from 0, like the
/// TOML arrays they point into, and map onto `google.rpc.BadRequest` field
/// violations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Empty when the problem belongs to no one field (a file that does not
    /// parse).
    pub path: String,
    /// 1-based line of the file the problem was found in; `None` for a set or
    /// value that did not come from a file, or when the parser could not tell.
    pub line: Option<usize>,
    pub message: String,
}

impl Violation {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }

    /// The violation as a `google.rpc.BadRequest` field violation of the
    /// request field `under` (`definition_toml`): the field is the path below
    /// it, the description the message after its line (`line 12: …`), which
    /// is how every client has read it.
    pub fn to_field_violation(&self, under: &str) -> (String, String) {
        let field = if self.path.is_empty() {
            under.to_owned()
        } else {
            format!("{under}.{}", self.path)
        };
        let description = match self.line {
            Some(line) => format!("line {line}: {}", self.message),
            None => self.message.clone(),
        };
        (field, description)
    }

    /// The inverse of [`Violation::to_field_violation`]; `None` when `field`
    /// is not `under` or a field below it.
    pub fn from_field_violation(under: &str, field: &str, description: &str) -> Option<Self> {
        let path = match field.strip_prefix(under)? {
            "" => "",
            rest => rest.strip_prefix('.')?,
        };
        let (line, message) = description
            .strip_prefix("line ")
            .and_then(|rest| rest.split_once(": "))
            .and_then(|(n, m)| Some((n.parse().ok()?, m)))
            .map_or((None, description), |(n, m)| (Some(n), m));
        Some(Violation {
            path: path.to_owned(),
            line,
            message: message.to_owned(),
        })
    }

    /// As a compiler names a problem in a file:
    /// `set.toml:12: groups[0].indicators[1].threshold: 120 is outside 0–100`.
    pub fn render(&self, file: &Path) -> String {
        let mut text = file.display().to_string();
        if let Some(line) = self.line {
            text.push_str(&format!(":{line}"));
        }
        text.push_str(": ");
        if !self.path.is_empty() {
            text.push_str(&self.path);
            text.push_str(": ");
        }
        text.push_str(&self.message);
        text
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found; never empty when returned as an error. Shown one
/// problem a line, as a file's problems are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// `Ok` when nothing was found.
    pub(crate) fn into_result(list: Vec<Violation>) -> Result<(), Violations> {
        if list.is_empty() {
            Ok(())
        } else {
            Err(Violations(list))
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Violation> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some problem sits at exactly `path`; handy in tests and when
    /// mapping onto request fields.
    pub fn has(&self, path: &str) -> bool {
        self.0.iter().any(|v| v.path == path)
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a Violation;
    type IntoIter = std::slice::Iter<'a, Violation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_travels_as_a_field_violation_and_back() {
        let at_line = Violation {
            path: "years[0]".into(),
            line: Some(6),
            message: "20223 is outside 2000–2100".into(),
        };
        let wire = at_line.to_field_violation("definition_toml");
        assert_eq!(
            wire,
            (
                "definition_toml.years[0]".to_owned(),
                "line 6: 20223 is outside 2000–2100".to_owned()
            )
        );
        let whole = Violation::new("", "missing field `id`");
        let (field, description) = whole.to_field_violation("definition_toml");
        assert_eq!(field, "definition_toml");
        for v in [at_line, whole] {
            let (field, description) = v.to_field_violation("definition_toml");
            assert_eq!(
                Violation::from_field_violation("definition_toml", &field, &description),
                Some(v)
            );
        }
        assert_eq!(
            Violation::from_field_violation("definition_toml", "etag", &description),
            None
        );
    }

    #[test]
    fn a_violation_reads_like_its_text() {
        let v = Violation {
            path: "groups[1].indicators[0].threshold".into(),
            line: Some(12),
            message: "120 is outside 0–100".into(),
        };
        assert_eq!(
            v.to_string(),
            "line 12: groups[1].indicators[0].threshold: 120 is outside 0–100"
        );
        assert_eq!(
            Violation::new("", "no value reported").to_string(),
            "no value reported"
        );
    }
}
