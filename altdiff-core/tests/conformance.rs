//! The conformance suite on the reference backend: it checks the algorithm itself against
//! the hand-derived iterates, the KKT oracle, finite differences and clarabel.
#![cfg(feature = "testing")]

altdiff_core::conformance_tests!(altdiff_core::testing::RefBackend);
