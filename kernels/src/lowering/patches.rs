//! The patch-matrix convolution on contiguous `f32` buffers, for the CPU backend (flex): the
//! forward pass, the input gradient and the weight gradient, each one matrix product per image
//! (and band of output rows) against a patch matrix gathered from the image ("im2col") or, for
//! the input gradient, scattered back into it ("col2im").
//!
//! Why: burn-flex 0.22.1 computes a convolution by converting the input to channels-last,
//! gathering 512-position patch tiles, multiplying them and scattering the products back to
//! channels-first; its input gradient is a transposed convolution (a product, then a scatter)
//! and its weight gradient a convolution over permuted copies of the input and the gradient;
//! those copies and scatters were most of a CIFAR ResNet-20 step (measured in
//! `docs/kernels.md`). Here the patch matrix's rows are in the kernel's own `(c, i, j)`
//! order and its columns in the output's `(oh, ow)` order, so neither the input, the output nor
//! the kernel is permuted, every product writes straight into its destination, and the three
//! passes share one walk over the patch rows.

use std::cell::RefCell;
use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use super::shared::{Geometry, grown, sum_of_shares, with_local};
use crate::support::{Matrix, TapWindow, matmul, matmul_uninit, tap_windows, vectorized_fn};

/// Patch matrices are built a band of output rows at a time, of at most this many floats
/// (4 MiB), so that a VGG-16 layer at 224×224 does not hold `9·64·224²` floats per thread.
const PATCH_BAND_FLOATS: usize = 1 << 20;

/// Images with fewer output positions than this are multiplied several at a time: a product
/// with a handful of columns (VGG-16's and ResNet-18's last layers at 32×32 have 4 and 1) runs
/// the `gemm` crate's narrowest micro-kernel mostly empty and pays its set-up per image.
const MIN_PRODUCT_COLUMNS: usize = 64;

