//! Helpers shared by the black-box tests: fixtures in the original event format, the
//! test server, the test cluster of real processes, and their client.

pub mod api;
pub mod client;
pub mod cluster;
pub mod server;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use uss::domain::{Event, Timestamp};

/// One line of a fixture: an event in the original proof of concept's format.
#[derive(Debug, Deserialize)]
pub struct FixtureEvent {
    pub id: String,
    pub id_type: String,
    pub region: Option<String>,
    pub device_type: Option<String>,
    pub country: Option<String>,
    pub created_at: String,
    pub payload: FixturePayload,
}

/// The payload of a fixture event; only the activity type matters to the rules.
#[derive(Debug, Deserialize)]
pub struct FixturePayload {
    pub activity_type: String,
}

impl FixtureEvent {
    /// Returns the user key the oracles use, `id_type:id`.
    pub fn user_key(&self) -> String {
        format!("{}:{}", self.id_type, self.id)
    }

    /// Returns the facts the rule engine reads.
    pub fn to_event_for_test(&self) -> Event {
        let mut event = Event::new(
            &self.payload.activity_type,
            Timestamp::parse(&self.created_at).expect("fixture time"),
        );
        event.country = self.country.as_deref().map(Into::into);
        event.region = self.region.as_deref().map(Into::into);
        event.device_type = self.device_type.as_deref().map(Into::into);
        event
    }
}

/// A segment of `segments.json`.
#[derive(Debug, Deserialize)]
pub struct FixtureSegment {
    pub name: String,
    pub rule: String,
}

/// An oracle: the expected members of every segment at `now`.
#[derive(Debug, Deserialize)]
pub struct Oracle {
    pub now: String,
    pub segments: BTreeMap<String, Vec<String>>,
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Reads the events of `name` (a `.jsonl` file), in file order.
pub fn events_for_test(name: &str) -> Vec<FixtureEvent> {
    event_lines_for_test(name)
        .iter()
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect()
}

/// Returns the lines of `name` (a `.jsonl` file) as they are, blank lines left out.
pub fn event_lines_for_test(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture_path(name)).expect("fixture file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads the five fixture segments.
pub fn segments_for_test() -> Vec<FixtureSegment> {
    let text = std::fs::read_to_string(fixture_path("segments.json")).expect("segments");
    serde_json::from_str(&text).expect("segments.json")
}

/// Reads an oracle file.
pub fn oracle_for_test(name: &str) -> Oracle {
    let text = std::fs::read_to_string(fixture_path(name)).expect("oracle");
    serde_json::from_str(&text).expect("oracle json")
}
