//! The data sets of the classification example: the embedded digits (size, range, a
//! deterministic stratified partition), MNIST and CIFAR-10 read back from tiny files written
//! here in their exact formats (plain and gzipped), and one typed error per kind of damage.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use altdiff_examples::datasets::{self, Dataset, DatasetError, NAMES, Split};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

// ---------------------------------------------------------------- helpers

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Asserts that `x` (a loaded pixel) is `byte / 255`.
fn assert_pixels(loaded: &[f32], bytes: &[u8]) {
    assert_eq!(loaded.len(), bytes.len());
    for (k, (&x, &b)) in loaded.iter().zip(bytes).enumerate() {
        let want = f32::from(b) / 255.0;
        assert!(
            (x - want).abs() <= 1e-6,
            "pixel {k}: {x}, expected {want} (byte {b})"
        );
    }
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// Content of a loaded digits image as integers 0..=16 (exact: pixels are k / 16).
fn digit_key(split: &Split, i: usize) -> (Vec<u8>, u8) {
    let pixels = split
        .image(i)
        .iter()
        .map(|&x| {
            let v = x * 16.0;
            assert!(
                (v - v.round()).abs() < 1e-6 && (0.0..=16.0).contains(&v),
                "{x}"
            );
            v.round() as u8
        })
        .collect();
    (pixels, split.labels[i])
}

// ---------------------------------------------------------------- digits

#[test]
fn digits_has_1797_images_of_64_pixels_in_unit_range_and_10_classes() {
    let data = datasets::digits(0).unwrap();
    assert_eq!(data.name, "digits");
    assert_eq!(data.classes, 10);
    assert_eq!(data.image_shape, (1, 8, 8));
    assert_eq!(data.train.len() + data.test.len(), 1797);
    for split in [&data.train, &data.test] {
        assert_eq!(split.dim, 64);
        assert!(!split.is_empty());
        assert_eq!(split.images.len(), split.len() * 64);
        assert!(split.images.iter().all(|&x| (0.0..=1.0).contains(&x)));
        assert!(split.labels.iter().all(|&l| l < 10));
    }
    // Not all black or all saturated: 0 and 16 both occur.
    assert!(data.train.images.contains(&0.0));
    assert!(data.train.images.contains(&1.0));
    assert_eq!(
        data.to_string(),
        "digits: 1438 train / 359 test images of 1x8x8, 10 classes"
    );
}

#[test]
fn digits_split_is_stratified_20_percent_per_class() {
    let data = datasets::digits(5).unwrap();
    let count = |labels: &[u8], c: u8| labels.iter().filter(|&&l| l == c).count();
    for c in 0..10u8 {
        let (train, test) = (count(&data.train.labels, c), count(&data.test.labels, c));
        let total = train + test;
        assert!(total > 150, "class {c}: {total} images");
        // round(total / 5)
        assert_eq!(
            test,
            (total * 2 + 5) / 10,
            "class {c}: {test} of {total} in test"
        );
    }
}

#[test]
fn digits_split_is_a_partition_of_the_file() {
    // Read the CSV independently of the loader.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv.gz");
    let mut text = String::new();
    GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut in_file: HashMap<(Vec<u8>, u8), usize> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let values: Vec<u8> = line.split(',').map(|v| v.trim().parse().unwrap()).collect();
        assert_eq!(values.len(), 65);
        *in_file
            .entry((values[..64].to_vec(), values[64]))
            .or_default() += 1;
    }
    assert_eq!(in_file.values().sum::<usize>(), 1797);

    let data = datasets::digits(11).unwrap();
    let mut in_train: HashMap<(Vec<u8>, u8), usize> = HashMap::new();
    let mut in_test = in_train.clone();
    for i in 0..data.train.len() {
        *in_train.entry(digit_key(&data.train, i)).or_default() += 1;
    }
    for i in 0..data.test.len() {
        *in_test.entry(digit_key(&data.test, i)).or_default() += 1;
    }
    // Every row of the file is in exactly one split (as many times as it occurs in the file),
    // with its own label and pixels in their order.
    for (key, &n) in &in_file {
        let (tr, te) = (
            in_train.get(key).copied().unwrap_or(0),
            in_test.get(key).copied().unwrap_or(0),
        );
        assert_eq!(tr + te, n, "row {key:?}");
    }
    assert_eq!(
        in_train.values().sum::<usize>() + in_test.values().sum::<usize>(),
        1797
    );
    assert!(
        in_train
            .keys()
            .chain(in_test.keys())
            .all(|k| in_file.contains_key(k))
    );
    // Rows that occur once are not in both splits.
    let shared = in_train
        .keys()
        .filter(|k| in_test.contains_key(*k) && in_file[*k] == 1)
        .count();
    assert_eq!(shared, 0);
}

