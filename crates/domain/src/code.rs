use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// A GSO administrative-unit code: 2 digits for a province, 3 for a district,
/// 5 for a commune. The shape says the level; whether a unit holds the code
/// on a date is the units service's question (codes are reused over time).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GsoCode(String);

/// The level a code's shape names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeLevel {
    Province,
    District,
    Commune,
}

impl GsoCode {
    pub fn parse(code: &str) -> Result<GsoCode, Invalid> {
        if [2, 3, 5].contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(GsoCode(code.to_owned()))
        } else {
            Err(Invalid(format!(
                "{:?} is not a GSO code (2, 3 or 5 digits)",
                crate::scope::prefix(code)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn level(&self) -> CodeLevel {
        match self.0.len() {
            2 => CodeLevel::Province,
            3 => CodeLevel::District,
            _ => CodeLevel::Commune,
        }
    }

    pub fn is_province(&self) -> bool {
        self.level() == CodeLevel::Province
    }
}

impl fmt::Display for GsoCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for GsoCode {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GsoCode::parse(s)
    }
}

impl TryFrom<String> for GsoCode {
    type Error = Invalid;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        GsoCode::parse(&s)
    }
}

impl From<GsoCode> for String {
    fn from(c: GsoCode) -> String {
        c.0
    }
}

impl AsRef<str> for GsoCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for GsoCode {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for GsoCode {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_two_three_or_five_digits() {
        for (good, level) in [
            ("38", CodeLevel::Province),
            ("395", CodeLevel::District),
            ("14758", CodeLevel::Commune),
        ] {
            assert_eq!(GsoCode::parse(good).unwrap().level(), level, "{good}");
        }
        for bad in ["", "3", "0001", "123456", "38x", "3 8"] {
            let err = GsoCode::parse(bad).unwrap_err();
            assert!(err.0.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn serde_checks_the_shape() {
        let c: GsoCode = serde_json::from_str("\"38\"").unwrap();
        assert!(c.is_province());
        assert!(serde_json::from_str::<GsoCode>("\"3x\"").is_err());
    }
}
