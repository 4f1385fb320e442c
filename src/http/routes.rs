//! Every route of API.md in one `configure` function, shared by the server and tests.
//! Each resource answers other methods with `405` and an `Allow` header; anything else
//! is a JSON `404`.

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{web, HttpRequest, HttpResponse, Route};

use super::error::ApiError;
use super::handlers::{admin, events, ops, segments, users};
use super::ws;

/// Builds a resource at `path` with `(method, route)` pairs; other methods get `405`.
fn resource(path: &str, routes: Vec<(&'static str, Route)>) -> actix_web::Resource {
    let allowed: Vec<&'static str> = routes.iter().map(|(method, _)| *method).collect();
    let mut resource = web::resource(path);
    for (_, route) in routes {
        resource = resource.route(route);
    }
    resource.default_service(web::to(move || {
        let allowed = allowed.clone();
        async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allowed)) }
    }))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route {} {}",
        req.method(),
        req.path()
    )))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource(
        "/healthz",
        vec![("GET", web::get().to(ops::healthz))],
    ))
    .service(resource(
        "/readyz",
        vec![("GET", web::get().to(ops::readyz))],
    ))
    .service(resource(
        "/metrics",
        vec![("GET", web::get().to(ops::metrics))],
    ))
    .service(resource(
        "/api/v1/events",
        vec![("POST", web::post().to(events::post))],
    ))
    .service(resource(
        "/api/v1/events/ws",
        vec![("GET", web::get().to(ws::events))],
    ))
    .service(resource(
        "/api/v1/notifications/ws",
        vec![("GET", web::get().to(ws::notifications))],
    ))
    .service(resource(
        "/api/v1/users",
        vec![("GET", web::get().to(users::find))],
    ))
    .service(resource(
        "/api/v1/users/{user_id}",
        vec![("GET", web::get().to(users::get))],
    ))
    .service(resource(
        "/api/v1/segments",
        vec![
            ("GET", web::get().to(segments::list)),
            ("POST", web::post().to(segments::create)),
        ],
    ))
    .service(resource(
        "/api/v1/segments/validate",
        vec![("POST", web::post().to(segments::validate))],
    ))
    .service(resource(
        "/api/v1/segments/{id}",
        vec![
            ("GET", web::get().to(segments::get)),
            ("PUT", web::put().to(segments::update)),
            ("DELETE", web::delete().to(segments::delete)),
        ],
    ))
    .service(resource(
        "/api/v1/segments/{id}/members",
        vec![("GET", web::get().to(segments::members))],
    ))
    .service(resource(
        "/api/v1/segments/{id}/count",
        vec![("GET", web::get().to(segments::count))],
    ))
    .service(resource(
        "/api/v1/activities",
        vec![("GET", web::get().to(ops::activities))],
    ))
    .service(resource(
        "/api/v1/admin/clock",
        vec![
            ("GET", web::get().to(admin::get)),
            ("POST", web::post().to(admin::set)),
        ],
    ))
    .default_service(web::to(not_found));
}

/// Returns the route pattern of a served request, for metric labels (bounded set).
pub fn route_label(response: &ServiceResponse) -> String {
    response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned())
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
