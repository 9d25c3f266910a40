//! 3×3 "same" convolutions (stride 1, padding 1: every ResNet block's and every VGG layer's),
//! computed directly on AVX-512 CPUs, forward and for the input gradient.
//!
//! Why: the patch matrix copies each input element nine times, and `gemm` packs it again before
//! multiplying; for CIFAR ResNet-20's 16- and 32-channel layers that copying cost more than the
//! products (measured in `docs/kernels.md`). Here sixteen output channels of sixteen
//! output columns are held in the 32 vector registers' first half, and each input vector loaded
//! from a zero-bordered copy of the image is multiplied into all sixteen with the kernel values
//! broadcast from memory: nine loads and 144 fused multiply-adds per input channel and tile.
//! The input gradient of such a convolution is the same convolution of the output gradient by
//! the kernel turned 180° with its channel axes swapped. The weight gradient of a block of four
//! output channels and one input channel is nine dot products over the image, the output
//! gradient's rows against the input's rows shifted by each tap, summed in vector registers:
//! the patch-matrix product it replaces ran `gemm` with 16 or 32 output channels, a sliver of
//! its micro-kernel, after copying every input element nine times.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::shared::{Geometry, sum_of_shares};

/// Output columns per vector register.
const LANES: usize = 16;

/// Output channels computed together, one accumulator register each.
const BLOCK: usize = 16;

/// The most input channels for which the direct weight gradient beats the patch-matrix product:
/// CIFAR ResNet-20's 16 → 16 layers at 32×32 took 3.9–4.0 ms a call this way against 4.4–4.6,
/// its 32 → 32 ones at 16×16 4.0 against 3.5–3.7 (`benches/RESULTS.md`).
const MAX_WEIGHT_READ_CHANNELS: usize = 16;

/// Output channels whose weight gradients are summed together, a kernel row (three accumulator
/// registers) each, the input vector of a tap loaded once for all of them.
const WEIGHT_BLOCK: usize = 4;

/// The most input channels a direct convolution reads: a block's kernel values, one broadcast
/// per multiply-add, then fit the 48 KiB first-level cache (64 · 9 · 16 floats: 36 KiB).
const MAX_READ_CHANNELS: usize = 64;

/// Taps of a 3×3 kernel.
const TAPS: usize = 9;

/// Below this share of used vector lanes (an output row of `w` columns takes `⌈w / 16⌉`
/// registers) the patch-matrix product is at least as fast: at 8×8 the two ran level.
const MIN_LANE_USE: f32 = 0.75;

