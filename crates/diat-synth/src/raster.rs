//! Analytic anti-aliased rasterisation on a planar `f32` canvas.
//!
//! A shape is a signed distance function (negative inside, in pixels) evaluated one row at a time,
//! only inside the shape's bounding box; coverage is `clamp(0.5 - d / feather, 0, 1)`, i.e. a one
//! pixel wide box filter for `feather = 1` and a soft edge for larger values. Paints blend a whole
//! row span at once. Rows are plain `f32` slices so the inner loops vectorise; nothing allocates per
//! pixel or per shape. Pixel `(x, y)` is sampled at the continuous point `(x, y)`, the same
//! convention as CelebA's integer landmarks.

/// Canvas rows are at most this wide (stack scratch rows).
pub const MAX_W: usize = 256;

/// `[0.0, 1.0, 2.0, …]`: pixel offsets as floats, zipped into the row loops (converting a `usize`
/// index to `f32` has no SIMD instruction on x86-64 and would keep the loops scalar).
const IOTA: [f32; MAX_W] = {
    let mut a = [0f32; MAX_W];
    let mut i = 0;
    while i < MAX_W {
        a[i] = i as f32;
        i += 1;
    }
    a
};

/// `max` without NaN handling (maps to one `maxps`; `f32::max` needs extra work per lane).
#[inline(always)]
pub(crate) fn fmax(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// `min` without NaN handling.
#[inline(always)]
pub(crate) fn fmin(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

/// Clamps to 0..1 (no NaN handling).
#[inline(always)]
fn clamp01(x: f32) -> f32 {
    fmin(fmax(x, 0.0), 1.0)
}

/// [`Canvas::draw`] evaluates distances and blends over row segments padded to a multiple of this
/// many pixels, so that the vectorised loops (8 × `f32` per AVX2 register) run without scalar
/// remainder iterations.
pub const LANES: usize = 8;

/// `n` rounded up to a multiple of [`LANES`].
#[inline(always)]
fn pad(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
}

/// An sRGB colour with components in 0..1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rgb(pub [f32; 3]);

impl Rgb {
    pub const fn new(r: f32, g: f32, b: f32) -> Self {
        Rgb([r, g, b])
    }
    pub fn scale(self, k: f32) -> Self {
        Rgb([self.0[0] * k, self.0[1] * k, self.0[2] * k])
    }
    /// Channel-wise product.
    pub fn times(self, o: Rgb) -> Self {
        Rgb([self.0[0] * o.0[0], self.0[1] * o.0[1], self.0[2] * o.0[2]])
    }
    pub fn mix(self, o: Rgb, t: f32) -> Self {
        Rgb([
            self.0[0] + (o.0[0] - self.0[0]) * t,
            self.0[1] + (o.0[1] - self.0[1]) * t,
            self.0[2] + (o.0[2] - self.0[2]) * t,
        ])
    }
    pub fn clamp01(self) -> Self {
        Rgb(self.0.map(|c| c.clamp(0.0, 1.0)))
    }
    /// Rec. 709 luma.
    pub fn luma(self) -> f32 {
        0.2126 * self.0[0] + 0.7152 * self.0[1] + 0.0722 * self.0[2]
    }
    /// Largest absolute channel difference.
    pub fn dist(self, o: Rgb) -> f32 {
        (0..3)
            .map(|i| (self.0[i] - o.0[i]).abs())
            .fold(0.0, f32::max)
    }
}

/// A bounding box in continuous pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Bounds {
    pub fn around(cx: f32, cy: f32, hx: f32, hy: f32) -> Self {
        Self {
            x0: cx - hx,
            y0: cy - hy,
            x1: cx + hx,
            y1: cy + hy,
        }
    }
    pub fn grow(self, m: f32) -> Self {
        Self {
            x0: self.x0 - m,
            y0: self.y0 - m,
            x1: self.x1 + m,
            y1: self.y1 + m,
        }
    }
    pub fn intersect(self, o: Bounds) -> Self {
        Self {
            x0: self.x0.max(o.x0),
            y0: self.y0.max(o.y0),
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
        }
    }
    pub fn union(self, o: Bounds) -> Self {
        Self {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }
}

/// What one row of a shape looks like: the distance can be below `m` only for `x0 <= x <= x1`, and
/// is at most `-m` for all `in0 <= x <= in1` (empty when `in0 > in1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub x0: f32,
    pub x1: f32,
    pub in0: f32,
    pub in1: f32,
}

impl Span {
    pub const EMPTY: Span = Span {
        x0: 1.0,
        x1: -1.0,
        in0: 1.0,
        in1: -1.0,
    };
    fn outer_only(x0: f32, x1: f32) -> Self {
        Span {
            x0,
            x1,
            in0: 1.0,
            in1: -1.0,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.x0 > self.x1
    }
    pub fn has_inner(&self) -> bool {
        self.in0 <= self.in1
    }
}

/// A region given by a signed distance (pixels, negative inside).
pub trait Shape {
    /// Where the shape is (distance <= 0), without anti-aliasing margin.
    fn bounds(&self) -> Bounds;
    /// Distances of pixels `x0, x0+1, …` of row `y` into `out`.
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]);
    /// The row's extent for margin `m` (see [`Span`]); the default is the bounding box, no interior.
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        let b = self.bounds();
        if y < b.y0 - m || y > b.y1 + m {
            Span::EMPTY
        } else {
            Span::outer_only(b.x0 - m, b.x1 + m)
        }
    }
}

/// The x-interval where row `y` crosses the rotated ellipse with semi-axes `(a, b)` (None if it misses).
fn ellipse_row(cx: f32, cy: f32, a: f32, b: f32, rot: Rot, y: f32) -> Option<(f32, f32)> {
    if a <= 0.0 || b <= 0.0 {
        return None;
    }
    let (c, s) = (rot.c, rot.s);
    let dy = y - cy;
    let (ia2, ib2) = (1.0 / (a * a), 1.0 / (b * b));
    let al = c * c * ia2 + s * s * ib2;
    let be = dy * c * s * (ia2 - ib2);
    let ga = dy * dy * (s * s * ia2 + c * c * ib2) - 1.0;
    let disc = be * be - al * ga;
    if disc < 0.0 {
        return None;
    }
    let r = disc.sqrt();
    Some((cx + (-be - r) / al, cx + (-be + r) / al))
}

/// Rotation helper: local axis `(c, s)`; `u` along the axis, `v` to its right (image down for c=1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rot {
    pub c: f32,
    pub s: f32,
}

impl Rot {
    pub const ID: Rot = Rot { c: 1.0, s: 0.0 };
    pub fn angle(a: f32) -> Self {
        Rot {
            c: a.cos(),
            s: a.sin(),
        }
    }
    pub fn from_vec(dx: f32, dy: f32) -> Self {
        let n = (dx * dx + dy * dy).sqrt().max(1e-6);
        Rot {
            c: dx / n,
            s: dy / n,
        }
    }
    /// Local `(u, v)` → world offset.
    pub fn apply(self, u: f32, v: f32) -> (f32, f32) {
        (u * self.c - v * self.s, u * self.s + v * self.c)
    }
}

/// A rotated ellipse. Its distance is an approximation that is good for aspect ratios up to about 3.
#[derive(Debug, Clone, Copy)]
pub struct Ellipse {
    pub cx: f32,
    pub cy: f32,
    pub a: f32,
    pub b: f32,
    pub rot: Rot,
}

