//! Reader for TensorFlow 1 "V2" checkpoints (tensor bundles): `P.index` + `P.data-0000K-of-0000N`.
//!
//! The index is a LevelDB-format table whose values are `BundleEntryProto` records; tensors are raw
//! little-endian bytes in the data shards. Every block and every tensor is checked against its
//! crc32c, so a truncated or corrupted checkpoint is reported instead of yielding garbage weights.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Why a checkpoint could not be read. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a TF checkpoint index: {what}")]
    Format { path: PathBuf, what: String },
    #[error("{path}: checksum mismatch in {what} (file corrupted or truncated)")]
    Checksum { path: PathBuf, what: String },
    #[error("{path}: variable '{name}' is not in the checkpoint")]
    Missing { path: PathBuf, name: String },
    #[error("{path}: variable '{name}' has dtype {dtype} (only float32 is supported)")]
    Dtype { path: PathBuf, name: String, dtype: u64 },
}

/// TensorFlow's `DT_FLOAT`.
const DT_FLOAT: u64 = 1;
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER_LEN: usize = 48;
const BLOCK_TRAILER_LEN: usize = 5;

/// One variable's record in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEntry {
    pub dtype: u64,
    pub shape: Vec<usize>,
    pub shard_id: u64,
    pub offset: u64,
    pub size: u64,
    pub masked_crc32c: u32,
}

/// An opened checkpoint: the parsed index, with tensors read from the shards on demand.
#[derive(Debug)]
pub struct TfCheckpoint {
    prefix: PathBuf,
    num_shards: u64,
    entries: BTreeMap<String, BundleEntry>,
}

impl TfCheckpoint {
    /// Opens the checkpoint with the given prefix (the path without `.index`).
    pub fn open(prefix: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let prefix = prefix.as_ref().to_path_buf();
        let index_path = with_suffix(&prefix, ".index");
        let bytes = fs::read(&index_path).map_err(|source| CheckpointError::Io { path: index_path.clone(), source })?;
        let table = read_table(&bytes).map_err(|e| e.at(&index_path))?;
        let mut num_shards = 1;
        let mut entries = BTreeMap::new();
        for (key, value) in table {
            let fmt = |what: String| CheckpointError::Format { path: index_path.clone(), what };
            if key.is_empty() {
                num_shards = parse_header(&value).map_err(fmt)?;
            } else {
                let name = String::from_utf8(key).map_err(|_| fmt("variable name is not UTF-8".into()))?;
                let entry = parse_entry(&value).map_err(|e| fmt(format!("entry '{name}': {e}")))?;
                entries.insert(name, entry);
            }
        }
        Ok(Self { prefix, num_shards, entries })
    }

    /// Variable names with their shapes, sorted by name.
    pub fn variables(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.entries.iter().map(|(name, e)| (name.as_str(), e.shape.as_slice()))
    }

