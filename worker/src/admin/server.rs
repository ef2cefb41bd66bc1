//! The page's listener: routes, the access check in front of every one of them (but the log-in
//! form and the stylesheet), log-in and log-out.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, HttpServer, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::AdminState;
use super::access::{Refusal, SESSION_COOKIE};
use super::pages::{self, Chrome, wants_json};
use crate::listener::{Listener, serve_until};

/// The stylesheet, compiled in.
const STYLESHEET: &str = include_str!("assets/admin.css");

/// Largest form body an action takes.
const FORM_LIMIT: usize = 4 * 1024;

/// Serves the pages on `listener` until `shutdown`.
pub async fn serve(listener: Listener, state: AdminState, shutdown: CancellationToken) {
    let state = web::Data::from(Arc::new(state));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::FormConfig::default().limit(FORM_LIMIT))
            .wrap(from_fn(guard))
            // No framing (a hidden frame could trick a click on Redrive or Purge), no script, no
            // form posted anywhere else, nothing sniffed.
            .wrap(
                DefaultHeaders::new()
                    .add((
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
                    ))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::REFERRER_POLICY, "same-origin")),
            )
            .route("/", web::get().to(pages::overview::show))
            .route("/deliveries", web::get().to(pages::deliveries::list))
            .route("/deliveries/{id}", web::get().to(pages::deliveries::show))
            .route("/dead-letters", web::get().to(pages::dead_letters::list))
            .route(
                "/dead-letters/redrive-all",
                web::post().to(pages::dead_letters::redrive_all),
            )
            .route(
                "/dead-letters/purge",
                web::post().to(pages::dead_letters::purge),
            )
            .route(
                "/dead-letters/{id}",
                web::get().to(pages::dead_letters::show),
            )
            .route(
                "/dead-letters/{id}/redrive",
                web::post().to(pages::dead_letters::redrive),
            )
            .route(
                "/change-requests",
                web::get().to(pages::change_requests::list),
            )
            .route(
                "/change-requests/{key}",
                web::get().to(pages::change_requests::show),
            )
            .route("/audit", web::get().to(pages::audit::show))
            .route("/login", web::get().to(login_form))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .route("/assets/admin.css", web::get().to(stylesheet))
            .default_service(web::to(not_found))
    })
    .disable_signals()
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener.into_socket())
    .map(HttpServer::run);
    serve_until(server, "the operator's page", shutdown).await;
}

/// Paths anyone may fetch: the log-in form and the stylesheet it uses.
fn is_open(path: &str) -> bool {
    path == "/login" || path == "/assets/admin.css"
}

/// Refuses what [`super::access::Access::check`] refuses: 401 with the log-in form (or JSON), or
/// 403 (no token configured and not from here). The log-in form itself is refused with 403 to
/// callers from elsewhere when no token is configured.
async fn guard(
    req: ServiceRequest,
    next: Next<impl actix_web::body::MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl actix_web::body::MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AdminState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError("no state"));
    };
    let verdict = state.access.check(req.request());
    let open = is_open(req.path()) && (state.access.needs_token() || verdict.is_ok());
    match verdict {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(_) if open => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(refusal) => {
            let (http, _) = req.into_parts();
            let response = refusal_response(&http, refusal);
            Ok(ServiceResponse::new(http, response).map_into_right_body())
        }
    }
}

fn refusal_response(req: &HttpRequest, refusal: Refusal) -> HttpResponse {
    match refusal {
        Refusal::Forbidden => {
            HttpResponse::Forbidden().json(json!({
                "error": "forbidden",
                "detail": "the operator's page answers only this machine (no HOOKBRIDGE_ADMIN_TOKEN is set)",
            }))
        }
        Refusal::Unauthenticated if wants_json(req) || req.method() != actix_web::http::Method::GET => {
            HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"hookbridge admin\""))
                .json(json!({
                    "error": "unauthorized",
                    "detail": "the operator's page needs its token: Authorization: Bearer <HOOKBRIDGE_ADMIN_TOKEN>, or log in at /login",
                }))
        }
        Refusal::Unauthenticated => {
            let next = req.uri().path_and_query().map_or("/", |p| p.as_str());
            pages::html(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    chrome: bare_chrome(None),
                    failed: false,
                    next: safe_next(next),
                },
            )
        }
    }
}

/// The frame of a page for a caller not (yet) let in: no CSRF token, no log-out.
fn bare_chrome(notice: Option<String>) -> Chrome {
    Chrome {
        active: "",
        csrf: String::new(),
        logged_in: false,
        notice,
        version: env!("CARGO_PKG_VERSION"),
        now: chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
    }
}

/// Where to go after logging in: a path of this site only (never `//elsewhere`).
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

impl FromRequest for Chrome {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AdminState>>();
        let active = match req.path() {
            "/" => "overview",
            p if p.starts_with("/deliveries") => "deliveries",
            p if p.starts_with("/dead-letters") => "dead-letters",
            p if p.starts_with("/change-requests") => "change-requests",
            p if p.starts_with("/audit") => "audit",
            _ => "",
        };
        let notice = web::Query::<pages::PageQuery>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.into_inner().done)
            .map(|n| n.chars().take(200).collect());
        ready(Ok(Chrome {
            active,
            csrf: state.map(|s| s.access.csrf_token()).unwrap_or_default(),
            logged_in: state.is_some_and(|s| s.access.needs_token()),
            ..bare_chrome(notice)
        }))
    }
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    chrome: Chrome,
    failed: bool,
    next: String,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_form(query: web::Query<NextQuery>) -> HttpResponse {
    pages::html(
        StatusCode::OK,
        &LoginPage {
            chrome: bare_chrome(None),
            failed: false,
            next: safe_next(query.next.as_deref().unwrap_or("/")),
        },
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// `POST /login`: the right token sets the session cookie (an HMAC of the token, `HttpOnly`,
/// `SameSite=Strict`) and goes on; a wrong one shows the form again with 401.
async fn login(state: web::Data<AdminState>, form: web::Form<LoginForm>) -> HttpResponse {
    let next = safe_next(form.next.as_deref().unwrap_or("/"));
    let session = state.access.session_value();
    match session {
        Some(session) if state.access.is_token(form.token.trim()) => {
            let cookie = Cookie::build(SESSION_COOKIE, session)
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .finish();
            HttpResponse::SeeOther()
                .cookie(cookie)
                .insert_header((header::LOCATION, next))
                .finish()
        }
        Some(_) => {
            tracing::warn!("operator's page: a log-in with a wrong token");
            pages::html(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    chrome: bare_chrome(None),
                    failed: true,
                    next,
                },
            )
        }
        // No token configured: nothing to log in to.
        None => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, next))
            .finish(),
    }
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /logout`: clears the session cookie.
async fn logout(
    req: HttpRequest,
    state: web::Data<AdminState>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if !state.access.may_act(&req, form.csrf.as_deref()) {
        return HttpResponse::Forbidden().json(
            json!({"error": "csrf", "detail": "the form is stale or came from another site"}),
        );
    }
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, "/login"))
        .finish()
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "max-age=3600"))
        .body(STYLESHEET)
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    let chrome = bare_chrome(None);
    pages::error(
        &req,
        chrome,
        StatusCode::NOT_FOUND,
        "not_found",
        "no such page",
    )
}