#[test]
fn digits_is_deterministic_for_a_seed_and_different_for_another() {
    let a = datasets::digits(42).unwrap();
    let b = datasets::digits(42).unwrap();
    assert!(a == b, "same seed, different data");
    let c = datasets::digits(43).unwrap();
    assert_eq!(c.train.len(), a.train.len());
    assert_ne!(c.test.labels, a.test.labels);
    assert!(c.test.images != a.test.images);
    // Different members, not only a different order.
    let keys = |s: &Split| {
        let mut k: Vec<_> = (0..s.len()).map(|i| digit_key(s, i)).collect();
        k.sort();
        k
    };
    assert_ne!(keys(&a.test), keys(&c.test));
    // The splits are shuffled: the training labels are not sorted by class.
    assert!(a.train.labels.windows(2).any(|w| w[0] > w[1]));
}

// ---------------------------------------------------------------- batches

fn tiny_split() -> Split {
    // 7 images of 2 pixels: image i is [i, i + 0.5] / 10, label i.
    Split {
        images: (0..7)
            .flat_map(|i| [i as f32 / 10.0, (i as f32 + 0.5) / 10.0])
            .collect(),
        labels: (0..7).collect(),
        dim: 2,
    }
}

#[test]
fn batches_in_order_cover_the_split_with_a_smaller_last_batch() {
    let split = tiny_split();
    let batches = split.batches(3, None);
    assert_eq!(batches.len(), 3);
    let batches: Vec<_> = batches.collect();
    let sizes: Vec<usize> = batches.iter().map(|(_, y)| y.len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let images: Vec<f32> = batches.iter().flat_map(|(x, _)| x.clone()).collect();
    let labels: Vec<u8> = batches.iter().flat_map(|(_, y)| y.clone()).collect();
    assert!(images == split.images);
    assert_eq!(labels, split.labels);
    assert_eq!(split.batches(7, None).count(), 1);
    assert_eq!(split.batches(100, None).count(), 1);
    assert_eq!(Split::default().batches(4, Some(1)).count(), 0);
}

#[test]
fn shuffled_batches_are_a_seeded_permutation_with_images_kept_with_their_labels() {
    let split = tiny_split();
    let run = |seed| -> Vec<(Vec<f32>, Vec<u8>)> { split.batches(2, Some(seed)).collect() };
    let a = run(9);
    assert_eq!(a.len(), 4);
    assert!(a == run(9));
    let order =
        |b: &[(Vec<f32>, Vec<u8>)]| -> Vec<u8> { b.iter().flat_map(|(_, y)| y.clone()).collect() };
    let mut seen = order(&a);
    assert_ne!(seen, split.labels, "seed 9 left the order unchanged");
    assert!((0..20).any(|s| order(&run(s)) != order(&a)));
    seen.sort();
    assert_eq!(seen, split.labels);
    for (images, labels) in &a {
        assert_eq!(images.len(), labels.len() * 2);
        for (x, &l) in images.chunks(2).zip(labels) {
            assert_eq!(x, split.image(usize::from(l)));
        }
    }
}

#[test]
#[should_panic(expected = "batch_size")]
fn batches_of_zero_panic() {
    let _ = tiny_split().batches(0, None);
}

// ---------------------------------------------------------------- MNIST

const MNIST_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

fn idx_images_with_magic(magic: u32, count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [magic, count, rows, cols] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    idx_images_with_magic(2051, count, rows, cols, pixels)
}

fn idx_labels_with(magic: u32, count: u32, labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&magic.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(labels);
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    idx_labels_with(2049, labels.len() as u32, labels)
}

/// Tiny MNIST: images of 2 rows x 3 columns (not square, so rows and columns cannot be
/// confused), 3 training and 2 test images, every pixel different.
struct Mnist {
    train_pixels: Vec<u8>,
    train_labels: Vec<u8>,
    test_pixels: Vec<u8>,
    test_labels: Vec<u8>,
}

impl Mnist {
    fn new() -> Self {
        let mut train_pixels: Vec<u8> = (0..18).map(|k| (k * 14 + 3) as u8).collect();
        train_pixels[0] = 0;
        train_pixels[17] = 255;
        Self {
            train_pixels,
            train_labels: vec![3, 0, 9],
            test_pixels: (0..12).map(|k| (250 - k * 17) as u8).collect(),
            test_labels: vec![7, 1],
        }
    }

    /// The four files' contents, in the order of [`MNIST_NAMES`].
    fn files(&self) -> [Vec<u8>; 4] {
        [
            idx_images(3, 2, 3, &self.train_pixels),
            idx_labels(&self.train_labels),
            idx_images(2, 2, 3, &self.test_pixels),
            idx_labels(&self.test_labels),
        ]
    }

    /// Writes the files (`gzip[k]`: file k gzipped, with a `.gz` suffix).
    fn write(&self, dir: &Path, gzip: [bool; 4]) {
        for ((name, bytes), gzip) in MNIST_NAMES.iter().zip(self.files()).zip(gzip) {
            if gzip {
                write(dir, &format!("{name}.gz"), &gz(&bytes));
            } else {
                write(dir, name, &bytes);
            }
        }
    }

    fn check(&self, data: &Dataset) {
        assert_eq!(data.name, "mnist");
        assert_eq!(data.classes, 10);
        assert_eq!(data.image_shape, (1, 2, 3));
        assert_eq!((data.train.len(), data.test.len()), (3, 2));
        assert_eq!((data.train.dim, data.test.dim), (6, 6));
        assert_eq!(data.train.labels, self.train_labels);
        assert_eq!(data.test.labels, self.test_labels);
        assert_pixels(&data.train.images, &self.train_pixels);
        assert_pixels(&data.test.images, &self.test_pixels);
        assert_pixels(data.train.image(1), &self.train_pixels[6..12]);
        assert_eq!(data.train.images[0].to_bits(), 0.0f32.to_bits());
        assert_eq!(data.train.images[17].to_bits(), 1.0f32.to_bits());
    }
}

#[test]
fn mnist_plain_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = Mnist::new();
    mnist.write(dir.path(), [false; 4]);
    let data = datasets::mnist(dir.path()).unwrap();
    mnist.check(&data);
    let via_load = datasets::load("mnist", Some(dir.path()), 123).unwrap();
    assert!(via_load == data);
}

