//! The vocabulary of the hierarchy: kinds, levels, parts, change kinds, and
//! dates as they are stored.

use chiso_proto::units::v1 as pb;
use time::Date;
use time::macros::format_description;

/// Tier in the hierarchy, implied by the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Province = 1,
    District = 2,
    Commune = 3,
}

impl Level {
    pub fn from_i64(n: i64) -> Option<Level> {
        match n {
            1 => Some(Level::Province),
            2 => Some(Level::District),
            3 => Some(Level::Commune),
            _ => None,
        }
    }

    /// Digits of a GSO code at this level.
    pub fn code_len(self) -> usize {
        match self {
            Level::Province => 2,
            Level::District => 3,
            Level::Commune => 5,
        }
    }

    pub fn to_pb(self) -> pb::UnitLevel {
        match self {
            Level::Province => pb::UnitLevel::Province,
            Level::District => pb::UnitLevel::District,
            Level::Commune => pb::UnitLevel::Commune,
        }
    }

    pub fn from_pb(level: pb::UnitLevel) -> Option<Level> {
        match level {
            pb::UnitLevel::Unspecified => None,
            pb::UnitLevel::Province => Some(Level::Province),
            pb::UnitLevel::District => Some(Level::District),
            pb::UnitLevel::Commune => Some(Level::Commune),
        }
    }
}

/// The legal kind of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Tinh,
    ThanhPhoTrungUong,
    Huyen,
    Quan,
    ThiXa,
    ThanhPho,
    Xa,
    Phuong,
    ThiTran,
    DacKhu,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Tinh,
        Kind::ThanhPhoTrungUong,
        Kind::Huyen,
        Kind::Quan,
        Kind::ThiXa,
        Kind::ThanhPho,
        Kind::Xa,
        Kind::Phuong,
        Kind::ThiTran,
        Kind::DacKhu,
    ];

    pub fn level(self) -> Level {
        match self {
            Kind::Tinh | Kind::ThanhPhoTrungUong => Level::Province,
            Kind::Huyen | Kind::Quan | Kind::ThiXa | Kind::ThanhPho => Level::District,
            Kind::Xa | Kind::Phuong | Kind::ThiTran | Kind::DacKhu => Level::Commune,
        }
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tinh => "tinh",
            Kind::ThanhPhoTrungUong => "thanh_pho_trung_uong",
            Kind::Huyen => "huyen",
            Kind::Quan => "quan",
            Kind::ThiXa => "thi_xa",
            Kind::ThanhPho => "thanh_pho",
            Kind::Xa => "xa",
            Kind::Phuong => "phuong",
            Kind::ThiTran => "thi_tran",
            Kind::DacKhu => "dac_khu",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The type as GSO writes it in its lists (`Xã`, `Thị trấn`, …).
    pub fn gso_name(self) -> &'static str {
        match self {
            Kind::Tinh => "Tỉnh",
            Kind::ThanhPhoTrungUong => "Thành phố Trung ương",
            Kind::Huyen => "Huyện",
            Kind::Quan => "Quận",
            Kind::ThiXa => "Thị xã",
            Kind::ThanhPho => "Thành phố",
            Kind::Xa => "Xã",
            Kind::Phuong => "Phường",
            Kind::ThiTran => "Thị trấn",
            Kind::DacKhu => "Đặc khu",
        }
    }

    /// Reads a GSO type name; case-insensitive, since GSO itself is not
    /// consistent ("Thị Trấn").
    pub fn from_gso_name(s: &str) -> Option<Kind> {
        let s = s.trim().to_lowercase();
        Kind::ALL
            .into_iter()
            .find(|k| k.gso_name().to_lowercase() == s)
    }

    pub fn to_pb(self) -> pb::UnitKind {
        match self {
            Kind::Tinh => pb::UnitKind::Tinh,
            Kind::ThanhPhoTrungUong => pb::UnitKind::ThanhPhoTrungUong,
            Kind::Huyen => pb::UnitKind::Huyen,
            Kind::Quan => pb::UnitKind::Quan,
            Kind::ThiXa => pb::UnitKind::ThiXa,
            Kind::ThanhPho => pb::UnitKind::ThanhPho,
            Kind::Xa => pb::UnitKind::Xa,
            Kind::Phuong => pb::UnitKind::Phuong,
            Kind::ThiTran => pb::UnitKind::ThiTran,
            Kind::DacKhu => pb::UnitKind::DacKhu,
        }
    }

    pub fn from_pb(kind: pb::UnitKind) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.to_pb() == kind)
    }
}

