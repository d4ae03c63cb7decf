//! Job URLs (`nfs:///`, `file:///`, absolute paths) and the rule that local
//! paths lie inside the shared folder.

use std::path::{Component, Path, PathBuf};

/// Why a URL or a path from a request was refused. Every variant names
/// the path it is about; [`PathError::is_outside`] tells a confinement
/// refusal from a path that merely does not resolve.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The URL is empty.
    #[error("is empty")]
    Empty,
    /// An `nfs://host` or `file://host` URL without a path.
    #[error("{0:?} has no path")]
    NoPath(String),
    /// A scheme GridMR does not read, or a relative path.
    #[error("{0:?} is not nfs:///…, file:///…, an absolute path or http(s)://…")]
    Scheme(String),
    /// A `..` component, refused outright.
    #[error("{} contains '..'", .0.display())]
    ParentDir(PathBuf),
    /// A path that names no file (`/`).
    #[error("{} names no file", .0.display())]
    NoFileName(PathBuf),
    /// The path (or its parent) could not be resolved.
    #[error("{}: {source}", path.display())]
    Unresolved {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path lies outside every allowed root.
    #[error("{} is outside the shared folder{}", path.display(), roots_note(roots))]
    Outside {
        /// The path as given.
        path: PathBuf,
        /// The allowed roots, as shown to the caller (may be empty).
        roots: Vec<PathBuf>,
    },
    /// A listed file resolves, links followed, outside every root.
    #[error("{} resolves to {}, outside the shared folder", path.display(), resolved.display())]
    ResolvesOutside {
        /// The file as listed.
        path: PathBuf,
        /// Where it resolves to.
        resolved: PathBuf,
    },
    /// A new path that is already a symbolic link.
    #[error("{} is a symbolic link", .0.display())]
    Symlink(PathBuf),
    /// The input spec could not be listed.
    #[error(transparent)]
    Input(#[from] gridmr_core::Error),
}

impl PathError {
    /// Whether the path was refused for lying (or resolving) outside the
    /// allowed roots, rather than for its form or for not existing.
    pub fn is_outside(&self) -> bool {
        matches!(
            self,
            PathError::Outside { .. } | PathError::ResolvesOutside { .. } | PathError::Symlink(_)
        )
    }
}

fn roots_note(roots: &[PathBuf]) -> String {
    if roots.is_empty() {
        return String::new();
    }
    let names: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    format!(" ({})", names.join(", "))
}

fn resolve(path: &Path) -> Result<PathBuf, PathError> {
    path.canonicalize().map_err(|source| PathError::Unresolved {
        path: path.to_path_buf(),
        source,
    })
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local path (also `nfs://` and `file://`: their host is ignored).
    Local(PathBuf),
    /// An `http(s)://` URL, to download.
    Remote(String),
}

/// Parses a job URL.
///
/// ```
/// use gridmr_runtime::paths::{parse_url, Location};
/// use std::path::PathBuf;
/// assert_eq!(parse_url("nfs:///data/shared/x").unwrap(), Location::Local(PathBuf::from("/data/shared/x")));
/// assert_eq!(parse_url("file://host/data/x").unwrap(), Location::Local(PathBuf::from("/data/x")));
/// assert!(parse_url("relative/x").is_err());
/// ```
pub fn parse_url(url: &str) -> Result<Location, PathError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(PathError::Empty);
    }
    for scheme in ["nfs://", "file://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            // `nfs:///p` has an empty host; `nfs://host/p` names one. Either way
            // the path starts at the first '/'.
            return match rest.find('/') {
                Some(i) => Ok(Location::Local(PathBuf::from(&rest[i..]))),
                None => Err(PathError::NoPath(url.to_owned())),
            };
        }
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Location::Remote(url.to_owned()));
    }
    if url.starts_with('/') {
        return Ok(Location::Local(PathBuf::from(url)));
    }
    Err(PathError::Scheme(url.to_owned()))
}

