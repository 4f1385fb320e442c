//! Smoke test: the real server in-process on an ephemeral port (temporary data dir, dev
//! clock) and a short run of the tool in each mode. Seconds, not a benchmark: it checks
//! that events are acknowledged, nothing fails, probes are answered and the JSON holds
//! the documented fields.

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use uss::config::{ApiKey, Config, Role};
use uss::server::{run, RunOptions};
use uss_loadtest::args::{parse, Command, Options};
use uss_loadtest::report::Summary;

/// A node running in its own thread and actix system.
struct Node {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start_for_test() -> Node {
        Node::start_with_for_test(|_| {})
    }

    /// Starts a node whose small test configuration `adjust` may change.
    fn start_with_for_test(adjust: impl FnOnce(&mut Config)) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_owned();
        config.server.http_workers = 1;
        config.server.shutdown_timeout_secs = 1;
        config.actors.arbiters = 1;
        config.actors.shards = 64;
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
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
        let mut node = Node {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        };
        node.wait_ready_for_test();
        node
    }

    /// Polls `GET /readyz` (plain HTTP/1.0) until it answers 200; reports a failed
    /// start with its error.
    fn wait_ready_for_test(&mut self) {
        use std::io::{Read, Write};
        for _ in 0..2000 {
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                let outcome = self.thread.take().map(|t| t.join());
                panic!("the node failed to start: {outcome:?}");
            }
            if let Ok(mut stream) = std::net::TcpStream::connect(self.addr) {
                let _ = stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the node did not become ready in 20 s");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Parses a command line as the binary would, against `node`.
fn options_for_test(node: &Node, flags: &[&str]) -> Options {
    let url = format!("http://{}", node.addr);
    let mut args = vec!["--url", url.as_str()];
    args.extend_from_slice(flags);
    match parse(args.into_iter().map(Into::into)).expect("valid flags") {
        Command::Run(options) => *options,
        Command::Help => panic!("not help"),
    }
}

/// Runs the tool and checks what every mode must show.
fn run_and_check(node: &Node, flags: &[&str], events: u64) -> Summary {
    let options = options_for_test(node, flags);
    let summary = actix_rt::System::new()
        .block_on(uss_loadtest::run(&options))
        .expect("the run completes");
    let table = summary.table();
    assert_eq!(summary.events_acked, events, "{table}");
    assert_eq!(summary.events_sent, events, "{table}");
    assert_eq!(summary.requests_failed, 0, "{table}");
    assert!(summary.errors.is_empty(), "{table}");
    assert!(
        summary.latency.count > 0 && summary.latency.p50_ms > 0.0,
        "{table}"
    );
    let probes = summary.probes.as_ref().expect("probes are on");
    assert!(probes.measured >= 1, "no probe was answered:\n{table}");
    assert_eq!(probes.failed, 0, "{table}");
    assert_eq!(summary.clock, "dev");
    // The node runs in this process: found by its port, with a resident set.
    assert_eq!(summary.server.pid, Some(std::process::id()), "{table}");
    assert!(
        summary.server.rss_bytes.is_some_and(|rss| rss > 0),
        "{table}"
    );
    assert!(
        summary.server.resident_users.is_some_and(|n| n > 0),
        "{table}"
    );
    // Its CPU time is read from /proc too (in 10 ms ticks: a short run may count none).
    let cpu = &summary.cpu;
    assert!(
        cpu.node_us_per_event.is_some_and(|us| us >= 0.0) && cpu.generator_us_per_event.is_some(),
        "{table}"
    );
    assert!(
        cpu.machine_idle_percent
            .is_some_and(|idle| (0.0..=100.0).contains(&idle)),
        "{table}"
    );
    summary
}

#[test]
fn each_mode_ingests_a_few_hundred_events_and_times_probes() {
    let node = Node::start_for_test();
    let common = ["--users", "200", "--probe-rate", "20", "--duration", "10s"];

    let batched = run_and_check(
        &node,
        &[
            &common[..],
            &[
                "--batch",
                "50",
                "--connections",
                "2",
                "--rate",
                "300",
                "--events",
                "300",
            ],
        ]
        .concat(),
        300,
    );
    assert_eq!(batched.segments.len(), 5);
    assert!(batched.segments.iter().all(|s| s.created));
    assert_eq!(batched.loop_kind, "open");
    assert_eq!(batched.requests_ok, 6);

    let single = run_and_check(
        &node,
        &[
            &common[..],
            &[
                "--batch",
                "1",
                "--connections",
                "4",
                "--rate",
                "250",
                "--events",
                "250",
            ],
        ]
        .concat(),
        250,
    );
    assert!(
        single.segments.iter().all(|s| !s.created),
        "segments are reused"
    );
    assert_eq!(single.requests_ok, 250);

    let ws = run_and_check(
        &node,
        &[
            &common[..],
            &[
                "--mode",
                "ws",
                "--batch",
                "20",
                "--connections",
                "2",
                "--events",
                "300",
                "--probe-rate",
                "20",
                "--rate",
                "300",
            ],
        ]
        .concat(),
        300,
    );
    assert_eq!(ws.requests_ok, 15);

    let json: Value = serde_json::from_str(&ws.to_json()).expect("the summary is JSON");
    for pointer in [
        "/mode",
        "/batch",
        "/connections",
        "/loop_kind",
        "/elapsed_s",
        "/events_acked",
        "/throughput_events_per_s",
        "/latency/p50_ms",
        "/latency/p90_ms",
        "/latency/p99_ms",
        "/latency/p999_ms",
        "/latency/max_ms",
        "/errors",
        "/probes/measured",
        "/probes/latency/p99_ms",
        "/server/rss_bytes",
        "/server/rss_per_resident_user_bytes",
        "/segments/0/id",
    ] {
        assert!(
            json.pointer(pointer).is_some(),
            "{pointer} missing from {json}"
        );
    }
    assert_eq!(json["mode"], "ws");
}

#[test]
fn a_closed_loop_run_is_bounded_by_its_duration() {
    let node = Node::start_for_test();
    let options = options_for_test(
        &node,
        &[
            "--batch",
            "10",
            "--connections",
            "2",
            "--duration",
            "700ms",
            "--probe-rate",
            "0",
        ],
    );
    let summary = actix_rt::System::new()
        .block_on(uss_loadtest::run(&options))
        .expect("the run completes");
    assert!(summary.probes.is_none());
    assert!(
        summary.events_acked > 0 && summary.requests_failed == 0,
        "{}",
        summary.table()
    );
    assert!(
        (0.6..5.0).contains(&summary.elapsed_s),
        "{}",
        summary.elapsed_s
    );
}

#[test]
fn a_key_opens_every_route_the_tool_uses() {
    let node = Node::start_with_for_test(|config| {
        config.auth.keys = vec![ApiKey {
            name: "ops".into(),
            key: "k_admin_smoke_0123456789".into(),
            role: Role::Admin,
            rate_per_s: None,
        }];
    });
    // Events over the WebSocket and notifications both carry the key as `?key=`.
    let flags = [
        "--mode",
        "ws",
        "--batch",
        "10",
        "--connections",
        "2",
        "--rate",
        "200",
        "--events",
        "200",
        "--probe-rate",
        "20",
        "--users",
        "50",
    ];
    let with_key = [&flags[..], &["--key", "k_admin_smoke_0123456789"]].concat();
    run_and_check(&node, &with_key, 200);

    let options = options_for_test(&node, &flags);
    let error = actix_rt::System::new()
        .block_on(uss_loadtest::run(&options))
        .expect_err("no key, no run");
    assert!(format!("{error:#}").contains("401"), "{error:#}");
}
