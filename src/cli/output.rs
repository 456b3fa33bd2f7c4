//! Printing results: a comfy-table, JSON (the API's shapes; a list is a JSON array) or
//! CSV with a header row.

use std::io::Write;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Rows for table and CSV output: a header and string cells.
pub struct Rows {
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

/// Prints a list: `items` as JSON, or `rows` as a table or CSV.
pub fn print_list<T: Serialize>(format: Format, items: &[T], rows: Rows) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, items)?;
            writeln!(out)?;
        }
        Format::Csv => write_csv(&mut out, &rows)?,
        Format::Table => {
            if rows.rows.is_empty() {
                writeln!(out, "no data")?;
            } else {
                writeln!(out, "{}", table(&rows))?;
            }
        }
    }
    Ok(())
}

/// Prints one object: JSON, or its fields as a two-column table / CSV.
pub fn print_one<T: Serialize>(
    format: Format,
    item: &T,
    fields: Vec<(&'static str, String)>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, item)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let rows = Rows {
                header: fields.iter().map(|f| f.0).collect(),
                rows: vec![fields.into_iter().map(|f| f.1).collect()],
            };
            write_csv(&mut out, &rows)?;
        }
        Format::Table => {
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED);
            for (k, v) in fields {
                t.add_row(vec![k.to_string(), v]);
            }
            writeln!(out, "{t}")?;
        }
    }
    Ok(())
}

fn table(rows: &Rows) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(rows.header.clone());
    for row in &rows.rows {
        t.add_row(row.clone());
    }
    t
}

fn write_csv(out: &mut impl Write, rows: &Rows) -> std::io::Result<()> {
    writeln!(
        out,
        "{}",
        rows.header
            .iter()
            .map(|h| csv_cell(h))
            .collect::<Vec<_>>()
            .join(",")
    )?;
    for row in &rows.rows {
        writeln!(
            out,
            "{}",
            row.iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(",")
        )?;
    }
    Ok(())
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// An optional value as a cell ("" when absent).
pub fn cell<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_with_separators_are_quoted() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
