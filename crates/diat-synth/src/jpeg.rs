//! A fast baseline JPEG encoder for interleaved 8-bit RGB, made for the synthetic faces.
//!
//! Baseline sequential JFIF, YCbCr with 4:2:0 chroma subsampling (CelebA's layout), the Annex K
//! quantisation tables scaled by quality exactly like libjpeg (`jpeg_quality_scaling` with
//! `force_baseline`), the Annex K Huffman tables (no optimisation pass), no restart markers.
//!
//! Per MCU row (16 pixel rows) the pixels are converted to level-shifted `f32` Y, Cb, Cr (chroma
//! from the mean of each 2×2 RGB quad, i.e. exactly the mean of the full-resolution chroma);
//! each 8×8 block goes through the float AAN DCT (libjpeg's `jfdctflt`), is quantised with a
//! reciprocal multiply rounded to nearest-even, reordered to zigzag order with a 64-bit mask of
//! the non-zero coefficients, and Huffman coded by walking the mask's set bits. The colour
//! conversion and the DCT/quantisation run 8 lanes wide with AVX2 where the CPU has it (chosen at
//! run time); the portable path performs the same IEEE operations in the same order (no FMA), so
//! both paths give identical bytes (tested).

use crate::{Error, Result};
use std::sync::OnceLock;

/// Natural (row-major) index of each zigzag position.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Annex K.1 luminance quantisation table (natural order).
const LUMA_Q: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// Annex K.2 chrominance quantisation table (natural order).
const CHROMA_Q: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

// Annex K.3 Huffman tables: code counts per length 1..=16, then the symbols.
const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_LUMA_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_CHROMA_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_LUMA_VALS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_CHROMA_VALS: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

// JFIF colour conversion (level-shifted: Y - 128, Cb - 128, Cr - 128). The chroma weights carry
// the 1/4 of the 2×2 mean (an exact power-of-two scaling).
const YR: f32 = 0.299;
const YG: f32 = 0.587;
const YB: f32 = 0.114;
const CBR: f32 = -0.168_735_89 * 0.25;
const CBG: f32 = -0.331_264_1 * 0.25;
const CBB: f32 = 0.5 * 0.25;
const CRR: f32 = 0.5 * 0.25;
const CRG: f32 = -0.418_687_6 * 0.25;
const CRB: f32 = -0.081_312_4 * 0.25;

/// Largest quantised magnitude kept (baseline AC coefficients have at most 10 magnitude bits).
const COEF_MAX: f32 = 1023.0;

/// libjpeg's quality scaling of a base table, limited to baseline (1..=255).
fn quant_table(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let q = quality.clamp(1, 100) as u32;
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    std::array::from_fn(|i| ((base[i] as u32 * scale + 50) / 100).clamp(1, 255) as u16)
}

/// Reciprocal divisors in the DCT's output layout (transposed: index `u * 8 + v` holds the
/// coefficient of horizontal frequency `u` and vertical frequency `v`), with the AAN scale factors
/// and the DCT's factor 8 folded in (as libjpeg's float quantiser).
fn divisors(q: &[u16; 64]) -> [f32; 64] {
    const AAN: [f64; 8] = [
        1.0,
        1.387_039_845,
        1.306_562_965,
        1.175_875_602,
        1.0,
        0.785_694_958,
        0.541_196_100,
        0.275_899_379,
    ];
    std::array::from_fn(|i| {
        let (u, v) = (i / 8, i % 8);
        (1.0 / (q[v * 8 + u] as f64 * AAN[u] * AAN[v] * 8.0)) as f32
    })
}

/// For each zigzag position, the index of that coefficient in the DCT's (transposed) output.
const ZZ_FROM_DCT: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut k = 0;
    while k < 64 {
        let n = ZIGZAG[k];
        t[k] = (n % 8) * 8 + n / 8;
        k += 1;
    }
    t
};

/// A Huffman table: for each symbol `s`, `code << 8 | length` (code right-aligned, at most 16
/// bits).
struct Huff([u32; 256]);

