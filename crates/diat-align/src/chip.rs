//! dlib's face chips: the 150×150 crops that dlib's face-recognition ResNet
//! (`dlib_face_recognition_resnet_model_v1`, 128-D descriptors) expects, cut exactly as dlib cuts
//! them (`dlib/image_transforms/interpolation.h` of dlib 20.0.1: `chip_details`,
//! `get_face_chip_details`, `extract_image_chips`; `dlib.get_face_chip` and
//! `compute_face_descriptor(img, shape)` in Python).
//!
//! * [`ChipDetails::from_points`] is dlib's `chip_details(chip_points, img_points, dims)`: the
//!   least-squares similarity chip → image (dlib's `find_similarity_transform`, Umeyama with its
//!   reflection guard, which for the best *proper* similarity is the closed form of
//!   [`Similarity::estimate`]; the two agree to rounding), kept as a rotated rectangle `rect`
//!   (centred on the image of chip point `(cols/2, rows/2)`, `cols·scale` × `rows·scale`) and an
//!   `angle`. Chip pixel `(0, 0)` samples the rectangle's (rotated) top-left corner and
//!   `(cols−1, rows−1)` its bottom-right one, so dlib's chip is the fitted similarity shifted by
//!   half a chip pixel and scaled by `(cols·scale − 1)/(cols − 1)` ([`ChipDetails::chip_to_image`]).
//! * [`extract_image_chip`] is dlib's `extract_image_chip` for one chip on an RGB8 image: when the
//!   chip is much smaller than its source rectangle, dlib first builds a `pyramid_down<2>` pyramid
//!   (5×5 binomial filter in 16-bit integers, each level `(n − 3)/2` pixels a side, of the image
//!   cropped to the rotated rectangle grown by a margin) and samples the level whose rectangle area
//!   is still at least the chip's pixel count; each chip pixel is then the bilinear interpolation
//!   of its 2×2 neighbours in `f64`, **truncated** to `u8` (dlib's `vector_to_pixel`), and black
//!   where the 2×2 neighbourhood leaves the (cropped) source.
//! * [`dlib_chip_from_dlib5`]: `dlib.get_face_chip(img, shape5, size, padding)` for dlib's
//!   5-point convention ([`DLIB_5_POINT_TEMPLATE`]).
//! * [`face_chip`]: the same geometry from *our* 5 landmarks (CelebA order: eye centres, nose tip,
//!   mouth corners), fitted to the corresponding points of dlib's 68-point mean face
//!   ([`celeba5_template`]), with dlib's padding formula.
//!
//! Points given to dlib from Python are integers (`dlib.point`); pass integer coordinates here to
//! reproduce a Python chip bit for bit. `padding` is rounded to `f32` first, as the Python
//! binding's `float padding` argument does.

use crate::error::{AlignError, Result};
use crate::landmarks::Landmarks;
use crate::similarity::{Point, Similarity};
use image::{Rgb, RgbImage};

/// The chip side `compute_face_descriptor` uses (the network's input is 150×150).
pub const FACE_CHIP_SIZE: u32 = 150;
/// The padding `compute_face_descriptor` uses by default.
pub const FACE_CHIP_PADDING: f64 = 0.25;

/// dlib's template for its 5-point shape predictor (`shape_predictor_5_face_landmarks.dat`), in
/// the unit square of an unpadded chip, in that predictor's part order: outer and inner corner of
/// the image-right eye, outer and inner corner of the image-left eye, base of the nose.
pub const DLIB_5_POINT_TEMPLATE: [Point; 5] = [
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
];

/// x of dlib's mean face shape (`get_face_chip_details`), points 17–67 of the iBUG 68-point
/// scheme (index `i − 17`), unit square of an unpadded chip.
pub const DLIB_MEAN_FACE_X: [f64; 51] = [
    0.000213256,
    0.0752622,
    0.18113,
    0.29077,
    0.393397,
    0.586856,
    0.689483,
    0.799124,
    0.904991,
    0.98004,
    0.490127,
    0.490127,
    0.490127,
    0.490127,
    0.36688,
    0.426036,
    0.490127,
    0.554217,
    0.613373,
    0.121737,
    0.187122,
    0.265825,
    0.334606,
    0.260918,
    0.182743,
    0.645647,
    0.714428,
    0.793132,
    0.858516,
    0.79751,
    0.719335,
    0.254149,
    0.340985,
    0.428858,
    0.490127,
    0.551395,
    0.639268,
    0.726104,
    0.642159,
    0.556721,
    0.490127,
    0.423532,
    0.338094,
    0.290379,
    0.428096,
    0.490127,
    0.552157,
    0.689874,
    0.553364,
    0.490127,
    0.42689,
];

