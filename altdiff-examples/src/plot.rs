//! The truncation plot: primal / dual residual and Jacobian error against the iteration,
//! on a log scale (the paper's claim that the Jacobian error tracks the solution error).

use std::path::Path;

use altdiff_core::{AltDiff, HostMatrix, HostQp, LinAlg, Param, Qp, Settings, TangentKey, Wrt};
use plotters::prelude::*;

use crate::CliError;
use crate::backends::BackendJob;
use crate::demo::frobenius_rel_err;

/// One iteration of the trace.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TracePoint {
    /// Iterations run.
    pub iteration: usize,
    /// Primal residual.
    pub primal: f64,
    /// Dual residual.
    pub dual: f64,
    /// `|J_k - J*|_F / |J*|_F`.
    pub jac_err: f64,
}

/// Records the trace of one Alt-Diff solve against the exact Jacobian.
pub struct TraceJob<'a> {
    /// The problem.
    pub qp: &'a HostQp,
    /// The parameter differentiated.
    pub wrt: Param,
    /// Settings.
    pub settings: Settings,
    /// The exact Jacobian.
    pub exact: &'a HostMatrix,
}

impl BackendJob for TraceJob<'_> {
    type Output = Vec<TracePoint>;

    fn run<B: LinAlg<Real = f64>>(self, backend: B) -> Result<Vec<TracePoint>, CliError> {
        let problem = Qp::from_host(&backend, self.qp)?;
        let solver = AltDiff::new(
            backend.clone(),
            &problem,
            self.settings.with_wrt(Wrt::none().with(self.wrt)),
        )?;
        let mut trace = Vec::new();
        let mut failure = None;
        let (rows, cols) = (self.exact.nrows(), self.exact.ncols());
        let _solution = solver.solve_observed(problem.params(), &mut |o| {
            let Some((_, t)) = o
                .tangents
                .iter()
                .find(|(k, _)| *k == TangentKey::Jacobian(self.wrt))
            else {
                return;
            };
            match backend.to_col_major(&t.x) {
                Ok(j) => match HostMatrix::from_col_major(altdiff_core::Field::Seed, rows, cols, j)
                {
                    Ok(j) => trace.push(TracePoint {
                        iteration: o.iteration,
                        primal: o.primal_residual,
                        dual: o.dual_residual,
                        jac_err: frobenius_rel_err(&j, self.exact),
                    }),
                    Err(e) => failure = Some(e),
                },
                Err(e) => failure = Some(e),
            }
        })?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(trace),
        }
    }
}

/// A line of the plot: label, colour, value.
type Series = (&'static str, RGBColor, fn(&TracePoint) -> f64);

/// Draws the trace as an SVG file (log-scale y axis).
///
/// # Errors
/// [`CliError::Usage`] for another extension than `.svg`, [`CliError::Format`] when drawing
/// fails.
pub fn plot_trace(path: &Path, trace: &[TracePoint], title: &str) -> Result<(), CliError> {
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        return Err(CliError::Usage(format!(
            "{}: plots are written as .svg",
            path.display()
        )));
    }
    let fail = |e: String| CliError::Format {
        path: path.to_path_buf(),
        message: format!("plot: {e}"),
    };
    let positive = |v: f64| {
        if v.is_finite() && v > 0.0 {
            v
        } else {
            f64::MIN_POSITIVE.max(1e-300)
        }
    };
    let values = trace
        .iter()
        .flat_map(|t| [t.primal, t.dual, t.jac_err])
        .map(positive);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo / 2.0, hi * 2.0)
    } else {
        (1e-12, 1.0)
    };
    let last = trace.last().map_or(1, |t| t.iteration.max(1));
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0..last, (lo..hi).log_scale())
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("log scale")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    let series: [Series; 3] = [
        ("primal residual", BLUE, |t| t.primal),
        ("dual residual", GREEN, |t| t.dual),
        ("Jacobian relative error", RED, |t| t.jac_err),
    ];
    for (label, color, value) in series {
        chart
            .draw_series(LineSeries::new(
                trace.iter().map(|t| (t.iteration, positive(value(t)))),
                color.stroke_width(2),
            ))
            .map_err(|e| fail(e.to_string()))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))
}