impl Huff {
    fn new(bits: &[u8; 16], vals: &[u8]) -> Self {
        let mut h = Huff([0; 256]);
        let mut code = 0u32;
        let mut k = 0;
        for (l, &n) in bits.iter().enumerate() {
            for _ in 0..n {
                h.0[vals[k] as usize] = (code << 8) | (l as u32 + 1);
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        h
    }

    /// The code of symbol `s` followed by the `nb` extra bits `extra`, and its total length.
    #[inline(always)]
    fn with_extra(&self, s: usize, nb: u32, extra: u32) -> (u32, u32) {
        let e = self.0[s];
        (((e >> 8) << nb) | extra, (e & 0xFF) + nb)
    }
}

struct HuffTables {
    dc: [Huff; 2],
    ac: [Huff; 2],
}

fn huff_tables() -> &'static HuffTables {
    static T: OnceLock<HuffTables> = OnceLock::new();
    T.get_or_init(|| HuffTables {
        dc: [
            Huff::new(&DC_LUMA_BITS, &DC_LUMA_VALS),
            Huff::new(&DC_CHROMA_BITS, &DC_CHROMA_VALS),
        ],
        ac: [
            Huff::new(&AC_LUMA_BITS, &AC_LUMA_VALS),
            Huff::new(&AC_CHROMA_BITS, &AC_CHROMA_VALS),
        ],
    })
}

/// Bytes one block can take in the entropy-coded segment, at most: a DC code with its bits
/// (≤ 22 bits), 63 AC codes with their bits (≤ 26 each), 3 ZRL codes (≤ 11 each) and an EOB,
/// doubled for byte stuffing, plus the bytes pending in the accumulator.
const BLOCK_MAX_BYTES: usize = 512;

/// State of the entropy-coded segment between blocks: a 64-bit accumulator (`n < 32` bits
/// pending, right-aligned) and the write position in the output buffer.
struct BitState {
    acc: u64,
    n: u32,
    pos: usize,
}

/// A bit writer over a zero-filled buffer with room for the block being coded (see
/// [`BLOCK_MAX_BYTES`]); flushes 32 bits at a time and stuffs a 0x00 after every 0xFF byte. Built
/// per block from [`BitState`] so that its fields live in registers.
struct Bits<'a> {
    out: &'a mut [u8],
    acc: u64,
    n: u32,
    pos: usize,
}

impl<'a> Bits<'a> {
    #[inline(always)]
    fn new(out: &'a mut [u8], st: &BitState) -> Self {
        Bits {
            out,
            acc: st.acc,
            n: st.n,
            pos: st.pos,
        }
    }

    #[inline(always)]
    fn save(&self, st: &mut BitState) {
        st.acc = self.acc;
        st.n = self.n;
        st.pos = self.pos;
    }

    /// Appends the low `len` bits of `bits` (`len <= 27`, higher bits zero).
    #[inline(always)]
    fn put(&mut self, (bits, len): (u32, u32)) {
        self.acc = (self.acc << len) | bits as u64;
        self.n += len;
        if self.n >= 32 {
            self.n -= 32;
            self.word((self.acc >> self.n) as u32);
        }
    }

