//! Printing results: a comfy-table, JSON (the API's shapes; a list is a JSON array) or
//! CSV with a header row.

use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
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
            // One object's fields are read one by one: wrapped in their column, not cut.
            let mut t = new_table();
            for (k, v) in fields {
                t.add_row(vec![k.to_string(), v]);
            }
            writeln!(out, "{t}")?;
        }
    }
    Ok(())
}

/// Longest cell of a table, in characters: longer ones (an event's `last_error`) are
/// cut with `…` so a row stays a row; JSON and CSV keep them whole.
const MAX_CELL: usize = 60;

fn table(rows: &Rows) -> Table {
    let mut t = new_table();
    t.set_header(rows.header.clone());
    for row in &rows.rows {
        t.add_row(row.iter().map(|c| cut(c)).collect::<Vec<_>>());
    }
    t
}

/// A table that fits the terminal: comfy-table measures it on a terminal; elsewhere
/// `$COLUMNS` (set by shells, and by tests) says how wide to be, or there is no limit.
fn new_table() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    if let Some(width) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w >= 20)
    {
        t.set_width(width);
    }
    t
}

/// A cell as a table shows it: one line, at most [`MAX_CELL`] characters.
fn cut(cell: &str) -> String {
    let one_line = cell.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= MAX_CELL {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
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
    let s = neutralised(s);
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

/// A text cell that a spreadsheet would read as a formula gets a leading `'` (DESIGN
/// §4). Numbers are left alone, so a negative amount stays a number.
fn neutralised(s: &str) -> std::borrow::Cow<'_, str> {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_number(s) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// `-1500`, `-12.50`, `+3`: an optional sign, digits, optionally a fraction.
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// An optional value as a cell ("" when absent).
pub fn cell<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_table_cells_are_cut_to_one_short_line() {
        assert_eq!(cut("short"), "short");
        let long = "x".repeat(200);
        assert_eq!(cut(&long).chars().count(), MAX_CELL);
        assert!(cut(&long).ends_with('…'));
        assert_eq!(cut("two\nlines"), "two lines");
    }

    #[test]
    fn csv_cells_with_separators_are_quoted() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn csv_text_cells_that_a_spreadsheet_would_run_get_a_quote() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("=1+2"), "'=1+2");
        assert_eq!(csv_cell("+cmd"), "'+cmd");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("-"), "'-");
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn csv_numbers_keep_their_sign() {
        assert_eq!(csv_cell("-1500"), "-1500");
        assert_eq!(csv_cell("-12.50"), "-12.50");
        assert_eq!(csv_cell("+3"), "+3");
        assert_eq!(csv_cell("1500"), "1500");
        assert_eq!(csv_cell("-1."), "'-1.");
        assert_eq!(csv_cell("-.5"), "'-.5");
    }
}