/// y of dlib's mean face shape, as [`DLIB_MEAN_FACE_X`].
pub const DLIB_MEAN_FACE_Y: [f64; 51] = [
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915,
    0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345,
    0.587326, 0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852,
    0.178758, 0.216423, 0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388,
    0.745405, 0.780233, 0.864805, 0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746,
    0.785343, 0.778746, 0.784792, 0.824182, 0.831803, 0.824182,
];

/// Point `i` (17 ≤ i ≤ 67) of dlib's 68-point mean face.
pub fn dlib_mean_face_point(i: usize) -> Point {
    assert!(
        (17..=67).contains(&i),
        "dlib's mean face holds points 17..=67, not {i}"
    );
    [DLIB_MEAN_FACE_X[i - 17], DLIB_MEAN_FACE_Y[i - 17]]
}

/// Our 5 landmarks (CelebA order: left eye, right eye, nose, left mouth corner, right mouth
/// corner, "left" meaning image-left) on dlib's 68-point mean face, unit square of an unpadded chip:
/// eye centres = mean of points 36–41 (image-left eye) and 42–47 (image-right eye), nose tip = 30,
/// mouth corners = 48 (image-left) and 54 (image-right).
pub fn celeba5_template() -> Landmarks {
    let eye = |first: usize| {
        let mut s = [0.0, 0.0];
        for i in first..first + 6 {
            let p = dlib_mean_face_point(i);
            s[0] += p[0];
            s[1] += p[1];
        }
        [s[0] / 6.0, s[1] / 6.0]
    };
    [
        eye(36),
        eye(42),
        dlib_mean_face_point(30),
        dlib_mean_face_point(48),
        dlib_mean_face_point(54),
    ]
}

/// dlib's `drectangle`: inclusive corners, `width = right − left + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DRect {
    pub left: f64,
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
}

impl DRect {
    pub const EMPTY: Self = Self {
        left: 0.0,
        top: 0.0,
        right: -1.0,
        bottom: -1.0,
    };

    pub fn is_empty(&self) -> bool {
        self.top > self.bottom || self.left > self.right
    }

    pub fn width(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.right - self.left + 1.0
        }
    }

    pub fn height(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.bottom - self.top + 1.0
        }
    }

    pub fn area(&self) -> f64 {
        self.width() * self.height()
    }

    pub fn center(&self) -> Point {
        [
            (self.left + self.right) / 2.0,
            (self.top + self.bottom) / 2.0,
        ]
    }

    fn corners(&self) -> [Point; 4] {
        [
            [self.left, self.top],
            [self.right, self.top],
            [self.left, self.bottom],
            [self.right, self.bottom],
        ]
    }

    fn union_point(self, p: Point) -> Self {
        if self.is_empty() {
            return Self {
                left: p[0],
                top: p[1],
                right: p[0],
                bottom: p[1],
            };
        }
        Self {
            left: self.left.min(p[0]),
            top: self.top.min(p[1]),
            right: self.right.max(p[0]),
            bottom: self.bottom.max(p[1]),
        }
    }

    fn grow(self, n: f64) -> Self {
        Self {
            left: self.left - n,
            top: self.top - n,
            right: self.right + n,
            bottom: self.bottom + n,
        }
    }

    fn intersect(self, o: Self) -> Self {
        Self {
            left: self.left.max(o.left),
            top: self.top.max(o.top),
            right: self.right.min(o.right),
            bottom: self.bottom.min(o.bottom),
        }
    }

    fn translate(self, dx: f64, dy: f64) -> Self {
        Self {
            left: self.left + dx,
            top: self.top + dy,
            right: self.right + dx,
            bottom: self.bottom + dy,
        }
    }

    /// `pyramid_down<2>::rect_down`: both corners through `p/2 − (1.25, 0.75)`.
    fn pyramid_down(self) -> Self {
        Self {
            left: self.left / 2.0 - 1.25,
            top: self.top / 2.0 - 0.75,
            right: self.right / 2.0 - 1.25,
            bottom: self.bottom / 2.0 - 0.75,
        }
    }

    /// dlib's `operator rectangle()`: every coordinate through `std::lround`.
    fn round(self) -> IRect {
        IRect {
            left: self.left.round() as i64,
            top: self.top.round() as i64,
            right: self.right.round() as i64,
            bottom: self.bottom.round() as i64,
        }
    }
}

/// dlib's integer `rectangle` (inclusive corners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IRect {
    left: i64,
    top: i64,
    right: i64,
    bottom: i64,
}