impl Ellipse {
    pub fn new(cx: f32, cy: f32, a: f32, b: f32, rot: Rot) -> Self {
        Self {
            cx,
            cy,
            a: a.max(0.05),
            b: b.max(0.05),
            rot,
        }
    }
    pub fn circle(cx: f32, cy: f32, r: f32) -> Self {
        Self::new(cx, cy, r, r, Rot::ID)
    }
}

impl Shape for Ellipse {
    fn bounds(&self) -> Bounds {
        let (c, s) = (self.rot.c, self.rot.s);
        let hx = ((self.a * c).powi(2) + (self.b * s).powi(2)).sqrt();
        let hy = ((self.a * s).powi(2) + (self.b * c).powi(2)).sqrt();
        Bounds::around(self.cx, self.cy, hx, hy)
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        let (c, s) = (self.rot.c, self.rot.s);
        let dy = y - self.cy;
        let ia2 = 1.0 / (self.a * self.a);
        let ib2 = 1.0 / (self.b * self.b);
        let (ia4, ib4) = (ia2 * ia2, ib2 * ib2);
        let base = x0 - self.cx;
        for (o, &fi) in out.iter_mut().zip(IOTA.iter()) {
            let dx = base + fi;
            let u = dx * c + dy * s;
            let v = dy * c - dx * s;
            // k0 = |p / r|, k1 = |p / r²|: outside k0 (k0 - 1) / k1 (close to the true distance far
            // away too), inside (k0² - 1) / (2 k1) (goes to -inf at the centre); both ~ (k0 - 1) / k1
            // at the boundary.
            let k0sq = u * u * ia2 + v * v * ib2;
            let k1 = fmax(u * u * ia4 + v * v * ib4, 1e-12).sqrt();
            let k0 = k0sq.sqrt();
            let outside = k0 * (k0 - 1.0);
            let inside = 0.5 * (k0sq - 1.0);
            *o = if k0sq > 1.0 { outside } else { inside } / k1;
        }
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        // The distance used is f/|grad f|; generous axes keep the outer span conservative and shrunk
        // axes (only for not-too-thin ellipses) keep the interior conservative (tested below).
        let mo = m.max(0.0);
        let grow = 2.0 * mo + 1.0;
        let (lo, hi) = (self.a.min(self.b), self.a.max(self.b));
        if hi > 3.0 * lo {
            // Eccentric: the approximate distance is less regular; use the grown local box.
            let (a, b) = (self.a + grow, self.b + grow);
            return local_span(self.cx, self.cy, self.rot, (-a, a), (-b, b), 0.0, 0.0, y);
        }
        let Some((x0, x1)) =
            ellipse_row(self.cx, self.cy, self.a + grow, self.b + grow, self.rot, y)
        else {
            return Span::EMPTY;
        };
        let shrink = 2.0 * mo + 1.0;
        let inner = if lo * lo / hi > 4.0 * shrink {
            ellipse_row(
                self.cx,
                self.cy,
                self.a - shrink,
                self.b - shrink,
                self.rot,
                y,
            )
        } else {
            None
        };
        match inner {
            Some((in0, in1)) => Span {
                x0,
                x1,
                in0: in0.ceil(),
                in1: in1.floor(),
            },
            None => Span::outer_only(x0, x1),
        }
    }
}

/// A segment with round caps (exact distance).
#[derive(Debug, Clone, Copy)]
pub struct Capsule {
    pub ax: f32,
    pub ay: f32,
    pub bx: f32,
    pub by: f32,
    pub r: f32,
}

impl Capsule {
    pub fn new(a: (f32, f32), b: (f32, f32), r: f32) -> Self {
        Self {
            ax: a.0,
            ay: a.1,
            bx: b.0,
            by: b.1,
            r,
        }
    }
    /// Distance from a point to the segment (no radius).
    pub fn seg_dist(&self, x: f32, y: f32) -> f32 {
        let (bax, bay) = (self.bx - self.ax, self.by - self.ay);
        let (pax, pay) = (x - self.ax, y - self.ay);
        let l2 = (bax * bax + bay * bay).max(1e-12);
        let h = ((pax * bax + pay * bay) / l2).clamp(0.0, 1.0);
        ((pax - bax * h).powi(2) + (pay - bay * h).powi(2)).sqrt()
    }
}

impl Shape for Capsule {
    fn bounds(&self) -> Bounds {
        Bounds {
            x0: self.ax.min(self.bx) - self.r,
            y0: self.ay.min(self.by) - self.r,
            x1: self.ax.max(self.bx) + self.r,
            y1: self.ay.max(self.by) + self.r,
        }
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        let (bax, bay) = (self.bx - self.ax, self.by - self.ay);
        let il2 = 1.0 / (bax * bax + bay * bay).max(1e-12);
        let pay = y - self.ay;
        let base = x0 - self.ax;
        for (o, &fi) in out.iter_mut().zip(IOTA.iter()) {
            let pax = base + fi;
            let h = clamp01((pax * bax + pay * bay) * il2);
            let qx = pax - bax * h;
            let qy = pay - bay * h;
            *o = (qx * qx + qy * qy).sqrt() - self.r;
        }
    }
}

/// A rotated rectangle with rounded corners (exact distance).
#[derive(Debug, Clone, Copy)]
pub struct RoundBox {
    pub cx: f32,
    pub cy: f32,
    pub hw: f32,
    pub hh: f32,
    pub r: f32,
    pub rot: Rot,
}

impl Shape for RoundBox {
    fn bounds(&self) -> Bounds {
        let (c, s) = (self.rot.c.abs(), self.rot.s.abs());
        Bounds::around(
            self.cx,
            self.cy,
            self.hw * c + self.hh * s,
            self.hw * s + self.hh * c,
        )
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        let (c, s) = (self.rot.c, self.rot.s);
        let r = self.r.min(self.hw).min(self.hh);
        let (ex, ey) = (self.hw - r, self.hh - r);
        let dy = y - self.cy;
        let base = x0 - self.cx;
        for (o, &fi) in out.iter_mut().zip(IOTA.iter()) {
            let dx = base + fi;
            let u = (dx * c + dy * s).abs() - ex;
            let v = (dy * c - dx * s).abs() - ey;
            let (mu, mv) = (fmax(u, 0.0), fmax(v, 0.0));
            *o = (mu * mu + mv * mv).sqrt() + fmin(fmax(u, v), 0.0) - r;
        }
    }
}

/// A quadratic `a0 + a1 t + a2 t²` of the normalised axis coordinate `t = u / w`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quad(pub f32, pub f32, pub f32);

impl Quad {
    /// `k (1 - t²)`: zero at both ends, `k` in the middle.
    pub fn arch(k: f32) -> Self {
        Quad(k, 0.0, -k)
    }
    pub fn at(self, t: f32) -> f32 {
        self.0 + self.1 * t + self.2 * t * t
    }
}

/// Minimum of a quadratic over `t` in [-1, 1].
fn quad_min(q: Quad) -> f32 {
    let mut m = q.at(-1.0).min(q.at(1.0));
    if q.2 != 0.0 {
        let tv = -q.1 / (2.0 * q.2);
        if tv.abs() <= 1.0 {
            m = m.min(q.at(tv));
        }
    }
    m
}

