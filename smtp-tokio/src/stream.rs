//! The connection under a client: the server it belongs to, the TCP connect, and a stream that
//! carries plain bytes until a TLS handshake turns it into TLS.

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use smtp_blocking::{Error as ClientError, Options, ServerAddress, TlsInfo, TlsSetup};
use smtp_proto::client::TlsPolicy;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, TlsStream};

use crate::error::Error;

/// A byte stream a client can run on: TCP, or whatever the caller supplies, such as a proxy
/// tunnel, a Unix socket or an in-memory pipe.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// The server a client or pool talks to: the address as the caller gave it, for logs and
/// errors, its host and port, and the TLS setup unless the policy is [`TlsPolicy::None`].
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) server: String,
    pub(crate) address: ServerAddress,
    pub(crate) tls: Option<TlsSetup>,
}

impl Endpoint {
    /// Parses `server` and builds the TLS configuration the options ask for; a missing port is
    /// [`ServerAddress::default_port`].
    pub(crate) fn new(server: &str, options: &Options) -> Result<Self, Error> {
        let policy = options.session.tls;
        let address = ServerAddress::parse(server, ServerAddress::default_port(policy))?;
        let tls = match policy {
            TlsPolicy::None => None,
            _ => Some(TlsSetup::new(options, address.host())?),
        };

        Ok(Self {
            server: server.to_owned(),
            address,
            tls,
        })
    }

    /// Resolves the host and opens a TCP connection to the first address that accepts it within
    /// `timeout`, with `TCP_NODELAY` on so each batch of commands leaves at once.
    pub(crate) async fn connect_tcp(&self, timeout: Duration) -> Result<TcpStream, Error> {
        let (host, port) = (self.address.host(), self.address.port());
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| ClientError::Resolve {
                    server: self.server.clone(),
                    source,
                })?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(Error::Client(ClientError::Resolve {
                server: self.server.clone(),
                source: io::Error::new(io::ErrorKind::NotFound, "the host has no address"),
            }));
        }

        let mut last_error = None;
        for address in &addresses {
            let error = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => {
                    tcp.set_nodelay(true).map_err(Error::io)?;
                    return Ok(tcp);
                }
                Ok(Err(error)) => error,
                Err(_) => io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {address} timed out after {timeout:?}"),
                ),
            };
            last_error = Some(error);
        }
        Err(Error::Client(ClientError::Connect {
            server: self.server.clone(),
            source: last_error.unwrap_or_else(|| io::Error::other("no address was tried")),
        }))
    }
}

/// The stream of one connection: plain, TLS after [`Transport::start_tls`] (or
/// `Transport::accept_tls` on the server side), or closed.
pub(crate) enum Transport {
    Plain(Box<dyn Io>),
    Tls(Box<TlsStream<Box<dyn Io>>>),
    Closed,
}

