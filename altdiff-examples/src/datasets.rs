//! Image classification data sets: the embedded UCI digits (the offline default), MNIST and
//! CIFAR-10 read from their original files.
//!
//! Every loader returns a [`Dataset`]: a train and a test [`Split`] whose images are
//! flattened row-major into `f32` in `[0, 1]`, labels `0..classes`, and the shape of one image
//! as `(channels, height, width)`.
//!
//! | name (for [`load`]) | loader | where from | train / test | image shape |
//! |---|---|---|---|---|
//! | `digits` | [`digits`] | embedded in the binary (`data/digits.csv.gz`, UCI, CC BY 4.0) | 1438 / 359: 20 % of each class, shuffled by a seed | 1 x 8 x 8 |
//! | `mnist` | [`mnist`] | the four IDX files in a directory, plain or `.gz` | the files' own, 60 000 / 10 000 | 1 x 28 x 28 |
//! | `cifar-10` | [`cifar10`] | the binary version, `data_batch_{1..5}.bin` and `test_batch.bin` | 50 000 / 10 000 | 3 x 32 x 32, channel-major |
//!
//! A missing or malformed file is a [`DatasetError`] naming the file and what is wrong; the
//! loaders never panic on bad input. Gzip-compressed content (recognized by its magic bytes,
//! whatever the file is called) is decompressed on the fly.
//!
//! # Example
//! ```
//! use altdiff_examples::datasets::{self, DatasetError};
//!
//! let data = datasets::load("digits", None, 42)?;
//! assert_eq!((data.classes, data.image_shape), (10, (1, 8, 8)));
//! for (images, labels) in data.train.batches(128, Some(0)) {
//!     assert_eq!(images.len(), labels.len() * data.train.dim);
//! }
//! # Ok::<(), DatasetError>(())
//! ```

use crate::rng::{SplitMix64, shuffle};
use std::fmt;
use std::io::{self, Read};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

/// The names [`load`] accepts.
pub const NAMES: [&str; 3] = ["digits", "mnist", "cifar-10"];

/// The UCI digits, gzipped CSV (see `altdiff-examples/data/README.md` for source and license).
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// How the embedded digits file is named in errors.
const DIGITS_SOURCE: &str = "data/digits.csv.gz (embedded)";

/// Pixels per digits image (8 x 8).
const DIGITS_DIM: usize = 64;

/// The largest pixel value of the digits (counts of set pixels in 4 x 4 blocks).
const DIGITS_MAX: u8 = 16;

/// Number of classes of all three data sets.
const CLASSES: usize = 10;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;

/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Bytes per CIFAR-10 image, 3 channels of 32 x 32.
const CIFAR_DIM: usize = 3 * 32 * 32;

/// Bytes per CIFAR-10 record: the label, then the image.
const CIFAR_RECORD: usize = 1 + CIFAR_DIM;

/// The subdirectory the CIFAR-10 archive unpacks to.
const CIFAR_SUBDIR: &str = "cifar-10-batches-bin";

/// A data set: train and test images with their labels.
///
/// # Example
/// ```
/// let data = altdiff_examples::datasets::digits(0)?;
/// assert_eq!(data.name, "digits");
/// assert_eq!(data.train.dim, 1 * 8 * 8);
/// println!("{data}"); // digits: 1438 train / 359 test images of 1x8x8, 10 classes
/// # Ok::<(), altdiff_examples::datasets::DatasetError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The name, one of [`NAMES`].
    pub name: String,
    /// The training images.
    pub train: Split,
    /// The test images.
    pub test: Split,
    /// Number of classes; every label is below it.
    pub classes: usize,
    /// The shape of one image, `(channels, height, width)`; its product is the splits' `dim`.
    pub image_shape: (usize, usize, usize),
}

impl fmt::Display for Dataset {
    /// One line: name, sizes, image shape, classes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, h, w) = self.image_shape;
        write!(
            f,
            "{}: {} train / {} test images of {c}x{h}x{w}, {} classes",
            self.name,
            self.train.len(),
            self.test.len(),
            self.classes
        )
    }
}

