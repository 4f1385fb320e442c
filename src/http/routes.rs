//! Every route of API.md in one table (`endpoints`), registered by `configure` (shared
//! by the server and tests) and described by `openapi`.
//! The console's pages are registered here too, but are not part of that table.
//! Each resource answers other methods with `405` and an `Allow` header; anything else
//! is a JSON `404`.

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse, Route};

use super::auth::{self, check_any_key, Class};
use super::console;
use super::error::ApiError;
use super::handlers::{admin, events, identify, links, ops, replica, segments, shards, users};
use super::ws;

/// A route guarded by the key class it needs.
fn guarded(route: Route, class: Class) -> Route {
    match class {
        Class::Ingest => route.wrap(from_fn(auth::ingest)),
        Class::Read => route.wrap(from_fn(auth::read)),
        Class::Admin | Class::AnyKey => route.wrap(from_fn(auth::admin)),
    }
}

/// Builds the resource for one path from its endpoints; other methods get `405` (after
/// the key check, under `/api/`). An endpoint with no class needs no key.
fn resource(path: &str, endpoints: Vec<Endpoint>) -> actix_web::Resource {
    let allowed: Vec<&'static str> = endpoints.iter().map(|e| e.method).collect();
    let mut resource = web::resource(path);
    for e in endpoints {
        resource = resource.route(match e.class {
            Some(class) => guarded(e.route, class),
            None => e.route,
        });
    }
    resource.default_service(web::to(move |req: HttpRequest| {
        let allowed = allowed.clone();
        async move {
            check_any_key(&req)?;
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allowed))
        }
    }))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    check_any_key(&req)?;
    Err(ApiError::NotFound(format!(
        "no route {} {}",
        req.method(),
        req.path()
    )))
}

/// One route: where, which method, which key class (`None`: no key), what it does.
pub struct Endpoint {
    /// The path pattern, e.g. `/api/v1/segments/{id}`.
    pub path: &'static str,
    /// The HTTP method.
    pub method: &'static str,
    /// The key class it needs.
    pub class: Option<Class>,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// The handler.
    pub route: Route,
}

fn endpoint(
    path: &'static str,
    method: &'static str,
    class: Option<Class>,
    summary: &'static str,
    route: Route,
) -> Endpoint {
    Endpoint {
        path,
        method,
        class,
        summary,
        route,
    }
}

/// Returns every route of API.md, in the order they are matched. The router and the
/// OpenAPI document are both built from this table, so they cannot drift apart.
pub fn endpoints() -> Vec<Endpoint> {
    use Class::{Admin, Ingest, Read};
    vec![
        endpoint(
            "/healthz",
            "GET",
            None,
            "200 while the process runs",
            web::get().to(ops::healthz),
        ),
        endpoint(
            "/readyz",
            "GET",
            None,
            "200 when the node serves traffic, else 503",
            web::get().to(ops::readyz),
        ),
        endpoint(
            "/metrics",
            "GET",
            None,
            "Prometheus metrics",
            web::get().to(ops::metrics),
        ),
        endpoint(
            "/api/v1/events",
            "POST",
            Some(Ingest),
            "Ingest one event or an array of events",
            web::post().to(events::post),
        ),
        endpoint(
            "/api/v1/events/ws",
            "GET",
            Some(Ingest),
            "WebSocket: events in, acks out",
            web::get().to(ws::events),
        ),
        endpoint(
            "/api/v1/notifications/ws",
            "GET",
            Some(Read),
            "WebSocket: live membership changes",
            web::get().to(ws::notifications),
        ),
        endpoint(
            "/api/v1/identify",
            "POST",
            Some(Ingest),
            "Say that several identities are one person (merges their users)",
            web::post().to(identify::post),
        ),
        endpoint(
            "/api/v1/users",
            "GET",
            Some(Read),
            "Find the user that owns an identity",
            web::get().to(users::find),
        ),
        endpoint(
            "/api/v1/users/{user_id}",
            "GET",
            Some(Read),
            "One user",
            web::get().to(users::get),
        ),
        endpoint(
            "/api/v1/users/{user_id}/merges",
            "GET",
            Some(Read),
            "The merges that formed a user, and links refused for it",
            web::get().to(users::merges),
        ),
        endpoint(
            "/api/v1/segments",
            "GET",
            Some(Read),
            "List segments",
            web::get().to(segments::list),
        ),
        endpoint(
            "/api/v1/segments",
            "POST",
            Some(Admin),
            "Create a segment",
            web::post().to(segments::create),
        ),
        endpoint(
            "/api/v1/segments/validate",
            "POST",
            Some(Read),
            "Check a rule",
            web::post().to(segments::validate),
        ),
        endpoint(
            "/api/v1/segments/{id}",
            "GET",
            Some(Read),
            "One segment",
            web::get().to(segments::get),
        ),
        endpoint(
            "/api/v1/segments/{id}",
            "PUT",
            Some(Admin),
            "Change a segment",
            web::put().to(segments::update),
        ),
        endpoint(
            "/api/v1/segments/{id}",
            "DELETE",
            Some(Admin),
            "Delete a segment",
            web::delete().to(segments::delete),
        ),
        endpoint(
            "/api/v1/segments/{id}/members",
            "GET",
            Some(Read),
            "Members, paginated",
            web::get().to(segments::members),
        ),
        endpoint(
            "/api/v1/segments/{id}/count",
            "GET",
            Some(Read),
            "Member count",
            web::get().to(segments::count),
        ),
        endpoint(
            "/api/v1/activities",
            "GET",
            Some(Read),
            "Totals per activity type",
            web::get().to(ops::activities),
        ),
        endpoint(
            "/api/v1/admin/clock",
            "GET",
            Some(Read),
            "Read the dev clock",
            web::get().to(admin::get),
        ),
        endpoint(
            "/api/v1/admin/clock",
            "POST",
            Some(Admin),
            "Set the dev clock",
            web::post().to(admin::set),
        ),
        endpoint(
            "/api/v1/cluster",
            "GET",
            Some(Read),
            "The nodes, and the owner of a user",
            web::get().to(ops::cluster),
        ),
        endpoint(
            "/api/v1/openapi.json",
            "GET",
            Some(Read),
            "This document",
            web::get().to(super::openapi::get),
        ),
    ]
}

