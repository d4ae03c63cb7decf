//! Who may talk to a GridMR process, and over what: the cluster token, TLS,
//! and the settings that choose them. `docs/security.md` is the operator's
//! guide; this module turns its settings into an [`Auth`] and TLS
//! configurations.
//!
//! Where the token comes from, first match wins:
//! 1. [`Security::token`], set by an embedding program;
//! 2. `GRIDMR_TOKEN` in the environment (never a flag: flags show in `ps`);
//! 3. `GRIDMR_TOKEN_FILE` / `--token-file`;
//! 4. `<SHARED_DIR>/.gridmr/cluster.token`, which a master creates at first
//!    start and workers and the CLI on the same share read.

use crate::error::{Error, Result};
use clap::{Args, ValueEnum};
use gridmr_net::auth::{Auth, Token, TokenCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `GRIDMR_AUTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum AuthSwitch {
    /// Every call but `GET /health` needs the cluster token.
    #[default]
    On,
    /// Nothing is checked: for the original's curl commands on a trusted
    /// box. The master warns at start and in `/health`.
    Off,
}

/// The security settings every role shares.
#[derive(Debug, Clone, Default, Args)]
pub struct Security {
    /// `on` (default) or `off`: whether REST and gRPC calls need the cluster
    /// token.
    #[arg(long = "auth", env = "GRIDMR_AUTH", value_enum, default_value_t = AuthSwitch::On)]
    pub auth: AuthSwitch,
    /// A file holding the cluster token (mode 0600). Default: the share's
    /// `.gridmr/cluster.token`. Empty (`GRIDMR_TOKEN_FILE=`) names none.
    #[arg(long, env = "GRIDMR_TOKEN_FILE", value_parser = any_path)]
    pub token_file: Option<PathBuf>,
    /// PEM certificate (chain) this process serves TLS with: the master's
    /// REST API, a worker's gRPC server. Also the master's client
    /// certificate towards workers.
    #[arg(long, env = "GRIDMR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `GRIDMR_TLS_CERT`.
    #[arg(long, env = "GRIDMR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the CA that signed the cluster's certificates:
    /// clients verify servers with it, and workers require the master's
    /// client certificate to be signed by it (mutual TLS).
    #[arg(long, env = "GRIDMR_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// The token itself, for programs that embed a master or worker. Not a
    /// flag (a flag's value shows in `ps`).
    #[arg(skip)]
    pub token: Option<Token>,
}

impl Security {
    /// The token named by the settings or the environment, if any (not the
    /// shared file).
    fn named_token(&self) -> Result<Option<Token>> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        if let Ok(text) = std::env::var("GRIDMR_TOKEN") {
            if !text.trim().is_empty() {
                return Token::parse(&text).map(Some).map_err(Error::Net);
            }
        }
        // An empty GRIDMR_TOKEN_FILE= names no file (as an empty GRIDMR_TOKEN names no token).
        if let Some(path) = self
            .token_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            return Token::read_file(path).map(Some).map_err(Error::Net);
        }
        Ok(None)
    }

    /// A master's auth: the named token, else the share's token file,
    /// created if missing.
    pub fn master_auth(&self, shared_dir: &Path) -> Result<Auth> {
        if self.auth == AuthSwitch::Off {
            return Ok(Auth::Off);
        }
        match self.named_token()? {
            Some(t) => Ok(Auth::token(t)),
            None => Token::load_or_create(shared_dir)
                .map(Auth::token)
                .map_err(Error::Net),
        }
    }

    /// A worker's auth, and the shared token file to wait for when the
    /// master has not written it yet (the worker refuses every call until
    /// then).
    pub fn worker_auth(&self, shared_dir: &Path) -> Result<(Auth, Option<PathBuf>)> {
        if self.auth == AuthSwitch::Off {
            return Ok((Auth::Off, None));
        }
        if let Some(t) = self.named_token()? {
            return Ok((Auth::token(t), None));
        }
        let path = Token::shared_file(shared_dir);
        if path.exists() {
            let t = Token::read_file(&path).map_err(Error::Net)?;
            return Ok((Auth::token(t), None));
        }
        Ok((Auth::Token(TokenCell::default()), Some(path)))
    }

    /// A command-line client's token for the master at `master`: the named one, else the one
    /// `gridmr login` saved for that master, else the share's file if it can be read, else
    /// none (the master then answers 401 with how to give one).
    pub fn client_token(
        &self,
        master: Option<&str>,
        shared_dir: Option<&Path>,
    ) -> Result<Option<Token>> {
        if self.auth == AuthSwitch::Off {
            return Ok(None);
        }
        if let Some(t) = self.named_token()? {
            return Ok(Some(t));
        }
        if let Some(t) = master
            .map(crate::credentials::token_for)
            .transpose()?
            .flatten()
        {
            return Ok(Some(t));
        }
        let Some(dir) = shared_dir else {
            return Ok(None);
        };
        let path = Token::shared_file(dir);
        if path.exists() {
            return Token::read_file(&path).map(Some).map_err(Error::Net);
        }
        Ok(None)
    }

    /// Whether this process serves TLS.
    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// The REST client for a master at `url`, trusting `GRIDMR_TLS_CA` and
    /// sending `token`.
    pub fn rest_client(&self, url: &str, token: Option<&Token>) -> Result<gridmr_net::Client> {
        let client = match &self.tls_ca {
            Some(ca) => gridmr_net::Client::with_ca(url, ca)?,
            None => gridmr_net::Client::new(url),
        };
        Ok(client.with_token(token))
    }

    /// The rustls server configuration of the master's REST API, if TLS is
    /// set.
    pub(crate) fn rest_tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        install_crypto();
        let certs = read_certs(cert, "certificate")?;
        let key = read_key(key)?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| tls_error("certificate", cert, e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// The rustls server configuration of a worker's gRPC port: its certificate, HTTP/2, and
    /// with a CA, required client certificates signed by it. (The worker runs the handshake
    /// itself, under its handshake timeout: `worker/listen.rs`.)
    pub(crate) fn grpc_server_tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        install_crypto();
        let certs = read_certs(cert, "certificate")?;
        let key = read_key(key)?;
        let builder = rustls::ServerConfig::builder();
        let builder = match &self.tls_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(ca, "CA")? {
                    roots
                        .add(c)
                        .map_err(|e| tls_error("CA", ca, e.to_string()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .map_err(|e| tls_error("CA", ca, e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| tls_error("certificate", cert, e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// tonic's client TLS of the master towards workers (`https://` worker
    /// addresses): the CA to verify them, and the master's certificate as
    /// its client identity.
    pub(crate) fn grpc_client_tls(&self) -> Result<Option<tonic::transport::ClientTlsConfig>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        install_crypto();
        let mut config = tonic::transport::ClientTlsConfig::new().ca_certificate(
            tonic::transport::Certificate::from_pem(read_file(ca, "CA")?),
        );
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config = config.identity(tonic::transport::Identity::from_pem(
                read_file(cert, "certificate")?,
                read_file(key, "key")?,
            ));
        }
        Ok(Some(config))
    }
}

