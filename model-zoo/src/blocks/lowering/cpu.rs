//! The patch-matrix convolution on contiguous `f32` buffers, for the CPU backend (flex): the
//! forward pass, the input gradient and the weight gradient, each one matrix product per image
//! (and band of output rows) against a patch matrix gathered from the image ("im2col") or, for
//! the input gradient, scattered back into it ("col2im").
//!
//! Why: burn-flex 0.22.1 computes a convolution by converting the input to channels-last,
//! gathering 512-position patch tiles, multiplying them and scattering the products back to
//! channels-first; its input gradient is a transposed convolution (a product, then a scatter)
//! and its weight gradient a convolution over permuted copies of the input and the gradient.
//! About two thirds of a CIFAR ResNet-20 training step went to those copies and scatters
//! (`benches/RESULTS.md`). Here the patch matrix's rows are in the kernel's own `(c, i, j)`
//! order and its columns in the output's `(oh, ow)` order, so neither the input, the output nor
//! the kernel is permuted, every product writes straight into its destination, and the three
//! passes share one walk over the patch rows.

use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use super::{TapWindow, tap_window};

/// Patch matrices are built a band of output rows at a time, of at most this many floats
/// (4 MiB), so that a VGG-16 layer at 224×224 does not hold `9·64·224²` floats per thread.
const PATCH_BAND_FLOATS: usize = 1 << 20;

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

impl Geometry {
    /// Rows of the patch matrix: `C·kh·kw`.
    fn depth(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    fn input_plane(&self) -> usize {
        self.channels * self.input[0] * self.input[1]
    }

    fn output_spatial(&self) -> usize {
        self.output[0] * self.output[1]
    }

    fn output_plane(&self) -> usize {
        self.out_channels * self.output_spatial()
    }

    /// A 1×1, stride-1, unpadded convolution: the image itself is its patch matrix.
    fn pointwise(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.output == self.input
    }

    /// The bands of output rows each patch matrix covers.
    fn bands(&self) -> impl Iterator<Item = Range<usize>> {
        let [out_h, out_w] = self.output;
        let rows = match self.pointwise() {
            true => out_h,
            false => (PATCH_BAND_FLOATS / (self.depth() * out_w).max(1)).clamp(1, out_h.max(1)),
        };
        (0..out_h)
            .step_by(rows.max(1))
            .map(move |first| first..(first + rows).min(out_h))
    }

    /// Where each kernel row `i` and column `j` reads, along its axis.
    fn windows(&self) -> Windows {
        let axis = |axis: usize| -> Vec<Option<TapWindow>> {
            (0..self.kernel[axis])
                .map(|tap| {
                    tap_window(
                        tap,
                        self.input[axis],
                        self.output[axis],
                        self.stride[axis],
                        self.padding[axis],
                        self.dilation[axis],
                    )
                })
                .collect()
        };
        Windows {
            rows: axis(0),
            columns: axis(1),
        }
    }
}

struct Windows {
    rows: Vec<Option<TapWindow>>,
    columns: Vec<Option<TapWindow>>,
}

/// One row of the patch matrix within one output row: output columns `first..last` read the
/// image at `source`, then every `step` elements; the other columns read padding.
struct Run {
    source: usize,
    first: usize,
    last: usize,
    step: usize,
}

/// Calls `visit(offset, run)` for every output row of `band` in every patch row, where
/// `offset` is where that stretch of `OW` columns starts in the band's patch matrix (rows of
/// `band.len()·OW` floats) and `run` is what it reads, `None` when it reads only padding.
fn walk_patch_rows(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    mut visit: impl FnMut(usize, Option<Run>),
) {
    let [height, width] = geometry.input;
    let out_w = geometry.output[1];
    let columns = band.len() * out_w;
    let mut patch_row = 0;
    for channel in 0..geometry.channels {
        for row_window in &windows.rows {
            for column_window in &windows.columns {
                for (local, out_row) in band.clone().enumerate() {
                    let offset = patch_row * columns + local * out_w;
                    let run = match (row_window, column_window) {
                        (Some(rows), Some(cols)) if (rows.first..rows.last).contains(&out_row) => {
                            let in_row = rows.start + (out_row - rows.first) * geometry.stride[0];
                            Some(Run {
                                source: (channel * height + in_row) * width + cols.start,
                                first: cols.first,
                                last: cols.last,
                                step: geometry.stride[1],
                            })
                        }
                        _ => None,
                    };
                    visit(offset, run);
                }
                patch_row += 1;
            }
        }
    }
}

/// Fills `patches` (`C·kh·kw` rows of `band.len()·OW`) from one image.
fn gather(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    image: &[f32],
    patches: &mut [f32],
) {
    let out_w = geometry.output[1];
    walk_patch_rows(geometry, windows, band, |offset, run| {
        let row = &mut patches[offset..offset + out_w];
        let Some(run) = run else {
            row.fill(0.0);
            return;
        };
        row[..run.first].fill(0.0);
        row[run.last..].fill(0.0);
        let read = &mut row[run.first..run.last];
        let source = &image[run.source..];
        match run.step {
            1 => read.copy_from_slice(&source[..read.len()]),
            step => read
                .iter_mut()
                .zip(source.iter().step_by(step))
                .for_each(|(value, input)| *value = *input),
        }
    });
}

/// Adds every element of `patches` (laid out as [`gather`] fills it) to the image element it
/// was gathered from.
fn scatter_add(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    patches: &[f32],
    image: &mut [f32],
) {
    walk_patch_rows(geometry, windows, band, |offset, run| {
        let Some(run) = run else {
            return;
        };
        let read = &patches[offset + run.first..offset + run.last];
        let target = &mut image[run.source..];
        match run.step {
            1 => target
                .iter_mut()
                .zip(read)
                .for_each(|(value, gradient)| *value += *gradient),
            step => target
                .iter_mut()
                .step_by(step)
                .zip(read)
                .for_each(|(value, gradient)| *value += *gradient),
        }
    });
}

/// A read-only matrix inside a slice.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    data: &'a [f32],
    row_stride: usize,
    column_stride: usize,
}

