//! The 40 CelebA attribute columns, in the official order of `Anno/list_attr_celeba.txt`.

use std::fmt;

macro_rules! attrs {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// One CelebA attribute column. `Attr as usize` is its column index (0-based).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Attr { $($variant),* }

        impl Attr {
            /// All 40 columns in file order.
            pub const ALL: [Attr; 40] = [$(Attr::$variant),*];
            /// The official column names in file order.
            pub const NAMES: [&'static str; 40] = [$($name),*];
        }
    };
}

attrs! {
    FiveOClockShadow = "5_o_Clock_Shadow",
    ArchedEyebrows = "Arched_Eyebrows",
    Attractive = "Attractive",
    BagsUnderEyes = "Bags_Under_Eyes",
    Bald = "Bald",
    Bangs = "Bangs",
    BigLips = "Big_Lips",
    BigNose = "Big_Nose",
    BlackHair = "Black_Hair",
    BlondHair = "Blond_Hair",
    Blurry = "Blurry",
    BrownHair = "Brown_Hair",
    BushyEyebrows = "Bushy_Eyebrows",
    Chubby = "Chubby",
    DoubleChin = "Double_Chin",
    Eyeglasses = "Eyeglasses",
    Goatee = "Goatee",
    GrayHair = "Gray_Hair",
    HeavyMakeup = "Heavy_Makeup",
    HighCheekbones = "High_Cheekbones",
    Male = "Male",
    MouthSlightlyOpen = "Mouth_Slightly_Open",
    Mustache = "Mustache",
    NarrowEyes = "Narrow_Eyes",
    NoBeard = "No_Beard",
    OvalFace = "Oval_Face",
    PaleSkin = "Pale_Skin",
    PointyNose = "Pointy_Nose",
    RecedingHairline = "Receding_Hairline",
    RosyCheeks = "Rosy_Cheeks",
    Sideburns = "Sideburns",
    Smiling = "Smiling",
    StraightHair = "Straight_Hair",
    WavyHair = "Wavy_Hair",
    WearingEarrings = "Wearing_Earrings",
    WearingHat = "Wearing_Hat",
    WearingLipstick = "Wearing_Lipstick",
    WearingNecklace = "Wearing_Necklace",
    WearingNecktie = "Wearing_Necktie",
    Young = "Young",
}

/// The attributes the renderer draws as independent switches: each can be flipped on its own to
/// render an exact counterfactual twin, and each has a pixel-space detector in [`crate::judge`].
pub const FLIPPABLE: [Attr; 5] = [
    Attr::Eyeglasses,
    Attr::MouthSlightlyOpen,
    Attr::Smiling,
    Attr::Male,
    Attr::Young,
];

impl Attr {
    /// The official column name (`Mouth_Slightly_Open`).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Column index (0-based) in `list_attr_celeba.txt`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses an official name, case-insensitively; `-` may stand for `_` (`mouth-slightly-open`).
    pub fn from_name(name: &str) -> Option<Attr> {
        let norm = name.trim().replace('-', "_");
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.name().eq_ignore_ascii_case(&norm))
    }

    /// Whether this attribute can be flipped for a counterfactual (see [`FLIPPABLE`]).
    pub fn is_flippable(self) -> bool {
        FLIPPABLE.contains(&self)
    }

    /// Local attributes change only a landmark-defined region (their [`crate::mask`]).
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Attr::Eyeglasses | Attr::MouthSlightlyOpen | Attr::Smiling
        )
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A full row of the attribute file: +1 / -1 per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrRow(pub [i8; 40]);

impl AttrRow {
    /// All -1.
    pub fn none() -> Self {
        AttrRow([-1; 40])
    }

    /// Whether the attribute is +1.
    pub fn get(&self, a: Attr) -> bool {
        self.0[a as usize] > 0
    }

    /// Sets the attribute to +1 (`true`) or -1.
    pub fn set(&mut self, a: Attr, on: bool) {
        self.0[a as usize] = if on { 1 } else { -1 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_official_order() {
        assert_eq!(Attr::ALL.len(), 40);
        for (i, a) in Attr::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
            assert_eq!(Attr::from_name(a.name()), Some(*a));
        }
        assert_eq!(
            Attr::from_name("mouth-slightly-open"),
            Some(Attr::MouthSlightlyOpen)
        );
        assert_eq!(Attr::from_name("nope"), None);
        assert_eq!(Attr::Eyeglasses.index(), 15);
        assert_eq!(Attr::Male.index(), 20);
        assert_eq!(Attr::Young.index(), 39);
    }
}
