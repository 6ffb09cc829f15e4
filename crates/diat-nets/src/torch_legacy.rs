//! A reader for the legacy `torch.save` format (PyTorch < 1.6, and any file saved with
//! `_use_new_zipfile_serialization=False`), in which most published VGG-Face conversions
//! (e.g. `vgg_face_dag.pth`, 2017) are stored. libtorch itself only reads the zip format.
//!
//! The file is a sequence of pickles — the magic number `0x1950a86a20f9469cfc6c`, the format
//! version 1001, a system-info dict, the saved object (tensors reference their storages through
//! persistent ids `('storage', torch.FloatStorage, key, location, numel, view)`), the sorted list
//! of storage keys — followed by each storage as a little-endian `i64` element count and its raw
//! bytes. This module implements the subset of the pickle machine (protocols 2–4) such files use
//! and rebuilds the tensors of `torch._utils._rebuild_tensor(_v2)` calls; it returns the tensors
//! of a (possibly nested) dict, with nested keys joined by dots.

use crate::error::{NetsError, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Kind, Tensor};

const MAGIC: u128 = 0x1950a86a20f9469cfc6c;

/// The first bytes of a legacy file: `PROTO 2`, `LONG1` of 10 bytes.
pub fn looks_legacy(head: &[u8]) -> bool {
    head.len() >= 4 && head[0] == 0x80 && head[2] == 0x8a && head[3] == 0x0a
}

#[derive(Debug, Clone)]
enum Val {
    None,
    /// A value the reader never inspects (bools, floats, bytes).
    Other,
    Int(i64),
    /// An integer beyond i64 (the magic number).
    LargeInt(i128),
    Str(String),
    Tuple(Vec<Val>),
    List(Vec<Val>),
    Dict(Vec<(Val, Val)>),
    Global(String, String),
    /// A call the reader does not evaluate (kept opaque).
    Call,
    Persistent(Box<Val>),
    Tensor(TensorRef),
    Mark,
}

