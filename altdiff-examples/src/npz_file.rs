//! NumPy `.npz` problem files: `numpy.savez(FILE, P=P, q=q, A=A, b=b, G=G, h=h)`.
//!
//! Arrays may be little- or big-endian floats (`f4`, `f8`), signed or unsigned integers or
//! booleans, in C or Fortran order, compressed (`savez_compressed`) or not. `A`/`b` and
//! `G`/`h` may be absent or empty; vectors may be stored as `(n,)`, `(n, 1)` or `(1, n)`.

use std::path::Path;

use altdiff_core::{Field, HostMatrix, HostQp};
use std::io::Read;

use npyz::{DType, NpyFile, Order, TypeChar};

use crate::CliError;

/// An array's shape and its entries as `f64` in row-major order.
type RawArray = (Vec<u64>, Vec<f64>);

/// Reads a problem from an `.npz` archive and validates it.
///
/// # Errors
/// [`CliError::Io`] for an unreadable file, [`CliError::Format`] for a malformed archive,
/// array or dtype, [`CliError::Core`] for a problem with bad shapes or values.
pub fn read_npz(path: &Path) -> Result<HostQp, CliError> {
    let file = std::fs::File::open(path).map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_npz(std::io::BufReader::new(file), path)
}

/// Reads a problem from `.npz` bytes (any seekable reader); `path` names the source in
/// errors.
///
/// # Errors
/// As [`read_npz`].
///
/// # Example
/// ```
/// use altdiff_examples::npz_file::parse_npz;
/// let junk = std::io::Cursor::new(b"not a zip archive".to_vec());
/// assert!(parse_npz(junk, "inline.npz".as_ref()).is_err());
/// ```
pub fn parse_npz<R: std::io::Read + std::io::Seek>(
    reader: R,
    path: &Path,
) -> Result<HostQp, CliError> {
    let format = |message: String| CliError::Format {
        path: path.to_path_buf(),
        message,
    };
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| format(format!("not a readable .npz archive: {e}")))?;
    let mut array = |name: &str| -> Result<Option<RawArray>, CliError> {
        let in_array = |e: String| format(format!("array {name}: {e}"));
        let Some(bytes) = entry_bytes(&mut archive, name).map_err(in_array)? else {
            return Ok(None);
        };
        let file = NpyFile::new(bytes.as_slice()).map_err(|e| in_array(e.to_string()))?;
        read_array(file).map(Some).map_err(in_array)
    };
    let p = array("P")?.ok_or_else(|| format("missing array P".into()))?;
    let q = array("q")?.ok_or_else(|| format("missing array q".into()))?;
    let (a, b, g, h) = (array("A")?, array("b")?, array("G")?, array("h")?);
    let matrix = |field: Field, array| matrix(field, array).map_err(format);
    let p = matrix(Field::P, p)?;
    let n = p.nrows();
    let qp = HostQp {
        q: vector(q),
        a: a.map_or(Ok(HostMatrix::zeros(0, n)), |a| matrix(Field::A, a))?
            .or_empty_rows(n),
        b: b.map(vector).unwrap_or_default(),
        g: g.map_or(Ok(HostMatrix::zeros(0, n)), |g| matrix(Field::G, g))?
            .or_empty_rows(n),
        h: h.map(vector).unwrap_or_default(),
        p,
    };
    qp.validate()?;
    Ok(qp)
}

/// The most bytes one array may take (2 GiB): larger entries are refused before reading.
const MAX_ENTRY_BYTES: u64 = 1 << 31;

/// The bytes of the archive's `NAME.npy`, its header checked by [`check_header`]; `None`
/// when absent.
fn entry_bytes<R: std::io::Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Option<Vec<u8>>, String> {
    let entry = match archive.by_name(&format!("{name}.npy")) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if entry.size() > MAX_ENTRY_BYTES {
        return Err(format!("{} bytes, more than 2 GiB", entry.size()));
    }
    let mut bytes = Vec::new();
    entry
        .take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    check_header(&bytes)?;
    Ok(Some(bytes))
}

