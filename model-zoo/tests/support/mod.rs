//! What several test binaries share.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::prelude::*;

/// The default wgpu device when the machine has an adapter (Vulkan, Metal, DX12 or GL — Mesa's
/// software rasteriser counts), checked by one small sum read back; otherwise `None`, after
/// saying on stderr why the caller skips.
pub fn wgpu_device() -> Option<Device> {
    let gpu = Device::wgpu(DeviceKind::DefaultDevice);
    let probe = catch_unwind(AssertUnwindSafe(|| {
        Tensor::<1>::ones([4], &gpu).sum().into_scalar::<f32>()
    }));
    match probe {
        Ok(sum) => {
            assert_eq!(sum, 4.0);
            Some(gpu)
        }
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            eprintln!("skipped: no wgpu adapter here ({reason})");
            None
        }
    }
}
