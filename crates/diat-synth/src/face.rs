//! What a synthetic face is: identity parameters × per-image jitter × the drawn attribute switches.
//!
//! Every random number is drawn unconditionally and in a fixed order, so flipping one attribute
//! switch ([`FaceSpec::flipped`]) changes nothing else: the counterfactual twin has the same identity,
//! pose, scale, lighting and landmarks, and differs only where the attribute is drawn.
//! Sex- and age-dependent looks (hair length, beard, jaw, grey hair, wrinkles…) are latent identity
//! choices for both values, so a flipped `Male` or `Young` is still recognisably the same person.

use crate::attrs::{Attr, AttrRow};
use crate::layout::{Layout, Stream, rng};
use crate::raster::{Rgb, Rot};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Width of the aligned CelebA frame.
pub const WIDTH: usize = 178;
/// Height of the aligned CelebA frame.
pub const HEIGHT: usize = 218;

/// Mean eye-midpoint of aligned CelebA (from the official landmark file: eyes at (69,111.5), (108,111)).
pub const EYE_MID: (f32, f32) = (88.5, 111.3);

/// Hair colour family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HairClass {
    Black,
    Brown,
    Blond,
    Red,
}

/// Facial hair worn when the identity is drawn male.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Beard {
    None,
    Stubble,
    Mustache,
    Goatee,
    Full,
}

/// Glasses worn when `Eyeglasses` is on.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Glasses {
    /// Lens half-width and half-height as fractions of the inter-ocular distance.
    pub half_w: f32,
    pub half_h: f32,
    /// Corner radius as a fraction of the half-height (1 = oval/round).
    pub round: f32,
    #[serde(skip)]
    pub frame: Rgb,
    /// Frame thickness in pixels.
    pub thick: f32,
    /// Sunglasses (dark lenses).
    pub sun: bool,
}

/// Per-identity parameters (constant over all images of the identity and its counterfactuals).
#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub id: u32,
    pub male: bool,
    pub young: bool,
    // Geometry, in pixels at scale 1, in the face frame (origin at the eye midpoint, x right, y down).
    pub iod: f32,
    pub em: f32,
    pub mouth_w: f32,
    pub nose_y: f32,
    pub nose_w: f32,
    pub eye_mid: (f32, f32),
    pub head_a: f32,
    pub head_top: f32,
    pub chin: f32,
    pub jaw_f: f32,
    pub jaw_m: f32,
    pub chubby: bool,
    // Colours.
    #[serde(skip)]
    pub skin: Rgb,
    pub skin_t: f32,
    pub hair_class: HairClass,
    #[serde(skip)]
    pub hair: Rgb,
    #[serde(skip)]
    pub hair_grey: Rgb,
    #[serde(skip)]
    pub eye_color: Rgb,
    #[serde(skip)]
    pub background: Rgb,
    #[serde(skip)]
    pub background_top: Rgb,
    #[serde(skip)]
    pub clothes: Rgb,
    // Hair.
    pub wavy: bool,
    pub long_len: f32,
    pub long_volume: f32,
    pub bangs_f: bool,
    pub bangs_m: bool,
    pub short_thick: f32,
    pub bald_if_old: bool,
    pub receding_if_old: bool,
    pub part: f32,
    // Face features.
    pub eye_w: f32,
    pub eye_h: f32,
    pub brow_f: (f32, f32),
    pub brow_m: (f32, f32),
    pub brow_gap: f32,
    pub lip_u: f32,
    pub lip_l: f32,
    pub big_lips: bool,
    #[serde(skip)]
    pub lip_tint: Rgb,
    #[serde(skip)]
    pub lipstick: Option<Rgb>,
    pub makeup: bool,
    #[serde(skip)]
    pub eyeshadow: Rgb,
    pub blush: bool,
    pub pointy_nose: bool,
    pub cheekbones: bool,
    pub bags: bool,
    pub bags_old: bool,
    pub beard: Beard,
    pub sideburns: bool,
    pub earrings: bool,
    pub necklace: bool,
    pub necktie: bool,
    pub glasses_often: bool,
    pub glasses: Glasses,
    pub smile_p: f32,
    pub light: (f32, f32),
    pub tex_offset: (usize, usize),
    pub attractive: f32,
}

