//! 3×3 "same" convolutions of many channels by Winograd's minimal filtering F(2×2, 3×3)
//! (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks"): forward, input
//! gradient and weight gradient.
//!
//! Why: every 2×2 block of outputs (a tile) comes from the 4×4 block of inputs around it, and
//! F(2×2, 3×3) computes it with 16 multiplications per channel pair where the patch matrix
//! takes 36. With the input's tiles transformed (`V = Bᵀ·d·B`) and the kernel transformed
//! (`U = G·g·Gᵀ`), the products are 16 matrix products, one per transformed point `ξ`:
//! `M_ξ [tiles × O] = V_ξ [tiles × C] · U_ξ [C × O]`, and each output tile is `Aᵀ·M·A`. On
//! ResNet-18's and VGG's 64- to 512-channel layers at 32×32 the patch-matrix products already
//! ran near this CPU's peak, so 2.25× fewer multiplications was the one large step left
//! (`benches/RESULTS.md`). The input gradient of a "same" 3×3 convolution is the same
//! convolution of the output gradient by the kernel turned 180° with its channel axes swapped;
//! the weight gradient is `Gᵀ·dU·G` with `dU_ξ = dM_ξᵀ · V_ξ`, `dM = A·dY·Aᵀ` per tile.
//!
//! The transforms run channels last: a band of each image's rows is copied channels-last first,
//! so that each transform's arithmetic runs along the channels, contiguous in memory, whatever
//! the map's size (a CIFAR map's 2–4 tiles a row leave nothing to vectorise along a row).

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use super::shared::{Geometry, grown, sum_of_shares, with_local};
use crate::support::{Matrix, matmul, vectorized_fn};

/// Transformed points per tile: the 4×4 input block's.
const POINTS: usize = 16;

/// Taps of a 3×3 kernel.
const TAPS: usize = 9;

/// The fewest channels, read and written, for which the transforms' cost (linear in the
/// channels) is outweighed by the products they save (quadratic): at 32, CIFAR ResNet-20's
/// 16×16 weight gradient took 4.5 ms a call this way against 3.8 ms as a patch-matrix product;
/// at 64 its 8×8 layers' passes took 2.2–2.4 ms against 3.4–3.5 (`benches/RESULTS.md`).
const MIN_CHANNELS: usize = 64;

/// Tiles per product, about: enough rows for `gemm`'s micro-kernels, few enough that a group's
/// transformed input stays near the second-level cache (on ResNet-18's 8×8 layers 1024 were
/// slower than 128 or 256; 128, 256 and 512 ran level within the noise).
const PRODUCT_COLUMNS: usize = 256;

/// Channels each transform takes at a time: one AVX-512 vector.
const LANES: usize = 16;

/// Runs `$transform` (a function generic over its channel count `W`) on the channel vectors
/// `$inputs` and writes its results to `$targets`, [`LANES`] channels at a time (fixed-size
/// arrays, which the compiler keeps in vector registers), then one at a time for the rest;
/// every slice holds the same number of channels. A macro, not a function taking the
/// transform, so that the transform is inlined into the caller and compiled with its vector
/// instructions.
macro_rules! by_lanes {
    ($transform:ident, $inputs:expr, $targets:expr) => {{
        let inputs = $inputs;
        let mut targets = $targets;
        let channels = inputs[0].len();
        let whole = channels - channels % LANES;
        for start in (0..whole).step_by(LANES) {
            let mut values = [[0.0; LANES]; _];
            for (lanes, input) in values.iter_mut().zip(&inputs) {
                lanes.copy_from_slice(&input[start..start + LANES]);
            }
            for (target, lanes) in targets.iter_mut().zip(&$transform(&values)) {
                target[start..start + LANES].copy_from_slice(lanes);
            }
        }
        for channel in whole..channels {
            let mut values = [[0.0; 1]; _];
            for (lane, input) in values.iter_mut().zip(&inputs) {
                lane[0] = input[channel];
            }
            for (target, [value]) in targets.iter_mut().zip($transform(&values)) {
                target[channel] = value;
            }
        }
    }};
}

