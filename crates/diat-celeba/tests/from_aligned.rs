//! `diat data from-aligned` as a library call: real CelebA images named by id, aligned through
//! `diat_align::workflow` from their official landmarks (no detector needed), become a dataset in
//! CelebA's official layout that `inspect` reads unchanged, divided by identity.

mod common;

use diat_align::LandmarkFile;
use diat_align::workflow::{AlignOptions, align_photos};
use diat_celeba::annotations::{FileKind, read_table};
use diat_celeba::export::{FromAligned, from_aligned};
use diat_celeba::layout::Layout;
use diat_celeba::split::{DEFAULT_SEED, identity_split};

#[test]
fn aligned_photos_become_an_official_layout_divided_by_identity() {
    let celeba = common::samples();
    let dir = tempfile::tempdir().unwrap();
    let photos_dir = dir.path().join("photos");
    std::fs::create_dir_all(&photos_dir).unwrap();
    let names = [
        "000001.jpg",
        "000002.jpg",
        "000003.jpg",
        "000004.jpg",
        "000005.jpg",
        "000006.jpg",
    ];
    for n in names {
        std::fs::copy(
            celeba.join("Img/img_align_celeba").join(n),
            photos_dir.join(n),
        )
        .unwrap();
    }
    // A photo that is not CelebA's: no landmarks, so not aligned, and listed as such.
    std::fs::copy(
        celeba.join("Img/img_align_celeba/000007.jpg"),
        photos_dir.join("holiday.jpg"),
    )
    .unwrap();
    let official =
        LandmarkFile::read(&celeba.join("Anno/list_landmarks_align_celeba.txt")).unwrap();
    let mut photos: Vec<_> = names.iter().map(|n| photos_dir.join(n)).collect();
    photos.push(photos_dir.join("holiday.jpg"));
    let aligned = dir.path().join("aligned");
    let r = align_photos(&photos, &official, &AlignOptions::new(&aligned)).unwrap();
    assert_eq!((r.doc.faces.len(), r.faceless), (6, 1));

    let out = dir.path().join("celeba-real");
    let opts = FromAligned {
        min_coverage: 0.0,
        ..FromAligned::new(&r.json_path, &celeba, &out)
    };
    let report = from_aligned(&opts).unwrap();
    assert_eq!(report.kept, 6);
    assert_eq!(report.left_out(), 1, "{:?}", report.left_out);
    assert!(out.join("report.json").is_file());

    // The official layout, read back by the ordinary readers.
    let layout = Layout::detect(&out).unwrap();
    let inspect = diat_celeba::inspect::inspect(&layout, false).unwrap();
    assert_eq!(inspect.images_annotated, 6);
    assert_eq!(inspect.images_found, Some(6));
    assert_eq!(inspect.with_landmarks, Some(6));
    assert!(inspect.problems.is_empty(), "{:?}", inspect.problems);
    let attrs = read_table(&layout.attributes, FileKind::Attributes).unwrap();
    let source = read_table(
        &celeba.join("Anno/list_attr_celeba.txt"),
        FileKind::Attributes,
    )
    .unwrap();
    for (i, id) in attrs.ids.iter().enumerate() {
        let j = source.ids.iter().position(|s| s == id).unwrap();
        assert_eq!(attrs.row(i), source.row(j), "{id}");
    }
    // Landmarks in the aligned frame: these photos are aligned already, so the detector's points
    // mapped through the fitted alignment land within a few pixels of CelebA's own.
    let lm = read_table(layout.landmarks.as_ref().unwrap(), FileKind::Landmarks).unwrap();
    let lm0 = read_table(
        &celeba.join("Anno/list_landmarks_align_celeba.txt"),
        FileKind::Landmarks,
    )
    .unwrap();
    for (i, id) in lm.ids.iter().enumerate() {
        let j = lm0.ids.iter().position(|s| s == id).unwrap();
        for (a, b) in lm.row(i).iter().zip(lm0.row(j)) {
            assert!(
                (a - b).abs() <= 8,
                "{id}: {:?} vs {:?}",
                lm.row(i),
                lm0.row(j)
            );
        }
    }
    // The division follows the identity hash.
    let ids = read_table(layout.identity.as_ref().unwrap(), FileKind::Identity).unwrap();
    let part = read_table(layout.partition.as_ref().unwrap(), FileKind::Partition).unwrap();
    for (i, id) in part.ids.iter().enumerate() {
        let person = ids.row(ids.ids.iter().position(|s| s == id).unwrap())[0] as u32;
        let want = identity_split(person, DEFAULT_SEED).partition_code();
        assert_eq!(part.row(i)[0], i32::from(want), "{id}");
    }
    let images: usize = report.splits.iter().map(|s| s.images).sum();
    assert_eq!(images, 6);

    // An existing root is not overwritten unless asked; a coverage bar can leave everything out.
    assert!(from_aligned(&opts).is_err());
    let strict = FromAligned {
        min_coverage: 1.01,
        overwrite: true,
        ..opts.clone()
    };
    assert!(from_aligned(&strict).is_err());
    assert!(
        out.join("Img/img_align_celeba/000001.jpg").is_file(),
        "left as it was"
    );
}
