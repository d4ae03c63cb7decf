//! The cluster secret: one bearer token that every REST call (but
//! `GET /health`) and every gRPC call between master and workers carries.
//!
//! - [`Token`] holds the secret. It never prints: its `Debug` is
//!   `Token(<redacted>)`, and it has no `Display`.
//! - [`Token::load_or_create`] is what a master does at first start: it
//!   writes 256 random bits as 64 hex digits to
//!   `<SHARED_DIR>/.gridmr/cluster.token` (mode 0600, created exclusively),
//!   so workers and the CLI on the same share find it with no set-up.
//! - [`AttachToken`] and [`RequireToken`] are the gRPC client and server
//!   interceptors; [`Token::matches`] compares in constant time.
//!
//! ```
//! use gridmr_net::auth::Token;
//! let shared = tempfile::tempdir().unwrap();
//! let made = Token::load_or_create(shared.path()).unwrap();
//! let again = Token::load_or_create(shared.path()).unwrap();
//! assert!(again.matches(made.expose().as_bytes()));
//! assert!(!made.matches(b"guess"));
//! assert_eq!(format!("{made:?}"), "Token(<redacted>)");
//! ```

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Status};

/// Where a master keeps the token it made, relative to the shared folder.
pub const TOKEN_FILE: &str = ".gridmr/cluster.token";

/// Fewest characters a token given by an operator may have: 43 base64
/// characters carry 256 bits.
pub const MIN_TOKEN_CHARS: usize = 43;

/// Most characters a token may have (it travels in a header).
const MAX_TOKEN_CHARS: usize = 512;