/// Per-image variation (independent of the attribute switches).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Jitter {
    pub roll: f32,
    pub scale: f32,
    pub tx: f32,
    pub ty: f32,
    pub yaw: f32,
    pub light_dx: f32,
    pub light_gain: f32,
    pub smile_amt: f32,
    pub open_amt: f32,
    pub gaze: (f32, f32),
    pub u_glasses: f32,
    pub u_smile: f32,
    pub u_open: f32,
}

/// The attribute switches the renderer draws (see [`crate::attrs::FLIPPABLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Drawn {
    pub eyeglasses: bool,
    pub mouth_open: bool,
    pub smiling: bool,
    pub male: bool,
    pub young: bool,
}

impl Drawn {
    pub fn get(&self, a: Attr) -> Option<bool> {
        Some(match a {
            Attr::Eyeglasses => self.eyeglasses,
            Attr::MouthSlightlyOpen => self.mouth_open,
            Attr::Smiling => self.smiling,
            Attr::Male => self.male,
            Attr::Young => self.young,
            _ => return None,
        })
    }

    fn set(&mut self, a: Attr, on: bool) -> bool {
        match a {
            Attr::Eyeglasses => self.eyeglasses = on,
            Attr::MouthSlightlyOpen => self.mouth_open = on,
            Attr::Smiling => self.smiling = on,
            Attr::Male => self.male = on,
            Attr::Young => self.young = on,
            _ => return false,
        }
        true
    }
}

/// CelebA's five aligned landmarks, in pixels of the 178×218 frame (integers, like the file).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Landmarks {
    pub left_eye: (f32, f32),
    pub right_eye: (f32, f32),
    pub nose: (f32, f32),
    pub left_mouth: (f32, f32),
    pub right_mouth: (f32, f32),
}

impl Landmarks {
    /// The ten integers of a `list_landmarks_align_celeba.txt` row.
    pub fn to_row(&self) -> [i32; 10] {
        let p = [
            self.left_eye,
            self.right_eye,
            self.nose,
            self.left_mouth,
            self.right_mouth,
        ];
        let mut out = [0; 10];
        for (i, (x, y)) in p.iter().enumerate() {
            out[2 * i] = x.round() as i32;
            out[2 * i + 1] = y.round() as i32;
        }
        out
    }

    /// From a landmark file row.
    pub fn from_row(r: [i32; 10]) -> Self {
        let p = |i: usize| (r[2 * i] as f32, r[2 * i + 1] as f32);
        Self {
            left_eye: p(0),
            right_eye: p(1),
            nose: p(2),
            left_mouth: p(3),
            right_mouth: p(4),
        }
    }

    pub fn eye_mid(&self) -> (f32, f32) {
        mid(self.left_eye, self.right_eye)
    }

    pub fn mouth_mid(&self) -> (f32, f32) {
        mid(self.left_mouth, self.right_mouth)
    }

    /// Distance between the eyes.
    pub fn iod(&self) -> f32 {
        dist(self.left_eye, self.right_eye)
    }

    /// Distance from the eye midpoint to the mouth midpoint.
    pub fn eye_mouth(&self) -> f32 {
        dist(self.eye_mid(), self.mouth_mid())
    }

    /// Scales all points by `(sx, sy)` after subtracting `(ox, oy)` (crop + resize).
    pub fn map(&self, ox: f32, oy: f32, sx: f32, sy: f32) -> Self {
        let f = |p: (f32, f32)| ((p.0 - ox) * sx, (p.1 - oy) * sy);
        Self {
            left_eye: f(self.left_eye),
            right_eye: f(self.right_eye),
            nose: f(self.nose),
            left_mouth: f(self.left_mouth),
            right_mouth: f(self.right_mouth),
        }
    }
}

pub(crate) fn mid(a: (f32, f32), b: (f32, f32)) -> (f32, f32) {
    ((a.0 + b.0) * 0.5, (a.1 + b.1) * 0.5)
}

pub(crate) fn dist(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// The similarity transform from the face frame to the image.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub ox: f32,
    pub oy: f32,
    pub rot: Rot,
    pub s: f32,
}

