//! Builds the node — storage, clock, actors, services, HTTP server — recovers its state,
//! serves until `shutdown` resolves, then stops gracefully and flushes.
//!
//! `run` is the one entry point: `main` calls it, and so do the black-box tests, on an
//! ephemeral port with a temporary data directory. It must run inside an actix `System`.

use std::future::Future;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::Arbiter;
use actix_web::dev::Service;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use tracing::{info, warn};

use crate::actors::{
    host_users_on_this_thread, replay_journal, ActivityTotals, Alone, Catalog, Committer, DueSoon,
    Hub, IdentityParts, IdentityService, Ingestor, Peers, Registry, SegmentService, Snapshots,
    StorageHealth, Timers, UserContext,
};
use crate::clock::{Clock, ManualClock, Stopwatch, SystemClock, DEV_CLOCK_KEY};
use crate::cluster::handoff::Ownership;
use crate::cluster::membership::{MembershipConfig, Tuning};
use crate::cluster::remote::RemotePeers;
use crate::cluster::{fanout, Cluster, Handoff, Membership};
use crate::config::Config;
use crate::domain::Timestamp;
use crate::http::{
    catch_up, configure, cors, drain, method_label, ready_gate, route_label, status_label, Access,
    AppState,
};
use crate::metrics::Metrics;
use crate::storage::Store;

/// How the node is started, beyond its configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Enables the settable dev clock (`--dev-clock`).
    pub dev_clock: bool,
}

/// The node's clock, and the same clock as settable when it is the dev clock.
type Clocks = (Arc<dyn Clock>, Option<Arc<ManualClock>>);

fn open_clock(store: &Store, dev_clock: bool) -> anyhow::Result<Clocks> {
    if !dev_clock {
        return Ok((Arc::new(SystemClock), None));
    }
    let persisted: Option<Timestamp> = store.meta(DEV_CLOCK_KEY)?;
    let manual = Arc::new(ManualClock::new(
        persisted.unwrap_or_else(|| SystemClock.now()),
    ));
    Ok((manual.clone(), Some(manual)))
}

/// Counts the users whose whole data this node holds (not those of a shard still coming
/// in) into the activity totals and the timer gauge; returns how many users there are.
fn recover_totals(
    store: &Store,
    ownership: &Ownership,
    totals: &ActivityTotals,
    metrics: &Metrics,
    now: Timestamp,
) -> anyhow::Result<usize> {
    let held = |user| ownership.holds_user(user);
    let users = totals.add_stored(store, held, now)?;
    metrics.timers_pending.set(store.timers_where(held)? as i64);
    Ok(users)
}

/// Returns the configured node ids and this node's position among them (itself alone
/// without a `[cluster]` section).
fn node_list(config: &Config) -> (Vec<String>, usize) {
    let section = &config.cluster;
    if section.nodes.is_empty() {
        return (vec![config.server.node_id.clone()], 0);
    }
    let ids = section.nodes.iter().map(|node| node.id.clone()).collect();
    (ids, section.ordinal(&config.server.node_id))
}

/// Opens the store, waiting up to 10 s for a previous process on the same data dir to
/// let go of its lock (a restart by a supervisor can overlap the old process's exit).
async fn open_store(dir: &std::path::Path, cache_bytes: u64) -> anyhow::Result<Store> {
    let mut attempts = 0;
    loop {
        match Store::open(dir, cache_bytes) {
            Ok(store) => return Ok(store),
            // sled reports a held lock as `Other` with the OS error in its message.
            Err(crate::storage::StorageError::Sled(sled::Error::Io(e)))
                if (e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock"))
                    && attempts < 100 =>
            {
                if attempts == 0 {
                    warn!(dir = %dir.display(), "data dir is locked by another process; waiting");
                }
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("failed to open data dir `{}`", dir.display()))
            }
        }
    }
}

/// Starts gossip with the other nodes of `[cluster]`, on UDP at the HTTP listener's
/// address; without that section the node is a cluster of one.
async fn join_cluster(
    config: &Config,
    listener: &TcpListener,
    metrics: &Metrics,
    handoff: Arc<Handoff>,
) -> anyhow::Result<Cluster> {
    let node_id = &config.server.node_id;
    let section = &config.cluster;
    if section.nodes.is_empty() {
        return Ok(Cluster::single(
            node_id,
            &config.server.bind,
            handoff,
            metrics.clone(),
        ));
    }
    let nodes = section
        .nodes
        .iter()
        .map(|node| Ok((node.id.clone(), node.addr.parse()?)))
        .collect::<anyhow::Result<Vec<(String, std::net::SocketAddr)>>>()?;
    let membership = Membership::start(MembershipConfig {
        node_id: node_id.clone(),
        listen_addr: listener.local_addr()?,
        nodes,
        generation: u64::try_from(SystemClock.now().as_millis()).unwrap_or(0),
        tuning: Tuning {
            gossip_interval: std::time::Duration::from_millis(section.gossip_interval_ms),
            // Silence of about phi x half the gossip interval marks a peer down.
            phi_threshold: (2.0 * section.down_after_ms as f64 / section.gossip_interval_ms as f64)
                .clamp(4.0, 64.0),
            ..Tuning::default()
        },
    })
    .await?;
    Ok(Cluster::new(
        section,
        node_id,
        membership,
        config.cluster_key(),
        metrics.clone(),
        handoff,
    ))
}

