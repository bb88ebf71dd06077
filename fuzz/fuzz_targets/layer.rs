//! The softmax / sparsemax layers on arbitrary inputs: the kind and width from the first
//! bytes (n <= 8), then `y`, `u` and the VJP seed from 8 bytes each (any bit pattern: NaN,
//! Inf, 1e300, subnormals, scores far apart), forward with the Jacobians, then the VJP.
#![no_main]

use altdiff_core::smooth::SmoothSettings;
use altdiff_core::smooth::layers::{Layer, LayerKind, LayerParam};
use altdiff_faer::FaerBackend;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [kind, n, rest @ ..] = data else {
        return;
    };
    let kind = LayerKind::ALL[usize::from(kind % 4)];
    let n = usize::from(n % 9);
    let mut values = altdiff_fuzz::numbers(rest);
    let mut next = || values.next().unwrap_or(1.0);
    let y: Vec<f64> = (0..n).map(|_| next()).collect();
    let u: Vec<f64> = (0..n).map(|_| next()).collect();
    let g: Vec<f64> = (0..n).map(|_| next()).collect();
    let settings = SmoothSettings::default().with_max_iter(300);
    let Ok(layer) = Layer::new(FaerBackend::default(), kind, n, settings) else {
        return;
    };
    let u = kind.has_upper_bound().then_some(u.as_slice());
    let wrt: &[LayerParam] = if kind.has_upper_bound() {
        &[LayerParam::Y, LayerParam::U]
    } else {
        &[LayerParam::Y]
    };
    if let Ok(out) = layer.forward(&y, u, wrt) {
        let _ = layer.vjp(&out, &g);
    }
});
