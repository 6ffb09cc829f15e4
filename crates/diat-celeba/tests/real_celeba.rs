//! Ingestion on the real CelebA files: the complete official annotation files at full scale and
//! the 32 real aligned images, in every supported layout.

mod common;

use common::*;
use diat_celeba::annotations::{
    ATTRIBUTE_NAMES, FileKind, LANDMARK_NAMES, attribute_index, read_table,
};
use diat_celeba::crop::CropSpec;
use diat_celeba::dataset::{Annotations, OFFICIAL_SPLITS};
use diat_celeba::layout::{ImageLocation, ImageReader, Layout, LayoutKind};
use diat_celeba::pipeline::{BuildConfig, build_store};
use diat_celeba::sets::{SelectConfig, kept_rows, paper_task_named, select};
use diat_celeba::store::Store;

#[test]
fn full_attribute_file_parses_with_the_known_counts() {
    let s = samples();
    let t = read_table(&s.join("Anno/list_attr_celeba.txt"), FileKind::Attributes).unwrap();
    assert_eq!(t.len(), 202_599);
    let count = |name: &str| {
        let a = attribute_index(name).unwrap();
        (0..t.len()).filter(|&i| t.row(i)[a] == 1).count()
    };
    assert_eq!(count("Eyeglasses"), 13_193);
    assert_eq!(count("Male"), 84_434);
    assert_eq!(t.ids[0], "000001.jpg");
    assert_eq!(t.ids[202_598], "202599.jpg");
}

#[test]
fn full_official_annotations_join_with_official_splits() {
    let layout = Layout::detect(&samples()).unwrap();
    assert_eq!(layout.kind, LayoutKind::Official);
    let ann = Annotations::load(&layout).unwrap();
    assert_eq!(ann.split_sizes(), Some(OFFICIAL_SPLITS));
    let ids: std::collections::HashSet<_> =
        ann.identity.as_ref().unwrap().iter().flatten().collect();
    assert_eq!(ids.len(), 10_177);
    // The sample landmark file covers 32 images: reported, not fatal.
    assert!(
        ann.warnings
            .iter()
            .any(|w| w.contains("covers 32 of the 202599")),
        "{:?}",
        ann.warnings
    );
    let lm = ann.landmarks.as_ref().unwrap();
    assert_eq!(lm[0], Some([69, 109, 106, 113, 77, 142, 73, 152, 108, 154]));
    let df = ann.to_dataframe().unwrap();
    assert_eq!(df.height(), 202_599);
    assert_eq!(df.width(), 3 + 40 + 10 + 1);
    let eg = df
        .column("Eyeglasses")
        .unwrap()
        .bool()
        .unwrap()
        .sum()
        .unwrap();
    assert_eq!(eg, 13_193);
    for n in ATTRIBUTE_NAMES.iter().chain(LANDMARK_NAMES.iter()) {
        assert!(df.column(n).is_ok(), "{n}");
    }
}

#[test]
fn full_scale_selection_balances_the_confounders() {
    let layout = Layout::detect(&samples()).unwrap();
    let ann = Annotations::load(&layout).unwrap();
    let kept = kept_rows(&ann, &[]);
    let task = paper_task_named("eyeglasses_remove").unwrap();
    let s = select(&ann, &kept, &task, &SelectConfig::default()).unwrap();
    let r = &s.report;
    assert_eq!(r.input, 2000);
    // Input faces wear glasses: mostly male, rarely young; the raw guided pool is the opposite.
    let (male, young) = (r.proportions["Male"], r.proportions["Young"]);
    assert!(male[0] > 70.0 && male[1] < 45.0, "{male:?}");
    assert!(young[0] < 50.0 && young[1] > 75.0, "{young:?}");
    for name in ["Male", "Young", "Mouth_Slightly_Open"] {
        let p = r.proportions[name];
        assert!((p[2] - p[0]).abs() < 1.0, "{name} balanced: {p:?}");
    }
    assert!(
        r.guided > 10_000,
        "balancing keeps many images: {}",
        r.guided
    );
    assert_eq!(r.test, 200);
    let g = attribute_index("Eyeglasses").unwrap();
    assert!(s.guided.iter().all(|&i| !ann.attrs[i][g]) && s.input.iter().all(|&i| ann.attrs[i][g]));
}

