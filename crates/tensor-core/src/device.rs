//! [`DeviceSpec`]: a device named on a command line or in a config, resolved to a candle device
//! (feature `candle`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
#[cfg(feature = "candle")]
use crate::tensor::Device;

/// Where tensors live: `cpu` or `cuda:N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// The host CPU.
    #[default]
    Cpu,
    /// CUDA device `N` (needs the `cuda` feature).
    Cuda(usize),
}

/// The kind of device, without which one: what a run spec records, so that the same run has one
/// spec on whichever GPU of a machine (or of a cluster) it executes. Serialised `cpu` or `cuda`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The host CPU.
    #[default]
    Cpu,
    /// Any CUDA device.
    Cuda,
}

impl DeviceKind {
    /// The first device of this kind (`cpu`, `cuda:0`).
    pub fn first(self) -> DeviceSpec {
        match self {
            DeviceKind::Cpu => DeviceSpec::Cpu,
            DeviceKind::Cuda => DeviceSpec::Cuda(0),
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
        })
    }
}

impl DeviceSpec {
    /// Its kind.
    pub fn kind(self) -> DeviceKind {
        match self {
            DeviceSpec::Cpu => DeviceKind::Cpu,
            DeviceSpec::Cuda(_) => DeviceKind::Cuda,
        }
    }
}

#[cfg(feature = "candle")]
impl DeviceSpec {
    /// Opens the device. A CUDA device in a build without the `cuda` feature is
    /// [`Error::Unsupported`].
    pub fn to_device(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !cfg!(feature = "cuda") {
                    return Err(Error::Unsupported {
                        what: format!(
                            "{self}: this build has no CUDA support (enable the `cuda` feature)"
                        ),
                    });
                }
                Ok(Device::new_cuda(n)?)
            }
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::Parse {
            what: "device",
            input: s.to_string(),
            expected: "`cpu`, `cuda` or `cuda:N`",
        };
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => {
                let n = s.strip_prefix("cuda:").ok_or_else(bad)?;
                n.parse().map(DeviceSpec::Cuda).map_err(|_| bad())
            }
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}