thread_local! {
    /// Each thread's zero-bordered copy of the image it convolves.
    static BORDERED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The convolution [`Geometry`] describes, when [`covers`] it.
pub(super) fn forward(geometry: &Geometry, input: &[f32], weight: &[f32]) -> Option<Vec<f32>> {
    if !covers(geometry, geometry.channels, geometry.out_channels) {
        return None;
    }
    let [channels, out_channels] = [geometry.channels, geometry.out_channels];
    let kernel = packed_kernel(channels, out_channels, |channel, tap, out_channel| {
        weight[(out_channel * channels + channel) * TAPS + tap]
    });
    Some(convolve(geometry, input, channels, &kernel, out_channels))
}

/// The input gradient of the convolution [`Geometry`] describes, when [`covers`] it.
pub(super) fn input_gradient(
    geometry: &Geometry,
    weight: &[f32],
    output_grad: &[f32],
) -> Option<Vec<f32>> {
    if !covers(geometry, geometry.out_channels, geometry.channels) {
        return None;
    }
    let [channels, out_channels] = [geometry.channels, geometry.out_channels];
    // Tap (kh, kw) of the turned kernel is tap (2 − kh, 2 − kw) of the kernel: index 8 − t.
    let kernel = packed_kernel(out_channels, channels, |out_channel, tap, channel| {
        weight[(out_channel * channels + channel) * TAPS + TAPS - 1 - tap]
    });
    Some(convolve(
        geometry,
        output_grad,
        out_channels,
        &kernel,
        channels,
    ))
}

/// The weight gradient of the convolution [`Geometry`] describes, when [`covers_weight`] it:
/// one contiguous share of the images per thread, each summing its images' lane by lane and
/// the lanes at its end, the shares' sums added in share order, so that the sum's order
/// depends only on the thread count.
pub(super) fn weight_gradient(
    geometry: &Geometry,
    input: &[f32],
    output_grad: &[f32],
) -> Option<Vec<f32>> {
    if !covers_weight(geometry) {
        return None;
    }
    let [channels, out_channels] = [geometry.channels, geometry.out_channels];
    let [height, width] = geometry.input;
    let [plane_in, plane_out] = [channels * height * width, out_channels * height * width];
    let size = out_channels * channels * TAPS;
    let shares = rayon::current_num_threads().min(geometry.batch).max(1);
    let per_share = geometry.batch.div_ceil(shares);
    let share = |share: usize| {
        let mut lane_sums = vec![0.0; size * LANES];
        let images = share * per_share..((share + 1) * per_share).min(geometry.batch);
        BORDERED.with_borrow_mut(|bordered| {
            for image in images {
                border(
                    &input[image * plane_in..][..plane_in],
                    channels,
                    [height, width],
                    bordered,
                );
                // SAFETY: `covers_weight` found AVX-512F on this CPU; `bordered` holds
                // `channels` bordered planes, the output gradient `out_channels` planes and
                // `lane_sums` `out_channels · channels · 9` vectors of LANES sums.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    weight_gradient_image(
                        bordered,
                        &output_grad[image * plane_out..][..plane_out],
                        &mut lane_sums,
                        [channels, out_channels],
                        [height, width],
                    )
                };
            }
        });
        lane_sums
            .chunks(LANES)
            .map(|lanes| lanes.iter().sum::<f32>())
            .collect::<Vec<f32>>()
    };
    Some(sum_of_shares(shares, size, share))
}

/// Whether the direct weight gradient computes `geometry`: [`same_rows`], at most
/// [`MAX_WEIGHT_READ_CHANNELS`] input channels and whole blocks of [`WEIGHT_BLOCK`] output
/// channels.
fn covers_weight(geometry: &Geometry) -> bool {
    same_rows(geometry)
        && geometry.channels <= MAX_WEIGHT_READ_CHANNELS
        && geometry.out_channels > 0
        && geometry.out_channels.is_multiple_of(WEIGHT_BLOCK)
}

/// Whether the direct kernel computes `geometry` reading `read` channels and producing
/// `produced`: [`same_rows`]; whole blocks of produced channels, at most
/// [`MAX_READ_CHANNELS`] read ones.
fn covers(geometry: &Geometry, read: usize, produced: usize) -> bool {
    same_rows(geometry)
        && produced > 0
        && produced.is_multiple_of(BLOCK)
        && read <= MAX_READ_CHANNELS
}

