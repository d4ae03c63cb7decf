//! Host-local reads (`SHUFFLE=local`): a reduce whose segment's holder runs
//! on the same host gets the holder's file itself, not a copy of its bytes
//! (as Spark's `spark.shuffle.readHostLocalDisk`; here without trusting a
//! path from anyone).
//!
//! Every worker listens on an abstract Unix socket named after its id and
//! its cluster's share ([`socket_name`]). Abstract sockets live in the
//! network namespace, so only a worker of the same host (and the same
//! namespace) can reach it; one that cannot is answered by gRPC as before.
//!
//! Both ends check who the other is before a byte goes over: the peer's
//! uid ([`SO_PEERCRED`](rustix::net::sockopt::socket_peercred)) must be this
//! process's own, so a socket squatted by another user is never told the
//! token, and another user's process is never handed a file. The reducer
//! then sends the cluster token and names the output as `FetchShuffle` does
//! (a job id, an index file's plain name, a partition); the holder checks
//! them as [`serve`](super::serve) does and answers with the checked index's
//! bytes and its data file's **open descriptor** (`SCM_RIGHTS`).
//!
//! The reducer writes the index into its fetch folder and hard-links the
//! descriptor's file beside it (`linkat` of `/proc/self/fd/N`), so the
//! merge reads the holder's file from the page cache exactly as the shared
//! shuffle does, and the holder may drop the job meanwhile. Every block is
//! still checked as it is read. Whatever goes wrong here (no such socket,
//! another user, another filesystem, a refusal) the segment is fetched over
//! gRPC instead, whose answer is the one that counts.
//!
//! ```text
//! request:  u32 LE length, then JSON {"token", "job_id", "index_name", "partition"}
//! answer:   u32 LE length, then JSON {"ok", "message", "index_len"}
//!           (the data file's descriptor attached), then index_len bytes of index
//! ```

use super::store::LocalStore;
use gridmr_core::shuffle::RunIndex;
use gridmr_core::{JobId, WorkerId};
use gridmr_net::auth::Auth;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest either end waits for the other's next bytes.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Most host-local reads a holder answers at once (each a few system calls, or a
/// [`TIMEOUT`] for a peer that stalls).
const MAX_ANSWERING: usize = 32;

/// Largest request a holder reads.
const MAX_REQUEST: u32 = 64 << 10;

/// Largest answer header, and index, a reducer reads.
const MAX_HEADER: u32 = 64 << 10;
const MAX_INDEX: u64 = 64 << 20;

/// Why a host-local read did not happen (the segment is then fetched over gRPC).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostError {
    /// No worker of that name listens on this host.
    #[error("no such worker on this host")]
    Elsewhere,
    /// The socket's owner is another user.
    #[error("the socket belongs to uid {0}, not to this worker's user")]
    Stranger(u32),
    /// The holder refused or failed.
    #[error("the holder answered: {0}")]
    Refused(String),
    /// The exchange or the files failed here.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The answer broke the protocol.
    #[error("bad answer: {0}")]
    Protocol(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> HostError {
    move |source| HostError::Io { what, source }
}

/// The abstract socket name of worker `id` of the cluster whose share is
/// `share` (the share's path as this worker was given it).
pub(crate) fn socket_name(id: &WorkerId, share: &Path) -> String {
    let mut key = id.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(share.as_os_str().as_encoded_bytes());
    format!("gridmr-shuffle-{:032x}", xxhash_rust::xxh3::xxh3_128(&key))
}

#[derive(Serialize, Deserialize)]
struct HostReq {
    token: String,
    job_id: String,
    index_name: String,
    partition: u32,
}

#[derive(Serialize, Deserialize)]
struct HostAnswer {
    ok: bool,
    message: String,
    index_len: u64,
}

/// Bounds every read and write on `stream` by [`TIMEOUT`].
fn bounded(stream: &UnixStream) -> Result<(), HostError> {
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(io("socket"))
}

/// Whether the peer of `stream` runs as this process's user.
fn same_user(stream: &UnixStream) -> Result<(), HostError> {
    let cred =
        rustix::net::sockopt::socket_peercred(stream).map_err(|e| io("SO_PEERCRED")(e.into()))?;
    let peer = cred.uid.as_raw();
    if peer == rustix::process::geteuid().as_raw() {
        Ok(())
    } else {
        Err(HostError::Stranger(peer))
    }
}

fn write_frame(stream: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(body);
    stream.write_all(&frame)
}

fn read_frame(stream: &mut impl Read, max: u32) -> Result<Vec<u8>, HostError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(io("read"))?;
    let len = u32::from_le_bytes(len);
    if len > max {
        return Err(HostError::Protocol(format!("a frame of {len} bytes")));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).map_err(io("read"))?;
    Ok(body)
}