/// Per-thread buffers: the transformed input (`V`), the products (`M`) or the transformed
/// output gradient (`dM`), and a transform's rows.
#[derive(Default)]
struct Scratch {
    points: Vec<f32>,
    products: Vec<f32>,
    rows: Vec<f32>,
}

thread_local! {
    /// Each thread's [`Scratch`], kept from one convolution to the next.
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Runs `work` with this thread's [`Scratch`].
fn with_scratch<R>(work: impl FnOnce(&mut Scratch) -> R) -> R {
    with_local(&SCRATCH, work)
}

/// The convolution [`Geometry`] describes, when [`covers`] it.
pub(super) fn forward(geometry: &Geometry, input: &[f32], weight: &[f32]) -> Option<Vec<f32>> {
    if !covers(geometry) {
        return None;
    }
    let [channels, out_channels] = [geometry.channels, geometry.out_channels];
    let kernel = kernel_points(weight, [channels, out_channels], false);
    Some(convolve(geometry, input, channels, &kernel, out_channels))
}

/// The input gradient of the convolution [`Geometry`] describes, when [`covers`] it.
pub(super) fn input_gradient(
    geometry: &Geometry,
    weight: &[f32],
    output_grad: &[f32],
) -> Option<Vec<f32>> {
    if !covers(geometry) {
        return None;
    }
    let [channels, out_channels] = [geometry.channels, geometry.out_channels];
    let kernel = kernel_points(weight, [out_channels, channels], true);
    Some(convolve(
        geometry,
        output_grad,
        out_channels,
        &kernel,
        channels,
    ))
}

/// The weight gradient of the convolution [`Geometry`] describes, when [`covers`] it. The
/// groups of images are split into one contiguous share per thread, so the sum's order
/// depends only on the thread count.
pub(super) fn weight_gradient(
    geometry: &Geometry,
    input: &[f32],
    output_grad: &[f32],
) -> Option<Vec<f32>> {
    if !covers(geometry) {
        return None;
    }
    let [channels, out_channels] = [geometry.channels, geometry.out_channels];
    let tiling = Tiling::of(geometry);
    let [height, width] = geometry.input;
    let [plane_in, plane_out] = [channels * height * width, out_channels * height * width];
    let groups = geometry.batch.div_ceil(tiling.group);
    let shares = rayon::current_num_threads().min(groups).max(1);
    let parallelism = tiling.parallelism();
    let per_share = groups.div_ceil(shares);
    let size = POINTS * out_channels * channels;
    let share = |share: usize| {
        let mut points_grad = vec![0.0; size];
        with_scratch(|scratch| {
            for group in share * per_share..((share + 1) * per_share).min(groups) {
                let first = group * tiling.group;
                let images = tiling.group.min(geometry.batch - first);
                for band in tiling.bands() {
                    let tiles = images * band.len() * tiling.tiles[1];
                    let Scratch {
                        points,
                        products,
                        rows,
                    } = scratch;
                    let stride_in = point_stride(tiles, channels);
                    let points = grown(points, POINTS * stride_in);
                    transform_inputs(
                        &input[first * plane_in..][..images * plane_in],
                        [channels, height, width],
                        &band,
                        rows,
                        stride_in,
                        points,
                    );
                    let stride_out = point_stride(tiles, out_channels);
                    let points_out = grown(products, POINTS * stride_out);
                    transform_output_grads(
                        &output_grad[first * plane_out..][..images * plane_out],
                        [out_channels, height, width],
                        &band,
                        rows,
                        stride_out,
                        points_out,
                    );
                    for (point, destination) in
                        points_grad.chunks_mut(out_channels * channels).enumerate()
                    {
                        matmul(
                            destination,
                            channels,
                            true,
                            [out_channels, channels, tiles],
                            Matrix::row_major(&points_out[point * stride_out..], out_channels)
                                .transposed(),
                            Matrix::row_major(&points[point * stride_in..], channels),
                            parallelism,
                        );
                    }
                }
            }
        });
        points_grad
    };
    let points_grad = sum_of_shares(shares, size, share);
    Some(kernel_gradient(&points_grad, channels, out_channels))
}

/// Whether this module computes `geometry`: a 3×3 kernel, stride 1, padding 1 on every side,
/// no dilation, at least [`MIN_CHANNELS`] channels in and out, and a map of at least 4×4
/// (smaller ones are [`super::dense`]'s or waste most of a tile).
fn covers(geometry: &Geometry) -> bool {
    geometry.kernel == [3, 3]
        && geometry.stride == [1, 1]
        && geometry.padding == [1, 1]
        && geometry.dilation == [1, 1]
        && geometry.output == geometry.input
        && geometry.input.iter().all(|&side| side >= 4)
        && geometry.channels >= MIN_CHANNELS
        && geometry.out_channels >= MIN_CHANNELS
}

/// How the tiles are cut into products: `tiles` per image (`[rows, columns]` of 2×2 tiles),
/// `group` images per product, each in `band_rows` rows of tiles at a time.
struct Tiling {
    tiles: [usize; 2],
    group: usize,
    band_rows: usize,
    batch: usize,
}

impl Tiling {
    /// About [`PRODUCT_COLUMNS`] tiles per product: whole images grouped when an image has
    /// fewer (but no more per group than leaves every thread a group), bands of one image's
    /// tile rows when it has more.
    fn of(geometry: &Geometry) -> Self {
        let tiles = geometry.input.map(|side| side.div_ceil(2));
        let per_image = tiles[0] * tiles[1];
        let batch = geometry.batch;
        if per_image >= PRODUCT_COLUMNS {
            let band_rows = (PRODUCT_COLUMNS / tiles[1]).clamp(1, tiles[0]);
            return Self {
                tiles,
                group: 1,
                band_rows,
                batch,
            };
        }
        let per_thread = batch.div_ceil(rayon::current_num_threads());
        Self {
            tiles,
            group: PRODUCT_COLUMNS.div_ceil(per_image).min(per_thread).max(1),
            band_rows: tiles[0],
            batch,
        }
    }

    /// The bands of tile rows each product covers.
    fn bands(&self) -> impl Iterator<Item = Range<usize>> {
        let [rows, band] = [self.tiles[0], self.band_rows];
        (0..rows)
            .step_by(band)
            .map(move |first| first..(first + band).min(rows))
    }

    /// Whether the groups go one per thread (enough of them) or one after another, each
    /// product multithreaded.
    fn parallelism(&self) -> Parallelism {
        match self.batch.div_ceil(self.group) >= rayon::current_num_threads() {
            true => Parallelism::None,
            false => Parallelism::Rayon(0),
        }
    }
}

/// The transformed points `U = G·g·Gᵀ` of `weight` (`[O, C, 3, 3]`) as `[read][ξ][written]`,
/// reading `C` and writing `O` channels, or with `turned` the kernel turned 180° with its
/// channel axes swapped (the input gradient's: reading `O`, writing `C`, tap `(kh, kw)` being
/// the kernel's `(2 − kh, 2 − kw)`, index `8 − t`). `U_ξ` is the `read × written` matrix at
/// `ξ · written`, rows `POINTS · written` apart. Each read channel's kernels are gathered tap
/// by tap first, so that the transform runs along the written channels (for VGG's 512 × 512
/// kernels, a transform per kernel took longer than the products at 4×4).
fn kernel_points(weight: &[f32], [read, written]: [usize; 2], turned: bool) -> Vec<f32> {
    let mut points = vec![0.0; read * POINTS * written];
    if written == 0 {
        return points;
    }
    let channels = if turned { written } else { read };
    points
        .par_chunks_mut(POINTS * written)
        .enumerate()
        .for_each_init(Vec::new, |taps, (first, target)| {
            taps.resize(TAPS * written, 0.0);
            for second in 0..written {
                let [out, channel] = if turned {
                    [first, second]
                } else {
                    [second, first]
                };
                let kernel = &weight[(out * channels + channel) * TAPS..][..TAPS];
                for (tap, value) in kernel.iter().enumerate() {
                    let tap = if turned { TAPS - 1 - tap } else { tap };
                    taps[tap * written + second] = *value;
                }
            }
            transform_kernels(taps, target);
        });
    points
}

/// `U = G·g·Gᵀ` of `W` kernels' taps `g` (row by row), `G = [[1, 0, 0], [½, ½, ½],
/// [½, −½, ½], [0, 0, 1]]`, along the rows (for each kernel column), then the columns.
#[inline(always)]
fn kernel_transform<const W: usize>(g: &[[f32; W]; TAPS]) -> [[f32; W]; POINTS] {
    let mut by_column = [[[0.0; W]; 4]; 3];
    for (column, rows) in by_column.iter_mut().enumerate() {
        for c in 0..W {
            let [a, b, d] = [g[column][c], g[3 + column][c], g[6 + column][c]];
            rows[0][c] = a;
            rows[1][c] = 0.5 * (a + b + d);
            rows[2][c] = 0.5 * (a - b + d);
            rows[3][c] = d;
        }
    }
    let mut u = [[0.0; W]; POINTS];
    for k in 0..4 {
        for c in 0..W {
            let [a, b, d] = [by_column[0][k][c], by_column[1][k][c], by_column[2][k][c]];
            u[4 * k][c] = a;
            u[4 * k + 1][c] = 0.5 * (a + b + d);
            u[4 * k + 2][c] = 0.5 * (a - b + d);
            u[4 * k + 3][c] = d;
        }
    }
    u
}

vectorized_fn! {
    /// [`kernel_transform`] of one read channel's kernels, from `taps` (`[tap][written]`)
    /// into `points` (`[ξ][written]`).
    fn transform_kernels(taps: &[f32], points: &mut [f32]) {
        let written = taps.len() / TAPS;
        let g: [&[f32]; TAPS] = std::array::from_fn(|tap| &taps[tap * written..][..written]);
        let mut u = points.chunks_mut(written);
        let u: [&mut [f32]; POINTS] = std::array::from_fn(|_| u.next().expect("a row per point"));
        by_lanes!(kernel_transform, g, u);
    }
}

/// The weight gradient `[O, C, 3, 3]` from the transformed points' gradient `dU` (`[ξ][O][C]`):
/// `Gᵀ·dU·G` for each kernel.
fn kernel_gradient(points_grad: &[f32], channels: usize, out_channels: usize) -> Vec<f32> {
    let pairs = out_channels * channels;
    let mut weight_grad = vec![0.0; pairs * TAPS];
    weight_grad
        .par_chunks_mut(TAPS)
        .enumerate()
        .for_each(|(pair, kernel)| {
            let u: [f32; POINTS] = std::array::from_fn(|point| points_grad[point * pairs + pair]);
            // Gᵀ's rows are G's columns: (1, ½, ½, 0), (0, ½, −½, 0), (0, ½, ½, 1).
            let back = |a: f32, b: f32, c: f32, d: f32| {
                [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d]
            };
            let columns: [[f32; 3]; 4] =
                std::array::from_fn(|l| back(u[l], u[4 + l], u[8 + l], u[12 + l]));
            for row in 0..3 {
                let [a, b, c, d] = columns.map(|column| column[row]);
                kernel[3 * row..3 * row + 3].copy_from_slice(&back(a, b, c, d));
            }
        });
    weight_grad
}

/// `images` (`[B, read, H, W]`) convolved by the kernel's points ([`kernel_points`]):
/// `[B, written, H, W]`.
fn convolve(
    geometry: &Geometry,
    images: &[f32],
    read: usize,
    kernel: &[f32],
    written: usize,
) -> Vec<f32> {
    let tiling = Tiling::of(geometry);
    let parallelism = tiling.parallelism();
    let [height, width] = geometry.input;
    let [plane_in, plane_out] = [read * height * width, written * height * width];
    let len = geometry.batch * plane_out;
    let mut output = Vec::with_capacity(len);
    if plane_out == 0 {
        return output;
    }
    output.spare_capacity_mut()[..len]
        .par_chunks_mut(tiling.group * plane_out)
        .zip(images.par_chunks(tiling.group * plane_in))
        .for_each(|(destination, source)| {
            with_scratch(|scratch| {
                let images = destination.len() / plane_out;
                for band in tiling.bands() {
                    let tiles = images * band.len() * tiling.tiles[1];
                    let Scratch {
                        points,
                        products,
                        rows,
                    } = scratch;
                    let stride_in = point_stride(tiles, read);
                    let points = grown(points, POINTS * stride_in);
                    let size = [read, height, width];
                    transform_inputs(source, size, &band, rows, stride_in, points);
                    let stride_out = point_stride(tiles, written);
                    let products = grown(products, POINTS * stride_out);
                    for (point, product) in products.chunks_mut(stride_out).enumerate() {
                        matmul(
                            product,
                            written,
                            false,
                            [tiles, written, read],
                            Matrix::row_major(&points[point * stride_in..], read),
                            Matrix::row_major(&kernel[point * written..], POINTS * written),
                            parallelism,
                        );
                    }
                    let size = [written, height, width];
                    transform_outputs(products, size, &band, rows, stride_out, destination);
                }
            })
        });
    // SAFETY: every output row of every plane was written: the bands cover every tile row,
    // and each tile row the image's two rows (one for an odd height's last).
    unsafe { output.set_len(len) };
    output
}

/// The distance between the points' matrices of `rows × columns` each: their size rounded up
/// to whole cache lines, plus one line, so that the 16 rows of a tile, written together, fall
/// in different sets of the first-level cache (a whole number of 4 KiB pages apart they would
/// compete for one set's ways).
fn point_stride(rows: usize, columns: usize) -> usize {
    (rows * columns).next_multiple_of(16) + 16
}

/// `band`'s rows of each image in `planes` (`[images, channels, H, W]`) channels last:
/// `[images, rows, columns, channels]` in `copy`, with `border` rows and columns of zeros
/// before the image's (its row `r` is the image's row `2 · band.start + r − border`) and zeros
/// past its last row and column; `[rows, columns]` is the size of each image's copy.
fn channels_last<'a>(
    planes: &[f32],
    [channels, height, width]: [usize; 3],
    band: &Range<usize>,
    border: usize,
    [rows, columns]: [usize; 2],
    copy: &'a mut Vec<f32>,
) -> &'a [f32] {
    let per_image = rows * columns * channels;
    let images = planes.len() / (channels * height * width).max(1);
    let copy = grown(copy, images * per_image);
    for (image, planes) in planes.chunks(channels * height * width).enumerate() {
        let target = &mut copy[image * per_image..][..per_image];
        for (r, pixels) in target.chunks_mut(columns * channels).enumerate() {
            let Some(row) = (2 * band.start + r)
                .checked_sub(border)
                .filter(|&row| row < height)
            else {
                pixels.fill(0.0);
                continue;
            };
            let (before, rest) = pixels.split_at_mut(border * channels);
            let (inside, after) = rest.split_at_mut(width * channels);
            before.fill(0.0);
            after.fill(0.0);
            transpose_row(
                planes,
                [height * width, row * width, width],
                channels,
                inside,
            );
        }
    }
    copy
}