/// Checks an `.npy` header's `shape` before the NumPy reader sees it: the element count
/// must not overflow and must fit the data that follows (every element takes a byte at
/// least), so a forged shape can neither overflow nor allocate beyond the file.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return Err("not an .npy array".into());
    }
    let (len, start) = match bytes[6] {
        1 => (
            usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
            10_usize,
        ),
        2 | 3 => {
            let len: [u8; 4] = bytes
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .ok_or("truncated header")?;
            (u32::from_le_bytes(len) as usize, 12)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start.saturating_add(len))
        .ok_or("truncated header")?;
    let header = String::from_utf8_lossy(header);
    let shape = header
        .find("'shape'")
        .or_else(|| header.find("\"shape\""))
        .and_then(|at| {
            let rest = &header[at..];
            Some(&rest[rest.find('(')? + 1..rest.find(')')?])
        })
        .ok_or("no shape in the header")?;
    let count = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .try_fold(1_u64, |count, d| {
            let d: u64 = d.parse().map_err(|_| format!("bad dimension {d:?}"))?;
            count
                .checked_mul(d)
                .ok_or_else(|| format!("shape ({shape}) overflows"))
        })?;
    let data = (bytes.len() - start - len) as u64;
    if count > data {
        return Err(format!(
            "shape ({shape}) needs {count} elements, the file holds {data} bytes"
        ));
    }
    Ok(())
}

/// The array's shape and its entries as `f64`, in row-major (C) order.
fn read_array<R: std::io::Read>(file: NpyFile<R>) -> Result<RawArray, String> {
    let shape = file.shape().to_vec();
    let order = file.order();
    let DType::Plain(ty) = file.dtype() else {
        return Err("structured dtypes are not supported".into());
    };
    let err = |e: std::io::Error| e.to_string();
    let data: Vec<f64> = match (ty.type_char(), ty.num_bytes()) {
        (TypeChar::Float, Some(8)) => file.into_vec::<f64>().map_err(err)?,
        (TypeChar::Float, Some(4)) => file
            .into_vec::<f32>()
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Int, Some(8)) => file
            .into_vec::<i64>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::Int, Some(4)) => file
            .into_vec::<i32>()
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Int, Some(2)) => file
            .into_vec::<i16>()
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Int, Some(1)) => file
            .into_vec::<i8>()
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Uint, Some(8)) => file
            .into_vec::<u64>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::Uint, Some(4)) => file
            .into_vec::<u32>()
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Uint, Some(2)) => file
            .into_vec::<u16>()
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Uint, Some(1)) => file
            .into_vec::<u8>()
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        (TypeChar::Bool, _) => file
            .into_vec::<bool>()
            .map_err(err)?
            .into_iter()
            .map(|v| f64::from(u8::from(v)))
            .collect(),
        _ => return Err(format!("unsupported dtype {ty}")),
    };
    let data = match (order, shape.as_slice()) {
        (Order::Fortran, &[r, c]) => {
            let (r, c) = (r as usize, c as usize);
            (0..r * c).map(|k| data[(k % c) * r + k / c]).collect()
        }
        _ => data,
    };
    Ok((shape, data))
}

/// A 2-D array (or an empty one of any rank) as a matrix.
fn matrix(field: Field, (shape, data): RawArray) -> Result<HostMatrix, String> {
    match shape.as_slice() {
        &[r, c] => HostMatrix::from_row_major(field, r as usize, c as usize, &data)
            .map_err(|e| e.to_string()),
        _ if data.is_empty() => Ok(HostMatrix::zeros(0, 0)),
        other => Err(format!("array {field} must be 2-D, got shape {other:?}")),
    }
}

/// A vector from any shape with at most one dimension above 1 (`(n,)`, `(n, 1)`, `(1, n)`);
/// other shapes are flattened, and the problem's validation reports the length.
fn vector((_, data): RawArray) -> Vec<f64> {
    data
}
