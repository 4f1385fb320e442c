//! Tests of argument parsing: defaults, every flag, and the errors.

use super::*;

fn run(args: &[&str]) -> anyhow::Result<Options> {
    match parse(args.iter().map(OsString::from))? {
        Command::Run(options) => Ok(*options),
        Command::Help => bail!("asked for help"),
    }
}

fn error(args: &[&str]) -> String {
    match run(args) {
        Ok(options) => panic!("{args:?} parsed to {options:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn no_flags_give_the_documented_defaults() {
    let options = run(&[]).expect("defaults are valid");
    assert_eq!(options.target.base, "http://127.0.0.1:8080");
    assert_eq!(options.mode, Mode::Http);
    assert_eq!(options.batch, 100);
    assert_eq!(options.connections, 8);
    assert_eq!(options.rate, None);
    assert_eq!(options.duration, Some(Duration::from_secs(10)));
    assert_eq!(options.events, None);
    assert_eq!(options.workload.users, 100_000);
    assert_eq!(options.workload.zipf, 1.0);
    assert_eq!(options.workload.spread_days, 30);
    assert_eq!(options.workload.seed, 1);
    assert_eq!(options.probe_rate, 50.0);
    assert_eq!(options.segments, None);
    assert_eq!(options.key, None);
}

#[test]
fn every_flag_is_read() {
    let options = run(&[
        "--url",
        "http://localhost:9001",
        "--key",
        "k1",
        "--mode",
        "ws",
        "--batch",
        "1000",
        "--connections",
        "32",
        "--rate",
        "20000",
        "--duration",
        "2m",
        "--events",
        "5000",
        "--users",
        "10",
        "--zipf",
        "0.8",
        "--spread-days",
        "7",
        "--seed",
        "99",
        "--probe-rate",
        "0",
        "--segments",
        "s.json",
        "--server-pid",
        "42",
        "--json",
        "o.json",
    ])
    .expect("valid");
    assert_eq!(
        (options.target.host.as_str(), options.target.port),
        ("localhost", 9001)
    );
    assert_eq!(options.key.as_deref(), Some("k1"));
    assert_eq!(options.mode, Mode::Ws);
    assert_eq!((options.batch, options.connections), (1000, 32));
    assert_eq!(options.rate, Some(20_000.0));
    assert_eq!(options.duration, Some(Duration::from_secs(120)));
    assert_eq!(options.events, Some(5000));
    assert_eq!(
        options.workload,
        WorkloadOptions {
            users: 10,
            zipf: 0.8,
            spread_days: 7,
            seed: 99
        }
    );
    assert_eq!(options.probe_rate, 0.0);
    assert_eq!(options.segments, Some(PathBuf::from("s.json")));
    assert_eq!(options.server_pid, Some(42));
    assert_eq!(options.json, Some(PathBuf::from("o.json")));
}

#[test]
fn events_alone_bound_the_run_without_a_default_duration() {
    let options = run(&["--events", "300"]).expect("valid");
    assert_eq!((options.events, options.duration), (Some(300), None));
}

#[test]
fn help_is_a_command() {
    for flag in ["-h", "--help"] {
        assert_eq!(parse([OsString::from(flag)]).expect("help"), Command::Help);
    }
}

#[test]
fn durations_take_units() {
    assert_eq!(duration("500ms").expect("ok"), Duration::from_millis(500));
    assert_eq!(duration("20s").expect("ok"), Duration::from_secs(20));
    assert_eq!(duration("1.5").expect("ok"), Duration::from_millis(1500));
    assert_eq!(duration("1h").expect("ok"), Duration::from_secs(3600));
    assert!(duration("5d").is_err());
    assert!(duration("s").is_err());
}

#[test]
fn bad_arguments_are_named() {
    let cases: &[(&[&str], &str)] = &[
        (&["--frobnicate"], "unknown flag --frobnicate"),
        (&["stray"], "unexpected argument"),
        (&["--batch"], "--batch needs a value"),
        (&["--batch", "x"], "--batch: \"x\" is not a valid number"),
        (&["--batch", "0"], "--batch must be 1 to 10000"),
        (&["--batch", "10001"], "--batch must be 1 to 10000"),
        (&["--connections", "0"], "--connections must be at least 1"),
        (&["--rate", "0"], "--rate must be a positive"),
        (&["--rate", "-5"], "--rate must be a positive"),
        (&["--duration", "0s"], "must be positive"),
        (&["--events", "0"], "must be positive"),
        (&["--duration", "3 weeks"], "--duration"),
        (&["--users", "0"], "--users must be at least 1"),
        (&["--zipf", "-1"], "--zipf must be"),
        (&["--probe-rate", "NaN"], "--probe-rate must be"),
        (&["--mode", "grpc"], "--mode must be http or ws"),
        (&["--url", "https://127.0.0.1"], "http://"),
        (&["--server-pid", "-1"], "--server-pid"),
    ];
    for (args, expected) in cases {
        let message = error(args);
        assert!(
            message.contains(expected),
            "{args:?}: {message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn remote_hosts_need_allow_remote() {
    let message = error(&["--url", "http://10.1.2.3:8080"]);
    assert!(message.contains("not a loopback host"), "{message}");
    let options = run(&["--url", "http://10.1.2.3:8080", "--allow-remote"]).expect("allowed");
    assert_eq!(options.target.host, "10.1.2.3");
}
