//! Encoding Arrow record batches as Parquet files in memory, with the lake's writer settings.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

mod required;

pub use required::RequiredColumn;

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

    /// Joins Parquet files of one schema, encoded with this format, into one file: their row
    /// groups in order, copied without decoding (page indexes kept, so readers still prune).
    /// This is how a file written in parts by several workers becomes one object.
    pub fn concatenate(&self, parts: &[Bytes]) -> Result<Bytes> {
        let read = |part: &Bytes| {
            ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Optional)
                .parse_and_finish(part)
                .context("cannot read a Parquet part")
        };
        let metadata = parts.iter().map(read).collect::<Result<Vec<_>>>()?;
        let Some(first) = metadata.first() else { bail!("no Parquet parts to join") };
        let schema = first.file_metadata().schema_descr();
        if let Some(other) = metadata.iter().find(|m| m.file_metadata().schema_descr() != schema) {
            bail!("Parquet parts of different schemas: {:?}", other.file_metadata().schema());
        }
        let capacity = parts.iter().map(Bytes::len).sum::<usize>() + 4096;
        let mut writer =
            SerializedFileWriter::new(Vec::with_capacity(capacity), schema.root_schema_ptr(), self.properties.clone())?;
        // The Arrow schema the parts carry, so readers get the same Arrow types back.
        for pair in first.file_metadata().key_value_metadata().into_iter().flatten() {
            writer.append_key_value_metadata(pair.clone());
        }
        for (part, metadata) in parts.iter().zip(&metadata) {
            let page_index = metadata.page_index();
            for (group_index, group) in metadata.row_groups().iter().enumerate() {
                let mut group_writer = writer.next_row_group()?;
                for (column_index, column) in group.columns().iter().enumerate() {
                    group_writer.append_column(
                        part,
                        ColumnCloseResult {
                            bytes_written: column.compressed_size() as u64,
                            rows_written: group.num_rows() as u64,
                            metadata: column.clone(),
                            bloom_filter: None,
                            column_index: page_index.and_then(|i| i.column_index(group_index, column_index)).cloned(),
                            offset_index: page_index.and_then(|i| i.offset_index(group_index, column_index)).cloned(),
                        },
                    )?;
                }
                group_writer.close()?;
            }
        }
        Ok(Bytes::from(writer.into_inner()?))
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

    /// Compresses with Snappy instead of zstd: for internal files, where encoding speed matters
    /// more than size.
    pub fn snappy(mut self) -> Self {
        self.inner = self.inner.set_compression(Compression::SNAPPY);
        self
    }

    /// Keeps no statistics: for internal files read whole, where computing them is wasted work.
    pub fn without_statistics(mut self) -> Self {
        self.inner = self.inner.set_statistics_enabled(EnabledStatistics::None);
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

    #[test]
    fn parts_join_into_one_file_row_group_by_row_group() {
        use arrow::array::Date32Array;
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int32, false),
            Field::new("day", DataType::Date32, false),
        ]));
        let batch = |xs: Vec<i32>| {
            let days = Date32Array::from(xs.clone());
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(xs)), Arc::new(days)]).unwrap()
        };
        let format = FileFormat::builder().delta("x").sorted_by(&[0]).build();
        let parts: Vec<Bytes> = [vec![1, 3, 5], vec![], vec![2, 4]]
            .into_iter()
            .map(|xs| format.encode(&schema, &[batch(xs)]).unwrap())
            .collect();
        let joined = format.concatenate(&parts).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(joined).unwrap();
        assert_eq!(builder.metadata().num_row_groups(), 2, "the empty part adds no row group");
        let sorting = builder.metadata().row_group(1).sorting_columns().cloned();
        assert_eq!(sorting.map(|s| s.len()), Some(1));
        let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
        let rows = arrow::compute::concat_batches(&schema, &batches).unwrap();
        assert_eq!(rows, batch(vec![1, 3, 5, 2, 4]), "rows in part order, Arrow types kept");
        assert!(format.concatenate(&[]).is_err());
    }
}
