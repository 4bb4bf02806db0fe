//! A TCP relay that takes the Nagle delay out of a client whose socket cannot get `TCP_NODELAY`.
//!
//! lettre's blocking transport writes the message content and the end-of-data line with two
//! writes on a socket with Nagle's algorithm on. The second write then waits until the first is
//! acknowledged, and the server's delayed ACK holds that acknowledgement for up to 40 ms on
//! Linux. Setting `TCP_NODELAY` on the relay's sockets cannot change the client's socket, so the
//! relay also sets `TCP_QUICKACK` on the client leg after every read: the client's data is then
//! acknowledged at once, and its next segment leaves after one loopback round trip instead of
//! the delayed ACK. Both legs have `TCP_NODELAY`, so the relay adds no delay of its own beyond
//! one more hop each way.

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;

use socket2::SockRef;

/// Accepts connections on `127.0.0.1:listen` and relays each to `127.0.0.1:upstream`, until the
/// process is killed.
pub(crate) fn run(listen: u16, upstream: u16) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", listen))?;
    for client in listener.incoming() {
        let client = client?;
        let server = TcpStream::connect(("127.0.0.1", upstream))?;
        client.set_nodelay(true)?;
        server.set_nodelay(true)?;

        let (client_reader, server_writer) = (client.try_clone()?, server.try_clone()?);
        thread::spawn(move || {
            let _ignored = copy(client_reader, server_writer, true);
        });
        thread::spawn(move || {
            let _ignored = copy(server, client, false);
        });
    }
    Ok(())
}

/// Copies `from` to `to` until the end of `from`; with `quickack`, acknowledges each read at once.
fn copy(mut from: TcpStream, mut to: TcpStream, quickack: bool) -> io::Result<()> {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = from.read(&mut buffer)?;
        if quickack {
            // Linux leaves quick-ACK mode on its own, so it is set again after every read.
            SockRef::from(&from).set_tcp_quickack(true)?;
        }
        if read == 0 {
            let _ignored = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        to.write_all(&buffer[..read])?;
    }
}
