//! The shared conformance suite on the faer sparse backend (dense rows of `A`, `G` in the
//! sparse `H`, the default for these small problems).

altdiff_core::conformance_tests!(altdiff_faer::FaerSparseBackend::default());
