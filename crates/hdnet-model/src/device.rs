//! Choosing the compute device: Flex on the CPU always; Vulkan and CUDA when built with their
//! cargo features.

pub use burn::prelude::Device;

/// The device names accepted by `--device`.
pub fn available() -> Vec<&'static str> {
    let mut names = vec!["cpu"];
    if cfg!(feature = "vulkan") {
        names.push("vulkan");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    names
}

/// Parses a device name; an unknown or not-compiled-in backend is an error naming the ones built.
pub fn parse(name: &str) -> Result<Device, String> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "vulkan")]
        "vulkan" | "gpu" => Ok(Device::vulkan(burn::tensor::DeviceKind::DiscreteGpu(0))),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        other => Err(format!(
            "device '{other}' is not available in this build (available: {}; GPUs need `cargo build --features vulkan` or `--features cuda`)",
            available().join(", ")
        )),
    }
}
