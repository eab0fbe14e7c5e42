//! Mapping a CSV header (`DateTime,Junction,Vehicles,ID`, any order and case) to column positions.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::fields::split_fields;

/// The positions of the four count columns in a CSV line, and how many fields a line must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMap {
    /// Position of `DateTime`.
    pub datetime: usize,
    /// Position of `Junction`.
    pub junction: usize,
    /// Position of `Vehicles`.
    pub vehicles: usize,
    /// Position of `ID`.
    pub id: usize,
    /// Number of fields on every line.
    pub width: usize,
}

impl Default for ColumnMap {
    /// The seed's order: `DateTime,Junction,Vehicles,ID`.
    fn default() -> Self {
        ColumnMap { datetime: 0, junction: 1, vehicles: 2, id: 3, width: 4 }
    }
}

/// What the first line of a file says about its layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Where each column is.
    pub columns: ColumnMap,
    /// Whether the first line is a header (and so not a data row).
    pub has_header: bool,
}

/// Reads the layout from the first line of a file (BOM and line end already removed).
///
/// A line whose fields are the four column names (any order, any case) is a header; a line that
/// starts with a digit is data in the default order; anything else is an error that names the
/// columns found, so a file of another schema fails loudly instead of loading wrong columns.
pub fn detect_layout(first_line: &[u8]) -> Result<Layout> {
    let mut fields = Vec::new();
    split_fields(first_line, |f| fields.push(String::from_utf8_lossy(f).trim().to_ascii_lowercase()));
    let position = |name: &str| fields.iter().position(|f| f == name);
    let found = (position("datetime"), position("junction"), position("vehicles"), position("id"));
    if let (Some(datetime), Some(junction), Some(vehicles), Some(id)) = found {
        if fields.len() != 4 {
            bail!(
                "header has {} columns ({}); expected exactly DateTime,Junction,Vehicles,ID",
                fields.len(),
                fields.join(",")
            );
        }
        let columns = ColumnMap { datetime, junction, vehicles, id, width: 4 };
        return Ok(Layout { columns, has_header: true });
    }
    let first = first_line.iter().find(|b| !b.is_ascii_whitespace() && **b != b'"');
    if first.is_none_or(|b| b.is_ascii_digit()) {
        return Ok(Layout { columns: ColumnMap::default(), has_header: false });
    }
    bail!("header has columns ({}); expected DateTime,Junction,Vehicles,ID", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_in_any_order() {
        let layout = detect_layout(b"ID,\"vehicles\",Junction,DateTime").unwrap();
        assert!(layout.has_header);
        assert_eq!(layout.columns, ColumnMap { datetime: 3, junction: 2, vehicles: 1, id: 0, width: 4 });
    }

    #[test]
    fn data_without_header_uses_the_default_order() {
        let layout = detect_layout(b"2015-11-01 00:00:00,1,15,20151101001").unwrap();
        assert!(!layout.has_header);
        assert_eq!(layout.columns, ColumnMap::default());
    }

    #[test]
    fn another_schema_is_an_error_naming_its_columns() {
        let err = detect_layout(b"sensor_id,timestamp,average_speed,traffic_density").unwrap_err();
        assert!(err.to_string().contains("sensor_id,timestamp"), "{err}");
    }
}