impl IRect {
    fn is_empty(&self) -> bool {
        self.top > self.bottom || self.left > self.right
    }
    fn width(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.right - self.left + 1
        }
    }
    fn height(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.bottom - self.top + 1
        }
    }
}

/// dlib's `rotate_point(center, p, angle)`.
fn rotate_point(center: Point, p: Point, sin: f64, cos: f64) -> Point {
    let (x, y) = (p[0] - center[0], p[1] - center[1]);
    [cos * x - sin * y + center[0], sin * x + cos * y + center[1]]
}

/// dlib's `chip_details`: a `rows × cols` chip cut from the rectangle `rect` of the image rotated
/// by `angle` radians about its centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipDetails {
    pub rect: DRect,
    pub angle: f64,
    pub rows: u32,
    pub cols: u32,
}

impl ChipDetails {
    /// dlib's `chip_details(chip_points, img_points, chip_dims(rows, cols))`: the similarity that
    /// takes `chip_points` (chip pixels) to `img_points` (image pixels) in the least-squares sense.
    pub fn from_points(
        chip_points: &[Point],
        img_points: &[Point],
        rows: u32,
        cols: u32,
    ) -> Result<Self> {
        if rows < 2 || cols < 2 {
            return Err(AlignError::Invalid(format!(
                "a chip needs 2 or more rows and columns, got {rows}×{cols}"
            )));
        }
        let t = Similarity::estimate(chip_points, img_points)?;
        // p = M·(1, 0): M's first column.
        let (px, py) = (t.a, t.b);
        let angle = py.atan2(px);
        let scale = (px * px + py * py).sqrt();
        let c = t.apply([cols as f64 / 2.0, rows as f64 / 2.0]);
        // centered_drect(c, cols·scale, rows·scale)
        let (w, h) = (cols as f64 * scale - 1.0, rows as f64 * scale - 1.0);
        Ok(Self {
            rect: DRect {
                left: c[0] - w / 2.0,
                top: c[1] - h / 2.0,
                right: c[0] + w / 2.0,
                bottom: c[1] + h / 2.0,
            },
            angle,
            rows,
            cols,
        })
    }

    /// The map from chip pixels to image pixels at full resolution (the inverse of dlib's
    /// `get_mapping_to_chip`): chip corner (0, 0) ↦ the rotated `rect`'s top-left corner and
    /// (cols − 1, rows − 1) ↦ its bottom-right one.
    pub fn chip_to_image(&self) -> Similarity {
        let (sin, cos) = self.angle.sin_cos();
        let scale = (self.rect.width() - 1.0) / (self.cols as f64 - 1.0);
        let tl = rotate_point(
            self.rect.center(),
            [self.rect.left, self.rect.top],
            sin,
            cos,
        );
        Similarity {
            a: scale * cos,
            b: scale * sin,
            tx: tl[0],
            ty: tl[1],
        }
    }

    /// The size of the chip, `rows · cols` pixels.
    pub fn size(&self) -> u64 {
        self.rows as u64 * self.cols as u64
    }
}

fn check_padding(size: u32, padding: f64) -> Result<f64> {
    if !(padding >= 0.0 && padding.is_finite()) || size < 2 {
        return Err(AlignError::Invalid(format!(
            "face chip: padding must be ≥ 0 and size ≥ 2, got padding {padding}, size {size}"
        )));
    }
    // The Python binding takes `float padding`.
    Ok(padding as f32 as f64)
}

/// `get_face_chip_details` for any template in the unit square of an unpadded chip: template
/// point `p` goes to `(padding + p) / (2·padding + 1) · size` of the `size × size` chip.
pub fn template_chip_details(
    template: &[Point],
    img_points: &[Point],
    size: u32,
    padding: f64,
) -> Result<ChipDetails> {
    let padding = check_padding(size, padding)?;
    let chip: Vec<Point> = template
        .iter()
        .map(|p| {
            [
                (padding + p[0]) / (2.0 * padding + 1.0) * size as f64,
                (padding + p[1]) / (2.0 * padding + 1.0) * size as f64,
            ]
        })
        .collect();
    ChipDetails::from_points(&chip, img_points, size, size)
}

/// dlib's `get_face_chip_details(shape5, size, padding)` for points in dlib's 5-point convention.
pub fn dlib5_chip_details(
    points_dlib5: &[Point; 5],
    size: u32,
    padding: f64,
) -> Result<ChipDetails> {
    template_chip_details(&DLIB_5_POINT_TEMPLATE, points_dlib5, size, padding)
}

