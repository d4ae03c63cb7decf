//! The CLI's saved credentials: the cluster token of each master a user has signed in to with
//! `gridmr login`, as `docker login` and `gh auth login` keep theirs.
//!
//! One JSON file, `$GRIDMR_CREDENTIALS`, else `$XDG_CONFIG_HOME/gridmr/credentials.json`, else
//! `~/.config/gridmr/credentials.json`: `{"masters": {"<url>": {"token": "<token>"}}}`. It is
//! written whole (a temporary file, then renamed) with mode 0600 in a folder of mode 0700, and
//! read only when it is this user's and private, as the token file of a share is.

use crate::error::{Error, Result};
use gridmr_net::auth::Token;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    #[serde(default)]
    masters: BTreeMap<String, Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    token: String,
}

/// Where the credentials live, if this user has a home or a config folder.
pub fn path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = var("GRIDMR_CREDENTIALS") {
        return Some(PathBuf::from(p));
    }
    let config = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("gridmr").join("credentials.json"))
}

/// A master's URL as a key: no trailing slash.
fn key(master: &str) -> String {
    master.trim().trim_end_matches('/').to_owned()
}

fn read(path: &Path) -> Result<Saved> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let mode = std::fs::metadata(path)
                .map_err(|e| Error::io("stat", path, e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(Error::setting(
                    "credentials",
                    format!(
                        "{} may be read by other users (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    ),
                ));
            }
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::setting("credentials", format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Saved::default()),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn write(path: &Path, saved: &Saved) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let text = serde_json::to_vec_pretty(saved)
        .map_err(|e| Error::setting("credentials", e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(&text)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))
}

/// The token saved for `master`, if any.
pub fn token_for(master: &str) -> Result<Option<Token>> {
    let Some(path) = path() else { return Ok(None) };
    let saved = read(&path)?;
    saved
        .masters
        .get(&key(master))
        .map(|e| Token::parse(&e.token).map_err(Error::Net))
        .transpose()
}

/// Saves `token` for `master`; returns the file.
pub fn save(master: &str, token: &Token) -> Result<PathBuf> {
    let path = path().ok_or_else(|| {
        Error::setting(
            "login",
            "no place for credentials: set HOME, XDG_CONFIG_HOME or GRIDMR_CREDENTIALS",
        )
    })?;
    let mut saved = read(&path)?;
    saved.masters.insert(
        key(master),
        Entry {
            token: token.expose().to_owned(),
        },
    );
    write(&path, &saved)?;
    Ok(path)
}

/// Forgets the token of `master`; `false` when none was saved.
pub fn forget(master: &str) -> Result<bool> {
    let Some(path) = path() else { return Ok(false) };
    let mut saved = read(&path)?;
    if saved.masters.remove(&key(master)).is_none() {
        return Ok(false);
    }
    write(&path, &saved)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_per_master_private_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cfg/gridmr/credentials.json");
        let t = Token::parse(&"a".repeat(43)).unwrap();
        let u = Token::parse(&"b".repeat(43)).unwrap();
        let mut saved = Saved::default();
        saved.masters.insert(
            key("http://m:8080/"),
            Entry {
                token: t.expose().into(),
            },
        );
        write(&file, &saved).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read_back = read(&file).unwrap();
        assert_eq!(read_back.masters[&key("http://m:8080")].token, t.expose());
        let mut saved = read_back;
        saved.masters.insert(
            key("https://n"),
            Entry {
                token: u.expose().into(),
            },
        );
        write(&file, &saved).unwrap();
        assert_eq!(read(&file).unwrap().masters.len(), 2);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&file).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains(t.expose()));
    }
}
