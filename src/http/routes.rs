//! Every route of API.md in one `configure` function, shared by the server and tests.
//! Each resource answers other methods with `405` and an `Allow` header; anything else
//! is a JSON `404`.

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse, Route};

use super::auth::{self, check_any_key, Class};
use super::error::ApiError;
use super::handlers::{admin, events, ops, segments, users};
use super::ws;

/// A route guarded by the key class it needs.
fn guarded(route: Route, class: Class) -> Route {
    match class {
        Class::Ingest => route.wrap(from_fn(auth::ingest)),
        Class::Read => route.wrap(from_fn(auth::read)),
        Class::Admin | Class::AnyKey => route.wrap(from_fn(auth::admin)),
    }
}

/// Builds a resource at `path` with `(method, class, route)` triples; other methods get
/// `405` (after the key check, under `/api/`). A class of `None` needs no key.
fn resource(path: &str, routes: Vec<(&'static str, Option<Class>, Route)>) -> actix_web::Resource {
    let allowed: Vec<&'static str> = routes.iter().map(|(method, _, _)| *method).collect();
    let mut resource = web::resource(path);
    for (_, class, route) in routes {
        resource = resource.route(match class {
            Some(class) => guarded(route, class),
            None => route,
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

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource(
        "/healthz",
        vec![("GET", None, web::get().to(ops::healthz))],
    ))
    .service(resource(
        "/readyz",
        vec![("GET", None, web::get().to(ops::readyz))],
    ))
    .service(resource(
        "/metrics",
        vec![("GET", None, web::get().to(ops::metrics))],
    ))
    .service(resource(
        "/api/v1/events",
        vec![("POST", Some(Class::Ingest), web::post().to(events::post))],
    ))
    .service(resource(
        "/api/v1/events/ws",
        vec![("GET", Some(Class::Ingest), web::get().to(ws::events))],
    ))
    .service(resource(
        "/api/v1/notifications/ws",
        vec![("GET", Some(Class::Read), web::get().to(ws::notifications))],
    ))
    .service(resource(
        "/api/v1/users",
        vec![("GET", Some(Class::Read), web::get().to(users::find))],
    ))
    .service(resource(
        "/api/v1/users/{user_id}",
        vec![("GET", Some(Class::Read), web::get().to(users::get))],
    ))
    .service(resource(
        "/api/v1/segments",
        vec![
            ("GET", Some(Class::Read), web::get().to(segments::list)),
            ("POST", Some(Class::Admin), web::post().to(segments::create)),
        ],
    ))
    .service(resource(
        "/api/v1/segments/validate",
        vec![(
            "POST",
            Some(Class::Read),
            web::post().to(segments::validate),
        )],
    ))
    .service(resource(
        "/api/v1/segments/{id}",
        vec![
            ("GET", Some(Class::Read), web::get().to(segments::get)),
            ("PUT", Some(Class::Admin), web::put().to(segments::update)),
            (
                "DELETE",
                Some(Class::Admin),
                web::delete().to(segments::delete),
            ),
        ],
    ))
    .service(resource(
        "/api/v1/segments/{id}/members",
        vec![("GET", Some(Class::Read), web::get().to(segments::members))],
    ))
    .service(resource(
        "/api/v1/segments/{id}/count",
        vec![("GET", Some(Class::Read), web::get().to(segments::count))],
    ))
    .service(resource(
        "/api/v1/activities",
        vec![("GET", Some(Class::Read), web::get().to(ops::activities))],
    ))
    .service(resource(
        "/api/v1/admin/clock",
        vec![
            ("GET", Some(Class::Read), web::get().to(admin::get)),
            ("POST", Some(Class::Admin), web::post().to(admin::set)),
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
