//! What every fuzz target does with a problem that parsed: set up, solve and differentiate
//! it under settings picked by one byte, on the faer backend. Errors are fine; a panic, a
//! hang or an abort is a bug.

use altdiff_core::{AltDiff, HostQp, LinAlg, Method, Qp, Settings, VjpMode, Wrt};
use altdiff_faer::FaerBackend;

/// Problems above this many variables are only parsed (keeps executions fast).
pub const MAX_SOLVED_N: usize = 24;

/// Solves `qp` with the settings chosen by `flags` and runs every VJP mode.
pub fn exercise(qp: &HostQp, flags: u8) {
    let Ok(dims) = qp.validate() else { return };
    if dims.n > MAX_SOLVED_N {
        return;
    }
    let backend = FaerBackend::default();
    let Ok(problem) = Qp::from_host(&backend, qp) else {
        return;
    };
    let settings = Settings::default()
        .with_max_iter(400)
        .with_wrt(Wrt::vectors())
        .with_limit(flags & 1 == 1)
        .with_method(if flags & 2 == 2 {
            Method::Kkt
        } else {
            Method::AltDiff
        })
        .with_alpha(if flags & 4 == 4 { 1.0 } else { 1.6 })
        .with_rho([1.0, 0.1, 10.0, 1e-4][usize::from(flags >> 3 & 3)]);
    let Ok(solver) = AltDiff::new(backend.clone(), &problem, settings) else {
        return;
    };
    let Ok(solution) = solver.solve(problem.params()) else {
        return;
    };
    let _ = solution.to_host(&backend);
    let Ok(g) = backend.mat_from_col_major(dims.n, 1, &vec![1.0; dims.n]) else {
        return;
    };
    for mode in [VjpMode::Implicit, VjpMode::Kkt, VjpMode::Limit] {
        let _ = solver.vjp(&solution, &g, mode);
    }
}

/// Numbers from 8 bytes each (small integers often, any bit pattern otherwise: NaN, Inf,
/// 1e300, subnormals), then ones for ever.
pub fn numbers(bytes: &[u8]) -> impl Iterator<Item = f64> + '_ {
    bytes
        .chunks(8)
        .map(|c| {
            let mut word = [0u8; 8];
            word[..c.len()].copy_from_slice(c);
            if word[7] & 0xf0 == 0x10 {
                f64::from(i8::from_le_bytes([word[0]]))
            } else {
                f64::from_le_bytes(word)
            }
        })
        .chain(std::iter::repeat(1.0))
}