#[test]
fn mnist_gzipped_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = Mnist::new();
    mnist.write(dir.path(), [true; 4]);
    mnist.check(&datasets::mnist(dir.path()).unwrap());
}

#[test]
fn mnist_mixed_plain_and_gzipped_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = Mnist::new();
    mnist.write(dir.path(), [true, false, false, true]);
    mnist.check(&datasets::mnist(dir.path()).unwrap());
}

#[test]
fn mnist_prefers_the_plain_file_to_the_gzipped_one() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = Mnist::new();
    mnist.write(dir.path(), [false; 4]);
    write(dir.path(), "train-images-idx3-ubyte.gz", b"not even gzip");
    mnist.check(&datasets::mnist(dir.path()).unwrap());
}

/// Writes the valid tiny MNIST, replaces file `k` with `bytes` (plain), loads.
fn mnist_with(k: usize, bytes: &[u8]) -> (DatasetError, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    Mnist::new().write(dir.path(), [false; 4]);
    let path = write(dir.path(), MNIST_NAMES[k], bytes);
    let err = datasets::mnist(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(MNIST_NAMES[k]), "{message}");
    (err, path)
}

#[test]
fn mnist_missing_file_is_named_with_both_names_tried() {
    let dir = tempfile::tempdir().unwrap();
    Mnist::new().write(dir.path(), [false; 4]);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let err = datasets::mnist(dir.path()).unwrap_err();
    let message = err.to_string();
    match err {
        DatasetError::Missing { path, tried } => {
            assert_eq!(path, dir.path().join("t10k-labels-idx1-ubyte"));
            assert_eq!(
                tried,
                [path.clone(), dir.path().join("t10k-labels-idx1-ubyte.gz")]
            );
        }
        other => panic!("expected Missing, got {other:?}"),
    }
    assert!(
        message.contains("t10k-labels-idx1-ubyte: missing"),
        "{message}"
    );

    let empty = tempfile::tempdir().unwrap();
    let err = datasets::mnist(&empty.path().join("no-such-dir")).unwrap_err();
    assert!(
        matches!(&err, DatasetError::Missing { path, .. } if file_name(path) == "train-images-idx3-ubyte"),
        "{err:?}"
    );
}

