//! The batch's input format: hourly count CSVs (`DateTime,Junction,Vehicles,ID`, any column order
//! and case) parsed chunk by chunk into typed columns, with rejected lines kept aside.

mod canonical;
mod columns;
mod fields;
mod parse;

pub use columns::{detect_layout, Layout};
pub use parse::{parse_chunk, CountColumns};
