//! DensePose's body parts as HDNet's data stores them (the part index in an IUV image's third
//! channel): 0 is the background, 1..=NUM_PARTS are parts of the body.

/// Number of DensePose body parts.
pub const NUM_PARTS: u8 = 24;

/// Part after a left/right mirror (index = part 0..=NUM_PARTS).
pub const MIRRORED_PART: [u8; NUM_PARTS as usize + 1] =
    [0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 23, 24];

/// The body region a part belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRegion {
    Background,
    /// Torso back and front.
    Torso,
    Hand,
    Foot,
    /// Upper and lower legs, back and front.
    Leg,
    /// Upper and lower arms, back and front.
    Arm,
    Head,
}

/// The region of part `part` (indices above NUM_PARTS are not parts: background).
pub fn region(part: u8) -> BodyRegion {
    match part {
        1..=2 => BodyRegion::Torso,
        3..=4 => BodyRegion::Hand,
        5..=6 => BodyRegion::Foot,
        7..=14 => BodyRegion::Leg,
        15..=22 => BodyRegion::Arm,
        23..=24 => BodyRegion::Head,
        _ => BodyRegion::Background,
    }
}

/// Checks that a part index read from an image is one: an integer in 0..=NUM_PARTS.
pub fn check_part(value: f32) -> Result<u8, String> {
    if (0.0..=f32::from(NUM_PARTS)).contains(&value) && value.fract() == 0.0 {
        Ok(value as u8)
    } else {
        Err(format!("part index {value} (expected an integer 0..={NUM_PARTS})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirroring_twice_is_the_identity_and_keeps_regions() {
        for p in 0..=NUM_PARTS {
            let m = MIRRORED_PART[p as usize];
            assert_eq!(MIRRORED_PART[m as usize], p);
            assert_eq!(region(m), region(p));
        }
        assert_eq!(region(25), BodyRegion::Background);
    }

    #[test]
    fn part_values_are_checked() {
        assert_eq!(check_part(24.0), Ok(24));
        assert_eq!(check_part(0.0), Ok(0));
        assert!(check_part(25.0).unwrap_err().contains("part index 25"));
        assert!(check_part(2.5).is_err());
        assert!(check_part(-1.0).is_err());
    }
}
