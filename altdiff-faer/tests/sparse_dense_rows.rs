//! The shared conformance suite on the faer sparse backend with every row of more than two
//! entries split off `H` as a low-rank (Woodbury) correction, where the sparse part alone is
//! positive definite (and the plain sparse factorization otherwise).

altdiff_core::conformance_tests!(
    altdiff_faer::FaerSparseBackend::default().with_dense_rows(altdiff_faer::DenseRows::Above(2))
);
