//! The backend, chosen at run time: one code path for every device.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// A backend Burn can run the zoo on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendKind {
    /// Burn's pure-Rust CPU backend.
    Flex,
    /// The ndarray CPU backend (deprecated in Burn 0.22, kept for comparison).
    Ndarray,
    /// wgpu: Vulkan, Metal, DX12 or GL, whichever the machine has.
    Wgpu,
    /// wgpu pinned to Vulkan, whose kernels CubeCL compiles to SPIR-V instead of WGSL (the
    /// `vulkan` feature): the path with cooperative-matrix (tensor core) kernels and a compiled-kernel
    /// cache on disk.
    #[cfg(feature = "vulkan")]
    Vulkan,
    /// NVIDIA GPUs through CUDA (the `cuda` feature, built offline with `DOCS_RS=1`; see
    /// `docs/gpu.md`): f32 matrix products and convolutions on tensor cores as TF32.
    #[cfg(feature = "cuda")]
    Cuda,
}

impl BackendKind {
    /// Every backend compiled in, in the order benchmarks list them.
    pub const ALL: &[BackendKind] = &[
        BackendKind::Flex,
        BackendKind::Ndarray,
        BackendKind::Wgpu,
        #[cfg(feature = "vulkan")]
        BackendKind::Vulkan,
        #[cfg(feature = "cuda")]
        BackendKind::Cuda,
    ];

    /// The device of this backend (without autodiff).
    #[allow(deprecated)] // ndarray is deprecated upstream but still a backend users compare
    pub fn device(self) -> Device {
        match self {
            BackendKind::Flex => Device::flex(),
            BackendKind::Ndarray => Device::ndarray(),
            BackendKind::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
            #[cfg(feature = "vulkan")]
            BackendKind::Vulkan => Device::vulkan(DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Device::cuda(0),
        }
    }

    /// The device of this backend, started. A GPU backend opens its adapter here, with one tiny
    /// tensor read back, so a machine without the driver or adapter gets an error naming the
    /// backend instead of a panic in CubeCL's device thread halfway through a run.
    pub fn open(self) -> Result<Device, BackendUnavailable> {
        self.open_with(|_| {})
    }

    /// [`Self::open`], with `prepare` run on the device before its first tensor: where the
    /// device's default types are read or set (`Device::settings`, `Device::configure`), which
    /// on a GPU backend already starts its runtime, so a missing adapter there is the same error.
    pub fn open_with(
        self,
        prepare: impl FnOnce(&mut Device),
    ) -> Result<Device, BackendUnavailable> {
        let mut device = self.device();
        if self.is_gpu() {
            start_or_explain(self, || {
                prepare(&mut device);
                Tensor::<1>::zeros([1], &device).into_data();
            })?;
        } else {
            prepare(&mut device);
        }
        Ok(device)
    }

    /// Whether the backend runs on a GPU (benchmarks size their cases by it). wgpu counts even
    /// where its only adapter is a software rasteriser.
    pub fn is_gpu(self) -> bool {
        match self {
            BackendKind::Flex | BackendKind::Ndarray => false,
            BackendKind::Wgpu => true,
            #[cfg(feature = "vulkan")]
            BackendKind::Vulkan => true,
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => true,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            #[cfg(feature = "vulkan")]
            BackendKind::Vulkan => "vulkan",
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => "cuda",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend compiled in that could not start on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUnavailable {
    /// The backend.
    pub backend: BackendKind,
    /// What its runtime said (CubeCL reports a missing adapter by panicking in its device thread).
    pub reason: String,
}

impl fmt::Display for BackendUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backend '{}' could not start on this machine: {} (is its GPU driver installed? \
             `--backend flex` runs on the CPU)",
            self.backend, self.reason
        )
    }
}

impl std::error::Error for BackendUnavailable {}

/// Runs `start` with panics caught and their messages collected: CubeCL fails to find an
/// adapter by panicking in its device thread, and then the waiting caller panics on the closed
/// channel. The first message names the cause. The process's panic hook is swapped out only for
/// the call (one start at a time), so nothing is printed for a failure that becomes an error.
fn start_or_explain(backend: BackendKind, start: impl FnOnce()) -> Result<(), BackendUnavailable> {
    static ONE_START_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_START_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let collected = Arc::clone(&messages);
    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| text.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        if let Ok(mut messages) = collected.lock() {
            messages.push(message);
        }
    }));
    let outcome = panic::catch_unwind(AssertUnwindSafe(start));
    panic::set_hook(previous_hook);
    outcome.map_err(|_| {
        let messages = messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        BackendUnavailable {
            backend,
            reason: messages
                .first()
                .cloned()
                .unwrap_or_else(|| "its runtime panicked".to_string()),
        }
    })
}

/// A backend name that is not one of [`BackendKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend(pub String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = BackendKind::ALL.iter().map(|b| b.name()).collect();
        write!(
            f,
            "unknown backend '{}' (expected one of: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for BackendKind {
    type Err = UnknownBackend;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        BackendKind::ALL
            .iter()
            .copied()
            .find(|backend| backend.name() == name.to_ascii_lowercase())
            .ok_or_else(|| UnknownBackend(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &backend in BackendKind::ALL {
            assert_eq!(backend.name().parse::<BackendKind>(), Ok(backend));
        }
        let error = "tpu".parse::<BackendKind>().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unknown backend 'tpu' (expected one of: flex, ndarray, wgpu"),
            "{error}"
        );
    }

    #[test]
    fn a_backend_that_fails_to_start_is_an_error_with_its_first_panic_message() {
        let error = start_or_explain(BackendKind::Wgpu, || {
            let worker = std::thread::spawn(|| panic!("no adapter found on the requested API"));
            assert!(worker.join().is_err());
            panic!("called `Result::unwrap()` on an `Err` value: RecvError");
        })
        .unwrap_err();
        assert_eq!(error.backend, BackendKind::Wgpu);
        assert_eq!(error.reason, "no adapter found on the requested API");
        assert!(
            error
                .to_string()
                .starts_with("backend 'wgpu' could not start on this machine: no adapter found"),
            "{error}"
        );
        assert!(start_or_explain(BackendKind::Wgpu, || {}).is_ok());
    }

    #[test]
    fn a_failure_while_preparing_a_gpu_device_is_an_error_too() {
        let error = BackendKind::Wgpu
            .open_with(|_| panic!("Unable to acquire wgpu device: no adapter found"))
            .unwrap_err();
        assert_eq!(error.backend, BackendKind::Wgpu);
        assert_eq!(
            error.reason,
            "Unable to acquire wgpu device: no adapter found"
        );
    }

    /// An offline CUDA build (DOCS_RS=1) has no LLVM: kernels must go through NVRTC.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_compiles_kernels_with_nvrtc() {
        use burn::cubecl::cuda::compiler::CudaBackend;
        assert_eq!(CudaBackend::default(), CudaBackend::Cpp);
    }

    #[test]
    fn cpu_backends_open_without_a_probe() {
        for backend in [BackendKind::Flex, BackendKind::Ndarray] {
            let device = backend.open().expect("CPU backends always start");
            let values = Tensor::<1>::ones([3], &device).into_data();
            assert_eq!(values.try_to_vec::<f32>().unwrap(), vec![1.0; 3]);
        }
    }
}