/// Every few seconds, finishes merges across nodes that were cut short (a user given up
/// here that its survivor's node has not settled).
async fn finish_transfers(identities: Arc<IdentityService>) {
    let mut seen = std::collections::BTreeSet::new();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        match identities.finish_transfers(&mut seen).await {
            Ok(0) => {}
            Ok(finished) => info!(finished, "finished merges across nodes cut short"),
            Err(e) => warn!(error = %e, "could not finish merges across nodes; retrying"),
        }
    }
}

/// Runs the node on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    config.validate()?;
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "failed to create data dir `{}`",
            config.server.data_dir.display()
        )
    })?;
    let store = open_store(&config.server.data_dir, config.storage.cache_capacity_bytes).await?;
    let metrics = Metrics::new();
    let hub = Hub::new(config.notifications.subscriber_buffer);
    let health = Arc::new(StorageHealth::default());
    let committer = Committer::start(
        store.clone(),
        hub.clone(),
        metrics.clone(),
        Arc::clone(&health),
    )?;
    let (nodes, me) = node_list(&config);
    let handoff = Arc::new(Handoff::open(store.clone(), nodes, me)?);
    let ownership = Arc::clone(handoff.ownership());
    let (clock, dev_clock) = open_clock(&store, options.dev_clock)?;
    let catalog = Arc::new(Catalog::default());
    let totals = Arc::new(ActivityTotals::default());
    let due_soon = Arc::new(DueSoon::default());
    let limits = config.rules.limits();

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let arbiter_count = if config.actors.arbiters == 0 {
        cores
    } else {
        config.actors.arbiters
    };
    let arbiters: Vec<Arbiter> = (0..arbiter_count).map(|_| Arbiter::new()).collect();
    let shared = Arc::new(UserContext {
        store: store.clone(),
        catalog: Arc::clone(&catalog),
        committer,
        clock: Arc::clone(&clock),
        metrics: metrics.clone(),
        totals: Arc::clone(&totals),
        retention_ms: limits.max_window_ms,
        identity: config.identity.clone(),
        due_soon: Arc::clone(&due_soon),
    });
    let registry = Arc::new(Registry::new(
        config.actors.shards,
        arbiters.iter().map(Arbiter::handle).collect(),
        config.actors.mailbox_capacity,
        shared,
        Arc::clone(&ownership),
    ));
    let segments = SegmentService::new(
        store.clone(),
        Arc::clone(&catalog),
        Arc::clone(&registry),
        Arc::clone(&clock),
        limits,
    );
    segments.load()?;
    let replayed = replay_journal(registry.context())?;
    // A checkpoint makes the replayed users' saves durable and deletes the journal files.
    registry.context().committer.checkpoint().await?;
    let users = recover_totals(&store, &ownership, &totals, &metrics, clock.now())?;
    let timers = Arc::new(Timers::new(
        store.clone(),
        Arc::clone(&registry),
        metrics.clone(),
        Arc::clone(&due_soon),
    ));
    let overdue = timers.fire_due(clock.now()).await?;
    info!(
        users,
        replayed,
        segments = catalog.snapshot().len(),
        overdue,
        "state recovered"
    );
    let snapshots = actix_rt::spawn(Snapshots::new(Arc::clone(&registry)).run(
        std::time::Duration::from_millis(config.storage.snapshot_interval_ms),
    ));
    let passivation = {
        let registry = Arc::clone(&registry);
        let actors = config.actors.clone();
        let metrics = metrics.clone();
        actix_rt::spawn(async move {
            let every = std::time::Duration::from_millis(actors.passivation_interval_ms);
            let idle = std::time::Duration::from_secs(actors.idle_timeout_secs);
            loop {
                tokio::time::sleep(every).await;
                let left = registry.passivate(idle, actors.max_resident_users);
                metrics.passivations.inc_by(left as u64);
            }
        })
    };
    let timer_loop = (!options.dev_clock).then(|| {
        let timers = Timers::new(
            store.clone(),
            Arc::clone(&registry),
            metrics.clone(),
            Arc::clone(&due_soon),
        );
        actix_rt::spawn(timers.run(Arc::clone(&clock)))
    });

    let cluster = Arc::new(join_cluster(&config, &listener, &metrics, handoff).await?);
    let patience = std::time::Duration::from_millis(2 * config.cluster.down_after_ms);
    cluster.handoff().settle(&cluster, patience).await?;
    let peers: Arc<dyn Peers> = if cluster.is_single() {
        Arc::new(Alone)
    } else {
        Arc::new(RemotePeers::new(Arc::clone(&cluster)))
    };
    let identities = Arc::new(IdentityService::new(IdentityParts {
        store: store.clone(),
        registry: Arc::clone(&registry),
        clock: Arc::clone(&clock),
        config: config.identity.clone(),
        ids: cluster.user_ids(),
        peers: Arc::clone(&peers),
        totals: Arc::clone(&totals),
        metrics: metrics.clone(),
    }));
    let access = Access::new(&config.auth);
    if access.is_open() {
        warn!("no auth.keys configured: every request is allowed (development only)");
    }
    let state = web::Data::new(AppState {
        cluster: Arc::clone(&cluster),
        access,
        ingestor: Ingestor::new(Arc::clone(&registry), Arc::clone(&identities), peers),
        identities,
        config: config.clone(),
        store: store.clone(),
        registry,
        segments,
        catalog,
        hub,
        clock,
        dev_clock,
        clock_moves: tokio::sync::Mutex::new(()),
        timers,
        totals,
        metrics: metrics.clone(),
        health,
        ready: Default::default(),
        in_flight: tokio::sync::Semaphore::new(config.ingest.max_in_flight_events),
        requests: Default::default(),
    });
    let addr = listener.local_addr()?;
    let app_state = state.clone();
    let workers = if config.server.http_workers == 0 {
        cores
    } else {
        config.server.http_workers
    };
    let server = HttpServer::new(move || {
        // Called on each HTTP worker's thread as it starts.
        host_users_on_this_thread();
        let durations = app_state.metrics.http_request_duration.clone();
        let requests = Arc::clone(&app_state.requests);
        App::new()
            .app_data(app_state.clone())
            .wrap_fn(move |req, srv| {
                let serving = requests.serve();
                let method = method_label(&req);
                let stopwatch = Stopwatch::start();
                let durations = durations.clone();
                let response = srv.call(req);
                async move {
                    let response = response.await?;
                    drop(serving);
                    durations
                        .with_label_values(&[
                            route_label(&response).as_str(),
                            method,
                            status_label(response.status()),
                        ])
                        .observe(stopwatch.elapsed_secs());
                    Ok(response)
                }
            })
            .wrap(from_fn(ready_gate))
            .wrap(from_fn(cors))
            .configure(configure)
    })
    .workers(workers)
    .max_connections(config.server.max_connections_per_worker)
    .client_request_timeout(std::time::Duration::from_millis(
        config.server.client_request_timeout_ms,
    ))
    .keep_alive(std::time::Duration::from_secs(
        config.server.keep_alive_secs,
    ))
    .disable_signals()
    .shutdown_timeout(config.server.shutdown_timeout_secs)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let serving = actix_rt::spawn(server);
    if !cluster.is_single() {
        catch_up(&state)
            .await
            .map_err(|e| anyhow::anyhow!("failed to catch up with the cluster: {e}"))?;
        cluster
            .await_peers(std::time::Duration::from_millis(
                config.cluster.down_after_ms,
            ))
            .await;
        fanout::start(Arc::clone(&cluster), state.hub.clone());
        actix_rt::spawn(finish_transfers(Arc::clone(&state.identities)));
    }
    let services = state.handoff_services();
    if !cluster.handoff().hand_over(&services).await {
        let handoff = Arc::clone(cluster.handoff());
        actix_rt::spawn(async move { handoff.keep_handing_over(services).await });
    }
    state.ready.store(true, Ordering::SeqCst);
    cluster.set_ready(true);
    info!(node_id = %config.server.node_id, dev_clock = options.dev_clock, "listening on http://{addr}");

    shutdown.await;
    info!("stopping: no new requests; finishing those in flight");
    state.ready.store(false, Ordering::SeqCst);
    cluster.set_ready(false);
    if let Some(task) = timer_loop {
        task.abort();
    }
    passivation.abort();
    snapshots.abort();
    // The HTTP workers run user actors: the users are saved while they are up.
    let patience = std::time::Duration::from_secs(config.server.shutdown_timeout_secs);
    let ingestion_closed = drain(&state, patience).await;
    if ingestion_closed.is_none() {
        warn!(
            requests = state.requests.count(),
            "requests still in flight after the shutdown timeout; stopping anyway"
        );
    }
    // Not needed for safety (the journal holds it all), but the next start replays less.
    save_users(&state).await;
    handle.stop(true).await;
    if let Err(e) = serving.await {
        warn!(error = %e, "http server task failed");
    }
    // Only users changed by requests that outlasted the drain are still unsaved.
    save_users(&state).await;
    cluster.shutdown().await;
    // Flushes sled, and deletes the journal files when every user was saved.
    state
        .registry
        .context()
        .committer
        .checkpoint()
        .await
        .context("final flush failed")?;
    for arbiter in &arbiters {
        arbiter.stop();
    }
    // Joining releases the actors' handles on the store, so the data dir can be reopened.
    for arbiter in arbiters {
        if arbiter.join().is_err() {
            warn!("an actor thread panicked while stopping");
        }
    }
    info!("stopped");
    Ok(())
}

/// Saves the users with journaled changes, so that the next start replays less.
async fn save_users(state: &AppState) {
    if let Err(e) = state.registry.save_dirty().await {
        warn!(error = %e, "some users were not saved at shutdown; the next start replays them");
    }
}
