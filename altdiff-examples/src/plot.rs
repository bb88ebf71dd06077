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

/// The plot's size in pixels.
pub(crate) const SIZE: (u32, u32) = (960, 600);

/// Draws the trace (log-scale y axis) as an SVG or a PNG file, by the path's extension.
/// Text is laid out with the embedded DejaVu Sans font, so no system font is needed.
///
/// # Errors
/// [`CliError::Usage`] for another extension than `.svg` or `.png`, [`CliError::Format`]
/// when drawing fails, [`CliError::Io`] when the PNG cannot be written.
pub fn plot_trace(path: &Path, trace: &[TracePoint], title: &str) -> Result<(), CliError> {
    let fail = |e: String| CliError::Format {
        path: path.to_path_buf(),
        message: format!("plot: {e}"),
    };
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    // plotters measures text with the registered font, for SVG as well
    register_font().map_err(fail)?;
    match extension.as_deref() {
        Some("svg") => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw(&root, trace, title).map_err(fail)
        }
        Some("png") => {
            let mut rgb = vec![0_u8; (SIZE.0 * SIZE.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
                draw(&root, trace, title).map_err(fail)?;
            }
            write_png(path, &rgb).map_err(|e| match e {
                png::EncodingError::IoError(source) => CliError::Io {
                    path: path.to_path_buf(),
                    source,
                },
                other => fail(other.to_string()),
            })
        }
        _ => Err(CliError::Usage(format!(
            "{}: plots are written as .svg or .png",
            path.display()
        ))),
    }
}

/// Registers DejaVu Sans as plotters' `sans-serif` (once).
pub(crate) fn register_font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded font does not load".to_owned())
        })
        .clone()
}

/// Encodes an RGB buffer of [`SIZE`] as a PNG file.
pub(crate) fn write_png(path: &Path, rgb: &[u8]) -> Result<(), png::EncodingError> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()
}

/// Draws the chart on any plotters backend.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    trace: &[TracePoint],
    title: &str,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
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
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0..last, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("log scale")
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(err)?;
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
            .map_err(err)?
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
        .map_err(err)?;
    root.present().map_err(err)
}
