//! The committed man pages in `man/` are generated from the clap definitions; this test
//! fails when they are stale. `BILLD_UPDATE_MAN=1 cargo test --test man_pages` rewrites
//! them (and removes pages of subcommands that no longer exist).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

const REGENERATE: &str = "BILLD_UPDATE_MAN=1 cargo test --test man_pages";

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// The `billd*.1` files now in `man/`.
fn committed_pages(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("billd") && name.ends_with(".1"))
        .collect()
}

#[test]
fn man_pages_match_the_cli_definitions() {
    let dir = man_dir();
    let pages = billd::cli::man::render();
    assert!(
        pages.iter().any(|(name, _)| name == "billd.1"),
        "render() produced no billd.1"
    );
    let rendered: BTreeSet<String> = pages.iter().map(|(name, _)| name.clone()).collect();
    let stale: Vec<String> = committed_pages(&dir)
        .difference(&rendered)
        .cloned()
        .collect();

    if std::env::var_os("BILLD_UPDATE_MAN").is_some_and(|v| v == "1") {
        fs::create_dir_all(&dir).expect("create man/");
        for (name, text) in &pages {
            let path = dir.join(name);
            if fs::read(&path).ok().as_deref() != Some(text.as_slice()) {
                fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            }
        }
        for name in &stale {
            let path = dir.join(name);
            fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
        }
        return;
    }

    let mut problems = Vec::new();
    for (name, text) in &pages {
        match fs::read(dir.join(name)) {
            Ok(committed) if committed == *text => {}
            Ok(_) => problems.push(format!("man/{name} is out of date")),
            Err(_) => problems.push(format!("man/{name} is missing")),
        }
    }
    for name in &stale {
        problems.push(format!(
            "man/{name} documents a subcommand that no longer exists"
        ));
    }
    assert!(
        problems.is_empty(),
        "the man pages do not match the CLI definitions:\n  {}\nregenerate them with `{REGENERATE}` and commit man/",
        problems.join("\n  ")
    );
}