#[derive(Debug, Clone)]
struct TensorRef {
    storage: String,
    kind: Kind,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Errors inside the reader: a description, given the file's path by [`read_legacy`].
type Res<T> = std::result::Result<T, String>;

fn bad(problem: impl Into<String>) -> String {
    problem.into()
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Res<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| bad("truncated file"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Res<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Res<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn line(&mut self) -> Res<String> {
        let rest = &self.buf[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("unterminated line"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }
    fn string(&mut self, n: usize) -> Res<String> {
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    /// Runs the pickle machine until STOP and returns the top of the stack.
    fn load(&mut self) -> Res<Val> {
        let mut stack: Vec<Val> = Vec::new();
        let mut memo: HashMap<u32, Val> = HashMap::new();
        let pop = |stack: &mut Vec<Val>| stack.pop().ok_or_else(|| bad("pickle stack underflow"));
        let pop_mark = |stack: &mut Vec<Val>| -> Res<Vec<Val>> {
            let m = stack
                .iter()
                .rposition(|v| matches!(v, Val::Mark))
                .ok_or_else(|| bad("pickle: no mark"))?;
            let items = stack.split_off(m + 1);
            stack.pop();
            Ok(items)
        };
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return pop(&mut stack),
                b'(' => stack.push(Val::Mark),
                b'N' => stack.push(Val::None),
                0x88 | 0x89 => stack.push(Val::Other),
                b'J' => {
                    let v = self.u32()? as i32;
                    stack.push(Val::Int(v.into()))
                }
                b'K' => {
                    let v = self.u8()?;
                    stack.push(Val::Int(v.into()))
                }
                b'M' => {
                    let v = self.u16()?;
                    stack.push(Val::Int(v.into()))
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    if n > 16 {
                        return Err(bad("pickle: integer too large"));
                    }
                    let mut v: i128 = 0;
                    for (i, &b) in bytes.iter().enumerate() {
                        v |= (b as i128) << (8 * i);
                    }
                    if n > 0 && n < 16 && bytes[n - 1] & 0x80 != 0 {
                        v -= 1i128 << (8 * n);
                    }
                    stack.push(match i64::try_from(v) {
                        Ok(i) => Val::Int(i),
                        Err(_) => Val::LargeInt(v),
                    })
                }
                b'G' => {
                    self.take(8)?;
                    stack.push(Val::Other)
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.string(n)?;
                    stack.push(Val::Str(s))
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    stack.push(Val::Str(s))
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let s = self.string(n)?;
                    stack.push(Val::Str(s))
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    stack.push(Val::Str(s))
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    self.take(n)?;
                    stack.push(Val::Other)
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    self.take(n)?;
                    stack.push(Val::Other)
                }
                b')' => stack.push(Val::Tuple(vec![])),
                b't' => {
                    let items = pop_mark(&mut stack)?;
                    stack.push(Val::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if stack.len() < n {
                        return Err(bad("pickle stack underflow"));
                    }
                    let items = stack.split_off(stack.len() - n);
                    stack.push(Val::Tuple(items))
                }
                b']' => stack.push(Val::List(vec![])),
                b'l' => {
                    let items = pop_mark(&mut stack)?;
                    stack.push(Val::List(items))
                }
                b'}' => stack.push(Val::Dict(vec![])),
                b'd' => {
                    let items = pop_mark(&mut stack)?;
                    stack.push(Val::Dict(pairs(items)?))
                }
                b'a' => {
                    let v = pop(&mut stack)?;
                    if let Some(Val::List(l)) = stack.last_mut() {
                        l.push(v)
                    }
                }
                b'e' => {
                    let items = pop_mark(&mut stack)?;
                    if let Some(Val::List(l)) = stack.last_mut() {
                        l.extend(items)
                    }
                }
                b's' => {
                    let v = pop(&mut stack)?;
                    let k = pop(&mut stack)?;
                    if let Some(Val::Dict(d)) = stack.last_mut() {
                        d.push((k, v))
                    }
                }
                b'u' => {
                    let items = pop_mark(&mut stack)?;
                    let p = pairs(items)?;
                    if let Some(Val::Dict(d)) = stack.last_mut() {
                        d.extend(p)
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    stack.push(Val::Global(module, name))
                }
                0x93 => {
                    let name = pop(&mut stack)?;
                    let module = pop(&mut stack)?;
                    match (module, name) {
                        (Val::Str(m), Val::Str(n)) => stack.push(Val::Global(m, n)),
                        _ => return Err(bad("pickle: STACK_GLOBAL of non-strings")),
                    }
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    memo.insert(
                        i,
                        stack
                            .last()
                            .cloned()
                            .ok_or_else(|| bad("pickle: empty stack"))?,
                    );
                }
                b'r' => {
                    let i = self.u32()?;
                    memo.insert(
                        i,
                        stack
                            .last()
                            .cloned()
                            .ok_or_else(|| bad("pickle: empty stack"))?,
                    );
                }
                0x94 => {
                    let i = memo.len() as u32;
                    memo.insert(
                        i,
                        stack
                            .last()
                            .cloned()
                            .ok_or_else(|| bad("pickle: empty stack"))?,
                    );
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    stack.push(
                        memo.get(&i)
                            .cloned()
                            .ok_or_else(|| bad("pickle: bad memo"))?,
                    )
                }
                b'j' => {
                    let i = self.u32()?;
                    stack.push(
                        memo.get(&i)
                            .cloned()
                            .ok_or_else(|| bad("pickle: bad memo"))?,
                    )
                }
                b'Q' => {
                    let pid = pop(&mut stack)?;
                    stack.push(Val::Persistent(Box::new(pid)))
                }
                b'R' => {
                    let args = pop(&mut stack)?;
                    let f = pop(&mut stack)?;
                    stack.push(reduce(f, args)?)
                }
                0x81 => {
                    let _args = pop(&mut stack)?;
                    let _cls = pop(&mut stack)?;
                    stack.push(Val::Call)
                }
                b'b' => {
                    // BUILD: the state of an object (an OrderedDict's `_metadata`): not needed.
                    pop(&mut stack)?;
                }
                b'0' => {
                    pop(&mut stack)?;
                }
                b'2' => {
                    let top = stack
                        .last()
                        .cloned()
                        .ok_or_else(|| bad("pickle: empty stack"))?;
                    stack.push(top)
                }
                other => return Err(bad(format!("pickle opcode 0x{other:02x} not supported"))),
            }
        }
    }
}

fn pairs(items: Vec<Val>) -> Res<Vec<(Val, Val)>> {
    if !items.len().is_multiple_of(2) {
        return Err(bad("pickle: odd number of dict items"));
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn ints(v: &Val) -> Res<Vec<i64>> {
    match v {
        Val::Tuple(t) | Val::List(t) => t
            .iter()
            .map(|x| match x {
                Val::Int(i) => Ok(*i),
                _ => Err(bad("tensor size/stride is not a tuple of ints")),
            })
            .collect(),
        _ => Err(bad("tensor size/stride is not a tuple")),
    }
}

fn storage_kind(name: &str) -> Res<Kind> {
    Ok(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        other => return Err(bad(format!("storage type {other} not supported"))),
    })
}

/// Evaluates the calls a state dict needs: tensor rebuilds and empty `OrderedDict`s.
fn reduce(f: Val, args: Val) -> Res<Val> {
    let Val::Global(module, name) = &f else {
        return Ok(Val::Call);
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") => Ok(Val::Dict(vec![])),
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
            let Val::Tuple(a) = args else {
                return Err(bad("tensor rebuild without arguments"));
            };
            if a.len() < 4 {
                return Err(bad("tensor rebuild: too few arguments"));
            }
            let Val::Persistent(pid) = &a[0] else {
                return Err(bad("tensor without a storage"));
            };
            let Val::Tuple(pid) = pid.as_ref() else {
                return Err(bad("storage id is not a tuple"));
            };
            let (Some(Val::Global(_, ty)), Some(key)) = (pid.get(1), pid.get(2)) else {
                return Err(bad("storage id without type and key"));
            };
            let key = match key {
                Val::Str(s) => s.clone(),
                Val::Int(i) => i.to_string(),
                _ => return Err(bad("storage key is neither a string nor an int")),
            };
            if !matches!(pid.get(5), None | Some(Val::None)) {
                return Err(bad("storage views (PyTorch < 0.4 files) are not supported"));
            }
            let Val::Int(offset) = a[1] else {
                return Err(bad("tensor offset is not an int"));
            };
            Ok(Val::Tensor(TensorRef {
                storage: key,
                kind: storage_kind(ty)?,
                offset,
                size: ints(&a[2])?,
                stride: ints(&a[3])?,
            }))
        }
        _ => Ok(Val::Call),
    }
}

fn collect(prefix: &str, v: &Val, out: &mut Vec<(String, TensorRef)>) {
    if let Val::Dict(items) = v {
        for (k, v) in items {
            let key = match k {
                Val::Str(s) => s.clone(),
                Val::Int(i) => i.to_string(),
                _ => continue,
            };
            let name = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            match v {
                Val::Tensor(t) => out.push((name, t.clone())),
                Val::Dict(_) => collect(&name, v, out),
                _ => {}
            }
        }
    }
}

fn storage_kinds(v: &Val, out: &mut HashMap<String, Kind>) {
    match v {
        Val::Tensor(t) => {
            out.insert(t.storage.clone(), t.kind);
        }
        Val::Tuple(items) | Val::List(items) => items.iter().for_each(|i| storage_kinds(i, out)),
        Val::Dict(items) => items.iter().for_each(|(_, i)| storage_kinds(i, out)),
        _ => {}
    }
}

/// Reads the tensors of a legacy `torch.save` file (see the module documentation).
pub fn read_legacy(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let buf = std::fs::read(path).map_err(|source| NetsError::Io {
        path: path.into(),
        source,
    })?;
    let ctx = |e: String| NetsError::Import {
        path: path.into(),
        problem: format!("legacy torch.save file: {e}"),
    };
    let mut r = Reader { buf: &buf, pos: 0 };
    match r.load().map_err(ctx)? {
        Val::LargeInt(m) if m == MAGIC as i128 => {}
        _ => return Err(ctx(bad("no torch.save magic number"))),
    }
    match r.load().map_err(ctx)? {
        Val::Int(1001) => {}
        other => return Err(ctx(bad(format!("unknown format version {other:?}")))),
    }
    let _sys_info = r.load().map_err(ctx)?;
    let obj = r.load().map_err(ctx)?;
    let keys = match r.load().map_err(ctx)? {
        Val::List(k) => k,
        _ => return Err(ctx(bad("storage key list missing"))),
    };
    let mut refs = Vec::new();
    collect("", &obj, &mut refs);
    // Storage kinds come from the tensors that reference them (anywhere in the object).
    let mut kinds: HashMap<String, Kind> = HashMap::new();
    storage_kinds(&obj, &mut kinds);
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    for k in keys {
        let key = match k {
            Val::Str(s) => s,
            Val::Int(i) => i.to_string(),
            _ => return Err(ctx(bad("storage key is neither a string nor an int"))),
        };
        let numel = i64::from_le_bytes(r.take(8).map_err(ctx)?.try_into().unwrap());
        let Some(&kind) = kinds.get(key.as_str()) else {
            return Err(ctx(bad(format!("storage {key} is not used by any tensor"))));
        };
        let len = usize::try_from(numel)
            .ok()
            .and_then(|n| n.checked_mul(kind.elt_size_in_bytes()))
            .ok_or_else(|| ctx(bad(format!("storage {key}: bad size {numel}"))))?;
        let bytes = r.take(len).map_err(ctx)?;
        storages.insert(key, Tensor::f_from_data_size(bytes, &[numel], kind)?);
    }
    refs.into_iter()
        .map(|(name, t)| {
            let s = storages
                .get(&t.storage)
                .ok_or_else(|| ctx(bad(format!("storage {} missing", t.storage))))?;
            let view = s
                .f_as_strided(t.size.as_slice(), t.stride.as_slice(), t.offset)
                .map_err(|e| ctx(format!("{name}: {e}")))?;
            Ok((name, view.contiguous()))
        })
        .collect()
}
