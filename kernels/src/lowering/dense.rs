//! Convolutions over maps with fewer pixels than kernel taps, computed as the fully connected
//! layer they are: one product with the convolution's matrix.
//!
//! Why: on a 2×2 map a 3×3 kernel with padding 1 reads the image with four of its nine taps at
//! every output position, a different four at each, so the patch matrix is 5/9 zeros; ResNet-18's
//! third stage at a 32×32 input and VGG's last block are such layers. A convolution is linear:
//! `out[b, o, p] = Σ_{c, q} M[o·P + p, c·Q + q] · x[b, c, q]` over the `P` output and `Q` input
//! positions of a map, with `M` holding the kernel tap that links `q` to `p` (zero where none
//! does). With `Q` below the kernel's taps, `M` has fewer entries than the patch matrix has per
//! image, and the three passes are single products in the tensors' own layouts: the output is
//! `x · Mᵀ` (`[B, C·Q]` by `[C·Q, O·P]`), the input gradient `dy · M`, and the weight gradient
//! `dyᵀ · x` folded back onto the kernel's taps.

use std::cell::RefCell;

use gemm::Parallelism;
use rayon::prelude::*;

use super::shared::{Geometry, grown, with_local};
use crate::support::{Matrix, matmul, matmul_uninit};

thread_local! {
    /// Each thread's buffer for a convolution matrix or the weight gradient's matrix, kept
    /// from one convolution to the next. Why: a fresh one is a fresh allocation whose pages
    /// fault in and are zeroed as they are written; at 4 MiB (ResNet-18's 256-channel 2×2
    /// layers) building the matrix took 0.7–0.9 ms that way, at 16 MiB (VGG's 512-channel
    /// ones) 3–14 ms (`benches/RESULTS.md`).
    static MATRIX: RefCell<Vec<f32>> = RefCell::default();
}

/// The convolution [`Geometry`] describes, when [`links`] takes it.
pub(super) fn forward(geometry: &Geometry, input: &[f32], weight: &[f32]) -> Option<Vec<f32>> {
    let links = links(geometry)?;
    let [rows, columns] = matrix_size(geometry);
    Some(with_matrix(
        rows * columns,
        |matrix_transposed| {
            convolution_matrix_transposed(geometry, &links, weight, matrix_transposed)
        },
        |matrix_transposed| {
            product(
                [geometry.batch, rows, columns],
                Matrix::row_major(input, columns),
                Matrix::row_major(matrix_transposed, rows),
            )
        },
    ))
}

/// The input gradient of the convolution [`Geometry`] describes, when [`links`] takes it.
pub(super) fn input_gradient(
    geometry: &Geometry,
    weight: &[f32],
    output_grad: &[f32],
) -> Option<Vec<f32>> {
    let links = links(geometry)?;
    let [rows, columns] = matrix_size(geometry);
    Some(with_matrix(
        rows * columns,
        |matrix| convolution_matrix(geometry, &links, weight, matrix),
        |matrix| {
            product(
                [geometry.batch, columns, rows],
                Matrix::row_major(output_grad, rows),
                Matrix::row_major(matrix, columns),
            )
        },
    ))
}

/// The weight gradient of the convolution [`Geometry`] describes, when [`links`] takes it: the
/// gradient of the convolution matrix, each entry added to the tap it holds.
pub(super) fn weight_gradient(
    geometry: &Geometry,
    input: &[f32],
    output_grad: &[f32],
) -> Option<Vec<f32>> {
    let links = links(geometry)?;
    let [rows, columns] = matrix_size(geometry);
    Some(with_matrix(
        rows * columns,
        |matrix_grad| {
            matmul(
                matrix_grad,
                columns,
                false,
                [rows, columns, geometry.batch],
                Matrix::row_major(output_grad, rows).transposed(),
                Matrix::row_major(input, columns),
                Parallelism::Rayon(0),
            )
        },
        |matrix_grad| fold_onto_taps(geometry, &links, matrix_grad),
    ))
}

/// `read(matrix)` after `build(matrix)` has written all `len` floats of this thread's
/// [`MATRIX`] buffer.
fn with_matrix<R>(len: usize, build: impl FnOnce(&mut [f32]), read: impl FnOnce(&[f32]) -> R) -> R {
    with_local(&MATRIX, |buffer| {
        let matrix = grown(buffer, len);
        build(matrix);
        read(matrix)
    })
}

/// The weight gradient from the convolution matrix's gradient: each entry added to the tap it
/// holds.
fn fold_onto_taps(geometry: &Geometry, links: &[Option<usize>], matrix_grad: &[f32]) -> Vec<f32> {
    let [_, columns] = matrix_size(geometry);
    let [positions_in, positions_out] = position_counts(geometry);
    let taps = geometry.kernel[0] * geometry.kernel[1];
    let mut weight_grad = vec![0.0; geometry.out_channels * geometry.channels * taps];
    weight_grad
        .par_chunks_mut(geometry.channels * taps)
        .zip(matrix_grad.par_chunks(positions_out * columns))
        .for_each(|(kernel_grad, rows)| {
            for (row, link_row) in rows.chunks(columns).zip(links.chunks(positions_in)) {
                for (channel, values) in row.chunks(positions_in).enumerate() {
                    let taps_grad = &mut kernel_grad[channel * taps..][..taps];
                    for (value, link) in values.iter().zip(link_row) {
                        if let Some(tap) = link {
                            taps_grad[*tap] += value;
                        }
                    }
                }
            }
        });
    weight_grad
}

