use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{GsoCode, Invalid};

/// The scope that covers the whole country.
pub const NATIONAL_SCOPE: &str = "VN";

/// What a caller may act on: the whole country, or one unit and everything
/// under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    National,
    Unit(GsoCode),
}

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, Invalid> {
        if text == NATIONAL_SCOPE {
            Ok(Scope::National)
        } else {
            GsoCode::parse(text).map(Scope::Unit).map_err(|_| {
                Invalid(format!(
                    "{:?} is neither {NATIONAL_SCOPE} nor a GSO code (2, 3 or 5 digits)",
                    prefix(text)
                ))
            })
        }
    }

    pub fn is_national(&self) -> bool {
        matches!(self, Scope::National)
    }

    pub fn is_province(&self) -> bool {
        matches!(self, Scope::Unit(code) if code.is_province())
    }

    /// The unit's code, or `None` for the whole country.
    pub fn code(&self) -> Option<&GsoCode> {
        match self {
            Scope::National => None,
            Scope::Unit(code) => Some(code),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Scope::National => NATIONAL_SCOPE,
            Scope::Unit(code) => code.as_str(),
        }
    }
}

/// At most 32 characters of a value, so a message never echoes a huge input.
pub(crate) fn prefix(text: &str) -> String {
    const MAX: usize = 32;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

impl TryFrom<String> for Scope {
    type Error = Invalid;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Scope::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.as_str().to_owned()
    }
}

impl PartialEq<str> for Scope {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Scope {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_or_a_unit() {
        assert!(Scope::parse("VN").unwrap().is_national());
        let province = Scope::parse("38").unwrap();
        assert!(province.is_province() && !province.is_national());
        assert!(!Scope::parse("395").unwrap().is_province());
        assert_eq!(Scope::parse("15499").unwrap().as_str(), "15499");
        assert!(Scope::parse("vn").is_err());
        let long = "9".repeat(100);
        let err = Scope::parse(&long).unwrap_err().0;
        assert!(err.len() < 120, "{err}");
    }
}
