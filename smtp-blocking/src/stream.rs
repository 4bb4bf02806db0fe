//! The connection: server address parsing, the TCP connect, and a stream that is plain TCP
//! until a TLS handshake turns it into TLS.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::{Duration, Instant};

use rustls::{ClientConnection, Connection};
use smtp_proto::client::TlsPolicy;
use smtp_proto::{PORT_SUBMISSION, PORT_SUBMISSIONS};

use crate::error::Error;
use crate::tls::{TlsInfo, TlsSetup};

/// A server address split into host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// A DNS name or an IP address, without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl ServerAddress {
    /// Parses `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a bare IPv6 address; a missing port
    /// is `default_port`. Anything else is [`Error::InvalidServer`].
    pub fn parse(server: &str, default_port: u16) -> Result<Self, Error> {
        let invalid = || Error::InvalidServer(server.to_owned());
        let parse_port = |port: &str| match port.parse::<u16>() {
            Ok(0) | Err(_) => Err(invalid()),
            Ok(port) => Ok(port),
        };

        let (host, port) = if let Some(rest) = server.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
            host.parse::<Ipv6Addr>().map_err(|_| invalid())?;
            let port = match after {
                "" => default_port,
                _ => parse_port(after.strip_prefix(':').ok_or_else(invalid)?)?,
            };
            (host, port)
        } else if server.parse::<Ipv6Addr>().is_ok() {
            (server, default_port)
        } else {
            match server.split_once(':') {
                Some((host, port)) => (host, parse_port(port)?),
                None => (server, default_port),
            }
        };

        let valid_octet = |octet: u8| octet.is_ascii_graphic() && !b"[]/@".contains(&octet);
        if host.is_empty() || !host.bytes().all(valid_octet) {
            return Err(invalid());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// Returns the port for a server address without one: 465 under [`TlsPolicy::Wrapper`]
    /// (implicit TLS, RFC 8314) and 587 otherwise (submission, RFC 6409).
    pub fn default_port(policy: TlsPolicy) -> u16 {
        match policy {
            TlsPolicy::Wrapper => PORT_SUBMISSIONS,
            _ => PORT_SUBMISSION,
        }
    }

    /// Returns the host: a DNS name or an IP address, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Returns the port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Resolves the address and opens a TCP connection to the first address that accepts, with
    /// `TCP_NODELAY` on so each batch of commands leaves at once. Errors name the host and port.
    pub(crate) fn connect(&self, timeout: Duration) -> Result<TcpStream, Error> {
        let addresses: Vec<SocketAddr> = match self.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => (self.host.as_str(), self.port)
                .to_socket_addrs()
                .map_err(|source| Error::Resolve {
                    server: self.to_string(),
                    source,
                })?
                .collect(),
        };

        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for address in &addresses {
            match TcpStream::connect_timeout(address, timeout) {
                Ok(tcp) => {
                    tcp.set_nodelay(true).map_err(Error::Io)?;
                    return Ok(tcp);
                }
                Err(error) => last_error = error,
            }
        }
        if addresses.is_empty() {
            return Err(Error::Resolve {
                server: self.to_string(),
                source: last_error,
            });
        }
        Err(Error::Connect {
            server: self.to_string(),
            source: last_error,
        })
    }
}

impl fmt::Display for ServerAddress {
    /// Writes `host:port`, with the host in brackets when it is an IPv6 address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The result of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// This many octets of plaintext are at the start of the buffer.
    Data(usize),
    /// The server closed or reset the connection.
    Eof,
    /// Nothing arrived before the deadline.
    TimedOut,
}

/// The connection to the peer: plain TCP, or TLS over it after [`Stream::start_tls`] (the client
/// side) or `Stream::accept_tls` (the server side).
#[derive(Debug)]
pub(crate) struct Stream {
    tcp: TcpStream,
    tls: Option<Box<Connection>>,
    write_timeout: Duration,
}

impl Stream {
    /// Wraps a connected socket; every write may take up to `write_timeout`.
    pub(crate) fn new(tcp: TcpStream, write_timeout: Duration) -> Result<Self, Error> {
        tcp.set_write_timeout(Some(nonzero(write_timeout)))
            .map_err(Error::Io)?;
        Ok(Self {
            tcp,
            tls: None,
            write_timeout,
        })
    }