impl<'a> Matrix<'a> {
    fn row_major(data: &'a [f32], row_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            column_stride: 1,
        }
    }

    fn transposed(self) -> Self {
        Self {
            row_stride: self.column_stride,
            column_stride: self.row_stride,
            ..self
        }
    }
}

/// Whether a `rows × columns` matrix with these strides lies inside `len` elements.
fn fits(len: usize, [rows, columns]: [usize; 2], row_stride: usize, column_stride: usize) -> bool {
    rows == 0 || columns == 0 || (rows - 1) * row_stride + (columns - 1) * column_stride < len
}

/// `dst (m×n, row-major with row stride dst_row_stride) = [dst +] lhs (m×k) · rhs (k×n)`.
#[allow(clippy::too_many_arguments)]
fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    accumulate: bool,
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    parallelism: Parallelism,
) {
    assert!(
        fits(dst.len(), [m, n], dst_row_stride, 1),
        "product out of bounds"
    );
    assert!(
        fits(lhs.data.len(), [m, k], lhs.row_stride, lhs.column_stride),
        "left factor out of bounds"
    );
    assert!(
        fits(rhs.data.len(), [k, n], rhs.row_stride, rhs.column_stride),
        "right factor out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the three matrices lie inside their slices (asserted above), `dst` is borrowed
    // mutably so it overlaps neither factor, and `gemm` reads and writes nothing else.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.column_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.column_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Whether to give each image to one thread (enough images for every thread) or to run the
/// images one after another with multithreaded products.
fn images_in_parallel(batch: usize) -> bool {
    batch >= rayon::current_num_threads()
}

/// Runs `work(image, destination, patch buffer, parallelism)` for every image, where
/// `destination` is that image's `plane` elements of `output`.
fn for_each_image(
    batch: usize,
    output: &mut [f32],
    plane: usize,
    work: impl Fn(usize, &mut [f32], &mut Vec<f32>, Parallelism) + Sync,
) {
    if plane == 0 {
        return;
    }
    if images_in_parallel(batch) {
        output
            .par_chunks_mut(plane)
            .enumerate()
            .for_each_init(Vec::new, |patches, (image, destination)| {
                work(image, destination, patches, Parallelism::None)
            });
    } else {
        let mut patches = Vec::new();
        for (image, destination) in output.chunks_mut(plane).enumerate() {
            work(image, destination, &mut patches, Parallelism::Rayon(0));
        }
    }
}

/// The patch matrix of `band` of `image`, and its row stride: the image itself for a pointwise
/// convolution, else `patches`, filled.
fn patch_matrix<'a>(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    image: &'a [f32],
    patches: &'a mut Vec<f32>,
) -> Matrix<'a> {
    let out_w = geometry.output[1];
    if geometry.pointwise() {
        return Matrix::row_major(&image[band.start * out_w..], geometry.output_spatial());
    }
    let columns = band.len() * out_w;
    patches.resize(geometry.depth() * columns, 0.0);
    gather(geometry, windows, band, image, patches);
    Matrix::row_major(patches, columns)
}