/// A 3×3 kernel, stride 1, padding 1 on every side, no dilation; rows wide enough to fill
/// [`MIN_LANE_USE`] of the lanes; and a CPU with AVX-512.
fn same_rows(geometry: &Geometry) -> bool {
    let [_, width] = geometry.input;
    let lane_use = width as f32 / (width.div_ceil(LANES) * LANES).max(1) as f32;
    geometry.kernel == [3, 3]
        && geometry.stride == [1, 1]
        && geometry.padding == [1, 1]
        && geometry.dilation == [1, 1]
        && geometry.output == geometry.input
        && lane_use >= MIN_LANE_USE
        && has_avx512()
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

/// The kernel as `[read channel][tap][written channel]`, so that one tap's values for a block
/// of written channels lie together; `value(read, tap, written)` gives each.
fn packed_kernel(
    read: usize,
    written: usize,
    value: impl Fn(usize, usize, usize) -> f32,
) -> Vec<f32> {
    let mut kernel = Vec::with_capacity(read * TAPS * written);
    for channel in 0..read {
        for tap in 0..TAPS {
            kernel.extend((0..written).map(|out_channel| value(channel, tap, out_channel)));
        }
    }
    kernel
}

/// `images` (`[B, read, H, W]`) convolved by `kernel` ([`packed_kernel`]): `[B, written, H, W]`,
/// the images in parallel.
fn convolve(
    geometry: &Geometry,
    images: &[f32],
    read: usize,
    kernel: &[f32],
    written: usize,
) -> Vec<f32> {
    let [height, width] = geometry.input;
    let [plane_in, plane_out] = [read * height * width, written * height * width];
    let len = geometry.batch * plane_out;
    let mut output = Vec::with_capacity(len);
    if plane_out > 0 {
        output.spare_capacity_mut()[..len]
            .par_chunks_mut(plane_out)
            .zip(images.par_chunks(plane_in.max(1)))
            .for_each(|(destination, image)| {
                BORDERED.with_borrow_mut(|bordered| {
                    border(image, read, [height, width], bordered);
                    // SAFETY: `covers` found AVX-512F on this CPU; `bordered` holds `read`
                    // bordered planes and the slack that the last vector loads reach into;
                    // `kernel` holds `read · 9 · written` values and `destination` `written`
                    // planes.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        convolve_image(
                            bordered,
                            kernel,
                            destination,
                            [read, written],
                            [height, width],
                        )
                    };
                });
            });
    }
    // SAFETY: each image's `written` planes were stored in full, every output row by whole
    // and masked vector stores that together cover its columns.
    unsafe { output.set_len(len) };
    output
}

/// Writes `image`'s channels into `bordered` with a ring of zeros around each, plus [`LANES`]
/// zeros after the last: a tile's vector loads read up to 15 floats past its plane.
fn border(image: &[f32], channels: usize, [height, width]: [usize; 2], bordered: &mut Vec<f32>) {
    let padded_width = width + 2;
    let plane = (height + 2) * padded_width;
    bordered.clear();
    bordered.resize(channels * plane + LANES, 0.0);
    for (channel, source) in image.chunks(height * width).take(channels).enumerate() {
        for (row, values) in source.chunks(width).enumerate() {
            let start = channel * plane + (row + 1) * padded_width + 1;
            bordered[start..start + width].copy_from_slice(values);
        }
    }
}

/// One image: for each block of [`BLOCK`] written channels, output row and tile of [`LANES`]
/// columns, the sum over read channels and taps of the bordered input vector times the
/// broadcast kernel values, in sixteen accumulators.
///
/// # Safety
/// The CPU must have AVX-512F; `bordered` must hold `read` planes of `(H + 2) · (W + 2)` and
/// [`LANES`] more floats, `kernel` `read · 9 · written`, `destination` `written · H · W`, and
/// `written` must be a multiple of [`BLOCK`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn convolve_image(
    bordered: &[f32],
    kernel: &[f32],
    destination: &mut [MaybeUninit<f32>],
    [read, written]: [usize; 2],
    [height, width]: [usize; 2],
) {
    use std::arch::x86_64::*;

    let padded_width = width + 2;
    let plane = (height + 2) * padded_width;
    let input = bordered.as_ptr();
    let output = destination.as_mut_ptr().cast::<f32>();
    for block in (0..written).step_by(BLOCK) {
        for row in 0..height {
            for column in (0..width).step_by(LANES) {
                let lanes = (width - column).min(LANES);
                let mask: __mmask16 = (((1u32 << lanes) - 1) & 0xffff) as u16;
                let mut sums = [_mm512_setzero_ps(); BLOCK];
                for channel in 0..read {
                    // SAFETY (this block): the tile's nine vectors start inside the channel's
                    // bordered rows `row..row + 3` and end at most 15 floats past its plane,
                    // within `bordered`'s slack; the kernel offsets stay below
                    // `read · 9 · written`.
                    let corner =
                        unsafe { input.add(channel * plane + row * padded_width + column) };
                    let taps = unsafe { kernel.as_ptr().add(channel * TAPS * written + block) };
                    for tap in 0..TAPS {
                        let offset = (tap / 3) * padded_width + tap % 3;
                        let values = unsafe { _mm512_loadu_ps(corner.add(offset)) };
                        let weights = unsafe { taps.add(tap * written) };
                        for (index, sum) in sums.iter_mut().enumerate() {
                            let weight = _mm512_set1_ps(unsafe { *weights.add(index) });
                            *sum = _mm512_fmadd_ps(values, weight, *sum);
                        }
                    }
                }
                for (index, sum) in sums.into_iter().enumerate() {
                    let start = (block + index) * height * width + row * width + column;
                    // SAFETY: the masked store writes the tile's `lanes` columns of this output
                    // row, inside `destination`.
                    unsafe { _mm512_mask_storeu_ps(output.add(start), mask, sum) };
                }
            }
        }
    }
}