    #[inline(always)]
    fn word(&mut self, w: u32) {
        // A byte of `w` is 0xFF iff that byte of `!w` is zero (the classic has-zero-byte test).
        let v = !w;
        if v.wrapping_sub(0x0101_0101) & !v & 0x8080_8080 == 0 {
            self.out[self.pos..self.pos + 4].copy_from_slice(&w.to_be_bytes());
            self.pos += 4;
        } else {
            for b in w.to_be_bytes() {
                self.byte(b);
            }
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.out[self.pos] = b;
        self.pos += 1;
        if b == 0xFF {
            self.out[self.pos] = 0;
            self.pos += 1;
        }
    }

    /// Pads the last byte with one bits and writes what is left.
    fn finish(mut self) -> usize {
        let pad = (8 - self.n % 8) % 8;
        self.put(((1 << pad) - 1, pad));
        for i in (0..self.n / 8).rev() {
            self.byte((self.acc >> (8 * i)) as u8);
        }
        self.pos
    }
}

/// The magnitude category of `v` and its extra bits (one's complement for negative values).
#[inline(always)]
fn magnitude(v: i32) -> (u32, u32) {
    let nb = 32 - v.unsigned_abs().leading_zeros();
    let extra = (v + (v >> 31)) as u32 & ((1u32 << nb) - 1);
    (nb, extra)
}

/// Makes room for one more block after `pos` in the zero-filled output buffer.
#[inline(always)]
fn reserve_block(out: &mut Vec<u8>, pos: usize) {
    if out.len() < pos + BLOCK_MAX_BYTES {
        let len = (2 * out.len()).max(pos + 8 * BLOCK_MAX_BYTES);
        out.resize(len, 0);
    }
}

/// Huffman codes one block (`zz` in zigzag order, `nz` its non-zero mask).
#[inline(always)]
fn encode_block(
    out: &mut Vec<u8>,
    st: &mut BitState,
    zz: &[i16; 64],
    nz: u64,
    last_dc: &mut i32,
    dc: &Huff,
    ac: &Huff,
) {
    reserve_block(out, st.pos);
    let mut bw = Bits::new(out, st);
    let d = zz[0] as i32 - *last_dc;
    *last_dc = zz[0] as i32;
    let (nb, extra) = magnitude(d);
    bw.put(dc.with_extra(nb as usize, nb, extra));
    let mut m = nz & !1;
    let mut next = 1u32;
    while m != 0 {
        let k = m.trailing_zeros();
        let mut run = k - next;
        while run >= 16 {
            bw.put(ac.with_extra(0xF0, 0, 0));
            run -= 16;
        }
        let (nb, extra) = magnitude(zz[k as usize & 63] as i32);
        bw.put(ac.with_extra(((run << 4) | nb) as usize, nb, extra));
        next = k + 1;
        m &= m - 1;
    }
    if next != 64 {
        bw.put(ac.with_extra(0, 0, 0));
    }
    bw.save(st);
}

fn marker(out: &mut Vec<u8>, m: u8, payload: &[u8]) {
    out.extend_from_slice(&[0xFF, m]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
}

fn write_headers(out: &mut Vec<u8>, w: u16, h: u16, ql: &[u16; 64], qc: &[u16; 64]) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    // JFIF 1.01, no units, 1:1 density, no thumbnail (libjpeg's defaults).
    marker(out, 0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    let mut dqt = Vec::with_capacity(130);
    for (id, q) in [(0u8, ql), (1, qc)] {
        dqt.push(id);
        dqt.extend(ZIGZAG.iter().map(|&n| q[n as usize] as u8));
    }
    marker(out, 0xDB, &dqt);
    let [h0, h1] = h.to_be_bytes();
    let [w0, w1] = w.to_be_bytes();
    marker(
        out,
        0xC0,
        &[8, h0, h1, w0, w1, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1],
    );
    let mut dht = Vec::with_capacity(420);
    for (class, bits, vals) in [
        (0x00u8, &DC_LUMA_BITS, &DC_LUMA_VALS[..]),
        (0x10, &AC_LUMA_BITS, &AC_LUMA_VALS[..]),
        (0x01, &DC_CHROMA_BITS, &DC_CHROMA_VALS[..]),
        (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALS[..]),
    ] {
        dht.push(class);
        dht.extend_from_slice(bits);
        dht.extend_from_slice(vals);
    }
    marker(out, 0xC4, &dht);
    marker(out, 0xDA, &[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

/// Whether [`encode_rgb`] uses the AVX2 kernels on this CPU (with BMI1/2 and LZCNT for the
/// Huffman coder, which every AVX2 CPU has).
pub fn uses_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
            && std::is_x86_feature_detected!("lzcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Encodes interleaved RGB (`data.len() == w * h * 3`) as a baseline 4:2:0 JPEG into `out`
/// (cleared first).
pub fn encode_rgb(data: &[u8], w: usize, h: usize, quality: u8, out: &mut Vec<u8>) -> Result<()> {
    encode_with(uses_avx2(), data, w, h, quality, out)
}

/// [`encode_rgb`] with the code path chosen by the caller (`avx2` is ignored where the CPU lacks
/// AVX2).
pub fn encode_with(
    avx2: bool,
    data: &[u8],
    w: usize,
    h: usize,
    quality: u8,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    if w == 0 || h == 0 || w > u16::MAX as usize || h > u16::MAX as usize {
        return Err(Error::Jpeg(format!("cannot encode a {w}×{h} image")));
    }
    if data.len() != w * h * 3 {
        return Err(Error::Jpeg(format!(
            "{} bytes for a {w}×{h} RGB image",
            data.len()
        )));
    }
    #[cfg(target_arch = "x86_64")]
    {
        if avx2 && uses_avx2() {
            // SAFETY: the CPU supports AVX2, BMI1, BMI2 and LZCNT (checked just above), the
            // features this enables.
            #[allow(unsafe_code)]
            unsafe {
                encode_avx2(data, w, h, quality, out)
            };
            return Ok(());
        }
    }
    let _ = avx2;
    encode_generic::<false>(data, w, h, quality, out);
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,lzcnt")]
fn encode_avx2(data: &[u8], w: usize, h: usize, quality: u8, out: &mut Vec<u8>) {
    encode_generic::<true>(data, w, h, quality, out);
}

/// Converts 16 pixels of two rows (48 bytes each) to Y (both rows) and the 8 chroma samples.
#[inline(always)]
fn convert16<const AVX2: bool>(
    r0: &[u8; 48],
    r1: &[u8; 48],
    y0: &mut [f32; 16],
    y1: &mut [f32; 16],
    cb: &mut [f32; 8],
    cr: &mut [f32; 8],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if AVX2 {
            // SAFETY: `AVX2` is true only inside `encode_avx2`, entered after detecting AVX2.
            #[allow(unsafe_code)]
            unsafe {
                x86::convert16(r0, r1, y0, y1, cb, cr)
            };
            return;
        }
    }
    portable::convert16(r0, r1, y0, y1, cb, cr);
}

/// DCT, quantisation and zigzag of the 8×8 block at `src` (row stride `stride`); returns the mask
/// of non-zero coefficients (bit `k` for zigzag position `k`).
#[inline(always)]
fn block<const AVX2: bool>(src: &[f32], stride: usize, div: &[f32; 64], zz: &mut [i16; 64]) -> u64 {
    assert!(src.len() >= 7 * stride + 8);
    #[cfg(target_arch = "x86_64")]
    {
        if AVX2 {
            // SAFETY: as in `convert16`; `src` holds 8 rows of 8 (asserted above).
            #[allow(unsafe_code)]
            return unsafe { x86::block(src, stride, div, zz) };
        }
    }
    portable::block(src, stride, div, zz)
}

#[inline(always)]
fn encode_generic<const AVX2: bool>(
    data: &[u8],
    w: usize,
    h: usize,
    quality: u8,
    out: &mut Vec<u8>,
) {
    let ql = quant_table(&LUMA_Q, quality);
    let qc = quant_table(&CHROMA_Q, quality);
    let (dl, dc) = (divisors(&ql), divisors(&qc));
    let ht = huff_tables();
    out.reserve(w * h / 2 + 1024);
    write_headers(out, w as u16, h as u16, &ql, &qc);

    let mcus_x = w.div_ceil(16);
    let mcus_y = h.div_ceil(16);
    let pw = mcus_x * 16;
    let cw = pw / 2;
    let mut ybuf = vec![0f32; 16 * pw];
    let mut cbbuf = vec![0f32; 8 * cw];
    let mut crbuf = vec![0f32; 8 * cw];
    let full = w / 16;
    let mut zz = [0i16; 64];
    let mut last = [0i32; 3];
    let mut st = BitState {
        acc: 0,
        n: 0,
        pos: out.len(),
    };
    let row_bytes = w * 3;
    for my in 0..mcus_y {
        // Colour conversion of the MCU row (rows past the bottom repeat the last one).
        for p in 0..8 {
            let ya = (my * 16 + 2 * p).min(h - 1);
            let yb = (my * 16 + 2 * p + 1).min(h - 1);
            let ra = &data[ya * row_bytes..][..row_bytes];
            let rb = &data[yb * row_bytes..][..row_bytes];
            let (ylo, yhi) = ybuf[2 * p * pw..(2 * p + 2) * pw].split_at_mut(pw);
            let cbr = &mut cbbuf[p * cw..(p + 1) * cw];
            let crr = &mut crbuf[p * cw..(p + 1) * cw];
            for g in 0..mcus_x {
                let (a, b);
                let (mut ta, mut tb) = ([0u8; 48], [0u8; 48]);
                if g < full {
                    a = ra[g * 48..][..48].try_into().expect("48 bytes");
                    b = rb[g * 48..][..48].try_into().expect("48 bytes");
                } else {
                    // Pad by repeating the last column.
                    for i in 0..16 {
                        let x = (g * 16 + i).min(w - 1) * 3;
                        ta[3 * i..3 * i + 3].copy_from_slice(&ra[x..x + 3]);
                        tb[3 * i..3 * i + 3].copy_from_slice(&rb[x..x + 3]);
                    }
                    a = &ta;
                    b = &tb;
                }
                convert16::<AVX2>(
                    a,
                    b,
                    (&mut ylo[g * 16..g * 16 + 16]).try_into().expect("16"),
                    (&mut yhi[g * 16..g * 16 + 16]).try_into().expect("16"),
                    (&mut cbr[g * 8..g * 8 + 8]).try_into().expect("8"),
                    (&mut crr[g * 8..g * 8 + 8]).try_into().expect("8"),
                );
            }
        }
        for mx in 0..mcus_x {
            for (by, bx) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
                let src = &ybuf[by * pw + mx * 16 + bx..];
                let nz = block::<AVX2>(src, pw, &dl, &mut zz);
                encode_block(out, &mut st, &zz, nz, &mut last[0], &ht.dc[0], &ht.ac[0]);
            }
            let nz = block::<AVX2>(&cbbuf[mx * 8..], cw, &dc, &mut zz);
            encode_block(out, &mut st, &zz, nz, &mut last[1], &ht.dc[1], &ht.ac[1]);
            let nz = block::<AVX2>(&crbuf[mx * 8..], cw, &dc, &mut zz);
            encode_block(out, &mut st, &zz, nz, &mut last[2], &ht.dc[1], &ht.ac[1]);
        }
    }
    reserve_block(out, st.pos);
    let end = Bits::new(out, &st).finish();
    out.truncate(end);
    out.extend_from_slice(&[0xFF, 0xD9]);
}

/// Portable kernels: the same IEEE operations, in the same order, as the AVX2 ones.
mod portable {
    use super::*;
    use crate::raster::{fmax, fmin};

    #[inline(always)]
    pub(super) fn convert16(
        r0: &[u8; 48],
        r1: &[u8; 48],
        y0: &mut [f32; 16],
        y1: &mut [f32; 16],
        cb: &mut [f32; 8],
        cr: &mut [f32; 8],
    ) {
        let ch = |row: &[u8; 48], c: usize| -> [f32; 16] {
            std::array::from_fn(|i| row[3 * i + c] as f32)
        };
        let (ra, ga, ba) = (ch(r0, 0), ch(r0, 1), ch(r0, 2));
        let (rb, gb, bb) = (ch(r1, 0), ch(r1, 1), ch(r1, 2));
        for i in 0..16 {
            y0[i] = ((ra[i] * YR + ga[i] * YG) + ba[i] * YB) - 128.0;
            y1[i] = ((rb[i] * YR + gb[i] * YG) + bb[i] * YB) - 128.0;
        }
        let sum = |a: &[f32; 16], b: &[f32; 16], j: usize| {
            (a[2 * j] + b[2 * j]) + (a[2 * j + 1] + b[2 * j + 1])
        };
        for j in 0..8 {
            let (r, g, b) = (sum(&ra, &rb, j), sum(&ga, &gb, j), sum(&ba, &bb, j));
            cb[j] = (r * CBR + g * CBG) + b * CBB;
            cr[j] = (r * CRR + g * CRG) + b * CRB;
        }
    }

    /// libjpeg's float AAN forward DCT along one axis, lane-wise over 8 lanes.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // (lane `l` of every row)
    fn dct8(v: &mut [[f32; 8]; 8]) {
        for l in 0..8 {
            let d: [f32; 8] = std::array::from_fn(|k| v[k][l]);
            let tmp0 = d[0] + d[7];
            let tmp7 = d[0] - d[7];
            let tmp1 = d[1] + d[6];
            let tmp6 = d[1] - d[6];
            let tmp2 = d[2] + d[5];
            let tmp5 = d[2] - d[5];
            let tmp3 = d[3] + d[4];
            let tmp4 = d[3] - d[4];
            let tmp10 = tmp0 + tmp3;
            let tmp13 = tmp0 - tmp3;
            let tmp11 = tmp1 + tmp2;
            let tmp12 = tmp1 - tmp2;
            v[0][l] = tmp10 + tmp11;
            v[4][l] = tmp10 - tmp11;
            let z1 = (tmp12 + tmp13) * 0.707_106_77;
            v[2][l] = tmp13 + z1;
            v[6][l] = tmp13 - z1;
            let tmp10 = tmp4 + tmp5;
            let tmp11 = tmp5 + tmp6;
            let tmp12 = tmp6 + tmp7;
            let z5 = (tmp10 - tmp12) * 0.382_683_43;
            let z2 = tmp10 * 0.541_196_1 + z5;
            let z4 = tmp12 * 1.306_563 + z5;
            let z3 = tmp11 * 0.707_106_77;
            let z11 = tmp7 + z3;
            let z13 = tmp7 - z3;
            v[5][l] = z13 + z2;
            v[3][l] = z13 - z2;
            v[1][l] = z11 + z4;
            v[7][l] = z11 - z4;
        }
    }

    #[inline(always)]
    pub(super) fn block(src: &[f32], stride: usize, div: &[f32; 64], zz: &mut [i16; 64]) -> u64 {
        let mut v: [[f32; 8]; 8] =
            std::array::from_fn(|r| src[r * stride..r * stride + 8].try_into().expect("8"));
        dct8(&mut v);
        let mut t = [[0f32; 8]; 8];
        for (r, row) in v.iter().enumerate() {
            for (c, x) in row.iter().enumerate() {
                t[c][r] = *x;
            }
        }
        dct8(&mut t);
        let mut q = [0i16; 64];
        for (i, o) in q.iter_mut().enumerate() {
            let x = t[i / 8][i % 8] * div[i];
            // Round to nearest-even like `cvtps2dq`: adding 1.5 · 2^23 leaves the rounded integer
            // (|x| <= 1023 here), without a libm call where SSE4.1 is not assumed.
            let r = (fmin(fmax(x, -COEF_MAX), COEF_MAX) + 12_582_912.0) - 12_582_912.0;
            *o = r as i16;
        }
        let mut nz = 0u64;
        for (k, z) in zz.iter_mut().enumerate() {
            *z = q[ZZ_FROM_DCT[k] as usize];
            nz |= ((*z != 0) as u64) << k;
        }
        nz
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    /// Eight RGB pixels (24 bytes at `p`) as R, G, B lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load8(p: *const u8) -> (__m256, __m256, __m256) {
        // SAFETY: the caller guarantees 24 readable bytes at `p`.
        let (lo, hi) = unsafe {
            (
                _mm_loadu_si128(p as *const __m128i),
                _mm_loadl_epi64(p.add(16) as *const __m128i),
            )
        };
        let lo_rg = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1);
        let hi_rg = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, -1, -1, -1, -1, -1, 0, 3, 6);
        let lo_b = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
        let hi_b = _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, -1, -1, -1, -1, -1, -1, -1, -1);
        let rg = _mm_or_si128(_mm_shuffle_epi8(lo, lo_rg), _mm_shuffle_epi8(hi, hi_rg));
        let b = _mm_or_si128(_mm_shuffle_epi8(lo, lo_b), _mm_shuffle_epi8(hi, hi_b));
        (
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(rg)),
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(rg))),
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)),
        )
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn luma(r: __m256, g: __m256, b: __m256) -> __m256 {
        let s = _mm256_add_ps(
            _mm256_mul_ps(r, _mm256_set1_ps(YR)),
            _mm256_mul_ps(g, _mm256_set1_ps(YG)),
        );
        let s = _mm256_add_ps(s, _mm256_mul_ps(b, _mm256_set1_ps(YB)));
        _mm256_sub_ps(s, _mm256_set1_ps(128.0))
    }

    /// Pair sums of 16 columns (`a` columns 0..8, `b` columns 8..16), in order.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn pair_sums(a: __m256, b: __m256) -> __m256 {
        let h = _mm256_hadd_ps(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0xD8>(_mm256_castps_pd(h)))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn chroma(r: __m256, g: __m256, b: __m256, kr: f32, kg: f32, kb: f32) -> __m256 {
        let s = _mm256_add_ps(
            _mm256_mul_ps(r, _mm256_set1_ps(kr)),
            _mm256_mul_ps(g, _mm256_set1_ps(kg)),
        );
        _mm256_add_ps(s, _mm256_mul_ps(b, _mm256_set1_ps(kb)))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn convert16(
        r0: &[u8; 48],
        r1: &[u8; 48],
        y0: &mut [f32; 16],
        y1: &mut [f32; 16],
        cb: &mut [f32; 8],
        cr: &mut [f32; 8],
    ) {
        // SAFETY: each load reads 24 bytes at offset 0 or 24 of a 48-byte array; the stores write
        // 8 floats at offset 0 or 8 of 16-float (or 8-float) arrays.
        unsafe {
            let (r0a, g0a, b0a) = load8(r0.as_ptr());
            let (r0b, g0b, b0b) = load8(r0.as_ptr().add(24));
            let (r1a, g1a, b1a) = load8(r1.as_ptr());
            let (r1b, g1b, b1b) = load8(r1.as_ptr().add(24));
            _mm256_storeu_ps(y0.as_mut_ptr(), luma(r0a, g0a, b0a));
            _mm256_storeu_ps(y0.as_mut_ptr().add(8), luma(r0b, g0b, b0b));
            _mm256_storeu_ps(y1.as_mut_ptr(), luma(r1a, g1a, b1a));
            _mm256_storeu_ps(y1.as_mut_ptr().add(8), luma(r1b, g1b, b1b));
            let r = pair_sums(_mm256_add_ps(r0a, r1a), _mm256_add_ps(r0b, r1b));
            let g = pair_sums(_mm256_add_ps(g0a, g1a), _mm256_add_ps(g0b, g1b));
            let b = pair_sums(_mm256_add_ps(b0a, b1a), _mm256_add_ps(b0b, b1b));
            _mm256_storeu_ps(cb.as_mut_ptr(), chroma(r, g, b, CBR, CBG, CBB));
            _mm256_storeu_ps(cr.as_mut_ptr(), chroma(r, g, b, CRR, CRG, CRB));
        }
    }

    /// The AAN DCT along the register axis (lane-wise), as `portable::dct8`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn dct8(v: &mut [__m256; 8]) {
        let add = |a, b| _mm256_add_ps(a, b);
        let sub = |a, b| _mm256_sub_ps(a, b);
        let mul = |a, k: f32| _mm256_mul_ps(a, _mm256_set1_ps(k));
        let tmp0 = add(v[0], v[7]);
        let tmp7 = sub(v[0], v[7]);
        let tmp1 = add(v[1], v[6]);
        let tmp6 = sub(v[1], v[6]);
        let tmp2 = add(v[2], v[5]);
        let tmp5 = sub(v[2], v[5]);
        let tmp3 = add(v[3], v[4]);
        let tmp4 = sub(v[3], v[4]);
        let tmp10 = add(tmp0, tmp3);
        let tmp13 = sub(tmp0, tmp3);
        let tmp11 = add(tmp1, tmp2);
        let tmp12 = sub(tmp1, tmp2);
        v[0] = add(tmp10, tmp11);
        v[4] = sub(tmp10, tmp11);
        let z1 = mul(add(tmp12, tmp13), 0.707_106_77);
        v[2] = add(tmp13, z1);
        v[6] = sub(tmp13, z1);
        let tmp10 = add(tmp4, tmp5);
        let tmp11 = add(tmp5, tmp6);
        let tmp12 = add(tmp6, tmp7);
        let z5 = mul(sub(tmp10, tmp12), 0.382_683_43);
        let z2 = add(mul(tmp10, 0.541_196_1), z5);
        let z4 = add(mul(tmp12, 1.306_563), z5);
        let z3 = mul(tmp11, 0.707_106_77);
        let z11 = add(tmp7, z3);
        let z13 = sub(tmp7, z3);
        v[5] = add(z13, z2);
        v[3] = sub(z13, z2);
        v[1] = add(z11, z4);
        v[7] = sub(z11, z4);
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn transpose(v: &mut [__m256; 8]) {
        let t0 = _mm256_unpacklo_ps(v[0], v[1]);
        let t1 = _mm256_unpackhi_ps(v[0], v[1]);
        let t2 = _mm256_unpacklo_ps(v[2], v[3]);
        let t3 = _mm256_unpackhi_ps(v[2], v[3]);
        let t4 = _mm256_unpacklo_ps(v[4], v[5]);
        let t5 = _mm256_unpackhi_ps(v[4], v[5]);
        let t6 = _mm256_unpacklo_ps(v[6], v[7]);
        let t7 = _mm256_unpackhi_ps(v[6], v[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        v[0] = _mm256_permute2f128_ps::<0x20>(s0, s4);
        v[1] = _mm256_permute2f128_ps::<0x20>(s1, s5);
        v[2] = _mm256_permute2f128_ps::<0x20>(s2, s6);
        v[3] = _mm256_permute2f128_ps::<0x20>(s3, s7);
        v[4] = _mm256_permute2f128_ps::<0x31>(s0, s4);
        v[5] = _mm256_permute2f128_ps::<0x31>(s1, s5);
        v[6] = _mm256_permute2f128_ps::<0x31>(s2, s6);
        v[7] = _mm256_permute2f128_ps::<0x31>(s3, s7);
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn block(
        src: &[f32],
        stride: usize,
        div: &[f32; 64],
        zz: &mut [i16; 64],
    ) -> u64 {
        let mut q = [0i16; 64];
        // SAFETY: the caller checked that `src` holds 8 rows of 8 floats at `stride`; `div` and
        // `q` hold 64 elements, `zz` 64.
        unsafe {
            let p = src.as_ptr();
            let mut v: [__m256; 8] = std::array::from_fn(|r| _mm256_loadu_ps(p.add(r * stride)));
            dct8(&mut v);
            transpose(&mut v);
            dct8(&mut v);
            let (lo, hi) = (_mm256_set1_ps(-COEF_MAX), _mm256_set1_ps(COEF_MAX));
            let qi: [__m256i; 8] = std::array::from_fn(|u| {
                let x = _mm256_mul_ps(v[u], _mm256_loadu_ps(div.as_ptr().add(8 * u)));
                _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(x, lo), hi))
            });
            for k in 0..4 {
                let packed = _mm256_packs_epi32(qi[2 * k], qi[2 * k + 1]);
                let packed = _mm256_permute4x64_epi64::<0xD8>(packed);
                _mm256_storeu_si256(q.as_mut_ptr().add(16 * k) as *mut __m256i, packed);
            }
            for (z, &i) in zz.iter_mut().zip(ZZ_FROM_DCT.iter()) {
                *z = q[i as usize];
            }
            let zero = _mm256_setzero_si256();
            let half = |k: usize| {
                let a = _mm256_loadu_si256(zz.as_ptr().add(32 * k) as *const __m256i);
                let b = _mm256_loadu_si256(zz.as_ptr().add(32 * k + 16) as *const __m256i);
                let bytes = _mm256_permute4x64_epi64::<0xD8>(_mm256_packs_epi16(a, b));
                !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, zero)) as u32) as u64
            };
            half(0) | (half(1) << 32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth test picture with edges and texture (w × h RGB).
    fn picture(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
                let d = ((fx - 0.5).powi(2) + (fy - 0.45).powi(2)).sqrt();
                let inside = d < 0.3;
                let n = ((x as u32 * 7919 + y as u32 * 104_729 + seed).wrapping_mul(2_654_435_761)
                    >> 28) as f32;
                let base = if inside {
                    [200.0 - 60.0 * d, 150.0 - 40.0 * fy, 120.0]
                } else {
                    [40.0 + 150.0 * fy, 90.0, 160.0 - 100.0 * fx]
                };
                data.extend(base.map(|c| (c + n).clamp(0.0, 255.0) as u8));
            }
        }
        data
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
    }

    fn decode(jpg: &[u8]) -> (usize, usize, Vec<u8>) {
        let img = image::load_from_memory_with_format(jpg, image::ImageFormat::Jpeg)
            .expect("decodes")
            .to_rgb8();
        (img.width() as usize, img.height() as usize, img.into_raw())
    }

    #[test]
    fn decodes_with_high_psnr_at_q90() {
        let (w, h) = (178, 218);
        let data = picture(w, h, 1);
        let mut jpg = Vec::new();
        encode_rgb(&data, w, h, 90, &mut jpg).unwrap();
        let (dw, dh, back) = decode(&jpg);
        assert_eq!((dw, dh), (w, h));
        let p = psnr(&data, &back);
        assert!(p >= 35.0, "PSNR {p:.2} dB");
        // Rendered faces too.
        let layout = crate::Layout::new(5, 20, 2);
        for i in 0..20 {
            let face = crate::render_rgb8(&crate::FaceSpec::for_image(&layout, i));
            encode_rgb(&face, crate::WIDTH, crate::HEIGHT, 90, &mut jpg).unwrap();
            let (_, _, back) = decode(&jpg);
            let p = psnr(&face, &back);
            assert!(p >= 35.0, "face {i}: PSNR {p:.2} dB");
        }
    }

    #[test]
    fn odd_sizes_and_qualities_decode() {
        for (w, h) in [
            (1, 1),
            (2, 3),
            (7, 9),
            (16, 16),
            (17, 33),
            (31, 15),
            (64, 8),
        ] {
            let data = picture(w, h, 7);
            for q in [1u8, 50, 75, 90, 100] {
                let mut jpg = Vec::new();
                encode_rgb(&data, w, h, q, &mut jpg).unwrap();
                let (dw, dh, back) = decode(&jpg);
                assert_eq!((dw, dh), (w, h), "{w}×{h} q{q}");
                if q >= 90 && w * h >= 64 {
                    let p = psnr(&data, &back);
                    assert!(p >= 30.0, "{w}×{h} q{q}: PSNR {p:.2}");
                }
            }
        }
        // Saturated colours and noise at q100 exercise the largest coefficients and 0xFF bytes.
        let (w, h) = (40, 24);
        let noise: Vec<u8> = (0..w * h * 3)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 | (0x80 * ((i / 3) % 2) as u8)
            })
            .collect();
        let mut jpg = Vec::new();
        encode_rgb(&noise, w, h, 100, &mut jpg).unwrap();
        let (_, _, back) = decode(&jpg);
        // Noise does not survive 4:2:0; compare with the `jpeg-encoder` crate on the same input.
        let img = crate::image_io::Img::new(w, h, noise.clone());
        let mut theirs = Vec::new();
        crate::image_io::encode_jpeg_crate_into(&img, 100, &mut theirs).unwrap();
        let (_, _, back2) = decode(&theirs);
        let (p, p2) = (psnr(&noise, &back), psnr(&noise, &back2));
        assert!(p > p2 - 0.5, "PSNR {p:.2} dB, jpeg-encoder {p2:.2} dB");
        assert!(encode_rgb(&noise, w, h + 1, 90, &mut jpg).is_err());
        assert!(encode_rgb(&[], 0, 0, 90, &mut jpg).is_err());
    }

    #[test]
    fn deterministic_and_both_code_paths_agree() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (w, h, seed) in [(178, 218, 3), (33, 17, 4), (1, 1, 5)] {
            let data = picture(w, h, seed);
            for q in [50u8, 90, 100] {
                encode_with(true, &data, w, h, q, &mut a).unwrap();
                encode_with(true, &data, w, h, q, &mut b).unwrap();
                assert_eq!(a, b, "not deterministic");
                encode_with(false, &data, w, h, q, &mut b).unwrap();
                assert!(a == b, "{w}×{h} q{q}: AVX2 and portable paths differ");
            }
        }
        let layout = crate::Layout::new(9, 30, 3);
        for i in 0..30 {
            let face = crate::render_rgb8(&crate::FaceSpec::for_image(&layout, i));
            encode_with(true, &face, crate::WIDTH, crate::HEIGHT, 90, &mut a).unwrap();
            encode_with(false, &face, crate::WIDTH, crate::HEIGHT, 90, &mut b).unwrap();
            assert!(a == b, "face {i}: AVX2 and portable paths differ");
        }
    }

    #[test]
    fn tables_match_libjpeg_scaling() {
        let q = quant_table(&LUMA_Q, 90);
        assert_eq!(&q[..8], &[3, 2, 2, 3, 5, 8, 10, 12]);
        assert_eq!(quant_table(&LUMA_Q, 50), LUMA_Q);
        assert!(quant_table(&CHROMA_Q, 1).iter().all(|&v| v == 255));
        assert!(quant_table(&CHROMA_Q, 100).iter().all(|&v| v == 1));
        let h = Huff::new(&DC_LUMA_BITS, &DC_LUMA_VALS);
        assert_eq!(h.with_extra(0, 0, 0), (0b00, 2));
        assert_eq!(h.with_extra(11, 3, 0b101), (0b1111_1111_0101, 12));
        assert_eq!(magnitude(0), (0, 0));
        assert_eq!(magnitude(5), (3, 5));
        assert_eq!(magnitude(-5), (3, 2));
        assert_eq!(magnitude(-1), (1, 0));
    }
}