/// Maximum of a quadratic over `t` in [-1, 1].
fn quad_max(q: Quad) -> f32 {
    -quad_min(Quad(-q.0, -q.1, -q.2))
}

/// World bounds of the local rectangle `[u0, u1] × [v0, v1]` of a rotated frame at `(cx, cy)`.
fn local_box(cx: f32, cy: f32, rot: Rot, u0: f32, u1: f32, v0: f32, v1: f32) -> Bounds {
    let mut b = Bounds {
        x0: f32::MAX,
        y0: f32::MAX,
        x1: f32::MIN,
        y1: f32::MIN,
    };
    for (u, v) in [(u0, v0), (u1, v0), (u0, v1), (u1, v1)] {
        let (x, y) = rot.apply(u, v);
        b = b.union(Bounds {
            x0: cx + x,
            y0: cy + y,
            x1: cx + x,
            y1: cy + y,
        });
    }
    b
}

/// A conservative row span from the local box `[u0, u1] × [v0, v1]` grown by `mu` along u and `mv` along v.
fn local_span(
    cx: f32,
    cy: f32,
    rot: Rot,
    u: (f32, f32),
    v: (f32, f32),
    mu: f32,
    mv: f32,
    y: f32,
) -> Span {
    let b = local_box(cx, cy, rot, u.0 - mu, u.1 + mu, v.0 - mv, v.1 + mv);
    if y < b.y0 || y > b.y1 {
        Span::EMPTY
    } else {
        Span::outer_only(b.x0, b.x1)
    }
}

/// How much the curve-normalised distances of a quadratic curve can shrink: `sqrt(1 + max slope²)`.
fn slope_factor(q: Quad, w: f32, tmax: f32) -> f32 {
    let sl = (q.1.abs() + 2.0 * q.2.abs() * tmax) / w.max(1e-3);
    (1.0 + sl * sl).sqrt()
}

/// The region between two curves `top(t) <= v <= bot(t)` over `|u| <= w`, in a frame centred at
/// `(cx, cy)` with axis `rot` (lips, eye openings, bands of hair).
#[derive(Debug, Clone, Copy)]
pub struct Band {
    pub cx: f32,
    pub cy: f32,
    pub rot: Rot,
    pub w: f32,
    pub top: Quad,
    pub bot: Quad,
}

impl Shape for Band {
    fn bounds(&self) -> Bounds {
        let lo = quad_min(self.top);
        let hi = quad_max(self.bot);
        local_box(self.cx, self.cy, self.rot, -self.w, self.w, lo, hi)
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        let k = slope_factor(self.top, self.w, 1.0).max(slope_factor(self.bot, self.w, 1.0));
        let v = (quad_min(self.top), quad_max(self.bot));
        local_span(
            self.cx,
            self.cy,
            self.rot,
            (-self.w, self.w),
            v,
            m.max(0.0),
            m.max(0.0) * k,
            y,
        )
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        let (c, s) = (self.rot.c, self.rot.s);
        let iw = 1.0 / self.w.max(1e-3);
        let dy = y - self.cy;
        let base = x0 - self.cx;
        let (t0, t1, t2) = (self.top.0, self.top.1, self.top.2);
        let (b0, b1, b2) = (self.bot.0, self.bot.1, self.bot.2);
        for (o, &fi) in out.iter_mut().zip(IOTA.iter()) {
            let dx = base + fi;
            let u = dx * c + dy * s;
            let v = dy * c - dx * s;
            let t = u * iw;
            let top = t0 + t1 * t + t2 * t * t;
            let bot = b0 + b1 * t + b2 * t * t;
            let st = (t1 + 2.0 * t2 * t) * iw;
            let sb = (b1 + 2.0 * b2 * t) * iw;
            let dt = (top - v) / (1.0 + st * st).sqrt();
            let db = (v - bot) / (1.0 + sb * sb).sqrt();
            let de = u.abs() - self.w;
            *o = fmax(fmax(dt, db), de);
        }
    }
}

/// A tapered stroke along the curve `v = curve(t)`, `|u| <= w`; half thickness
/// `half * (1 - taper_l t²)` for `t < 0` and `half * (1 - taper_r t²)` for `t > 0`.
#[derive(Debug, Clone, Copy)]
pub struct Stroke {
    pub cx: f32,
    pub cy: f32,
    pub rot: Rot,
    pub w: f32,
    pub curve: Quad,
    pub half: f32,
    pub taper_l: f32,
    pub taper_r: f32,
}

impl Stroke {
    /// A stroke through three points' worth of parameters: centre, axis, half length, bend.
    pub fn new(cx: f32, cy: f32, rot: Rot, w: f32, curve: Quad, half: f32) -> Self {
        Self {
            cx,
            cy,
            rot,
            w,
            curve,
            half,
            taper_l: 0.0,
            taper_r: 0.0,
        }
    }
    pub fn taper(mut self, l: f32, r: f32) -> Self {
        self.taper_l = l;
        self.taper_r = r;
        self
    }
}

impl Shape for Stroke {
    fn bounds(&self) -> Bounds {
        let h = self.half;
        local_box(
            self.cx,
            self.cy,
            self.rot,
            -self.w,
            self.w,
            quad_min(self.curve) - h,
            quad_max(self.curve) + h,
        )
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        let k = slope_factor(self.curve, self.w, 1.0);
        let h = self.half;
        let v = (quad_min(self.curve) - h * k, quad_max(self.curve) + h * k);
        local_span(
            self.cx,
            self.cy,
            self.rot,
            (-self.w, self.w),
            v,
            m.max(0.0),
            m.max(0.0) * k,
            y,
        )
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        let (c, s) = (self.rot.c, self.rot.s);
        let iw = 1.0 / self.w.max(1e-3);
        let dy = y - self.cy;
        let base = x0 - self.cx;
        let Quad(a0, a1, a2) = self.curve;
        for (o, &fi) in out.iter_mut().zip(IOTA.iter()) {
            let dx = base + fi;
            let u = dx * c + dy * s;
            let v = dy * c - dx * s;
            let t = fmin(fmax(u * iw, -1.0), 1.0);
            let vc = a0 + a1 * t + a2 * t * t;
            let sl = (a1 + 2.0 * a2 * t) * iw;
            let dist = (v - vc).abs() / (1.0 + sl * sl).sqrt();
            let tp = if t < 0.0 { self.taper_l } else { self.taper_r };
            let h = self.half * fmax(1.0 - tp * t * t, 0.05);
            *o = fmax(dist - h, u.abs() - self.w);
        }
    }
}

/// The outline of a shape: `|d| - half`.
#[derive(Debug, Clone, Copy)]
pub struct Ring<S>(pub S, pub f32);

impl<S: Shape> Shape for Ring<S> {
    fn bounds(&self) -> Bounds {
        self.0.bounds().grow(self.1)
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        let s = self.0.span(y, m + self.1);
        Span::outer_only(s.x0, s.x1)
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        self.0.sdf_row(y, x0, out);
        for o in out.iter_mut() {
            *o = o.abs() - self.1;
        }
    }
}

/// A shape grown by `k` pixels (negative shrinks).
#[derive(Debug, Clone, Copy)]
pub struct Grow<S>(pub S, pub f32);

