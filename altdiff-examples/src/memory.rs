//! What a backend needs in memory, checked before anything is allocated: a dense backend
//! holds `P`, `H`, its factor and the constraint blocks as `n x n` / `r x n` arrays, which
//! for a sparse problem with `n = 100 000` is 80 GB per matrix.

use crate::CliError;
use crate::backends::BackendKind;

/// The share of the available memory a solve may plan to use.
const USABLE: f64 = 0.8;

/// A size in bytes, written as GB / MB.
fn size(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else {
        format!("{:.0} MB", bytes / 1e6)
    }
}

/// The bytes a dense backend needs for a problem with `n` variables and `rows` constraint
/// rows: `P`, `H` and its factor (`3 n^2`), the constraint blocks with their scaled copies
/// (`2 r n`) and the dual-space operator `M = C H^-1 C'` with its factor (`2 r^2`), in
/// `f64`. A lower bound of what the solve allocates: enough to refuse what cannot fit.
///
/// # Example
/// ```
/// use altdiff_examples::memory::dense_bytes;
/// assert_eq!(dense_bytes(1000, 0), 24e6);
/// assert!(dense_bytes(100_000, 0) > 2e11);
/// ```
#[must_use]
pub fn dense_bytes(n: usize, rows: usize) -> f64 {
    let (n, r) = (n as f64, rows as f64);
    8.0 * (3.0 * n * n + 2.0 * r * n + 2.0 * r * r)
}

/// The memory available to this process now: the environment variable
/// `ALTDIFF_MEMORY_LIMIT` (bytes) when set, else the smaller of `MemAvailable` in
/// `/proc/meminfo` and the room left under the cgroup's `memory.max` (a container's limit,
/// which `/proc/meminfo` does not show); `None` where none can be read, and then nothing is
/// refused.
#[must_use]
pub fn available_bytes() -> Option<f64> {
    if let Some(limit) = std::env::var("ALTDIFF_MEMORY_LIMIT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Some(limit);
    }
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let meminfo = read("/proc/meminfo").and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024.0)
    });
    let cgroup = read("/sys/fs/cgroup/memory.max").and_then(|max| {
        let max: f64 = max.trim().parse().ok()?; // "max": no limit
        let used: f64 = read("/sys/fs/cgroup/memory.current")?.trim().parse().ok()?;
        Some((max - used).max(0.0))
    });
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `backend` stores the problem's matrices densely.
fn is_dense(backend: BackendKind) -> bool {
    !matches!(backend, BackendKind::FaerSparse)
}

/// The backend to run a problem with `n` variables and `rows` constraint rows on, given the
/// one asked for: itself when it fits in the available memory (or is sparse); else, when the
/// user named none (`explicit` false) and the sparse backend is compiled in, `faer-sparse`
/// with a note on stderr; else a one-line error naming the size and the option to use.
///
/// # Errors
/// [`CliError::Usage`] when a dense backend cannot fit the problem.
///
/// # Example
/// ```
/// use altdiff_examples::backends::BackendKind;
/// use altdiff_examples::memory::backend_that_fits;
/// assert_eq!(backend_that_fits(BackendKind::Faer, false, 10, 5).unwrap(), BackendKind::Faer);
/// assert!(backend_that_fits(BackendKind::Faer, true, 10_000_000, 0).is_err());
/// ```
pub fn backend_that_fits(
    backend: BackendKind,
    explicit: bool,
    n: usize,
    rows: usize,
) -> Result<BackendKind, CliError> {
    let Some(available) = available_bytes() else {
        return Ok(backend);
    };
    let need = dense_bytes(n, rows);
    if !is_dense(backend) || need <= USABLE * available {
        return Ok(backend);
    }
    let sparse = BackendKind::compiled().contains(&BackendKind::FaerSparse);
    if !explicit && sparse {
        eprintln!(
            "altdiff: note: the dense backend {} would need {} for n = {n} ({} available): \
             using faer-sparse",
            backend.name(),
            size(need),
            size(available)
        );
        return Ok(BackendKind::FaerSparse);
    }
    let hint = if sparse {
        "use --backend faer-sparse"
    } else {
        "build with the Cargo feature faer for the sparse backend"
    };
    Err(CliError::Usage(format!(
        "the dense backend {} would need {} for n = {n}, {rows} constraint rows ({} \
         available): {hint}",
        backend.name(),
        size(need),
        size(available)
    )))
}

/// Refuses a problem that the dense backends of `demo`, `derivatives` and `bench` cannot hold
/// (their generators form `P` densely too).
///
/// # Errors
/// [`CliError::Usage`] naming the size.
///
/// # Example
/// ```
/// use altdiff_examples::memory::generated_fits;
/// assert!(generated_fits(100, 10).is_ok());
/// assert!(generated_fits(10_000_000, 0).is_err());
/// ```
pub fn generated_fits(n: usize, rows: usize) -> Result<(), CliError> {
    let (Some(available), need) = (available_bytes(), dense_bytes(n, rows)) else {
        return Ok(());
    };
    if need <= USABLE * available {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "a dense problem with n = {n} and {rows} constraint rows would need {} ({} available): \
         choose a smaller --n, or solve a sparse problem file with `altdiff solve --backend \
         faer-sparse`",
        size(need),
        size(available)
    )))
}