    /// Runs the client side of the TLS handshake on the socket, within `timeout`, and encrypts
    /// everything after it.
    pub(crate) fn start_tls(
        &mut self,
        setup: &TlsSetup,
        timeout: Duration,
    ) -> Result<TlsInfo, Error> {
        let connection = ClientConnection::new(setup.config.clone(), setup.server_name.clone())?;
        self.handshake(connection.into(), timeout)
    }

    /// Runs the server side of the TLS handshake on the socket, within `timeout`, and encrypts
    /// everything after it.
    #[cfg(feature = "server")]
    pub(crate) fn accept_tls(
        &mut self,
        config: &std::sync::Arc<rustls::ServerConfig>,
        timeout: Duration,
    ) -> Result<TlsInfo, Error> {
        let connection = rustls::ServerConnection::new(config.clone())?;
        self.handshake(connection.into(), timeout)
    }

    fn handshake(
        &mut self,
        mut connection: Connection,
        timeout: Duration,
    ) -> Result<TlsInfo, Error> {
        let deadline = smtp_proto::timer::deadline_after(Instant::now(), timeout);
        // One poll_transmit buffer goes into the TLS layer with one write, whatever its size.
        connection.set_buffer_limit(None);
        while connection.is_handshaking() {
            let Some(remaining) = deadline.checked_duration_since(Instant::now()) else {
                return Err(handshake_timed_out());
            };
            let remaining = nonzero(remaining);
            self.tcp
                .set_read_timeout(Some(remaining))
                .map_err(Error::Io)?;
            self.tcp
                .set_write_timeout(Some(remaining))
                .map_err(Error::Io)?;
            if let Err(error) = connection.complete_io(&mut self.tcp) {
                return Err(match error.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => handshake_timed_out(),
                    _ => tls_or_io(error),
                });
            }
        }

        self.tcp
            .set_write_timeout(Some(nonzero(self.write_timeout)))
            .map_err(Error::Io)?;
        let info = TlsInfo::of(&connection);
        self.tls = Some(Box::new(connection));
        info.ok_or_else(|| Error::Io(io::Error::other("TLS handshake ended without parameters")))
    }

    /// Writes all of `data` and flushes it to the socket.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(connection) = self.tls.as_mut() else {
            return self.tcp.write_all(data);
        };

        connection.writer().write_all(data)?;
        while connection.wants_write() {
            connection.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }

    /// Reads what has arrived into `buf`, waiting until `deadline` at most.
    pub(crate) fn read(&mut self, buf: &mut [u8], deadline: Instant) -> Result<Received, Error> {
        loop {
            let Some(remaining) = deadline.checked_duration_since(Instant::now()) else {
                return Ok(Received::TimedOut);
            };
            self.tcp
                .set_read_timeout(Some(nonzero(remaining)))
                .map_err(Error::Io)?;

            let result = match self.tls.as_mut() {
                None => self.tcp.read(buf).map(|read| match read {
                    0 => Received::Eof,
                    read => Received::Data(read),
                }),
                Some(connection) => Self::read_tls(connection, &mut self.tcp, buf),
            };
            match result {
                Ok(Received::Data(0)) => continue,
                Ok(received) => return Ok(received),
                Err(error) => match error.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        return Ok(Received::TimedOut);
                    }
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof => return Ok(Received::Eof),
                    // An invalid record after the handshake is a broken connection, not a
                    // failed TLS set-up: it stays an I/O error, with the TLS error inside.
                    _ => return Err(Error::Io(error)),
                },
            }
        }
    }

    /// Reads what is already waiting on the plain socket, without blocking; `None` when nothing
    /// is. Bytes that arrive after the reply to STARTTLS go to the session this way, never to
    /// the TLS handshake.
    pub(crate) fn read_waiting(&mut self, buf: &mut [u8]) -> Result<Option<Received>, Error> {
        self.tcp.set_nonblocking(true).map_err(Error::Io)?;
        let result = self.tcp.read(buf);
        self.tcp.set_nonblocking(false).map_err(Error::Io)?;

        match result {
            Ok(0) => Ok(Some(Received::Eof)),
            Ok(read) => Ok(Some(Received::Data(read))),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(error) => Err(Error::Io(error)),
        }
    }

    /// Sends the TLS close_notify alert, if TLS is up, and shuts the socket down. Errors are
    /// ignored: the connection is being dropped anyway.
    pub(crate) fn shutdown(&mut self) {
        if let Some(connection) = self.tls.as_mut() {
            connection.send_close_notify();
            let _ignored = connection.write_tls(&mut self.tcp);
        }
        let _ignored = self.tcp.shutdown(Shutdown::Both);
    }

    /// Returns the socket, for socket options and addresses.
    #[cfg(test)]
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Reads plaintext from a TLS connection: decrypted data already buffered, or else the next
    /// records from the socket. `Data(0)` means records arrived that carried no plaintext.
    fn read_tls(
        connection: &mut Connection,
        tcp: &mut TcpStream,
        buf: &mut [u8],
    ) -> io::Result<Received> {
        match connection.reader().read(buf) {
            Ok(0) => return Ok(Received::Eof),
            Ok(read) => return Ok(Received::Data(read)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }

        if connection.read_tls(tcp)? == 0 {
            return Ok(Received::Eof);
        }
        if let Err(error) = connection.process_new_packets() {
            // Send the alert that describes the error, if there is one.
            let _ignored = connection.write_tls(tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        // Key updates and other post-handshake messages may need a response.
        while connection.wants_write() {
            connection.write_tls(tcp)?;
        }
        Ok(Received::Data(0))
    }
}

/// Turns an I/O error from the TLS handshake into [`Error::Tls`] when a TLS error is inside it.
fn tls_or_io(error: io::Error) -> Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => Error::Tls(tls.clone()),
        None => Error::Io(error),
    }
}

