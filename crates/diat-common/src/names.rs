//! Output names that no two inputs share: a folder of results named after its inputs
//! (`face.jpg` → `face.png`) must not let `face.jpg` and `face.png` overwrite each other.

use std::collections::{BTreeMap, BTreeSet};

/// The file name's stem (`a/b/face.jpg` → `face`).
pub fn stem(name: &str) -> &str {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.rsplit_once('.').map(|(s, _)| s).unwrap_or(base)
}

fn base(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Output stems for inputs named `names` (paths or archive members): the file stem where it is
/// unique, the whole file name (`face.jpg`, `face.png`) where stems collide. With `suffixes`
/// (`["", ".transform"]` for `<stem>.png` and `<stem>.transform.png`) every output file name
/// is checked too. Inputs that would still collide (the same file name in two folders) are an
/// error naming both, never a silent overwrite.
pub fn output_stems(names: &[&str], suffixes: &[&str]) -> Result<Vec<String>, String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for n in names {
        *count.entry(stem(n)).or_default() += 1;
    }
    let stems: Vec<String> = names
        .iter()
        .map(|n| {
            if count[stem(n)] > 1 {
                base(n).to_string()
            } else {
                stem(n).to_string()
            }
        })
        .collect();
    let suffixes: BTreeSet<&str> = suffixes.iter().copied().chain([""]).collect();
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in stems.iter().enumerate() {
        for suffix in &suffixes {
            let file = format!("{s}{suffix}");
            if let Some(&j) = taken.get(&file) {
                return Err(format!(
                    "{} and {} would both be written as {file}.png: rename one, or run them \
                     into separate --out folders",
                    names[j], names[i]
                ));
            }
            taken.insert(file, i);
        }
    }
    Ok(stems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_are_resolved_or_refused() {
        let ok = |names: &[&str], sfx: &[&str]| output_stems(names, sfx).unwrap();
        assert_eq!(ok(&["in/a.jpg", "in/b.png"], &[]), ["a", "b"]);
        assert_eq!(
            ok(&["in/face.jpg", "in/face.png", "in/x.jpg"], &[]),
            ["face.jpg", "face.png", "x"]
        );
        assert_eq!(
            ok(&["z.zip:dir/face.JPG", "face.jpeg"], &[]),
            ["face.JPG", "face.jpeg"]
        );
        let e = output_stems(&["a/face.jpg", "b/face.jpg"], &[]).unwrap_err();
        assert!(e.contains("a/face.jpg and b/face.jpg"), "{e}");
        // An input named like another's intermediate output.
        let e = output_stems(&["x.jpg", "x.transform.png"], &["", ".transform"]).unwrap_err();
        assert!(e.contains("x.transform.png"), "{e}");
        assert_eq!(ok(&["x.jpg", "x.transform.png"], &[]), ["x", "x.transform"]);
    }
}