impl Frame {
    /// Face-frame point → image point.
    pub fn at(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = self.rot.apply(x * self.s, y * self.s);
        (self.ox + dx, self.oy + dy)
    }
}

/// Everything needed to render one image.
#[derive(Debug, Clone, Serialize)]
pub struct FaceSpec {
    /// Image index (0-based) in its layout.
    pub index: u32,
    pub identity: Identity,
    pub jitter: Jitter,
    pub drawn: Drawn,
}

fn u(r: &mut ChaCha8Rng, a: f32, b: f32) -> f32 {
    a + (b - a) * r.random::<f32>()
}

fn p(r: &mut ChaCha8Rng, prob: f32) -> bool {
    r.random::<f32>() < prob
}

fn pick<T: Copy>(r: &mut ChaCha8Rng, items: &[(T, f32)]) -> T {
    let total: f32 = items.iter().map(|i| i.1).sum();
    let mut x = r.random::<f32>() * total;
    for &(v, w) in items {
        if x < w {
            return v;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn hsv(h: f32, s: f32, v: f32) -> Rgb {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let (pp, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as i32 {
        0 => Rgb::new(v, t, pp),
        1 => Rgb::new(q, v, pp),
        2 => Rgb::new(pp, v, t),
        3 => Rgb::new(pp, q, v),
        4 => Rgb::new(t, pp, v),
        _ => Rgb::new(v, pp, q),
    }
}

const SKIN_STOPS: [Rgb; 6] = [
    Rgb::new(0.97, 0.84, 0.75),
    Rgb::new(0.92, 0.75, 0.63),
    Rgb::new(0.82, 0.61, 0.48),
    Rgb::new(0.67, 0.47, 0.34),
    Rgb::new(0.49, 0.33, 0.23),
    Rgb::new(0.33, 0.22, 0.16),
];

fn skin_at(t: f32) -> Rgb {
    let x = t.clamp(0.0, 1.0) * (SKIN_STOPS.len() - 1) as f32;
    let i = (x.floor() as usize).min(SKIN_STOPS.len() - 2);
    SKIN_STOPS[i].mix(SKIN_STOPS[i + 1], x - i as f32)
}

impl Identity {
    /// Identity `id` of the dataset with `seed`.
    pub fn sample(seed: u64, id: u32) -> Self {
        let r = &mut rng(seed, Stream::Identity, id);
        let male = p(r, 0.42);
        let young = p(r, 0.76);
        let iod = u(r, 35.5, 41.5);
        let em = iod * u(r, 0.97, 1.13);
        let mouth_w = iod * u(r, 0.80, 0.96);
        let nose_y = em * u(r, 0.52, 0.62);
        let nose_w = iod * u(r, 0.27, 0.43);
        let eye_mid = (EYE_MID.0 + u(r, -1.0, 1.0), EYE_MID.1 + u(r, -1.0, 1.0));
        let chubby = p(r, 0.08);
        let head_a = iod * (u(r, 1.1, 1.2) + if chubby { 0.1 } else { 0.0 });
        let head_top = iod * u(r, 1.6, 1.8);
        let chin = em * u(r, 0.66, 0.8);
        let jaw_f = u(r, 0.56, 0.66);
        let jaw_m = u(r, 0.72, 0.82);
        let skin_t = r.random::<f32>().powf(1.4);
        let skin = skin_at(skin_t).mix(Rgb::new(0.9, 0.7, 0.6), u(r, -0.08, 0.08));
        let hair_class = pick(
            r,
            &[
                (HairClass::Black, 0.30),
                (HairClass::Brown, 0.45),
                (HairClass::Blond, 0.19),
                (HairClass::Red, 0.06),
            ],
        );
        let shade = u(r, 0.0, 1.0);
        let hair = match hair_class {
            HairClass::Black => Rgb::new(0.07, 0.06, 0.06).mix(Rgb::new(0.12, 0.09, 0.08), shade),
            HairClass::Brown => Rgb::new(0.20, 0.12, 0.08).mix(Rgb::new(0.50, 0.35, 0.22), shade),
            HairClass::Blond => Rgb::new(0.68, 0.53, 0.32).mix(Rgb::new(0.90, 0.79, 0.55), shade),
            HairClass::Red => Rgb::new(0.50, 0.20, 0.09).mix(Rgb::new(0.70, 0.33, 0.14), shade),
        };
        let grey = Rgb::new(0.74, 0.74, 0.75).scale(u(r, 0.85, 1.12));
        let hair_grey = hair.mix(grey, u(r, 0.8, 0.95)).clamp01();
        let eye_dark = skin_t * 0.8;
        let eye_color = pick(
            r,
            &[
                (Rgb::new(0.30, 0.17, 0.08), 0.3 + eye_dark),
                (Rgb::new(0.16, 0.09, 0.05), 0.2 + eye_dark),
                (Rgb::new(0.42, 0.33, 0.15), 0.12),
                (Rgb::new(0.28, 0.42, 0.28), 0.08),
                (Rgb::new(0.25, 0.42, 0.62), 0.18),
                (Rgb::new(0.42, 0.50, 0.58), 0.1),
            ],
        );
        // A background that contrasts with the hair (young and grey) and the skin.
        // (32 draws are always made, so the stream stays aligned whichever is accepted.)
        let mut background = None;
        let contrast = |c: Rgb| {
            [hair, hair.scale(0.75), hair_grey, hair_grey.scale(0.75)]
                .iter()
                .all(|h| c.dist(*h) > 0.3)
                && c.dist(skin) > 0.2
        };
        for _ in 0..32 {
            let c = hsv(u(r, 0.0, 1.0), u(r, 0.08, 0.5), u(r, 0.3, 0.95));
            if background.is_none() && contrast(c) {
                background = Some(c);
            }
        }
        let fallback_hue = u(r, 0.0, 1.0);
        let background = background.unwrap_or_else(|| {
            // Opposite brightness to the (young) hair.
            hsv(
                fallback_hue,
                0.3,
                if hair.luma() > 0.4 { 0.22 } else { 0.92 },
            )
        });
        let background_top = background.scale(u(r, 1.0, 1.15)).clamp01();
        let clothes = hsv(u(r, 0.0, 1.0), u(r, 0.1, 0.7), u(r, 0.15, 0.8));
        let wavy = p(r, 0.3);
        let long_len = u(r, 28.0, 85.0);
        let long_volume = u(r, 6.0, 13.0);
        let bangs_f = p(r, 0.28);
        let bangs_m = p(r, 0.1);
        let short_thick = u(r, 3.0, 7.5);
        let bald_if_old = p(r, 0.35);
        let receding_if_old = p(r, 0.4);
        let part = u(r, -1.0, 1.0);
        let eye_w = iod * u(r, 0.23, 0.27);
        let eye_h = iod * u(r, 0.075, 0.11);
        let brow_f = (u(r, 0.9, 1.4), u(r, 0.35, 1.0));
        let brow_m = (u(r, 1.3, 2.3), u(r, 0.1, 0.55));
        let brow_gap = iod * u(r, 0.31, 0.37);
        let big_lips = p(r, 0.2);
        let lk = if big_lips { 1.3 } else { 1.0 };
        let lip_u = u(r, 2.4, 3.6) * lk;
        let lip_l = u(r, 3.2, 4.8) * lk;
        let lip_tint = Rgb::new(0.86, 0.58, 0.56).mix(Rgb::new(0.8, 0.55, 0.6), u(r, 0.0, 1.0));
        let makeup = p(r, 0.4);
        let lipstick_on = makeup || p(r, 0.3);
        let lip_choice = pick(
            r,
            &[
                (Rgb::new(0.95, 0.38, 0.45), 1.0),
                (Rgb::new(0.85, 0.30, 0.35), 1.0),
                (Rgb::new(0.98, 0.52, 0.56), 1.0),
                (Rgb::new(0.80, 0.38, 0.48), 1.0),
            ],
        );
        let lipstick = lipstick_on.then_some(lip_choice);
        let eyeshadow = pick(
            r,
            &[
                (Rgb::new(0.55, 0.42, 0.38), 1.0),
                (Rgb::new(0.55, 0.45, 0.62), 1.0),
                (Rgb::new(0.40, 0.36, 0.38), 1.0),
            ],
        );
        let blush = p(r, 0.2);
        let pointy_nose = p(r, 0.28);
        let cheekbones = p(r, 0.4);
        let bags = p(r, 0.12);
        let bags_old = p(r, 0.5);
        let beard = pick(
            r,
            &[
                (Beard::None, 0.38),
                (Beard::Stubble, 0.22),
                (Beard::Mustache, 0.08),
                (Beard::Goatee, 0.14),
                (Beard::Full, 0.18),
            ],
        );
        let sideburns = p(r, 0.3);
        let earrings = p(r, 0.25);
        let necklace = p(r, 0.15);
        let necktie = p(r, 0.12);
        let glasses_often = p(r, 0.2);
        let frame = pick(
            r,
            &[
                (Rgb::new(0.05, 0.05, 0.06), 3.0),
                (Rgb::new(0.22, 0.13, 0.08), 1.0),
                (Rgb::new(0.10, 0.13, 0.22), 1.0),
                (Rgb::new(0.30, 0.08, 0.10), 0.6),
                (Rgb::new(0.25, 0.26, 0.28), 1.0),
            ],
        );
        // The frame must stand out against the skin: light metal frames on dark skin.
        let frame = if (frame.luma() - skin.luma()).abs() < 0.3 {
            pick(
                r,
                &[
                    (Rgb::new(0.85, 0.72, 0.38), 1.0),
                    (Rgb::new(0.82, 0.82, 0.85), 1.0),
                    (Rgb::new(0.95, 0.93, 0.9), 0.5),
                ],
            )
        } else {
            let _ = r.random::<f32>();
            frame
        };
        let glasses = Glasses {
            half_w: u(r, 0.26, 0.30),
            half_h: u(r, 0.19, 0.23),
            round: u(r, 0.3, 1.0),
            frame,
            thick: u(r, 1.4, 2.2),
            sun: p(r, 0.15),
        };
        let smile_p = u(r, 0.25, 0.75);
        let light = (u(r, -0.5, 0.5), u(r, -0.45, -0.15));
        let tex_offset = (r.random_range(0..64usize), r.random_range(0..64usize));
        let attractive = u(r, 0.0, 1.0);
        Identity {
            id,
            male,
            young,
            iod,
            em,
            mouth_w,
            nose_y,
            nose_w,
            eye_mid,
            head_a,
            head_top,
            chin,
            jaw_f,
            jaw_m,
            chubby,
            skin,
            skin_t,
            hair_class,
            hair,
            hair_grey,
            eye_color,
            background,
            background_top,
            clothes,
            wavy,
            long_len,
            long_volume,
            bangs_f,
            bangs_m,
            short_thick,
            bald_if_old,
            receding_if_old,
            part,
            eye_w,
            eye_h,
            brow_f,
            brow_m,
            brow_gap,
            lip_u,
            lip_l,
            big_lips,
            lip_tint,
            lipstick,
            makeup,
            eyeshadow,
            blush,
            pointy_nose,
            cheekbones,
            bags,
            bags_old,
            beard,
            sideburns,
            earrings,
            necklace,
            necktie,
            glasses_often,
            glasses,
            smile_p,
            light,
            tex_offset,
            attractive,
        }
    }
}

impl Jitter {
    fn sample(r: &mut ChaCha8Rng) -> Self {
        Jitter {
            roll: u(r, -3.5, 3.5).to_radians(),
            scale: u(r, 0.965, 1.035),
            tx: u(r, -1.5, 1.5),
            ty: u(r, -1.5, 1.5),
            yaw: u(r, -1.0, 1.0),
            light_dx: u(r, -0.15, 0.15),
            light_gain: u(r, 0.92, 1.08),
            smile_amt: u(r, 0.0, 1.0),
            open_amt: u(r, 0.0, 1.0),
            gaze: (u(r, -1.0, 1.0), u(r, -0.4, 0.4)),
            u_glasses: r.random(),
            u_smile: r.random(),
            u_open: r.random(),
        }
    }
}

/// Why a counterfactual could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a drawn attribute switch; counterfactuals exist for {list}", list = crate::attrs::FLIPPABLE.map(|a| a.name()).join(", "))]
pub struct NotFlippable(pub Attr);

impl FaceSpec {
    /// Image `index` of identity `identity` under `seed`.
    pub fn sample(seed: u64, identity: u32, index: u32) -> Self {
        let id = Identity::sample(seed, identity);
        let r = &mut rng(seed, Stream::Image, index);
        let jitter = Jitter::sample(r);
        let glasses_p = if id.glasses_often { 0.85 } else { 0.03 };
        let smiling = jitter.u_smile < id.smile_p;
        let open_p = if smiling { 0.6 } else { 0.32 };
        let drawn = Drawn {
            eyeglasses: jitter.u_glasses < glasses_p,
            mouth_open: jitter.u_open < open_p,
            smiling,
            male: id.male,
            young: id.young,
        };
        FaceSpec {
            index,
            identity: id,
            jitter,
            drawn,
        }
    }

    /// Image `index` of a layout.
    pub fn for_image(layout: &Layout, index: u32) -> Self {
        Self::sample(layout.seed, layout.identity_of(index), index)
    }

    /// The same face with `attr` set to `on` (everything else unchanged).
    pub fn with(&self, attr: Attr, on: bool) -> Result<FaceSpec, NotFlippable> {
        let mut out = self.clone();
        if !out.drawn.set(attr, on) {
            return Err(NotFlippable(attr));
        }
        Ok(out)
    }

    /// The counterfactual twin with `attr` flipped.
    pub fn flipped(&self, attr: Attr) -> Result<FaceSpec, NotFlippable> {
        let cur = self.drawn.get(attr).ok_or(NotFlippable(attr))?;
        self.with(attr, !cur)
    }

    /// The image-frame transform of this face.
    pub fn frame(&self) -> Frame {
        let j = &self.jitter;
        Frame {
            ox: self.identity.eye_mid.0 + j.tx,
            oy: self.identity.eye_mid.1 + j.ty,
            rot: Rot::angle(j.roll),
            s: j.scale,
        }
    }

    /// The exact landmarks (integers; every feature is drawn at these points).
    pub fn landmarks(&self) -> Landmarks {
        let f = self.frame();
        let id = &self.identity;
        let yaw = self.jitter.yaw;
        let r = |p: (f32, f32)| (p.0.round(), p.1.round());
        Landmarks {
            left_eye: r(f.at(-id.iod / 2.0, 0.0)),
            right_eye: r(f.at(id.iod / 2.0, 0.0)),
            nose: r(f.at(yaw * 4.5, id.nose_y)),
            left_mouth: r(f.at(-id.mouth_w / 2.0 + yaw * 2.2, id.em)),
            right_mouth: r(f.at(id.mouth_w / 2.0 + yaw * 2.2, id.em)),
        }
    }

    /// Whether the drawn face is bald (old men with that latent).
    pub fn bald(&self) -> bool {
        self.drawn.male && !self.drawn.young && self.identity.bald_if_old
    }

    /// Whether the drawn face has bangs.
    pub fn bangs(&self) -> bool {
        let id = &self.identity;
        !self.bald()
            && if self.drawn.male {
                id.bangs_m
            } else {
                id.bangs_f
            }
    }

    /// Eyebrow (half thickness px, arch) as drawn.
    pub fn brows(&self) -> (f32, f32) {
        if self.drawn.male {
            self.identity.brow_m
        } else {
            self.identity.brow_f
        }
    }

    /// Hair colour as drawn (greyed when old).
    pub fn hair_color(&self) -> Rgb {
        if self.drawn.young {
            self.identity.hair
        } else {
            self.identity.hair_grey
        }
    }

    /// The 40 attribute columns, consistent with what is drawn.
    pub fn attributes(&self) -> AttrRow {
        let id = &self.identity;
        let d = &self.drawn;
        let (male, young) = (d.male, d.young);
        let mut a = AttrRow::none();
        let beard = if male { id.beard } else { Beard::None };
        let (brow_t, brow_arch) = self.brows();
        let bald = self.bald();
        let bags = id.bags || (!young && id.bags_old);
        a.set(Attr::FiveOClockShadow, beard == Beard::Stubble);
        a.set(Attr::ArchedEyebrows, brow_arch > 0.6);
        a.set(
            Attr::Attractive,
            young && id.attractive > 0.4 && !bags && !id.chubby,
        );
        a.set(Attr::BagsUnderEyes, bags);
        a.set(Attr::Bald, bald);
        a.set(Attr::Bangs, self.bangs());
        a.set(Attr::BigLips, id.big_lips);
        a.set(Attr::BigNose, id.nose_w > 0.38 * id.iod);
        a.set(Attr::BlackHair, young && id.hair_class == HairClass::Black);
        a.set(Attr::BlondHair, young && id.hair_class == HairClass::Blond);
        a.set(Attr::BrownHair, young && id.hair_class == HairClass::Brown);
        a.set(Attr::BushyEyebrows, brow_t > 1.85);
        a.set(Attr::Chubby, id.chubby);
        a.set(Attr::DoubleChin, id.chubby && !young);
        a.set(Attr::Eyeglasses, d.eyeglasses);
        a.set(Attr::Goatee, beard == Beard::Goatee);
        a.set(Attr::GrayHair, !young);
        a.set(Attr::HeavyMakeup, !male && id.makeup);
        a.set(Attr::HighCheekbones, id.cheekbones);
        a.set(Attr::Male, male);
        a.set(Attr::MouthSlightlyOpen, d.mouth_open);
        a.set(
            Attr::Mustache,
            matches!(beard, Beard::Mustache | Beard::Goatee | Beard::Full),
        );
        a.set(Attr::NarrowEyes, id.eye_h < 0.083 * id.iod);
        a.set(Attr::NoBeard, !matches!(beard, Beard::Goatee | Beard::Full));
        a.set(
            Attr::OvalFace,
            (id.head_top + id.em + id.chin) / (2.0 * id.head_a) > 1.58,
        );
        a.set(Attr::PaleSkin, id.skin_t < 0.06);
        a.set(Attr::PointyNose, id.pointy_nose);
        a.set(
            Attr::RecedingHairline,
            male && !young && id.receding_if_old && !bald,
        );
        a.set(Attr::RosyCheeks, !male && id.blush);
        a.set(
            Attr::Sideburns,
            male && (beard == Beard::Full || id.sideburns),
        );
        a.set(Attr::Smiling, d.smiling);
        a.set(Attr::StraightHair, !male && !id.wavy);
        a.set(Attr::WavyHair, !male && id.wavy);
        a.set(Attr::WearingEarrings, !male && id.earrings);
        a.set(Attr::WearingLipstick, !male && id.lipstick.is_some());
        a.set(Attr::WearingNecklace, !male && id.necklace);
        a.set(Attr::WearingNecktie, male && id.necktie);
        a.set(Attr::Young, young);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipping_changes_only_the_switch() {
        let s = FaceSpec::sample(7, 3, 30);
        for a in crate::attrs::FLIPPABLE {
            let f = s.flipped(a).unwrap();
            assert_eq!(f.drawn.get(a), Some(!s.drawn.get(a).unwrap()));
            assert_eq!(f.landmarks(), s.landmarks());
            assert_eq!(f.attributes().get(a), !s.attributes().get(a));
            assert_eq!(f.flipped(a).unwrap().drawn, s.drawn);
        }
        assert!(s.flipped(Attr::Bangs).is_err());
        assert!(
            s.flipped(Attr::Bangs)
                .unwrap_err()
                .to_string()
                .contains("Eyeglasses")
        );
    }

    #[test]
    fn landmarks_are_near_celeba_means() {
        let mut sum = [0f64; 10];
        let n = 400;
        for i in 0..n {
            let row = FaceSpec::sample(1, i / 4, i).landmarks().to_row();
            for k in 0..10 {
                sum[k] += row[k] as f64 / n as f64;
            }
        }
        let celeba = [
            69.2, 111.5, 107.9, 111.1, 89.0, 134.8, 71.1, 151.9, 105.3, 152.0,
        ];
        for k in 0..10 {
            assert!(
                (sum[k] - celeba[k]).abs() < 2.5,
                "coordinate {k}: {} vs {}",
                sum[k],
                celeba[k]
            );
        }
    }
}
