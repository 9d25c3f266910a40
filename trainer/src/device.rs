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
}

impl BackendKind {
    /// Every backend, in the order benchmarks list them.
    pub const ALL: [BackendKind; 3] = [BackendKind::Flex, BackendKind::Ndarray, BackendKind::Wgpu];

    /// The device of this backend (without autodiff).
    #[allow(deprecated)] // ndarray is deprecated upstream but still a backend users compare
    pub fn device(self) -> Device {
        match self {
            BackendKind::Flex => Device::flex(),
            BackendKind::Ndarray => Device::ndarray(),
            BackendKind::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
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
            .into_iter()
            .find(|backend| backend.name() == name.to_ascii_lowercase())
            .ok_or_else(|| UnknownBackend(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for backend in BackendKind::ALL {
            assert_eq!(backend.name().parse::<BackendKind>(), Ok(backend));
        }
        let error = "cuda".parse::<BackendKind>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown backend 'cuda' (expected one of: flex, ndarray, wgpu)"
        );
    }
}
