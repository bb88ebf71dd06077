//! The dense backends agree with each other directly (each also agrees with the reference
//! backend in its own conformance run).

#[test]
fn faer_and_ndarray_agree_to_1e_10() {
    altdiff_core::testing::conformance::backends_agree(
        &altdiff_faer::FaerBackend::default(),
        &altdiff_ndarray::NdarrayBackend::default(),
    );
}
