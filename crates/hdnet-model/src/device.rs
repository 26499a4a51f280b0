//! Choosing the compute device: Flex on the CPU always; wgpu (WGSL shaders), Vulkan (SPIR-V) and
//! CUDA when built with their cargo features.
//!
//! A GPU name is `BACKEND[:ADAPTER]`: `vulkan` or `wgpu` alone take the best adapter the driver
//! offers (Burn's default device, which `CUBECL_WGPU_DEFAULT_DEVICE` can override); an adapter is
//! `discrete:N`, `integrated:N`, `virtual:N` or `cpu` (a software driver such as Mesa's lavapipe).
//! `cuda` takes `cuda:N`.

pub use burn::prelude::Device;

/// The device names accepted by `--device`.
pub fn available() -> Vec<&'static str> {
    let mut names = vec!["cpu"];
    if cfg!(feature = "wgpu") {
        names.push("wgpu[:ADAPTER]");
    }
    if cfg!(feature = "vulkan") {
        names.push("vulkan[:ADAPTER]");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda[:N]");
    }
    names
}

/// The adapter part of a GPU device name, as Burn names it.
#[cfg_attr(not(any(feature = "wgpu", feature = "vulkan")), allow(dead_code))]
fn adapter(spec: Option<&str>) -> Result<burn::tensor::DeviceKind, String> {
    use burn::tensor::DeviceKind;
    let Some(spec) = spec else {
        return Ok(DeviceKind::DefaultDevice);
    };
    let (kind, index) = match spec.split_once(':') {
        Some((kind, index)) => {
            let index =
                index.parse::<usize>().map_err(|_| format!("adapter index '{index}' is not a non-negative integer"))?;
            (kind, Some(index))
        }
        None => (spec, None),
    };
    match (kind, index) {
        ("default", None) => Ok(DeviceKind::DefaultDevice),
        ("cpu", None) => Ok(DeviceKind::Cpu),
        ("discrete", i) => Ok(DeviceKind::DiscreteGpu(i.unwrap_or(0))),
        ("integrated", i) => Ok(DeviceKind::IntegratedGpu(i.unwrap_or(0))),
        ("virtual", i) => Ok(DeviceKind::VirtualGpu(i.unwrap_or(0))),
        _ => Err(format!("unknown adapter '{spec}' (expected default, discrete:N, integrated:N, virtual:N or cpu)")),
    }
}

/// Parses a device name without touching the hardware; an unknown or not-compiled-in backend is
/// an error naming the ones built.
pub fn parse(name: &str) -> Result<Device, String> {
    let (backend, rest) = match name.split_once(':') {
        Some((backend, rest)) => (backend, Some(rest)),
        None => (name, None),
    };
    match (backend, rest) {
        ("cpu" | "flex", None) => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        ("wgpu", rest) => Ok(Device::wgpu(adapter(rest)?)),
        #[cfg(feature = "vulkan")]
        ("vulkan" | "gpu", rest) => Ok(Device::vulkan(adapter(rest)?)),
        #[cfg(feature = "cuda")]
        ("cuda", rest) => {
            let index =
                rest.map_or(Ok(0), |i| i.parse::<usize>()).map_err(|_| format!("bad CUDA index in '{name}'"))?;
            Ok(Device::cuda(index))
        }
        _ => Err(format!(
            "device '{name}' is not available in this build (available: {}; GPUs need `cargo build --features wgpu`, `vulkan` or `cuda`)",
            available().join(", ")
        )),
    }
}

/// Parses a device name and runs one small computation on it, so that a missing adapter or
/// driver is an error here rather than a panic deep inside the first network call. Burn's GPU
/// runtimes report such failures by panicking; the panic is caught and its message returned.
pub fn open(name: &str) -> Result<Device, String> {
    let device = parse(name)?;
    if matches!(name, "cpu" | "flex") {
        return Ok(device);
    }
    let probe = device.clone();
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(move || {
        let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &probe);
        x.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(previous_hook);
    match outcome {
        Ok(3.0) => Ok(device),
        Ok(sum) => Err(format!("device '{name}' computed 1 + 2 = {sum}: its driver is not usable")),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown failure");
            let first_line = message.lines().next().unwrap_or(message);
            Err(format!("device '{name}' could not be opened: {first_line}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_names_parse() {
        assert!(parse("cpu").is_ok());
        assert!(parse("flex").is_ok());
        assert!(open("cpu").is_ok());
    }

    #[test]
    fn backends_not_built_are_named_errors() {
        let err = parse("metal").unwrap_err();
        assert!(err.contains("'metal' is not available") && err.contains("cpu"), "{err}");
        assert!(parse("cpu:discrete:0").is_err());
    }

    #[test]
    fn adapter_names_map_to_burn_kinds() {
        use burn::tensor::DeviceKind;
        assert_eq!(adapter(None).unwrap(), DeviceKind::DefaultDevice);
        assert_eq!(adapter(Some("discrete:1")).unwrap(), DeviceKind::DiscreteGpu(1));
        assert_eq!(adapter(Some("integrated")).unwrap(), DeviceKind::IntegratedGpu(0));
        assert_eq!(adapter(Some("cpu")).unwrap(), DeviceKind::Cpu);
        assert!(adapter(Some("discrete:x")).unwrap_err().contains("'x'"));
        assert!(adapter(Some("tpu")).unwrap_err().contains("unknown adapter 'tpu'"));
    }
}