/// `lhs · rhs` (`[m, k]` by `[k, n]`, `shape` `[m, n, k]`) as a new row-major vector.
fn product(shape: [usize; 3], lhs: Matrix, rhs: Matrix) -> Vec<f32> {
    let len = shape[0] * shape[1];
    let mut values = Vec::with_capacity(len);
    matmul_uninit(
        &mut values.spare_capacity_mut()[..len],
        shape[1],
        shape,
        lhs,
        rhs,
        Parallelism::Rayon(0),
    );
    // SAFETY: the product wrote all `m × n` elements.
    unsafe { values.set_len(len) };
    values
}

/// Input and output positions per channel: `[Q, P]`.
fn position_counts(geometry: &Geometry) -> [usize; 2] {
    [
        geometry.input[0] * geometry.input[1],
        geometry.output[0] * geometry.output[1],
    ]
}

/// The convolution matrix's `[O·P, C·Q]`.
fn matrix_size(geometry: &Geometry) -> [usize; 2] {
    let [positions_in, positions_out] = position_counts(geometry);
    [
        geometry.out_channels * positions_out,
        geometry.channels * positions_in,
    ]
}

/// For each output position `p` and input position `q` (`[P, Q]`, row-major), the kernel tap
/// that links them; `None` when the map has as many pixels as the kernel has taps or more (the
/// patch matrix is then the smaller), or has no output.
fn links(geometry: &Geometry) -> Option<Vec<Option<usize>>> {
    let [positions_in, positions_out] = position_counts(geometry);
    let [kernel_h, kernel_w] = geometry.kernel;
    if positions_in >= kernel_h * kernel_w || positions_out == 0 || positions_in == 0 {
        return None;
    }
    // The tap of kernel row/column size `kernel` with which output `out` reads input `at`.
    let tap = |axis: usize, out: usize, at: usize| {
        let offset = (at + geometry.padding[axis]).checked_sub(out * geometry.stride[axis])?;
        let dilation = geometry.dilation[axis];
        (offset.is_multiple_of(dilation) && offset / dilation < geometry.kernel[axis])
            .then_some(offset / dilation)
    };
    let [out_w, in_w] = [geometry.output[1], geometry.input[1]];
    let mut links = Vec::with_capacity(positions_out * positions_in);
    for out in 0..positions_out {
        for at in 0..positions_in {
            let row = tap(0, out / out_w, at / in_w);
            let column = tap(1, out % out_w, at % in_w);
            links.push(row.zip(column).map(|(row, column)| row * kernel_w + column));
        }
    }
    Some(links)
}

/// The convolution matrix `M` (`[O·P, C·Q]`, row-major) of `weight` (`[O, C, kh, kw]`), into
/// `matrix`, every entry written.
fn convolution_matrix(
    geometry: &Geometry,
    links: &[Option<usize>],
    weight: &[f32],
    matrix: &mut [f32],
) {
    let [_, columns] = matrix_size(geometry);
    let [positions_in, positions_out] = position_counts(geometry);
    let taps = geometry.kernel[0] * geometry.kernel[1];
    matrix
        .par_chunks_mut(positions_out * columns)
        .zip(weight.par_chunks(geometry.channels * taps))
        .for_each(|(block, kernel)| {
            for (row, link_row) in block.chunks_mut(columns).zip(links.chunks(positions_in)) {
                for (values, taps_of) in row.chunks_mut(positions_in).zip(kernel.chunks(taps)) {
                    for (value, link) in values.iter_mut().zip(link_row) {
                        *value = link.map_or(0.0, |tap| taps_of[tap]);
                    }
                }
            }
        });
}

/// `Mᵀ` (`[C·Q, O·P]`, row-major) into `matrix`, every entry written, built as such for the
/// forward product `x · Mᵀ`.
///
/// Why: given `M` with its strides swapped, `gemm` repacks it with a strided transposing copy;
/// ResNet-18's 2×2 256-channel forward product (batch 128, in the model) took 3.5–3.7 ms that
/// way against 1.5 ms from `Mᵀ` laid out row-major (`benches/RESULTS.md`).
fn convolution_matrix_transposed(
    geometry: &Geometry,
    links: &[Option<usize>],
    weight: &[f32],
    matrix: &mut [f32],
) {
    let [rows, _] = matrix_size(geometry);
    let [positions_in, positions_out] = position_counts(geometry);
    let taps = geometry.kernel[0] * geometry.kernel[1];
    let kernel_stride = geometry.channels * taps;
    matrix
        .par_chunks_mut(positions_in * rows)
        .enumerate()
        .for_each(|(channel, block)| {
            for (at, row) in block.chunks_mut(rows).enumerate() {
                for (out_channel, values) in row.chunks_mut(positions_out).enumerate() {
                    let taps_of = &weight[out_channel * kernel_stride + channel * taps..][..taps];
                    let link_column = links[at..].iter().step_by(positions_in);
                    for (value, link) in values.iter_mut().zip(link_column) {
                        *value = link.map_or(0.0, |tap| taps_of[tap]);
                    }
                }
            }
        });
}
