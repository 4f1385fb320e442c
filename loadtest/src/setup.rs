//! Segment setup: the run's segments exist on the node before any event is sent.
//!
//! Segments are matched by name: one the node already has is reused as it is (its rule
//! is not compared), a missing one is created.

use std::path::Path;

use anyhow::{bail, Context as _};
use serde::Serialize;
use serde_json::Value;

use crate::api::Api;

/// The default segments: the five fixture segments of the repository.
pub const FIXTURE_SEGMENTS: &str = include_str!("../../tests/fixtures/segments.json");

/// A segment of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentRef {
    /// The node's id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Whether this run created it (else it existed).
    pub created: bool,
}

/// Reads the segments to set up: a JSON array of objects with `name` and `rule`.
pub fn load(path: Option<&Path>) -> anyhow::Result<Vec<Value>> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("failed to read --segments {}", path.display()))?,
        None => FIXTURE_SEGMENTS.to_owned(),
    };
    let segments: Vec<Value> =
        serde_json::from_str(&text).context("segments must be a JSON array")?;
    for (i, segment) in segments.iter().enumerate() {
        for field in ["name", "rule"] {
            if !segment.get(field).is_some_and(Value::is_string) {
                bail!("segment {i} has no string {field:?}");
            }
        }
    }
    Ok(segments)
}

/// Creates the segments the node lacks and returns every one of them with its id.
pub async fn ensure(api: &Api, wanted: &[Value]) -> anyhow::Result<Vec<SegmentRef>> {
    let existing = api.segments().await?;
    let mut out = Vec::with_capacity(wanted.len());
    for segment in wanted {
        let name = segment["name"].as_str().unwrap_or_default();
        if let Some(found) = existing.iter().find(|s| s.name == name) {
            out.push(SegmentRef {
                id: found.id,
                name: found.name.clone(),
                created: false,
            });
        } else {
            let made = api.create_segment(segment).await?;
            out.push(SegmentRef {
                id: made.id,
                name: made.name,
                created: true,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_has_five_named_rules() {
        let segments = load(None).expect("the fixture parses");
        assert_eq!(segments.len(), 5);
        assert_eq!(segments[0]["name"], "area_x_no_purchase_30d");
    }

    #[test]
    fn a_file_without_rules_is_refused() {
        let dir = std::env::temp_dir().join(format!("lt-setup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.json");
        std::fs::write(&path, r#"[{"name": "x"}]"#).expect("write");
        let error = load(Some(&path)).expect_err("no rule").to_string();
        assert!(error.contains("\"rule\""), "{error}");
        std::fs::write(&path, "{}").expect("write");
        assert!(load(Some(&path)).is_err());
        assert!(load(Some(&dir.join("missing.json"))).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