/// The cluster secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Checks that `path` (the token's folder when `folder`, else the file) is owned by this
/// process's effective user, is not a symbolic link, and that no other user may write it.
fn check_owned(path: &Path, folder: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = path.symlink_metadata().map_err(|source| Error::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let what = if folder { "folder" } else { "file" };
    let me = rustix::process::geteuid().as_raw();
    let remedy = "remove it (the master writes a new one) or start the master as its owner";
    if meta.file_type().is_symlink() {
        return Err(bad(format!(
            "the token {what} {} is a symbolic link; refused: {remedy}",
            path.display()
        )));
    }
    if meta.uid() != me {
        return Err(bad(format!(
            "the token {what} {} belongs to user id {}, not to this master's ({me}): \
             a token another user planted is refused; {remedy}",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(bad(format!(
            "the token {what} {} may be written by other users (mode {:o}); refused: \
             chmod go-w it, or {remedy}",
            path.display(),
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Token {
        reason: reason.into(),
    }
}

impl Token {
    /// 256 random bits from the operating system, as 64 hex digits.
    pub fn generate() -> Result<Token> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| bad(format!("no randomness: {e}")))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Token(hex.into()))
    }

    /// A token given by an operator: surrounding whitespace is dropped; it
    /// must be at least [`MIN_TOKEN_CHARS`] visible ASCII characters.
    pub fn parse(text: &str) -> Result<Token> {
        let t = text.trim();
        if t.len() < MIN_TOKEN_CHARS {
            return Err(bad(format!(
                "a cluster token needs at least {MIN_TOKEN_CHARS} characters (256 bits); this one has {}",
                t.len()
            )));
        }
        if t.len() > MAX_TOKEN_CHARS {
            return Err(bad(format!(
                "a cluster token has at most {MAX_TOKEN_CHARS} characters"
            )));
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "a cluster token is visible ASCII characters only (no spaces)",
            ));
        }
        Ok(Token(t.into()))
    }

    /// Reads a token file. A file others may read is refused: anyone who
    /// can read it owns the cluster.
    pub fn read_file(path: &Path) -> Result<Token> {
        let io = |source| Error::TokenFile {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad(format!(
                "{} may be read by other users (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            )));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Token::parse(&text).map_err(|e| match e {
            Error::Token { reason } => bad(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// The token file of a shared folder.
    pub fn shared_file(shared_dir: &Path) -> PathBuf {
        shared_dir.join(TOKEN_FILE)
    }

    /// Reads `<shared_dir>/.gridmr/cluster.token`, or creates it (mode
    /// 0600, exclusively: of two masters starting at once, one writes and
    /// the other reads) with a new random token.
    ///
    /// The folder and the file must belong to this process's user, be no symbolic links, and
    /// be writable by no one else: a token that another user of the share planted before the
    /// master's first start (so as to know it) is refused, with what to do about it.
    pub fn load_or_create(shared_dir: &Path) -> Result<Token> {
        let path = Token::shared_file(shared_dir);
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::TokenFile { path: p, source }
        };
        let dir = path.parent().unwrap_or(shared_dir);
        if path.symlink_metadata().is_ok() {
            check_owned(dir, true)?;
            check_owned(&path, false)?;
            return Token::read_file(&path);
        }
        match std::fs::create_dir(dir) {
            Ok(()) => {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io(dir))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(dir)(e)),
        }
        check_owned(dir, true)?;
        let token = Token::generate()?;
        // Written under a temporary name and linked into place, so a reader
        // never sees a half-written file.
        let tmp = dir.join(format!(".cluster.token.{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let written = f
            .write_all(format!("{}\n", token.0).as_bytes())
            .and_then(|()| f.sync_all());
        drop(f);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&tmp)(e));
        }
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(token),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Token::read_file(&path),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Whether `candidate` is this token, compared in constant time.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }

    /// Whether an `Authorization` header value is `Bearer <this token>`.
    pub fn matches_bearer(&self, header: &[u8]) -> bool {
        match header.strip_prefix(b"Bearer ") {
            Some(rest) => self.matches(rest),
            None => false,
        }
    }

    /// The secret itself, for a header or a file. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `Bearer <token>` as a gRPC metadata value.
    fn metadata(&self) -> Option<MetadataValue<Ascii>> {
        MetadataValue::try_from(format!("Bearer {}", self.0)).ok()
    }
}

/// A token that may arrive later: a worker started before its master waits
/// for the master to write the shared token file. Until it is set, every
/// call is refused.
#[derive(Clone, Debug, Default)]
pub struct TokenCell(Arc<OnceLock<Token>>);

impl TokenCell {
    /// A cell already holding `token`.
    pub fn with(token: Token) -> Self {
        let cell = TokenCell::default();
        let _ = cell.0.set(token);
        cell
    }

    /// Sets the token (the first set wins).
    pub fn set(&self, token: Token) {
        let _ = self.0.set(token);
    }

    /// The token, once known.
    pub fn get(&self) -> Option<&Token> {
        self.0.get()
    }
}

/// What a process checks and sends.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Every call carries the cluster token.
    Token(TokenCell),
    /// `GRIDMR_AUTH=off`: nothing is checked or sent.
    Off,
}

impl Auth {
    /// Auth with a token known now.
    pub fn token(token: Token) -> Self {
        Auth::Token(TokenCell::with(token))
    }

    /// The token, if there is one yet.
    pub fn current(&self) -> Option<&Token> {
        match self {
            Auth::Token(cell) => cell.get(),
            Auth::Off => None,
        }
    }

    /// Whether calls are checked.
    pub fn is_on(&self) -> bool {
        matches!(self, Auth::Token(_))
    }
}

/// gRPC client interceptor: adds `authorization: Bearer <token>`.
#[derive(Clone, Debug)]
pub struct AttachToken(Option<MetadataValue<Ascii>>);

impl AttachToken {
    /// Sends `token`, or nothing.
    pub fn new(token: Option<&Token>) -> Self {
        AttachToken(token.and_then(Token::metadata))
    }
}

impl tonic::service::Interceptor for AttachToken {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// gRPC server interceptor: refuses calls without the token with
/// `UNAUTHENTICATED`.
#[derive(Clone, Debug)]
pub struct RequireToken(Auth);

impl RequireToken {
    /// Checks calls against `auth` (nothing when it is off).
    pub fn new(auth: Auth) -> Self {
        RequireToken(auth)
    }
}

impl tonic::service::Interceptor for RequireToken {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let cell = match &self.0 {
            Auth::Off => return Ok(req),
            Auth::Token(cell) => cell,
        };
        let Some(token) = cell.get() else {
            return Err(Status::unauthenticated(
                "this worker has no cluster token yet",
            ));
        };
        match req.metadata().get("authorization") {
            Some(v) if token.matches_bearer(v.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("wrong cluster token")),
            None => Err(Status::unauthenticated(
                "missing `authorization: Bearer <cluster token>`",
            )),
        }
    }
}

/// The master's client for a worker: a tonic channel whose calls carry the
/// token.
pub type WorkerRpc = crate::proto::worker_client::WorkerClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, AttachToken>,
>;

/// A [`WorkerRpc`] over `channel`, sending `auth`'s token.
pub fn worker_rpc(channel: tonic::transport::Channel, auth: &Auth) -> WorkerRpc {
    crate::proto::worker_client::WorkerClient::with_interceptor(
        channel,
        AttachToken::new(auth.current()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    #[test]
    fn parse_refuses_short_and_odd_tokens() {
        assert!(Token::parse("short").is_err());
        assert!(Token::parse(&"a b".repeat(30)).is_err());
        assert!(Token::parse(&"x".repeat(600)).is_err());
        let t = Token::parse(&format!("  {}\n", "k".repeat(43))).unwrap();
        assert_eq!(t.expose().len(), 43);
    }

    #[test]
    fn generated_tokens_differ_and_have_256_bits() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert!(Token::parse(a.expose()).is_ok());
    }

    #[test]
    fn the_shared_file_is_private_and_a_readable_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = Token::load_or_create(dir.path()).unwrap();
        let path = Token::shared_file(dir.path());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Token::read_file(&path).unwrap(), t);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Token::read_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains(t.expose()), "{err}");
    }

    /// A token (or its folder) planted before the master's first start, by another user, as
    /// a link, or open to others' writes, is refused; a master's own is read back.
    #[test]
    fn a_planted_token_is_refused() {
        use std::os::unix::fs::{chown, symlink};
        let plant = |how: &dyn Fn(&Path)| {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join(".gridmr");
            std::fs::create_dir(&folder).unwrap();
            std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
            let file = folder.join("cluster.token");
            std::fs::write(&file, format!("{}\n", "k".repeat(43))).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            how(dir.path());
            Token::load_or_create(dir.path()).map_err(|e| e.to_string())
        };
        assert!(plant(&|_| {}).is_ok(), "the master's own token");
        let err = plant(&|d| {
            let folder = d.join(".gridmr");
            std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        })
        .unwrap_err();
        assert!(err.contains("may be written by other users"), "{err}");
        let err = plant(&|d| {
            let file = d.join(".gridmr/cluster.token");
            let elsewhere = d.join("elsewhere");
            std::fs::rename(&file, &elsewhere).unwrap();
            symlink(&elsewhere, &file).unwrap();
        })
        .unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        // Another owner: only root can make one (this machine's and CI's user).
        if rustix::process::geteuid().is_root() {
            let err = plant(&|d| {
                chown(d.join(".gridmr/cluster.token"), Some(65534), Some(65534)).unwrap();
            })
            .unwrap_err();
            assert!(err.contains("belongs to user id 65534"), "{err}");
            let err = plant(&|d| chown(d.join(".gridmr"), Some(65534), None).unwrap()).unwrap_err();
            assert!(err.contains("token folder"), "{err}");
        } else {
            eprintln!("a_planted_token_is_refused: not root, the other-owner case not tried");
        }
    }

    #[test]
    fn bearer_check() {
        let t = Token::generate().unwrap();
        assert!(t.matches_bearer(format!("Bearer {}", t.expose()).as_bytes()));
        assert!(!t.matches_bearer(t.expose().as_bytes()));
        assert!(!t.matches_bearer(b"Bearer "));
    }

    #[test]
    fn interceptors_pass_the_token_and_refuse_others() {
        let t = Token::generate().unwrap();
        let mut server = RequireToken::new(Auth::token(t.clone()));
        let signed = AttachToken::new(Some(&t)).call(Request::new(())).unwrap();
        assert!(server.call(signed).is_ok());
        let bare = server.call(Request::new(())).unwrap_err();
        assert_eq!(bare.code(), tonic::Code::Unauthenticated);
        let other = Token::generate().unwrap();
        let wrong = AttachToken::new(Some(&other))
            .call(Request::new(()))
            .unwrap();
        assert_eq!(
            server.call(wrong).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        // No token yet: everything refused.
        let mut waiting = RequireToken::new(Auth::Token(TokenCell::default()));
        let signed = AttachToken::new(Some(&t)).call(Request::new(())).unwrap();
        assert!(waiting.call(signed).is_err());
        // Off: everything passes.
        assert!(RequireToken::new(Auth::Off).call(Request::new(())).is_ok());
    }
}