impl<S: Shape> Shape for Grow<S> {
    fn bounds(&self) -> Bounds {
        self.0.bounds().grow(self.1.max(0.0))
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        // d - k < m  <=>  d < m + k;   d - k <= -m  <=>  d <= -(m - k).
        let o = self.0.span(y, m + self.1);
        if self.1 <= m {
            let i = self.0.span(y, m - self.1);
            Span {
                in0: i.in0,
                in1: i.in1,
                ..o
            }
        } else {
            // The inner condition is looser than the shape itself: the shape's interior at margin 0.
            let i = self.0.span(y, 0.0);
            Span {
                in0: i.in0,
                in1: i.in1,
                ..o
            }
        }
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        self.0.sdf_row(y, x0, out);
        for o in out.iter_mut() {
            *o -= self.1;
        }
    }
}

/// Evaluates `a` into `out` and `b` into a small scratch chunk by chunk, then merges with `f`
/// (small chunks keep the zeroed scratch cheap).
#[inline(always)]
fn combine<A: Shape, B: Shape>(
    a: &A,
    b: &B,
    y: f32,
    x0: f32,
    out: &mut [f32],
    f: impl Fn(f32, f32) -> f32,
) {
    const CHUNK: usize = 64;
    let mut tmp = [0f32; CHUNK];
    for (k, o) in out.chunks_mut(CHUNK).enumerate() {
        let xs = x0 + (k * CHUNK) as f32;
        let t = &mut tmp[..o.len()];
        a.sdf_row(y, xs, o);
        b.sdf_row(y, xs, t);
        for (v, w) in o.iter_mut().zip(t.iter()) {
            *v = f(*v, *w);
        }
    }
}

/// Both shapes.
#[derive(Debug, Clone, Copy)]
pub struct And<A, B>(pub A, pub B);

impl<A: Shape, B: Shape> Shape for And<A, B> {
    fn bounds(&self) -> Bounds {
        self.0.bounds().intersect(self.1.bounds())
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        let (a, b) = (self.0.span(y, m), self.1.span(y, m));
        if a.is_empty() || b.is_empty() {
            return Span::EMPTY;
        }
        Span {
            x0: a.x0.max(b.x0),
            x1: a.x1.min(b.x1),
            in0: a.in0.max(b.in0),
            in1: a.in1.min(b.in1),
        }
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        combine(&self.0, &self.1, y, x0, out, fmax);
    }
}

/// Either shape.
#[derive(Debug, Clone, Copy)]
pub struct Or<A, B>(pub A, pub B);

impl<A: Shape, B: Shape> Shape for Or<A, B> {
    fn bounds(&self) -> Bounds {
        self.0.bounds().union(self.1.bounds())
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        let (a, b) = (self.0.span(y, m), self.1.span(y, m));
        if a.is_empty() {
            return b;
        }
        if b.is_empty() {
            return a;
        }
        let (in0, in1) = match (a.has_inner(), b.has_inner()) {
            (true, true) if a.in0 <= b.in1 && b.in0 <= a.in1 => {
                (a.in0.min(b.in0), a.in1.max(b.in1))
            }
            (true, true) if a.in1 - a.in0 >= b.in1 - b.in0 => (a.in0, a.in1),
            (true, _) => (a.in0, a.in1),
            (_, true) => (b.in0, b.in1),
            _ => (1.0, -1.0),
        };
        Span {
            x0: a.x0.min(b.x0),
            x1: a.x1.max(b.x1),
            in0,
            in1,
        }
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        combine(&self.0, &self.1, y, x0, out, fmin);
    }
}

/// The first shape minus the second.
#[derive(Debug, Clone, Copy)]
pub struct Minus<A, B>(pub A, pub B);

impl<A: Shape, B: Shape> Shape for Minus<A, B> {
    fn bounds(&self) -> Bounds {
        self.0.bounds()
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        let a = self.0.span(y, m);
        if a.is_empty() || !a.has_inner() {
            return a;
        }
        // Where B might come within m of cutting, the interior is not guaranteed.
        let b = self.1.span(y, m);
        if b.is_empty() || b.x1 < a.in0 || b.x0 > a.in1 {
            return a;
        }
        let left = (a.in0, (b.x0 - 1.0).floor());
        let right = ((b.x1 + 1.0).ceil(), a.in1);
        let (in0, in1) = if left.1 - left.0 >= right.1 - right.0 {
            left
        } else {
            right
        };
        Span { in0, in1, ..a }
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        combine(&self.0, &self.1, y, x0, out, |a, b| fmax(a, -b));
    }
}

/// The side of a curve `v >= curve(t)` (`below = true`) or `v <= curve(t)` in a rotated frame,
/// limited to `|u| <= 1.5 w` (hairlines, beard edges, clipping).
#[derive(Debug, Clone, Copy)]
pub struct Side {
    pub cx: f32,
    pub cy: f32,
    pub rot: Rot,
    pub w: f32,
    pub curve: Quad,
    pub below: bool,
    pub bounds: Bounds,
}

impl Side {
    /// The side of `curve` within `|u| <= 1.5 w`, extending `reach` pixels away from the curve.
    pub fn new(cx: f32, cy: f32, rot: Rot, w: f32, curve: Quad, below: bool, reach: f32) -> Self {
        let ext = Quad(curve.0, 1.5 * curve.1, 2.25 * curve.2);
        let (v0, v1) = if below {
            (quad_min(ext), quad_max(ext) + reach)
        } else {
            (quad_min(ext) - reach, quad_max(ext))
        };
        let k = slope_factor(curve, w, 1.5);
        let bounds = local_box(cx, cy, rot, -1.5 * w, 1.5 * w, v0 - 2.0 * k, v1 + 2.0 * k);
        Side {
            cx,
            cy,
            rot,
            w,
            curve,
            below,
            bounds,
        }
    }
}

impl Shape for Side {
    fn bounds(&self) -> Bounds {
        self.bounds
    }
    #[inline(always)]
    fn sdf_row(&self, y: f32, x0: f32, out: &mut [f32]) {
        let (c, s) = (self.rot.c, self.rot.s);
        let iw = 1.0 / self.w.max(1e-3);
        let dy = y - self.cy;
        let base = x0 - self.cx;
        let Quad(a0, a1, a2) = self.curve;
        let sign = if self.below { -1.0 } else { 1.0 };
        for (o, &fi) in out.iter_mut().zip(IOTA.iter()) {
            let dx = base + fi;
            let u = dx * c + dy * s;
            let v = dy * c - dx * s;
            let t = u * iw;
            let vc = a0 + a1 * t + a2 * t * t;
            let sl = (a1 + 2.0 * a2 * t) * iw;
            *o = fmax(
                sign * (v - vc) / (1.0 + sl * sl).sqrt(),
                u.abs() - 1.5 * self.w,
            );
        }
    }
    #[inline(always)]
    fn span(&self, y: f32, m: f32) -> Span {
        let m = m.max(0.0);
        let tm = 1.5 + m / self.w.max(1e-3);
        let ext = Quad(self.curve.0, tm * self.curve.1, tm * tm * self.curve.2);
        let k = slope_factor(self.curve, self.w, tm);
        let (v0, v1) = if self.below {
            (quad_min(ext), 1e4)
        } else {
            (-1e4, quad_max(ext))
        };
        let b = local_box(
            self.cx,
            self.cy,
            self.rot,
            -1.5 * self.w - m,
            1.5 * self.w + m,
            v0 - m * k,
            v1 + m * k,
        );
        if y < b.y0 || y > b.y1 {
            return Span::EMPTY;
        }
        let mut sp = Span::outer_only(b.x0, b.x1);
        if let Some((in0, in1)) = self.inner(y, m, k) {
            sp.in0 = in0.ceil();
            sp.in1 = in1.floor();
        }
        sp
    }
}

