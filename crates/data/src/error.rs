//! [`DataError`]: every way a data input can be wrong. Each message names the file (or the
//! setting) and says what to do about it, on one line.

use std::io;
use std::path::{Path, PathBuf};

use crate::atomic::WriteError;

/// An input file or a data setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read at all.
    /// (The I/O error is in the message, not in `source()`, so a printed chain says it once.)
    #[error("cannot read {}: {err} (check the path)", .path.display())]
    Read { path: PathBuf, err: io::Error },

    /// A gzip stream that ends early (an interrupted download or copy).
    #[error("{}: the gzip stream is truncated ({detail}); download or copy the file again", .path.display())]
    GzipTruncated { path: PathBuf, detail: String },

    /// A gzip stream that is damaged (bad header, bad CRC, bad deflate data).
    #[error("{}: the gzip stream is corrupt ({detail}); download or copy the file again", .path.display())]
    GzipCorrupt { path: PathBuf, detail: String },

    /// Content that is neither a zip (`.npz`), `.npy`, gzip nor IDX.
    #[error("{}: unrecognised file format (first bytes {magic}); give a folder of .png / .jpg images, a .npz, a .npy or an IDX file (gzipped or plain)", .path.display())]
    UnknownFormat { path: PathBuf, magic: String },

    /// A file that ends inside its header.
    #[error("{}: the file ends inside its {what} header ({len} bytes); the file is truncated, download or copy it again", .path.display())]
    HeaderShort {
        path: PathBuf,
        what: &'static str,
        len: usize,
    },

    /// The first four bytes are not an IDX magic number `00 00 TT NN`.
    #[error("{}: wrong IDX magic {magic} (expected 00 00 08 0N for unsigned-byte data); is this an MNIST IDX file?", .path.display())]
    IdxMagic { path: PathBuf, magic: String },

    /// An IDX element type other than unsigned byte.
    #[error("{}: unsupported IDX element type 0x{code:02X} ({name}); memdiff reads unsigned-byte IDX files (type 0x08) as MNIST ships them", .path.display())]
    IdxType {
        path: PathBuf,
        code: u8,
        name: &'static str,
    },

    /// The header's dimensions need more bytes than the file holds.
    #[error("{}: the IDX header claims {claimed_items} items of {item_bytes} bytes ({claimed_bytes} bytes) but the file holds only {held_bytes} data bytes; the file is truncated, download it again", .path.display())]
    IdxShort {
        path: PathBuf,
        claimed_items: u64,
        item_bytes: u64,
        claimed_bytes: u64,
        held_bytes: u64,
    },

    /// Bytes left over after the data that the header describes.
    #[error("{}: {extra} bytes after the data that the IDX header describes ({dims:?}); the header or the file is wrong", .path.display())]
    IdxTrailing {
        path: PathBuf,
        dims: Vec<u64>,
        extra: u64,
    },

    /// A `.npy` file whose header or data could not be parsed.
    #[error("{}: not a valid .npy file ({detail}); write it with numpy.save", .path.display())]
    NpyFormat { path: PathBuf, detail: String },

    /// A `.npy` file of a dtype that memdiff does not read.
    #[error("{}: unsupported .npy dtype {dtype}; save the array as float32, float64 or uint8 (e.g. a.astype('float32'))", .path.display())]
    NpyDtype { path: PathBuf, dtype: String },

    /// An array (npy or IDX) whose rank or shape cannot be a set of images.
    #[error("{}: array of shape {shape:?} is not a set of images; expected (n, d), (n, h, w), (n, c, h, w) or (n, h, w, c)", .path.display())]
    Shape { path: PathBuf, shape: Vec<u64> },

    /// A NaN or infinite value.
    #[error("{}: non-finite value {value} at index {index:?} (of shape {shape:?}); remove or replace NaN/inf values", .path.display())]
    NonFinite {
        path: PathBuf,
        index: Vec<usize>,
        shape: Vec<usize>,
        value: f64,
    },

    /// A set with no images (`n = 0`) or images with no pixels.
    #[error("{}: empty set (shape {shape:?}); a data set needs at least one image of at least one pixel", .path.display())]
    Empty { path: PathBuf, shape: Vec<u64> },

    /// More items requested than the data holds.
    #[error("{what}: asked for {requested} items but only {available} are available; lower n or use a larger data set")]
    TooFew {
        what: String,
        requested: usize,
        available: usize,
    },

    /// An index outside the data set (e.g. a stale recipe).
    #[error("{what}: index {index} is out of range for {available} items; the recipe does not match the file")]
    IndexOutOfRange {
        what: String,
        index: usize,
        available: usize,
    },

    /// An image side that the U-Net cannot take.
    #[error("image side {px} is not usable: the U-Net needs a positive multiple of 8 (8, 16, 24, 32, ...)")]
    BadSide { px: usize },

    /// A setting (GMM parameter, resize option, ...) with an invalid value.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },

    /// Labels and images that do not belong together.
    #[error("{}: {detail}", .path.display())]
    Mismatch { path: PathBuf, detail: String },

    /// An output file that could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),

    /// A rank-4 array whose channel axis cannot be told from its shape.
    #[error("{}: cannot tell the channel axis of shape {shape:?}: {detail}; pass --layout nchw (n, c, h, w) or --layout nhwc (n, h, w, c) (layout = \"nchw\" | \"nhwc\" in a config)", .path.display())]
    Layout {
        path: PathBuf,
        shape: Vec<u64>,
        detail: String,
    },

    /// An `.npz` archive that cannot be read or has no usable array.
    #[error("{}: {detail}", .path.display())]
    Npz { path: PathBuf, detail: String },

    /// An image file (PNG / JPEG) that cannot be decoded.
    #[error("{}: cannot decode the image ({detail})", .path.display())]
    Decode { path: PathBuf, detail: String },

    /// A folder of images (or one file in it) that cannot be a set: empty, mixed sizes or
    /// channel counts, the wrong side.
    #[error("{}: {detail}", .path.display())]
    Folder { path: PathBuf, detail: String },

    /// A source whose content changed since a recipe recorded its hash.
    #[error("{}: the data changed since the run recorded it (content {recorded}, now {now}); restore the original files, or train again on the new data", .path.display())]
    Changed {
        path: PathBuf,
        recorded: String,
        now: String,
    },

    /// PNG encoding failed.
    #[error("cannot encode PNG {}: {detail}", .path.display())]
    Png { path: PathBuf, detail: String },
}

impl DataError {
    pub(crate) fn read(path: &Path, source: io::Error) -> Self {
        DataError::Read {
            path: path.to_path_buf(),
            err: source,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DataError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Hex of the first (up to) four bytes, e.g. `"00 00 08 03"`.
pub(crate) fn hex4(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(empty file)".to_string();
    }
    bytes
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks that `px` is an image side the U-Net can take: a positive multiple of 8.
pub fn check_side(px: usize) -> Result<(), DataError> {
    if px == 0 || !px.is_multiple_of(8) {
        Err(DataError::BadSide { px })
    } else {
        Ok(())
    }
}
