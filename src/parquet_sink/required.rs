//! Parquet files from borrowed column slices without nulls, through Parquet's typed column writers.
//!
//! Arrow's writer computes levels for every column, even one that cannot be null: it builds a
//! vector of every row's index (8 bytes a row, a column) and the encoder gathers the values
//! through it. For the batch layer's counts (millions of rows a chunk, four required columns)
//! those vectors were a quarter of a load's page faults and a pass of memory traffic per column.
//! The typed writers take the values as they are. The file is the one Arrow's writer makes: the
//! same Parquet schema, writer settings, statistics and embedded Arrow schema.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::datatypes::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::data_type::{DoubleType, Int32Type, Int64Type};
use parquet::file::writer::SerializedFileWriter;

use super::{FileFormat, ROW_GROUP_ROWS};

/// The values of one column that has no nulls.
#[derive(Clone, Copy, Debug)]
pub enum RequiredColumn<'a> {
    /// For `Int32` and `Date32` fields, and `Int8` and `Int16` fields if every value fits.
    Int32(&'a [i32]),
    /// For `Int64` and `Timestamp` fields.
    Int64(&'a [i64]),
    /// For `Float64` fields.
    Float64(&'a [f64]),
}

impl RequiredColumn<'_> {
    fn len(&self) -> usize {
        match self {
            RequiredColumn::Int32(values) => values.len(),
            RequiredColumn::Int64(values) => values.len(),
            RequiredColumn::Float64(values) => values.len(),
        }
    }

    fn holds(&self, data_type: &DataType) -> bool {
        match self {
            RequiredColumn::Int32(values) => match data_type {
                DataType::Int32 | DataType::Date32 => true,
                // Narrow integers are stored as INT32: every value must fit the field's type.
                DataType::Int8 => values.iter().all(|v| i8::try_from(*v).is_ok()),
                DataType::Int16 => values.iter().all(|v| i16::try_from(*v).is_ok()),
                _ => false,
            },
            RequiredColumn::Int64(_) => matches!(data_type, DataType::Int64 | DataType::Timestamp(..)),
            RequiredColumn::Float64(_) => matches!(data_type, DataType::Float64),
        }
    }
}

impl FileFormat {
    /// Encodes `columns`, one per field of `schema` in order, all of the same length, as one
    /// Parquet file; every field must be non-nullable and of a type its column holds.
    pub fn encode_required(&self, schema: &SchemaRef, columns: &[RequiredColumn<'_>]) -> Result<Bytes> {
        if columns.len() != schema.fields().len() {
            bail!("{} columns for a schema of {} fields", columns.len(), schema.fields().len());
        }
        let rows = columns.first().map_or(0, RequiredColumn::len);
        for (field, column) in schema.fields().iter().zip(columns) {
            if field.is_nullable() || !column.holds(field.data_type()) || column.len() != rows {
                bail!("column {} ({:?}, {} rows) does not fit field {field:?}", field.name(), column, column.len());
            }
        }
        let descriptor = ArrowSchemaConverter::new().convert(schema).context("cannot map the schema to Parquet")?;
        let mut properties = (*self.properties).clone();
        add_encoded_arrow_schema_to_metadata(schema, &mut properties);
        let group_rows = properties.max_row_group_row_count().unwrap_or(ROW_GROUP_ROWS).max(1);
        let mut writer = SerializedFileWriter::new(
            Vec::with_capacity(rows * columns.len() * 2 + 4096),
            descriptor.root_schema_ptr(),
            Arc::new(properties),
        )
        .context("cannot start a Parquet file")?;
        for start in (0..rows).step_by(group_rows) {
            let range = start..(start + group_rows).min(rows);
            let mut group = writer.next_row_group()?;
            for column in columns {
                let mut column_writer = group.next_column()?.context("the schema has fewer columns")?;
                match column {
                    RequiredColumn::Int32(values) => {
                        column_writer.typed::<Int32Type>().write_batch(&values[range.clone()], None, None)?
                    }
                    RequiredColumn::Int64(values) => {
                        column_writer.typed::<Int64Type>().write_batch(&values[range.clone()], None, None)?
                    }
                    RequiredColumn::Float64(values) => {
                        column_writer.typed::<DoubleType>().write_batch(&values[range.clone()], None, None)?
                    }
                };
                column_writer.close()?;
            }
            group.close()?;
        }
        Ok(Bytes::from(writer.into_inner().context("cannot finish a Parquet file")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::metadata::ParquetMetaDataReader;

    #[test]
    fn the_file_is_the_one_arrows_writer_makes() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), false),
            Field::new("junction", DataType::Int32, false),
            Field::new("day", DataType::Date32, false),
            Field::new("total", DataType::Int64, false),
            Field::new("mean", DataType::Float64, false),
        ]));
        // More rows than a row group holds, so both writers cut the same two row groups.
        let rows = ROW_GROUP_ROWS + 1000;
        let at: Vec<i64> = (0..rows as i64).map(|i| i * 3_600_000_000).collect();
        let junction: Vec<i32> = (0..rows as i32).map(|i| i / 5000).collect();
        let day: Vec<i32> = (0..rows as i32).map(|i| 16_000 + i / 24).collect();
        let total: Vec<i64> = (0..rows as i64).map(|i| i * 7 % 1000).collect();
        let mean: Vec<f64> = total.iter().map(|&t| t as f64 / 3.0).collect();
        let format = FileFormat::builder().delta("at").delta("junction").delta("total").sorted_by(&[1, 0]).build();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(at.clone())),
            Arc::new(Int32Array::from(junction.clone())),
            Arc::new(Date32Array::from(day.clone())),
            Arc::new(Int64Array::from(total.clone())),
            Arc::new(Float64Array::from(mean.clone())),
        ];
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        let by_arrow = format.encode(&schema, std::slice::from_ref(&batch)).unwrap();
        let columns = [
            RequiredColumn::Int64(&at),
            RequiredColumn::Int32(&junction),
            RequiredColumn::Int32(&day),
            RequiredColumn::Int64(&total),
            RequiredColumn::Float64(&mean),
        ];
        let by_columns = format.encode_required(&schema, &columns).unwrap();

        let read = |bytes: &Bytes| -> Vec<RecordBatch> {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap().build().unwrap();
            reader.map(|b| b.unwrap()).collect()
        };
        let batches = read(&by_columns);
        assert_eq!(batches[0].schema(), schema, "the embedded Arrow schema gives the same types back");
        assert_eq!(arrow::compute::concat_batches(&schema, &batches).unwrap(), batch);

        let metadata = |bytes: &Bytes| ParquetMetaDataReader::new().parse_and_finish(bytes).unwrap();
        let (expected, actual) = (metadata(&by_arrow), metadata(&by_columns));
        assert_eq!(actual.num_row_groups(), 2);
        assert_eq!(actual.file_metadata().schema_descr(), expected.file_metadata().schema_descr());
        for (theirs, ours) in expected.row_groups().iter().zip(actual.row_groups()) {
            assert_eq!(ours.num_rows(), theirs.num_rows());
            assert_eq!(ours.sorting_columns(), theirs.sorting_columns());
            for (a, b) in theirs.columns().iter().zip(ours.columns()) {
                assert_eq!(b.encodings_mask(), a.encodings_mask(), "{}", a.column_path());
                assert_eq!(b.statistics(), a.statistics(), "{}", a.column_path());
            }
        }
    }

    #[test]
    fn columns_that_do_not_fit_the_schema_are_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let format = FileFormat::builder().build();
        assert!(format.encode_required(&schema, &[RequiredColumn::Int64(&[1])]).is_err(), "wrong type");
        assert!(format.encode_required(&schema, &[]).is_err(), "missing column");
        let narrow = Arc::new(Schema::new(vec![Field::new("x", DataType::Int8, false)]));
        assert!(format.encode_required(&narrow, &[RequiredColumn::Int32(&[1, 128])]).is_err(), "beyond an Int8");
        let fits = format.encode_required(&narrow, &[RequiredColumn::Int32(&[-128, 127])]).unwrap();
        let batch = ParquetRecordBatchReaderBuilder::try_new(fits).unwrap().build().unwrap().next().unwrap().unwrap();
        assert_eq!(
            batch.column(0).as_ref(),
            &arrow::array::Int8Array::from(vec![-128, 127]) as &dyn arrow::array::Array
        );
        let nullable = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        assert!(format.encode_required(&nullable, &[RequiredColumn::Int32(&[1])]).is_err(), "nullable field");
        let empty = format.encode_required(&schema, &[RequiredColumn::Int32(&[])]).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(empty).unwrap().build().unwrap();
        assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 0);
    }
}