/// Images and labels: image `i` is `images[i * dim..(i + 1) * dim]` (an `N x dim` row-major
/// matrix), with label `labels[i]`. Pixels are in `[0, 1]`, laid out as the data set's
/// `image_shape` says: channel-major, then rows, then columns.
///
/// The methods assume `images.len() == labels.len() * dim`, which the loaders guarantee.
///
/// # Example
/// ```
/// use altdiff_examples::datasets::Split;
/// let split = Split { images: vec![0.0, 0.5, 1.0, 0.25], labels: vec![3, 7], dim: 2 };
/// assert_eq!(split.len(), 2);
/// assert_eq!(split.image(1), &[1.0, 0.25]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// `len() x dim` pixels, row-major (one image per row).
    pub images: Vec<f32>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Pixels per image.
    pub dim: usize,
}

impl Split {
    /// Number of images.
    ///
    /// # Example
    /// ```
    /// let data = altdiff_examples::datasets::digits(0)?;
    /// assert_eq!(data.train.len() + data.test.len(), 1797);
    /// # Ok::<(), altdiff_examples::datasets::DatasetError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    ///
    /// # Example
    /// ```
    /// assert!(altdiff_examples::datasets::Split::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::datasets::Split;
    /// let split = Split { images: vec![0.0, 0.5, 1.0, 0.25], labels: vec![3, 7], dim: 2 };
    /// assert_eq!(split.image(0), &[0.0, 0.5]);
    /// ```
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.dim..(i + 1) * self.dim]
    }

    /// Mini-batches of `batch_size` images (the last one may be smaller), copied out as
    /// `(images, labels)`: `images` is `labels.len() x dim` row-major, like [`Split::images`].
    ///
    /// With `shuffle_seed = None` the batches follow the split's order; with `Some(seed)` the
    /// images are visited in a random permutation that depends only on `seed` (pass a new seed
    /// per epoch, e.g. `Some(epoch)`). Either way every image appears exactly once.
    ///
    /// # Panics
    /// If `batch_size == 0`.
    ///
    /// # Example
    /// ```
    /// use altdiff_examples::datasets::Split;
    /// let split = Split { images: (0..10).map(|v| v as f32 / 10.0).collect(),
    ///                     labels: vec![0, 1, 2, 3, 4], dim: 2 };
    /// let batches: Vec<_> = split.batches(2, None).collect();
    /// assert_eq!(batches.len(), 3);
    /// assert_eq!(batches[2].1, vec![4]);
    /// assert_eq!(batches[0].0, vec![0.0, 0.1, 0.2, 0.3]);
    ///
    /// let mut seen: Vec<u8> = split.batches(2, Some(7)).flat_map(|(_, y)| y).collect();
    /// seen.sort();
    /// assert_eq!(seen, split.labels);
    /// ```
    pub fn batches(&self, batch_size: usize, shuffle_seed: Option<u64>) -> Batches<'_> {
        assert!(
            batch_size > 0,
            "Split::batches: batch_size must be at least 1"
        );
        let order = shuffle_seed.map(|seed| {
            let mut order: Vec<usize> = (0..self.len()).collect();
            shuffle(&mut order, &mut SplitMix64(seed));
            order
        });
        Batches {
            split: self,
            order,
            batch_size,
            next: 0,
        }
    }
}

/// The iterator of [`Split::batches`]: `(images, labels)` per mini-batch.
///
/// # Example
/// ```
/// use altdiff_examples::datasets::Split;
/// let split = Split { images: vec![0.0; 7 * 3], labels: vec![0; 7], dim: 3 };
/// assert_eq!(split.batches(3, Some(1)).len(), 3); // 3 + 3 + 1
/// ```
#[derive(Clone, Debug)]
#[must_use = "iterators are lazy"]
pub struct Batches<'a> {
    split: &'a Split,
    /// The visiting order when shuffled; the split's own order when `None`.
    order: Option<Vec<usize>>,
    batch_size: usize,
    /// Position (in the visiting order) of the next batch's first image.
    next: usize,
}