/// The chip geometry for our 5 landmarks (see [`celeba5_template`]).
pub fn face_chip_details(landmarks: &Landmarks, size: u32, padding: f64) -> Result<ChipDetails> {
    template_chip_details(&celeba5_template(), landmarks, size, padding)
}

/// `dlib.get_face_chip(img, shape5, size, padding)`.
pub fn dlib_chip_from_dlib5(
    img: &RgbImage,
    points_dlib5: &[Point; 5],
    size: u32,
    padding: f64,
) -> Result<RgbImage> {
    extract_image_chip(img, &dlib5_chip_details(points_dlib5, size, padding)?)
}

/// The face chip from our 5 landmarks with dlib's geometry (size [`FACE_CHIP_SIZE`] and padding
/// [`FACE_CHIP_PADDING`] for dlib's face-recognition ResNet).
pub fn face_chip(
    img: &RgbImage,
    landmarks: &Landmarks,
    size: u32,
    padding: f64,
) -> Result<RgbImage> {
    extract_image_chip(img, &face_chip_details(landmarks, size, padding)?)
}

/// A rectangular window `(x0, y0, w, h)` of an image (dlib's `sub_image`).
#[derive(Clone, Copy)]
struct View<'a> {
    img: &'a RgbImage,
    x0: u32,
    y0: u32,
    w: u32,
    h: u32,
}

impl<'a> View<'a> {
    fn whole(img: &'a RgbImage) -> Self {
        Self {
            img,
            x0: 0,
            y0: 0,
            w: img.width(),
            h: img.height(),
        }
    }

    #[inline]
    fn get(&self, x: u32, y: u32) -> [u8; 3] {
        self.img.get_pixel(self.x0 + x, self.y0 + y).0
    }
}

/// dlib's `pyramid_down<2>` on an RGB image: a 5×5 binomial filter (1 4 6 4 1)² / 256 in integer
/// arithmetic (truncating), keeping every other row and column; `(n − 3)/2` pixels a side, empty
/// when a side of the input has 8 pixels or fewer. Output pixel `(x, y)` is centred on input pixel
/// `(2x + 2, 2y + 2)`.
pub fn pyramid_down2(img: &RgbImage) -> RgbImage {
    pyramid_down_view(View::whole(img))
}

fn pyramid_down_view(src: View<'_>) -> RgbImage {
    let (nr, nc) = (src.h as usize, src.w as usize);
    if nr <= 8 || nc <= 8 {
        return RgbImage::new(0, 0);
    }
    let tc = (nc - 3) / 2;
    let mut temp = vec![[0u32; 3]; nr * tc];
    for r in 0..nr {
        for c in 0..tc {
            let oc = 2 * c;
            let mut s = [0u32; 3];
            for (k, w) in [1u32, 4, 6, 4, 1].into_iter().enumerate() {
                let p = src.get((oc + k) as u32, r as u32);
                for ch in 0..3 {
                    s[ch] += w * p[ch] as u32;
                }
            }
            temp[r * tc + c] = s;
        }
    }
    let dr_n = (nr - 3) / 2;
    let mut down = RgbImage::new(tc as u32, dr_n as u32);
    let mut dr = 0;
    let mut r = 2;
    while r + 2 < nr {
        for c in 0..tc {
            let mut s = [0u32; 3];
            for (k, w) in [1u32, 4, 6, 4, 1].into_iter().enumerate() {
                let t = temp[(r + k - 2) * tc + c];
                for ch in 0..3 {
                    s[ch] += w * t[ch];
                }
            }
            down.put_pixel(
                c as u32,
                dr as u32,
                Rgb([(s[0] / 256) as u8, (s[1] / 256) as u8, (s[2] / 256) as u8]),
            );
        }
        dr += 1;
        r += 2;
    }
    debug_assert_eq!(dr, dr_n);
    down
}

/// dlib's `interpolate_bilinear` for RGB: `None` when the 2×2 neighbourhood leaves the image.
#[inline]
fn bilinear(src: &View<'_>, x: f64, y: f64) -> Option<[u8; 3]> {
    let left = x.floor();
    let top = y.floor();
    if !(left >= 0.0 && top >= 0.0 && left + 1.0 < src.w as f64 && top + 1.0 < src.h as f64) {
        return None;
    }
    let lr = x - left;
    let tb = y - top;
    let (l, t) = (left as u32, top as u32);
    let (tl, tr, bl, br) = (
        src.get(l, t),
        src.get(l + 1, t),
        src.get(l, t + 1),
        src.get(l + 1, t + 1),
    );
    let mut out = [0u8; 3];
    for c in 0..3 {
        let v = (1.0 - tb) * ((1.0 - lr) * tl[c] as f64 + lr * tr[c] as f64)
            + tb * ((1.0 - lr) * bl[c] as f64 + lr * br[c] as f64);
        // vector_to_pixel: static_cast<unsigned char>(double), i.e. truncation.
        out[c] = v as u8;
    }
    Some(out)
}

