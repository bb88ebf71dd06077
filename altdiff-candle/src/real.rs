//! [`CandleReal`]: the scalars the candle backend computes in.

use altdiff_core::Real;
use candle_core::{FloatDType, WithDType};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A scalar of [`CandleBackend`](crate::CandleBackend): `f32` or `f64` (sealed).
///
/// It ties altdiff's [`Real`] to candle's [`WithDType`], whose `DTYPE` is the tensors' dtype
/// ([`DType::F32`](candle_core::DType::F32) or [`DType::F64`](candle_core::DType::F64)).
///
/// # Example
/// ```
/// use altdiff_candle::CandleReal;
/// use candle_core::DType;
/// fn dtype_of<T: CandleReal>() -> DType { T::DTYPE }
/// assert_eq!(dtype_of::<f32>(), DType::F32);
/// assert_eq!(dtype_of::<f64>(), DType::F64);
/// ```
pub trait CandleReal: Real + WithDType + FloatDType + sealed::Sealed {}

impl CandleReal for f32 {}
impl CandleReal for f64 {}