    pub fn entry(&self, name: &str) -> Option<&BundleEntry> {
        self.entries.get(name)
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Reads a float32 variable (row-major, in the checkpoint's own layout) and verifies its crc32c.
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), CheckpointError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| CheckpointError::Missing { path: self.prefix.clone(), name: name.to_string() })?;
        if entry.dtype != DT_FLOAT {
            return Err(CheckpointError::Dtype {
                path: self.prefix.clone(),
                name: name.to_string(),
                dtype: entry.dtype,
            });
        }
        let shard = self.shard_path(entry.shard_id);
        let bytes = read_range(&shard, entry.offset, entry.size)?;
        if mask_crc(crc32c::crc32c(&bytes)) != entry.masked_crc32c {
            return Err(CheckpointError::Checksum { path: shard, what: format!("tensor '{name}'") });
        }
        let count: usize = entry.shape.iter().product();
        if bytes.len() != count * 4 {
            return Err(CheckpointError::Format {
                path: shard,
                what: format!("tensor '{name}' has {} bytes for shape {:?}", bytes.len(), entry.shape),
            });
        }
        let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok((entry.shape.clone(), values))
    }

    fn shard_path(&self, shard_id: u64) -> PathBuf {
        with_suffix(&self.prefix, &format!(".data-{shard_id:05}-of-{:05}", self.num_shards))
    }
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn read_range(path: &Path, offset: u64, size: u64) -> Result<Vec<u8>, CheckpointError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    let mut file = fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if offset.checked_add(size).is_none_or(|end| end > len) {
        return Err(CheckpointError::Format {
            path: path.to_path_buf(),
            what: format!("tensor at {offset}+{size} lies beyond the end ({len} bytes): truncated"),
        });
    }
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut bytes = vec![0; size as usize];
    file.read_exact(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// LevelDB's masked CRC: stored CRCs are rotated and offset so that a CRC of data containing CRCs
/// does not degenerate.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A parse error before the file name is known.
#[derive(Debug)]
enum TableError {
    Format(String),
    Checksum(String),
}

impl TableError {
    fn at(self, path: &Path) -> CheckpointError {
        let path = path.to_path_buf();
        match self {
            TableError::Format(what) => CheckpointError::Format { path, what },
            TableError::Checksum(what) => CheckpointError::Checksum { path, what },
        }
    }
}

fn format_err(what: impl Into<String>) -> TableError {
    TableError::Format(what.into())
}

/// A forward-only reader over a byte slice, with the LevelDB/protobuf varint.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64, TableError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or_else(|| format_err("varint runs past the end"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format_err("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TableError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format_err("field runs past the end"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn fixed32(&mut self) -> Result<u32, TableError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[derive(Clone, Copy)]
struct BlockHandle {
    offset: u64,
    size: u64,
}

impl BlockHandle {
    fn read(cursor: &mut Cursor) -> Result<Self, TableError> {
        Ok(Self { offset: cursor.varint()?, size: cursor.varint()? })
    }
}

/// All key/value pairs of a LevelDB table, in key order.
fn read_table(file: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, TableError> {
    if file.len() < FOOTER_LEN {
        return Err(format_err(format!("{} bytes, shorter than the 48-byte footer", file.len())));
    }
    let footer = &file[file.len() - FOOTER_LEN..];
    let magic = u64::from_le_bytes(footer[40..48].try_into().expect("8 bytes"));
    if magic != TABLE_MAGIC {
        return Err(format_err("bad table magic number (truncated or not an index file)"));
    }
    let mut cursor = Cursor::new(&footer[..40]);
    let _metaindex = BlockHandle::read(&mut cursor)?;
    let index = BlockHandle::read(&mut cursor)?;
    let mut pairs = Vec::new();
    for (_, handle) in block_entries(&read_block(file, index)?)? {
        let handle = BlockHandle::read(&mut Cursor::new(&handle))?;
        pairs.extend(block_entries(&read_block(file, handle)?)?);
    }
    Ok(pairs)
}

fn read_block(file: &[u8], handle: BlockHandle) -> Result<Vec<u8>, TableError> {
    let start = usize::try_from(handle.offset).map_err(|_| format_err("block offset overflow"))?;
    let size = usize::try_from(handle.size).map_err(|_| format_err("block size overflow"))?;
    let end = start
        .checked_add(size)
        .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN))
        .filter(|&e| e <= file.len())
        .ok_or_else(|| format_err("block lies beyond the end of the file (truncated)"))?;
    let contents = &file[start..start + size];
    let trailer = &file[start + size..end];
    let stored = u32::from_le_bytes(trailer[1..5].try_into().expect("4 bytes"));
    let crc = crc32c::crc32c_append(crc32c::crc32c(contents), &trailer[..1]);
    if mask_crc(crc) != stored {
        return Err(TableError::Checksum(format!("index block at byte {start}")));
    }
    match trailer[0] {
        0 => Ok(contents.to_vec()),
        1 => Err(format_err("snappy-compressed index blocks are not supported")),
        t => Err(format_err(format!("unknown block compression type {t}"))),
    }
}