#[test]
fn mnist_bad_magic_numbers() {
    let m = Mnist::new();
    // Images file with the labels' magic.
    let (err, path) = mnist_with(0, &idx_images_with_magic(2049, 3, 2, 3, &m.train_pixels));
    match err {
        DatasetError::BadMagic {
            path: p,
            expected,
            found,
        } => assert_eq!((p, expected, found), (path, 2051, 2049)),
        other => panic!("{other:?}"),
    }
    // Magic written little-endian.
    let mut bytes = idx_images(2, 2, 3, &m.test_pixels);
    bytes[..4].copy_from_slice(&2051u32.to_le_bytes());
    let (err, _) = mnist_with(2, &bytes);
    assert!(
        matches!(
            err,
            DatasetError::BadMagic {
                expected: 2051,
                found: 0x0308_0000,
                ..
            }
        ),
        "{err:?}"
    );
    // Labels file with the images' magic.
    let (err, _) = mnist_with(1, &idx_labels_with(2051, 3, &m.train_labels));
    assert!(
        matches!(
            err,
            DatasetError::BadMagic {
                expected: 2049,
                found: 2051,
                ..
            }
        ),
        "{err:?}"
    );
    // An empty file is truncated (no magic to read).
    let (err, _) = mnist_with(3, &[]);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 8,
                found: 0,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn mnist_truncated_and_overlong_files() {
    let m = Mnist::new();
    let full = idx_images(3, 2, 3, &m.train_pixels);
    let (err, _) = mnist_with(0, &full[..full.len() - 1]);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 34,
                found: 33,
                ..
            }
        ),
        "{err:?}"
    );
    let (err, _) = mnist_with(0, &full[..10]);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 16,
                found: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let mut longer = full.clone();
    longer.push(0);
    let (err, _) = mnist_with(0, &longer);
    assert!(
        matches!(
            err,
            DatasetError::TrailingBytes {
                expected: 34,
                found: 35,
                ..
            }
        ),
        "{err:?}"
    );
    let labels = idx_labels(&m.test_labels);
    let (err, _) = mnist_with(3, &labels[..labels.len() - 1]);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 10,
                found: 9,
                ..
            }
        ),
        "{err:?}"
    );
    // A count that only fits read little-endian: 3 << 24 images.
    let mut swapped = full.clone();
    swapped[4..8].copy_from_slice(&3u32.to_le_bytes());
    let (err, _) = mnist_with(0, &swapped);
    assert!(matches!(err, DatasetError::Truncated { .. }), "{err:?}");
    // A zero image side.
    let (err, _) = mnist_with(2, &idx_images(2, 0, 3, &[]));
    assert!(matches!(err, DatasetError::BadHeader { .. }), "{err:?}");
}

