//! The backend, chosen at run time: one code path for every device.

use std::fmt;
use std::str::FromStr;

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
    /// NVIDIA GPUs through CUDA (the `cuda` feature; see the README for what its build needs).
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
}
