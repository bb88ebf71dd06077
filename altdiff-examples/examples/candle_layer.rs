//! The candle backend and the QP layer: a batch of the tiny QP solved on candle tensors,
//! then `loss.backward()` through the layer, checked against the exact derivative.
//!
//! `cargo run --release -p altdiff-examples --example candle_layer`

use altdiff_candle::QpLayer;
use altdiff_core::Settings;
use candle_core::{DType, Device, Tensor, Var};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    // minimize 1/2 x'Px + q'x  s.t.  x0 + x1 + x2 = b,  x1 <= h0,  -x0 <= h1
    let p = Tensor::new(
        &[[2.0f64, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.5]],
        &dev,
    )?;
    let a = Tensor::new(&[[1.0f64, 1.0, 1.0]], &dev)?;
    let g = Tensor::new(&[[0.0f64, 1.0, 0.0], [-1.0, 0.0, 0.0]], &dev)?;
    let layer = QpLayer::new(&p, &a, &g, Settings::default())?;

    // a batch of four elements in f32, as a network would feed them
    let q = Var::new(
        &[
            [1.0f32, -1.0, 0.5],
            [0.0, 0.0, 0.0],
            [-1.0, 2.0, 0.0],
            [3.0, 0.0, -3.0],
        ],
        &dev,
    )?;
    let b = Var::new(&[[1.0f32], [1.0], [2.0], [1.0]], &dev)?;
    let h = Tensor::new(&[[0.5f32, 0.2]], &dev)?
        .broadcast_as((4, 2))?
        .contiguous()?;
    let x = layer.forward(q.as_tensor(), b.as_tensor(), &h)?;
    println!("x (4 x 3) =\n{x}");
    let report = layer.last_report().expect("one forward");
    println!(
        "{} of {} solved, {:.1} iterations on average",
        report.solved, report.batch, report.mean_iterations
    );

    // d (x_2 of the first element) / d b_0 = 4/7 (the tiny QP's exact Jacobian)
    let loss = x.narrow(0, 0, 1)?.narrow(1, 2, 1)?.sum_all()?;
    let grads = loss.backward()?;
    let db = grads.get(b.as_tensor()).expect("b is tracked");
    let db = db.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    println!(
        "d x[0][2] / d b = {:?}   (exact: 4/7 for the first element, 0 for the others)",
        db
    );
    assert!(
        (db[0][0] - 4.0 / 7.0).abs() < 1e-4,
        "matches the exact value"
    );
    assert!(
        db[1..].iter().all(|row| row[0] == 0.0),
        "the elements are independent"
    );
    Ok(())
}