impl Side {
    /// The largest x-interval of row `y` where the distance is at most `-m` (`k` bounds the slope
    /// factor): `σ (v - curve(t)) + m k <= 0` is a quadratic inequality in x, intersected with
    /// `|u| <= 1.5 w - m`.
    fn inner(&self, y: f32, m: f32, k: f32) -> Option<(f32, f32)> {
        let (c, s) = (self.rot.c, self.rot.s);
        if c < 0.2 {
            return None;
        }
        let w = self.w.max(1e-3);
        let dy = y - self.cy;
        let lim = 1.5 * w - m;
        if lim <= 0.0 {
            return None;
        }
        // x' = x - cx;  u = x' c + dy s;  t = p x' + q0.
        let (p, q0) = (c / w, dy * s / w);
        let Quad(a0, a1, a2) = self.curve;
        let sg = if self.below { -1.0 } else { 1.0 };
        let qa = -sg * a2 * p * p;
        let qb = sg * (-s - a1 * p - 2.0 * a2 * p * q0);
        let qc = sg * (dy * c - a0 - a1 * q0 - a2 * q0 * q0) + m * k;
        let (u0, u1) = ((-lim - dy * s) / c, (lim - dy * s) / c);
        // Solution set of qa x² + qb x + qc <= 0 intersected with [u0, u1], largest piece.
        let clip = |a: f32, b: f32| -> Option<(f32, f32)> {
            let (a, b) = (a.max(u0), b.min(u1));
            (a <= b).then_some((a, b))
        };
        let big = 1e6f32;
        let pieces: [Option<(f32, f32)>; 2] = if qa.abs() < 1e-9 {
            if qb.abs() < 1e-9 {
                [if qc <= 0.0 { clip(-big, big) } else { None }, None]
            } else if qb > 0.0 {
                [clip(-big, -qc / qb), None]
            } else {
                [clip(-qc / qb, big), None]
            }
        } else {
            let disc = qb * qb - 4.0 * qa * qc;
            if disc < 0.0 {
                // No roots: the sign of qa decides.
                [if qa < 0.0 { clip(-big, big) } else { None }, None]
            } else {
                let r = disc.sqrt();
                let (r0, r1) = ((-qb - r) / (2.0 * qa), (-qb + r) / (2.0 * qa));
                let (lo, hi) = (r0.min(r1), r0.max(r1));
                if qa > 0.0 {
                    [clip(lo, hi), None]
                } else {
                    [clip(-big, lo), clip(hi, big)]
                }
            }
        };
        let best = pieces
            .into_iter()
            .flatten()
            .max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))?;
        // Keep a hair of slack against rounding.
        Some((best.0 + self.cx + 0.01, best.1 + self.cx - 0.01))
    }
}

/// How a covered span changes the canvas.
pub trait Paint {
    /// Blends coverage `cov` (0..1) into the span of row `y` starting at `x0`.
    fn blend_row(
        &self,
        x0: usize,
        y: usize,
        cov: &[f32],
        r: &mut [f32],
        g: &mut [f32],
        b: &mut [f32],
    );
}

/// One colour.
#[derive(Debug, Clone, Copy)]
pub struct Solid(pub Rgb);

impl Paint for Solid {
    #[inline(always)]
    fn blend_row(
        &self,
        _x0: usize,
        _y: usize,
        cov: &[f32],
        r: &mut [f32],
        g: &mut [f32],
        b: &mut [f32],
    ) {
        let [cr, cg, cb] = self.0.0;
        let n = cov.len();
        let (r, g, b) = (&mut r[..n], &mut g[..n], &mut b[..n]);
        for i in 0..n {
            let a = cov[i];
            r[i] += a * (cr - r[i]);
            g[i] += a * (cg - g[i]);
            b[i] += a * (cb - b[i]);
        }
    }
}

/// Multiplies what is underneath by a tint (shadows, tinted lenses).
#[derive(Debug, Clone, Copy)]
pub struct Multiply(pub Rgb);

impl Paint for Multiply {
    #[inline(always)]
    fn blend_row(
        &self,
        _x0: usize,
        _y: usize,
        cov: &[f32],
        r: &mut [f32],
        g: &mut [f32],
        b: &mut [f32],
    ) {
        let [tr, tg, tb] = self.0.0;
        let n = cov.len();
        let (r, g, b) = (&mut r[..n], &mut g[..n], &mut b[..n]);
        for i in 0..n {
            let a = cov[i];
            r[i] *= 1.0 + a * (tr - 1.0);
            g[i] *= 1.0 + a * (tg - 1.0);
            b[i] *= 1.0 + a * (tb - 1.0);
        }
    }
}

/// A linear gradient `base + dx * (x - ox) + dy * (y - oy)`.
#[derive(Debug, Clone, Copy)]
pub struct Linear {
    pub base: Rgb,
    pub ox: f32,
    pub oy: f32,
    pub dx: Rgb,
    pub dy: Rgb,
}

impl Paint for Linear {
    #[inline(always)]
    fn blend_row(
        &self,
        x0: usize,
        y: usize,
        cov: &[f32],
        r: &mut [f32],
        g: &mut [f32],
        b: &mut [f32],
    ) {
        let fy = y as f32 - self.oy;
        let fx = x0 as f32 - self.ox;
        let c0: [f32; 3] =
            std::array::from_fn(|k| self.base.0[k] + self.dy.0[k] * fy + self.dx.0[k] * fx);
        let [dr, dg, db] = self.dx.0;
        let n = cov.len();
        // (Slicing `IOTA` once keeps a bounds check out of the loop: one inside would stop it
        // vectorising.)
        let (r, g, b, iota) = (&mut r[..n], &mut g[..n], &mut b[..n], &IOTA[..n]);
        for i in 0..n {
            let a = cov[i];
            let fi = iota[i];
            r[i] += a * (c0[0] + dr * fi - r[i]);
            g[i] += a * (c0[1] + dg * fi - g[i]);
            b[i] += a * (c0[2] + db * fi - b[i]);
        }
    }
}

/// A colour modulated by a tiling texture (`tex` is `size × size`, `size` a power of two, values around 0) and a vertical
/// light gradient: `color * (1 + amp * tex + gy * (y - oy))` (hair, beards).
#[derive(Debug, Clone, Copy)]
pub struct Textured<'a> {
    pub color: Rgb,
    pub tex: &'a [f32],
    pub size: usize,
    pub amp: f32,
    pub offset: (usize, usize),
    pub oy: f32,
    pub gy: f32,
    /// Horizontal shift of the texture per row (`shift[y % len]`), for waves.
    pub shift: &'a [u8],
}