vectorized_fn! {
    /// Row `start / width` of every channel's plane in `planes` (planes `plane` apart), as
    /// `pixels`: `[width][channels]`. In blocks of [`LANES`] channels by [`LANES`] columns,
    /// each read row by row and written column by column, so that both sides move whole
    /// vectors.
    fn transpose_row(planes: &[f32], layout: [usize; 3], channels: usize, pixels: &mut [f32]) {
        let [plane, start, width] = layout;
        for first_channel in (0..channels).step_by(LANES) {
            let block_channels = LANES.min(channels - first_channel);
            for first_column in (0..width).step_by(LANES) {
                let block_columns = LANES.min(width - first_column);
                let mut block = [[0.0; LANES]; LANES];
                for (channel, values) in block.iter_mut().enumerate().take(block_channels) {
                    let source = &planes[(first_channel + channel) * plane + start + first_column..];
                    values[..block_columns].copy_from_slice(&source[..block_columns]);
                }
                for column in 0..block_columns {
                    let target = &mut pixels[(first_column + column) * channels + first_channel..];
                    for (channel, slot) in target[..block_channels].iter_mut().enumerate() {
                        *slot = block[channel][column];
                    }
                }
            }
        }
    }
}

/// The input tiles of `band` of each image in `images` (`[images, channels, H, W]`) transformed,
/// `Bᵀ·d·B`, into `points`: point `ξ`'s `[tiles][channels]` matrix at `ξ · stride`, the tiles
/// in image, row, column order. A tile's 4×4 window starts a row and a column before its
/// outputs: the channels-last copy has a border of one.
fn transform_inputs(
    images: &[f32],
    size: [usize; 3],
    band: &Range<usize>,
    bordered: &mut Vec<f32>,
    stride: usize,
    points: &mut [f32],
) {
    transform_tiles(
        images,
        size,
        band,
        1,
        bordered,
        stride,
        points,
        |corner, targets| {
            let window: [&[f32]; POINTS] =
                std::array::from_fn(|point| corner.pixel(point / 4, point % 4));
            transform_input(window, targets);
        },
    );
}

