//! A scripted SMTP server on 127.0.0.1 for the tests, with server-side TLS and certificates
//! made at test time.

use std::io::{self, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

/// How long the scripted server waits for each client line before the test fails.
pub(crate) const SERVER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A scripted server thread listening on an ephemeral port of 127.0.0.1.
pub(crate) struct Server {
    /// `127.0.0.1:PORT`, for `Client::connect`.
    pub(crate) address: String,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server that accepts one connection and runs `script` on it. The script fails
    /// when no client connects within [`SERVER_READ_TIMEOUT`].
    pub(crate) fn start(script: impl FnOnce(&mut Peer) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let thread = std::thread::spawn(move || {
            let tcp = accept_within(&listener, SERVER_READ_TIMEOUT);
            tcp.set_read_timeout(Some(SERVER_READ_TIMEOUT)).unwrap();
            let mut peer = Peer {
                tcp,
                tls: None,
                buffer: Vec::new(),
                reads: 0,
            };
            script(&mut peer);
        });
        Self {
            address,
            thread: Some(thread),
        }
    }

    /// Waits for the script to finish and fails the test with the script's panic, if any.
    pub(crate) fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// The server's side of one connection, plain or TLS.
pub(crate) struct Peer {
    tcp: TcpStream,
    tls: Option<ServerConnection>,
    /// Plaintext received and not yet consumed.
    buffer: Vec<u8>,
    /// How many reads returned data.
    pub(crate) reads: usize,
}

impl Peer {
    /// Sends `text` followed by CRLF in one write; `text` may hold several CRLF-separated lines.
    pub(crate) fn send(&mut self, text: &str) {
        self.send_raw(format!("{text}\r\n").as_bytes());
    }

    /// Sends octets as they are, in one write.
    pub(crate) fn send_raw(&mut self, octets: &[u8]) {
        match self.tls.as_mut() {
            None => self.tcp.write_all(octets).unwrap(),
            Some(tls) => {
                let mut stream = rustls::Stream::new(tls, &mut self.tcp);
                stream.write_all(octets).unwrap();
                stream.flush().unwrap();
            }
        }
    }

    /// Reads one line and asserts it is `expected` (without CRLF).
    #[track_caller]
    pub(crate) fn expect(&mut self, expected: &str) {
        let line = self.read_line();
        assert_eq!(line.as_deref(), Some(expected), "client line");
    }

    /// Reads one line and asserts it starts with `prefix`; returns the line.
    #[track_caller]
    pub(crate) fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = self
            .read_line()
            .expect("a line, not the end of the connection");
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}..., got {line:?}"
        );
        line
    }

    /// Reads one CRLF-terminated line, without its CRLF; `None` at the end of the connection.
    pub(crate) fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                return Some(String::from_utf8(line).expect("client lines are UTF-8"));
            }
            let read = self.fill().unwrap_or_else(|error| {
                panic!(
                    "no complete client line arrived ({error}); received so far: {:?}",
                    String::from_utf8_lossy(&self.buffer)
                )
            });
            if read == 0 {
                return None;
            }
        }
    }

    /// Reads message data up to the lone dot and returns it, still dot-stuffed, without the
    /// end-of-data line.
    pub(crate) fn read_data(&mut self) -> Vec<u8> {
        let mut data = Vec::new();
        loop {
            let line = self
                .read_line()
                .expect("message data, not the end of the connection");
            if line == "." {
                return data;
            }
            data.extend_from_slice(line.as_bytes());
            data.extend_from_slice(b"\r\n");
        }
    }

    /// Reads exactly `count` octets, such as the chunk after a BDAT command.
    pub(crate) fn read_octets(&mut self, count: usize) -> Vec<u8> {
        while self.buffer.len() < count {
            let read = self.fill().unwrap_or_else(|error| {
                panic!(
                    "{count} octets did not arrive ({error}); received {}",
                    self.buffer.len()
                )
            });
            assert!(
                read > 0,
                "the client closed after {} of {count} octets",
                self.buffer.len()
            );
        }
        self.buffer.drain(..count).collect()
    }

    /// Reads the client's TLS ClientHello, answers it with a fatal handshake_failure alert
    /// (RFC 8446 section 6) instead of a ServerHello, and waits for the client to close.
    pub(crate) fn reject_client_hello(&mut self) {
        let mut chunk = [0; 16 * 1024];
        let read = self.tcp.read(&mut chunk).unwrap();
        assert_eq!(
            chunk[..read].first(),
            Some(&0x16),
            "not a TLS handshake record"
        );
        self.send_raw(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
        self.read_to_end();
    }

    /// Runs the server side of a TLS handshake; everything after it is encrypted.
    pub(crate) fn start_tls(&mut self, config: Arc<ServerConfig>) {
        self.try_start_tls(config).unwrap();
    }

    /// Runs the server side of a TLS handshake and returns its error instead of failing.
    pub(crate) fn try_start_tls(&mut self, config: Arc<ServerConfig>) -> io::Result<()> {
        assert!(
            self.buffer.is_empty(),
            "the client sent {:?} before the TLS handshake",
            String::from_utf8_lossy(&self.buffer)
        );
        let mut tls = ServerConnection::new(config).unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut self.tcp)?;
        }
        self.tls = Some(tls);
        Ok(())
    }

    /// Reads until the client closes the connection and returns the octets that arrived, still
    /// encrypted if TLS is up. Errors such as a reset count as the end.
    pub(crate) fn read_to_end(&mut self) -> Vec<u8> {
        let mut octets = std::mem::take(&mut self.buffer);
        let mut chunk = [0; 4096];
        loop {
            match self.tcp.read(&mut chunk) {
                Ok(0) | Err(_) => return octets,
                Ok(read) => octets.extend_from_slice(&chunk[..read]),
            }
        }
    }

    /// Sends the greeting, replies to EHLO with the given capability lines, and returns the EHLO
    /// line.
    pub(crate) fn greet(&mut self, capabilities: &[&str]) -> String {
        self.send("220 mx.example.test ESMTP ready");
        let ehlo = self.expect_prefix("EHLO ");
        self.reply_ehlo(capabilities);
        ehlo
    }

    /// Sends a 250 reply to EHLO listing `capabilities`.
    pub(crate) fn reply_ehlo(&mut self, capabilities: &[&str]) {
        let mut reply = String::from("250");
        reply.push(if capabilities.is_empty() { ' ' } else { '-' });
        reply.push_str("mx.example.test");
        for (index, capability) in capabilities.iter().enumerate() {
            let separator = if index + 1 == capabilities.len() {
                ' '
            } else {
                '-'
            };
            reply.push_str(&format!("\r\n250{separator}{capability}"));
        }
        self.send(&reply);
    }

    /// Accepts MAIL, each RCPT and DATA one by one, without pipelining, up to the 354 reply.
    pub(crate) fn start_data(&mut self, from: &str, recipients: &[&str]) {
        self.expect(&format!("MAIL FROM:<{from}>"));
        self.send("250 2.1.0 Ok");
        for recipient in recipients {
            self.expect(&format!("RCPT TO:<{recipient}>"));
            self.send("250 2.1.5 Ok");
        }
        self.expect("DATA");
        self.send("354 End data with <CR><LF>.<CR><LF>");
    }

    /// Plays one accepted transaction without pipelining: MAIL, each RCPT, DATA and the data.
    /// Returns the message data.
    pub(crate) fn accept_message(
        &mut self,
        from: &str,
        recipients: &[&str],
        queue_id: &str,
    ) -> Vec<u8> {
        self.start_data(from, recipients);
        let data = self.read_data();
        self.send(&format!("250 2.0.0 Ok: queued as {queue_id}"));
        data
    }

    /// Replies 221 to QUIT and waits for the client to close.
    pub(crate) fn quit(&mut self) {
        self.expect("QUIT");
        self.send("221 2.0.0 Bye");
        self.read_to_end();
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0; 16 * 1024];
        let read = match self.tls.as_mut() {
            None => self.tcp.read(&mut chunk)?,
            Some(tls) => {
                let mut stream = rustls::Stream::new(tls, &mut self.tcp);
                match stream.read(&mut chunk) {
                    Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => 0,
                    other => other?,
                }
            }
        };
        if read > 0 {
            self.reads += 1;
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(read)
    }
}

