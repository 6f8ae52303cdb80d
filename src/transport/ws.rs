//! WebSocket as one more byte stream: the store's frames travel inside binary messages
//! (a message boundary means nothing; the frames carry their own lengths), so that a
//! WebSocket connection is served by the same protocol code as TCP and Unix sockets,
//! with the same handshake, acknowledgements, resume, snapshots and backpressure.
//!
//! The server side checks what only a WebSocket upgrade has: the `Origin` (an allow-list),
//! the connection limit, and `X-Forwarded-For`, believed only from configured proxies.

use super::caps::{Caps, Slot};
use super::Stream;
use bytes::Bytes;
use futures_sink::Sink;
use futures_util::Stream as _;
use parking_lot::Mutex;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

/// What a server's WebSocket keeps to read into while its client is quiet.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Largest message written: tungstenite formats each into a buffer it never shrinks, so
/// one large write (a new client's catch-up) would stay reserved for the connection's
/// life. Messages mean nothing to the protocol; larger writes go as several. With its
/// 4-byte header a message fills a 4 KiB allocation.
const WS_WRITE_CHUNK: usize = 4 * 1024 - 4;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A WebSocket connection read and written as bytes.
pub struct WsBytes {
    ws: WebSocketStream<Stream>,
    pending: Bytes,
    closing: bool,
    /// A message sent but not yet flushed: its length, reported once the flush is done.
    in_flight: Option<usize>,
}

impl WsBytes {
    pub fn new(ws: WebSocketStream<Stream>) -> WsBytes {
        WsBytes {
            ws,
            pending: Bytes::new(),
            closing: false,
            in_flight: None,
        }
    }

    /// Sends a close frame with `reason` (best effort: the peer may be gone).
    fn refuse(&mut self, cx: &mut Context<'_>, code: CloseCode, reason: &str) {
        if self.closing {
            return;
        }
        self.closing = true;
        let ws = Pin::new(&mut self.ws);
        if let Poll::Ready(Ok(())) = ws.poll_ready(cx) {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = Pin::new(&mut self.ws).start_send(Message::Close(Some(frame)));
            let _ = Pin::new(&mut self.ws).poll_flush(cx);
        }
    }
}

fn ws_err(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Io(e) => e,
        E::ConnectionClosed | E::AlreadyClosed => io::Error::from(io::ErrorKind::BrokenPipe),
        E::Capacity(c) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket message too large: {c}"),
        ),
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl AsyncRead for WsBytes {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(b))) => self.pending = b,
                Some(Ok(Message::Text(_))) => {
                    let why = "this endpoint speaks binary messages (the redux-cluster-rs protocol), not text";
                    self.refuse(cx, CloseCode::Unsupported, why);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why)));
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => {}
                // A peer that went away without a close frame (a browser tab closed,
                // a process killed) has simply disconnected.
                Some(Err(tokio_tungstenite::tungstenite::Error::Protocol(
                    tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ))) => return Poll::Ready(Ok(())),
                Some(Err(e)) => {
                    let e = ws_err(e);
                    if e.kind() == io::ErrorKind::InvalidData {
                        self.refuse(cx, CloseCode::Size, "message too large or malformed");
                    }
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl AsyncWrite for WsBytes {
    // A write completes once its message is on the socket, as a TCP write would: the
    // protocol code never calls flush (TCP and Unix sockets need none). A caller that
    // got Pending calls again with the same bytes, which are then already sent.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.in_flight.is_none() {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(ws_err)?;
            let n = buf.len().min(WS_WRITE_CHUNK);
            Pin::new(&mut self.ws)
                .start_send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                .map_err(ws_err)?;
            self.in_flight = Some(n);
        }
        ready!(Pin::new(&mut self.ws).poll_flush(cx)).map_err(ws_err)?;
        Poll::Ready(Ok(self.in_flight.take().unwrap_or(buf.len())))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(ws_err)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => match ws_err(e) {
                e if e.kind() == io::ErrorKind::BrokenPipe => Poll::Ready(Ok(())),
                e => Poll::Ready(Err(e)),
            },
        }
    }
}

/// Who may open a WebSocket on a listener.
#[derive(Debug, Default)]
pub struct WsPolicy {
    /// Allowed `Origin`s; empty: any (and requests without one, as Node clients send).
    pub origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed (its last hop before them).
    pub trust_proxy: Vec<IpAddr>,
    /// Most open connections at once (`total` only), counted before the upgrade.
    pub limit: Arc<Caps>,
    /// Largest message, in bytes.
    pub max_message: usize,
}

