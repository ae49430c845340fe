//! How Loom and a session's supervisor talk: over a Unix socket pair, each message a 4-byte
//! little-endian length and that many bytes of JSON; a request to run a command carries the
//! command's stdin/stdout/stderr as file descriptors (`SCM_RIGHTS`), so its output goes
//! straight to Loom's pipes.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

/// The largest message accepted (a command line is at most this long).
const MAX_MESSAGE: usize = 16 << 20;

/// Run a command (its descriptors travel with the message: stdout, stderr, then stdin if
/// `stdin`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub argv: Vec<String>,
    pub stdin: bool,
}

/// How the command ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Reply {
    /// The exit code, or 128 + the signal that ended it.
    pub code: i32,
    /// Every process the command started was seen and ended (false: something may be left).
    pub clean: bool,
}

fn frame(json: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(json.len() + 4);
    msg.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
    msg.extend_from_slice(json);
    msg
}

/// Sends `value` with `fds` attached, on a blocking socket.
pub(crate) fn send<T: Serialize>(
    sock: BorrowedFd<'_>,
    value: &T,
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let json = serde_json::to_vec(value).map_err(io::Error::other)?;
    let msg = frame(&json);
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    let sent = rustix::net::sendmsg(
        sock,
        &[IoSlice::new(&msg)],
        &mut control,
        SendFlags::empty(),
    )?;
    // The descriptors went with the first bytes; the rest is plain bytes.
    let mut file = std::fs::File::from(rustix::io::fcntl_dupfd_cloexec(sock, 0)?);
    file.write_all(&msg[sent..])
}

/// Receives a message and the descriptors attached to it, on a blocking socket; `None` at the
/// end of the stream.
pub(crate) fn recv<T: for<'de> Deserialize<'de>>(
    sock: BorrowedFd<'_>,
) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut len = [0u8; 4];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut len)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if got.bytes == 0 {
        return Ok(None);
    }
    let mut file = std::fs::File::from(rustix::io::fcntl_dupfd_cloexec(sock, 0)?);
    if got.bytes < 4 {
        file.read_exact(&mut len[got.bytes..])?;
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_MESSAGE {
        return Err(io::Error::other(format!(
            "a message of {n} bytes is too large"
        )));
    }
    let mut json = vec![0u8; n];
    file.read_exact(&mut json)?;
    let value = serde_json::from_slice(&json).map_err(io::Error::other)?;
    Ok(Some((value, fds)))
}

/// Reads one reply from Loom's (non-blocking) end of the socket; `None` if the supervisor
/// closed it (it ended, or was killed).
pub(crate) async fn recv_reply(sock: &mut tokio::net::UnixStream) -> io::Result<Option<Reply>> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    match sock.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_MESSAGE {
        return Err(io::Error::other(format!(
            "a reply of {n} bytes is too large"
        )));
    }
    let mut json = vec![0u8; n];
    sock.read_exact(&mut json).await?;
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(io::Error::other)
}

/// Sends a request with its descriptors from Loom's (non-blocking) end of the socket.
pub(crate) async fn send_request(
    sock: &tokio::net::UnixStream,
    req: &Request,
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let json = serde_json::to_vec(req).map_err(io::Error::other)?;
    let msg = frame(&json);
    let mut sent = 0;
    while sent < msg.len() {
        sock.writable().await?;
        let attach = if sent == 0 { fds } else { &[] };
        let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !attach.is_empty() && !control.push(SendAncillaryMessage::ScmRights(attach)) {
                return Err(io::Error::other("too many descriptors for one message"));
            }
            rustix::net::sendmsg(
                sock.as_fd(),
                &[IoSlice::new(&msg[sent..])],
                &mut control,
                SendFlags::NOSIGNAL,
            )
            .map_err(io::Error::from)
        });
        match r {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
