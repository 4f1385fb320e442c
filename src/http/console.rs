//! The web console: `GET /` (its page) and `GET /console/{file}` (its scripts and style),
//! embedded in the binary so that `uss serve` alone serves it, offline.
//!
//! It owns only the static assets under `console/` and how they are served (content
//! type, `ETag`, `Cache-Control: no-cache`, a strict content security policy). The
//! console is a client of the API like any other: it needs no key to load, and sends the
//! key its user typed on every API call. These routes are not in `routes::endpoints()`,
//! which is the API contract that `openapi.json` describes.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::fnv1a;

use super::error::ApiError;

/// One embedded file: its name under `/console/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Declares the embedded files; `index.html` is served at `/`.
macro_rules! assets {
    ($(($name:literal, $type:expr)),* $(,)?) => {
        &[$(Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../console/", $name)),
        }),*]
    };
}

const ASSETS: &[Asset] = assets![
    ("index.html", "text/html; charset=utf-8"),
    ("console.css", "text/css; charset=utf-8"),
    ("api.js", JS),
    ("app.js", JS),
    ("builder.js", JS),
    ("chart.js", JS),
    ("dom.js", JS),
    ("editor.js", JS),
    ("live.js", JS),
    ("segment.js", JS),
    ("segments.js", JS),
    ("socket.js", JS),
    ("users.js", JS),
];

/// The page may load only its own scripts and style, and talk only to its own origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    let etag = format!("\"{:016x}\"", fnv1a(asset.body.as_bytes()));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut answer = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, etag))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ));
    if fresh {
        return answer.finish();
    }
    answer.content_type(asset.content_type).body(asset.body)
}

fn find(name: &str) -> Result<&'static Asset, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no console file {name}")))
}

/// `GET /`: the console's page.
async fn index(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Ok(serve(&req, find("index.html")?))
}

/// `GET /console/{file}`: a script or the style sheet.
async fn file(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().get("file").unwrap_or_default();
    Ok(serve(&req, find(name)?))
}

/// Registers `/` and `/console/{file}` (GET and HEAD; no key needed).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/", web::head().to(index))
        .route("/console/{file}", web::get().to(file))
        .route("/console/{file}", web::head().to(file));
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::App;

    #[actix_web::test]
    async fn serves_the_page_and_its_files_with_types_and_cache_headers() {
        let app = init_service(App::new().configure(configure)).await;
        let page = call_service(&app, TestRequest::get().uri("/").to_request()).await;
        assert_eq!(page.status(), 200);
        assert_eq!(
            page.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            page.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-cache"
        );
        let script = TestRequest::get().uri("/console/app.js").to_request();
        let script = call_service(&app, script).await;
        assert_eq!(script.headers().get(header::CONTENT_TYPE).unwrap(), JS);
        let etag = script.headers().get(header::ETAG).unwrap().clone();
        let again = TestRequest::get()
            .uri("/console/app.js")
            .insert_header((header::IF_NONE_MATCH, etag))
            .to_request();
        assert_eq!(call_service(&app, again).await.status(), 304);
        let head = TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri("/")
            .to_request();
        assert_eq!(call_service(&app, head).await.status(), 200);
        let missing = TestRequest::get().uri("/console/nope.js").to_request();
        assert_eq!(call_service(&app, missing).await.status(), 404);
    }

    #[test]
    fn every_script_the_page_imports_is_embedded() {
        for asset in ASSETS {
            for line in asset.body.lines() {
                let Some(rest) = line.split("from \"./").nth(1) else {
                    continue;
                };
                let imported = rest.split('"').next().unwrap();
                assert!(
                    find(imported).is_ok(),
                    "{} imports {imported}, which is not embedded",
                    asset.name
                );
            }
        }
    }
}