/// The output gradient's tiles of `band` of each image in `output_grads` (`[images, channels,
/// H, W]`) transformed, `A·dY·Aᵀ`, into `points` (point `ξ`'s `[tiles][channels]` matrix at
/// `ξ · stride`): each tile's own 2×2 outputs, no border.
fn transform_output_grads(
    output_grads: &[f32],
    size: [usize; 3],
    band: &Range<usize>,
    tiled: &mut Vec<f32>,
    stride: usize,
    points: &mut [f32],
) {
    transform_tiles(
        output_grads,
        size,
        band,
        0,
        tiled,
        stride,
        points,
        |corner, targets| {
            let gradients: [&[f32]; 4] = std::array::from_fn(|at| corner.pixel(at / 2, at % 2));
            transform_output_grad(gradients, targets);
        },
    );
}

/// `band`'s rows of each image in `planes` (`[images, channels, H, W]`) copied channels last
/// into `copy` with `border` rows and columns of zeros around them ([`channels_last`]), then
/// `work(corner, targets)` for each tile ([`for_each_tile`]).
#[allow(clippy::too_many_arguments)]
fn transform_tiles(
    planes: &[f32],
    size: [usize; 3],
    band: &Range<usize>,
    border: usize,
    copy: &mut Vec<f32>,
    stride: usize,
    points: &mut [f32],
    work: impl FnMut(TileCorner<'_>, [&mut [f32]; POINTS]),
) {
    let [channels, _, width] = size;
    let tile_columns = width.div_ceil(2);
    let extent = [2 * band.len() + 2 * border, 2 * tile_columns + 2 * border];
    let copy = channels_last(planes, size, band, border, extent, copy);
    let tiles = [band.len(), tile_columns];
    for_each_tile(copy, [channels, stride], extent, tiles, points, work);
}

/// One tile's corner in an image's channels-last copy (rows of `row_width` pixels).
struct TileCorner<'a> {
    copy: &'a [f32],
    corner: usize,
    row_width: usize,
    channels: usize,
}