impl Transport {
    /// Reads what has arrived into `buf`; `Ok(0)` is the end of the stream.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream()?.read(buf).await
    }

    /// Writes all of `data` and flushes it, through the TLS layer when TLS is up.
    pub(crate) async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let stream = self.stream()?;
        stream.write_all(data).await?;
        stream.flush().await
    }

    /// Reads what is already waiting, without waiting for more; `None` when nothing is. Bytes
    /// that arrive after the reply to STARTTLS reach the session this way, never the TLS
    /// handshake, and a pooled connection is checked this way before it is reused.
    pub(crate) async fn read_waiting(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let stream = match self.stream() {
            Ok(stream) => stream,
            Err(error) => return Some(Err(error)),
        };
        poll_fn(|cx| {
            let mut read = ReadBuf::new(buf);
            match Pin::new(&mut *stream).poll_read(cx, &mut read) {
                Poll::Pending => Poll::Ready(None),
                Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(read.filled().len()))),
                Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
            }
        })
        .await
    }

    /// Runs the TLS handshake on the plain stream and encrypts everything after it. On failure
    /// the transport is closed.
    pub(crate) async fn start_tls(&mut self, setup: &TlsSetup) -> Result<TlsInfo, Error> {
        let Self::Plain(io) = std::mem::replace(self, Self::Closed) else {
            return Err(Error::io(io::Error::other(
                "TLS was requested on a connection that is not plain text",
            )));
        };

        let connector = TlsConnector::from(setup.config().clone());
        let stream = connector
            .connect(setup.server_name().clone(), io)
            .await
            .map_err(Error::from_io)?;
        let info = TlsInfo::of(stream.get_ref().1);
        *self = Self::Tls(Box::new(stream.into()));
        info.ok_or_else(|| Error::io(io::Error::other("TLS handshake ended without parameters")))
    }

    /// Runs the server side of the TLS handshake on the plain stream, within `timeout`, and
    /// encrypts everything after it. On failure the transport is closed.
    #[cfg(feature = "server")]
    pub(crate) async fn accept_tls(
        &mut self,
        config: &std::sync::Arc<rustls::ServerConfig>,
        timeout: Duration,
    ) -> io::Result<TlsInfo> {
        let Self::Plain(io) = std::mem::replace(self, Self::Closed) else {
            return Err(io::Error::other(
                "TLS was requested on a connection that is not plain text",
            ));
        };

        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
        let stream = tokio::time::timeout(timeout, acceptor.accept(io))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the TLS handshake timed out after {timeout:?}"),
                )
            })??;
        let info = TlsInfo::of(stream.get_ref().1);
        *self = Self::Tls(Box::new(stream.into()));
        info.ok_or_else(|| io::Error::other("TLS handshake ended without parameters"))
    }

    /// Sends the TLS close_notify alert, if TLS is up, shuts the stream down and closes it.
    /// Errors are ignored: the connection is being dropped anyway.
    pub(crate) async fn shutdown(&mut self) {
        if let Ok(stream) = self.stream() {
            let _ignored = tokio::time::timeout(SHUTDOWN_TIMEOUT, stream.shutdown()).await;
        }
        *self = Self::Closed;
    }

    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    fn stream(&mut self) -> io::Result<&mut dyn Io> {
        match self {
            Self::Plain(stream) => Ok(stream.as_mut()),
            Self::Tls(stream) => Ok(stream.as_mut()),
            Self::Closed => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is already closed",
            )),
        }
    }
}

/// How long closing a connection may wait for the close_notify alert and the TCP shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    fn endpoint(server: &str, tls: TlsPolicy) -> Result<Endpoint, Error> {
        let mut options = Options::default();
        options.session.tls = tls;
        Endpoint::new(server, &options)
    }

    #[test]
    fn endpoint_default_ports() {
        let cases = [
            ("required", TlsPolicy::Required, 587),
            ("none", TlsPolicy::None, 587),
            ("wrapper", TlsPolicy::Wrapper, 465),
        ];
        for (label, tls, port) in cases {
            let endpoint = endpoint("mail.example.test", tls).unwrap();

            assert_eq!(endpoint.address.port(), port, "{label}");
            assert_eq!(endpoint.tls.is_some(), tls != TlsPolicy::None, "{label}");
        }
    }

    #[test]
    fn endpoint_rejects_invalid_server() {
        let result = endpoint("smtp://mail.example.test", TlsPolicy::None);

        assert!(
            matches!(
                result,
                Err(Error::Client(ClientError::InvalidServer(ref s)))
                    if s == "smtp://mail.example.test"
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn connect_tcp_sets_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = endpoint(&format!("127.0.0.1:{port}"), TlsPolicy::None).unwrap();

        let tcp = endpoint.connect_tcp(Duration::from_secs(5)).await.unwrap();

        assert!(tcp.nodelay().unwrap());
    }

    #[tokio::test]
    async fn connect_tcp_refused_names_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let server = format!("127.0.0.1:{port}");
        let endpoint = endpoint(&server, TlsPolicy::None).unwrap();

        let result = endpoint.connect_tcp(Duration::from_secs(5)).await;

        assert!(
            matches!(
                result,
                Err(Error::Client(ClientError::Connect { server: ref s, .. })) if *s == server
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn read_waiting_returns_none_when_nothing_arrived() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut transport = Transport::Plain(Box::new(client));
        let mut buf = [0; 16];

        assert!(transport.read_waiting(&mut buf).await.is_none());
        server.write_all(b"421 bye\r\n").await.unwrap();
        let read = transport.read_waiting(&mut buf).await.unwrap().unwrap();
        assert_eq!(&buf[..read], b"421 bye\r\n");
        drop(server);
        assert_eq!(transport.read_waiting(&mut buf).await.unwrap().unwrap(), 0);
    }
}
