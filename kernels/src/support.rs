//! What the zoo's backend extensions share: flex tensors as plain `f32` buffers for the CPU
//! kernels (convolution lowering, batch normalisation, pooling, fully connected layers), matrix
//! products into those buffers, where each tap of a sliding window reads, and the backward
//! pass of their non-differentiable helper operations.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Backend, DispatchDevice};
use burn::prelude::Device;
use burn::tensor::{Bytes, DType, Shape};
use gemm::Parallelism;
use rayon::prelude::*;

/// Whether `device` (or the device it differentiates on) is flex, where the zoo's CPU kernels
/// run.
pub(crate) fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// Whether `device` (or the device it differentiates on) is a GPU backend (CubeCL's runtimes:
/// wgpu, Vulkan, CUDA).
pub(crate) fn on_gpu(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        DispatchDevice::Cube(_)
    )
}

/// The elements of `tensor` in row-major order (a copy only when it is not contiguous).
///
/// # Panics
/// If `tensor` is not `f32`; callers check its dtype first.
pub(crate) fn f32_values(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(values) => values.into(),
        None => tensor
            .to_contiguous()
            .as_slice::<f32>()
            .expect("an f32 tensor's contiguous copy has a slice")
            .to_vec()
            .into(),
    }
}

/// A contiguous `f32` flex tensor of `shape` holding `values`.
pub(crate) fn f32_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape.into()),
        DType::F32,
    )
}

/// One kernel (or pooling window) tap's window along one axis: the outputs `first..last` whose read lands inside
/// the input, and the input positions they read (`start`, then every `stride`).
pub(crate) struct TapWindow {
    pub first: usize,
    pub last: usize,
    pub start: usize,
}

/// Where tap `offset` reads along an axis of `extent` inputs and `outputs` outputs; `None`
/// when every read falls in the padding.
pub(crate) fn tap_window(
    offset: usize,
    extent: usize,
    outputs: usize,
    stride: usize,
    padding_begin: usize,
    dilation: usize,
) -> Option<TapWindow> {
    // Output `o` reads input `o·stride + offset·dilation − padding_begin`.
    let shift = offset * dilation;
    let first = padding_begin.saturating_sub(shift).div_ceil(stride);
    let reach = (extent + padding_begin).checked_sub(shift + 1)?;
    let last = outputs.min(reach / stride + 1);
    (first < last).then(|| TapWindow {
        first,
        last,
        start: first * stride + shift - padding_begin,
    })
}

/// [`tap_window`] for each of `taps` kernel taps along one axis.
pub(crate) fn tap_windows(
    taps: usize,
    extent: usize,
    outputs: usize,
    stride: usize,
    padding_begin: usize,
    dilation: usize,
) -> Vec<Option<TapWindow>> {
    (0..taps)
        .map(|tap| tap_window(tap, extent, outputs, stride, padding_begin, dilation))
        .collect()
}

/// A read-only matrix inside a slice, for [`matmul`].
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub column_stride: usize,
}

impl<'a> Matrix<'a> {
    pub fn row_major(data: &'a [f32], row_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            column_stride: 1,
        }
    }

    pub fn transposed(self) -> Self {
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
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    accumulate: bool,
    shape: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    parallelism: Parallelism,
) {
    let (len, dst) = (dst.len(), dst.as_mut_ptr());
    // SAFETY: `dst` is borrowed mutably, so it overlaps neither factor, and holds initialised
    // floats for `gemm` to read where it accumulates.
    unsafe {
        write_product(
            [dst_row_stride, len],
            dst,
            accumulate,
            shape,
            lhs,
            rhs,
            parallelism,
        )
    }
}

/// [`matmul`] into memory not yet initialised: the product is written, never read, so each of
/// its `m×n` elements is initialised afterwards (the others are left as they were).
pub(crate) fn matmul_uninit(
    dst: &mut [MaybeUninit<f32>],
    dst_row_stride: usize,
    shape: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    parallelism: Parallelism,
) {
    let (len, dst) = (dst.len(), dst.as_mut_ptr().cast());
    // SAFETY: `dst` is borrowed mutably, so it overlaps neither factor; without accumulation
    // `gemm` only writes it.
    unsafe {
        write_product(
            [dst_row_stride, len],
            dst,
            false,
            shape,
            lhs,
            rhs,
            parallelism,
        )
    }
}