impl Iterator for Batches<'_> {
    type Item = (Vec<f32>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        let (split, start) = (self.split, self.next);
        if start >= split.len() {
            return None;
        }
        let end = (start + self.batch_size).min(split.len());
        self.next = end;
        Some(match &self.order {
            None => (
                split.images[start * split.dim..end * split.dim].to_vec(),
                split.labels[start..end].to_vec(),
            ),
            Some(order) => {
                let picked = &order[start..end];
                let mut images = Vec::with_capacity(picked.len() * split.dim);
                for &i in picked {
                    images.extend_from_slice(split.image(i));
                }
                (images, picked.iter().map(|&i| split.labels[i]).collect())
            }
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self
            .split
            .len()
            .saturating_sub(self.next)
            .div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

impl FusedIterator for Batches<'_> {}

/// Why a data set could not be loaded. Every file error names the file.
///
/// # Example
/// ```
/// use altdiff_examples::datasets::{load, DatasetError};
/// let err = load("imagenet", None, 0).unwrap_err();
/// assert!(matches!(err, DatasetError::UnknownName { .. }));
/// assert_eq!(err.to_string(),
///            "unknown data set `imagenet`: expected one of digits, mnist, cifar-10");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A file does not exist under any of the names tried.
    #[error("{}: missing (looked for {})", .path.display(), display_paths(.tried))]
    Missing {
        /// The file's first (preferred) name.
        path: PathBuf,
        /// Every name tried, in order.
        tried: Vec<PathBuf>,
    },
    /// A file exists but could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file starts like gzip but does not decompress.
    #[error("{}: corrupt gzip data: {source}", .path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's complaint.
        #[source]
        source: io::Error,
    },
    /// An IDX file's magic number is not the expected one (2051 for images, 2049 for labels,
    /// big-endian).
    #[error("{}: bad magic number {found} ({found:#010x}), expected {expected} ({expected:#010x})", .path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number of that kind of file.
        expected: u32,
        /// The first four bytes of the file, big-endian.
        found: u32,
    },
    /// A header announces impossible sizes (a zero image side, or sizes that overflow).
    #[error("{}: bad header: {message}", .path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file is shorter than its header says, or (CIFAR-10) not a whole number of records.
    #[error("{}: truncated: {found} bytes, expected {expected}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The length it should have (at least).
        expected: u64,
        /// Its length (after decompression).
        found: u64,
    },
    /// A file is longer than its header says.
    #[error("{}: {found} bytes, more than the {expected} its header announces", .path.display())]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// The length its header announces.
        expected: u64,
        /// Its length (after decompression).
        found: u64,
    },
    /// A label is not below the number of classes.
    #[error("{}: label {label} of item {index} is out of range 0..{classes}", .path.display())]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// The item (image, record or data row), from 0.
        index: usize,
        /// The label found.
        label: u32,
        /// The number of classes.
        classes: usize,
    },
    /// An images file and its labels file disagree on the number of items.
    #[error("{} holds {images} images but {} holds {labels} labels", .images_path.display(), .labels_path.display())]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// Its number of images.
        images: usize,
        /// The labels file.
        labels_path: PathBuf,
        /// Its number of labels.
        labels: usize,
    },
    /// The test images do not have the training images' size.
    #[error("{}: images of {}x{}, but the training images are {}x{}", .path.display(), .found.0, .found.1, .expected.0, .expected.1)]
    ShapeMismatch {
        /// The test images file.
        path: PathBuf,
        /// `(rows, columns)` of the training images.
        expected: (usize, usize),
        /// `(rows, columns)` of the test images.
        found: (usize, usize),
    },
    /// A line of a CSV file is malformed.
    #[error("{}: line {line}: {message}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// [`load`] was given a name that is not in [`NAMES`].
    #[error("unknown data set `{name}`: expected one of {}", NAMES.join(", "))]
    UnknownName {
        /// The name given.
        name: String,
    },
    /// [`load`] was asked for a data set read from files, without a directory.
    #[error("the `{name}` data set is read from files: give the directory that holds them")]
    NeedsDirectory {
        /// The name given.
        name: String,
    },
}