/// The convolution of `input` `[B, C, H, W]` by `weight` `[O, C, kh, kw]`: `[B, O, OH, OW]`.
pub(super) fn forward(geometry: &Geometry, input: &[f32], weight: &[f32]) -> Vec<f32> {
    let windows = geometry.windows();
    let [out_w, spatial, depth] = [
        geometry.output[1],
        geometry.output_spatial(),
        geometry.depth(),
    ];
    let kernel = Matrix::row_major(weight, depth);
    let mut output = vec![0.0; geometry.batch * geometry.output_plane()];
    for_each_image(
        geometry.batch,
        &mut output,
        geometry.output_plane(),
        |index, destination, patches, parallelism| {
            let image = &input[index * geometry.input_plane()..][..geometry.input_plane()];
            for band in geometry.bands() {
                let patches = patch_matrix(geometry, &windows, &band, image, patches);
                matmul(
                    &mut destination[band.start * out_w..],
                    spatial,
                    false,
                    [geometry.out_channels, band.len() * out_w, depth],
                    kernel,
                    patches,
                    parallelism,
                );
            }
        },
    );
    output
}

/// The gradient of the loss with respect to the convolution's input, given its gradient with
/// respect to the output: the kernel's transpose times each output gradient, scattered back.
pub(super) fn input_gradient(geometry: &Geometry, weight: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let windows = geometry.windows();
    let [out_w, spatial, depth] = [
        geometry.output[1],
        geometry.output_spatial(),
        geometry.depth(),
    ];
    let kernel_transposed = Matrix::row_major(weight, depth).transposed();
    let mut input_grad = vec![0.0; geometry.batch * geometry.input_plane()];
    for_each_image(
        geometry.batch,
        &mut input_grad,
        geometry.input_plane(),
        |index, destination, patches, parallelism| {
            let output_grad = &output_grad[index * geometry.output_plane()..];
            for band in geometry.bands() {
                let columns = band.len() * out_w;
                let band_grad = Matrix::row_major(&output_grad[band.start * out_w..], spatial);
                let shape = [depth, columns, geometry.out_channels];
                if geometry.pointwise() {
                    let destination = &mut destination[band.start * out_w..];
                    matmul(
                        destination,
                        spatial,
                        false,
                        shape,
                        kernel_transposed,
                        band_grad,
                        parallelism,
                    );
                } else {
                    patches.resize(depth * columns, 0.0);
                    matmul(
                        patches,
                        columns,
                        false,
                        shape,
                        kernel_transposed,
                        band_grad,
                        parallelism,
                    );
                    scatter_add(geometry, &windows, &band, patches, destination);
                }
            }
        },
    );
    input_grad
}

/// The gradient of the loss with respect to the kernel: the sum over images of each output
/// gradient times the transpose of its patch matrix. The images are split into one contiguous
/// share per thread, so the sum's order depends only on the thread count.
pub(super) fn weight_gradient(geometry: &Geometry, input: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let windows = geometry.windows();
    let [out_w, spatial, depth] = [
        geometry.output[1],
        geometry.output_spatial(),
        geometry.depth(),
    ];
    let size = geometry.out_channels * depth;
    let (shares, parallelism) = match images_in_parallel(geometry.batch) {
        true => (rayon::current_num_threads(), Parallelism::None),
        false => (1, Parallelism::Rayon(0)),
    };
    let per_share = geometry.batch.div_ceil(shares.max(1));
    let share = |share: usize| {
        let mut weight_grad = vec![0.0; size];
        let mut patches = Vec::new();
        let images = share * per_share..((share + 1) * per_share).min(geometry.batch);
        for index in images {
            let image = &input[index * geometry.input_plane()..][..geometry.input_plane()];
            let output_grad = &output_grad[index * geometry.output_plane()..];
            for band in geometry.bands() {
                let band_grad = Matrix::row_major(&output_grad[band.start * out_w..], spatial);
                let patches = patch_matrix(geometry, &windows, &band, image, &mut patches);
                matmul(
                    &mut weight_grad,
                    depth,
                    true,
                    [geometry.out_channels, depth, band.len() * out_w],
                    band_grad,
                    patches.transposed(),
                    parallelism,
                );
            }
        }
        weight_grad
    };
    (0..shares)
        .into_par_iter()
        .map(share)
        .reduce_with(|mut total, part| {
            total
                .iter_mut()
                .zip(part)
                .for_each(|(sum, value)| *sum += value);
            total
        })
        .unwrap_or_else(|| vec![0.0; size])
}