/// Writes (or with `accumulate` adds) `lhs (m×k) · rhs (k×n)` into the `len` floats at `dst`,
/// rows `dst_row_stride` apart.
///
/// # Safety
/// `dst` must be valid for writes of `len` floats, and for reads of them with `accumulate`, and
/// overlap neither factor.
#[allow(clippy::too_many_arguments)]
unsafe fn write_product(
    [dst_row_stride, len]: [usize; 2],
    dst: *mut f32,
    accumulate: bool,
    [m, n, k]: [usize; 3],
    lhs: Matrix,
    rhs: Matrix,
    parallelism: Parallelism,
) {
    assert!(
        fits(len, [m, n], dst_row_stride, 1),
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
    // SAFETY: the three matrices lie inside their memory (asserted above, and `dst` by the
    // caller's contract), which `gemm` alone reads and writes.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
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

/// Defines a function whose body is compiled three times, for AVX-512, for AVX2 and for the
/// baseline, and runs the widest one this CPU has (chosen at run time). The zoo is built for
/// the baseline `x86-64` target, where its element loops vectorise to 4-float SSE at best (two
/// floats at a time, for some); `gemm` and burn-flex choose their instructions at run time in
/// the same way. No fused multiply-adds are formed (Rust does not contract `a * b + c`), so
/// every path gives the same results.
macro_rules! vectorized_fn {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// The CPU must have AVX-512F.
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }

                /// # Safety
                /// The CPU must have AVX2.
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }

                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use vectorized_fn;

vectorized_fn! {
    /// Writes `values` into `slots` in order, as many as both hold; how many were written.
    pub(crate) fn write_values(slots: &mut [MaybeUninit<f32>], values: impl Iterator<Item = f32>) -> usize {
        let mut written = 0;
        for (slot, value) in slots.iter_mut().zip(values) {
            slot.write(value);
            written += 1;
        }
        written
    }
}

/// `planes · plane` floats, plane `index` being the values `plane_values(index)` yields, computed
/// in parallel and written straight into the vector: no zeroing pass over an output the size of
/// an activation first (a `memset` that took 2–3 % of a CIFAR ResNet-20 training step).
///
/// # Panics
/// If `plane_values` yields fewer than `plane` values for a plane (extra values are ignored).
pub(crate) fn from_planes<I: Iterator<Item = f32>>(
    planes: usize,
    plane: usize,
    plane_values: impl Fn(usize) -> I + Sync,
) -> Vec<f32> {
    let len = planes * plane;
    let mut values = Vec::with_capacity(len);
    if plane > 0 {
        values.spare_capacity_mut()[..len]
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(index, slots)| {
                let written = write_values(slots, plane_values(index));
                assert_eq!(written, plane, "plane {index} yielded too few values");
            });
    }
    // SAFETY: every one of the first `len` slots was written above (each plane counted its
    // writes; a short plane panics, and rayon carries the panic out before this line).
    unsafe { values.set_len(len) };
    values
}

/// The backward pass of an extension's helper operations (statistics, the pieces of a backward
/// pass): none. They are differentiated only as part of the operation they serve, whose own
/// backward pass calls them on plain tensors, so gradients stop there, as at a `detach`.
#[derive(Debug)]
pub(crate) struct Constant;

impl<B: Backend, const N: usize> Backward<B, N> for Constant {
    type State = ();

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        grads.consume::<B>(&ops.node);
    }
}

#[cfg(test)]
mod tests {
    use super::from_planes;

    #[test]
    fn from_planes_lays_the_planes_end_to_end() {
        let values = from_planes(3, 2, |plane| [plane as f32, -1.0].into_iter());
        assert_eq!(values, [0.0, -1.0, 1.0, -1.0, 2.0, -1.0]);
        assert!(from_planes(0, 4, |_| std::iter::empty()).is_empty());
    }

    #[test]
    #[should_panic(expected = "plane 1 yielded too few values")]
    fn from_planes_refuses_a_short_plane() {
        from_planes(2, 3, |plane| std::iter::repeat_n(0.0, 3 - plane));
    }
}
