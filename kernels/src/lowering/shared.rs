//! What the CPU convolution kernels share: a convolution's geometry, per-thread scratch
//! buffers, and the deterministic parallel sum of the weight gradients.

use std::cell::RefCell;
use std::thread::LocalKey;

use rayon::prelude::*;

/// The sizes of one ungrouped 2-D convolution.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub batch: usize,
    pub channels: usize,
    pub input: [usize; 2],
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Padding before the first row and column; the padding after is implied by `output`.
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub output: [usize; 2],
}

/// Runs `work` with this thread's value of `local`, or with a fresh one where the thread's is in
/// use (a rayon thread that picked up another convolution's work while waiting inside a
/// product).
pub(super) fn with_local<S: Default + 'static, R>(
    local: &'static LocalKey<RefCell<S>>,
    work: impl FnOnce(&mut S) -> R,
) -> R {
    local.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => work(&mut scratch),
        Err(_) => work(&mut S::default()),
    })
}

/// The sum of `share(index)` (vectors of `size` floats) over `shares` shares computed in
/// parallel, added in share order, so that the result depends only on the number of shares;
/// `size` zeros when there are none.
pub(super) fn sum_of_shares(
    shares: usize,
    size: usize,
    share: impl Fn(usize) -> Vec<f32> + Sync + Send,
) -> Vec<f32> {
    let parts: Vec<Vec<f32>> = (0..shares).into_par_iter().map(share).collect();
    parts
        .into_iter()
        .reduce(|mut total, part| {
            total
                .iter_mut()
                .zip(part)
                .for_each(|(sum, value)| *sum += value);
            total
        })
        .unwrap_or_else(|| vec![0.0; size])
}

/// The first `len` elements of `buffer`, which grows to hold them (its old contents are
/// overwritten by the caller, so nothing is cleared).
pub(super) fn grown(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}
