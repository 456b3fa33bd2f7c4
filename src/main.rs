#![forbid(unsafe_code)]
//! The `billd` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    billd::cli::main()
}