/// Registers every route, one resource per path, the routes nodes use between them
/// (`replica.rs`, `links.rs`, `shards.rs`) and the web console (`console.rs`), the last
/// ones outside
/// the API table.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut by_path: Vec<(&'static str, Vec<Endpoint>)> = Vec::new();
    for e in endpoints() {
        match by_path.iter_mut().find(|(path, _)| *path == e.path) {
            Some((_, group)) => group.push(e),
            None => by_path.push((e.path, vec![e])),
        }
    }
    for (path, group) in by_path {
        cfg.service(resource(path, group));
    }
    cfg.service(
        web::resource("/internal/v1/segments")
            .route(guarded(web::get().to(replica::list), Class::Admin)),
    );
    cfg.service(
        web::resource("/internal/v1/segments/{id}")
            .route(guarded(web::put().to(replica::put), Class::Admin))
            .route(guarded(web::delete().to(replica::remove), Class::Admin)),
    );
    let node_routes = [
        ("/internal/v1/shards", web::post().to(shards::receive)),
        (
            "/internal/v1/identities/indexed",
            web::post().to(links::indexed),
        ),
        (
            "/internal/v1/identities/claim",
            web::post().to(links::claim),
        ),
        (
            "/internal/v1/users/{id}/current",
            web::get().to(links::current),
        ),
        (
            "/internal/v1/users/{id}/surrender",
            web::post().to(links::surrender),
        ),
        (
            "/internal/v1/users/{id}/settle",
            web::post().to(links::settle),
        ),
        (
            "/internal/v1/users/{id}/absorb",
            web::post().to(links::absorb),
        ),
        (
            "/internal/v1/users/{id}/events",
            web::post().to(links::events),
        ),
        ("/internal/v1/link", web::post().to(links::link)),
    ];
    for (path, route) in node_routes {
        cfg.service(web::resource(path).route(guarded(route, Class::Admin)));
    }
    console::configure(cfg);
    cfg.default_service(web::to(not_found));
}

/// Returns the route pattern of a served request, for metric labels (bounded set).
pub fn route_label(response: &ServiceResponse) -> String {
    response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// Returns the status class label of a response (`2xx`, `4xx`, ...).
pub fn status_label(status: actix_web::http::StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// Returns the method label of a request (a bounded set).
pub fn method_label(request: &ServiceRequest) -> &'static str {
    match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;

    #[test]
    fn status_labels_name_the_class() {
        let labels = [
            StatusCode::SWITCHING_PROTOCOLS,
            StatusCode::ACCEPTED,
            StatusCode::NOT_MODIFIED,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::SERVICE_UNAVAILABLE,
        ]
        .map(status_label);
        assert_eq!(labels, ["1xx", "2xx", "3xx", "4xx", "5xx"]);
    }
}