/// The share's private folder (`.gridmr`), which no job may name.
const PRIVATE_DIR: &str = ".gridmr";

fn is_glob(component: &str) -> bool {
    component.contains(['*', '?', '['])
}

/// Checks that `path` (a file, a folder or a glob) lies inside one of
/// `roots` and returns it with its non-glob part resolved (symbolic links
/// followed). `..` components are refused outright.
pub fn check_inside(path: &Path, roots: &[PathBuf]) -> Result<PathBuf, PathError> {
    refuse_parent_dir(path)?;
    // Split at the first component holding a glob character.
    let mut fixed = PathBuf::new();
    let mut pattern = PathBuf::new();
    for c in path.components() {
        let s = c.as_os_str().to_string_lossy();
        if !pattern.as_os_str().is_empty() || is_glob(&s) {
            pattern.push(c);
        } else {
            fixed.push(c);
        }
    }
    let resolved = resolve(&fixed)?;
    if !within(&resolved, roots) {
        return Err(PathError::Outside {
            path: path.to_path_buf(),
            roots: roots.to_vec(),
        });
    }
    if pattern.as_os_str().is_empty() {
        Ok(resolved)
    } else {
        Ok(resolved.join(pattern))
    }
}

/// Whether `resolved` (already canonical) lies inside one of `roots`, by
/// whole path components (`/data/shared2` is not inside `/data/shared`).
/// The master's own folder inside the share (`.gridmr`: the cluster token, TLS material) is
/// never inside: no job reads it as its input or script.
fn within(resolved: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| {
        root.canonicalize().is_ok_and(|r| {
            resolved
                .strip_prefix(&r)
                .is_ok_and(|rest| !rest.starts_with(PRIVATE_DIR))
        })
    })
}

/// Lists an input spec (a file, a folder or a glob) and checks that every
/// file it names resolves, symbolic links followed, inside `roots`: a
/// folder holding a link to `/etc/passwd`, or a glob through a linked
/// folder, is refused.
pub fn confine_input(
    spec: &str,
    roots: &[PathBuf],
) -> Result<Vec<gridmr_core::input::InputFile>, PathError> {
    let files = gridmr_core::input::list_input(spec)?;
    for f in &files {
        let resolved = resolve(&f.path)?;
        if !within(&resolved, roots) {
            return Err(PathError::ResolvesOutside {
                path: f.path.clone(),
                resolved,
            });
        }
    }
    Ok(files)
}

/// Checks a path that may not exist yet (a folder a task creates): no `..`,
/// its parent resolves inside `roots`, and it is not itself a symbolic
/// link. Returns it under its resolved parent.
pub fn check_new_inside(path: &Path, roots: &[PathBuf]) -> Result<PathBuf, PathError> {
    refuse_parent_dir(path)?;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(PathError::NoFileName(path.to_path_buf()));
    };
    let parent = resolve(parent)?;
    if !within(&parent, roots) {
        return Err(PathError::Outside {
            path: path.to_path_buf(),
            roots: Vec::new(),
        });
    }
    let full = parent.join(name);
    if full
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(PathError::Symlink(path.to_path_buf()));
    }
    Ok(full)
}