impl Paint for Textured<'_> {
    #[inline(always)]
    fn blend_row(
        &self,
        x0: usize,
        y: usize,
        cov: &[f32],
        r: &mut [f32],
        g: &mut [f32],
        b: &mut [f32],
    ) {
        let n = self.size;
        debug_assert!(n.is_power_of_two() && self.tex.len() >= n * n);
        let mask = n - 1;
        let sh = if self.shift.is_empty() {
            0
        } else {
            self.shift[y % self.shift.len()] as usize
        };
        let row = &self.tex[((y + self.offset.1) & mask) * n..][..n];
        let light = 1.0 + self.gy * (y as f32 - self.oy);
        let [cr, cg, cb] = self.color.scale(light).0;
        let start = (x0 + self.offset.0 + sh) & mask;
        // The texture row repeated, starting at `start`: contiguous, so the blend vectorises.
        let mut tex = [0f32; MAX_W];
        let len = cov.len();
        let mut filled = 0;
        let mut from = start;
        while filled < len {
            let k = (n - from).min(len - filled);
            tex[filled..filled + k].copy_from_slice(&row[from..from + k]);
            filled += k;
            from = 0;
        }
        let (r, g, b, tex) = (&mut r[..len], &mut g[..len], &mut b[..len], &tex[..len]);
        for i in 0..len {
            let a = cov[i];
            let m = 1.0 + self.amp * tex[i];
            r[i] += a * (cr * m - r[i]);
            g[i] += a * (cg * m - g[i]);
            b[i] += a * (cb * m - b[i]);
        }
    }
}

/// Skin on an ellipsoid: Lambert shading from the normal of a (rotated) ellipse treated as the
/// silhouette of an ellipsoid, `color * (ambient + diffuse * max(n·l, 0))`.
#[derive(Debug, Clone, Copy)]
pub struct Ellipsoid {
    pub color: Rgb,
    pub shape: Ellipse,
    pub light: [f32; 3],
    pub ambient: f32,
    pub diffuse: f32,
}

impl Paint for Ellipsoid {
    #[inline(always)]
    fn blend_row(
        &self,
        x0: usize,
        y: usize,
        cov: &[f32],
        r: &mut [f32],
        g: &mut [f32],
        b: &mut [f32],
    ) {
        let e = &self.shape;
        let (c, s) = (e.rot.c, e.rot.s);
        let (ia, ib) = (1.0 / e.a, 1.0 / e.b);
        let dy = y as f32 - e.cy;
        let base = x0 as f32 - e.cx;
        let [lx, ly, lz] = self.light;
        // Light in the ellipse's frame.
        let (lu, lv) = (lx * c + ly * s, ly * c - lx * s);
        let [cr, cg, cb] = self.color.0;
        let n = cov.len();
        // (Slicing `IOTA` once keeps a bounds check out of the loop: one inside would stop it
        // vectorising.)
        let (r, g, b, iota) = (&mut r[..n], &mut g[..n], &mut b[..n], &IOTA[..n]);
        for i in 0..n {
            let dx = base + iota[i];
            let nu = (dx * c + dy * s) * ia;
            let nv = (dy * c - dx * s) * ib;
            let k = fmin(nu * nu + nv * nv, 1.0);
            let nz = (1.0 - k).sqrt();
            let ndl = fmax(nu * lu + nv * lv + nz * lz, 0.0);
            let sh = self.ambient + self.diffuse * ndl;
            let a = cov[i];
            r[i] += a * (cr * sh - r[i]);
            g[i] += a * (cg * sh - g[i]);
            b[i] += a * (cb * sh - b[i]);
        }
    }
}

/// An RGB canvas with planar `f32` channels.
#[derive(Debug, Clone)]
pub struct Canvas {
    w: usize,
    h: usize,
    r: Vec<f32>,
    g: Vec<f32>,
    b: Vec<f32>,
}

/// How a shape is applied.
#[derive(Clone, Copy)]
pub struct Style<'a> {
    /// Edge width in pixels (1 = crisp anti-aliased edge).
    pub feather: f32,
    /// Overall opacity.
    pub opacity: f32,
    /// Nothing is drawn where the clip's distance is above -0.25 (a hard guarantee, used to keep
    /// local attributes inside their mask).
    pub clip: Option<&'a dyn Shape>,
}

impl Style<'_> {
    pub const CRISP: Style<'static> = Style {
        feather: 1.0,
        opacity: 1.0,
        clip: None,
    };
    pub fn soft(feather: f32, opacity: f32) -> Style<'static> {
        Style {
            feather,
            opacity,
            clip: None,
        }
    }
}

impl Canvas {
    /// A black canvas; `w` is at most [`MAX_W`].
    pub fn new(w: usize, h: usize) -> Self {
        assert!(w <= MAX_W, "canvas wider than {MAX_W}");
        Self {
            w,
            h,
            // `LANES` floats of slack: `draw` blends whole multiples of `LANES` pixels (zero
            // coverage past the span, which leaves those pixels unchanged), possibly past the last.
            r: vec![0.0; w * h + LANES],
            g: vec![0.0; w * h + LANES],
            b: vec![0.0; w * h + LANES],
        }
    }

    pub fn width(&self) -> usize {
        self.w
    }

    pub fn height(&self) -> usize {
        self.h
    }

    /// Fills row `y` with one colour per row from `f(y)` plus a horizontal slope per channel.
    #[inline(always)]
    pub fn fill_rows(&mut self, mut f: impl FnMut(usize) -> (Rgb, Rgb)) {
        let w = self.w;
        for y in 0..self.h {
            let (c, d) = f(y);
            let o = y * w;
            for (k, plane) in [&mut self.r, &mut self.g, &mut self.b]
                .into_iter()
                .enumerate()
            {
                let (c0, dk) = (c.0[k], d.0[k]);
                for (p, &fi) in plane[o..o + w].iter_mut().zip(IOTA.iter()) {
                    *p = c0 + dk * fi;
                }
            }
        }
    }

