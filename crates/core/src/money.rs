//! Money is an integer count of the currency's minor unit. matsuri sells in yen, which has
//! no minor unit, so one `Yen` is one yen.

use serde::{Deserialize, Serialize};

/// The only currency for now.
pub const CURRENCY: &str = "JPY";

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Yen(pub i64);

impl Yen {
    pub const ZERO: Yen = Yen(0);

    /// `self × quantity`, or `None` on overflow.
    pub fn times(self, quantity: i64) -> Option<Yen> {
        self.0.checked_mul(quantity).map(Yen)
    }

    pub fn plus(self, other: Yen) -> Option<Yen> {
        self.0.checked_add(other.0).map(Yen)
    }

    /// The given percentage, rounded down (as Japanese consumption tax is).
    pub fn percent_floor(self, percent: i64) -> Option<Yen> {
        self.0.checked_mul(percent).map(|v| Yen(v.div_euclid(100)))
    }
}

impl std::fmt::Display for Yen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "¥{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Yen(1200).times(3), Some(Yen(3600)));
        assert_eq!(Yen(i64::MAX).times(2), None);
        assert_eq!(Yen(1).plus(Yen(i64::MAX)), None);
    }

    #[test]
    fn tax_rounds_down() {
        assert_eq!(Yen(1999).percent_floor(10), Some(Yen(199)));
        assert_eq!(Yen(0).percent_floor(10), Some(Yen(0)));
    }
}
