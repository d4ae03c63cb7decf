//! Reading a job's files without trusting the share: tasks write there too, so any name in a
//! job's folder may have become a symbolic link (to `/etc`, to another job) since the master
//! made it. Everything the master serves from a job's folder is opened here, resolved beneath
//! the share's root with no symbolic link anywhere on the way (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, Linux 5.6+), and must be a regular file (a folder,
//! to list); listings name entries without following them.

use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::fs::File;
use std::io;
use std::path::Path;

/// Opens `path`, which must lie inside `share`, for reading without following any link.
fn open_beneath(share: &Path, path: &Path, flags: OFlags) -> io::Result<File> {
    let rel = path.strip_prefix(share).map_err(|_| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is outside the shared folder", path.display()),
        )
    })?;
    let root = rustix::fs::open(
        share,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let fd = rustix::fs::openat2(&root, rel, flags | OFlags::CLOEXEC, Mode::empty(), resolve)
        .map_err(|e| {
            let e = io::Error::from(e);
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::EXDEV) {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{} goes through a symbolic link; refused", path.display()),
                )
            } else {
                e
            }
        })?;
    Ok(File::from(fd))
}

/// Opens a regular file of the share for reading, never through a link.
pub(crate) fn open_file(share: &Path, path: &Path) -> io::Result<File> {
    let file = open_beneath(share, path, OFlags::RDONLY | OFlags::NOFOLLOW)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// The names in a folder of the share, sorted, the folder reached without following a link
/// (its entries are named, not followed). A missing folder lists as empty.
pub(crate) fn list(share: &Path, dir: &Path) -> io::Result<Vec<String>> {
    let fd = match open_beneath(
        share,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
    ) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_anywhere_on_the_way_are_refused() {
        let share = tempfile::tempdir().unwrap();
        let share = share.path().canonicalize().unwrap();
        let out = share.join("jobs/job-000001/out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("part-r-00000"), "a\t1\n").unwrap();
        let mut text = String::new();
        io::Read::read_to_string(
            &mut open_file(&share, &out.join("part-r-00000")).unwrap(),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "a\t1\n");
        assert_eq!(list(&share, &out).unwrap(), ["part-r-00000"]);
        assert_eq!(
            list(&share, &share.join("jobs/job-000001/shuffle")).unwrap(),
            Vec::<String>::new()
        );

        // A file replaced by a link, a folder replaced by a link, a path outside.
        symlink("/etc/hostname", out.join("result.txt")).unwrap();
        assert!(open_file(&share, &out.join("result.txt")).is_err());
        let other = share.join("jobs/job-000002");
        std::fs::create_dir_all(&other).unwrap();
        symlink("/etc", other.join("out")).unwrap();
        assert!(list(&share, &other.join("out")).is_err());
        assert!(open_file(&share, &other.join("out/hostname")).is_err());
        assert!(open_file(&share, Path::new("/etc/hostname")).is_err());
        // A link in the listing is named, not followed.
        assert_eq!(list(&share, &out).unwrap(), ["part-r-00000", "result.txt"]);
        // A folder is not a file.
        assert!(open_file(&share, &out).is_err());
    }
}
