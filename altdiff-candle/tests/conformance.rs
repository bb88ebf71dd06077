//! The shared conformance suite on the candle backend: `f64` on the CPU always, and on the
//! first CUDA device with the feature `cuda`.

altdiff_core::conformance_tests!(altdiff_candle::CandleBackend::<f64>::cpu());

#[cfg(feature = "cuda")]
mod cuda {
    altdiff_core::conformance_tests!(
        altdiff_candle::CandleBackend::<f64>::cuda(0).expect("CUDA device 0")
    );
}