/// `a, b, c` for a list of paths.
fn display_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Loads a data set by name: `"digits"` (embedded; `dir` is ignored), `"mnist"` or
/// `"cifar-10"` (from the files in `dir`). `seed` fixes the digits' train / test split; MNIST
/// and CIFAR-10 come with their own split and ignore it.
///
/// # Errors
/// [`DatasetError::UnknownName`] for a name not in [`NAMES`],
/// [`DatasetError::NeedsDirectory`] for `"mnist"` or `"cifar-10"` without `dir`, and the
/// loaders' errors.
///
/// # Example
/// ```
/// use altdiff_examples::datasets::{load, DatasetError};
/// let data = load("digits", None, 3)?;
/// assert_eq!(data.name, "digits");
/// assert!(matches!(load("mnist", None, 3), Err(DatasetError::NeedsDirectory { .. })));
/// # Ok::<(), DatasetError>(())
/// ```
pub fn load(name: &str, dir: Option<&Path>, seed: u64) -> Result<Dataset, DatasetError> {
    match (name, dir) {
        ("digits", _) => digits(seed),
        ("mnist", Some(dir)) => mnist(dir),
        ("cifar-10", Some(dir)) => cifar10(dir),
        ("mnist" | "cifar-10", None) => Err(DatasetError::NeedsDirectory {
            name: name.to_owned(),
        }),
        _ => Err(DatasetError::UnknownName {
            name: name.to_owned(),
        }),
    }
}

/// The UCI "Optical Recognition of Handwritten Digits" test set (1797 images of 8 x 8, 10
/// classes), embedded in the binary, so it needs no file or network.
///
/// Split into train and test by a fixed seed: in each class, 20 % of the images (rounded) go
/// to the test split, chosen by a shuffle seeded with `seed`; each split is then shuffled. The
/// same seed gives the same split on every platform and version of this crate (the shuffle
/// is SplitMix64 + Fisher-Yates, implemented here). Pixels, 0..16 in the file, are divided by
/// 16 (exact in `f32`).
///
/// # Errors
/// Only if the embedded file were corrupt ([`DatasetError::Gzip`],
/// [`DatasetError::Malformed`], [`DatasetError::LabelOutOfRange`]).
///
/// # Example
/// ```
/// use altdiff_examples::datasets::digits;
///
/// let data = digits(42)?;
/// assert_eq!((data.train.len(), data.test.len()), (1438, 359));
/// assert_eq!((data.classes, data.image_shape, data.train.dim), (10, (1, 8, 8), 64));
/// assert!(data.train.images.iter().all(|&x| (0.0..=1.0).contains(&x)));
/// assert_eq!(digits(42)?, data); // deterministic
/// assert_ne!(digits(43)?.test.labels, data.test.labels);
/// # Ok::<(), altdiff_examples::datasets::DatasetError>(())
/// ```
pub fn digits(seed: u64) -> Result<Dataset, DatasetError> {
    let path = PathBuf::from(DIGITS_SOURCE);
    let text = gunzip_if_needed(&path, DIGITS_CSV_GZ.to_vec())?;
    let (pixels, labels) = parse_digits_csv(&path, &text)?;

    // A stream of its own, so that `digits(s)` and `batches(.., Some(s))` do not share draws.
    let mut rng = SplitMix64(seed ^ 0x6469_6769_7473_0001);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..CLASSES {
        let mut members: Vec<usize> = (0..labels.len())
            .filter(|&i| usize::from(labels[i]) == class)
            .collect();
        shuffle(&mut members, &mut rng);
        let n_test = (members.len() + 2) / 5; // 20 %, rounded to nearest
        test.extend_from_slice(&members[..n_test]);
        train.extend_from_slice(&members[n_test..]);
    }
    shuffle(&mut train, &mut rng);
    shuffle(&mut test, &mut rng);

    let gather = |rows: &[usize]| Split {
        images: rows
            .iter()
            .flat_map(|&r| &pixels[r * DIGITS_DIM..(r + 1) * DIGITS_DIM])
            .map(|&p| f32::from(p) / f32::from(DIGITS_MAX))
            .collect(),
        labels: rows.iter().map(|&r| labels[r]).collect(),
        dim: DIGITS_DIM,
    };
    Ok(Dataset {
        name: "digits".to_owned(),
        train: gather(&train),
        test: gather(&test),
        classes: CLASSES,
        image_shape: (1, 8, 8),
    })
}

