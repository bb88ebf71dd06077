//! The shared conformance suite on the ndarray backend.

altdiff_core::conformance_tests!(altdiff_ndarray::NdarrayBackend::default());