impl<'a> TileCorner<'a> {
    /// The channel vector `r` rows and `c` columns from the corner.
    fn pixel(&self, r: usize, c: usize) -> &'a [f32] {
        &self.copy[self.corner + (r * self.row_width + c) * self.channels..][..self.channels]
    }
}

/// For each tile of each image's channels-last copy in `copies` (`[images, extent[0],
/// extent[1], channels]`, `tiles` `[rows, columns]` of them an image, tile `(i, j)`'s corner at
/// pixel `(2i, 2j)`): `work(corner, targets)`, `targets` being the tile's 16 points' channel
/// vectors in `points` (point `ξ`'s `[tiles][channels]` matrix at `ξ · stride`).
fn for_each_tile<'a>(
    copies: &'a [f32],
    [channels, stride]: [usize; 2],
    extent: [usize; 2],
    [tile_rows, tile_columns]: [usize; 2],
    points: &mut [f32],
    mut work: impl FnMut(TileCorner<'a>, [&mut [f32]; POINTS]),
) {
    let per_image = extent[0] * extent[1] * channels;
    for (image, copy) in copies.chunks(per_image).enumerate() {
        let first = image * tile_rows * tile_columns;
        for i in 0..tile_rows {
            for j in 0..tile_columns {
                let corner = TileCorner {
                    copy,
                    corner: (2 * i * extent[1] + 2 * j) * channels,
                    row_width: extent[1],
                    channels,
                };
                let tile = first + i * tile_columns + j;
                let mut targets = points
                    .chunks_mut(stride)
                    .map(|matrix| &mut matrix[tile * channels..][..channels]);
                let targets: [&mut [f32]; POINTS] =
                    std::array::from_fn(|_| targets.next().expect("a matrix per point"));
                work(corner, targets);
            }
        }
    }
}