/// Parses the digits CSV: per line 64 pixels 0..=16, then the label 0..9. Returns the pixels
/// (row-major, one image per row) and the labels.
fn parse_digits_csv(path: &Path, text: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DatasetError> {
    let malformed = |line: usize, message: String| DatasetError::Malformed {
        path: path.to_path_buf(),
        line,
        message,
    };
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = 1 + text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        malformed(line, "not UTF-8 text".to_owned())
    })?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != DIGITS_DIM + 1 {
            return Err(malformed(
                line_no,
                format!("{} fields, expected {}", fields.len(), DIGITS_DIM + 1),
            ));
        }
        let mut values = Vec::with_capacity(fields.len());
        for (k, field) in fields.iter().enumerate() {
            let value: u32 = field.parse().map_err(|_| {
                malformed(
                    line_no,
                    format!("field {}: `{field}` is not an integer", k + 1),
                )
            })?;
            values.push(value);
        }
        for (k, &value) in values[..DIGITS_DIM].iter().enumerate() {
            match u8::try_from(value) {
                Ok(p) if p <= DIGITS_MAX => pixels.push(p),
                _ => {
                    return Err(malformed(
                        line_no,
                        format!("pixel {} is {value}, expected 0..={DIGITS_MAX}", k + 1),
                    ));
                }
            }
        }
        let label = values[DIGITS_DIM];
        match u8::try_from(label) {
            Ok(l) if usize::from(l) < CLASSES => labels.push(l),
            _ => {
                return Err(DatasetError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    index: labels.len(),
                    label,
                    classes: CLASSES,
                });
            }
        }
    }
    if labels.is_empty() {
        return Err(malformed(1, "no data rows".to_owned()));
    }
    Ok((pixels, labels))
}

/// MNIST (or a data set in the same format, e.g. Fashion-MNIST) from the IDX files in `dir`:
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each plain or gzipped with a `.gz` suffix (the plain name is
/// tried first).
///
/// Images files: magic 2051, then the number of images, rows and columns (big-endian `u32`),
/// then the pixels row-major, one byte each. Labels files: magic 2049, the number of labels,
/// one byte each. Every file's length must be exactly what its header says, each images file
/// must have as many items as its labels file, labels must be below 10, and the test images
/// the same size as the training images. Pixels are divided by 255; `image_shape` is
/// `(1, rows, columns)`, `(1, 28, 28)` for MNIST.
///
/// # Errors
/// [`DatasetError::Missing`], [`DatasetError::Io`], [`DatasetError::Gzip`],
/// [`DatasetError::BadMagic`], [`DatasetError::BadHeader`], [`DatasetError::Truncated`],
/// [`DatasetError::TrailingBytes`], [`DatasetError::LabelOutOfRange`],
/// [`DatasetError::CountMismatch`], [`DatasetError::ShapeMismatch`], each naming the file.
///
/// # Example
/// ```
/// use altdiff_examples::datasets::{mnist, DatasetError};
/// use std::path::Path;
///
/// match mnist(Path::new("data/mnist")) {
///     Ok(data) => assert_eq!(data.image_shape, (1, 28, 28)),
///     // e.g. "data/mnist/train-images-idx3-ubyte: missing (looked for
///     //       data/mnist/train-images-idx3-ubyte, data/mnist/train-images-idx3-ubyte.gz)"
///     Err(e) => assert!(matches!(e, DatasetError::Missing { .. }), "{e}"),
/// }
/// ```
pub fn mnist(dir: &Path) -> Result<Dataset, DatasetError> {
    let (train, shape) = mnist_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let (test, test_shape) = mnist_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    if test_shape != shape {
        return Err(DatasetError::ShapeMismatch {
            path: test.images_path,
            expected: shape,
            found: test_shape,
        });
    }
    Ok(Dataset {
        name: "mnist".to_owned(),
        train: train.split,
        test: test.split,
        classes: CLASSES,
        image_shape: (1, shape.0, shape.1),
    })
}

/// One MNIST split and the file its images came from.
struct MnistSplit {
    split: Split,
    images_path: PathBuf,
}

/// Reads one pair of IDX files; returns the split and `(rows, columns)`.
fn mnist_split(
    dir: &Path,
    images_name: &str,
    labels_name: &str,
) -> Result<(MnistSplit, (usize, usize)), DatasetError> {
    let with_gz = |name: &str| [dir.join(name), dir.join(format!("{name}.gz"))];
    let (images_path, images_bytes) = read_first(&with_gz(images_name))?;
    let (count, rows, cols) = parse_idx_images(&images_path, &images_bytes)?;
    let (labels_path, labels_bytes) = read_first(&with_gz(labels_name))?;
    let labels = parse_idx_labels(&labels_path, &labels_bytes)?;
    if labels.len() != count {
        return Err(DatasetError::CountMismatch {
            images_path,
            images: count,
            labels_path,
            labels: labels.len(),
        });
    }
    let split = Split {
        images: images_bytes[IDX_IMAGES_HEADER..]
            .iter()
            .map(|&b| f32::from(b) / 255.0)
            .collect(),
        labels: labels.to_vec(),
        dim: rows * cols,
    };
    Ok((MnistSplit { split, images_path }, (rows, cols)))
}

/// Bytes of an IDX images header: magic, count, rows, columns.
const IDX_IMAGES_HEADER: usize = 16;

/// Bytes of an IDX labels header: magic, count.
const IDX_LABELS_HEADER: usize = 8;

/// The big-endian `u32` at `at`; the caller has checked the length.
fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the magic number (when there are four bytes) and the header's length.
fn check_idx_header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    header: usize,
) -> Result<(), DatasetError> {
    if bytes.len() >= 4 && be_u32(bytes, 0) != magic {
        return Err(DatasetError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found: be_u32(bytes, 0),
        });
    }
    if bytes.len() < header {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            expected: header as u64,
            found: bytes.len() as u64,
        });
    }
    Ok(())
}

