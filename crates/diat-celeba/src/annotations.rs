//! Parsers for CelebA's annotation files, in the official `.txt` format and Kaggle's `.csv` format.
//!
//! Official `.txt` files align columns with runs of spaces, use CRLF, and (attributes, landmarks,
//! bounding boxes) start with a count line and a header line. `identity_CelebA.txt` and
//! `list_eval_partition.txt` have neither. Every malformed row is an error naming file and line;
//! an HTML page saved in place of a file is recognised and reported as such.

use crate::error::{Error, Result, looks_like_html};
use std::path::{Path, PathBuf};

/// The 40 CelebA attributes in file order.
pub const ATTRIBUTE_NAMES: [&str; 40] = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
];

pub use diat_common::LANDMARK_NAMES;

/// Bounding-box columns (in-the-wild images).
pub const BBOX_NAMES: [&str; 4] = ["x_1", "y_1", "width", "height"];

/// Index of an attribute by name.
pub fn attribute_index(name: &str) -> Option<usize> {
    ATTRIBUTE_NAMES
        .iter()
        .position(|a| a.eq_ignore_ascii_case(name))
}

/// Which annotation file a table came from; decides its shape and value checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Attributes,
    Landmarks,
    Identity,
    Partition,
    BBox,
}

impl FileKind {
    fn columns(self) -> &'static [&'static str] {
        match self {
            FileKind::Attributes => &ATTRIBUTE_NAMES,
            FileKind::Landmarks => &LANDMARK_NAMES,
            FileKind::Identity => &["identity"],
            FileKind::Partition => &["partition"],
            FileKind::BBox => &BBOX_NAMES,
        }
    }
    /// Official .txt files of this kind start with a count line and a header.
    fn has_count_and_header(self) -> bool {
        matches!(
            self,
            FileKind::Attributes | FileKind::Landmarks | FileKind::BBox
        )
    }
    fn check(self, v: i32) -> Option<&'static str> {
        match self {
            FileKind::Attributes if v != -1 && v != 1 => Some("attribute values must be -1 or 1"),
            FileKind::Partition if !(0..=2).contains(&v) => {
                Some("partition must be 0 (train), 1 (val) or 2 (test)")
            }
            FileKind::Identity if v < 1 => Some("identity must be a positive integer"),
            FileKind::Landmarks | FileKind::BBox if v < 0 => {
                Some("coordinates must not be negative")
            }
            _ => None,
        }
    }
}

/// One parsed annotation file: image ids in file order and an `n × k` row-major value matrix.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub kind: FileKind,
    pub ids: Vec<String>,
    pub values: Vec<i32>,
    /// The 1-based line number of each row, for error messages.
    pub lines: Vec<u32>,
}

impl Table {
    pub fn width(&self) -> usize {
        self.kind.columns().len()
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// `path:line` of row `i`.
    pub fn locate(&self, i: usize) -> String {
        format!("{}:{}", self.path.display(), self.lines[i])
    }
    /// Row index by image id.
    pub fn positions(&self) -> std::collections::HashMap<&str, usize> {
        self.ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect()
    }
    pub fn row(&self, i: usize) -> &[i32] {
        let k = self.width();
        &self.values[i * k..(i + 1) * k]
    }
}

/// Reads and parses an annotation file, choosing the format by extension (`.csv` = Kaggle).
pub fn read_table(path: &Path, kind: FileKind) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_table(path, &bytes, kind)
}

