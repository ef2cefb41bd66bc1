//! Who may see the operator's page and act on it (README, "The operator's page").
//!
//! - **Without a token** the page only ever listens on loopback (refused at start otherwise, see
//!   [`crate::settings::admin`]), answers only loopback peers, and only under a loopback host name
//!   (`localhost`, `127.0.0.1`, `[::1]`): a web page elsewhere cannot reach it through DNS
//!   rebinding.
//! - **With a token** every request must carry it: `Authorization: Bearer <token>` (scripts,
//!   `Accept: application/json`), or the session cookie the login form sets. The cookie holds an
//!   HMAC of the token, never the token; comparisons are constant-time.
//! - **Actions** are POSTs that carry this process's CSRF token (a hidden form field), and whose
//!   `Origin` / `Sec-Fetch-Site`, when the browser sends them, say the same site.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

use crate::settings::admin::is_loopback;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hookbridge_admin";

/// What a request may do, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A token is needed and none (or a wrong one) came: log in.
    Unauthenticated,
    /// Not from here, or not under a name of here (no token configured).
    Forbidden,
}

/// The page's access rules, for one process.
pub struct Access {
    /// The token, as an HMAC key: `session` is its tag over a fixed text.
    token: Option<(SecretString, hmac::Key)>,
    /// This process's random key for CSRF tokens.
    csrf_key: hmac::Key,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

const SESSION_TEXT: &[u8] = b"hookbridge-admin-session-v1";
const CSRF_TEXT: &[u8] = b"hookbridge-admin-csrf-v1";

impl Access {
    pub fn new(token: Option<SecretString>) -> Self {
        let rng = ring::rand::SystemRandom::new();
        #[allow(clippy::expect_used)] // The system's randomness failing leaves nothing safe to do.
        let csrf_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system randomness");
        Self {
            token: token.map(|t| {
                let key = hmac::Key::new(hmac::HMAC_SHA256, t.expose_secret().as_bytes());
                (t, key)
            }),
            csrf_key,
        }
    }

    /// Whether a token is configured.
    pub fn needs_token(&self) -> bool {
        self.token.is_some()
    }

    /// The session cookie's value for the configured token.
    pub fn session_value(&self) -> Option<String> {
        self.token
            .as_ref()
            .map(|(_, key)| hex::encode(hmac::sign(key, SESSION_TEXT).as_ref()))
    }

    /// Whether `candidate` is the configured token (constant-time).
    pub fn is_token(&self, candidate: &str) -> bool {
        let Some((token, _)) = &self.token else {
            return false;
        };
        // Comparing tags under a random key compares the values in constant time.
        let tag = hmac::sign(&self.csrf_key, token.expose_secret().as_bytes());
        hmac::verify(&self.csrf_key, candidate.as_bytes(), tag.as_ref()).is_ok()
    }

    /// The CSRF token the forms carry.
    pub fn csrf_token(&self) -> String {
        hex::encode(hmac::sign(&self.csrf_key, CSRF_TEXT).as_ref())
    }

    /// Whether `candidate` is this process's CSRF token (constant-time).
    pub fn is_csrf_token(&self, candidate: &str) -> bool {
        hex::decode(candidate)
            .is_ok_and(|tag| hmac::verify(&self.csrf_key, CSRF_TEXT, &tag).is_ok())
    }

    /// May `req` see the page?
    ///
    /// # Errors
    /// Why not.
    pub fn check(&self, req: &HttpRequest) -> Result<(), Refusal> {
        match &self.token {
            Some((_, key)) => {
                let bearer = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                if bearer.is_some_and(|b| self.is_token(b.trim())) {
                    return Ok(());
                }
                let session = req.cookie(SESSION_COOKIE);
                let valid = session.is_some_and(|c| {
                    hex::decode(c.value())
                        .is_ok_and(|tag| hmac::verify(key, SESSION_TEXT, &tag).is_ok())
                });
                if valid {
                    Ok(())
                } else {
                    Err(Refusal::Unauthenticated)
                }
            }
            None => {
                let local_peer = req.peer_addr().is_some_and(|a| is_loopback(a.ip()));
                if local_peer && is_local_host(req) {
                    Ok(())
                } else {
                    Err(Refusal::Forbidden)
                }
            }
        }
    }

