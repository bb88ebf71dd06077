//! NumPy `.npz` problem files: dtypes, orders, compression, absent blocks, bad archives;
//! `altdiff solve` gives the same result as for the JSON file of the same problem.

use std::path::{Path, PathBuf};
use std::process::Command;

use altdiff_core::testing::tiny_qp;
use altdiff_examples::CliError;
use altdiff_examples::npz_file::read_npz;
use altdiff_examples::problem_file::ProblemFile;
use npyz::WriterBuilder;
use zip::CompressionMethod;
use zip::write::FileOptions;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("altdiff-npz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// One array: name, shape, row-major values, dtype, order.
enum Dtype {
    F64,
    F32,
    I64,
}

struct Array<'a> {
    name: &'a str,
    shape: Vec<u64>,
    values: Vec<f64>,
    dtype: Dtype,
    fortran: bool,
}

fn write_npz(path: &Path, arrays: &[Array<'_>], compressed: bool) {
    let mut npz = npyz::npz::NpzWriter::create(path).unwrap();
    let options = FileOptions::default().compression_method(if compressed {
        CompressionMethod::Deflated
    } else {
        CompressionMethod::Stored
    });
    for a in arrays {
        // stored order: transpose 2-D data for Fortran order
        let stored: Vec<f64> = match (a.fortran, a.shape.as_slice()) {
            (true, &[r, c]) => (0..(r * c) as usize)
                .map(|k| a.values[(k % r as usize) * c as usize + k / r as usize])
                .collect(),
            _ => a.values.clone(),
        };
        let order = if a.fortran {
            npyz::Order::Fortran
        } else {
            npyz::Order::C
        };
        match a.dtype {
            Dtype::F64 => {
                let mut w = npz
                    .array::<f64>(a.name, options)
                    .unwrap()
                    .default_dtype()
                    .shape(&a.shape)
                    .order(order)
                    .begin_nd()
                    .unwrap();
                w.extend(stored).unwrap();
                w.finish().unwrap();
            }
            Dtype::F32 => {
                let mut w = npz
                    .array::<f32>(a.name, options)
                    .unwrap()
                    .default_dtype()
                    .shape(&a.shape)
                    .order(order)
                    .begin_nd()
                    .unwrap();
                w.extend(stored.iter().map(|v| *v as f32)).unwrap();
                w.finish().unwrap();
            }
            Dtype::I64 => {
                let mut w = npz
                    .array::<i64>(a.name, options)
                    .unwrap()
                    .default_dtype()
                    .shape(&a.shape)
                    .order(order)
                    .begin_nd()
                    .unwrap();
                w.extend(stored.iter().map(|v| *v as i64)).unwrap();
                w.finish().unwrap();
            }
        }
    }
}

fn tiny_arrays(dtype_p: fn() -> Dtype, fortran: bool) -> Vec<Array<'static>> {
    let qp = tiny_qp();
    let rows = |m: &altdiff_core::HostMatrix| m.to_rows().concat();
    vec![
        Array {
            name: "P",
            shape: vec![3, 3],
            values: rows(&qp.p),
            dtype: dtype_p(),
            fortran,
        },
        Array {
            name: "q",
            shape: vec![3],
            values: qp.q.clone(),
            dtype: Dtype::F64,
            fortran: false,
        },
        Array {
            name: "A",
            shape: vec![1, 3],
            values: rows(&qp.a),
            dtype: Dtype::I64,
            fortran,
        },
        Array {
            name: "b",
            shape: vec![1, 1],
            values: qp.b.clone(),
            dtype: Dtype::I64,
            fortran: false,
        },
        Array {
            name: "G",
            shape: vec![2, 3],
            values: rows(&qp.g),
            dtype: Dtype::F64,
            fortran,
        },
        Array {
            name: "h",
            shape: vec![2],
            values: qp.h.clone(),
            dtype: Dtype::F32,
            fortran: false,
        },
    ]
}

#[test]
fn reads_c_and_fortran_order_every_dtype_compressed_or_not() {
    let expected = tiny_qp();
    for (fortran, compressed) in [(false, false), (true, true), (true, false), (false, true)] {
        let path = temp(&format!("tiny-{fortran}-{compressed}.npz"));
        write_npz(&path, &tiny_arrays(|| Dtype::F64, fortran), compressed);
        let qp = read_npz(&path).unwrap();
        assert_eq!(qp.p, expected.p, "fortran {fortran}");
        assert_eq!(
            (qp.a.clone(), qp.g.clone()),
            (expected.a.clone(), expected.g.clone())
        );
        assert_eq!(qp.q, expected.q);
        assert!(
            (qp.h[0] - 0.5).abs() < 1e-7 && (qp.h[1] - 0.2).abs() < 1e-7,
            "f32 h"
        );
    }
    let path = temp("tiny-f32.npz");
    write_npz(&path, &tiny_arrays(|| Dtype::F32, false), false);
    assert!((read_npz(&path).unwrap().p.get(0, 1) - 0.5).abs() < 1e-7);
}