/// `Bᵀ·d·B` of one tile's 4×4 window `d` (row by row) of `W` channels, `Bᵀ = [[1, 0, −1, 0],
/// [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`, along the rows, then the columns.
#[inline(always)]
fn input_points<const W: usize>(d: &[[f32; W]; POINTS]) -> [[f32; W]; POINTS] {
    let mut across = [[[0.0; W]; 4]; 4];
    for (r, combined) in across.iter_mut().enumerate() {
        for c in 0..W {
            let [x0, x1, x2, x3] = [
                d[4 * r][c],
                d[4 * r + 1][c],
                d[4 * r + 2][c],
                d[4 * r + 3][c],
            ];
            combined[0][c] = x0 - x2;
            combined[1][c] = x1 + x2;
            combined[2][c] = x2 - x1;
            combined[3][c] = x1 - x3;
        }
    }
    let mut v = [[0.0; W]; POINTS];
    for l in 0..4 {
        for c in 0..W {
            let [x0, x1, x2, x3] = [
                across[0][l][c],
                across[1][l][c],
                across[2][l][c],
                across[3][l][c],
            ];
            v[l][c] = x0 - x2;
            v[4 + l][c] = x1 + x2;
            v[8 + l][c] = x2 - x1;
            v[12 + l][c] = x1 - x3;
        }
    }
    v
}