impl WsPolicy {
    pub fn new(
        origins: Vec<String>,
        trust_proxy: Vec<IpAddr>,
        limit: usize,
        max_message: usize,
    ) -> WsPolicy {
        WsPolicy {
            origins,
            trust_proxy,
            limit: Arc::new(Caps::new((limit > 0).then_some(limit), None)),
            max_message,
        }
    }

    fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
            // tungstenite reserves its read buffer up front (128 KiB by default): a server
            // of thousands of quiet pages would hold that much for each. A larger message
            // grows it as it arrives.
            .read_buffer_size(WS_READ_BUFFER)
    }
}

/// An accepted WebSocket: its stream, the client's address (from a trusted proxy's
/// `X-Forwarded-For`, else the socket's), and its place under the limit.
pub struct Accepted {
    pub stream: Stream,
    pub ip: Option<IpAddr>,
    pub guard: Slot,
}

fn refusal(status: u16, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why.to_string()));
    *r.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status)
        .unwrap_or(tokio_tungstenite::tungstenite::http::StatusCode::FORBIDDEN);
    r
}

/// The client's address: the last `X-Forwarded-For` hop when the socket's peer is a
/// trusted proxy; otherwise the socket's peer (anyone can write that header).
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded: Option<&str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer_ip = peer?;
    if !trusted.contains(&peer_ip) {
        return Some(peer_ip);
    }
    forwarded
        .and_then(|h| h.rsplit(',').next())
        .and_then(|s| s.trim().parse().ok())
        .or(Some(peer_ip))
}

/// Runs the server side of the upgrade, applying `policy`.
// tungstenite's handshake callback returns its own (large) error response type.
#[allow(clippy::result_large_err)]
pub async fn accept(
    stream: Stream,
    peer: Option<IpAddr>,
    policy: Arc<WsPolicy>,
) -> Result<Accepted, String> {
    // Counted before the handshake, so a flood cannot open more than the limit at once;
    // one past it still gets its upgrade answered, with a 503 and the reason.
    let place = policy.limit.admit(None);
    let over = place.as_ref().err().cloned();
    let forwarded: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = forwarded.clone();
    let p = policy.clone();
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if let Some(why) = &over {
            return Err(refusal(503, why));
        }
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        // Browsers always send an Origin; the allow-list keeps other sites' pages out.
        // Programs (Node clients) send none and are let through: they could send any.
        if let Some(o) =
            origin.filter(|o| !p.origins.is_empty() && !p.origins.iter().any(|a| a == o))
        {
            return Err(refusal(403, &format!("origin {o} is not allowed")));
        }
        *seen.lock() = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(resp)
    };
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(policy.config()))
            .await
            .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    let ip = client_ip(peer, forwarded.lock().as_deref(), &policy.trust_proxy);
    Ok(Accepted {
        stream: Stream::Ws(Box::new(WsBytes::new(ws))),
        ip,
        guard: place?,
    })
}

/// A `ws://` or `wss://` URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl WsUrl {
    pub fn parse(url: &str) -> Result<WsUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else {
            return Err(format!("{url:?} is not a ws:// or wss:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // `[v6]:port`, `[v6]`, `host:port` or `host`.
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("{url:?}: unclosed ["))?;
                (h, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("{url:?}: bad port {p:?}"))?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        Ok(WsUrl {
            tls,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

impl std::fmt::Display for WsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "wss" } else { "ws" };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

/// Runs the client side of the upgrade over `stream` (TCP, or TLS for `wss://`).
pub async fn connect(stream: Stream, url: &WsUrl, max_message: usize) -> io::Result<Stream> {
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let (ws, _) = tokio_tungstenite::client_async_with_config(url.to_string(), stream, Some(cfg))
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "the server refused the WebSocket (HTTP {}): {}",
                    r.status(),
                    r.body()
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default()
                ),
            ),
            e => ws_err(e),
        })?;
    Ok(Stream::Ws(Box::new(WsBytes::new(ws))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://localhost:8888").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "localhost", 8888, "/")
        );
        let u = WsUrl::parse("wss://example.org/sync").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/sync"));
        let u = WsUrl::parse("ws://[::1]:9/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert!(WsUrl::parse("http://x").is_err());
        assert!(WsUrl::parse("ws://:80").is_err());
        assert!(WsUrl::parse("ws://h:99999").is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        let h = Some("1.2.3.4, 5.6.7.8");
        assert_eq!(
            client_ip(Some(proxy), h, &[proxy]),
            Some("5.6.7.8".parse().unwrap())
        );
        assert_eq!(client_ip(Some(other), h, &[proxy]), Some(other));
        assert_eq!(
            client_ip(Some(proxy), Some("garbage"), &[proxy]),
            Some(proxy)
        );
        assert_eq!(client_ip(Some(proxy), None, &[proxy]), Some(proxy));
    }
}