    /// Draws `shape` with `paint`.
    #[inline(always)]
    pub fn draw<S: Shape + ?Sized, P: Paint + ?Sized>(
        &mut self,
        shape: &S,
        style: Style<'_>,
        paint: &P,
    ) {
        let margin = 0.5 * style.feather + 1.0;
        let mut bb = shape.bounds().grow(margin);
        if let Some(clip) = style.clip {
            bb = bb.intersect(clip.bounds().grow(1.0));
        }
        if !(bb.x0 < bb.x1 && bb.y0 < bb.y1) || style.opacity <= 0.0 {
            return;
        }
        let x0 = bb.x0.floor().max(0.0) as usize;
        let y0 = bb.y0.floor().max(0.0) as usize;
        let x1 = (bb.x1.ceil() + 1.0).clamp(0.0, self.w as f32) as usize;
        let y1 = (bb.y1.ceil() + 1.0).clamp(0.0, self.h as f32) as usize;
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let k = 1.0 / style.feather.max(1e-3);
        let m = 0.5 * style.feather + 0.5;
        let op = style.opacity;
        let mut cov = [0f32; MAX_W + LANES];
        let mut clip_row = [0f32; MAX_W];
        for y in y0..y1 {
            let fy = y as f32;
            let sp = shape.span(fy, m);
            if sp.is_empty() {
                continue;
            }
            // Row extent: the span within the bounding box, in whole pixels.
            let rx0 = (sp.x0.floor().max(x0 as f32) as usize).max(x0);
            let rx1 = ((sp.x1.ceil() + 1.0).min(x1 as f32).max(0.0) as usize).min(x1);
            if rx0 >= rx1 {
                continue;
            }
            let n = rx1 - rx0;
            // Every loop below runs over a multiple of `LANES` pixels: distances are evaluated past
            // the end of each edge segment (then overwritten, in this order: left edge, interior,
            // right edge, zero tail) and the blend covers `pad(n)` pixels, the ones past the span
            // with zero coverage, which leaves them exactly as they were.
            let n8 = pad(n);
            // Interior pixels (full coverage) need no distance.
            let (i0, i1) = if sp.has_inner() {
                let a = (sp.in0.max(rx0 as f32) as usize).clamp(rx0, rx1) - rx0;
                let b = ((sp.in1 + 1.0).max(0.0) as usize).clamp(rx0, rx1) - rx0;
                if a < b { (a, b) } else { (n, n) }
            } else {
                (n, n)
            };
            // (No running max here: a NaN-aware f32 reduction would keep these loops scalar.)
            if i0 > 0 {
                let c = &mut cov[..pad(i0)];
                shape.sdf_row(fy, rx0 as f32, c);
                for c in c.iter_mut() {
                    *c = clamp01(0.5 - *c * k) * op;
                }
            }
            cov[i0..i1].fill(op);
            if i1 < n {
                let c = &mut cov[i1..i1 + pad(n - i1)];
                shape.sdf_row(fy, (rx0 + i1) as f32, c);
                for c in c.iter_mut() {
                    *c = clamp01(0.5 - *c * k) * op;
                }
            }
            cov[n..n8].fill(0.0);
            let cov = &mut cov[..n8];
            if let Some(clip) = style.clip {
                let cr = &mut clip_row[..n8];
                clip.sdf_row(fy, rx0 as f32, cr);
                for (c, d) in cov.iter_mut().zip(cr.iter()) {
                    *c *= clamp01(-0.25 - *d);
                }
            }
            let o = y * self.w + rx0;
            paint.blend_row(
                rx0,
                y,
                cov,
                &mut self.r[o..o + n8],
                &mut self.g[o..o + n8],
                &mut self.b[o..o + n8],
            );
        }
    }