vectorized_fn! {
    /// One tile's 4×4 `window` of channel vectors transformed ([`input_points`]) into its 16
    /// points' channel vectors.
    fn transform_input(window: [&[f32]; POINTS], targets: [&mut [f32]; POINTS]) {
        by_lanes!(input_points, window, targets);
    }
}

/// The products `M` (point `ξ`'s `[tiles][written]` matrix at `ξ · stride`) of `band`
/// transformed back, `Aᵀ·M·A`, into each image's planes in `destination` (`[images, written,
/// H, W]`).
fn transform_outputs(
    products: &[f32],
    [written, height, width]: [usize; 3],
    band: &Range<usize>,
    tiled: &mut Vec<f32>,
    stride: usize,
    destination: &mut [MaybeUninit<f32>],
) {
    let tile_columns = width.div_ceil(2);
    let row_width = 2 * tile_columns;
    let tiled = grown(tiled, 2 * band.len() * row_width * written);
    let rows = 2 * band.start..(2 * band.end).min(height);
    for (image, planes) in destination.chunks_mut(written * height * width).enumerate() {
        let first = image * band.len() * tile_columns;
        for i in 0..band.len() {
            for j in 0..tile_columns {
                let tile = first + i * tile_columns + j;
                let m: [&[f32]; POINTS] = std::array::from_fn(|point| {
                    &products[point * stride + tile * written..][..written]
                });
                let mut targets = tiled
                    .chunks_mut(row_width * written)
                    .skip(2 * i)
                    .take(2)
                    .flat_map(|row| row[2 * j * written..][..2 * written].chunks_mut(written));
                let targets: [&mut [f32]; 4] =
                    std::array::from_fn(|_| targets.next().expect("a tile's four outputs"));
                transform_output(m, targets);
            }
        }
        // Back to channels first: output row `row` of each plane from `tiled`'s row.
        for (channel, plane) in planes.chunks_mut(height * width).enumerate() {
            for (r, row) in rows.clone().enumerate() {
                let source = &tiled[r * row_width * written + channel..];
                let target = &mut plane[row * width..][..width];
                for (column, slot) in target.iter_mut().enumerate() {
                    slot.write(source[column * written]);
                }
            }
        }
    }
}