/// A server script, for tables of test cases.
pub(crate) type Script = fn(&mut Peer);

/// A script that greets in clear text and waits, as a plain SMTP server does for a client that
/// expected implicit TLS.
pub(crate) fn clear_text_greeting(peer: &mut Peer) {
    peer.send("220 mx.example.test ESMTP ready");
    peer.read_to_end();
}

/// A script that offers and accepts STARTTLS, then answers the ClientHello with an alert.
pub(crate) fn reject_tls_after_starttls(peer: &mut Peer) {
    peer.greet(&["STARTTLS"]);
    peer.expect("STARTTLS");
    peer.send("220 2.0.0 Ready to start TLS");
    peer.reject_client_hello();
}

/// Certificates for the tests: a private CA with a server certificate for `localhost` and
/// `127.0.0.1`, and three certificates a client must reject.
pub(crate) struct Pki {
    /// A PEM file with the CA certificate.
    pub(crate) ca_file: PathBuf,
    /// A server certificate the CA issued for `localhost` and `127.0.0.1`.
    pub(crate) valid: Arc<ServerConfig>,
    /// A server certificate the CA issued for `mail.other.test` only.
    pub(crate) wrong_name: Arc<ServerConfig>,
    /// A self-signed certificate for `localhost` and `127.0.0.1`.
    pub(crate) self_signed: Arc<ServerConfig>,
    /// A certificate for `localhost` and `127.0.0.1` from a CA the client does not know.
    pub(crate) unknown_root: Arc<ServerConfig>,
    /// A certificate the CA issued for `localhost` and `127.0.0.1` that expired in 2020.
    pub(crate) expired: Arc<ServerConfig>,
}

