//! The shared conformance suite on the faer backend.

altdiff_core::conformance_tests!(altdiff_faer::FaerBackend::default());
