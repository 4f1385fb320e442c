//! `GET /api/v1/openapi.json`: the OpenAPI 3 description, generated from the route
//! table (`routes::endpoints`), so every served route is described and nothing else.

use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

use super::auth::Class;
use super::routes::endpoints;

fn operation(path: &str, method: &str, class: Option<Class>, summary: &str) -> Value {
    let mut responses = Map::new();
    let ok = match method {
        "POST" if path == "/api/v1/events" => "202",
        "POST" if path == "/api/v1/segments" => "201",
        "DELETE" => "204",
        _ if path.ends_with("/ws") => "101",
        _ => "200",
    };
    responses.insert(ok.into(), json!({"description": summary}));
    if path.starts_with("/api/v1/users/{user_id}") {
        responses.insert(
            "301".into(),
            json!({"description": "the user was merged into another; Location names it"}),
        );
    }
    let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut codes = vec!["400", "404", "405", "503"];
    if class.is_some() {
        codes.extend(["401", "403", "429"]);
    }
    if method == "POST" || method == "PUT" {
        codes.extend(["409", "413", "422"]);
    }
    for code in codes {
        responses.insert(code.into(), error.clone());
    }
    let parameters: Vec<Value> = path
        .split('/')
        .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}))
        .collect();
    let mut op = json!({
        "summary": summary,
        "operationId": format!("{} {}", method.to_lowercase(), path),
        "parameters": parameters,
        "responses": responses,
    });
    if method == "POST" || method == "PUT" {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": {}}}});
    }
    if class.is_some() {
        op["security"] = json!([{"bearer": []}]);
    }
    op
}

/// Returns the OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for e in endpoints() {
        let entry = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
        entry[e.method.to_lowercase()] = operation(e.path, e.method, e.class, e.summary);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "USS — real-time user segmentation", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                        "index": {"type": "integer"},
                        "line": {"type": "integer"},
                        "column": {"type": "integer"}
                    }
                }}
            }}
        }
    })
}

/// `GET /api/v1/openapi.json`
pub async fn get() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of API.md (and the merge log the identity issue adds), as
    /// `METHOD path`.
    const API_MD: [&str; 23] = [
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "POST /api/v1/events",
        "GET /api/v1/events/ws",
        "GET /api/v1/notifications/ws",
        "GET /api/v1/users",
        "GET /api/v1/users/{user_id}",
        "POST /api/v1/identify",
        "GET /api/v1/users/{user_id}/merges",
        "GET /api/v1/segments",
        "POST /api/v1/segments",
        "POST /api/v1/segments/validate",
        "GET /api/v1/segments/{id}",
        "PUT /api/v1/segments/{id}",
        "DELETE /api/v1/segments/{id}",
        "GET /api/v1/segments/{id}/members",
        "GET /api/v1/segments/{id}/count",
        "GET /api/v1/activities",
        "GET /api/v1/admin/clock",
        "POST /api/v1/admin/clock",
        "GET /api/v1/openapi.json",
        "GET /api/v1/cluster",
    ];

    #[test]
    fn every_served_route_of_api_md_is_described() {
        let doc = document();
        for route in API_MD {
            let (method, path) = route.split_once(' ').unwrap();
            let op = &doc["paths"][path][method.to_lowercase()];
            assert!(op.is_object(), "{route} missing from openapi.json");
            assert!(op["responses"].is_object(), "{route} has no responses");
        }
        let described: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(described, API_MD.len(), "nothing undocumented is served");
    }

    #[test]
    fn path_parameters_and_security_are_declared() {
        let doc = document();
        let members = &doc["paths"]["/api/v1/segments/{id}/members"]["get"];
        assert_eq!(members["parameters"][0]["name"], "id");
        assert_eq!(members["security"][0]["bearer"], json!([]));
        assert!(doc["paths"]["/healthz"]["get"].get("security").is_none());
    }
}