/// Picks rustls' ring provider once for the process (several crates link
/// rustls; without a chosen default, a second provider would make it
/// refuse to guess).
/// A path as given, the empty one included (clap's own path parser refuses it, so an empty
/// `GRIDMR_TOKEN_FILE=` in an env file would stop every command).
fn any_path(text: &str) -> std::result::Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(text))
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn tls_error(what: &'static str, path: &Path, reason: String) -> Error {
    Error::Net(gridmr_net::Error::Tls {
        what,
        path: path.to_path_buf(),
        reason,
    })
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| tls_error(what, path, e.to_string()))
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(what, path, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| tls_error(what, path, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_error(what, path, "holds no PEM certificate".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path)
        .map_err(|e| tls_error("key", path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_creates_the_shared_token_and_others_find_it() {
        let shared = tempfile::tempdir().unwrap();
        let s = Security::default();
        let (w, pending) = s.worker_auth(shared.path()).unwrap();
        assert!(w.current().is_none() && pending.is_some());
        assert!(s.client_token(None, Some(shared.path())).unwrap().is_none());
        let m = s.master_auth(shared.path()).unwrap();
        let t = m.current().unwrap().clone();
        let (w, pending) = s.worker_auth(shared.path()).unwrap();
        assert_eq!(w.current(), Some(&t));
        assert!(pending.is_none());
        assert_eq!(s.client_token(None, Some(shared.path())).unwrap(), Some(t));
    }

    #[test]
    fn off_means_no_token_anywhere() {
        let shared = tempfile::tempdir().unwrap();
        let s = Security {
            auth: AuthSwitch::Off,
            ..Security::default()
        };
        assert!(!s.master_auth(shared.path()).unwrap().is_on());
        assert!(!Token::shared_file(shared.path()).exists());
    }

    #[test]
    fn an_embedded_token_wins() {
        let shared = tempfile::tempdir().unwrap();
        let t = Token::generate().unwrap();
        let s = Security {
            token: Some(t.clone()),
            ..Security::default()
        };
        assert_eq!(s.master_auth(shared.path()).unwrap().current(), Some(&t));
        assert!(!Token::shared_file(shared.path()).exists());
    }
}
