//! Where standardised data is put before the model sees it: scaled about its centre and moved
//! along x. Standard (scale 1 at the origin) everywhere but in the lesson on why diffusion
//! code standardises: data far from the origin, or wider than N(0, I), is still not noise at
//! t = 1 under a short schedule, so a reverse run started from N(0, I) starts in the wrong
//! place.

use serde::{Deserialize, Serialize};

use crate::Point;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    /// The x coordinate the data's centre is moved to.
    pub shift: f32,
    /// The factor its spread is multiplied by.
    pub scale: f32,
}

impl Default for Placement {
    fn default() -> Self {
        Self::STANDARD
    }
}

impl Placement {
    pub const STANDARD: Self = Self {
        shift: 0.0,
        scale: 1.0,
    };
    /// The ranges the app offers.
    pub const SHIFT_RANGE: std::ops::RangeInclusive<f32> = 0.0..=10.0;
    pub const SCALE_RANGE: std::ops::RangeInclusive<f32> = 0.25..=8.0;

    pub fn is_standard(&self) -> bool {
        *self == Self::STANDARD
    }

    /// A standardised point, placed.
    pub fn apply(&self, p: Point) -> Point {
        [p[0] * self.scale + self.shift, p[1] * self.scale]
    }

    /// How the data was moved, for its label ("" when standard).
    pub fn describe(&self) -> String {
        if self.is_standard() {
            String::new()
        } else {
            format!(
                " moved: centre x = {:.1}, spread ×{:.2}",
                self.shift, self.scale
            )
        }
    }

    /// Whether both numbers are in the offered ranges.
    pub fn is_valid(&self) -> bool {
        Self::SHIFT_RANGE.contains(&self.shift) && Self::SCALE_RANGE.contains(&self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_is_the_identity_and_the_map_is_affine() {
        assert_eq!(Placement::STANDARD.apply([0.3, -1.2]), [0.3, -1.2]);
        let p = Placement {
            shift: 4.0,
            scale: 2.0,
        };
        assert_eq!(p.apply([0.0, 0.0]), [4.0, 0.0]);
        assert_eq!(p.apply([1.0, -1.0]), [6.0, -2.0]);
        assert!(p.is_valid() && !p.is_standard());
        assert!(
            !Placement {
                shift: f32::NAN,
                scale: 1.0
            }
            .is_valid()
        );
    }
}
