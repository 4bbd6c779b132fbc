//! Writes that never leave a torn file: write to a temporary file in the same folder, flush and
//! sync it, then rename it over the target. A failure leaves the old file (or none) in place.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Error of an atomic write, naming the path.
///
/// Its message already contains the I/O error's text, so `source()` is `None`: printing the chain
/// (`{:#}` in anyhow) would otherwise repeat it.
#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot write {}: {} (check that the folder exists and is writable)",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for WriteError {}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes whatever `fill` writes into `path`, atomically. Parent folders are created.
pub fn write_with<F>(path: &Path, fill: F) -> Result<(), WriteError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let err = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent).map_err(err)?;
        }
    }
    let tmp = tmp_path(path);
    let result = (|| {
        let file = fs::File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_with(path, |w| w.write_all(bytes))
}

/// Writes several files all or none: every file goes to its temporary first, and only when all of
/// them are written are they renamed into place. If any write fails, every temporary is removed
/// and no target is touched (a rename failing half-way, which needs a vanished folder, can still
/// leave the earlier targets renamed).
pub fn write_all_or_none(files: &[(&Path, &[u8])]) -> Result<(), WriteError> {
    let mut done: Vec<(PathBuf, &Path)> = Vec::new();
    let cleanup = |done: &[(PathBuf, &Path)]| {
        for (tmp, _) in done {
            let _ = fs::remove_file(tmp);
        }
    };
    for &(path, bytes) in files {
        let err = |source| WriteError {
            path: path.to_path_buf(),
            source,
        };
        let tmp = tmp_path(path);
        let r = (|| {
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() {
                    fs::create_dir_all(parent)?;
                }
            }
            let mut file = fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(e) = r {
            let _ = fs::remove_file(&tmp);
            cleanup(&done);
            return Err(err(e));
        }
        done.push((tmp, path));
    }
    for (i, (tmp, path)) in done.iter().enumerate() {
        if let Err(e) = fs::rename(tmp, path) {
            cleanup(&done[i..]);
            return Err(WriteError {
                path: path.to_path_buf(),
                source: e,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_bytes(&p, b"old").unwrap();
        let r = write_with(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
    }

    #[test]
    fn all_or_none_writes_nothing_when_one_target_fails() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.npy");
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let b = blocker.join("b.png"); // parent is a file: cannot be created
        let e = write_all_or_none(&[(&a, b"aaa"), (&b, b"bbb")]).unwrap_err();
        assert_eq!(e.path, b);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec!["file"]);
        write_all_or_none(&[(&a, b"aaa"), (&dir.path().join("c"), b"c")]).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"aaa");
    }

    #[test]
    fn unwritable_folder_names_the_path() {
        let e = write_bytes(Path::new("/proc/memdiff-no/x.npy"), b"x").unwrap_err();
        assert!(e.to_string().contains("/proc/memdiff-no/x.npy"), "{e}");
    }
}