fn refuse_parent_dir(path: &Path) -> Result<(), PathError> {
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(PathError::ParentDir(path.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://example.org/a.py").unwrap(),
            Location::Remote("https://example.org/a.py".into())
        );
        assert!(parse_url("nfs://hostonly").is_err());
        assert!(parse_url("").is_err());
        assert!(parse_url("ftp://x/y").is_err());
    }

    #[test]
    fn containment() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("in")).unwrap();
        std::fs::write(root.path().join("in/a.txt"), "x").unwrap();
        std::fs::write(other.path().join("b.txt"), "x").unwrap();
        let roots = [root.path().to_path_buf()];

        let ok = check_inside(&root.path().join("in/a.txt"), &roots).unwrap();
        assert!(ok.ends_with("in/a.txt"));
        assert!(!ok.to_string_lossy().ends_with('/'));
        let glob = check_inside(&root.path().join("in/*.txt"), &roots).unwrap();
        assert!(glob.ends_with("in/*.txt"));

        let err = check_inside(&other.path().join("b.txt"), &roots).unwrap_err();
        assert!(
            err.is_outside() && err.to_string().contains("outside"),
            "{err}"
        );
        let err = check_inside(&root.path().join("in/../../etc/passwd"), &roots).unwrap_err();
        assert!(err.to_string().contains(".."), "{err}");
        let err = check_inside(&root.path().join("missing.txt"), &roots).unwrap_err();
        assert!(err.to_string().contains("missing.txt"), "{err}");

        // A symbolic link inside the root that points outside is refused.
        std::os::unix::fs::symlink(other.path(), root.path().join("link")).unwrap();
        let err = check_inside(&root.path().join("link/b.txt"), &roots).unwrap_err();
        assert!(
            err.is_outside() && err.to_string().contains("outside"),
            "{err}"
        );

        // The share's private folder (the cluster token) is never an input or a script,
        // named directly, through a link, or by a glob.
        std::fs::create_dir(root.path().join(".gridmr")).unwrap();
        std::fs::write(root.path().join(".gridmr/cluster.token"), "t").unwrap();
        let token = root.path().join(".gridmr/cluster.token");
        assert!(check_inside(&token, &roots).is_err());
        std::os::unix::fs::symlink(&token, root.path().join("in/t.txt")).unwrap();
        assert!(check_inside(&root.path().join("in/t.txt"), &roots).is_err());
        let spec = format!("{}/.gr*/*", root.path().display());
        assert!(confine_input(&spec, &roots).is_err());
    }

    #[test]
    fn inputs_are_confined_after_expansion() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let roots = [root.path().to_path_buf()];
        std::fs::write(other.path().join("secret.txt"), "s").unwrap();
        std::fs::create_dir(root.path().join("in")).unwrap();
        std::fs::write(root.path().join("in/a.txt"), "a").unwrap();
        let spec = root.path().join("in").display().to_string();
        assert_eq!(confine_input(&spec, &roots).unwrap().len(), 1);
        // A link inside a folder to a file outside.
        std::os::unix::fs::symlink(
            other.path().join("secret.txt"),
            root.path().join("in/s.txt"),
        )
        .unwrap();
        let err = confine_input(&spec, &roots).unwrap_err();
        assert!(
            err.is_outside() && err.to_string().contains("outside"),
            "{err}"
        );
        // A glob through a linked folder.
        std::os::unix::fs::symlink(other.path(), root.path().join("linked")).unwrap();
        let glob = format!("{}/linked/*.txt", root.path().display());
        assert!(confine_input(&glob, &roots).unwrap_err().is_outside());
        // A sibling whose name starts like the root is not inside it.
        let sibling = PathBuf::from(format!("{}2", root.path().display()));
        std::fs::create_dir_all(&sibling).unwrap();
        std::fs::write(sibling.join("x.txt"), "x").unwrap();
        let spec = sibling.join("x.txt").display().to_string();
        assert!(confine_input(&spec, &roots).is_err());
        let _ = std::fs::remove_dir_all(&sibling);
    }

    #[test]
    fn new_paths_are_checked_by_their_parent() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let roots = [root.path().to_path_buf()];
        assert!(check_new_inside(&root.path().join("work"), &roots).is_ok());
        assert!(check_new_inside(&other.path().join("work"), &roots).is_err());
        assert!(check_new_inside(&root.path().join("a/../../x"), &roots).is_err());
        std::os::unix::fs::symlink(other.path(), root.path().join("out")).unwrap();
        assert!(check_new_inside(&root.path().join("out"), &roots).is_err());
        assert!(check_new_inside(&root.path().join("out/work"), &roots).is_err());
    }
}