/// `Aᵀ·M·A` of one tile's 16 points `m` of `W` channels, `Aᵀ = [[1, 1, 1, 0], [0, 1, −1,
/// −1]]`: its four outputs, row by row.
#[inline(always)]
fn output_values<const W: usize>(m: &[[f32; W]; POINTS]) -> [[f32; W]; 4] {
    let mut down = [[[0.0; W]; 4]; 2];
    for l in 0..4 {
        for c in 0..W {
            let [m0, m1, m2, m3] = [m[l][c], m[4 + l][c], m[8 + l][c], m[12 + l][c]];
            down[0][l][c] = m0 + m1 + m2;
            down[1][l][c] = m1 - m2 - m3;
        }
    }
    let mut y = [[0.0; W]; 4];
    for (a, [s0, s1, s2, s3]) in down.iter().enumerate() {
        for c in 0..W {
            y[2 * a][c] = s0[c] + s1[c] + s2[c];
            y[2 * a + 1][c] = s1[c] - s2[c] - s3[c];
        }
    }
    y
}

vectorized_fn! {
    /// One tile's 16 points' channel vectors `m` transformed back ([`output_values`]) into its
    /// four outputs' channel vectors.
    fn transform_output(m: [&[f32]; POINTS], targets: [&mut [f32]; 4]) {
        by_lanes!(output_values, m, targets);
    }
}

/// `A·dY·Aᵀ` of one tile's 2×2 output gradient `g` (row by row) of `W` channels, `A = [[1, 0],
/// [1, 1], [1, −1], [0, −1]]`, along the rows, then the columns.
#[inline(always)]
fn output_grad_points<const W: usize>(g: &[[f32; W]; 4]) -> [[f32; W]; POINTS] {
    let mut v = [[0.0; W]; POINTS];
    for c in 0..W {
        let [g00, g01, g10, g11] = [g[0][c], g[1][c], g[2][c], g[3][c]];
        let down = [
            [g00, g01],
            [g00 + g10, g01 + g11],
            [g00 - g10, g01 - g11],
            [-g10, -g11],
        ];
        for (k, [h0, h1]) in down.into_iter().enumerate() {
            v[4 * k][c] = h0;
            v[4 * k + 1][c] = h0 + h1;
            v[4 * k + 2][c] = h0 - h1;
            v[4 * k + 3][c] = -h1;
        }
    }
    v
}

vectorized_fn! {
    /// One tile's 2×2 output-gradient channel vectors transformed ([`output_grad_points`])
    /// into its 16 points' channel vectors.
    fn transform_output_grad(gradients: [&[f32]; 4], targets: [&mut [f32]; POINTS]) {
        by_lanes!(output_grad_points, gradients, targets);
    }
}
