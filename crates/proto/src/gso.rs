//! What every service checks about the values other systems send most: GSO
//! codes, and "today" as Vietnam counts days.

/// Checks the shape of a GSO code: 2 (province), 3 (district) or 5
/// (commune) digits. Whether a unit holds it on a date is the units
/// service's question.
pub fn check_gso_code(code: &str) -> Result<(), String> {
    if [2, 3, 5].contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("{code:?} is not a GSO code (2, 3 or 5 digits)"))
    }
}

/// Today in Vietnam (UTC+7): "as of today" means the local calendar day.
pub fn today() -> time::Date {
    let offset = time::UtcOffset::from_hms(7, 0, 0).expect("a valid offset");
    time::OffsetDateTime::now_utc().to_offset(offset).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_two_three_or_five_digits() {
        for good in ["38", "395", "14758"] {
            assert!(check_gso_code(good).is_ok(), "{good}");
        }
        for bad in ["", "3", "0001", "123456", "38x", "3 8"] {
            let err = check_gso_code(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