#[test]
fn every_layout_is_detected_and_reads_the_same_images() {
    let tmp = tempfile::tempdir().unwrap();
    let official = official_subset(tmp.path());
    let s = samples();
    let attr32 = head_txt(&s.join("Anno/list_attr_celeba.txt"), 32, true);

    // Official with the zip instead of the folder.
    let zipped = tmp.path().join("zipped");
    std::fs::create_dir_all(zipped.join("Img")).unwrap();
    std::fs::create_dir_all(zipped.join("Eval")).unwrap();
    copy_dir(&official.join("Anno"), &zipped.join("Anno"));
    std::fs::copy(
        official.join("Eval/list_eval_partition.txt"),
        zipped.join("Eval/list_eval_partition.txt"),
    )
    .unwrap();
    zip_images(
        &official.join("Img/img_align_celeba"),
        &zipped.join("Img/img_align_celeba.zip"),
    );

    // torchvision: ROOT/celeba/ flat.
    let tv = tmp.path().join("tv");
    std::fs::create_dir_all(tv.join("celeba")).unwrap();
    for f in [
        "list_attr_celeba.txt",
        "list_landmarks_align_celeba.txt",
        "identity_CelebA.txt",
    ] {
        std::fs::copy(official.join("Anno").join(f), tv.join("celeba").join(f)).unwrap();
    }
    std::fs::copy(
        official.join("Eval/list_eval_partition.txt"),
        tv.join("celeba/list_eval_partition.txt"),
    )
    .unwrap();
    copy_dir(
        &official.join("Img/img_align_celeba"),
        &tv.join("celeba/img_align_celeba"),
    );

    // Kaggle: CSVs with headers, images two levels down.
    let kg = tmp.path().join("kaggle");
    std::fs::create_dir_all(&kg).unwrap();
    std::fs::write(
        kg.join("list_attr_celeba.csv"),
        txt_to_csv(&attr32, &ATTRIBUTE_NAMES, true),
    )
    .unwrap();
    let lm32 = head_txt(&s.join("Anno/list_landmarks_align_celeba.txt"), 32, true);
    std::fs::write(
        kg.join("list_landmarks_align_celeba.csv"),
        txt_to_csv(&lm32, &LANDMARK_NAMES, true),
    )
    .unwrap();
    let part32 = head_txt(&s.join("Eval/list_eval_partition.txt"), 32, false);
    std::fs::write(
        kg.join("list_eval_partition.csv"),
        txt_to_csv(&part32, &["partition"], false),
    )
    .unwrap();
    copy_dir(
        &official.join("Img/img_align_celeba"),
        &kg.join("img_align_celeba/img_align_celeba"),
    );

    // StarGAN: images/ + list_attr_celeba.txt.
    let sg = tmp.path().join("stargan");
    std::fs::create_dir_all(&sg).unwrap();
    std::fs::write(sg.join("list_attr_celeba.txt"), &attr32).unwrap();
    copy_dir(&official.join("Img/img_align_celeba"), &sg.join("images"));

    let reference = std::fs::read(official.join("Img/img_align_celeba/000007.jpg")).unwrap();
    for (root, kind, zip) in [
        (&official, LayoutKind::Official, false),
        (&zipped, LayoutKind::Official, true),
        (&tv, LayoutKind::Torchvision, false),
        (&kg, LayoutKind::Kaggle, false),
        (&sg, LayoutKind::Stargan, false),
    ] {
        let layout = Layout::detect(root).unwrap();
        assert_eq!(layout.kind, kind, "{}", root.display());
        assert_eq!(
            matches!(layout.images, Some(ImageLocation::Zip { .. })),
            zip
        );
        let ann = Annotations::load(&layout).unwrap();
        assert_eq!(ann.len(), 32);
        let mut reader = ImageReader::open(layout.images.as_ref().unwrap()).unwrap();
        let mut buf = Vec::new();
        reader.read_into("000007.jpg", &mut buf).unwrap();
        assert_eq!(buf, reference, "{kind} reads the same bytes");
        if kind == LayoutKind::Kaggle {
            assert_eq!(ann.landmarks.as_ref().unwrap()[0].unwrap()[0], 69);
        }
    }
    let e = Layout::detect(tmp.path()).unwrap_err();
    assert!(e.to_string().contains("no CelebA dataset found"), "{e}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn store_from_real_images_with_masks_and_rejects() {
    let tmp = tempfile::tempdir().unwrap();
    let root = official_subset(tmp.path());
    // One truncated JPEG and one HTML page saved as an image.
    let img = root.join("Img/img_align_celeba");
    let bytes = std::fs::read(img.join("000003.jpg")).unwrap();
    std::fs::write(img.join("000003.jpg"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(
        img.join("000004.jpg"),
        b"<!DOCTYPE html><html>quota exceeded</html>",
    )
    .unwrap();
    let layout = Layout::detect(&root).unwrap();
    let ann = Annotations::load(&layout).unwrap();
    let reader = ImageReader::open(layout.images.as_ref().unwrap()).unwrap();
    let rows: Vec<usize> = (0..32).collect();
    let out = tmp.path().join("sets/input");
    let strict = BuildConfig {
        max_reject_fraction: 0.01,
        ..Default::default()
    };
    let e = build_store(
        &reader,
        &ann,
        &rows,
        &out,
        "input",
        Some("mouth_open"),
        Some(diat_celeba::masks::Region::Mouth),
        0,
        serde_json::json!({}),
        &strict,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("too many rejected images: 2 of 32"),
        "{e}"
    );
    assert!(
        !out.exists(),
        "a failed store leaves nothing under its final name"
    );
    let report = std::fs::read_to_string(tmp.path().join("sets/input.rejects.csv")).unwrap();
    assert!(
        report.contains("000003.jpg") && report.contains("000004.jpg"),
        "{report}"
    );

    let lenient = BuildConfig {
        max_reject_fraction: 0.1,
        ..Default::default()
    };
    let built = build_store(
        &reader,
        &ann,
        &rows,
        &out,
        "input",
        Some("mouth_open"),
        Some(diat_celeba::masks::Region::Mouth),
        0,
        serde_json::json!({}),
        &lenient,
    )
    .unwrap();
    assert_eq!(built.rejects.len(), 2);
    let store = Store::open(&out).unwrap();
    store.verify().unwrap();
    assert_eq!(store.len(), 30);
    assert_eq!(store.manifest.shape, [30, 128, 128, 3]);
    assert!(
        std::fs::read_to_string(out.join("rejects.csv"))
            .unwrap()
            .contains("corrupt image")
    );
    let meta = store.meta().unwrap();
    let ids = meta.column("id").unwrap().str().unwrap();
    assert_eq!(ids.get(0), Some("000001.jpg"));
    assert_eq!(ids.get(2), Some("000005.jpg"));
    // Landmarks are transformed with the image: 000001's left eye (69,109) → crop coordinates.
    let x = meta
        .column("lefteye_x")
        .unwrap()
        .f32()
        .unwrap()
        .get(0)
        .unwrap();
    let y = meta
        .column("lefteye_y")
        .unwrap()
        .f32()
        .unwrap()
        .get(0)
        .unwrap();
    let (ex, ey) = CropSpec::default().map_point(69.0, 109.0);
    assert!((x - ex).abs() < 1e-5 && (y - ey).abs() < 1e-5);
    // The mouth mask covers the mapped mouth centre and not the eyes.
    let m = store.mask(0).unwrap();
    let mx = (meta
        .column("leftmouth_x")
        .unwrap()
        .f32()
        .unwrap()
        .get(0)
        .unwrap()
        + meta
            .column("rightmouth_x")
            .unwrap()
            .f32()
            .unwrap()
            .get(0)
            .unwrap())
        / 2.0;
    let my = meta
        .column("leftmouth_y")
        .unwrap()
        .f32()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(m[my.round() as usize * 128 + mx.round() as usize], 255);
    assert_eq!(m[ey.round() as usize * 128 + ex.round() as usize], 0);
    // Real face pixels, not zeros.
    let img0 = store.image(0);
    let mean = img0.iter().map(|&v| v as f64).sum::<f64>() / img0.len() as f64;
    assert!((40.0..220.0).contains(&mean), "{mean}");
}

#[test]
fn html_in_place_of_annotations_or_zip_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let root = official_subset(tmp.path());
    std::fs::write(
        root.join("Anno/identity_CelebA.txt"),
        "<!DOCTYPE html>\n<html><head><title>Google Drive</title>",
    )
    .unwrap();
    let e = Annotations::load(&Layout::detect(&root).unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("identity_CelebA.txt is an HTML page"),
        "{e}"
    );
    let z = tmp.path().join("z");
    std::fs::create_dir_all(z.join("Img")).unwrap();
    std::fs::write(
        z.join("Img/img_align_celeba.zip"),
        "<html><body>Too many users</body></html>",
    )
    .unwrap();
    let e = ImageReader::open(&ImageLocation::Zip {
        path: z.join("Img/img_align_celeba.zip"),
    })
    .unwrap_err();
    assert!(e.to_string().contains("is an HTML page"), "{e}");
}

#[test]
fn md5_verification_detects_modified_files() {
    let s = samples();
    assert!(
        diat_celeba::verify::verify_file(&s.join("Eval/list_eval_partition.txt"))
            .unwrap()
            .is_some()
    );
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("list_eval_partition.txt");
    let mut b = std::fs::read(s.join("Eval/list_eval_partition.txt")).unwrap();
    b[20] = b'9';
    std::fs::write(&p, &b).unwrap();
    let e = diat_celeba::verify::verify_file(&p).unwrap_err();
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
}

#[test]
fn masks_follow_a_68_point_landmark_file_when_given() {
    let tmp = tempfile::tempdir().unwrap();
    let root = official_subset(tmp.path());
    // 68 points for image 1 whose mouth (48..68) is a small ring around (40, 170), far from the
    // real mouth (≈ (90, 153)); other points at the eyes.
    let mut pts = vec![0f32; 136];
    for i in 0..68 {
        let (x, y) = if (48..68).contains(&i) {
            let a = i as f32 / 20.0 * std::f32::consts::TAU;
            (40.0 + 6.0 * a.cos(), 170.0 + 4.0 * a.sin())
        } else {
            (70.0 + (i % 10) as f32 * 4.0, 110.0)
        };
        pts[2 * i] = x;
        pts[2 * i + 1] = y;
    }
    let csv = tmp.path().join("lm68.csv");
    let row: Vec<String> = pts.iter().map(|v| v.to_string()).collect();
    std::fs::write(&csv, format!("000001.jpg,{}\n", row.join(","))).unwrap();
    let lm68 = diat_celeba::masks::read_landmarks_68(&csv).unwrap();
    let layout = Layout::detect(&root).unwrap();
    let ann = Annotations::load(&layout).unwrap();
    let reader = ImageReader::open(layout.images.as_ref().unwrap()).unwrap();
    let cfg = BuildConfig {
        landmarks68: Some(std::sync::Arc::new(lm68)),
        ..Default::default()
    };
    let out = tmp.path().join("m");
    build_store(
        &reader,
        &ann,
        &[0, 1],
        &out,
        "input",
        Some("mouth_open"),
        Some(diat_celeba::masks::Region::Mouth),
        0,
        serde_json::json!({}),
        &cfg,
    )
    .unwrap();
    let s = Store::open(&out).unwrap();
    let crop = CropSpec::default();
    let at = |m: &[u8], x: f32, y: f32| {
        let (cx, cy) = crop.map_point(x, y);
        m[cy.round() as usize * 128 + cx.round() as usize]
    };
    let m0 = s.mask(0).unwrap();
    assert_eq!(at(m0, 40.0, 170.0), 255, "68-point mouth hull");
    assert_eq!(at(m0, 90.0, 153.0), 0, "not the 5-point mouth");
    let m1 = s.mask(1).unwrap();
    assert_eq!(
        at(m1, 89.0, 152.0),
        255,
        "image 2 falls back to its 5 landmarks"
    );
    let e =
        diat_celeba::masks::read_landmarks_68(&root.join("Anno/list_attr_celeba.txt")).unwrap_err();
    assert!(
        e.to_string().contains(":1:") || e.to_string().contains(":3:"),
        "{e}"
    );
}
