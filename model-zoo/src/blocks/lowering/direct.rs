//! 3×3 "same" convolutions (stride 1, padding 1: every ResNet block's and every VGG layer's),
//! computed directly on AVX-512 CPUs, forward and for the input gradient.
//!
//! Why: the patch matrix copies each input element nine times, and `gemm` packs it again before
//! multiplying; for CIFAR ResNet-20's 16- and 32-channel layers that copying cost more than the
//! products (one image's 16 → 16 channel 32×32 convolution: 47 GFLOP/s as patches and `gemm`,
//! 141 GFLOP/s here, one core; `benches/RESULTS.md`). Here sixteen output channels of sixteen
//! output columns are held in the 32 vector registers' first half, and each input vector loaded
//! from a zero-bordered copy of the image is multiplied into all sixteen with the kernel values
//! broadcast from memory: nine loads and 144 fused multiply-adds per input channel and tile.
//! The input gradient of such a convolution is the same convolution of the output gradient by
//! the kernel turned 180° with its channel axes swapped. The weight gradient stays a
//! patch-matrix product.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::cpu::Geometry;

/// Output columns per vector register.
const LANES: usize = 16;

/// Output channels computed together, one accumulator register each.
const BLOCK: usize = 16;

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

/// Whether the direct kernel computes `geometry` reading `read` channels and producing
/// `produced`: a 3×3 kernel, stride 1, padding 1 on every side, no dilation; whole blocks of
/// produced channels, at most [`MAX_READ_CHANNELS`] read ones; rows wide
/// enough to fill [`MIN_LANE_USE`] of the lanes; and a CPU with AVX-512.
fn covers(geometry: &Geometry, read: usize, produced: usize) -> bool {
    let [_, width] = geometry.input;
    let lane_use = width as f32 / (width.div_ceil(LANES) * LANES).max(1) as f32;
    geometry.kernel == [3, 3]
        && geometry.stride == [1, 1]
        && geometry.padding == [1, 1]
        && geometry.dilation == [1, 1]
        && geometry.output == geometry.input
        && produced > 0
        && produced.is_multiple_of(BLOCK)
        && read <= MAX_READ_CHANNELS
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