    /// May `req`, a POST, act? Its CSRF token (from the form) must be this process's, and the
    /// browser's `Origin` / `Sec-Fetch-Site`, when sent, must say the same site. Bearer-token
    /// callers (scripts) carry no cookie a third-party page could ride on, so they need no
    /// CSRF token.
    pub fn may_act(&self, req: &HttpRequest, csrf: Option<&str>) -> bool {
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|b| self.is_token(b.trim()));
        if bearer {
            return true;
        }
        let same_site = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v == "same-origin" || v == "none");
        let origin_ok = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|origin| {
                origin
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host_header(req)))
            });
        same_site && origin_ok && csrf.is_some_and(|c| self.is_csrf_token(c))
    }
}

/// The request's own `Host` header (never `Forwarded` / `X-Forwarded-Host`, which a caller
/// writes as it likes).
fn host_header(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Whether the request's `Host` names this machine's loopback.
fn is_local_host(req: &HttpRequest) -> bool {
    let host = host_header(req).to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default().to_owned(),
        None => host
            .rsplit_once(':')
            .map_or(host.clone(), |(h, _)| h.to_owned()),
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn local(host: &str) -> HttpRequest {
        TestRequest::get()
            .peer_addr("127.0.0.1:40000".parse().unwrap())
            .insert_header((header::HOST, host))
            .to_http_request()
    }

    #[test]
    fn without_a_token_only_this_machine_under_its_own_names_gets_in() {
        let access = Access::new(None);
        for host in [
            "localhost:9091",
            "127.0.0.1:9091",
            "[::1]:9091",
            "LOCALHOST",
        ] {
            assert_eq!(access.check(&local(host)), Ok(()), "{host}");
        }
        for host in ["attacker.example:9091", "10.0.0.5:9091", ""] {
            assert_eq!(
                access.check(&local(host)),
                Err(Refusal::Forbidden),
                "{host}"
            );
        }
        let forwarded = TestRequest::get()
            .peer_addr("127.0.0.1:40000".parse().unwrap())
            .insert_header((header::HOST, "attacker.example"))
            .insert_header(("x-forwarded-host", "localhost"))
            .to_http_request();
        assert_eq!(access.check(&forwarded), Err(Refusal::Forbidden));
        let remote = TestRequest::get()
            .peer_addr("192.0.2.7:40000".parse().unwrap())
            .insert_header((header::HOST, "localhost"))
            .to_http_request();
        assert_eq!(access.check(&remote), Err(Refusal::Forbidden));
    }

    #[test]
    fn tokens_and_csrf_tokens_are_checked_exactly() {
        let access = Access::new(Some(SecretString::from("0123456789abcdef-token")));
        assert!(access.is_token("0123456789abcdef-token"));
        assert!(!access.is_token("0123456789abcdef-toke"));
        assert!(!access.is_token(""));
        let csrf = access.csrf_token();
        assert!(access.is_csrf_token(&csrf));
        assert!(!access.is_csrf_token(&csrf[1..]));
        assert!(!access.is_csrf_token("zz"));
        assert!(!Access::new(None).is_csrf_token(&csrf), "per process");
        let session = access.session_value().unwrap();
        assert!(!session.contains("token"));
        let with_cookie = TestRequest::get()
            .cookie(actix_web::cookie::Cookie::new(SESSION_COOKIE, session))
            .to_http_request();
        assert_eq!(access.check(&with_cookie), Ok(()));
        let forged = TestRequest::get()
            .cookie(actix_web::cookie::Cookie::new(SESSION_COOKIE, "00"))
            .to_http_request();
        assert_eq!(access.check(&forged), Err(Refusal::Unauthenticated));
    }
}