fn block_entries(block: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, TableError> {
    if block.len() < 4 {
        return Err(format_err("block shorter than its restart count"));
    }
    let num_restarts = u32::from_le_bytes(block[block.len() - 4..].try_into().expect("4 bytes"));
    let restarts_len = (num_restarts as usize + 1) * 4;
    let data_len =
        block.len().checked_sub(restarts_len).ok_or_else(|| format_err("restart array larger than the block"))?;
    let mut cursor = Cursor::new(&block[..data_len]);
    let mut key: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    while !cursor.at_end() {
        let shared = cursor.varint()? as usize;
        let unshared = cursor.varint()? as usize;
        let value_len = cursor.varint()? as usize;
        if shared > key.len() {
            return Err(format_err("key shares more bytes than the previous key has"));
        }
        key.truncate(shared);
        key.extend_from_slice(cursor.take(unshared)?);
        out.push((key.clone(), cursor.take(value_len)?.to_vec()));
    }
    Ok(out)
}

/// Walks the fields of a protobuf message: (field number, value) where value is a varint,
/// a fixed32 or a length-delimited byte slice.
enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

fn proto_fields(bytes: &[u8]) -> Result<Vec<(u64, Field<'_>)>, TableError> {
    let mut cursor = Cursor::new(bytes);
    let mut fields = Vec::new();
    while !cursor.at_end() {
        let tag = cursor.varint()?;
        let field = match tag & 7 {
            0 => Field::Varint(cursor.varint()?),
            1 => {
                cursor.take(8)?;
                continue;
            }
            2 => {
                let len = cursor.varint()? as usize;
                Field::Bytes(cursor.take(len)?)
            }
            5 => Field::Fixed32(cursor.fixed32()?),
            wire => return Err(format_err(format!("unsupported protobuf wire type {wire}"))),
        };
        fields.push((tag >> 3, field));
    }
    Ok(fields)
}

fn parse_header(bytes: &[u8]) -> Result<u64, String> {
    let mut num_shards = 1;
    for (number, field) in proto_fields(bytes).map_err(describe)? {
        match (number, field) {
            (1, Field::Varint(n)) => num_shards = n,
            (2, Field::Varint(e)) if e != 0 => {
                return Err("big-endian checkpoints are not supported".into());
            }
            _ => {}
        }
    }
    Ok(num_shards)
}

fn parse_entry(bytes: &[u8]) -> Result<BundleEntry, String> {
    let mut entry = BundleEntry { dtype: 0, shape: Vec::new(), shard_id: 0, offset: 0, size: 0, masked_crc32c: 0 };
    for (number, field) in proto_fields(bytes).map_err(describe)? {
        match (number, field) {
            (1, Field::Varint(v)) => entry.dtype = v,
            (2, Field::Bytes(shape)) => entry.shape = parse_shape(shape)?,
            (3, Field::Varint(v)) => entry.shard_id = v,
            (4, Field::Varint(v)) => entry.offset = v,
            (5, Field::Varint(v)) => entry.size = v,
            (6, Field::Fixed32(v)) => entry.masked_crc32c = v,
            (7, Field::Bytes(_)) => return Err("partitioned (sliced) variables are not supported".into()),
            _ => {}
        }
    }
    Ok(entry)
}

fn parse_shape(bytes: &[u8]) -> Result<Vec<usize>, String> {
    let mut dims = Vec::new();
    for (number, field) in proto_fields(bytes).map_err(describe)? {
        match (number, field) {
            (2, Field::Bytes(dim)) => {
                let mut size = 0;
                for (n, f) in proto_fields(dim).map_err(describe)? {
                    if let (1, Field::Varint(v)) = (n, f) {
                        size = v as i64;
                    }
                }
                dims.push(usize::try_from(size).map_err(|_| format!("negative dimension {size}"))?);
            }
            (3, Field::Varint(1)) => return Err("unknown rank".into()),
            _ => {}
        }
    }
    Ok(dims)
}

fn describe(e: TableError) -> String {
    match e {
        TableError::Format(s) | TableError::Checksum(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_leveldb_reference_values() {
        // crc32c("123456789") = 0xE3069283 (the Castagnoli check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(mask_crc(0), 0xa282_ead8);
        assert_eq!(mask_crc(0xE306_9283), 0xE306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn varint_decoding() {
        let mut c = Cursor::new(&[0x96, 0x01, 0x7f]);
        assert_eq!(c.varint().unwrap(), 150);
        assert_eq!(c.varint().unwrap(), 127);
        assert!(c.varint().is_err());
    }
}
