//! Encoding Arrow record batches as Parquet files in memory, with the lake's writer settings.

use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

/// Rows per row group: large enough for fast scans, small enough to keep statistics useful.
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;

/// Writer settings for one kind of file: compression, encodings per column and sort order.
#[derive(Clone, Debug)]
pub struct FileFormat {
    properties: Arc<WriterProperties>,
}

impl FileFormat {
    /// Starts from the lake's defaults: zstd, page statistics, 1 Mi-row row groups.
    pub fn builder() -> FormatBuilder {
        FormatBuilder {
            inner: WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("valid level")))
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .set_created_by(format!("traffic {}", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// Encodes `batches` (all of `schema`) as one Parquet file.
    pub fn encode(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes> {
        let capacity = batches.iter().map(RecordBatch::get_array_memory_size).sum::<usize>() / 4 + 4096;
        let mut writer =
            ArrowWriter::try_new(Vec::with_capacity(capacity), schema.clone(), Some((*self.properties).clone()))
                .context("cannot start a Parquet file")?;
        for batch in batches {
            writer.write(batch).context("cannot encode Parquet")?;
        }
        let buffer = writer.into_inner().context("cannot finish a Parquet file")?;
        Ok(Bytes::from(buffer))
    }
}

/// Builds a [`FileFormat`].
pub struct FormatBuilder {
    inner: WriterPropertiesBuilder,
}

impl FormatBuilder {
    /// Encodes `column` with delta encoding and no dictionary: ideal for sorted time stamps and ids.
    pub fn delta(mut self, column: &str) -> Self {
        let path = ColumnPath::from(column);
        self.inner = self
            .inner
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
        self
    }

    /// Turns dictionaries off for every column: they cost a hash per value and save nothing on
    /// files whose columns are nearly unique, such as aggregates keyed by junction and day.
    pub fn without_dictionaries(mut self) -> Self {
        self.inner = self.inner.set_dictionary_enabled(false);
        self
    }

    /// Records that rows are sorted by these column indices, ascending, in this order.
    pub fn sorted_by(mut self, columns: &[usize]) -> Self {
        let sorting = columns
            .iter()
            .map(|&column_idx| SortingColumn { column_idx: column_idx as i32, descending: false, nulls_first: false })
            .collect();
        self.inner = self.inner.set_sorting_columns(Some(sorting));
        self
    }

    /// Finishes the format.
    pub fn build(self) -> FileFormat {
        FileFormat { properties: Arc::new(self.inner.build()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn round_trips_a_batch() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1, 2, 3]))]).unwrap();
        let format = FileFormat::builder().delta("x").sorted_by(&[0]).build();
        let bytes = format.encode(&schema, std::slice::from_ref(&batch)).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches, vec![batch]);
    }
}