/// Parses annotation bytes (see [`read_table`]).
pub fn parse_table(path: &Path, bytes: &[u8], kind: FileKind) -> Result<Table> {
    if looks_like_html(bytes) {
        return Err(Error::Html {
            path: path.to_path_buf(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Error::parse(
            path,
            line,
            "not UTF-8 text (a binary file in place of an annotation file?)",
        )
    })?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        parse_csv(path, text, kind)
    } else {
        parse_txt(path, text, kind)
    }
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

fn parse_value(path: &Path, line: usize, kind: FileKind, col: &str, tok: &str) -> Result<i32> {
    // Fast path for the attribute file's 8 million "1"/"-1" tokens.
    match tok.as_bytes() {
        b"1" => return Ok(1),
        b"-1" if kind == FileKind::Attributes => return Ok(-1),
        _ => {}
    }
    let v: i32 = tok.parse().map_err(|_| {
        Error::parse(
            path,
            line,
            format!("column {col}: '{tok}' is not an integer"),
        )
    })?;
    if let Some(why) = kind.check(v) {
        return Err(Error::parse(
            path,
            line,
            format!("column {col}: {v}: {why}"),
        ));
    }
    Ok(v)
}

fn parse_txt(path: &Path, text: &str, kind: FileKind) -> Result<Table> {
    let cols = kind.columns();
    let k = cols.len();
    let mut it = lines(text).filter(|(_, l)| !l.trim().is_empty()).peekable();
    let mut declared = None;
    if kind.has_count_and_header() {
        let (ln, count) = it
            .next()
            .ok_or_else(|| Error::parse(path, 1, "empty file"))?;
        declared = Some(count.trim().parse::<usize>().map_err(|_| {
            Error::parse(
                path,
                ln,
                format!("expected the row count, found '{}'", short(count)),
            )
        })?);
        let (ln, header) = it
            .next()
            .ok_or_else(|| Error::parse(path, ln + 1, "missing header line"))?;
        let names: Vec<&str> = header.split_whitespace().collect();
        let names = match names.first() {
            Some(&"image_id") => &names[1..],
            _ => &names[..],
        };
        if names.len() != k
            || names
                .iter()
                .zip(cols)
                .any(|(a, b)| !a.eq_ignore_ascii_case(b))
        {
            return Err(Error::parse(
                path,
                ln,
                format!(
                    "header does not list the {k} expected columns ({} ...): '{}'",
                    cols[0],
                    short(header)
                ),
            ));
        }
    }
    let mut ids = Vec::with_capacity(declared.unwrap_or(1024));
    let mut values = Vec::with_capacity(declared.unwrap_or(1024) * k);
    let mut line_nos = Vec::with_capacity(declared.unwrap_or(1024));
    for (ln, line) in it {
        let id = parse_row(path, ln, kind, line.split_ascii_whitespace(), &mut values)?;
        ids.push(id.to_string());
        line_nos.push(ln as u32);
    }
    if let Some(d) = declared
        && d != ids.len()
    {
        return Err(Error::parse(
            path,
            1,
            format!("count line says {d} rows but the file has {}", ids.len()),
        ));
    }
    finish(path, kind, ids, values, line_nos)
}

fn parse_csv(path: &Path, text: &str, kind: FileKind) -> Result<Table> {
    let cols = kind.columns();
    let k = cols.len();
    let mut it = lines(text).filter(|(_, l)| !l.trim().is_empty());
    let (ln, header) = it
        .next()
        .ok_or_else(|| Error::parse(path, 1, "empty file"))?;
    let names: Vec<&str> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(str::trim)
        .collect();
    let ok = names.len() == k + 1
        && names[0].eq_ignore_ascii_case("image_id")
        && names[1..]
            .iter()
            .zip(cols)
            .all(|(a, b)| a.eq_ignore_ascii_case(b));
    if !ok {
        return Err(Error::parse(
            path,
            ln,
            format!(
                "CSV header must be image_id,{} ...: '{}'",
                cols[0],
                short(header)
            ),
        ));
    }
    let mut ids = Vec::new();
    let mut values = Vec::new();
    let mut line_nos = Vec::new();
    for (ln, line) in it {
        let id = parse_row(path, ln, kind, line.split(',').map(str::trim), &mut values)?;
        ids.push(id.to_string());
        line_nos.push(ln as u32);
    }
    finish(path, kind, ids, values, line_nos)
}

/// One data row: the image id, then exactly the kind's columns (appended to `values`).
fn parse_row<'a>(
    path: &Path,
    ln: usize,
    kind: FileKind,
    mut toks: impl Iterator<Item = &'a str>,
    values: &mut Vec<i32>,
) -> Result<&'a str> {
    let cols = kind.columns();
    let k = cols.len();
    let id = toks.next().unwrap_or_default();
    check_id(path, ln, id)?;
    let mut n = 0;
    for tok in toks {
        if n == k {
            return Err(Error::parse(
                path,
                ln,
                format!("more than {k} values after the image id"),
            ));
        }
        values.push(parse_value(path, ln, kind, cols[n], tok)?);
        n += 1;
    }
    if n != k {
        return Err(Error::parse(
            path,
            ln,
            format!("expected {k} values after the image id, found {n}"),
        ));
    }
    Ok(id)
}

