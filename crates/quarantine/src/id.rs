use std::fmt;
use std::str::FromStr;

use uuid::{Uuid, Version};

/// The id of a held message: a UUIDv7, so ids sort by the time they were made.
///
/// Only the hyphenated lower-case form is accepted, because the id becomes a
/// file name and one message must have exactly one spelling on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuarantineId(Uuid);

/// A string that is not a quarantine id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid quarantine id {value:?}: expected a UUIDv7 such as 0193a4b2-7c1e-7d3a-9b1f-2c4d5e6f7a8b, as shown by `gatehouse quarantine list`"
)]
pub struct InvalidId {
    pub value: String,
}

impl QuarantineId {
    /// Validates `value` as a hyphenated lower-case UUIDv7.
    pub fn parse(value: &str) -> Result<QuarantineId, InvalidId> {
        let invalid = || InvalidId {
            value: value.chars().take(100).collect(),
        };
        // Uuid::try_parse also accepts braces, URNs and the simple form; a file
        // name needs the one canonical spelling.
        if value.len() != 36 {
            return Err(invalid());
        }
        let uuid = Uuid::try_parse(value).map_err(|_| invalid())?;
        if uuid.get_version() != Some(Version::SortRand) {
            return Err(invalid());
        }
        let id = QuarantineId(uuid);
        if id.to_string() != value {
            return Err(invalid());
        }
        Ok(id)
    }

    /// Makes a fresh id for the current time.
    pub fn now() -> QuarantineId {
        QuarantineId(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for QuarantineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

impl FromStr for QuarantineId {
    type Err = InvalidId;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        QuarantineId::parse(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_uuid_v7() {
        let id = QuarantineId::now().to_string();
        assert_eq!(QuarantineId::parse(&id).map(|id| id.to_string()), Ok(id));
    }

    #[test]
    fn parse_rejects_everything_else() {
        let cases = [
            ("empty", ""),
            ("path traversal", "../../etc/passwd"),
            ("slash inside", "0193a4b2-7c1e-7d3a-9b1f/2c4d5e6f7a8b0"),
            ("uuid v4", "9f1c1e4a-3b2d-4c5e-8f6a-7b8c9d0e1f2a"),
            ("upper case", "0193A4B2-7C1E-7D3A-9B1F-2C4D5E6F7A8B"),
            ("simple form", "0193a4b27c1e7d3a9b1f2c4d5e6f7a8b"),
            ("braced", "{0193a4b2-7c1e-7d3a-9b1f-2c4d5e6f7a8b}"),
            ("trailing newline", "0193a4b2-7c1e-7d3a-9b1f-2c4d5e6f7a8\n"),
            ("nil uuid", "00000000-0000-0000-0000-000000000000"),
        ];
        for (case, value) in cases {
            assert!(
                QuarantineId::parse(value).is_err(),
                "{case}: {value:?} was accepted"
            );
        }
    }
}
