//! Reading the values of ONNX tensors (initializers and `Constant` nodes): the nonzero pattern
//! of a floating-point weight and the integers of a shape or axes operand. Data may sit in the
//! typed fields, in `raw_data` (little-endian) or in a file next to the model.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use super::proto::TensorProto;

// ONNX's TensorProto.DataType codes the importer reads.
const FLOAT: i32 = 1;
const INT32: i32 = 6;
const INT64: i32 = 7;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;
const BFLOAT16: i32 = 16;
// TensorProto.DataLocation
const EXTERNAL: i32 = 1;

/// The tensor's dimensions, checked to be non-negative.
pub(super) fn dims(t: &TensorProto) -> Result<Vec<usize>, String> {
    t.dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is negative")))
        .collect()
}

fn elements(t: &TensorProto) -> Result<usize, String> {
    dims(t)?
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("dimensions {:?} overflow", t.dims))
}

/// The raw little-endian bytes of the tensor, from the file or from next to the model.
fn raw<'a>(
    t: &'a TensorProto,
    external_dir: Option<&Path>,
) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    if t.data_location != EXTERNAL {
        return Ok(std::borrow::Cow::Borrowed(&t.raw_data));
    }
    let entry = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    };
    let location = entry("location").ok_or("stored outside the model without a location")?;
    let rel = Path::new(location);
    // The format keeps external data beside the model: refuse anything that leaves the folder.
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "external data location `{location}` is not a path inside the model's folder"
        ));
    }
    let dir = external_dir.ok_or_else(|| {
        format!("stored outside the model in `{location}`, and no folder was given to read it from")
    })?;
    let number = |key: &str| -> Result<Option<u64>, String> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("external data {key} `{v}` is not a number"))
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let path = dir.join(rel);
    let io = |e: std::io::Error| format!("cannot read external data {}: {e}", path.display());
    let mut f = std::fs::File::open(&path).map_err(io)?;
    let length = match number("length")? {
        Some(n) => n,
        None => f.metadata().map_err(io)?.len().saturating_sub(offset),
    };
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = vec![0u8; usize::try_from(length).map_err(|_| "external data too long")?];
    f.read_exact(&mut buf).map_err(io)?;
    Ok(std::borrow::Cow::Owned(buf))
}

/// Which entries of a floating-point tensor are nonzero (negative zero counts as zero), in
/// row-major order.
pub(super) fn nonzero(t: &TensorProto, external_dir: Option<&Path>) -> Result<Vec<bool>, String> {
    let n = elements(t)?;
    let bytes = raw(t, external_dir)?;
    let flags: Vec<bool> = match t.data_type {
        FLOAT if bytes.is_empty() => t.float_data.iter().map(|&v| v != 0.0).collect(),
        FLOAT => chunks::<4>(&bytes, n)?
            .map(|b| f32::from_le_bytes(b) != 0.0)
            .collect(),
        DOUBLE if bytes.is_empty() => t.double_data.iter().map(|&v| v != 0.0).collect(),
        DOUBLE => chunks::<8>(&bytes, n)?
            .map(|b| f64::from_le_bytes(b) != 0.0)
            .collect(),
        // Half precision: zero is every bit but the sign clear. The typed field keeps the bits
        // in int32_data.
        FLOAT16 | BFLOAT16 if bytes.is_empty() => {
            t.int32_data.iter().map(|&v| v & 0x7fff != 0).collect()
        }
        FLOAT16 | BFLOAT16 => chunks::<2>(&bytes, n)?
            .map(|b| u16::from_le_bytes(b) & 0x7fff != 0)
            .collect(),
        other => {
            return Err(format!(
                "element type {} is not a floating-point type the importer reads \
                 (float, double, float16, bfloat16)",
                type_name(other)
            ));
        }
    };
    if flags.len() != n {
        return Err(format!(
            "holds {} values for dimensions {:?}",
            flags.len(),
            t.dims
        ));
    }
    Ok(flags)
}

/// The values of an integer tensor (int64 or int32), e.g. a shape or an axes list.
pub(super) fn ints(t: &TensorProto, external_dir: Option<&Path>) -> Result<Vec<i64>, String> {
    let n = elements(t)?;
    let bytes = raw(t, external_dir)?;
    let values: Vec<i64> = match t.data_type {
        INT64 if bytes.is_empty() => t.int64_data.clone(),
        INT64 => chunks::<8>(&bytes, n)?.map(i64::from_le_bytes).collect(),
        INT32 if bytes.is_empty() => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
        INT32 => chunks::<4>(&bytes, n)?
            .map(|b| i64::from(i32::from_le_bytes(b)))
            .collect(),
        other => {
            return Err(format!(
                "element type {} where integers are expected",
                type_name(other)
            ));
        }
    };
    if values.len() != n {
        return Err(format!(
            "holds {} values for dimensions {:?}",
            values.len(),
            t.dims
        ));
    }
    Ok(values)
}

fn chunks<const B: usize>(
    bytes: &[u8],
    n: usize,
) -> Result<impl Iterator<Item = [u8; B]> + '_, String> {
    if Some(bytes.len()) != n.checked_mul(B) {
        return Err(format!(
            "raw data of {} bytes does not hold {n} values of {B} bytes",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(B)
        .map(|c| c.try_into().expect("chunks_exact yields B bytes")))
}

fn type_name(code: i32) -> String {
    let name = match code {
        0 => "undefined",
        1 => "float",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        16 => "bfloat16",
        _ => return format!("code {code}"),
    };
    name.to_string()
}