fn handshake_timed_out() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "TLS handshake timed out",
    ))
}

/// Socket timeouts must not be zero; a deadline that is due now waits one millisecond.
fn nonzero(timeout: Duration) -> Duration {
    timeout.max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn server_address_forms() {
        let cases = [
            ("host only", "mail.example.test", "mail.example.test", 587),
            (
                "host and port",
                "mail.example.test:2525",
                "mail.example.test",
                2525,
            ),
            ("IPv4 and port", "127.0.0.1:25", "127.0.0.1", 25),
            ("bracketed IPv6 and port", "[::1]:2525", "::1", 2525),
            ("bracketed IPv6", "[::1]", "::1", 587),
            ("bare IPv6", "::1", "::1", 587),
        ];
        for (label, server, host, port) in cases {
            let address = ServerAddress::parse(server, 587)
                .unwrap_or_else(|error| panic!("{label}: {error}"));
            assert_eq!(address.host, host, "{label}");
            assert_eq!(address.port, port, "{label}");
        }
    }

    #[test]
    fn server_address_rejects_invalid() {
        let cases = [
            ("empty", ""),
            ("port zero", "mail.example.test:0"),
            ("port too large", "mail.example.test:65536"),
            ("port not a number", "mail.example.test:smtp"),
            ("empty host", ":25"),
            ("unclosed bracket", "[::1:25"),
            ("bracketed name", "[mail.example.test]:25"),
            ("text after bracket", "[::1]25"),
            ("space in host", "mail example.test"),
            ("URL", "smtp://mail.example.test"),
        ];
        for (label, server) in cases {
            let result = ServerAddress::parse(server, 587);
            assert!(
                matches!(result, Err(Error::InvalidServer(ref s)) if s == server),
                "{label}: {result:?}"
            );
        }
    }

    #[test]
    fn connect_sets_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = ServerAddress::parse(&format!("127.0.0.1:{port}"), 587).unwrap();

        let tcp = address.connect(Duration::from_secs(5)).unwrap();
        let stream = Stream::new(tcp, Duration::from_secs(5)).unwrap();

        assert!(stream.tcp().nodelay().unwrap());
    }

    #[test]
    fn connect_error_names_default_port() {
        let cases = [
            ("bare IPv6", "::1", "[::1]"),
            ("IPv4", "127.0.0.1", "127.0.0.1"),
        ];
        for (label, server, host) in cases {
            // A port that was just free: nothing listens on it once the listener is dropped.
            let port = TcpListener::bind((host.trim_matches(['[', ']']), 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let address = ServerAddress::parse(server, port).unwrap();

            let error = address.connect(Duration::from_secs(5)).unwrap_err();

            let text = error.to_string();
            let expected = format!("failed to connect to {host}:{port}: ");
            assert!(text.starts_with(&expected), "{label}: {text}");
        }
    }
}
