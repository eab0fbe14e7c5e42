//! Input files: resolving an input argument (file, directory, glob or object-store prefix) into
//! files, cutting them into byte ranges, and reading a range back as whole lines (a local file's
//! range mapped from the page cache).

mod chunk;
mod mapped;
mod source;

pub use chunk::{lines_before, read_lines, split_ranges, ChunkBytes, RangeReader};
pub use source::{resolve_inputs, InputFile};