/// dlib's `extract_image_chip(img, details, chip)` (bilinear, with its image pyramid) for RGB8.
pub fn extract_image_chip(img: &RgbImage, details: &ChipDetails) -> Result<RgbImage> {
    let d = details;
    if d.rows == 0 || d.cols == 0 || d.rect.is_empty() {
        return Err(AlignError::Invalid(format!(
            "extract_image_chip: empty chip {}×{} or rectangle {:?}",
            d.rows, d.cols, d.rect
        )));
    }
    if ![
        d.rect.left,
        d.rect.top,
        d.rect.right,
        d.rect.bottom,
        d.angle,
    ]
    .iter()
    .all(|v| v.is_finite())
    {
        return Err(AlignError::Invalid(format!(
            "extract_image_chip: non-finite chip geometry {d:?}"
        )));
    }
    // No rotation or scaling: a plain copy (impl::basic_extract_image_chip).
    if d.angle == 0.0 && d.rows as f64 == d.rect.height() && d.cols as f64 == d.rect.width() {
        return Ok(basic_extract(img, d.rect.round()));
    }
    if d.rows < 2 || d.cols < 2 {
        return Err(AlignError::Invalid(format!(
            "extract_image_chip: a scaled or rotated chip needs 2 or more rows and columns, got {}×{}",
            d.rows, d.cols
        )));
    }
    let size = d.size() as f64;

    // How deep the pyramid must be, and the region of the image it is built from.
    let mut depth = 0usize;
    let mut grow = 2.0;
    let mut r = d.rect.pyramid_down();
    while r.area() > size {
        r = r.pyramid_down();
        depth += 1;
        grow = grow * 2.0 + 2.0;
    }
    let (sin, cos) = d.angle.sin_cos();
    let cent = d.rect.center();
    let rot_rect = d.rect.corners().iter().fold(DRect::EMPTY, |acc, p| {
        acc.union_point(rotate_point(cent, *p, sin, cos))
    });
    let img_rect = DRect {
        left: 0.0,
        top: 0.0,
        right: img.width() as f64 - 1.0,
        bottom: img.height() as f64 - 1.0,
    };
    let bbox = rot_rect.grow(grow).intersect(img_rect).round();
    let bbox_view = if bbox.is_empty() {
        View {
            img,
            x0: 0,
            y0: 0,
            w: 0,
            h: 0,
        }
    } else {
        View {
            img,
            x0: bbox.left as u32,
            y0: bbox.top as u32,
            w: bbox.width() as u32,
            h: bbox.height() as u32,
        }
    };
    let (bl, bt) = if bbox.is_empty() {
        (0.0, 0.0)
    } else {
        (bbox.left as f64, bbox.top as f64)
    };
    let mut levels: Vec<RgbImage> = Vec::with_capacity(depth);
    if depth > 0 {
        levels.push(pyramid_down_view(bbox_view));
        for i in 1..depth {
            let next = pyramid_down2(&levels[i - 1]);
            levels.push(next);
        }
    }

    // The level to sample and the chip → level map.
    let mut level: isize = -1;
    let mut rect = d.rect.translate(-bl, -bt);
    while rect.pyramid_down().area() > size && ((level + 1) as usize) < levels.len() {
        level += 1;
        rect = rect.pyramid_down();
    }
    let c = rect.center();
    let to0 = rotate_point(c, [rect.left, rect.top], sin, cos);
    let to1 = rotate_point(c, [rect.right, rect.top], sin, cos);
    let to2 = rotate_point(c, [rect.left, rect.bottom], sin, cos);
    // find_affine_transform((0,0), (cols−1,0), (0,rows−1) → to0, to1, to2), solved exactly.
    let (w1, h1) = (d.cols as f64 - 1.0, d.rows as f64 - 1.0);
    let m = [
        [(to1[0] - to0[0]) / w1, (to2[0] - to0[0]) / h1],
        [(to1[1] - to0[1]) / w1, (to2[1] - to0[1]) / h1],
    ];
    let src = if level < 0 {
        bbox_view
    } else {
        View::whole(&levels[level as usize])
    };

    let mut chip = RgbImage::new(d.cols, d.rows);
    for row in 0..d.rows {
        for col in 0..d.cols {
            let (x, y) = (col as f64, row as f64);
            let px = m[0][0] * x + m[0][1] * y + to0[0];
            let py = m[1][0] * x + m[1][1] * y + to0[1];
            if let Some(p) = bilinear(&src, px, py) {
                chip.put_pixel(col, row, Rgb(p));
            }
        }
    }
    Ok(chip)
}