/// Checks that the file has exactly `header + body` bytes (`body` as announced).
fn check_idx_length(
    path: &Path,
    bytes: &[u8],
    header: usize,
    body: Option<u64>,
) -> Result<(), DatasetError> {
    let expected = body
        .and_then(|b| b.checked_add(header as u64))
        .ok_or_else(|| DatasetError::BadHeader {
            path: path.to_path_buf(),
            message: "the announced size overflows".to_owned(),
        })?;
    let found = bytes.len() as u64;
    if found < expected {
        Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
        })
    } else if found > expected {
        Err(DatasetError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            found,
        })
    } else {
        Ok(())
    }
}

/// Validates an IDX images file; returns `(count, rows, columns)`.
fn parse_idx_images(path: &Path, bytes: &[u8]) -> Result<(usize, usize, usize), DatasetError> {
    check_idx_header(path, bytes, IDX_IMAGES_MAGIC, IDX_IMAGES_HEADER)?;
    let [count, rows, cols] = [4, 8, 12].map(|at| be_u32(bytes, at));
    if rows == 0 || cols == 0 {
        return Err(DatasetError::BadHeader {
            path: path.to_path_buf(),
            message: format!("images of {rows}x{cols} pixels"),
        });
    }
    let body = u64::from(count)
        .checked_mul(u64::from(rows))
        .and_then(|n| n.checked_mul(u64::from(cols)));
    check_idx_length(path, bytes, IDX_IMAGES_HEADER, body)?;
    // The file's length fits in memory, so do count and rows * cols.
    Ok((count as usize, rows as usize, cols as usize))
}

/// Validates an IDX labels file (each label below 10); returns the labels.
fn parse_idx_labels<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], DatasetError> {
    check_idx_header(path, bytes, IDX_LABELS_MAGIC, IDX_LABELS_HEADER)?;
    let count = be_u32(bytes, 4);
    check_idx_length(path, bytes, IDX_LABELS_HEADER, Some(u64::from(count)))?;
    let labels = &bytes[IDX_LABELS_HEADER..];
    check_labels(path, labels.iter().copied().enumerate())?;
    Ok(labels)
}

/// The first label not below 10, as an error.
fn check_labels(
    path: &Path,
    mut labels: impl Iterator<Item = (usize, u8)>,
) -> Result<(), DatasetError> {
    match labels.find(|&(_, l)| usize::from(l) >= CLASSES) {
        Some((index, label)) => Err(DatasetError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: u32::from(label),
            classes: CLASSES,
        }),
        None => Ok(()),
    }
}