/// The most output channels for which the weight gradient streams the patch matrix unpacked:
/// the height of `gemm`'s widest AVX-512 micro-kernel (4 × 16 rows), so that each patch row is
/// read once. With more channels it would be read again for every 64 of them, which measured
/// slower than packing it (ResNet-18 and VGG-16 at 32×32, 256–512 channels).
const STREAMED_PATCH_MAX_CHANNELS: usize = 64;

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

    /// Per channel: the output positions and the input elements.
    fn channel_sizes(&self) -> [usize; 2] {
        [self.output_spatial(), self.input[0] * self.input[1]]
    }

    fn output_plane(&self) -> usize {
        self.out_channels * self.output_spatial()
    }

    /// Images per product: one, or as many as make [`MIN_PRODUCT_COLUMNS`] columns when an
    /// image has fewer output positions (within the patch matrix's memory bound).
    fn group(&self) -> usize {
        let spatial = self.output_spatial().max(1);
        if spatial >= MIN_PRODUCT_COLUMNS {
            return 1;
        }
        let by_memory = PATCH_BAND_FLOATS / (self.depth() * spatial).max(1);
        MIN_PRODUCT_COLUMNS
            .div_ceil(spatial)
            .min(by_memory)
            .min(self.batch)
            .max(1)
    }

    /// A 1×1, stride-1, unpadded convolution of one image per product: the image itself is its
    /// patch matrix.
    fn direct(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.padding == [0, 0]
            && self.output == self.input
            && self.group() == 1
    }

    /// The bands of output rows each patch matrix covers (the whole image when images are
    /// grouped: [`Self::group`] keeps a group's patch matrix within the band's bound).
    fn bands(&self) -> impl Iterator<Item = Range<usize>> {
        let [out_h, out_w] = self.output;
        let rows = match self.direct() || self.group() > 1 {
            true => out_h,
            false => (PATCH_BAND_FLOATS / (self.depth() * out_w).max(1)).clamp(1, out_h.max(1)),
        };
        (0..out_h)
            .step_by(rows.max(1))
            .map(move |first| first..(first + rows).min(out_h))
    }

    /// The same convolution without the kernel rows and columns that read only padding (a 3×3
    /// kernel with padding 1 on a 1×1 image: all but its centre), and which rows and columns
    /// it keeps; `None` when every tap reads the input somewhere, or none does, or with
    /// dilation (this is for dilation 1, where the kept taps start at most `padding` in).
    ///
    /// Why: ResNet-18's last stage at a 32×32 input runs 3×3 convolutions on 1×1 images, so
    /// 8/9 of their patch matrix (and of their products) would be zeros.
    fn trimmed(&self) -> Option<(Geometry, [Range<usize>; 2])> {
        if self.dilation != [1, 1] {
            return None;
        }
        let live = |axis: usize| {
            let taps = self.axis_windows(axis);
            let first = taps.iter().position(Option::is_some)?;
            let last = taps.iter().rposition(Option::is_some)?;
            Some(first..last + 1)
        };
        let (rows, columns) = (live(0)?, live(1)?);
        if rows.len() == self.kernel[0] && columns.len() == self.kernel[1] {
            return None;
        }
        let trimmed = Geometry {
            kernel: [rows.len(), columns.len()],
            padding: [
                self.padding[0] - rows.start,
                self.padding[1] - columns.start,
            ],
            ..*self
        };
        Some((trimmed, [rows, columns]))
    }

    /// Whether consecutive output rows read consecutive input rows of the same width (stride 1,
    /// "same" width): a patch row's stretch over a band then mirrors one stretch of its input
    /// channel, with only the columns outside the tap's window to clear.
    fn rows_mirror_input(&self) -> bool {
        self.stride == [1, 1] && self.output[1] == self.input[1]
    }

    /// Where each kernel row `i` and column `j` reads, along its axis.
    fn windows(&self) -> Windows {
        let (rows, columns) = (self.axis_windows(0), self.axis_windows(1));
        let reads = (self.group() > 1).then(|| self.tap_reads(&rows, &columns));
        Windows {
            rows,
            columns,
            reads,
        }
    }

    /// Where each kernel tap along `axis` (0: rows, 1: columns) reads.
    fn axis_windows(&self, axis: usize) -> Vec<Option<TapWindow>> {
        tap_windows(
            self.kernel[axis],
            self.input[axis],
            self.output[axis],
            self.stride[axis],
            self.padding[axis],
            self.dilation[axis],
        )
    }

    /// For each kernel tap `(i, j)` and output position, the element of an input channel it
    /// reads ([`NO_READ`] for padding): the same offsets for every channel and image.
    fn tap_reads(&self, rows: &[Option<TapWindow>], columns: &[Option<TapWindow>]) -> Vec<u32> {
        let [out_w, spatial, width] = [self.output[1], self.output_spatial(), self.input[1]];
        let mut reads = vec![NO_READ; self.kernel[0] * self.kernel[1] * spatial];
        for (i, row_window) in rows.iter().enumerate() {
            for (j, column_window) in columns.iter().enumerate() {
                let (Some(row_window), Some(column_window)) = (row_window, column_window) else {
                    continue;
                };
                let tap = &mut reads[(i * self.kernel[1] + j) * spatial..][..spatial];
                for out_row in row_window.first..row_window.last {
                    let in_row = row_window.start + (out_row - row_window.first) * self.stride[0];
                    for out_column in column_window.first..column_window.last {
                        let in_column = column_window.start
                            + (out_column - column_window.first) * self.stride[1];
                        tap[out_row * out_w + out_column] = (in_row * width + in_column) as u32;
                    }
                }
            }
        }
        reads
    }
}

/// A tap read that falls in the padding.
const NO_READ: u32 = u32::MAX;