    /// The colour at a pixel.
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = y * self.w + x;
        Rgb([self.r[i], self.g[i], self.b[i]])
    }

    /// Interleaved 8-bit RGB (`out.len() == w * h * 3`), rounded and clamped.
    #[inline(always)]
    pub fn to_rgb8(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.w * self.h * 3);
        let w = self.w;
        // Round to nearest via the float mantissa (adding 1.5 · 2^23 leaves the integer in the low
        // bits): a saturating `as` cast would not vectorise. Pack each pixel into a u32, then store
        // overlapping 4-byte words (each next pixel overwrites the spare byte).
        let q8 = |v: f32| (fmin(fmax(v * 255.0, 0.0), 255.0) + 12_582_912.0).to_bits() & 0xFF;
        let mut q = [0u32; MAX_W];
        for (y, row) in out.chunks_exact_mut(w * 3).enumerate() {
            let o = y * w;
            let (pr, pg, pb) = (&self.r[o..o + w], &self.g[o..o + w], &self.b[o..o + w]);
            for (((d, r), g), b) in q[..w].iter_mut().zip(pr).zip(pg).zip(pb) {
                *d = q8(*r) | (q8(*g) << 8) | (q8(*b) << 16);
            }
            // Four pixels (12 bytes) as three little-endian words.
            let full = w / 4;
            for (k, dst) in row[..full * 12].chunks_exact_mut(12).enumerate() {
                let (a, b, c, d) = (q[4 * k], q[4 * k + 1], q[4 * k + 2], q[4 * k + 3]);
                dst[0..4].copy_from_slice(&(a | (b << 24)).to_le_bytes());
                dst[4..8].copy_from_slice(&((b >> 8) | (c << 16)).to_le_bytes());
                dst[8..12].copy_from_slice(&((c >> 16) | (d << 8)).to_le_bytes());
            }
            for x in full * 4..w {
                row[3 * x..3 * x + 3].copy_from_slice(&q[x].to_le_bytes()[..3]);
            }
        }
    }

    /// [`Canvas::to_rgb8`] with AVX2 (the same bytes: the same clamp and round-to-nearest-even,
    /// then a byte shuffle instead of the word packing).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    pub unsafe fn to_rgb8_avx2(&self, out: &mut [u8]) {
        use std::arch::x86_64::*;
        let n = self.w * self.h;
        assert_eq!(out.len(), n * 3);
        // Rows are contiguous in the planes and in `out`: one flat pass. Each group of 8 pixels
        // stores 28 bytes (24 + 4 that the next group overwrites), so the vector loop stops where
        // that would run past `out`; the scalar loop finishes.
        let groups = if n * 3 >= 28 {
            (n * 3 - 28) / 24 + 1
        } else {
            0
        }
        .min(n / 8);
        let (pr, pg, pb) = (&self.r[..n], &self.g[..n], &self.b[..n]);
        let k255 = _mm256_set1_ps(255.0);
        let zero = _mm256_setzero_ps();
        let magic = _mm256_set1_ps(12_582_912.0);
        let low = _mm256_set1_epi32(0xFF);
        // Per 128-bit lane: 4 pixels as 0x00BBGGRR words -> 12 bytes RGBRGB…
        let pack = _mm256_setr_epi8(
            0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12,
            13, 14, -1, -1, -1, -1,
        );
        let q8 = |p: *const f32| {
            // SAFETY: `p` points at 8 readable floats (`g < groups <= n / 8`).
            let v = unsafe { _mm256_loadu_ps(p) };
            let v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v, k255), zero), k255);
            _mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(v, magic)), low)
        };
        for g in 0..groups {
            let i = g * 8;
            let r = q8(pr[i..].as_ptr());
            let gg = q8(pg[i..].as_ptr());
            let b = q8(pb[i..].as_ptr());
            let px = _mm256_or_si256(
                r,
                _mm256_or_si256(_mm256_slli_epi32::<8>(gg), _mm256_slli_epi32::<16>(b)),
            );
            let bytes = _mm256_shuffle_epi8(px, pack);
            let dst = out[3 * i..3 * i + 28].as_mut_ptr();
            // SAFETY: `dst` has 28 writable bytes (the slice above).
            unsafe {
                _mm_storeu_si128(dst as *mut __m128i, _mm256_castsi256_si128(bytes));
                _mm_storeu_si128(
                    dst.add(12) as *mut __m128i,
                    _mm256_extracti128_si256::<1>(bytes),
                );
            }
        }
        let q8s = |v: f32| (fmin(fmax(v * 255.0, 0.0), 255.0) + 12_582_912.0).to_bits() as u8;
        for i in groups * 8..n {
            out[3 * i] = q8s(pr[i]);
            out[3 * i + 1] = q8s(pg[i]);
            out[3 * i + 2] = q8s(pb[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coverage_sum(shape: &dyn Shape) -> f32 {
        let mut c = Canvas::new(64, 64);
        c.draw(shape, Style::CRISP, &Solid(Rgb::new(1.0, 1.0, 1.0)));
        (0..64)
            .flat_map(|y| (0..64).map(move |x| (x, y)))
            .map(|(x, y)| c.get(x, y).0[0])
            .sum()
    }

    #[test]
    fn to_rgb8_code_paths_agree() {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            for (w, h) in [(178, 218), (5, 3), (9, 1), (1, 1), (16, 2)] {
                let mut c = Canvas::new(w, h);
                let mut k = 0u32;
                c.fill_rows(|y| {
                    k = k.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let v = (k >> 8) as f32 / (1u32 << 24) as f32;
                    (
                        Rgb::new(v * 1.4 - 0.2, 0.5 + 0.001 * y as f32, 1.0 - v),
                        Rgb::new(0.0021, -0.0037, 0.00499),
                    )
                });
                let (mut a, mut b) = (vec![0u8; w * h * 3], vec![1u8; w * h * 3]);
                c.to_rgb8(&mut a);
                #[allow(unsafe_code)]
                // SAFETY: AVX2 detected above.
                unsafe {
                    c.to_rgb8_avx2(&mut b)
                };
                assert!(a == b, "{w}×{h}");
            }
        }
    }

    #[test]
    fn areas_are_close_to_analytic() {
        let e = Ellipse::new(32.0, 30.0, 20.0, 10.0, Rot::angle(0.3));
        let area = std::f32::consts::PI * 200.0;
        assert!(
            (coverage_sum(&e) - area).abs() / area < 0.01,
            "{}",
            coverage_sum(&e)
        );
        let cap = Capsule::new((20.0, 20.0), (40.0, 40.0), 5.0);
        let area = std::f32::consts::PI * 25.0 + 10.0 * 800f32.sqrt();
        assert!((coverage_sum(&cap) - area).abs() / area < 0.01);
        let bx = RoundBox {
            cx: 32.0,
            cy: 32.0,
            hw: 10.0,
            hh: 6.0,
            r: 0.0,
            rot: Rot::ID,
        };
        assert!((coverage_sum(&bx) - 240.0).abs() < 2.0);
        let band = Band {
            cx: 32.0,
            cy: 32.0,
            rot: Rot::ID,
            w: 10.0,
            top: Quad::arch(-4.0),
            bot: Quad::arch(4.0),
        };
        // Area between two parabolas: 2 * (2/3 * 20 * 4).
        assert!(
            (coverage_sum(&band) - 106.67).abs() < 3.0,
            "{}",
            coverage_sum(&band)
        );
    }

    /// Spans must agree with the distances they stand for: nothing outside `x0..=x1` is within `m`,
    /// everything inside `in0..=in1` is at most `-m`.
    fn check_spans(what: &str, shape: &dyn Shape, m: f32) {
        let mut row = [0f32; 256];
        for y in -40..260 {
            let fy = y as f32;
            let sp = shape.span(fy, m);
            shape.sdf_row(fy, -40.0, &mut row[..256]);
            for (i, d) in row.iter().enumerate() {
                let x = i as f32 - 40.0;
                let outside = sp.is_empty() || x < sp.x0 || x > sp.x1;
                assert!(
                    !(outside && *d < m),
                    "{what} m={m} y={y} x={x}: d={d} but outside span {sp:?}"
                );
                if sp.has_inner() && x >= sp.in0 && x <= sp.in1 {
                    assert!(
                        *d <= -m,
                        "{what} m={m} y={y} x={x}: d={d} but inside interior {sp:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn spans_are_conservative() {
        let mut k = 0u32;
        let mut rnd = || {
            k += 1;
            let h = k.wrapping_mul(2654435761) ^ (k >> 3).wrapping_mul(40503);
            (h % 10_000) as f32 / 10_000.0
        };
        for _ in 0..150 {
            // The distance approximation is meant for aspect ratios up to 3 (all the renderer uses).
            let a = 1.0 + 60.0 * rnd();
            let b = (a * (0.34 + 2.6 * rnd())).max(1.0);
            let e = Ellipse::new(
                40.0 + 100.0 * rnd(),
                40.0 + 140.0 * rnd(),
                a,
                b,
                Rot::angle(rnd() * 6.3),
            );
            let m = 0.5 + 6.0 * rnd();
            check_spans(&format!("ellipse {e:?}"), &e, m);
            check_spans("grow", &Grow(e, 4.0 * rnd() - 1.0), m);
            check_spans("ring", &Ring(e, 2.0 * rnd()), m);
            let e2 = Ellipse::new(
                60.0 + 60.0 * rnd(),
                60.0 + 100.0 * rnd(),
                5.0 + 30.0 * rnd(),
                5.0 + 30.0 * rnd(),
                Rot::angle(rnd()),
            );
            check_spans("or", &Or(e, e2), m);
            check_spans("and", &And(e, e2), m);
            check_spans("minus", &Minus(e, e2), m);
            let st = Stroke::new(
                80.0,
                100.0,
                Rot::angle(rnd() * 6.3),
                5.0 + 30.0 * rnd(),
                Quad::arch(10.0 * rnd() - 5.0),
                0.5 + 3.0 * rnd(),
            );
            check_spans("stroke", &st, m);
            let band = Band {
                cx: 80.0,
                cy: 100.0,
                rot: Rot::angle(rnd()),
                w: 5.0 + 20.0 * rnd(),
                top: Quad::arch(-5.0 * rnd()),
                bot: Quad::arch(8.0 * rnd()),
            };
            check_spans("band", &band, m);
            let side = Side::new(
                80.0,
                90.0,
                Rot::angle(rnd() - 0.5),
                40.0,
                Quad(-10.0, 2.0, 40.0 * rnd() - 20.0),
                rnd() > 0.5,
                200.0,
            );
            check_spans("side", &And(e, side), m);
            check_spans("side alone", &side, m);
        }
    }

    #[test]
    fn edges_are_anti_aliased_and_clips_are_hard() {
        let mut c = Canvas::new(32, 8);
        let half = RoundBox {
            cx: 0.0,
            cy: 4.0,
            hw: 10.5,
            hh: 100.0,
            r: 0.0,
            rot: Rot::ID,
        };
        c.draw(&half, Style::CRISP, &Solid(Rgb::new(1.0, 1.0, 1.0)));
        assert_eq!(c.get(10, 4).0[0], 1.0);
        assert!((c.get(11, 4).0[0] - 0.0).abs() < 1e-6);
        let mut c = Canvas::new(32, 8);
        let half = RoundBox {
            cx: 0.0,
            cy: 4.0,
            hw: 10.0,
            hh: 100.0,
            r: 0.0,
            rot: Rot::ID,
        };
        c.draw(&half, Style::CRISP, &Solid(Rgb::new(1.0, 1.0, 1.0)));
        assert!((c.get(10, 4).0[0] - 0.5).abs() < 1e-6);
        let mut c = Canvas::new(32, 8);
        let clip = Capsule::new((0.0, 4.0), (0.0, 4.0), 5.0);
        c.draw(
            &Ellipse::circle(4.0, 4.0, 20.0),
            Style {
                clip: Some(&clip),
                ..Style::CRISP
            },
            &Solid(Rgb::new(1.0, 1.0, 1.0)),
        );
        for x in 5..32 {
            assert_eq!(c.get(x, 4).0[0], 0.0, "x={x}");
        }
        assert_eq!(c.get(3, 4).0[0], 1.0);
    }
}