/// CIFAR-10, binary version (`cifar-10-binary.tar.gz` unpacked), from `dir` or
/// `dir/cifar-10-batches-bin/`: training images from `data_batch_1.bin` .. `data_batch_5.bin`
/// in that order, test images from `test_batch.bin` (each name is looked for in `dir` first).
///
/// Each file is a sequence of 3073-byte records: the label (below 10), then the image as
/// 3 x 32 x 32 bytes, channel-major (the 1024 red values row by row, then green, then blue).
/// The images keep that layout: `image_shape` is `(3, 32, 32)`, and pixel `(c, y, x)` of image
/// `i` is `images[i * 3072 + c * 1024 + y * 32 + x]`, divided by 255. A file's length must be a
/// positive multiple of 3073.
///
/// # Errors
/// [`DatasetError::Missing`], [`DatasetError::Io`], [`DatasetError::Gzip`],
/// [`DatasetError::Truncated`] (a length that is not a positive multiple of 3073),
/// [`DatasetError::LabelOutOfRange`], each naming the file.
///
/// # Example
/// ```
/// use altdiff_examples::datasets::{cifar10, DatasetError};
/// use std::path::Path;
///
/// match cifar10(Path::new("data/cifar-10")) {
///     Ok(data) => assert_eq!((data.train.len(), data.image_shape), (50_000, (3, 32, 32))),
///     Err(e) => assert!(matches!(e, DatasetError::Missing { .. }), "{e}"),
/// }
/// ```
pub fn cifar10(dir: &Path) -> Result<Dataset, DatasetError> {
    let mut train = Split {
        dim: CIFAR_DIM,
        ..Split::default()
    };
    for k in 1..=5 {
        read_cifar_batch(dir, &format!("data_batch_{k}.bin"), &mut train)?;
    }
    let mut test = Split {
        dim: CIFAR_DIM,
        ..Split::default()
    };
    read_cifar_batch(dir, "test_batch.bin", &mut test)?;
    Ok(Dataset {
        name: "cifar-10".to_owned(),
        train,
        test,
        classes: CLASSES,
        image_shape: (3, 32, 32),
    })
}

/// Appends the records of one CIFAR-10 batch file to `split`.
fn read_cifar_batch(dir: &Path, name: &str, split: &mut Split) -> Result<(), DatasetError> {
    let (path, bytes) = read_first(&[dir.join(name), dir.join(CIFAR_SUBDIR).join(name)])?;
    if bytes.is_empty() || bytes.len() % CIFAR_RECORD != 0 {
        return Err(DatasetError::Truncated {
            expected: ((bytes.len() / CIFAR_RECORD + 1) * CIFAR_RECORD) as u64,
            found: bytes.len() as u64,
            path,
        });
    }
    let records = bytes.chunks_exact(CIFAR_RECORD);
    check_labels(&path, records.clone().map(|r| r[0]).enumerate())?;
    split.labels.reserve(records.len());
    split.images.reserve(records.len() * CIFAR_DIM);
    for record in records {
        split.labels.push(record[0]);
        split
            .images
            .extend(record[1..].iter().map(|&b| f32::from(b) / 255.0));
    }
    Ok(())
}

/// Reads the first of `candidates` that exists, decompressed if gzipped; returns its path
/// and content. [`DatasetError::Missing`] names the first candidate and lists all.
fn read_first(candidates: &[PathBuf]) -> Result<(PathBuf, Vec<u8>), DatasetError> {
    for path in candidates {
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = gunzip_if_needed(path, bytes)?;
                return Ok((path.clone(), bytes));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(DatasetError::Io {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    Err(DatasetError::Missing {
        path: candidates.first().cloned().unwrap_or_default(),
        tried: candidates.to_vec(),
    })
}

/// Decompresses `bytes` if they start with the gzip magic (`1f 8b`), else returns them. Neither
/// IDX (`00 00 ..`), CIFAR-10 (label < 10) nor CSV text starts that way.
fn gunzip_if_needed(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, DatasetError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|source| DatasetError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}
