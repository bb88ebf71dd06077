//! The scalar type of a backend.

use core::fmt::{Debug, Display, LowerExp};

/// Real scalar a backend computes in (`f64`, `f32`).
///
/// A blanket alias over [`num_traits::Float`]; settings are given in `f64` and converted once
/// at setup with [`Real::of`].
///
/// # Example
/// ```
/// use altdiff_core::Real;
/// fn half<T: Real>() -> T { T::of(0.5) }
/// assert_eq!(half::<f64>().to_string(), "0.5");
/// ```
pub trait Real:
    num_traits::Float + Debug + Display + LowerExp + Default + Send + Sync + 'static
{
    /// Converts an `f64` constant or setting to this scalar (rounding for `f32`).
    fn of(value: f64) -> Self {
        <Self as num_traits::NumCast>::from(value).unwrap_or_else(Self::nan)
    }

    /// Converts this scalar to `f64` (exact for `f32` and `f64`).
    fn to_f64_lossy(self) -> f64 {
        num_traits::ToPrimitive::to_f64(&self).unwrap_or(f64::NAN)
    }
}

impl<T> Real for T where
    T: num_traits::Float + Debug + Display + LowerExp + Default + Send + Sync + 'static
{
}