/// One image's weight gradient added to `lane_sums` (`[O, C, 3, 3]` vectors of [`LANES`]
/// partial sums, added up by the caller): for each input channel, block of [`WEIGHT_BLOCK`]
/// output channels and kernel row, the row's three taps' dot products of the output gradient's
/// rows (`[O, H, W]`) with the bordered input's rows shifted by the tap, in twelve vector sums
/// over the image. (All nine taps of two output channels at once, eighteen sums, left the
/// compiler spilling some of them every step.)
///
/// # Safety
/// The CPU must have AVX-512F; `bordered` must hold `channels` planes of `(H + 2) · (W + 2)`
/// (masked loads read nothing past a row's last column), `output_grad` `out_channels · H · W`
/// and `lane_sums` `out_channels · channels · 9 · LANES` floats, and `out_channels` must be a
/// multiple of [`WEIGHT_BLOCK`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weight_gradient_image(
    bordered: &[f32],
    output_grad: &[f32],
    lane_sums: &mut [f32],
    [channels, out_channels]: [usize; 2],
    [height, width]: [usize; 2],
) {
    use std::arch::x86_64::*;

    let padded_width = width + 2;
    let plane = (height + 2) * padded_width;
    let spatial = height * width;
    let input = bordered.as_ptr();
    let gradient = output_grad.as_ptr();
    for channel in 0..channels {
        for out in (0..out_channels).step_by(WEIGHT_BLOCK) {
            for kernel_row in 0..3 {
                let mut sums = [[_mm512_setzero_ps(); 3]; WEIGHT_BLOCK];
                let [mut row, mut column] = [0, 0];
                while row < height {
                    let lanes = (width - column).min(LANES);
                    let mask: __mmask16 = (((1u32 << lanes) - 1) & 0xffff) as u16;
                    // SAFETY (this block): the masked loads read `lanes` floats of output row
                    // `row` of channels `out..out + WEIGHT_BLOCK`, and of bordered row
                    // `row + kernel_row` of `channel` from column `column + tap`, inside their
                    // planes.
                    let start = (out * height + row) * width + column;
                    let gradients: [__m512; WEIGHT_BLOCK] = std::array::from_fn(|index| unsafe {
                        _mm512_maskz_loadu_ps(mask, gradient.add(start + index * spatial))
                    });
                    let corner = unsafe {
                        input.add(channel * plane + (row + kernel_row) * padded_width + column)
                    };
                    for tap in 0..3 {
                        let values = unsafe { _mm512_maskz_loadu_ps(mask, corner.add(tap)) };
                        for (sum, gradient) in sums.iter_mut().zip(gradients) {
                            sum[tap] = _mm512_fmadd_ps(gradient, values, sum[tap]);
                        }
                    }
                    column += LANES;
                    if column >= width {
                        column = 0;
                        row += 1;
                    }
                }
                for (index, taps) in sums.iter().enumerate() {
                    let start = ((out + index) * channels + channel) * TAPS + kernel_row * 3;
                    for (tap, sum) in taps.iter().enumerate() {
                        let lanes = &mut lane_sums[(start + tap) * LANES..][..LANES];
                        // SAFETY: `lanes` holds LANES floats.
                        unsafe {
                            let total = _mm512_add_ps(_mm512_loadu_ps(lanes.as_ptr()), *sum);
                            _mm512_storeu_ps(lanes.as_mut_ptr(), total);
                        }
                    }
                }
            }
        }
    }
}