impl Pki {
    /// Makes fresh certificates and writes the CA file under the target's temporary folder.
    pub(crate) fn new() -> Self {
        let ca = certificate_authority("smtp-blocking test CA");
        let other_ca = certificate_authority("unknown test CA");
        let local_names = || vec!["localhost".to_owned(), "127.0.0.1".to_owned()];

        let leaf_with =
            |names: Vec<String>, issuer: Option<&CertifiedIssuer<'_, KeyPair>>, expired: bool| {
                let key = KeyPair::generate().unwrap();
                let mut params = CertificateParams::new(names).unwrap();
                if expired {
                    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
                    params.not_after = rcgen::date_time_ymd(2020, 1, 1);
                }
                let certificate = match issuer {
                    Some(issuer) => params.signed_by(&key, issuer).unwrap(),
                    None => params.self_signed(&key).unwrap(),
                };
                let mut chain = vec![certificate.der().clone()];
                if let Some(issuer) = issuer {
                    chain.push(issuer.der().clone());
                }
                server_config(chain, &key)
            };
        let leaf = |names, issuer| leaf_with(names, issuer, false);

        static FILES: AtomicUsize = AtomicUsize::new(0);
        let ca_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "smtp-blocking-ca-{}-{}.pem",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&ca_file, ca.pem()).unwrap();

        Self {
            ca_file,
            valid: leaf(local_names(), Some(&ca)),
            wrong_name: leaf(vec!["mail.other.test".to_owned()], Some(&ca)),
            self_signed: leaf(local_names(), None),
            unknown_root: leaf(local_names(), Some(&other_ca)),
            expired: leaf_with(local_names(), Some(&ca), true),
        }
    }
}

/// Accepts one connection, polling so that a client that never connects fails the test
/// instead of blocking it.
fn accept_within(listener: &TcpListener, timeout: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((tcp, _)) => {
                tcp.set_nonblocking(false).unwrap();
                return tcp;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no client connected within {timeout:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("accept failed: {error}"),
        }
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn server_config(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    Arc::new(config)
}
