//! candle errors as altdiff errors.

/// `candle_core::Result<T>` into `altdiff_core::Result<T>` (the orphan rule forbids a
/// `From` impl here): the candle error becomes [`altdiff_core::Error::Backend`].
pub(crate) trait IntoCore<T> {
    fn into_core(self) -> altdiff_core::Result<T>;
}

impl<T> IntoCore<T> for candle_core::Result<T> {
    fn into_core(self) -> altdiff_core::Result<T> {
        self.map_err(|err| altdiff_core::Error::backend("candle", err))
    }
}
