//! `TestCluster`: N real `uss serve` processes (the built binary, as in production) on
//! loopback ports free for TCP and UDP alike, sharing one config file with a `[cluster]`
//! section (none for a cluster of one), each with its own data dir and log files. It
//! owns starting them and waiting until they serve and see each other `up`, `kill -9`,
//! SIGTERM and restart on the same port and data, and HTTP and notification helpers
//! addressed by node index. Every child is killed on drop; a failing test prints the
//! tail of every node's log.

use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::client::{
    call_for_test, try_call_for_test, wait_until_for_test, Answer, Endpoint, Socket,
};

/// Gossip period the test clusters run with.
pub const GOSSIP_INTERVAL_MS: u64 = 100;
/// How soon a silent node is reported down in the test clusters.
pub const DOWN_AFTER_MS: u64 = 1500;
/// How long a node may take to serve, and a cluster to see every node `up`.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Starts retried when a port picked as free was taken before the node bound it.
const START_ATTEMPTS: usize = 3;
/// Lines of each log printed when a test fails.
const LOG_TAIL_LINES: usize = 80;

/// One node: its id (`n1`…), address, directory (data and logs) and process.
pub struct ClusterNode {
    pub id: String,
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    starts: usize,
}

impl Endpoint for ClusterNode {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl ClusterNode {
    /// Node `n{i + 1}` on `port`, in a new directory under `temp`; not started.
    fn new(temp: &Path, i: usize, port: u16) -> ClusterNode {
        let dir = temp.join(format!("n{}", i + 1));
        std::fs::create_dir(&dir).expect("node dir");
        ClusterNode {
            id: format!("n{}", i + 1),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child: None,
            starts: 0,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts the process (the node's port and data dir are kept across starts).
    fn spawn(&mut self, config: &Path) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        self.starts += 1;
        let mut stderr = File::options()
            .create(true)
            .append(true)
            .open(self.log("stderr.log"))
            .expect("stderr log");
        writeln!(
            stderr,
            "=== harness: start #{} of {} ===",
            self.starts, self.id
        )
        .expect("log");
        let stdout = File::options()
            .create(true)
            .append(true)
            .open(self.log("stdout.log"))
            .expect("stdout log");
        let child = Command::new(env!("CARGO_BIN_EXE_uss"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--node-id", &self.id, "--bind", &self.addr.to_string()])
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--dev-clock")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start uss");
        self.child = Some(child);
    }

    /// Returns the exit status if the process has ended.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().expect("child status")
    }

    /// Returns everything the node has logged (every start).
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(self.log("stderr.log")).unwrap_or_default()
    }

    /// Whether the last start failed because the port was taken meanwhile.
    fn lost_its_port(&self) -> bool {
        let text = self.stderr_text();
        let last_start = text.rsplit("=== harness: start").next().unwrap_or("");
        last_start.contains("Address already in use")
    }

    fn print_logs(&self) {
        for name in ["stderr.log", "stdout.log"] {
            let text = std::fs::read_to_string(self.log(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!(
                "----- {} {name}, last {} lines -----\n{}",
                self.id,
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// Why a start did not end with every node serving.
enum StartFailure {
    /// Node `.0` (an index) ended with status `.1`.
    Exited(usize, ExitStatus),
    /// Still not serving at the deadline; says what was awaited.
    TimedOut(String),
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartFailure::Exited(i, status) => {
                write!(
                    f,
                    "node n{} exited ({status}); its log is printed below",
                    i + 1
                )
            }
            StartFailure::TimedOut(what) => write!(f, "timed out waiting for: {what}"),
        }
    }
}

/// A running cluster of real nodes.
pub struct TestCluster {
    nodes: Vec<ClusterNode>,
    config: PathBuf,
    _temp: tempfile::TempDir,
}

impl TestCluster {
    /// Starts `n` nodes `n1`…`nN` (one node: no `[cluster]` section, a cluster of
    /// one) and waits until every node serves and sees every node `up`.
    pub async fn start(n: usize) -> TestCluster {
        assert!(n >= 1, "a cluster has at least one node");
        for attempt in 1..=START_ATTEMPTS {
            let mut cluster = TestCluster::spawn_all(n);
            match cluster.wait_serving().await {
                Ok(()) => return cluster,
                Err(StartFailure::Exited(i, _))
                    if attempt < START_ATTEMPTS && cluster.nodes[i].lost_its_port() =>
                {
                    eprintln!("node n{} lost its port; starting on new ports", i + 1);
                }
                Err(failure) => panic!("cluster of {n} did not start: {failure}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn_all(n: usize) -> TestCluster {
        let temp = tempfile::tempdir().expect("temp dir");
        let ports = free_ports(n);
        let config = temp.path().join("cluster.toml");
        std::fs::write(&config, config_text(&ports)).expect("config file");
        let mut nodes: Vec<ClusterNode> = ports
            .iter()
            .enumerate()
            .map(|(i, port)| ClusterNode::new(temp.path(), i, *port))
            .collect();
        for node in &mut nodes {
            node.spawn(&config);
        }
        TestCluster {
            nodes,
            config,
            _temp: temp,
        }
    }

    /// Waits until every running node answers `/readyz` 200 and `/api/v1/cluster` on
    /// each running node shows each running node `up`.
    async fn wait_serving(&mut self) -> Result<(), StartFailure> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            for i in self.running() {
                if let Some(status) = self.nodes[i].exited() {
                    self.nodes[i].child = None;
                    return Err(StartFailure::Exited(i, status));
                }
            }
            let Some(waiting_for) = self.not_yet_serving().await else {
                return Ok(());
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(StartFailure::TimedOut(waiting_for));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Returns what is not serving yet, or `None` when all is.
    async fn not_yet_serving(&self) -> Option<String> {
        for i in self.running() {
            match self.probe(i, "/readyz").await {
                Ok(ready) if ready.status == 200 => {}
                Ok(ready) => return Some(format!("{} /readyz {}", self.nodes[i].id, ready.status)),
                Err(e) => return Some(format!("{} /readyz: {e}", self.nodes[i].id)),
            }
        }
        for i in self.running() {
            let view = match self.probe(i, "/api/v1/cluster").await {
                Ok(view) => view,
                Err(e) => return Some(format!("{} /api/v1/cluster: {e}", self.nodes[i].id)),
            };
            for j in self.running() {
                // A node started before the list grew does not know the nodes added since.
                let listed = view.body["nodes"].as_array().is_some_and(|nodes| {
                    nodes.iter().any(|n| n["id"] == self.nodes[j].id.as_str())
                });
                if view.status != 200 || (listed && self.state_in(&view.body, j) != Some("up")) {
                    return Some(format!(
                        "{} sees {} as {:?} ({}: {})",
                        self.nodes[i].id,
                        self.nodes[j].id,
                        self.state_in(&view.body, j),
                        view.status,
                        view.body
                    ));
                }
            }
        }
        None
    }

    /// GETs `path` on node `i`; an error when it does not answer.
    async fn probe(&self, i: usize, path: &str) -> Result<Answer, String> {
        try_call_for_test("GET", &self.nodes[i].url(path), None).await
    }

    /// Returns the state node `j` has in a `/api/v1/cluster` body.
    fn state_in<'a>(&self, view: &'a Value, j: usize) -> Option<&'a str> {
        view["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["id"] == self.nodes[j].id.as_str())?["state"]
            .as_str()
    }

    /// Returns the indexes of the nodes whose process runs.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].child.is_some())
            .collect()
    }

    /// Returns the number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Returns node `i` (0-based: node 0 is `n1`).
    pub fn node(&self, i: usize) -> &ClusterNode {
        &self.nodes[i]
    }

    /// Kills node `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.nodes[i].child.take().expect("node is running");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// Sends SIGTERM to node `i` and asserts it exits 0 within 10 s.
    pub async fn stop(&mut self, i: usize) {
        let pid = self.nodes[i].child.as_ref().expect("node is running").id();
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "SIGTERM sent to {}", self.nodes[i].id);
        let node = &mut self.nodes[i];
        let mut status = None;
        let exited = wait_until_for_test(Duration::from_secs(10), || {
            status = node.exited();
            std::future::ready(status.is_some())
        })
        .await;
        assert!(exited, "{} exits on SIGTERM", node.id);
        node.child = None;
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{} exits 0 on SIGTERM",
            node.id
        );
    }

    /// Starts node `i` again (after `kill` or `stop`) on its port and data dir, and
    /// waits until it serves and every running node sees every running node it lists
    /// `up`.
    pub async fn restart(&mut self, i: usize) {
        for attempt in 1..=START_ATTEMPTS {
            self.nodes[i].spawn(&self.config);
            match self.wait_serving().await {
                Ok(()) => return,
                // The kernel may hold the port a moment after a kill; try again.
                Err(StartFailure::Exited(j, _))
                    if j == i && attempt < START_ATTEMPTS && self.nodes[i].lost_its_port() =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(failure) => panic!("{} did not restart: {failure}", self.nodes[i].id),
            }
        }
    }

    /// Appends a node to the cluster's list and starts it; returns its index. From now
    /// on the config file lists it, so a node restarted reads the longer list; the nodes
    /// running keep the list they started with until then.
    pub async fn grow(&mut self) -> usize {
        let i = self.nodes.len();
        let node = ClusterNode::new(self._temp.path(), i, free_ports(1)[0]);
        self.nodes.push(node);
        let ports: Vec<u16> = self.nodes.iter().map(|node| node.addr.port()).collect();
        std::fs::write(&self.config, config_text(&ports)).expect("config file");
        self.restart(i).await;
        i
    }

    /// Sends `method path` with an optional raw body to node `i`.
    pub async fn call(&self, i: usize, method: &str, path: &str, body: Option<&str>) -> Answer {
        call_for_test(method, &self.nodes[i].url(path), body).await
    }

    /// GETs `path` through every running node, asserts they all answer the same status
    /// and body, and returns that answer (from the first).
    pub async fn same_everywhere(&self, path: &str) -> Answer {
        let mut first: Option<(String, Answer)> = None;
        for i in self.running() {
            let answer = self.call(i, "GET", path, None).await;
            match &first {
                None => first = Some((self.nodes[i].id.clone(), answer)),
                Some((id, seen)) => assert_eq!(
                    (answer.status, &answer.body),
                    (seen.status, &seen.body),
                    "GET {path}: {} answers unlike {id}",
                    self.nodes[i].id
                ),
            }
        }
        first.expect("a running node").1
    }

    /// Returns `GET /api/v1/cluster[?user_id=N]` of node `i`, asserting 200.
    pub async fn view(&self, i: usize, user: Option<u64>) -> Value {
        let path = match user {
            Some(user) => format!("/api/v1/cluster?user_id={user}"),
            None => "/api/v1/cluster".to_owned(),
        };
        let answer = self.call(i, "GET", &path, None).await;
        assert_eq!(
            answer.status, 200,
            "{} GET {path}: {:?}",
            self.nodes[i].id, answer.body
        );
        answer.body
    }

    /// Returns the owner of `user`, asserting every running node names the same one.
    pub async fn owner(&self, user: u64) -> String {
        let mut owners = Vec::new();
        for i in self.running() {
            let owner = self.view(i, Some(user)).await["owner"]
                .as_str()
                .unwrap_or_else(|| panic!("{} names an owner of {user}", self.nodes[i].id))
                .to_owned();
            owners.push(owner);
        }
        owners.dedup();
        assert_eq!(
            owners.len(),
            1,
            "nodes disagree on the owner of {user}: {owners:?}"
        );
        owners.remove(0)
    }

    /// Waits (up to `timeout`) until every node in `observers` shows node `target` in
    /// `state`; returns whether it happened.
    pub async fn wait_for_state(
        &self,
        observers: &[usize],
        target: usize,
        state: &str,
        timeout: Duration,
    ) -> bool {
        wait_until_for_test(timeout, || async {
            for &i in observers {
                let Ok(view) = self.probe(i, "/api/v1/cluster").await else {
                    return false;
                };
                if view.status != 200 || self.state_in(&view.body, target) != Some(state) {
                    return false;
                }
            }
            true
        })
        .await
    }

    /// Opens a notification WebSocket on node `i`; `query` is `""` or like `?segments=1`.
    pub async fn subscribe(&self, i: usize, query: &str) -> Socket {
        Socket::connect_for_test(&self.nodes[i].ws_url(&format!("/api/v1/notifications/ws{query}")))
            .await
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== cluster logs (config {}) =====",
                self.config.display()
            );
            if let Ok(text) = std::fs::read_to_string(&self.config) {
                eprintln!("{text}");
            }
            for node in &self.nodes {
                node.print_logs();
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Returns `n` distinct loopback ports on which both a TCP listener and a UDP socket
/// could bind. They are held until all are found, then released for the nodes.
fn free_ports(n: usize) -> Vec<u16> {
    let mut held: Vec<(TcpListener, UdpSocket)> = Vec::new();
    let mut tries = 0;
    while held.len() < n {
        tries += 1;
        assert!(tries < 1000, "no free TCP+UDP loopback ports");
        let tcp = TcpListener::bind("127.0.0.1:0").expect("a TCP port");
        let port = tcp.local_addr().expect("addr").port();
        if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) {
            held.push((tcp, udp));
        }
    }
    held.iter()
        .map(|(tcp, _)| tcp.local_addr().expect("addr").port())
        .collect()
}

/// The config every node reads: small test settings, and the `[cluster]` section
/// when there are several nodes.
fn config_text(ports: &[u16]) -> String {
    let mut text = String::from(
        "[server]\nhttp_workers = 1\nshutdown_timeout_secs = 1\n\n\
         [actors]\narbiters = 1\nshards = 64\n",
    );
    if ports.len() > 1 {
        text.push_str("\n[cluster]\nnodes = [\n");
        for (i, port) in ports.iter().enumerate() {
            text.push_str(&format!(
                "  {{ id = \"n{}\", addr = \"127.0.0.1:{port}\" }},\n",
                i + 1
            ));
        }
        text.push_str(&format!(
            "]\ngossip_interval_ms = {GOSSIP_INTERVAL_MS}\ndown_after_ms = {DOWN_AFTER_MS}\n"
        ));
    }
    text
}
