//! `TestServer`: the real server (`uss::server::run`) on an ephemeral port with a
//! temporary data directory and the dev clock, in its own thread and actix system.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;
use uss::config::Config;
use uss::server::{run, RunOptions};

use super::client::Endpoint;

/// A running node.
pub struct TestServer {
    pub addr: SocketAddr,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A small, fast configuration for tests.
pub fn test_config_for_test(dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = dir.to_owned();
    config.server.http_workers = 1;
    config.server.shutdown_timeout_secs = 1;
    config.actors.arbiters = 1;
    config.actors.shards = 64;
    config
}

impl TestServer {
    /// Starts a node on a fresh data directory.
    pub fn start() -> TestServer {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_owned();
        let mut server = TestServer::start_with(test_config_for_test(&dir));
        server._temp = Some(temp);
        server
    }

    /// Starts a node with `config` (its data dir is kept by the caller).
    pub fn start_with(config: Config) -> TestServer {
        TestServer::start_with_send_buffer(config, None)
    }

    /// Starts a node whose connections have a small kernel send buffer, as over a
    /// constrained network, so a peer that stops reading blocks the server quickly.
    pub fn start_with_send_buffer(config: Config, send_buffer: Option<usize>) -> TestServer {
        let dir = config.server.data_dir.clone();
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            if let Some(bytes) = send_buffer {
                socket.set_send_buffer_size(bytes)?;
            }
            socket.set_reuse_address(true)?;
            socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
            socket.listen(1024)?;
            let listener: TcpListener = socket.into();
            addr_tx.send(listener.local_addr()?)?;
            let shutdown = async {
                let _ = stopped.await;
            };
            actix_rt::System::new().block_on(run(
                config,
                listener,
                RunOptions { dev_clock: true },
                shutdown,
            ))
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server bound");
        // Wait until it serves, and report a failed start with its error.
        let mut waited = 0;
        while !ready(addr) {
            if thread.is_finished() {
                let outcome = thread.join().expect("server thread");
                panic!("server failed to start: {outcome:?}");
            }
            waited += 1;
            assert!(waited < 2000, "server did not become ready in 20 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        TestServer {
            addr,
            dir,
            _temp: None,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Returns the URL of `path` on this node.
    pub fn url(&self, path: &str) -> String {
        Endpoint::url(self, path)
    }

    /// Returns the WebSocket URL of `path` on this node.
    pub fn ws_url(&self, path: &str) -> String {
        Endpoint::ws_url(self, path)
    }

    /// Stops the node gracefully and returns its data directory (kept alive by `keep`).
    pub fn restart(mut self) -> TestServer {
        let temp = self._temp.take();
        let dir = self.dir.clone();
        self.shutdown();
        let mut next = TestServer::start_with(test_config_for_test(&dir));
        next._temp = temp;
        next
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .expect("server thread")
                .expect("server stopped cleanly");
        }
    }
}

/// Returns whether `GET /readyz` answers 200 (a plain blocking HTTP/1.0 request).
fn ready(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

impl Endpoint for TestServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
