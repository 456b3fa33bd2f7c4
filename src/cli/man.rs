//! Man pages generated from the clap definitions: `man/billd.1` and one page per
//! subcommand (`billd-events-replay.1`, …). A test fails when the committed pages are
//! stale; `BILLD_UPDATE_MAN=1 cargo test --test man_pages` rewrites them.

use clap::CommandFactory;

/// Every page: (file name, roff text).
pub fn render() -> Vec<(String, Vec<u8>)> {
    let mut pages = Vec::new();
    // The `help` subcommands get no page of their own, so keep them out of every list.
    let mut root = super::Cli::command().disable_help_subcommand(true);
    root.build();
    collect(&root, "billd", &mut pages);
    pages
}

fn collect(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let mut buf = Vec::new();
    let page = cmd.clone().name(name.to_string());
    // Writing to a Vec cannot fail.
    let _ = clap_mangen::Man::new(page).render(&mut buf);
    pages.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        collect(sub, &format!("{name}-{}", sub.get_name()), pages);
    }
}
