//! Layer 2: byte streams. TCP and Unix domain sockets (with TLS, and WebSocket over
//! either: [`ws`]) behind one [`Stream`] type that splits into owned halves, a
//! [`Listener`] that accepts either, and reconnect [`backoff`]. No framing here: see
//! `protocol`.

pub mod backoff;
pub mod caps;
pub mod liveness;
pub mod tls;
pub mod ws;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

pub use backoff::Backoff;
pub use liveness::{Liveness, LivenessConfig};

/// Where to listen or connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
    /// A WebSocket server (`ws://` or `wss://`): dialled over TCP, then upgraded.
    Ws(ws::WsUrl),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Ws(u) => write!(f, "{u}"),
        }
    }
}

pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// A connected stream of any kind.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    TlsClient(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// A WebSocket (over TCP or TLS), its binary messages read and written as bytes.
    Ws(Box<ws::WsBytes>),
}

// The byte-stream traits over whichever stream it is (a WebSocket runs over a `Stream`).
macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => $e,
            Stream::Unix($s) => $e,
            Stream::TlsClient($s) => $e,
            Stream::TlsServer($s) => $e,
            Stream::Ws($s) => $e,
        }
    };
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        each!(self, s => std::pin::Pin::new(s).poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        each!(self, s => std::pin::Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        each!(self, s => std::pin::Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        each!(self, s => std::pin::Pin::new(s).poll_shutdown(cx))
    }
}

impl Stream {
    /// Connects the byte stream: for a WebSocket, its TCP connection (TLS and the
    /// upgrade follow, see the client).
    pub async fn connect(ep: &Endpoint) -> io::Result<Stream> {
        match ep {
            Endpoint::Ws(u) => {
                Box::pin(Self::connect(&Endpoint::Tcp {
                    host: u.host.clone(),
                    port: u.port,
                }))
                .await
            }
            Endpoint::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                // Actions are small and latency matters more than packet count.
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Endpoint::Unix(p) => Ok(Stream::Unix(UnixStream::connect(p).await?)),
        }
    }

    /// Owned halves, so a reader and a writer task can run without a shared lock.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::TlsClient(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
            Stream::TlsServer(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
            Stream::Ws(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
        }
    }

    /// Runs the client side of a TLS handshake over a TCP stream.
    pub async fn tls_connect(
        self,
        cfg: std::sync::Arc<rustls::ClientConfig>,
        host: &str,
    ) -> io::Result<Stream> {
        let Stream::Tcp(tcp) = self else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS needs a TCP endpoint",
            ));
        };
        let name =
            tls::server_name(host).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let s = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await?;
        Ok(Stream::TlsClient(Box::new(s)))
    }

    /// Runs the server side of a TLS handshake over a TCP stream.
    pub async fn tls_accept(self, cfg: std::sync::Arc<rustls::ServerConfig>) -> io::Result<Stream> {
        let Stream::Tcp(tcp) = self else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS needs a TCP endpoint",
            ));
        };
        let s = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await?;
        Ok(Stream::TlsServer(Box::new(s)))
    }
}

/// Who is on the other end of an accepted connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Printable: `ip:port`, or `unix:path`.
    pub name: String,
    /// The address, for bans; `None` on a Unix socket (local access is governed by the
    /// socket file's permissions).
    pub ip: Option<std::net::IpAddr>,
}

/// A bound listener. Binding is synchronous so that errors such as `EADDRINUSE` reach the
/// caller of `createServer` directly, and the bound port is known at once (port 0 works).
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// How many connections may wait to be accepted (the kernel caps it at its somaxconn).
/// std's 128 was too few for a herd: 4,000 clients leaving a killed server at once had
/// their connection attempts to the next one dropped, and retried by TCP after 1, 3 and
/// 7 s; and a Unix socket refuses a connection outright when its queue is full.
const BACKLOG: i32 = 4096;

/// Binds and listens as std's `TcpListener::bind` does (each address the host resolves
/// to, `SO_REUSEADDR`), with a deeper queue.
fn listen_tcp(host: &str, port: u16) -> io::Result<socket2::Socket> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        s.set_reuse_address(true)?;
        match s.bind(&addr.into()).and_then(|_| s.listen(BACKLOG)) {
            Ok(()) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host} resolves to no address"),
        )
    }))
}

impl Listener {
    /// Binds; must be called inside a tokio runtime context.
    pub fn bind(ep: &Endpoint) -> io::Result<Listener> {
        match ep {
            Endpoint::Ws(u) => Self::bind(&Endpoint::Tcp {
                host: u.host.clone(),
                port: u.port,
            }),
            Endpoint::Tcp { host, port } => {
                let std: std::net::TcpListener = listen_tcp(host, *port)?.into();
                std.set_nonblocking(true)?;
                Ok(Listener::Tcp(TcpListener::from_std(std)?))
            }
            Endpoint::Unix(path) => {
                remove_stale_socket(path)?;
                let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
                s.bind(&socket2::SockAddr::unix(path)?)?;
                s.listen(BACKLOG)?;
                let std: std::os::unix::net::UnixListener = s.into();
                std.set_nonblocking(true)?;
                Ok(Listener::Unix(UnixListener::from_std(std)?, path.clone()))
            }
        }
    }

    /// A TCP listener on a free loopback port, and the endpoint that reaches it.
    pub fn loopback() -> io::Result<(Listener, Endpoint)> {
        let l = Listener::bind(&Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        })?;
        let ep = Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: l.port().unwrap_or(0),
        };
        Ok((l, ep))
    }

    /// The bound TCP port, or `None` for a Unix socket.
    pub fn port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(..) => None,
        }
    }

    /// Accepts one connection, returning it with its peer.
    pub async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                s.set_nodelay(true)?;
                let peer = Peer {
                    name: addr.to_string(),
                    ip: Some(addr.ip()),
                };
                Ok((Stream::Tcp(s), peer))
            }
            Listener::Unix(l, path) => {
                let (s, _) = l.accept().await?;
                let peer = Peer {
                    name: format!("unix:{}", path.display()),
                    ip: None,
                };
                Ok((Stream::Unix(s), peer))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A socket file left by a process that died is removed; one that a live server still
/// answers on is not (binding then fails with `EADDRINUSE`, as it should).
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running server", path.display()),
                ));
            }
            std::fs::remove_file(path)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn tcp_port_zero_and_unix_stale_file() {
        let l = Listener::bind(&Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        })
        .unwrap();
        let port = l.port().unwrap();
        assert_ne!(port, 0);
        let ep = Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let (c, s) = tokio::join!(Stream::connect(&ep), l.accept());
        let (_, mut w) = c.unwrap().into_split();
        let (mut r, _) = s.unwrap().0.into_split();
        w.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");

        let dir = std::env::temp_dir().join(format!("rcrs-t-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stale.sock");
        // A socket file whose server is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = Listener::bind(&Endpoint::Unix(path.clone())).unwrap();
        // A live one is not stolen.
        assert_eq!(
            Listener::bind(&Endpoint::Unix(path.clone()))
                .err()
                .unwrap()
                .kind(),
            io::ErrorKind::AddrInUse
        );
        drop(live);
        assert!(!path.exists(), "socket file removed on drop");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