fn check_id(path: &Path, line: usize, id: &str) -> Result<()> {
    let lower = id.to_ascii_lowercase();
    if !(lower.ends_with(".jpg") || lower.ends_with(".png") || lower.ends_with(".jpeg")) {
        return Err(Error::parse(
            path,
            line,
            format!("expected an image file name first, found '{}'", short(id)),
        ));
    }
    Ok(())
}

fn finish(
    path: &Path,
    kind: FileKind,
    ids: Vec<String>,
    values: Vec<i32>,
    lines: Vec<u32>,
) -> Result<Table> {
    if ids.is_empty() {
        return Err(Error::invalid(path, "no data rows"));
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if !seen.insert(id.as_str()) {
            return Err(Error::parse(
                path,
                lines[i] as usize,
                format!("image id {id} appears twice"),
            ));
        }
    }
    Ok(Table {
        path: path.to_path_buf(),
        kind,
        ids,
        values,
        lines,
    })
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr_txt(rows: &[&str]) -> String {
        let mut s = format!("{}\r\n{} \r\n", rows.len(), ATTRIBUTE_NAMES.join(" "));
        for r in rows {
            s.push_str(r);
            s.push_str("\r\n");
        }
        s
    }
    fn row(id: &str, v: i32) -> String {
        let mut s = id.to_string();
        for _ in 0..40 {
            s.push_str(&format!(" {v:2}"));
        }
        s
    }

    #[test]
    fn parses_official_attributes() {
        let t = attr_txt(&[&row("000001.jpg", -1), &row("000002.jpg", 1)]);
        let tab = parse_table(Path::new("a.txt"), t.as_bytes(), FileKind::Attributes).unwrap();
        assert_eq!(tab.ids, ["000001.jpg", "000002.jpg"]);
        assert_eq!(tab.row(1), &[1; 40]);
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let mut bad = row("000002.jpg", 1);
        bad.truncate(bad.len() - 3);
        let t = attr_txt(&[&row("000001.jpg", -1), &bad]);
        let e = parse_table(
            Path::new("list_attr_celeba.txt"),
            t.as_bytes(),
            FileKind::Attributes,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "list_attr_celeba.txt:4: expected 40 values after the image id, found 39"
        );
        let t = attr_txt(&[&row("000001.jpg", 0)]);
        let e = parse_table(Path::new("a.txt"), t.as_bytes(), FileKind::Attributes).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.txt:3: column 5_o_Clock_Shadow: 0"),
            "{e}"
        );
        let t = "3\r\n".to_string() + &attr_txt(&[&row("000001.jpg", 1)])[3..];
        let e = parse_table(Path::new("a.txt"), t.as_bytes(), FileKind::Attributes).unwrap_err();
        assert!(
            e.to_string()
                .contains("count line says 3 rows but the file has 1"),
            "{e}"
        );
    }

    #[test]
    fn identity_partition_and_csv() {
        let t = parse_table(
            Path::new("p.txt"),
            b"000001.jpg 0\r\n000002.jpg 2\r\n",
            FileKind::Partition,
        )
        .unwrap();
        assert_eq!(t.values, [0, 2]);
        let e = parse_table(
            Path::new("p.txt"),
            b"000001.jpg 0\n000002.jpg 3\n",
            FileKind::Partition,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("p.txt:2:"), "{e}");
        let csv = "image_id,lefteye_x,lefteye_y,righteye_x,righteye_y,nose_x,nose_y,leftmouth_x,leftmouth_y,rightmouth_x,rightmouth_y\n000001.jpg,69,109,106,113,77,142,73,152,108,154\n";
        let t = parse_table(
            Path::new("list_landmarks_align_celeba.csv"),
            csv.as_bytes(),
            FileKind::Landmarks,
        )
        .unwrap();
        assert_eq!(t.row(0)[9], 154);
        let e = parse_table(
            Path::new("x.txt"),
            b"<!DOCTYPE html><html>",
            FileKind::Identity,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Html { .. }));
        let e = parse_table(
            Path::new("i.txt"),
            b"000001.jpg 5\n000001.jpg 6\n",
            FileKind::Identity,
        )
        .unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
    }
}