/// A worker's host-local listener, bound while it runs.
pub(crate) struct HostListener {
    listener: UnixListener,
}

impl HostListener {
    /// Binds `name`. Fails when another process holds the name (a worker of
    /// the same id and share already runs, or a squatter): this worker then
    /// serves over gRPC only.
    pub(crate) fn bind(name: &str) -> std::io::Result<Self> {
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let listener = UnixListener::bind_addr(&addr)?;
        Ok(HostListener { listener })
    }

    /// Answers reducers of this host until `stop`; the name is free again
    /// once this returns.
    pub(crate) async fn serve_until(
        self,
        store: Arc<LocalStore>,
        auth: Auth,
        stop: CancellationToken,
    ) {
        let listener = match self
            .listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixListener::from_std(self.listener))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "host-local shuffle reads are off");
                return;
            }
        };
        // Answers in progress are bounded: a caller that holds connections open blocks later
        // ones at the accept, not the worker's blocking pool.
        let answering = Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERING));
        loop {
            let permit = tokio::select! {
                () = stop.cancelled() => return,
                permit = answering.clone().acquire_owned() => permit,
            };
            let Ok(permit) = permit else { return };
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            let (store, auth) = (store.clone(), auth.clone());
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let Ok(stream) = stream.into_std() else {
                    return;
                };
                if let Err(e) = answer(stream, &store, &auth) {
                    tracing::debug!(error = %e, "a host-local read was not answered");
                }
            });
        }
    }
}

/// Answers one reducer: checks who it is, its token and what it names, then
/// hands over the data file.
fn answer(mut stream: UnixStream, store: &LocalStore, auth: &Auth) -> Result<(), HostError> {
    stream.set_nonblocking(false).map_err(io("socket"))?;
    bounded(&stream)?;
    // Another user's process is told nothing, not even why.
    same_user(&stream)?;
    let req: HostReq = serde_json::from_slice(&read_frame(&mut stream, MAX_REQUEST)?)
        .map_err(|e| HostError::Protocol(e.to_string()))?;
    let refuse = |stream: &mut UnixStream, message: String| {
        let body = serde_json::to_vec(&HostAnswer {
            ok: false,
            message: message.clone(),
            index_len: 0,
        })
        .unwrap_or_default();
        let _ = write_frame(stream, &body);
        Err(HostError::Refused(message))
    };
    let allowed = match (auth.is_on(), auth.current()) {
        (false, _) => true,
        (true, Some(token)) => token.matches(req.token.as_bytes()),
        (true, None) => false,
    };
    if !allowed {
        return refuse(&mut stream, "the cluster token was not given".into());
    }
    let job: JobId = match gridmr_net::wire::job_id("HostReq", &req.job_id) {
        Ok(job) => job,
        Err(e) => return refuse(&mut stream, e.to_string()),
    };
    let Some(index_path) = store.index_path(&job, &req.index_name) else {
        return refuse(&mut stream, "not a map output's index name".into());
    };
    let index = match RunIndex::read(&index_path) {
        Ok(index) if req.partition < index.partitions() => index,
        Ok(_) => return refuse(&mut stream, "no such partition".into()),
        Err(e) => return refuse(&mut stream, e.to_string()),
    };
    let opened = std::fs::read(&index_path).and_then(|bytes| {
        let data = std::fs::File::open(&index.data_path)?;
        Ok((bytes, data))
    });
    let (bytes, data) = match opened {
        Ok(got) => got,
        Err(e) => return refuse(&mut stream, e.to_string()),
    };
    let header = serde_json::to_vec(&HostAnswer {
        ok: true,
        message: String::new(),
        index_len: bytes.len() as u64,
    })
    .map_err(|e| HostError::Protocol(e.to_string()))?;
    let mut frame = (header.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&header);
    send_with_fd(&stream, &frame, data.as_fd())?;
    stream.write_all(&bytes).map_err(io("write"))
}

