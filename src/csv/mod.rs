//! Historical count files: finding them, cutting them into chunks and parsing them into columns.

mod canonical;
pub mod chunk;
pub mod columns;

pub mod fields;
mod mapped;
pub mod parse;
pub mod source;

pub use chunk::{lines_before, read_lines, split_ranges, ChunkBytes, RangeReader};
pub use columns::{detect_layout, ColumnMap, Layout};
pub use parse::{parse_chunk, CountColumns, ParsedChunk, RejectedLine};
pub use source::{resolve_inputs, InputFile};
