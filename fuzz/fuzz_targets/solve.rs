//! The solve entry point on small arbitrary problems: sizes from the first bytes, then
//! every entry from 8 bytes (any bit pattern: NaN, Inf, 1e300, subnormals); `P` symmetric
//! unless the flag byte says otherwise.
#![no_main]

use altdiff_core::{HostMatrix, HostQp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [n, p, m, flags, rest @ ..] = data else {
        return;
    };
    let (n, p, m) = (usize::from(n % 7), usize::from(p % 4), usize::from(m % 5));
    let mut values = altdiff_fuzz::numbers(rest);
    let mut next = || values.next().unwrap_or(1.0);
    let mut p_data = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let v = next();
            p_data[i * n + j] = v;
            p_data[j * n + i] = if flags & 0x80 == 0 { v } else { next() };
        }
    }
    let qp = HostQp {
        p: HostMatrix::from_fn(n, n, |i, j| p_data[i * n + j]),
        q: (0..n).map(|_| next()).collect(),
        a: HostMatrix::from_fn(p, n, |_, _| next()),
        b: (0..p).map(|_| next()).collect(),
        g: HostMatrix::from_fn(m, n, |_, _| next()),
        h: (0..m).map(|_| next()).collect(),
    };
    altdiff_fuzz::exercise(&qp, *flags);
});