/// Sends `bytes` with `fd` attached to them.
fn send_with_fd(
    stream: &UnixStream,
    bytes: &[u8],
    fd: std::os::fd::BorrowedFd<'_>,
) -> Result<(), HostError> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(HostError::Protocol("no room for the descriptor".into()));
    }
    let sent = rustix::net::sendmsg(
        stream,
        &[std::io::IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| io("sendmsg")(e.into()))?;
    // The descriptor went with the first byte; the rest follows plainly.
    (&*stream).write_all(&bytes[sent..]).map_err(io("write"))
}

/// Receives at least one byte into `buf`, and the descriptor attached to it.
fn recv_with_fd(
    stream: &UnixStream,
    buf: &mut [u8],
) -> Result<(usize, Option<OwnedFd>), HostError> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        stream,
        &mut [std::io::IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| io("recvmsg")(e.into()))?;
    let mut fd = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            // Every descriptor received is owned, so the extras close here.
            for received in fds {
                fd.get_or_insert(received);
            }
        }
    }
    Ok((got.bytes, fd))
}

/// What a reducer got from a holder on its host.
pub(crate) struct HostSegment {
    /// The index, written in the reduce's fetch folder; its data file is a
    /// link to the holder's beside it.
    pub(crate) index_path: PathBuf,
    /// The segment's bytes.
    pub(crate) bytes: u64,
}

