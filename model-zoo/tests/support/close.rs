//! Tensor comparison for the test binaries that check the zoo's kernels against Burn's.

use burn::prelude::*;

/// Fails naming `what` unless `actual` is within `tolerance` of `expected`, relative to its
/// largest magnitude (at least 1).
pub fn assert_close<const D: usize>(
    expected: Tensor<D>,
    actual: Tensor<D>,
    tolerance: f32,
    what: &str,
) {
    assert_eq!(expected.dims(), actual.dims(), "{what}");
    let scale = expected.clone().abs().max().into_scalar::<f32>().max(1.0);
    let difference = (expected - actual).abs().max().into_scalar::<f32>();
    assert!(
        difference <= tolerance * scale,
        "{what}: differs by {difference} (scale {scale})"
    );
}