#[test]
fn constraint_blocks_may_be_absent() {
    let path = temp("free.npz");
    let arrays = vec![
        Array {
            name: "P",
            shape: vec![2, 2],
            values: vec![2.0, 0.0, 0.0, 4.0],
            dtype: Dtype::F64,
            fortran: false,
        },
        Array {
            name: "q",
            shape: vec![2, 1],
            values: vec![-2.0, -4.0],
            dtype: Dtype::F64,
            fortran: false,
        },
        Array {
            name: "G",
            shape: vec![0, 2],
            values: vec![],
            dtype: Dtype::F64,
            fortran: false,
        },
        Array {
            name: "h",
            shape: vec![0],
            values: vec![],
            dtype: Dtype::F64,
            fortran: false,
        },
    ];
    write_npz(&path, &arrays, false);
    let qp = read_npz(&path).unwrap();
    assert_eq!(
        qp.validate().unwrap(),
        altdiff_core::QpDims { n: 2, p: 0, m: 0 }
    );
}

#[test]
fn malformed_archives_are_errors() {
    let not_zip = temp("not-a-zip.npz");
    std::fs::write(&not_zip, b"definitely not a zip archive").unwrap();
    assert!(matches!(read_npz(&not_zip), Err(CliError::Format { .. })));
    let no_p = temp("no-p.npz");
    write_npz(
        &no_p,
        &[Array {
            name: "q",
            shape: vec![1],
            values: vec![1.0],
            dtype: Dtype::F64,
            fortran: false,
        }],
        false,
    );
    let err = read_npz(&no_p).unwrap_err();
    assert!(err.to_string().contains("missing array P"), "{err}");
    let vector_p = temp("vector-p.npz");
    write_npz(
        &vector_p,
        &[
            Array {
                name: "P",
                shape: vec![2],
                values: vec![1.0, 1.0],
                dtype: Dtype::F64,
                fortran: false,
            },
            Array {
                name: "q",
                shape: vec![2],
                values: vec![1.0, 1.0],
                dtype: Dtype::F64,
                fortran: false,
            },
        ],
        false,
    );
    assert!(
        read_npz(&vector_p)
            .unwrap_err()
            .to_string()
            .contains("must be 2-D")
    );
    let bad_q = temp("bad-q.npz");
    write_npz(
        &bad_q,
        &[
            Array {
                name: "P",
                shape: vec![1, 1],
                values: vec![1.0],
                dtype: Dtype::F64,
                fortran: false,
            },
            Array {
                name: "q",
                shape: vec![2],
                values: vec![1.0, 1.0],
                dtype: Dtype::F64,
                fortran: false,
            },
        ],
        false,
    );
    assert!(
        read_npz(&bad_q)
            .unwrap_err()
            .to_string()
            .contains("dimension mismatch for q")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_altdiff"))
        .args(["solve", not_zip.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn solve_gives_the_same_result_for_npz_and_json() {
    let npz = temp("same.npz");
    write_npz(&npz, &tiny_arrays(|| Dtype::F64, true), true);
    let json = temp("same.json");
    std::fs::write(
        &json,
        serde_json::to_string(&ProblemFile::from_host(&tiny_qp())).unwrap(),
    )
    .unwrap();
    let run = |path: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_altdiff"))
            .args(["solve", path.to_str().unwrap(), "--wrt", "b"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<altdiff_examples::problem_file::ResultFile>(&out.stdout).unwrap()
    };
    let (a, b) = (run(&npz), run(&json));
    assert_eq!(
        (a.status.as_str(), a.iterations),
        (b.status.as_str(), b.iterations)
    );
    // h is stored as f32 in the archive: equal up to its rounding
    for (u, v) in a.x.iter().zip(&b.x).chain(
        a.dx_db
            .unwrap()
            .concat()
            .iter()
            .zip(&b.dx_db.unwrap().concat()),
    ) {
        assert!((u - v).abs() < 1e-7, "{u} vs {v}");
    }
}

/// An `.npy` entry with a hand-written header (any shape) and raw data bytes.
fn forged_npy(shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': True, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

/// Regression (found probing the reader the fuzz targets exercise): a forged shape whose
/// element count overflows made the NumPy reader panic with "attempt to multiply with
/// overflow" in debug builds; a shape beyond the data could ask for a huge allocation. Both
/// are now format errors, and `altdiff solve` exits 2.
#[test]
fn forged_shapes_are_errors_not_panics() {
    for (name, shape, message) in [
        ("overflow", "(4294967296, 4294967296)", "overflows"),
        ("max", "(18446744073709551615, 2)", "overflows"),
        ("beyond", "(3037000500, 3037000500)", "needs"),
    ] {
        let path = temp(&format!("forged-{name}.npz"));
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = FileOptions::default().compression_method(CompressionMethod::Stored);
        zip.start_file("P.npy", options).unwrap();
        std::io::Write::write_all(&mut zip, &forged_npy(shape, &[0; 64])).unwrap();
        zip.start_file("q.npy", options).unwrap();
        std::io::Write::write_all(&mut zip, &forged_npy("(0,)", &[])).unwrap();
        zip.finish().unwrap();
        let err = read_npz(&path).unwrap_err();
        assert!(
            matches!(err, CliError::Format { .. }) && err.to_string().contains(message),
            "{name}: {err}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_altdiff"))
            .args(["solve", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}
