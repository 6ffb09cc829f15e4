//! Shared helpers: the real CelebA samples in ../shared/celeba and small datasets built from them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// ../shared/celeba beside the checkout (CI lays a copy there); DIAT_CELEBA_SAMPLES overrides.
pub fn samples() -> PathBuf {
    if let Ok(p) = std::env::var("DIAT_CELEBA_SAMPLES") {
        return p.into();
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/celeba");
    assert!(
        p.join("Anno/list_attr_celeba.txt").exists(),
        "real CelebA samples not found at {} (set DIAT_CELEBA_SAMPLES)",
        p.display()
    );
    p
}

/// The first `n` data rows of an official .txt annotation file, with a matching count line.
pub fn head_txt(src: &Path, n: usize, has_header: bool) -> String {
    let text = std::fs::read_to_string(src).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    if has_header {
        let mut out = format!("{n}\r\n{}\r\n", lines[1]);
        for l in &lines[2..2 + n] {
            out.push_str(l);
            out.push_str("\r\n");
        }
        out
    } else {
        lines[..n].iter().map(|l| format!("{l}\r\n")).collect()
    }
}

/// An official-layout copy of the 32 real images with consistent 32-row annotation files.
pub fn official_subset(dir: &Path) -> PathBuf {
    let s = samples();
    let root = dir.join("official");
    for d in ["Anno", "Eval", "Img/img_align_celeba"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("Anno/list_attr_celeba.txt"),
        head_txt(&s.join("Anno/list_attr_celeba.txt"), 32, true),
    )
    .unwrap();
    std::fs::write(
        root.join("Anno/list_landmarks_align_celeba.txt"),
        head_txt(&s.join("Anno/list_landmarks_align_celeba.txt"), 32, true),
    )
    .unwrap();
    std::fs::write(
        root.join("Anno/identity_CelebA.txt"),
        head_txt(&s.join("Anno/identity_CelebA.txt"), 32, false),
    )
    .unwrap();
    std::fs::write(
        root.join("Eval/list_eval_partition.txt"),
        head_txt(&s.join("Eval/list_eval_partition.txt"), 32, false),
    )
    .unwrap();
    for i in 1..=32 {
        let name = format!("{i:06}.jpg");
        std::fs::copy(
            s.join("Img/img_align_celeba").join(&name),
            root.join("Img/img_align_celeba").join(&name),
        )
        .unwrap();
    }
    root
}

/// Zips a folder of images as the official img_align_celeba.zip (members under img_align_celeba/).
pub fn zip_images(src_dir: &Path, zip_path: &Path) {
    let f = std::fs::File::create(zip_path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    z.add_directory("img_align_celeba/", opts).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(src_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        z.start_file(format!("img_align_celeba/{}", n.to_string_lossy()), opts)
            .unwrap();
        std::io::Write::write_all(&mut z, &std::fs::read(src_dir.join(&n)).unwrap()).unwrap();
    }
    z.finish().unwrap();
}

/// Kaggle's CSV version of an official .txt annotation file.
pub fn txt_to_csv(txt: &str, header: &[&str], has_count: bool) -> String {
    let mut lines = txt.split("\r\n").filter(|l| !l.trim().is_empty());
    if has_count {
        lines.next();
        lines.next();
    }
    let mut out = format!("image_id,{}\n", header.join(","));
    for l in lines {
        out.push_str(&l.split_whitespace().collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}