/// Whether a predecessor went wholly or partly into a successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Full,
    Partial,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Full => "full",
            Part::Partial => "partial",
        }
    }

    pub fn parse(s: &str) -> Option<Part> {
        match s.trim() {
            "full" => Some(Part::Full),
            "partial" => Some(Part::Partial),
            _ => None,
        }
    }

    pub fn to_pb(self) -> pb::LineagePart {
        match self {
            Part::Full => pb::LineagePart::Full,
            Part::Partial => pb::LineagePart::Partial,
        }
    }

    pub fn from_pb(part: pb::LineagePart) -> Option<Part> {
        match part {
            pb::LineagePart::Unspecified => None,
            pb::LineagePart::Full => Some(Part::Full),
            pb::LineagePart::Partial => Some(Part::Partial),
        }
    }
}

/// What happened to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Change {
    Establish,
    Dissolve,
    Merge,
    Split,
    Rename,
    Reparent,
    Reclassify,
    Recode,
}

impl Change {
    pub const ALL: [Change; 8] = [
        Change::Establish,
        Change::Dissolve,
        Change::Merge,
        Change::Split,
        Change::Rename,
        Change::Reparent,
        Change::Reclassify,
        Change::Recode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Establish => "establish",
            Change::Dissolve => "dissolve",
            Change::Merge => "merge",
            Change::Split => "split",
            Change::Rename => "rename",
            Change::Reparent => "reparent",
            Change::Reclassify => "reclassify",
            Change::Recode => "recode",
        }
    }

    pub fn parse(s: &str) -> Option<Change> {
        Change::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn to_pb(self) -> pb::ChangeKind {
        match self {
            Change::Establish => pb::ChangeKind::Establish,
            Change::Dissolve => pb::ChangeKind::Dissolve,
            Change::Merge => pb::ChangeKind::Merge,
            Change::Split => pb::ChangeKind::Split,
            Change::Rename => pb::ChangeKind::Rename,
            Change::Reparent => pb::ChangeKind::Reparent,
            Change::Reclassify => pb::ChangeKind::Reclassify,
            Change::Recode => pb::ChangeKind::Recode,
        }
    }
}

/// Dates are stored as ISO-8601 text, which orders as the dates do.
pub fn date_to_sql(d: Date) -> String {
    d.format(format_description!("[year]-[month]-[day]"))
        .expect("a calendar date always formats")
}

pub fn date_from_sql(s: &str) -> Result<Date, time::error::Parse> {
    Date::parse(s, format_description!("[year]-[month]-[day]"))
}

/// Checks a GSO code for a unit of `level`: digits only, of the level's length.
pub fn check_code(code: &str, level: Level) -> Result<(), String> {
    if code.len() != level.code_len() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{code:?} is not a {} code ({} digits)",
            match level {
                Level::Province => "province",
                Level::District => "district",
                Level::Commune => "commune",
            },
            level.code_len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_every_form() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(Kind::from_gso_name(k.gso_name()), Some(k));
            assert_eq!(Kind::from_pb(k.to_pb()), Some(k));
        }
        assert_eq!(Kind::from_gso_name("Thị Trấn"), Some(Kind::ThiTran));
        assert_eq!(Kind::from_gso_name("Làng"), None);
        assert_eq!(Kind::ThanhPho.level(), Level::District);
        assert_eq!(Kind::ThanhPhoTrungUong.level(), Level::Province);
    }

    #[test]
    fn codes_are_checked_against_their_level() {
        assert!(check_code("38", Level::Province).is_ok());
        assert!(check_code("395", Level::District).is_ok());
        assert!(check_code("15499", Level::Commune).is_ok());
        assert!(check_code("1549", Level::Commune).is_err());
        assert!(check_code("3a", Level::Province).is_err());
    }

    #[test]
    fn dates_store_as_sortable_text() {
        let d = time::macros::date!(2019 - 12 - 01);
        assert_eq!(date_to_sql(d), "2019-12-01");
        assert_eq!(date_from_sql("2019-12-01").unwrap(), d);
        assert!(date_to_sql(d) < date_to_sql(time::macros::date!(2020 - 01 - 01)));
    }
}