/// Asks the holder listening on `name` for segment `partition` of
/// `index_name`, and makes it readable in `dir` (blocking).
pub(crate) fn read_local(
    name: &str,
    auth: &Auth,
    job: &JobId,
    index_name: &str,
    partition: u32,
    dir: &Path,
) -> Result<HostSegment, HostError> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(io("socket name"))?;
    let mut stream = match UnixStream::connect_addr(&addr) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(HostError::Elsewhere)
        }
        Err(e) => return Err(io("connect")(e)),
    };
    bounded(&stream)?;
    // The token goes only to a process of this worker's own user.
    same_user(&stream)?;
    let req = HostReq {
        token: auth
            .current()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default(),
        job_id: job.to_string(),
        index_name: index_name.to_owned(),
        partition,
    };
    let body = serde_json::to_vec(&req).map_err(|e| HostError::Protocol(e.to_string()))?;
    write_frame(&mut stream, &body).map_err(io("write"))?;

    let mut first = [0u8; 4];
    let (got, fd) = recv_with_fd(&stream, &mut first)?;
    if got == 0 {
        return Err(HostError::Protocol("the holder closed the socket".into()));
    }
    let mut head = first[..got].to_vec();
    head.resize(4, 0);
    stream.read_exact(&mut head[got..]).map_err(io("read"))?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    if len > MAX_HEADER {
        return Err(HostError::Protocol(format!("a header of {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    stream.read_exact(&mut header).map_err(io("read"))?;
    let answer: HostAnswer =
        serde_json::from_slice(&header).map_err(|e| HostError::Protocol(e.to_string()))?;
    if !answer.ok {
        return Err(HostError::Refused(answer.message));
    }
    let fd = fd.ok_or_else(|| HostError::Protocol("no descriptor came".into()))?;
    if answer.index_len > MAX_INDEX {
        return Err(HostError::Protocol(format!(
            "an index of {} bytes",
            answer.index_len
        )));
    }
    let mut index = vec![0u8; answer.index_len as usize];
    stream.read_exact(&mut index).map_err(io("read"))?;
    adopt(dir, index_name, &index, fd, partition)
}

/// Writes the index into `dir` and links the data file beside it under the
/// name the index gives (checked to be `index_name`'s own data name).
fn adopt(
    dir: &Path,
    index_name: &str,
    index: &[u8],
    fd: OwnedFd,
    partition: u32,
) -> Result<HostSegment, HostError> {
    let stat = rustix::fs::fstat(&fd).map_err(|e| io("fstat")(e.into()))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(HostError::Protocol(
            "the descriptor is not a regular file".into(),
        ));
    }
    let index_path = dir.join(index_name);
    let data_name = Path::new(index_name).with_extension("data");
    let data_path = dir.join(&data_name);
    let linked = link(&index_path, &data_path, index, fd, partition);
    if linked.is_err() {
        let _ = std::fs::remove_file(&index_path);
        let _ = std::fs::remove_file(&data_path);
    }
    linked
}

fn link(
    index_path: &Path,
    data_path: &Path,
    index: &[u8],
    fd: OwnedFd,
    partition: u32,
) -> Result<HostSegment, HostError> {
    std::fs::write(index_path, index).map_err(io("write the index"))?;
    let source = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    rustix::fs::linkat(
        rustix::fs::CWD,
        source.as_str(),
        rustix::fs::CWD,
        data_path,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(|e| io("link the data file")(e.into()))?;
    drop(fd);
    // The index must name the linked file, and the file be long enough for it.
    match RunIndex::read(index_path) {
        Ok(read) if read.data_path == data_path && partition < read.partitions() => {
            Ok(HostSegment {
                index_path: index_path.to_path_buf(),
                bytes: read.segment_len(partition),
            })
        }
        Ok(read) => Err(HostError::Protocol(format!(
            "the index names {}, not {}",
            read.data_path.display(),
            data_path.display()
        ))),
        Err(e) => Err(HostError::Protocol(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridmr_net::auth::Token;

    fn unique_name(tag: &str) -> String {
        let id: WorkerId = "w1".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        socket_name(&id, &dir.path().join(tag))
    }

    #[test]
    fn names_differ_by_worker_and_by_share() {
        let (a, b): (WorkerId, WorkerId) = ("a".parse().unwrap(), "b".parse().unwrap());
        let share = Path::new("/srv/share");
        assert_ne!(socket_name(&a, share), socket_name(&b, share));
        assert_ne!(
            socket_name(&a, share),
            socket_name(&a, Path::new("/srv/other"))
        );
        assert_eq!(socket_name(&a, share), socket_name(&a, share));
    }

    #[test]
    fn a_name_nobody_holds_is_elsewhere_and_a_held_name_is_refused_twice() {
        let (dir, job) = (tempfile::tempdir().unwrap(), "job-000001".parse().unwrap());
        let auth = Auth::token(Token::generate().unwrap());
        let name = unique_name("free");
        let e = read_local(&name, &auth, &job, "map-00000-a1.index", 0, dir.path())
            .err()
            .unwrap();
        assert!(matches!(e, HostError::Elsewhere), "{e}");
        let held = HostListener::bind(&name).unwrap();
        assert!(HostListener::bind(&name).is_err(), "a name is held once");
        drop(held);
        assert!(HostListener::bind(&name).is_ok(), "and free again after");
    }

    /// A holder that answers "ok" with something other than a regular file
    /// attached: the reducer refuses it and leaves nothing in its folder.
    #[test]
    fn a_descriptor_that_is_not_a_regular_file_is_refused() {
        let (dir, job) = (tempfile::tempdir().unwrap(), "job-000001".parse().unwrap());
        let name = unique_name("pipe");
        let held = HostListener::bind(&name).unwrap();
        let holder = std::thread::spawn(move || {
            let (mut stream, _) = held.listener.accept().unwrap();
            read_frame(&mut stream, MAX_REQUEST).unwrap();
            let (pipe, _keep) = std::io::pipe().unwrap();
            let header = serde_json::to_vec(&HostAnswer {
                ok: true,
                message: String::new(),
                index_len: 3,
            })
            .unwrap();
            let mut frame = (header.len() as u32).to_le_bytes().to_vec();
            frame.extend_from_slice(&header);
            frame.extend_from_slice(b"abc");
            send_with_fd(&stream, &frame, pipe.as_fd()).unwrap();
        });
        let e = read_local(&name, &Auth::Off, &job, "map-00000-a1.index", 0, dir.path())
            .err()
            .unwrap();
        holder.join().unwrap();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// The holder's side: a wrong token, a name that is not an index's, and a
    /// partition the output lacks are each refused with a reason.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_holder_refuses_a_wrong_token_a_bad_name_and_a_missing_partition() {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(&root.path().join("h")).unwrap());
        let token = Token::generate().unwrap();
        let name = unique_name("refusals");
        let stop = CancellationToken::new();
        let serving = tokio::spawn(HostListener::bind(&name).unwrap().serve_until(
            store.clone(),
            Auth::token(token.clone()),
            stop.clone(),
        ));
        let job: JobId = "job-000001".parse().unwrap();
        let ask = |auth: Auth, index: &'static str, partition: u32| {
            let (name, job, dir) = (name.clone(), job.clone(), root.path().to_path_buf());
            tokio::task::spawn_blocking(move || {
                read_local(&name, &auth, &job, index, partition, &dir)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            })
        };
        let stranger = Auth::token(Token::generate().unwrap());
        let own = Auth::token(token);
        let e = ask(stranger, "map-00000-a1.index", 0).await.unwrap();
        assert!(e.contains("token"), "{e}");
        let e = ask(own.clone(), "../../lock", 0).await.unwrap();
        assert!(e.contains("not a map output"), "{e}");
        let e = ask(own, "map-00000-a1.index", 0).await.unwrap();
        assert!(e.contains("the holder answered"), "{e}");
        stop.cancel();
        serving.await.unwrap();
    }

    /// Another user's process: a name it squats is never told the token, and
    /// its requests are answered with nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs root to run a process as another user: cargo test -- --include-ignored"]
    async fn another_users_process_is_neither_asked_nor_answered() {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        assert!(crate::sys::is_root(), "this test needs root");
        let nobody = |script: &str, name: &str| {
            std::process::Command::new("python3")
                .args(["-c", script, name])
                .uid(65534)
                .gid(65534)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        // A squatter: the reducer checks its uid before it sends a byte.
        let squat = unique_name("squat");
        let mut squatter = nobody(
            "import socket,sys\n\
             s=socket.socket(socket.AF_UNIX); s.bind('\\0'+sys.argv[1]); s.listen()\n\
             print('ready', flush=True); c,_=s.accept(); print(len(c.recv(65536)), flush=True)",
            &squat,
        );
        let mut out = std::io::BufReader::new(squatter.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let (dir, job) = (tempfile::tempdir().unwrap(), "job-000001".parse().unwrap());
        let auth = Auth::token(Token::generate().unwrap());
        let e = read_local(&squat, &auth, &job, "map-00000-a1.index", 0, dir.path())
            .err()
            .unwrap();
        assert!(matches!(e, HostError::Stranger(65534)), "{e}");
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "0", "the squatter got no byte");
        squatter.wait().unwrap();

        // A holder: another user's request gets the socket closed, no answer.
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(&root.path().join("h")).unwrap());
        let name = unique_name("holder");
        let stop = CancellationToken::new();
        let serving = tokio::spawn(HostListener::bind(&name).unwrap().serve_until(
            store,
            Auth::Off,
            stop.clone(),
        ));
        let client = nobody(
            "import json,socket,struct,sys\n\
             s=socket.socket(socket.AF_UNIX); s.connect('\\0'+sys.argv[1])\n\
             b=json.dumps({'token':'','job_id':'job-000001','index_name':'map-00000-a1.index','partition':0}).encode()\n\
             try:\n s.sendall(struct.pack('<I',len(b))+b); n=len(s.recv(65536))\n\
             except (ConnectionResetError, BrokenPipeError): n=0\n\
             print(n, flush=True)",
            &name,
        );
        let got = tokio::task::spawn_blocking(move || client.wait_with_output().unwrap())
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "0");
        stop.cancel();
        serving.await.unwrap();
    }
}