/// dlib's `impl::basic_extract_image_chip`: the pixels of `location`, black outside the image.
fn basic_extract(img: &RgbImage, location: IRect) -> RgbImage {
    let (w, h) = (
        location.width().max(0) as u32,
        location.height().max(0) as u32,
    );
    let mut chip = RgbImage::new(w, h);
    for r in 0..h as i64 {
        for c in 0..w as i64 {
            let (x, y) = (location.left + c, location.top + r);
            if x >= 0 && y >= 0 && x < img.width() as i64 && y < img.height() as i64 {
                chip.put_pixel(c as u32, r as u32, *img.get_pixel(x as u32, y as u32));
            }
        }
    }
    chip
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Point, b: Point, tol: f64) -> bool {
        (a[0] - b[0]).abs() <= tol && (a[1] - b[1]).abs() <= tol
    }

    fn padded(template: &[Point], size: u32, padding: f64) -> Vec<Point> {
        template
            .iter()
            .map(|p| {
                [
                    (padding + p[0]) / (2.0 * padding + 1.0) * size as f64,
                    (padding + p[1]) / (2.0 * padding + 1.0) * size as f64,
                ]
            })
            .collect()
    }

    fn pattern(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 7 + y * 3) as u8,
                ((x * 13) ^ (y * 5)) as u8,
                ((x + 2 * y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn celeba5_template_is_dlibs_mean_face() {
        let t = celeba5_template();
        // Eye centres: the means of the 6 points of each eye; image-left eye first.
        let left_x: f64 = DLIB_MEAN_FACE_X[19..25].iter().sum::<f64>() / 6.0;
        let right_y: f64 = DLIB_MEAN_FACE_Y[25..31].iter().sum::<f64>() / 6.0;
        assert!((t[0][0] - left_x).abs() < 1e-15 && (t[1][1] - right_y).abs() < 1e-15);
        assert!(
            t[0][0] < t[1][0] && t[3][0] < t[4][0],
            "image-left points first: {t:?}"
        );
        // The mean face is left/right symmetric about x = 0.490127 (nose tip, 30).
        let axis = t[2][0];
        assert_eq!(axis, 0.490127);
        assert!((t[0][0] + t[1][0] - 2.0 * axis).abs() < 1e-6);
        assert!((t[3][0] + t[4][0] - 2.0 * axis).abs() < 1e-6);
        assert!((t[0][1] - t[1][1]).abs() < 1e-6 && t[3][1] == t[4][1]);
        // Eyes above the nose tip above the mouth.
        assert!(t[0][1] < t[2][1] && t[2][1] < t[3][1]);
        assert_eq!(t[2], [0.490127, 0.515625]);
        assert_eq!(t[3], [0.254149, 0.780233]);
        assert_eq!(t[4], [0.726104, 0.780233]);
    }

    #[test]
    fn template_points_land_on_the_padded_template() {
        // Image points: the padded chip template under a known similarity.
        let t = Similarity::new(1.7, 0.3, 40.0, -12.0);
        for (template, name) in [
            (DLIB_5_POINT_TEMPLATE.to_vec(), "dlib5"),
            (celeba5_template().to_vec(), "celeba5"),
        ] {
            let chip_pts = padded(&template, 150, 0.25);
            let img_pts: Vec<Point> = chip_pts.iter().map(|p| t.apply(*p)).collect();
            let d = template_chip_details(&template, &img_pts, 150, 0.25).unwrap();
            assert_eq!((d.rows, d.cols), (150, 150));
            assert!((d.angle - 0.3).abs() < 1e-12, "{name}: {d:?}");
            assert!((d.rect.width() - 150.0 * 1.7).abs() < 1e-9, "{name}: {d:?}");
            // dlib centres the rectangle on the image of (cols/2, rows/2), while the chip's pixel
            // grid is centred on ((cols−1)/2, (rows−1)/2): half a chip pixel of shift, and the
            // corner pixels span the rectangle (scale (cols·s − 1)/(cols − 1), not s).
            assert!(close(d.rect.center(), t.apply([75.0, 75.0]), 1e-9));
            let m = d.chip_to_image();
            assert!(close(m.apply([74.5, 74.5]), t.apply([75.0, 75.0]), 1e-9));
            assert!((m.scale() - (150.0 * 1.7 - 1.0) / 149.0).abs() < 1e-12);
            assert!((m.rotation_degrees() - 0.3f64.to_degrees()).abs() < 1e-9);
            for (c, i) in chip_pts.iter().zip(&img_pts) {
                let q = m.apply(*c);
                assert!(close(q, *i, 1.5), "{name}: {q:?} vs {i:?}");
            }
        }
        // With padding 0 the dlib template spans the unit square times size.
        let d = template_chip_details(
            &DLIB_5_POINT_TEMPLATE,
            &padded(&DLIB_5_POINT_TEMPLATE, 100, 0.0),
            100,
            0.0,
        )
        .unwrap();
        assert!(d.angle.abs() < 1e-12 && close(d.rect.center(), [50.0, 50.0], 1e-9));
    }

    #[test]
    fn identity_chip_is_a_plain_copy() {
        let img = pattern(150, 150);
        let pts: Vec<Point> = padded(&DLIB_5_POINT_TEMPLATE, 150, 0.25);
        let pts: [Point; 5] = pts.try_into().unwrap();
        let d = dlib5_chip_details(&pts, 150, 0.25).unwrap();
        // Exactly the identity similarity: rect (0.5, 0.5)–(149.5, 149.5), angle 0, the plain-copy
        // path, whose integer rectangle is lround'ed to (1, 1)–(150, 150): dlib's identity chip
        // is the image shifted by one pixel, the last row and column black.
        assert_eq!(d.angle, 0.0);
        assert_eq!([d.rect.left, d.rect.top, d.rect.right], [0.5, 0.5, 149.5]);
        let chip = dlib_chip_from_dlib5(&img, &pts, 150, 0.25).unwrap();
        assert_eq!(chip.dimensions(), (150, 150));
        for (x, y, p) in chip.enumerate_pixels() {
            if x < 149 && y < 149 {
                assert_eq!(p, img.get_pixel(x + 1, y + 1));
            } else {
                assert_eq!(p.0, [0, 0, 0]);
            }
        }
        // The exact identity rectangle takes dlib's copy path.
        let exact = ChipDetails {
            rect: DRect {
                left: 10.0,
                top: 20.0,
                right: 59.0,
                bottom: 59.0,
            },
            angle: 0.0,
            rows: 40,
            cols: 50,
        };
        let chip = extract_image_chip(&img, &exact).unwrap();
        assert_eq!(chip.dimensions(), (50, 40));
        assert_eq!(chip.get_pixel(0, 0), img.get_pixel(10, 20));
        assert_eq!(chip.get_pixel(49, 39), img.get_pixel(59, 59));
    }

    #[test]
    fn rotated_chip_samples_bilinearly_and_is_black_outside() {
        // A smooth image: bilinear interpolation of a linear ramp is the ramp (up to truncation).
        let img = RgbImage::from_fn(300, 260, |x, y| {
            Rgb([(x / 2) as u8, (y / 2) as u8, ((x + y) / 4) as u8])
        });
        let t = Similarity::new(1.2, -0.4, 150.0, 40.0);
        let chip_pts = padded(&DLIB_5_POINT_TEMPLATE, 150, 0.25);
        let img_pts: Vec<Point> = chip_pts.iter().map(|p| t.apply(*p)).collect();
        let img_pts: [Point; 5] = img_pts.try_into().unwrap();
        let d = dlib5_chip_details(&img_pts, 150, 0.25).unwrap();
        let chip = dlib_chip_from_dlib5(&img, &img_pts, 150, 0.25).unwrap();
        let m = d.chip_to_image();
        let (mut inside, mut black) = (0, 0);
        for (x, y, p) in chip.enumerate_pixels() {
            let q = m.apply([x as f64, y as f64]);
            if q[0] >= 0.0 && q[1] >= 0.0 && q[0] <= 298.0 && q[1] <= 258.0 {
                inside += 1;
                // The ramp, evaluated at the mapped point, with the floors of the integer ramp.
                let want = [q[0] / 2.0, q[1] / 2.0, (q[0] + q[1]) / 4.0];
                for c in 0..3 {
                    assert!(
                        (p.0[c] as f64 - want[c]).abs() <= 2.0,
                        "({x},{y}) -> {q:?}: {:?} vs {want:?}",
                        p.0
                    );
                }
            } else if q[0] < -1.0 || q[1] < -1.0 || q[0] > 300.0 || q[1] > 260.0 {
                black += 1;
                assert_eq!(p.0, [0, 0, 0], "({x},{y}) -> {q:?} is outside the image");
            }
        }
        assert!(
            inside > 10_000 && black > 100,
            "inside {inside}, black {black}"
        );
    }

    #[test]
    fn pyramid_levels_for_small_chips() {
        // pyramid_down2: sizes and the filter on a constant and on a ramp.
        let flat = RgbImage::from_pixel(41, 20, Rgb([200, 17, 0]));
        let d = pyramid_down2(&flat);
        assert_eq!(d.dimensions(), (19, 8));
        assert!(d.pixels().all(|p| p.0 == [200, 17, 0]));
        assert_eq!(pyramid_down2(&RgbImage::new(8, 100)).dimensions(), (0, 0));
        let ramp = RgbImage::from_fn(40, 40, |x, _| Rgb([(4 * x) as u8, 0, 0]));
        let d = pyramid_down2(&ramp);
        // pixel x is centred on input column 2x + 2: value 4·(2x + 2)
        for x in 0..d.width() {
            assert_eq!(d.get_pixel(x, 3).0[0] as u32, 4 * (2 * x + 2));
        }
        // A face 8× larger than the chip: a 3-level pyramid (rect_down thrice: 1200 → 600 → 300
        // → 151 px, still more than 150² pixels); a flat image stays flat.
        let big = RgbImage::from_pixel(1600, 1600, Rgb([90, 140, 230]));
        let t = Similarity::new(8.0, 0.1, 200.0, 150.0);
        let chip_pts = padded(&DLIB_5_POINT_TEMPLATE, 150, 0.25);
        let img_pts: Vec<Point> = chip_pts.iter().map(|p| t.apply(*p)).collect();
        let img_pts: [Point; 5] = img_pts.try_into().unwrap();
        let det = dlib5_chip_details(&img_pts, 150, 0.25).unwrap();
        let mut r = det.rect.pyramid_down();
        let mut depth = 0;
        while r.area() > det.size() as f64 {
            r = r.pyramid_down();
            depth += 1;
        }
        assert_eq!(depth, 3, "{det:?}");
        let chip = dlib_chip_from_dlib5(&big, &img_pts, 150, 0.25).unwrap();
        for p in chip.pixels() {
            for (c, want) in [90u8, 140, 230].into_iter().enumerate() {
                assert!(p.0[c] == want || p.0[c] + 1 == want, "{:?}", p.0);
            }
        }
    }

    #[test]
    fn face_chip_of_template_landmarks_and_errors() {
        // Landmarks exactly on the (padded, scaled) celeba5 template: dlib's identity chip.
        let img = pattern(150, 150);
        let lm: Landmarks = padded(&celeba5_template(), 150, 0.25).try_into().unwrap();
        let chip = face_chip(&img, &lm, FACE_CHIP_SIZE, FACE_CHIP_PADDING).unwrap();
        assert_eq!(chip.get_pixel(10, 20), img.get_pixel(11, 21));
        // Scaled by 1.8: bilinear samples where chip_to_image maps each chip pixel (at 2× the
        // pyramid would start: the rectangle's rect_down is 150.5² > 150² pixels).
        let big = pattern(300, 300);
        let lm2: Landmarks = lm.map(|p| [1.8 * p[0], 1.8 * p[1]]);
        let d = face_chip_details(&lm2, 150, 0.25).unwrap();
        let m = d.chip_to_image();
        let chip = face_chip(&big, &lm2, 150, 0.25).unwrap();
        for (x, y) in [(0u32, 0u32), (17, 90), (148, 148)] {
            let q = m.apply([x as f64, y as f64]);
            let (qx, qy) = (q[0].floor() as u32, q[1].floor() as u32);
            let (fx, fy) = (q[0] - qx as f64, q[1] - qy as f64);
            for c in 0..3 {
                let v = |xx: u32, yy: u32| big.get_pixel(xx, yy).0[c] as f64;
                let want = (1.0 - fy) * ((1.0 - fx) * v(qx, qy) + fx * v(qx + 1, qy))
                    + fy * ((1.0 - fx) * v(qx, qy + 1) + fx * v(qx + 1, qy + 1));
                let got = chip.get_pixel(x, y).0[c] as f64;
                assert!(
                    (got - want.trunc()).abs() <= 1.0,
                    "({x},{y}) ch {c}: {got} vs {want}"
                );
            }
        }
        assert!(face_chip(&img, &[[1.0, 1.0]; 5], 150, 0.25).is_err());
        assert!(face_chip(&img, &lm, 1, 0.25).is_err());
        assert!(face_chip(&img, &lm, 150, -0.1).is_err());
        // A face entirely outside the photo: an all-black chip.
        let far: Landmarks = lm.map(|p| [p[0] + 5000.0, p[1]]);
        let chip = face_chip(&img, &far, 150, 0.25).unwrap();
        assert!(chip.pixels().all(|p| p.0 == [0, 0, 0]));
    }
}
