//! Draws a [`FaceSpec`] onto a 178×218 canvas.
//!
//! Layers, back to front: background, long hair behind the head, neck and clothes, ears, short-hair
//! cap, head (an ellipsoid-shaded skull plus a jaw), facial shading, age marks, facial hair, eyes,
//! nose, mouth, mustache, front hair (hairline, bangs, locks), glasses, jewellery. The eye, nose and
//! mouth features sit exactly at the (integer) landmarks. Layers that depend on a local attribute
//! (glasses; the mouth) are clipped to that attribute's [`crate::mask`], so a local counterfactual
//! changes no pixel outside its mask.

use crate::face::{Beard, FaceSpec, Frame, HEIGHT, Landmarks, WIDTH, dist, mid};
use crate::mask;
use crate::raster::{
    And, Band, Canvas, Ellipse, Ellipsoid, Grow, Linear, Minus, Multiply, Or, Quad, Rgb, Ring, Rot,
    RoundBox, Shape, Side, Solid, Stroke, Style, Textured,
};
use std::sync::OnceLock;

const TEX: usize = 64;

struct Textures {
    strands: Vec<f32>,
    grain: Vec<f32>,
    waves: Vec<u8>,
}

fn hash(x: u32) -> f32 {
    let mut h = x.wrapping_mul(0x9E37_79B1) ^ 0x85EB_CA6B;
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^= h >> 15;
    (h >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
}

fn textures() -> &'static Textures {
    static T: OnceLock<Textures> = OnceLock::new();
    T.get_or_init(|| {
        // Strands: mostly a function of x (vertical strands), slowly varying along y.
        let cols: Vec<f32> = (0..TEX as u32).map(hash).collect();
        let mut strands = vec![0f32; TEX * TEX];
        for y in 0..TEX {
            for x in 0..TEX {
                let a = cols[x];
                let b = cols[(x + 1) % TEX];
                let drift = hash(1000 + (y / 8) as u32 * 64 + x as u32) * 0.35;
                strands[y * TEX + x] = 0.55 * a + 0.25 * b + drift;
            }
        }
        // Grain: hash noise softened by a 3×3 box (wrapping), rescaled to about ±1.
        let raw: Vec<f32> = (0..(TEX * TEX) as u32).map(|i| hash(50_000 + i)).collect();
        let mut grain = vec![0f32; TEX * TEX];
        for y in 0..TEX {
            for x in 0..TEX {
                let mut acc = 0.0;
                for dy in [TEX - 1, 0, 1] {
                    for dx in [TEX - 1, 0, 1] {
                        acc += raw[((y + dy) % TEX) * TEX + (x + dx) % TEX];
                    }
                }
                grain[y * TEX + x] = acc / 3.0;
            }
        }
        let waves = (0..48)
            .map(|y| ((y as f32 / 48.0 * std::f32::consts::TAU).sin() * 2.5 + 3.0) as u8)
            .collect();
        Textures {
            strands,
            grain,
            waves,
        }
    })
}

/// Reusable rendering state (one per thread).
#[derive(Debug)]
pub struct Renderer {
    canvas: Canvas,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        Self {
            canvas: Canvas::new(WIDTH, HEIGHT),
        }
    }

    /// Renders `spec` into the internal canvas.
    pub fn render(&mut self, spec: &FaceSpec) -> &Canvas {
        draw_face(&mut self.canvas, spec);
        &self.canvas
    }

    /// Renders `spec` as interleaved 8-bit RGB (`WIDTH * HEIGHT * 3` bytes).
    pub fn render_rgb8(&mut self, spec: &FaceSpec, out: &mut [u8]) {
        dispatch(&mut self.canvas, spec, Some(out));
    }
}

/// Renders one face as a 178×218 RGB image.
pub fn render_rgb8(spec: &FaceSpec) -> Vec<u8> {
    let mut out = vec![0u8; WIDTH * HEIGHT * 3];
    Renderer::new().render_rgb8(spec, &mut out);
    out
}

/// Geometry shared by the layers.
struct Ctx<'a> {
    spec: &'a FaceSpec,
    f: Frame,
    lm: Landmarks,
    rot: Rot,
    s: f32,
    light: [f32; 3],
    skin: Rgb,
    hair: Rgb,
    /// Skull ellipse (image coordinates).
    skull: Ellipse,
    jaw: Ellipse,
    tex_off: (usize, usize),
}

impl Ctx<'_> {
    fn at(&self, x: f32, y: f32) -> (f32, f32) {
        self.f.at(x, y)
    }
    fn ell(&self, x: f32, y: f32, a: f32, b: f32) -> Ellipse {
        let (cx, cy) = self.at(x, y);
        Ellipse::new(cx, cy, a * self.s, b * self.s, self.rot)
    }
    fn rbox(&self, x: f32, y: f32, hw: f32, hh: f32, r: f32) -> RoundBox {
        let (cx, cy) = self.at(x, y);
        RoundBox {
            cx,
            cy,
            hw: hw * self.s,
            hh: hh * self.s,
            r: r * self.s,
            rot: self.rot,
        }
    }
    /// A stroke between two face-frame points, bent by `bend` px (positive: middle lower).
    fn stroke(&self, a: (f32, f32), b: (f32, f32), bend: f32, half: f32) -> Stroke {
        let pa = self.at(a.0, a.1);
        let pb = self.at(b.0, b.1);
        let (cx, cy) = mid(pa, pb);
        let rot = Rot::from_vec(pb.0 - pa.0, pb.1 - pa.1);
        Stroke::new(
            cx,
            cy,
            rot,
            dist(pa, pb) * 0.5,
            Quad::arch(bend * self.s),
            half * self.s,
        )
    }
    fn side(&self, y0: f32, curve: Quad, below: bool, w: f32) -> Side {
        let (cx, cy) = self.at(0.0, y0);
        let curve = Quad(curve.0 * self.s, curve.1 * self.s, curve.2 * self.s);
        Side::new(cx, cy, self.rot, w * self.s, curve, below, 260.0)
    }
    fn hair_paint(&self, color: Rgb, amp: f32) -> Textured<'static> {
        let t = textures();
        let wavy = self.spec.identity.wavy && !self.spec.drawn.male;
        Textured {
            color,
            tex: &t.strands,
            size: TEX,
            amp,
            offset: self.tex_off,
            oy: self.f.oy - 40.0,
            gy: -0.0022,
            shift: if wavy { &t.waves } else { &[] },
        }
    }
    fn grain_paint(&self, color: Rgb, amp: f32) -> Textured<'static> {
        Textured {
            color,
            tex: &textures().grain,
            size: TEX,
            amp,
            offset: self.tex_off,
            oy: 0.0,
            gy: 0.0,
            shift: &[],
        }
    }
}

