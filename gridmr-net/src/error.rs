//! Errors of the wire layer.

/// Everything that can go wrong talking to a GridMR master or worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status; `message` is the `error`
    /// field of its JSON body (or the body itself).
    #[error("{url}: HTTP {status}: {message}")]
    Http {
        /// The URL asked.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// The server could not be reached or the connection broke. The
    /// message carries the whole chain of causes (connection refused, a
    /// TLS error, …), which reqwest's own message leaves out.
    #[error("{url}: {}", causes(source))]
    Transport {
        /// The URL asked.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// An answer that does not have the expected shape.
    #[error("{url}: unexpected answer: {reason}")]
    Decode {
        /// The URL asked.
        url: String,
        /// What did not parse.
        reason: String,
    },
    /// A protocol message with a missing or impossible field.
    #[error("invalid {message} message: {reason}")]
    InvalidMessage {
        /// The message type.
        message: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A cluster token that cannot be used (too short, readable by others).
    #[error("cluster token: {reason}")]
    Token {
        /// What is wrong (never the token itself).
        reason: String,
    },
    /// A token file that cannot be read or written.
    #[error("cluster token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS certificate, key or CA file that cannot be used.
    #[error("TLS {what} {path}: {reason}")]
    Tls {
        /// `certificate`, `key` or `CA`.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing a streamed answer failed.
    #[error("writing the answer: {0}")]
    Write(#[source] std::io::Error),
    /// A local file to upload cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `e` and each of its sources, joined by `: `.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = cause.source();
    }
    text
}

impl Error {
    /// Whether asking again later may succeed: the server could not be
    /// reached (restarting, say) or a proxy in front of it answered 502, 503
    /// or 504. A 4xx, a bad answer or a local problem is not transient.
    ///
    /// ```
    /// let e = gridmr_net::Error::Http { url: "u".into(), status: 503, message: "m".into() };
    /// assert!(e.is_transient());
    /// let e = gridmr_net::Error::Http { url: "u".into(), status: 404, message: "m".into() };
    /// assert!(!e.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { source, .. } => !source.is_builder() && !source.is_decode(),
            Error::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

/// `Result` with the wire layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
