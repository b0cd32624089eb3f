//! A TCP relay a test can cut and restore on the same port, so "the
//! server is unreachable" is a real refused connection at an unchanged
//! address (shared by the core and end-to-end tests with `#[path]`).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Relays 127.0.0.1:`port` to PostgreSQL until cut; can listen again on
/// the same port.
pub struct Relay {
    pub port: u16,
    upstream: (String, u16),
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    pub fn start(upstream: (String, u16), port: u16) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, o, up) = (stop.clone(), open.clone(), upstream.clone());
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect((up.0.as_str(), up.1)) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                };
                if let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                ) {
                    o.lock().unwrap().extend([c3, s3]);
                    pipe(client, s2);
                    pipe(server, c2);
                }
            }
        });
        Relay {
            port,
            upstream,
            stop,
            open,
            accept: Some(accept),
        }
    }

    /// Closes the listening port and every relayed connection.
    pub fn cut(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            h.join().unwrap();
        }
        for c in self.open.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Listens again on the same port.
    pub fn restore(&mut self) {
        *self = Relay::start(self.upstream.clone(), self.port);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
