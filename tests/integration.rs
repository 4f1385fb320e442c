//! Black-box tests of USS, one binary with a module per feature.

mod cluster;
mod cluster_growth;
mod cluster_merges;
mod common;
mod identity_model;
mod rules_fixtures;
mod rules_model;
mod server_access;
mod server_api;
mod server_crash;
mod server_fixtures;
mod server_identity;
mod server_overload;
mod server_passivation;
mod server_segments;
mod server_ws;