#[test]
fn mnist_label_out_of_range() {
    let (err, _) = mnist_with(1, &idx_labels(&[3, 0, 10]));
    assert!(
        matches!(
            err,
            DatasetError::LabelOutOfRange {
                index: 2,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let (err, _) = mnist_with(3, &idx_labels(&[255, 0]));
    assert!(
        matches!(
            err,
            DatasetError::LabelOutOfRange {
                index: 0,
                label: 255,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn mnist_count_and_shape_mismatches() {
    let m = Mnist::new();
    let (err, _) = mnist_with(1, &idx_labels(&[3, 0]));
    match err {
        DatasetError::CountMismatch {
            images_path,
            images,
            labels_path,
            labels,
        } => {
            assert_eq!((images, labels), (3, 2));
            assert_eq!(file_name(&images_path), "train-images-idx3-ubyte");
            assert_eq!(file_name(&labels_path), "train-labels-idx1-ubyte");
        }
        other => panic!("{other:?}"),
    }
    // Test images of 3 x 2 against training images of 2 x 3.
    let (err, _) = mnist_with(2, &idx_images(2, 3, 2, &m.test_pixels));
    assert!(
        matches!(
            err,
            DatasetError::ShapeMismatch {
                expected: (2, 3),
                found: (3, 2),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn mnist_corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    Mnist::new().write(dir.path(), [false, false, true, false]);
    let path = dir.path().join("t10k-images-idx3-ubyte.gz");
    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let err = datasets::mnist(dir.path()).unwrap_err();
    assert!(
        matches!(&err, DatasetError::Gzip { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("t10k-images-idx3-ubyte.gz"),
        "{err}"
    );
}

// ---------------------------------------------------------------- CIFAR-10

/// Byte `(c, y, x)` of record `r`: different across channels, rows, columns and records.
fn cifar_byte(r: usize, c: usize, y: usize, x: usize) -> u8 {
    ((r * 71 + c * 97 + y * 5 + x * 3) % 256) as u8
}

fn cifar_record(r: usize, label: u8) -> Vec<u8> {
    let mut out = vec![label];
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                out.push(cifar_byte(r, c, y, x));
            }
        }
    }
    out
}

/// Records per file: `(record id, label)`.
const CIFAR_FILES: [(&str, &[(usize, u8)]); 6] = [
    ("data_batch_1.bin", &[(0, 1)]),
    ("data_batch_2.bin", &[(1, 2), (2, 9)]),
    ("data_batch_3.bin", &[(3, 3)]),
    ("data_batch_4.bin", &[(4, 4)]),
    ("data_batch_5.bin", &[(5, 0)]),
    ("test_batch.bin", &[(6, 8), (7, 5)]),
];

fn cifar_file(records: &[(usize, u8)]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|&(r, l)| cifar_record(r, l))
        .collect()
}

fn write_cifar(dir: &Path) {
    for (name, records) in CIFAR_FILES {
        write(dir, name, &cifar_file(records));
    }
}

fn check_cifar(data: &Dataset) {
    assert_eq!(data.name, "cifar-10");
    assert_eq!((data.classes, data.image_shape), (10, (3, 32, 32)));
    assert_eq!((data.train.dim, data.test.dim), (3072, 3072));
    assert_eq!(data.train.labels, [1, 2, 9, 3, 4, 0]);
    assert_eq!(data.test.labels, [8, 5]);
    for (split, first_record) in [(&data.train, 0), (&data.test, 6)] {
        assert_eq!(split.images.len(), split.len() * 3072);
        for i in 0..split.len() {
            let image = split.image(i);
            for c in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        let want = f32::from(cifar_byte(first_record + i, c, y, x)) / 255.0;
                        let got = image[c * 1024 + y * 32 + x];
                        assert!((got - want).abs() <= 1e-6, "image {i} ({c}, {y}, {x})");
                    }
                }
            }
        }
    }
}

#[test]
fn cifar10_round_trips_channel_major_images_in_batch_order() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path());
    let data = datasets::cifar10(dir.path()).unwrap();
    check_cifar(&data);
    assert!(datasets::load("cifar-10", Some(dir.path()), 0).unwrap() == data);
}

#[test]
fn cifar10_reads_the_archive_subdirectory_and_gzipped_batches() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("cifar-10-batches-bin");
    write_cifar(&sub);
    check_cifar(&datasets::cifar10(dir.path()).unwrap());
    check_cifar(&datasets::cifar10(&sub).unwrap());
    let path = sub.join("data_batch_2.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, gz(&bytes)).unwrap();
    check_cifar(&datasets::cifar10(dir.path()).unwrap());
}

/// Writes the valid tiny CIFAR-10, replaces `name` with `bytes`, loads.
fn cifar_with(name: &str, bytes: &[u8]) -> DatasetError {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path());
    write(dir.path(), name, bytes);
    let err = datasets::cifar10(dir.path()).unwrap_err();
    assert!(err.to_string().contains(name), "{err}");
    err
}

#[test]
fn cifar10_missing_batch() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path());
    std::fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
    let err = datasets::cifar10(dir.path()).unwrap_err();
    match &err {
        DatasetError::Missing { path, tried } => {
            assert_eq!(*path, dir.path().join("data_batch_3.bin"));
            assert_eq!(
                *tried,
                [
                    path.clone(),
                    dir.path().join("cifar-10-batches-bin/data_batch_3.bin")
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("data_batch_3.bin: missing"),
        "{err}"
    );
}

#[test]
fn cifar10_truncated_and_partial_records() {
    let good = cifar_file(CIFAR_FILES[1].1);
    let err = cifar_with("data_batch_2.bin", &good[..good.len() - 1]);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 6146,
                found: 6145,
                ..
            }
        ),
        "{err:?}"
    );
    let mut longer = good.clone();
    longer.push(1);
    let err = cifar_with("data_batch_2.bin", &longer);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 9219,
                found: 6147,
                ..
            }
        ),
        "{err:?}"
    );
    let err = cifar_with("test_batch.bin", &[]);
    assert!(
        matches!(
            err,
            DatasetError::Truncated {
                expected: 3073,
                found: 0,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn cifar10_label_out_of_range() {
    let err = cifar_with("data_batch_2.bin", &cifar_file(&[(1, 2), (2, 10)]));
    assert!(
        matches!(
            err,
            DatasetError::LabelOutOfRange {
                index: 1,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- load

#[test]
fn load_dispatches_by_name() {
    assert!(datasets::load("digits", None, 4).unwrap() == datasets::digits(4).unwrap());
    let dir = tempfile::tempdir().unwrap();
    // The directory is ignored for the embedded digits.
    assert_eq!(
        datasets::load("digits", Some(dir.path()), 4).unwrap().name,
        "digits"
    );
    for name in ["mnist", "cifar-10"] {
        let err = datasets::load(name, None, 0).unwrap_err();
        assert!(matches!(&err, DatasetError::NeedsDirectory { name: n } if n == name));
        let err = datasets::load(name, Some(dir.path()), 0).unwrap_err();
        assert!(matches!(err, DatasetError::Missing { .. }), "{err:?}");
    }
    let err = datasets::load("MNIST", None, 0).unwrap_err();
    assert!(matches!(&err, DatasetError::UnknownName { name } if name == "MNIST"));
    let message = err.to_string();
    for name in NAMES {
        assert!(message.contains(name), "{message}");
    }
}