/// Where the kernel's taps read: along each axis, and for images small enough to be multiplied
/// in groups ([`Geometry::group`]), per output position too ([`Geometry::tap_reads`]).
struct Windows {
    rows: Vec<Option<TapWindow>>,
    columns: Vec<Option<TapWindow>>,
    reads: Option<Vec<u32>>,
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
/// `offset` is where that stretch of `OW` columns starts in the image's part of the patch
/// matrix (rows `row_stride` floats apart) and `run` is what it reads, `None` when it reads
/// only padding.
fn walk_patch_rows(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    row_stride: usize,
    mut visit: impl FnMut(usize, Option<Run>),
) {
    let [height, width] = geometry.input;
    let out_w = geometry.output[1];
    let mut patch_row = 0;
    for channel in 0..geometry.channels {
        for row_window in &windows.rows {
            for column_window in &windows.columns {
                for (local, out_row) in band.clone().enumerate() {
                    let offset = patch_row * row_stride + local * out_w;
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

/// Fills one image's `band.len()·OW` columns of each of the `C·kh·kw` patch rows, which
/// start `row_stride` floats apart in `patches`.
fn gather(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    image: &[f32],
    patches: &mut [f32],
    row_stride: usize,
) {
    if let Some(reads) = &windows.reads {
        return gather_by_reads(geometry.channel_sizes(), reads, image, patches, row_stride);
    }
    if geometry.rows_mirror_input() {
        return gather_mirrored_rows(geometry, windows, band, image, patches, row_stride);
    }
    let out_w = geometry.output[1];
    walk_patch_rows(geometry, windows, band, row_stride, |offset, run| {
        let row = &mut patches[offset..offset + out_w];
        let Some(run) = run else {
            row.fill(0.0);
            return;
        };
        zero(&mut row[..run.first]);
        zero(&mut row[run.last..]);
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

/// Where one patch row reads its input over a band when [`Geometry::rows_mirror_input`]: its
/// output rows `rows` (counted from the band's first) read the input from `source` on, one
/// stretch of whole input rows, of which the columns `columns` of each row are the tap's.
struct Stretch {
    rows: Range<usize>,
    columns: Range<usize>,
    source: usize,
}

impl Stretch {
    /// The span of the patch row (and, from `source`, of the input) that the stretch covers.
    fn span(&self, width: usize) -> Range<usize> {
        self.rows.start * width + self.columns.start..(self.rows.end - 1) * width + self.columns.end
    }

    /// Zeroes the elements of the covered rows that lie outside the tap's columns: a column at
    /// a time, a handful of strided stores (a `fill` per row was a `memset` call per row for
    /// one or two floats).
    fn clear_outside_columns(&self, row: &mut [f32], width: usize) {
        let covered = &mut row[self.rows.start * width..self.rows.end * width];
        for column in (0..self.columns.start).chain(self.columns.end..width) {
            for value in covered[column..].iter_mut().step_by(width) {
                *value = 0.0;
            }
        }
    }
}

/// Calls `visit(row, stretch)` for each patch row's `band.len()·W` elements in `patches`
/// (rows `row_stride` floats apart) where [`Geometry::rows_mirror_input`]; `stretch` is `None`
/// when the row reads only padding.
fn walk_mirrored_rows(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    patches: &mut [f32],
    row_stride: usize,
    mut visit: impl FnMut(&mut [f32], Option<Stretch>),
) {
    let [height, width] = geometry.input;
    let mut patch_row = 0;
    for channel in 0..geometry.channels {
        for row_window in &windows.rows {
            for column_window in &windows.columns {
                let row = &mut patches[patch_row * row_stride..][..band.len() * width];
                patch_row += 1;
                let stretch = match (row_window, column_window) {
                    (Some(rows), Some(columns)) => {
                        let valid = rows.first.max(band.start)..rows.last.min(band.end);
                        (!valid.is_empty()).then(|| Stretch {
                            rows: valid.start - band.start..valid.end - band.start,
                            columns: columns.first..columns.last,
                            source: (channel * height + rows.start + valid.start - rows.first)
                                * width
                                + columns.start,
                        })
                    }
                    _ => None,
                };
                visit(row, stretch);
            }
        }
    }
}

/// [`gather`] where [`Geometry::rows_mirror_input`]: each patch row's stretch over the band is
/// one copy of the input rows it reads (one `memcpy` instead of one per output row, which at
/// CIFAR sizes copies 8–32 floats each), after which the columns outside the tap's window, read
/// from the neighbouring input columns, are cleared.
fn gather_mirrored_rows(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    image: &[f32],
    patches: &mut [f32],
    row_stride: usize,
) {
    let width = geometry.input[1];
    walk_mirrored_rows(
        geometry,
        windows,
        band,
        patches,
        row_stride,
        |row, stretch| {
            let Some(stretch) = stretch else {
                row.fill(0.0);
                return;
            };
            let span = stretch.span(width);
            zero(&mut row[..span.start]);
            zero(&mut row[span.end..]);
            let count = span.len();
            row[span].copy_from_slice(&image[stretch.source..stretch.source + count]);
            stretch.clear_outside_columns(row, width);
        },
    );
}

vectorized_fn! {
    /// [`gather`] of a whole small image, channels of `plane` elements, from its
    /// [`Geometry::tap_reads`] for `spatial` output positions: one load (or a zero) per patch
    /// element, where walking the rows cost more than the copies for images of a few pixels.
    fn gather_by_reads(
        sizes: [usize; 2],
        reads: &[u32],
        image: &[f32],
        patches: &mut [f32],
        row_stride: usize,
    ) {
        let [spatial, plane] = sizes;
        let taps = reads.len() / spatial.max(1);
        for (channel, input) in image.chunks(plane.max(1)).enumerate() {
            for (tap, tap_reads) in reads.chunks(spatial.max(1)).enumerate() {
                let row = &mut patches[(channel * taps + tap) * row_stride..][..spatial];
                for (value, read) in row.iter_mut().zip(tap_reads) {
                    *value = input.get(*read as usize).copied().unwrap_or(0.0);
                }
            }
        }
    }
}

/// [`scatter_add`] of a whole small image: the inverse of [`gather_by_reads`].
fn scatter_add_by_reads(
    [spatial, plane]: [usize; 2],
    reads: &[u32],
    patches: &[f32],
    row_stride: usize,
    image: &mut [f32],
) {
    let taps = reads.len() / spatial.max(1);
    for (channel, target) in image.chunks_mut(plane.max(1)).enumerate() {
        for (tap, tap_reads) in reads.chunks(spatial.max(1)).enumerate() {
            let row = &patches[(channel * taps + tap) * row_stride..][..spatial];
            for (gradient, read) in row.iter().zip(tap_reads) {
                if let Some(value) = target.get_mut(*read as usize) {
                    *value += *gradient;
                }
            }
        }
    }
}

/// Zeroes `values`, where most calls get none (the padding on either side of an inner tap's
/// stretch), without a `memset` call for those.
fn zero(values: &mut [f32]) {
    if !values.is_empty() {
        values.fill(0.0);
    }
}

/// Adds every element of `patches` (laid out as [`gather`] fills it) to the image element it
/// was gathered from. Where [`Geometry::rows_mirror_input`], the elements that read padding are
/// zeroed in `patches` first, so that each patch row's stretch is one sum over its input rows.
fn scatter_add(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    patches: &mut [f32],
    row_stride: usize,
    image: &mut [f32],
) {
    if let Some(reads) = &windows.reads {
        return scatter_add_by_reads(geometry.channel_sizes(), reads, patches, row_stride, image);
    }
    if geometry.rows_mirror_input() {
        return scatter_add_mirrored_rows(geometry, windows, band, patches, row_stride, image);
    }
    walk_patch_rows(geometry, windows, band, row_stride, |offset, run| {
        let Some(run) = run else {
            return;
        };
        let read = &patches[offset + run.first..offset + run.last];
        let target = &mut image[run.source..];
        match run.step {
            1 => add_assign(target, read),
            step => target
                .iter_mut()
                .step_by(step)
                .zip(read)
                .for_each(|(value, gradient)| *value += *gradient),
        }
    });
}

/// [`scatter_add`] where [`Geometry::rows_mirror_input`]: the inverse of
/// [`gather_mirrored_rows`].
fn scatter_add_mirrored_rows(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    patches: &mut [f32],
    row_stride: usize,
    image: &mut [f32],
) {
    let width = geometry.input[1];
    walk_mirrored_rows(
        geometry,
        windows,
        band,
        patches,
        row_stride,
        |row, stretch| {
            let Some(stretch) = stretch else {
                return;
            };
            stretch.clear_outside_columns(row, width);
            let added = &row[stretch.span(width)];
            add_assign(
                &mut image[stretch.source..stretch.source + added.len()],
                added,
            );
        },
    );
}

vectorized_fn! {
    /// `target[k] += values[k]` for every `k` of `values` (`target` may be longer).
    fn add_assign(target: &mut [f32], values: &[f32]) {
        target
            .iter_mut()
            .zip(values)
            .for_each(|(value, gradient)| *value += *gradient)
    }
}

/// The kernel `[O, C, kh, kw]` cut to the rows and columns `taps` of each `kh × kw` window:
/// for one tap a strided view of the kernel itself, else a copy.
enum KeptTaps<'a> {
    One(Matrix<'a>),
    Copied { values: Vec<f32>, depth: usize },
}

impl<'a> KeptTaps<'a> {
    fn of(geometry: &Geometry, weight: &'a [f32], taps: &[Range<usize>; 2]) -> Self {
        let [kernel_h, kernel_w] = geometry.kernel;
        let window = kernel_h * kernel_w;
        if taps[0].len() * taps[1].len() == 1 {
            let tap = taps[0].start * kernel_w + taps[1].start;
            return Self::One(Matrix {
                data: &weight[tap..],
                row_stride: geometry.depth(),
                column_stride: window,
            });
        }
        let mut values = Vec::with_capacity(weight.len() / window * taps[0].len() * taps[1].len());
        for kernel in weight.chunks(window) {
            for row in taps[0].clone() {
                values.extend_from_slice(&kernel[row * kernel_w..][taps[1].clone()]);
            }
        }
        let depth = geometry.channels * taps[0].len() * taps[1].len();
        Self::Copied { values, depth }
    }

    /// The kept taps as the `O × C·kh'·kw'` kernel matrix.
    fn kernel(&self) -> Matrix<'_> {
        match self {
            Self::One(matrix) => *matrix,
            Self::Copied { values, depth } => Matrix::row_major(values, *depth),
        }
    }
}

/// Per-thread buffers: the patch matrix, and a group's output or output gradient gathered
/// into one matrix.
#[derive(Default)]
struct Scratch {
    patches: Vec<f32>,
    product: Vec<f32>,
}

thread_local! {
    /// Each thread's [`Scratch`], kept from one convolution to the next: a fresh buffer is
    /// zeroed when it grows, which for every convolution of every step cost about 3 % of a
    /// CIFAR ResNet-20 training step. It holds at most a band's patch matrix (4 MiB) and a
    /// group's product per thread.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Runs `work` with this thread's [`Scratch`].
fn with_scratch<R>(work: impl FnOnce(&mut Scratch) -> R) -> R {
    with_local(&SCRATCH, work)
}

/// Whether to give each group of images to one thread (enough groups for every thread) or to
/// run the groups one after another with multithreaded products.
fn groups_in_parallel(geometry: &Geometry) -> bool {
    geometry.batch.div_ceil(geometry.group()) >= rayon::current_num_threads()
}

/// Runs `work(first image, destination, scratch, parallelism)` for every group of images,
/// where `destination` is the group's planes of `plane` elements in `output`.
fn for_each_group<T: Send>(
    geometry: &Geometry,
    output: &mut [T],
    plane: usize,
    work: impl Fn(usize, &mut [T], &mut Scratch, Parallelism) + Sync,
) {
    if plane == 0 {
        return;
    }
    let group = geometry.group();
    if groups_in_parallel(geometry) {
        output
            .par_chunks_mut(plane * group)
            .enumerate()
            .for_each(|(index, destination)| {
                with_scratch(|scratch| work(index * group, destination, scratch, Parallelism::None))
            });
    } else {
        with_scratch(|scratch| {
            for (index, destination) in output.chunks_mut(plane * group).enumerate() {
                work(index * group, destination, scratch, Parallelism::Rayon(0));
            }
        });
    }
}

/// The patch matrix of `band` of `images` consecutive images (their planes in `inputs`), with
/// each image's `band.len()·OW` columns side by side: the image itself for a direct
/// convolution, else `patches`, filled.
fn patch_matrix<'a>(
    geometry: &Geometry,
    windows: &Windows,
    band: &Range<usize>,
    inputs: &'a [f32],
    images: usize,
    patches: &'a mut Vec<f32>,
) -> Matrix<'a> {
    let out_w = geometry.output[1];
    if geometry.direct() {
        return Matrix::row_major(&inputs[band.start * out_w..], geometry.output_spatial());
    }
    let columns = band.len() * out_w;
    let row_stride = images * columns;
    let plane = geometry.input_plane();
    let patches = grown(patches, geometry.depth() * row_stride);
    for (image, input) in inputs.chunks(plane).take(images).enumerate() {
        let part = &mut patches[image * columns..];
        gather(geometry, windows, band, input, part, row_stride);
    }
    Matrix::row_major(patches, row_stride)
}

/// The output gradient of `band` of `images` consecutive images starting at `first`, as one
/// `O × images·band.len()·OW` matrix: read in place for one image, else gathered into
/// `buffer`.
fn output_grad_matrix<'a>(
    geometry: &Geometry,
    band: &Range<usize>,
    output_grad: &'a [f32],
    [first, images]: [usize; 2],
    buffer: &'a mut Vec<f32>,
) -> Matrix<'a> {
    let [out_w, spatial] = [geometry.output[1], geometry.output_spatial()];
    let planes = &output_grad[first * geometry.output_plane()..];
    if images == 1 {
        return Matrix::row_major(&planes[band.start * out_w..], spatial);
    }
    let columns = band.len() * out_w;
    let row_stride = images * columns;
    let buffer = grown(buffer, geometry.out_channels * row_stride);
    for (channel, row) in buffer.chunks_mut(row_stride).enumerate() {
        for (image, part) in row.chunks_mut(columns).enumerate() {
            let start = image * geometry.output_plane() + channel * spatial + band.start * out_w;
            part.copy_from_slice(&planes[start..start + columns]);
        }
    }
    Matrix::row_major(buffer, row_stride)
}

/// The convolution of `input` `[B, C, H, W]` by `weight` `[O, C, kh, kw]`: `[B, O, OH, OW]`.
pub(super) fn forward(geometry: &Geometry, input: &[f32], weight: &[f32]) -> Vec<f32> {
    let Some((trimmed, taps)) = geometry.trimmed() else {
        return forward_by_taps(geometry, input, Matrix::row_major(weight, geometry.depth()));
    };
    let kept = KeptTaps::of(geometry, weight, &taps);
    forward_by_taps(&trimmed, input, kept.kernel())
}

/// [`forward`] with every tap of `kernel`, the `O × C·kh·kw` kernel matrix.
fn forward_by_taps(geometry: &Geometry, input: &[f32], kernel: Matrix) -> Vec<f32> {
    let windows = geometry.windows();
    let [out_w, spatial, depth] = [
        geometry.output[1],
        geometry.output_spatial(),
        geometry.depth(),
    ];
    let [in_plane, out_plane] = [geometry.input_plane(), geometry.output_plane()];
    // Written in place, not zeroed first: every element is one product's (a `memset` of the
    // whole output was 1.5 % of a CIFAR ResNet-20 training step).
    let len = geometry.batch * out_plane;
    let mut output = Vec::with_capacity(len);
    for_each_group(
        geometry,
        &mut output.spare_capacity_mut()[..len],
        out_plane,
        |first, destination, scratch, parallelism| {
            let images = destination.len() / out_plane;
            let inputs = &input[first * in_plane..][..images * in_plane];
            for band in geometry.bands() {
                let columns = band.len() * out_w;
                let patches = patch_matrix(
                    geometry,
                    &windows,
                    &band,
                    inputs,
                    images,
                    &mut scratch.patches,
                );
                let shape = [geometry.out_channels, images * columns, depth];
                if images == 1 {
                    let destination = &mut destination[band.start * out_w..];
                    matmul_uninit(destination, spatial, shape, kernel, patches, parallelism);
                    continue;
                }
                // A group's images share one product; each image's columns go to its plane.
                let product = grown(
                    &mut scratch.product,
                    geometry.out_channels * images * columns,
                );
                matmul(
                    product,
                    images * columns,
                    false,
                    shape,
                    kernel,
                    patches,
                    parallelism,
                );
                for (channel, row) in product.chunks(images * columns).enumerate() {
                    for (image, part) in row.chunks(columns).enumerate() {
                        let start = image * out_plane + channel * spatial + band.start * out_w;
                        destination[start..start + columns].write_copy_of_slice(part);
                    }
                }
            }
        },
    );
    // SAFETY: every element was written above: the groups cover every image, the bands every
    // output row, and each band's product (or its copy) every channel and column of the band.
    unsafe { output.set_len(len) };
    output
}

/// The gradient of the loss with respect to the convolution's input, given its gradient with
/// respect to the output: the kernel's transpose times each output gradient, scattered back.
pub(super) fn input_gradient(geometry: &Geometry, weight: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let Some((trimmed, taps)) = geometry.trimmed() else {
        let kernel = Matrix::row_major(weight, geometry.depth());
        return input_gradient_by_taps(geometry, kernel, output_grad);
    };
    let kept = KeptTaps::of(geometry, weight, &taps);
    input_gradient_by_taps(&trimmed, kept.kernel(), output_grad)
}

/// [`input_gradient`] with every tap of `kernel`, the `O × C·kh·kw` kernel matrix.
fn input_gradient_by_taps(geometry: &Geometry, kernel: Matrix, output_grad: &[f32]) -> Vec<f32> {
    let windows = geometry.windows();
    let [out_w, spatial, depth] = [
        geometry.output[1],
        geometry.output_spatial(),
        geometry.depth(),
    ];
    let in_plane = geometry.input_plane();
    let kernel_transposed = kernel.transposed();
    let mut input_grad = vec![0.0; geometry.batch * in_plane];
    for_each_group(
        geometry,
        &mut input_grad,
        in_plane,
        |first, destination, scratch, parallelism| {
            let images = destination.len() / in_plane;
            let Scratch { patches, product } = scratch;
            for band in geometry.bands() {
                let columns = band.len() * out_w;
                let band_grad =
                    output_grad_matrix(geometry, &band, output_grad, [first, images], product);
                let shape = [depth, images * columns, geometry.out_channels];
                if geometry.direct() {
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
                    continue;
                }
                let row_stride = images * columns;
                let patches = grown(patches, depth * row_stride);
                matmul(
                    patches,
                    row_stride,
                    false,
                    shape,
                    kernel_transposed,
                    band_grad,
                    parallelism,
                );
                for (image, plane) in destination.chunks_mut(in_plane).enumerate() {
                    let part = &mut patches[image * columns..];
                    scatter_add(geometry, &windows, &band, part, row_stride, plane);
                }
            }
        },
    );
    input_grad
}

/// The gradient of the loss with respect to the kernel: the sum over images of each output
/// gradient times the transpose of its patch matrix. The groups of images are split into one
/// contiguous share per thread, so the sum's order depends only on the thread count.
///
/// With at most [`STREAMED_PATCH_MAX_CHANNELS`] output channels the sum is taken transposed,
/// `[C·kh·kw, O]` = patches · output gradientᵀ, so that `gemm` packs the output gradient (`O`
/// rows) and streams the patch rows as they are, where the untransposed product makes it pack
/// (transpose) the whole patch matrix, `C·kh·kw` rows.
pub(super) fn weight_gradient(geometry: &Geometry, input: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let Some((trimmed, taps)) = geometry.trimmed() else {
        return weight_gradient_by_taps(geometry, input, output_grad);
    };
    // The taps that read only padding get no gradient.
    let kept = weight_gradient_by_taps(&trimmed, input, output_grad);
    let [kernel_h, kernel_w] = geometry.kernel;
    let mut weight_grad = vec![0.0; geometry.out_channels * geometry.depth()];
    let kept_windows = kept.chunks((taps[0].len() * taps[1].len()).max(1));
    for (kernel, gradients) in weight_grad
        .chunks_mut(kernel_h * kernel_w)
        .zip(kept_windows)
    {
        for (row, row_gradients) in taps[0].clone().zip(gradients.chunks(taps[1].len())) {
            kernel[row * kernel_w..][taps[1].clone()].copy_from_slice(row_gradients);
        }
    }
    weight_grad
}

/// [`weight_gradient`] with every tap of the kernel.
fn weight_gradient_by_taps(geometry: &Geometry, input: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let windows = geometry.windows();
    let [out_w, depth, group] = [geometry.output[1], geometry.depth(), geometry.group()];
    let in_plane = geometry.input_plane();
    let size = geometry.out_channels * depth;
    let groups = geometry.batch.div_ceil(group);
    let (shares, parallelism) = match groups_in_parallel(geometry) {
        true => (rayon::current_num_threads(), Parallelism::None),
        false => (1, Parallelism::Rayon(0)),
    };
    let per_share = groups.div_ceil(shares.max(1));
    let transposed = geometry.out_channels <= STREAMED_PATCH_MAX_CHANNELS;
    let share = |share: usize| {
        let mut weight_grad = vec![0.0; size];
        with_scratch(|scratch| {
            for group_index in share * per_share..((share + 1) * per_share).min(groups) {
                let first = group_index * group;
                let images = group.min(geometry.batch - first);
                let inputs = &input[first * in_plane..][..images * in_plane];
                for band in geometry.bands() {
                    let columns = band.len() * out_w;
                    let Scratch { patches, product } = scratch;
                    let band_grad =
                        output_grad_matrix(geometry, &band, output_grad, [first, images], product);
                    let patches = patch_matrix(geometry, &windows, &band, inputs, images, patches);
                    let positions = images * columns;
                    match transposed {
                        true => matmul(
                            &mut weight_grad,
                            geometry.out_channels,
                            true,
                            [depth, geometry.out_channels, positions],
                            patches,
                            band_grad.transposed(),
                            parallelism,
                        ),
                        false => matmul(
                            &mut weight_grad,
                            depth,
                            true,
                            [geometry.out_channels, depth, positions],
                            band_grad,
                            patches.transposed(),
                            parallelism,
                        ),
                    }
                }
            }
        });
        weight_grad
    };
    let sum = sum_of_shares(shares, size, share);
    if !transposed {
        return sum;
    }
    let mut weight_grad = vec![0.0; size];
    for (row, gradients) in sum.chunks(geometry.out_channels.max(1)).enumerate() {
        for (channel, gradient) in gradients.iter().enumerate() {
            weight_grad[channel * depth + row] = *gradient;
        }
    }
    weight_grad
}
