//! A TCP proxy for partitions without root: every process of a chaos test reaches the NATS
//! server through one of these, which passes bytes, blackholes them (holds them unread, as a
//! dead link does — the peers' timeouts fire), or resets every connection.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub port: u16,
    blackholed: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (a loopback port).
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let blackholed = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (b, c) = (Arc::clone(&blackholed), Arc::clone(&conns));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                {
                    let mut all = c.lock().unwrap();
                    all.push(client.try_clone().unwrap());
                    all.push(server.try_clone().unwrap());
                }
                pump(client.try_clone().unwrap(), server.try_clone().unwrap(), &b);
                pump(server, client, &b);
            }
        });
        Proxy {
            port,
            blackholed,
            conns,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Holds every byte unread until [`Proxy::heal`].
    pub fn blackhole(&self) {
        self.blackholed.store(true, Ordering::SeqCst);
    }

    /// Resets the connections held through the partition and passes bytes again.
    pub fn heal(&self) {
        self.reset();
        self.blackholed.store(false, Ordering::SeqCst);
    }

    /// Closes every connection (the peers see a reset and reconnect).
    pub fn reset(&self) {
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` → `to` on a thread of its own, pausing while blackholed.
fn pump(mut from: TcpStream, mut to: TcpStream, blackholed: &Arc<AtomicBool>) {
    let blackholed = Arc::clone(blackholed);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            while blackholed.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Bytes read just as the partition began are held too.
            while blackholed.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