/// Draws the whole face.
pub fn draw_face(cv: &mut Canvas, spec: &FaceSpec) {
    dispatch(cv, spec, None);
}

/// Draws (and converts to RGB8 into `out`), with 8-wide AVX2 loops where the CPU has them. The
/// bytes are identical either way: AVX2 only widens the loops (no FMA contraction is enabled, and
/// every lane is the same IEEE operation as the scalar/SSE code).
fn dispatch(cv: &mut Canvas, spec: &FaceSpec, out: Option<&mut [u8]>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX and AVX2 (checked just above), the only features
            // `draw_avx2` is compiled for.
            #[allow(unsafe_code)]
            unsafe {
                draw_avx2(cv, spec, out)
            };
            return;
        }
    }
    draw_portable(cv, spec, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2")]
fn draw_avx2(cv: &mut Canvas, spec: &FaceSpec, out: Option<&mut [u8]>) {
    draw_face_generic(cv, spec);
    if let Some(out) = out {
        // SAFETY: this function only runs where AVX2 was detected (see `dispatch`).
        #[allow(unsafe_code)]
        unsafe {
            cv.to_rgb8_avx2(out)
        };
    }
}

#[inline(always)]
fn draw_portable(cv: &mut Canvas, spec: &FaceSpec, out: Option<&mut [u8]>) {
    draw_face_generic(cv, spec);
    if let Some(out) = out {
        cv.to_rgb8(out);
    }
}

/// Draws the whole face (portable code path).
#[inline(always)]
fn draw_face_generic(cv: &mut Canvas, spec: &FaceSpec) {
    let id = &spec.identity;
    let d = &spec.drawn;
    let j = &spec.jitter;
    let f = spec.frame();
    let lm = spec.landmarks();
    let s = f.s;
    let rot = f.rot;
    let (lx, ly) = (id.light.0 + j.light_dx, id.light.1);
    let ln = (lx * lx + ly * ly + 0.8 * 0.8).sqrt();
    let light = [lx / ln, ly / ln, 0.8 / ln];
    let gain = j.light_gain;
    let mut skin = id.skin.scale(gain);
    if !d.young {
        skin = skin
            .mix(Rgb::new(skin.luma(), skin.luma(), skin.luma()), 0.05)
            .scale(0.97);
    }
    let hair = spec.hair_color().scale(gain);
    let yaw_head = -spec.jitter.yaw * 2.5;
    let skull_c = f.at(yaw_head, (id.em + id.chin - id.head_top) * 0.5);
    let skull = Ellipse::new(
        skull_c.0,
        skull_c.1,
        id.head_a * s,
        (id.em + id.chin + id.head_top) * 0.5 * s,
        rot,
    );
    let jaw_k = if d.male { id.jaw_m } else { id.jaw_f };
    let jaw_c = f.at(yaw_head * 0.6 + j.yaw * 1.0, id.em + id.chin * 0.25);
    let jaw = Ellipse::new(
        jaw_c.0,
        jaw_c.1,
        id.head_a * jaw_k * s,
        (id.chin * 0.75 - 0.5) * s,
        rot,
    );
    let ctx = Ctx {
        spec,
        f,
        lm,
        rot,
        s,
        light,
        skin,
        hair,
        skull,
        jaw,
        tex_off: id.tex_offset,
    };

    background(cv, &ctx);
    long_hair_back(cv, &ctx);
    body(cv, &ctx);
    ears(cv, &ctx);
    short_hair_cap(cv, &ctx);
    head(cv, &ctx);
    face_shading(cv, &ctx);
    age_marks(cv, &ctx);
    beard(cv, &ctx);
    for left in [true, false] {
        eye(cv, &ctx, left);
    }
    nose(cv, &ctx);
    mouth(cv, &ctx);
    mustache(cv, &ctx);
    front_hair(cv, &ctx);
    if d.eyeglasses {
        glasses(cv, &ctx);
    }
    jewellery(cv, &ctx);
}

#[inline(always)] // into draw_face_avx2
fn background(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let g = c.spec.jitter.light_gain;
    let top = id.background_top.scale(g);
    let bot = id.background.scale(g * 0.92);
    let slope = c.light[0] * 0.0008;
    let h = HEIGHT as f32;
    cv.fill_rows(|y| {
        let t = y as f32 / h;
        let col = top.mix(bot, t);
        let left = col.scale(1.0 - slope * WIDTH as f32 * 0.5);
        (
            left,
            Rgb([col.0[0] * slope, col.0[1] * slope, col.0[2] * slope]),
        )
    });
}

#[inline(always)] // into draw_face_avx2
fn long_hair_back(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    if c.spec.drawn.male {
        return;
    }
    let r = id.head_a + id.long_volume;
    let top_y = -id.head_top - id.long_volume * 0.45;
    let crown_c = (id.head_top + id.em + id.chin) * 0.5;
    let crown = c.ell(
        c.spec.jitter.yaw * -2.0 + id.part * 2.0,
        top_y + crown_c,
        r,
        crown_c + 2.0,
    );
    let end = id.em + id.long_len;
    let fall = c.rbox(0.0, end * 0.5, r * 0.98 + 2.0, end * 0.5, 14.0);
    let shape = Or(crown, fall);
    cv.draw(
        &shape,
        Style::CRISP,
        &c.hair_paint(c.hair.scale(0.78), 0.22),
    );
}

#[inline(always)] // into draw_face_avx2
fn body(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let male = c.spec.drawn.male;
    let neck_hw = id.head_a * if male { 0.6 } else { 0.52 };
    let neck_top = id.em + id.chin * 0.2;
    let neck = c.rbox(
        c.spec.jitter.yaw * -1.5,
        neck_top + 38.0,
        neck_hw,
        38.0,
        6.0,
    );
    let (nx, ny) = c.at(0.0, neck_top);
    let neck_skin = c.skin.scale(0.8);
    cv.draw(
        &neck,
        Style::CRISP,
        &Linear {
            base: neck_skin,
            ox: nx,
            oy: ny,
            dx: neck_skin.scale(c.light[0] * 0.004),
            dy: neck_skin.scale(0.002),
        },
    );
    // Shadow the jaw casts on the neck (the head covers its upper half).
    let shadow = c.ell(0.0, id.em + id.chin - 3.0, id.head_a * 0.55, 12.0);
    cv.draw(
        &shadow,
        Style::soft(8.0, 0.55),
        &Multiply(Rgb::new(0.62, 0.58, 0.58)),
    );
    // Clothes with a neckline.
    let sh_y = id.em + id.chin + 58.0;
    let shoulders = c.ell(0.0, sh_y, id.head_a * 2.3, 46.0);
    let neckline = c.ell(0.0, id.em + id.chin + 16.0, neck_hw * 1.05, 24.0);
    let clothes = id.clothes.scale(c.spec.jitter.light_gain);
    let (sx, sy) = c.at(0.0, sh_y - 46.0);
    cv.draw(
        &Minus(shoulders, neckline),
        Style::CRISP,
        &Linear {
            base: clothes,
            ox: sx,
            oy: sy,
            dx: clothes.scale(c.light[0] * 0.003),
            dy: clothes.scale(-0.004),
        },
    );
    if male && id.necktie {
        let knot = c.rbox(0.0, id.em + id.chin + 34.0, 4.0, 3.5, 1.5);
        let tie = c.rbox(0.0, id.em + id.chin + 52.0, 5.5, 16.0, 3.0);
        let col = Rgb::new(0.55, 0.12, 0.15).mix(id.clothes, 0.2);
        cv.draw(
            &Or(knot, tie),
            Style::CRISP,
            &Solid(col.scale(c.spec.jitter.light_gain)),
        );
    }
}

#[inline(always)] // into draw_face_avx2
fn ears(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let yaw = c.spec.jitter.yaw;
    for side in [-1.0f32, 1.0] {
        let x = side * (id.head_a - 2.0) - yaw * 3.5;
        let ear = c.ell(x, 9.0, 6.5, 12.0);
        cv.draw(
            &ear,
            Style::CRISP,
            &Ellipsoid {
                color: c.skin.scale(0.95),
                shape: ear,
                light: c.light,
                ambient: 0.6,
                diffuse: 0.4,
            },
        );
        let inner = c.ell(x + side * 1.2, 9.5, 3.2, 7.5);
        cv.draw(
            &inner,
            Style::soft(2.5, 0.8),
            &Multiply(Rgb::new(0.72, 0.62, 0.6)),
        );
    }
}

/// The hairline curve in the face frame, and whether it is drawn at all.
fn hairline(c: &Ctx<'_>) -> Quad {
    let id = &c.spec.identity;
    let d = &c.spec.drawn;
    let iod = id.iod;
    let receding = d.male && !d.young && id.receding_if_old;
    if c.spec.bangs() {
        Quad(-0.56 * iod, 0.04 * iod * id.part, 0.12 * iod)
    } else if receding {
        Quad(-1.22 * iod, 0.0, 0.8 * iod)
    } else {
        Quad(-1.1 * iod, 0.06 * iod * id.part, 0.72 * iod)
    }
}

#[inline(always)] // into draw_face_avx2
fn short_hair_cap(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let d = &c.spec.drawn;
    if !d.male {
        return;
    }
    if c.spec.bald() {
        // Bald: only a fringe over the temples, drawn over the head (see `head`).
        return;
    }
    let cap = Grow(c.skull, id.short_thick * c.s);
    let bottom = c.side(11.0, Quad(0.0, 0.0, 0.0), false, id.head_a);
    cv.draw(
        &And(cap, bottom),
        Style::CRISP,
        &c.hair_paint(c.hair.scale(0.85), 0.2),
    );
}

/// Hair over the temples and above the ears, straddling the skull edge (bald men keep this).
#[inline(always)] // into draw_face_avx2
fn fringe(cv: &mut Canvas, c: &Ctx<'_>, opacity: f32) {
    let id = &c.spec.identity;
    let top_cut = c.side(-0.5 * id.iod, Quad(0.0, 0.0, 0.0), true, id.head_a);
    let bottom = c.side(8.0, Quad(0.0, 0.0, 0.0), false, id.head_a);
    let band = Minus(Grow(c.skull, 4.0 * c.s), Grow(c.skull, -12.0 * c.s));
    let shape = And(And(band, bottom), top_cut);
    cv.draw(
        &shape,
        Style::soft(2.5, opacity),
        &c.hair_paint(c.hair.scale(0.95), 0.2),
    );
}

#[inline(always)] // into draw_face_avx2
fn head(cv: &mut Canvas, c: &Ctx<'_>) {
    let shape = Or(c.skull, c.jaw);
    cv.draw(
        &shape,
        Style::CRISP,
        &Ellipsoid {
            color: c.skin,
            shape: c.skull,
            light: c.light,
            ambient: 0.66,
            diffuse: 0.42,
        },
    );
    if c.spec.bald() {
        fringe(cv, c, 1.0);
    }
    if c.spec.identity.chubby && !c.spec.drawn.young {
        let id = &c.spec.identity;
        let chin2 = c.stroke(
            (-id.head_a * 0.3, id.em + id.chin - 4.0),
            (id.head_a * 0.3, id.em + id.chin - 4.0),
            3.0,
            0.8,
        );
        cv.draw(
            &chin2,
            Style::soft(2.5, 0.6),
            &Multiply(Rgb::new(0.8, 0.74, 0.72)),
        );
    }
}

#[inline(always)] // into draw_face_avx2
fn face_shading(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let d = &c.spec.drawn;
    let iod = id.iod;
    // Cheekbone highlights.
    if id.cheekbones {
        // Well inside the face: no need to intersect with its outline.
        for side in [-1.0f32, 1.0] {
            let e = c.ell(side * 0.62 * iod, 0.5 * iod, 7.0, 4.5);
            cv.draw(
                &e,
                Style::soft(8.0, 0.35),
                &Solid(c.skin.scale(1.12).clamp01()),
            );
        }
    }
    if id.blush && !d.male {
        for side in [-1.0f32, 1.0] {
            let e = c.ell(side * 0.58 * iod, 0.66 * iod, 7.5, 5.0);
            cv.draw(
                &e,
                Style::soft(9.0, 0.45),
                &Multiply(Rgb::new(1.0, 0.8, 0.8)),
            );
        }
    }
    // Temple shading (the temples lie on the skull ellipse).
    for side in [-1.0f32, 1.0] {
        let e = c.ell(side * (id.head_a - 4.0), -0.3 * iod, 6.0, 16.0);
        cv.draw(
            &And(e, c.skull),
            Style::soft(8.0, 0.5),
            &Multiply(Rgb::new(0.85, 0.8, 0.8)),
        );
    }
}

#[inline(always)] // into draw_face_avx2
fn age_marks(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let d = &c.spec.drawn;
    let iod = id.iod;
    let wrinkle = Multiply(Rgb::new(0.78, 0.7, 0.68));
    if !d.young {
        for (k, y) in [-0.62f32, -0.74, -0.86].iter().enumerate() {
            let w = 0.45 * iod - k as f32 * 2.0;
            let st = c
                .stroke((-w, y * iod), (w, y * iod), -1.5, 0.45)
                .taper(0.8, 0.8);
            cv.draw(&st, Style::soft(1.6, 0.6), &wrinkle);
        }
        for side in [-1.0f32, 1.0] {
            let x0 = side * (iod * 0.5 + id.eye_w + 1.5);
            for k in [-1.0f32, 0.0, 1.0] {
                let st = c
                    .stroke((x0, k * 1.8), (x0 + side * 4.5, k * 3.2), 0.0, 0.4)
                    .taper(0.0, 0.9);
                cv.draw(&st, Style::soft(1.4, 0.6), &wrinkle);
            }
        }
    }
    // Nasolabial folds: faint on everyone, marked with age.
    let strength = if d.young { 0.25 } else { 0.7 };
    for side in [-1.0f32, 1.0] {
        let a = (
            side * (id.nose_w * 0.5 + 2.0) + c.spec.jitter.yaw * 4.5,
            id.nose_y - 1.0,
        );
        let b = (
            side * (id.mouth_w * 0.5 + 3.5) + c.spec.jitter.yaw * 2.2,
            id.em + 3.0,
        );
        let st = c.stroke(a, b, side * -1.5, 0.8).taper(0.5, 0.9);
        cv.draw(&st, Style::soft(2.2, strength), &wrinkle);
    }
}

/// The jaw below a line from the sideburns (high at the sides) down to beside the mouth.
fn beard_region(c: &Ctx<'_>, top: f32) -> impl Shape {
    let id = &c.spec.identity;
    let head = Or(Grow(c.skull, 1.0 * c.s), Grow(c.jaw, 1.5 * c.s));
    let edge = c.side(top, Quad(0.0, 0.0, -(top - 10.0)), true, id.head_a);
    And(head, edge)
}

fn mouth_hole(c: &Ctx<'_>) -> Ellipse {
    let id = &c.spec.identity;
    let (mx, my) = c.lm.mouth_mid();
    let mr = Rot::from_vec(
        c.lm.right_mouth.0 - c.lm.left_mouth.0,
        c.lm.right_mouth.1 - c.lm.left_mouth.1,
    );
    let (dx, dy) = mr.apply(0.0, 5.0 * c.s);
    Ellipse::new(
        mx + dx,
        my + dy,
        (id.mouth_w * 0.5 + 2.0) * c.s,
        10.0 * c.s,
        mr,
    )
}

#[inline(always)] // into draw_face_avx2
fn beard(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    if !c.spec.drawn.male {
        return;
    }
    let col = c.hair.scale(0.85);
    // From just under the nose, rising to the sideburns.
    let top = id.nose_y + 5.0;
    match id.beard {
        Beard::None | Beard::Mustache => {}
        Beard::Stubble => {
            cv.draw(
                &beard_region(c, top),
                Style::soft(5.0, 0.36),
                &c.grain_paint(col, 0.2),
            );
        }
        Beard::Full => {
            let shape = Minus(beard_region(c, top), mouth_hole(c));
            cv.draw(&shape, Style::soft(3.0, 0.93), &c.grain_paint(col, 0.14));
        }
        Beard::Goatee => {
            let g = c.ell(
                c.spec.jitter.yaw * 2.2,
                id.em + id.chin * 0.55,
                id.mouth_w * 0.42,
                id.chin * 0.5,
            );
            let shape = And(Minus(g, mouth_hole(c)), Or(c.skull, c.jaw));
            cv.draw(&shape, Style::soft(2.5, 0.93), &c.grain_paint(col, 0.14));
        }
    }
    if id.beard == Beard::Full || id.sideburns {
        for side in [-1.0f32, 1.0] {
            let sb = c.rbox(
                side * (id.head_a - 2.0) - c.spec.jitter.yaw * 2.5,
                12.0,
                2.2,
                9.0,
                2.0,
            );
            cv.draw(
                &And(sb, c.skull),
                Style::soft(2.5, 0.8),
                &c.grain_paint(col, 0.15),
            );
        }
    }
}

#[inline(always)] // into draw_face_avx2
fn eye(cv: &mut Canvas, c: &Ctx<'_>, left: bool) {
    let id = &c.spec.identity;
    let d = &c.spec.drawn;
    let s = c.s;
    let p = if left { c.lm.left_eye } else { c.lm.right_eye };
    let out = if left { -1.0f32 } else { 1.0 };
    let rot = c.rot;
    let (ew, eh) = (id.eye_w * s, id.eye_h * s);
    let off = |u: f32, v: f32| {
        let (dx, dy) = rot.apply(u * s, v * s);
        (p.0 + dx, p.1 + dy)
    };
    // Socket shadow.
    let (sx, sy) = off(0.0, -1.5);
    cv.draw(
        &Ellipse::new(sx, sy, ew + 4.0 * s, eh + 5.5 * s, rot),
        Style::soft(7.0, 0.55),
        &Multiply(Rgb::new(0.85, 0.8, 0.8)),
    );
    if d.male {
    } else if id.makeup {
        let (ex, ey) = off(out * 1.0, -id.eye_h - 1.5);
        cv.draw(
            &Ellipse::new(ex, ey, ew + 2.0 * s, eh + 2.0 * s, rot),
            Style::soft(4.0, 0.5),
            &Solid(id.eyeshadow.mix(c.skin, 0.3)),
        );
    }
    if id.bags || (!d.young && id.bags_old) {
        let (bx, by) = off(0.0, id.eye_h + 3.5);
        let st = Stroke::new(bx, by, rot, ew * 0.9, Quad::arch(1.5 * s), 1.3 * s).taper(0.8, 0.8);
        cv.draw(
            &st,
            Style::soft(3.0, 0.7),
            &Multiply(Rgb::new(0.8, 0.7, 0.7)),
        );
    }
    // Eye opening.
    let sclera = Band {
        cx: p.0,
        cy: p.1,
        rot,
        w: ew,
        top: Quad(-eh, 0.0, eh),
        bot: Quad(0.7 * eh, 0.0, -0.7 * eh),
    };
    cv.draw(
        &sclera,
        Style::CRISP,
        &Solid(
            Rgb::new(0.93, 0.91, 0.88)
                .scale(c.spec.jitter.light_gain)
                .times(Rgb::new(1.0, 0.98, 0.97)),
        ),
    );
    let ir = 0.43 * ew;
    let (gx, gy) = (
        c.spec.jitter.gaze.0 * ew * 0.15,
        c.spec.jitter.gaze.1 * eh * 0.2,
    );
    let (ix, iy) = off(gx / s, gy / s - 0.1 * id.eye_h);
    let iris = Ellipse::circle(ix, iy, ir);
    cv.draw(&And(iris, sclera), Style::CRISP, &Solid(id.eye_color));
    cv.draw(
        &And(Ring(iris, 0.6), sclera),
        Style::soft(1.5, 0.7),
        &Multiply(Rgb::new(0.45, 0.45, 0.45)),
    );
    cv.draw(
        &And(Ellipse::circle(ix, iy, ir * 0.42), sclera),
        Style::CRISP,
        &Solid(Rgb::new(0.03, 0.02, 0.02)),
    );
    cv.draw(
        &And(
            Ellipse::circle(ix + ir * 0.35, iy - ir * 0.35, 0.8 * s.max(1.0)),
            sclera,
        ),
        Style::soft(1.0, 0.9),
        &Solid(Rgb::new(1.0, 1.0, 1.0)),
    );
    // Lid shadow on the eyeball, lid line and lashes, crease, lower lid.
    let lid = Stroke::new(p.0, p.1, rot, ew, Quad(-eh, 0.0, eh), 1.4 * s);
    cv.draw(
        &And(lid, sclera),
        Style::soft(2.0, 0.6),
        &Multiply(Rgb::new(0.7, 0.66, 0.66)),
    );
    let lash_half = if d.male { 0.7 } else { 0.95 };
    let lash = Stroke::new(
        p.0,
        p.1,
        rot,
        ew + 0.8 * s,
        Quad(-eh - 0.3 * s, 0.0, eh),
        lash_half * s,
    )
    .taper(0.55, 0.55);
    cv.draw(&lash, Style::CRISP, &Solid(Rgb::new(0.09, 0.06, 0.06)));
    let crease = Stroke::new(
        p.0,
        p.1,
        rot,
        ew,
        Quad(-eh - 3.2 * s, 0.0, eh + 1.2 * s),
        0.5 * s,
    )
    .taper(0.7, 0.7);
    cv.draw(
        &crease,
        Style::soft(1.6, 0.8),
        &Multiply(Rgb::new(0.78, 0.72, 0.72)),
    );
    let lower = Stroke::new(
        p.0,
        p.1,
        rot,
        ew * 0.95,
        Quad(0.7 * eh + 0.2, 0.0, -0.7 * eh),
        0.45 * s,
    )
    .taper(0.8, 0.8);
    cv.draw(
        &lower,
        Style::soft(1.3, 0.6),
        &Multiply(Rgb::new(0.8, 0.74, 0.74)),
    );
    // Eyebrow.
    let (bt, arch) = c.spec.brows();
    let (bx, by) = off(out * 0.8, -id.brow_gap);
    let tilt = out * 0.8 * s;
    let brow = Stroke::new(
        bx,
        by,
        rot,
        ew * 1.22,
        Quad(-arch * 3.0 * s, tilt, arch * 3.0 * s),
        bt * s,
    );
    let brow = if left {
        brow.taper(0.85, 0.25)
    } else {
        brow.taper(0.25, 0.85)
    };
    let mut bcol = c.hair.mix(Rgb::new(0.08, 0.06, 0.05), 0.35);
    if !d.young {
        bcol = bcol.mix(Rgb::new(0.6, 0.6, 0.6), 0.4);
    }
    cv.draw(&brow, Style::soft(1.4, 0.92), &c.grain_paint(bcol, 0.25));
}

#[inline(always)] // into draw_face_avx2
fn nose(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let s = c.s;
    let n = c.lm.nose;
    let rot = c.rot;
    let iod = id.iod;
    let yaw = c.spec.jitter.yaw * 4.5;
    let off = |u: f32, v: f32| {
        let (dx, dy) = rot.apply(u * s, v * s);
        (n.0 + dx, n.1 + dy)
    };
    let nw = id.nose_w;
    // Side shadows of the bridge, stronger away from the light.
    for side in [-1.0f32, 1.0] {
        let op = 0.35 + 0.45 * (-side * c.light[0]).max(0.0) * 2.0;
        let a = (side * 0.12 * iod + yaw * 0.4, 0.12 * iod);
        let b = (side * nw * 0.4 + yaw, id.nose_y - 4.0);
        let st = c.stroke(a, b, 0.0, 1.6).taper(0.8, 0.2);
        cv.draw(
            &st,
            Style::soft(3.5, op.min(0.9)),
            &Multiply(Rgb::new(0.86, 0.8, 0.8)),
        );
    }
    let tip_b = if id.pointy_nose { 2.5 } else { 3.8 };
    let (tx, ty) = off(0.0, -2.5);
    cv.draw(
        &Ellipse::new(tx, ty, nw * 0.2 * s, tip_b * s, rot),
        Style::soft(4.0, 0.45),
        &Solid(c.skin.scale(1.1).clamp01()),
    );
    let (ux, uy) = off(0.0, 2.5);
    cv.draw(
        &Ellipse::new(ux, uy, nw * 0.33 * s, 2.0 * s, rot),
        Style::soft(3.0, 0.6),
        &Multiply(Rgb::new(0.75, 0.66, 0.63)),
    );
    for side in [-1.0f32, 1.0] {
        let (x, y) = off(side * nw * 0.2, 1.2);
        let nr = Rot::angle(c.spec.jitter.roll + side * 0.35);
        cv.draw(
            &Ellipse::new(x, y, 2.1 * s, 1.1 * s, nr),
            Style::soft(1.3, 0.9),
            &Multiply(Rgb::new(0.38, 0.3, 0.3)),
        );
        let (wx, wy) = off(side * nw * 0.4, -0.8);
        let wing = Stroke::new(
            wx,
            wy,
            Rot::angle(c.spec.jitter.roll + side * 1.2),
            3.2 * s,
            Quad::arch(-1.2 * s),
            0.65 * s,
        );
        cv.draw(
            &wing,
            Style::soft(1.6, 0.7),
            &Multiply(Rgb::new(0.78, 0.7, 0.7)),
        );
    }
}

/// Mouth curve parameters (pixels, before scale): smile bend `s` and opening `o`.
fn mouth_shape(spec: &FaceSpec) -> (f32, f32) {
    let j = &spec.jitter;
    let smile = if spec.drawn.smiling {
        4.5 + 2.0 * j.smile_amt
    } else {
        -0.4 + 1.2 * j.smile_amt
    };
    let open = if spec.drawn.mouth_open {
        4.5 + 3.0 * j.open_amt
    } else {
        0.0
    };
    (smile, open)
}

fn lip_color(c: &Ctx<'_>) -> Rgb {
    let id = &c.spec.identity;
    match (c.spec.drawn.male, id.lipstick) {
        (false, Some(tint)) => c.skin.times(tint),
        _ => c.skin.times(id.lip_tint),
    }
}

#[inline(always)] // into draw_face_avx2
fn mouth(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let s = c.s;
    let (l, r) = (c.lm.left_mouth, c.lm.right_mouth);
    let (mx, my) = mid(l, r);
    let w = dist(l, r) * 0.5;
    let rot = Rot::from_vec(r.0 - l.0, r.1 - l.1);
    let (sm, op) = mouth_shape(c.spec);
    let (sm, op) = (sm * s, op * s);
    let (lu, ll) = (id.lip_u * s, id.lip_l * s);
    let clip_region = mask::mouth_mask(&c.lm).capsule();
    let clip: Option<&dyn Shape> = Some(&clip_region);
    let st = |feather: f32, opacity: f32| Style {
        feather,
        opacity,
        clip,
    };
    let band = |top: f32, bot: f32| Band {
        cx: mx,
        cy: my,
        rot,
        w,
        top: Quad::arch(top),
        bot: Quad::arch(bot),
    };
    let lip = lip_color(c);
    let light = c.spec.jitter.light_gain;
    // Soft shadow below the lower lip.
    let (dx, dy) = rot.apply(0.0, sm + 0.5 * op + ll + 2.5 * s);
    cv.draw(
        &Ellipse::new(mx + dx, my + dy, w * 0.55, 2.2 * s, rot),
        st(3.5, 0.5),
        &Multiply(Rgb::new(0.88, 0.84, 0.83)),
    );
    let ui = sm - 0.5 * op;
    let li = sm + 0.5 * op;
    // Lips.
    cv.draw(
        &band(ui - lu, ui + 0.4),
        st(1.0, 1.0),
        &Solid(lip.scale(0.88)),
    );
    cv.draw(&band(li - 0.4, li + ll), st(1.0, 1.0), &Solid(lip));
    let hl =
        Stroke::new(mx, my, rot, w * 0.55, Quad::arch(li + ll * 0.45), ll * 0.22).taper(0.9, 0.9);
    let (hx, hy) = rot.apply(0.0, 0.0);
    let hl = Stroke {
        cx: hl.cx + hx,
        cy: hl.cy + hy,
        ..hl
    };
    cv.draw(&hl, st(2.0, 0.35), &Solid(lip.scale(1.25).clamp01()));
    if op > 0.0 {
        let cavity = band(ui, li);
        cv.draw(
            &cavity,
            st(1.0, 1.0),
            &Solid(c.skin.times(Rgb::new(0.13, 0.045, 0.045))),
        );
        if c.spec.drawn.smiling {
            let teeth = Band {
                w: w * 0.82,
                ..band(ui, ui + 0.45 * op)
            };
            cv.draw(
                &And(teeth, cavity),
                st(1.0, 1.0),
                &Solid(Rgb::new(0.9, 0.88, 0.82).scale(light)),
            );
            let gum = Stroke::new(mx, my, rot, w * 0.8, Quad::arch(ui + 0.45 * op), 0.35 * s);
            cv.draw(
                &And(gum, cavity),
                st(1.0, 0.5),
                &Multiply(Rgb::new(0.7, 0.65, 0.6)),
            );
        }
    } else {
        let line = Stroke::new(mx, my, rot, w + 0.3, Quad::arch(sm), 0.6 * s).taper(0.3, 0.3);
        cv.draw(&line, st(1.0, 1.0), &Solid(lip.scale(0.45)));
    }
    // Corners and smile creases.
    for (side, p) in [(-1.0f32, l), (1.0, r)] {
        cv.draw(
            &Ellipse::circle(p.0, p.1, 1.3 * s),
            st(1.5, 0.7),
            &Multiply(Rgb::new(0.7, 0.62, 0.6)),
        );
        if c.spec.drawn.smiling {
            let (ax, ay) = rot.apply(side * 2.0 * s, -5.0 * s);
            let (bx, by) = rot.apply(side * 3.2 * s, 3.5 * s);
            let (a, b) = ((p.0 + ax, p.1 + ay), (p.0 + bx, p.1 + by));
            let (cx, cy) = mid(a, b);
            let cr = Rot::from_vec(b.0 - a.0, b.1 - a.1);
            let crease = Stroke::new(
                cx,
                cy,
                cr,
                dist(a, b) * 0.5,
                Quad::arch(side * 1.2 * s),
                0.6 * s,
            )
            .taper(0.8, 0.8);
            cv.draw(&crease, st(1.8, 0.7), &Multiply(Rgb::new(0.78, 0.7, 0.68)));
        }
    }
}

#[inline(always)] // into draw_face_avx2
fn mustache(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    if !c.spec.drawn.male || !matches!(id.beard, Beard::Mustache | Beard::Goatee | Beard::Full) {
        return;
    }
    let s = c.s;
    let (l, r) = (c.lm.left_mouth, c.lm.right_mouth);
    let (mx, my) = mid(l, r);
    let rot = Rot::from_vec(r.0 - l.0, r.1 - l.1);
    let w = dist(l, r) * 0.5 + 2.5 * s;
    let base = -id.lip_u * s - 0.7 * s;
    let m = Band {
        cx: mx,
        cy: my,
        rot,
        w,
        top: Quad(base - 5.5 * s, 0.0, 3.5 * s),
        bot: Quad(base, 0.0, 2.5 * s),
    };
    cv.draw(
        &m,
        Style::soft(1.8, 0.95),
        &c.grain_paint(c.hair.scale(0.8), 0.3),
    );
}

#[inline(always)] // into draw_face_avx2
fn front_hair(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let d = &c.spec.drawn;
    if c.spec.bald() {
        return;
    }
    let iod = id.iod;
    let hl = hairline(c);
    let above = c.side(0.0, hl, false, id.head_a);
    let thick = if d.male { id.short_thick * 0.6 } else { 2.5 };
    let cap = Grow(c.skull, thick * c.s);
    let paint = c.hair_paint(c.hair, 0.2);
    cv.draw(&And(cap, above), Style::soft(1.6, 1.0), &paint);
    // Highlight on the crown.
    let hlight = c.ell(c.light[0] * 12.0, -id.head_top + 9.0, id.head_a * 0.5, 6.0);
    cv.draw(
        &And(hlight, cap),
        Style::soft(8.0, 0.3),
        &Solid(c.hair.mix(Rgb::new(1.0, 0.97, 0.9), 0.35)),
    );
    if !d.male {
        // Side locks framing the face, over the ears.
        for side in [-1.0f32, 1.0] {
            let top = (side * (id.head_a - 3.0), -0.7 * iod);
            let bot = (side * (id.head_a + 2.0), id.em + 12.0);
            let lock = c.stroke(top, bot, side * 4.0, 3.6).taper(0.9, 0.7);
            cv.draw(
                &lock,
                Style::soft(1.5, 1.0),
                &c.hair_paint(c.hair.scale(0.95), 0.24),
            );
        }
    }
}

#[inline(always)] // into draw_face_avx2
fn glasses(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    let g = &id.glasses;
    let s = c.s;
    let iod = id.iod;
    let rot = c.rot;
    let clip_region = mask::eye_mask(&c.lm).capsule();
    let clip: Option<&dyn Shape> = Some(&clip_region);
    let st = |feather: f32, opacity: f32| Style {
        feather,
        opacity,
        clip,
    };
    let (hw, hh) = (g.half_w * iod * s, g.half_h * iod * s);
    let frame = Solid(g.frame.scale(c.spec.jitter.light_gain));
    for (side, p) in [(-1.0f32, c.lm.left_eye), (1.0, c.lm.right_eye)] {
        let (dx, dy) = rot.apply(side * 0.02 * iod * s, 0.02 * iod * s);
        let (cx, cy) = (p.0 + dx, p.1 + dy);
        let lens = RoundBox {
            cx,
            cy,
            hw,
            hh,
            r: g.round * hh,
            rot,
        };
        if g.sun {
            cv.draw(&lens, st(1.0, 0.88), &Multiply(Rgb::new(0.2, 0.2, 0.24)));
        } else {
            cv.draw(&lens, st(1.0, 1.0), &Multiply(Rgb::new(0.95, 0.97, 1.0)));
        }
        let (rx, ry) = rot.apply(-0.3 * hw, -0.3 * hh);
        let refl = Stroke::new(
            cx + rx,
            cy + ry,
            Rot::angle(c.spec.jitter.roll - 0.9),
            hh * 0.6,
            Quad(0.0, 0.0, 0.0),
            1.6 * s,
        );
        cv.draw(
            &And(refl, lens),
            st(2.5, if g.sun { 0.25 } else { 0.18 }),
            &Solid(Rgb::new(1.0, 1.0, 1.0)),
        );
        cv.draw(&Ring(lens, g.thick * 0.5 * s), st(1.0, 1.0), &frame);
        // Hinge and the start of the arm.
        let (ax, ay) = rot.apply(side * (hw + 2.0 * s), -0.45 * hh);
        let arm = Stroke::new(
            cx + ax,
            cy + ay,
            rot,
            2.2 * s,
            Quad(0.0, 0.0, 0.0),
            g.thick * 0.55 * s,
        );
        cv.draw(&arm, st(1.0, 1.0), &frame);
    }
    // Bridge.
    let (lx, ly) = c.lm.left_eye;
    let (rx, ry) = c.lm.right_eye;
    let (bx, by) = mid((lx, ly), (rx, ry));
    let (ox, oy) = rot.apply(0.0, -0.08 * iod * s);
    let bw = (iod * 0.5 - g.half_w * iod + 1.5) * s;
    let bridge = Stroke::new(
        bx + ox,
        by + oy,
        rot,
        bw,
        Quad::arch(-1.8 * s),
        g.thick * 0.62 * s,
    );
    cv.draw(&bridge, st(1.0, 1.0), &frame);
}

#[inline(always)] // into draw_face_avx2
fn jewellery(cv: &mut Canvas, c: &Ctx<'_>) {
    let id = &c.spec.identity;
    if c.spec.drawn.male {
        return;
    }
    if id.earrings {
        for side in [-1.0f32, 1.0] {
            let (x, y) = c.at(side * (id.head_a - 1.0) - c.spec.jitter.yaw * 2.5, 22.0);
            let e = Ellipse::circle(x, y, 2.0 * c.s);
            cv.draw(
                &e,
                Style::CRISP,
                &Ellipsoid {
                    color: Rgb::new(0.95, 0.8, 0.4),
                    shape: e,
                    light: c.light,
                    ambient: 0.5,
                    diffuse: 0.7,
                },
            );
        }
    }
    if id.necklace {
        let neck_hw = id.head_a * 0.52;
        let y = id.em + id.chin + 10.0;
        let st = c.stroke((-neck_hw, y - 4.0), (neck_hw, y - 4.0), 8.0, 0.8);
        cv.draw(&st, Style::CRISP, &Solid(Rgb::new(0.92, 0.78, 0.38)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_avx2_path_gives_the_same_bytes_as_the_portable_one() {
        let layout = crate::Layout::new(77, 400, 4);
        let mut a = Canvas::new(WIDTH, HEIGHT);
        let mut b = Canvas::new(WIDTH, HEIGHT);
        let (mut oa, mut ob) = (vec![0u8; WIDTH * HEIGHT * 3], vec![0u8; WIDTH * HEIGHT * 3]);
        for i in (0..400).step_by(7) {
            let spec = FaceSpec::for_image(&layout, i);
            dispatch(&mut a, &spec, Some(&mut oa));
            draw_portable(&mut b, &spec, Some(&mut ob));
            assert!(oa == ob, "image {i} differs between code paths");
        }
    }

    #[test]
    fn renders_are_deterministic_and_not_flat() {
        let spec = FaceSpec::sample(3, 0, 0);
        let a = render_rgb8(&spec);
        let b = render_rgb8(&spec);
        assert_eq!(a, b);
        let distinct: std::collections::HashSet<&[u8]> = a.chunks(3).collect();
        assert!(distinct.len() > 1500, "only {} colours", distinct.len());
    }
}
