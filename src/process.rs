//! What billd sets on its own process: files it creates are its owner's alone, and the
//! daemon's secrets leave its environment once read.

/// Files and directories this process creates are readable by their owner only (0600,
/// 0700): the database (customer emails, raw payloads, token hashes), its `-wal` and
/// `-shm`, the logs, backups.
#[cfg(unix)]
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
}

#[cfg(not(unix))]
pub fn private_umask() {}

/// Removes the named variables from the environment, so the secrets they held are not
/// in `/proc/<pid>/environ` nor inherited by anything the daemon may run.
///
/// Call it only while the process has one thread: `billd serve` calls it after reading
/// its secrets and before logging or the runtime start any thread.
#[allow(unsafe_code)]
pub fn clear_env(names: &[&str]) {
    for name in names {
        // SAFETY: setting or removing variables races with other threads reading the
        // environment; the caller guarantees there are none yet (see above).
        unsafe { std::env::remove_var(name) };
    }
}

/// Creates `dir` (and its parents) readable by its owner only, and tightens it if it
/// exists with more.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    tighten(dir, 0o700);
    Ok(())
}

/// Creates `file` if missing, readable by its owner only, and tightens each of `files`
/// that exists with more (SQLite gives `-wal` and `-shm` the database file's mode).
pub fn private_files(
    create: &std::path::Path,
    files: &[std::path::PathBuf],
) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(create)?;
    for file in std::iter::once(&create.to_path_buf()).chain(files) {
        if file.exists() {
            tighten(file, 0o600);
        }
    }
    Ok(())
}

/// Sets `mode` on `path` when it also grants group or other permissions. Best effort:
/// a directory made by someone else (say `/var/lib`) keeps its mode, with a warning.
fn tighten(path: &std::path::Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(current) = std::fs::metadata(path).map(|m| m.permissions().mode()) else {
            return;
        };
        if current & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot make this readable by its owner only");
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}
