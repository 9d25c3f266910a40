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

/// [`assert_close`] for each of an operation's results, `expected` against `actual` in order,
/// each named by the next of `names` followed by `context`; both hold as many results.
pub fn assert_all_close<const D: usize>(
    names: &[&str],
    expected: impl IntoIterator<Item = Tensor<D>>,
    actual: impl IntoIterator<Item = Tensor<D>>,
    tolerance: f32,
    context: &str,
) {
    let expected: Vec<_> = expected.into_iter().collect();
    let actual: Vec<_> = actual.into_iter().collect();
    assert_eq!(expected.len(), actual.len(), "results{context}");
    for ((what, expected), actual) in names.iter().zip(expected).zip(actual) {
        assert_close(expected, actual, tolerance, &format!("{what}{context}"));
    }
}
