//! A GitHub App API fake: an HTTP server inside the test suite that answers the calls a GitHub
//! App makes for a custom deployment protection rule as `api.github.com` does, so
//! `hookbridge_worker::github_app` is tested against GitHub's rules rather than its own.
//!
//! Sources (GitHub Docs, REST API version 2022-11-28): "Generating a JSON Web Token (JWT) for a
//! GitHub App"
//! (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app>:
//! RS256; `iat`; `exp` "no more than 10 minutes into the future"; `iss` the client ID or App ID);
//! "Generating an installation access token for a GitHub App" (`POST
//! /app/installations/{installation_id}/access_tokens`, `201 {"token": "ghs_…", "expires_at":
//! "2016-07-11T22:14:10Z", "permissions", "repository_selection"}`, tokens last one hour);
//! "Creating custom deployment protection rules" and "Review custom deployment protection rules
//! for a workflow run" (`POST /repos/{owner}/{repo}/actions/runs/{run_id}/
//! deployment_protection_rule`, body `environment_name`, `state` `approved`|`rejected`,
//! `comment`; `204`); "Get a commit" and "List pull requests associated with a commit"; "Rate
//! limits for the REST API" (`x-ratelimit-limit`, `-remaining`, `-used`, `-reset`, `-resource`;
//! `retry-after` on a secondary limit). The 401 messages are the ones GitHub is seen answering in
//! public issue threads (octokit/auth-app.js#698 "'Expiration time' claim ('exp') is too far in
//! the future"; actions/create-github-app-token#153 and backstage/backstage#12887 "A JSON web
//! token could not be decoded", the answer to a key that is not the App's; "Bad credentials" for
//! an unknown or expired token).
//!
//! What it enforces, as GitHub does:
//! - `/app/…` takes a JWT only: three base64url parts, header `alg: RS256`, signature checked
//!   against the App's public key, `iss` the App ID (number or string), `exp` in the future, at
//!   most 10 minutes away and at most 10 minutes after `iat`; otherwise `401`;
//! - installation tokens (`ghs_…`) live [`GithubAppConfig::token_lifetime`] (1 hour unless a test
//!   shortens it); an unknown or expired one gets `401 {"message":"Bad credentials"}`;
//! - a request without `User-Agent` gets `403`;
//! - a decision is taken once per (run, environment) a test registered as waiting
//!   ([`GithubAppFake::await_deployment`]); a body without `environment_name` or with another
//!   `state` gets `422 Invalid request`; an unknown run `404 Not Found`.
//!
//! Choices where GitHub's documentation is silent (the endpoint documents only `204`):
//! - **A second decision** on a deployment that is no longer waiting gets `422 {"message": "No
//!   pending deployment requests to approve or reject"}`. A guess: 422 is the status GitHub uses
//!   for a well-formed request it will not act on, and that message is the one recalled (not
//!   verified against the docs) for the sibling endpoint "Review pending deployments for a
//!   workflow run" in the same situation.
//! - **An unknown run** gets `404 Not Found`, GitHub's answer for any resource it does not know.
//!
//! Tests steer it with [`GithubAppFake::fail_next`] (the next answers are 500, 401, 403/429 rate
//! limits, …), [`GithubAppFake::expire_tokens`] (every token issued so far expires now, as if the
//! App's clock ran behind GitHub's) and [`GithubAppFake::hold_reviews`] (a decision is taken but
//! its `204` is held back: the App may die before it learns that GitHub took it), and read
//! [`GithubAppFake::reviews`] and [`GithubAppFake::requests`] (which never hold a token or JWT,
//! only which kind of credential was sent).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Value, json};

use crate::github_fake::{epoch_now, error, header};
use crate::serve::Server;

/// The App's private key: 2048-bit RSA, PKCS#1 PEM as GitHub issues it, made for these tests
/// with `openssl genrsa -traditional` (a fixed key: generating one per test is slow unoptimised).
pub const APP_PRIVATE_KEY_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAnuZu2do5zOVgL9l6ewM0f3NuBwq88Bjsf8YYK66QxXtQFi5D
lavUcqNUKXRb03lOGCvH3rjKCA2KbO72AT3UJGIAgF/kWs+TsUzxbhgi+NudbPpA
25yIlFhswtfXkbI2c4lMFkFvsjfmB0tKS0gQzGV7+ePorqs4EGS2Sv6IMZ4Mn8Uy
wLzEqhgqHOn3jHIf6FpxbGGrAlVGoKp0uspAKb1F1dt53gKi8REgeWInnnO2fcVU
gwGwFUFKkjQGtC/v8+tea6nOExICj+W3+0eLw4+4Cw9TmbIwtayZERlEGiiDe/Cg
HdSkB+GjarozCyOhtQq4JJAP3IyZQwr5J3P4VwIDAQABAoIBABWwa2oWFPSoTIBL
haHb1qMc7OROLWryY/mu3ua7faxPACf+6Z+45Bc/vwGnjc8oTCYVd8MpYv5FZuMm
nPKfb2EF9X6QWDmjAsxdLckyxzdDttHEuOyhCa2CAlp4HscW1cLgdz/Eb8waQC43
syziadSUd58s4jpRSaZHMPC8nHd1HbeDhxWjZpKzKl2oriTtB8jt5/2SxTLYOP+q
RLXQuwrL11qr/EZPOio39v6ltyVCn8X4RoqrOsBV0Gws++p5Z9zriF09kSF/sKgA
mIDGm4ZVwq2mvyiXmXti5qyQtIcdf/SCpwzAmz9MIPLzu3a7A+oanaL7SdFT0YKJ
JEvtaD0CgYEA0XpNoe03pOu03p27dOPEHcJKKOx60o3/DdEnnO3jfkWlW3cMi87W
t/H23u7B4J4gwXyJOOKFkMXFHsHGgUHIMneKQRKouVoAEQIGJV0PKvbqapLwM50f
qMDmNqEbLIZA4h1DbcKqH19z57dMxaQl1HbT9WUmaLkCFKLFGfTGMcUCgYEAwjCT
+vb2qKmTcT+mI1+DcqHCIWThDpTkSOzzfGhBJo2ZgbNZhvSV6zZyED6Ghv3BSrKt
fbc+FNH65b5xubfolPfW2qzBiffKfrSoT8ye6Cm3fSJ03n/gpB3NQ+6SgEQ/HN6Q
71mzvYKDgRblxHG5QhJQPOn/gEl0qKVKf5kyL2sCgYB2OCm76t5uar+mqynx6+Dw
Uof71In0bkK1D4bln7O1vaR2nBcuh8rSAPIsGl68X0FpMNlYiy6J57M5im524CMV
qDUUSG2EPXCwKI5DY+N9geAFyWtaFaCaYlMKHZ3yYMoZUh6NwUC1d+83pFDlcaAP
6gfxA+bLTy4Ha10FKwj3aQKBgQCJgOhn/tPt3hW/TTiRN6LWWuAh0VLjhl6XnOFU
qGXprL6T7rFoNGyr3yOpiPytPaXPBPKAYG6fQ4iLgez5etZAFbaXpVhuH33NdpLv
3o5vCosZGnryyk4BJ/EfNyGZnbmq8ZZjRXtWp8ICeHo+PeDWfi0+1NrMtjba7B/y
dkHo/QKBgCDhF1pu5UMT70XjFTLWMTFd6XRR3ps0ELN6GWOH1Te+1o5a4r39zErQ
n8BTvaFYf/sXZejV2x1xS9Y2LwgVydJ4LFoyfo+xroLrGgYIa/jnDV+15dAWtwfH
O2FGhCnqWi4v8c+eK3yIsMyfg8d/0zRGuA9r06eJcukHXvEz7mJD
-----END RSA PRIVATE KEY-----
";

/// Its public key, as GitHub keeps it (SubjectPublicKeyInfo PEM).
pub const APP_PUBLIC_KEY_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnuZu2do5zOVgL9l6ewM0
f3NuBwq88Bjsf8YYK66QxXtQFi5DlavUcqNUKXRb03lOGCvH3rjKCA2KbO72AT3U
JGIAgF/kWs+TsUzxbhgi+NudbPpA25yIlFhswtfXkbI2c4lMFkFvsjfmB0tKS0gQ
zGV7+ePorqs4EGS2Sv6IMZ4Mn8UywLzEqhgqHOn3jHIf6FpxbGGrAlVGoKp0uspA
Kb1F1dt53gKi8REgeWInnnO2fcVUgwGwFUFKkjQGtC/v8+tea6nOExICj+W3+0eL
w4+4Cw9TmbIwtayZERlEGiiDe/CgHdSkB+GjarozCyOhtQq4JJAP3IyZQwr5J3P4
VwIDAQAB
-----END PUBLIC KEY-----
";

/// A 2048-bit RSA key that is not the App's (PKCS#8 PEM, `openssl genpkey`): JWTs it signs are
/// refused.
pub const OTHER_PRIVATE_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDMN49/XzyAJlXH
KWXg6kWdkQvRP6h0+3qek4QKlbG5xBH8aPhXv2NhtVeBnf4bcwf1d0FckgybB7/8
tAVvA8QjHzrbfzD220BSAS45NfsxJRNjN1uhquCOwD5/3bLsmwsLsUDkOKbWVpkc
a8ZorCCQAQCHSeKvIeONQm9i1TRpqMADsbKjyOvjjvwU8J/XqpbzwaAoc90lJA7I
WuAWkPI+JKxvQQaH8i1Jihjv0PAZoRGj9/yTS5fTXaHAEfCpAJ/X2wXknIXvdivW
1f3PIN7cOA5mfgGyhPq+eBmh5R4yKniJB4vKgrdp3UorVl8TwgOOQRqEc/nDYpAh
nb4TpmcLAgMBAAECggEAITcyQFnZqdBSaFvr5arFGu1CGk071ZcnqQ4+TkhtyVTC
Ric+qWsIO5a2vm7Xq1hI5Zx5hZh9s2ONzwjqz1Ux/DJyrMvhx2z+57eocIa+rg4l
OqCA52k3MBDFuZ9yIDjRkZvJfbVXMYqRScWf1luUykdXcinK1IhzDgFNw6oA5eRR
vl/Wgg2qGz529GuJLC77nn0WfJwxMkuRKhaH90U3GpcYDeSI4MgTl5mhdxMWGbtC
PJYAUFhSeo7ZtD0uknUT/nNuiwPBDS10gAnVpugrYnSBLkhUiJEjJ0jzf+r09VVk
5TYar2aY/6+Gf1l05BfiMKnm6DIAsv3fXSVePOAsUQKBgQDpAedeKu7ruhjjfHqm
e1MDD6ienm+CpHSONFKQEdtWm2W4elAyMIOYO50N4rkcgGxj1V64CBpsYOccqm0d
i8sOFtho4oJYqYSebRhLRVdT9JPIu+xULOgl0x9r9a7V0Cu9p2HaL8jfpY/GprR+
IzgKDV6FF65LM3ehCqxe/SOy8QKBgQDgXl7fYk7rWqst0QsHKistNfCQPP4ysjyM
zHpKtzFm8vFrXYdkYfnkEDCryUUwV1U4uFeP37/m3zZOchjBTYOcZ4cibl8ymCy2
PZpy/Fk5YQvBIFgLI6ihXtyLTwrgZeCPa/TICQyd6sm+rD+At78IDlyn8GH+UeTy
BOay9VvBuwKBgH8r69RoiFgeDOF0GhjtLER6cmSIQoJCMd8/TWSWamkdjWofT8/k
zJ30w2ZFvRSCPyZJ2VWGDq3iQaFSnxVGLAA3lcvA/LVZaClzj5Pdd6k5zsL7ViQn
Elk6nma1A8RsxsLPLUgBVphB63PXnqFNpZNO8qyfXSBsKbm6cpOxg59xAoGAMebL
UwOaad4QlHAZ8839LGEC0BHAt6XMscQIrvVvl2YRK7/xjPH9kivHp21sZgQGgEb/
spAhLkgW2/ukZdnHm9GqzI2fvrD5wM6Su2BEt+5NnvaCnnef2cQvaQx7bs051Kw+
FP9uPvEpTa8hsI8tfa00DmX4ZYfxU6KjbMoFTmECgYEAih3/1sRhQpIv9C02emCU
QTGsIas61nGOMZrzAQMhMfO0WCUsnuxnMRD1m9QCcwhcQqUEM95i5/Jj00+mEk2V
hevq8mbx2+CQOAzryKJD2JvqWCIrVkc19xfqv0m52BoSF5RmK8F9iEGIZ+vQ4KK0
bhHOvjU/3n0T1uk5fVQajKQ=
-----END PRIVATE KEY-----
";

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct GithubAppConfig {
    /// The App ID its JWTs must name in `iss`.
    pub app_id: u64,
    /// How long an installation token lives.
    pub token_lifetime: Duration,
    /// Requests per hour of the primary rate limit shown in the `x-ratelimit-*` headers.
    pub rate_limit: u32,
}

impl Default for GithubAppConfig {
    fn default() -> Self {
        Self {
            app_id: 4242,
            token_lifetime: Duration::from_secs(3600),
            rate_limit: 5000,
        }
    }
}

/// One decision the fake recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// `owner/repo`, lowercased.
    pub owner_repo: String,
    pub run_id: u64,
    pub environment: String,
    /// `approved` or `rejected`.
    pub state: String,
    pub comment: Option<String>,
}

/// Which credential a request carried (never the credential itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    None,
    /// Something that looks like a JWT (three dot-separated parts).
    Jwt,
    /// Something that looks like an installation token (`ghs_…`).
    InstallationToken,
    Other,
}

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct AppRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub status: u16,
    pub credential: Credential,
    pub accept: Option<String>,
    pub api_version: Option<String>,
    pub user_agent: Option<String>,
}

struct Issued {
    installation_id: u64,
    expires_at: SystemTime,
}

struct Data {
    /// Installation tokens issued, by token.
    tokens: HashMap<String, Issued>,
    issued: usize,
    /// `(owner/repo lowercased, run id)` → environment → the decision taken, if any.
    runs: HashMap<(String, u64), HashMap<String, Option<Review>>>,
    reviews: Vec<Review>,
    /// `(owner/repo lowercased, sha)` → message.
    commits: HashMap<(String, String), String>,
    /// `(owner/repo lowercased, sha)` → pull requests as GitHub lists them.
    pulls: HashMap<(String, String), Vec<Value>>,
    /// The next answers to replace with this status.
    failures: Vec<StatusCode>,
    /// Decisions taken whose `204` was held back by [`GithubAppFake::hold_reviews`].
    held: usize,
    remaining: u32,
    reset: u64,
    log: Vec<AppRequest>,
}

struct Shared {
    config: GithubAppConfig,
    /// The App's public key, checked with RustCrypto's RSA (the worker signs with `ring`), so
    /// the fake does not check the worker's signatures with the worker's own code.
    public_key: VerifyingKey<rsa::sha2::Sha256>,
    data: Mutex<Data>,
    /// `true` while [`GithubAppFake::hold_reviews`] holds the answers to decisions taken.
    hold: tokio::sync::watch::Sender<bool>,
}

/// A running fake; stops when dropped.
pub struct GithubAppFake {
    shared: Arc<Shared>,
    base: String,
    _server: Server,
}

impl GithubAppFake {
    /// Starts the fake on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound (or the embedded public key does not parse).
    pub async fn start(config: GithubAppConfig) -> Self {
        let (listener, addr) = crate::serve::bind("GitHub App fake").await;
        let shared = Arc::new(Shared {
            public_key: VerifyingKey::new(
                RsaPublicKey::from_public_key_pem(APP_PUBLIC_KEY_PEM)
                    .expect("the fake's public key"),
            ),
            data: Mutex::new(Data {
                tokens: HashMap::new(),
                issued: 0,
                runs: HashMap::new(),
                reviews: Vec::new(),
                commits: HashMap::new(),
                pulls: HashMap::new(),
                failures: Vec::new(),
                held: 0,
                remaining: config.rate_limit,
                reset: epoch_now() + 3600,
                log: Vec::new(),
            }),
            config,
            hold: tokio::sync::watch::Sender::new(false),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        Self {
            shared,
            base: format!("http://{addr}/"),
            _server: Server::start(listener, app),
        }
    }

    /// The API base URL (ending in `/`), as the client's API URL.
    pub fn url(&self) -> String {
        self.base.clone()
    }

    pub fn app_id(&self) -> u64 {
        self.shared.config.app_id
    }

    /// The App's private key, for the client's configuration.
    pub fn private_key_pem(&self) -> &'static str {
        APP_PRIVATE_KEY_PEM
    }

    /// The URL GitHub would give as `deployment_callback_url` for `run_id` of `owner_repo`.
    pub fn callback_url(&self, owner_repo: &str, run_id: u64) -> String {
        format!(
            "{}repos/{owner_repo}/actions/runs/{run_id}/deployment_protection_rule",
            self.base
        )
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `environment` of run `run_id` in `owner_repo` wait for this App's decision.
    pub fn await_deployment(&self, owner_repo: &str, run_id: u64, environment: &str) {
        self.data()
            .runs
            .entry((owner_repo.to_lowercase(), run_id))
            .or_default()
            .insert(environment.to_owned(), None);
    }

    /// The decisions taken, in order.
    pub fn reviews(&self) -> Vec<Review> {
        self.data().reviews.clone()
    }

    /// Commit `sha` of `owner_repo` with `message`.
    pub fn add_commit(&self, owner_repo: &str, sha: &str, message: &str) {
        self.data().commits.insert(
            (owner_repo.to_lowercase(), sha.to_owned()),
            message.to_owned(),
        );
    }

    /// Pull request `number` (`title`, from branch `head_ref`) contains commit `sha`.
    pub fn add_pull(&self, owner_repo: &str, sha: &str, number: u64, title: &str, head_ref: &str) {
        let (owner, repo) = owner_repo.split_once('/').unwrap_or((owner_repo, ""));
        let pull = json!({
            "url": format!("{}repos/{owner_repo}/pulls/{number}", self.base),
            "number": number,
            "state": "open",
            "title": title,
            "head": {"ref": head_ref, "sha": sha, "label": format!("{owner}:{head_ref}")},
            "base": {"ref": "main", "repo": {"name": repo, "full_name": owner_repo}},
        });
        self.data()
            .pulls
            .entry((owner_repo.to_lowercase(), sha.to_owned()))
            .or_default()
            .push(pull);
    }

    /// The next `n` requests, whatever they are, are answered `status` (with GitHub's body for
    /// it; a 403 or 429 as a rate limit with `retry-after: 1` and no request left).
    pub fn fail_next(&self, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.data().failures.extend(std::iter::repeat_n(status, n));
    }

    /// Every installation token issued so far expires now: the next request with one gets `401
    /// Bad credentials`, as when a token outlives its `expires_at` on GitHub's clock.
    pub fn expire_tokens(&self) {
        let now = SystemTime::now();
        for issued in self.data().tokens.values_mut() {
            issued.expires_at = now;
        }
    }

    /// While `on`, a decision GitHub takes (`204`) is recorded at once — it is in
    /// [`reviews`](Self::reviews) and a second decision gets `422` — but the `204` is not sent
    /// until the hold ends (`hold_reviews(false)` or the fake is dropped): the App can be killed
    /// after GitHub took its decision and before it knew. Other answers are not held.
    pub fn hold_reviews(&self, on: bool) {
        self.shared.hold.send_replace(on);
    }

    /// How many decisions had their `204` held back so far.
    pub fn reviews_held(&self) -> usize {
        self.data().held
    }

    /// How many installation tokens were issued.
    pub fn tokens_issued(&self) -> usize {
        self.data().issued
    }

    /// Every request, with its answer.
    pub fn requests(&self) -> Vec<AppRequest> {
        self.data().log.clone()
    }
}

impl Drop for GithubAppFake {
    /// Sends the answers still held, so the server can stop.
    fn drop(&mut self) {
        self.shared.hold.send_replace(false);
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    header(headers, "authorization").and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("token "))
            .map(str::to_owned)
    })
}

fn credential(headers: &HeaderMap) -> Credential {
    match bearer(headers) {
        None if headers.contains_key("authorization") => Credential::Other,
        None => Credential::None,
        Some(t) if t.starts_with("ghs_") => Credential::InstallationToken,
        Some(t) if t.split('.').count() == 3 => Credential::Jwt,
        Some(_) => Credential::Other,
    }
}

enum Route {
    AccessToken(u64),
    Review(String, u64),
    Commit(String, String),
    Pulls(String, String),
    Unknown,
}

fn route(method: &Method, path: &str) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::POST, ["app", "installations", id, "access_tokens"]) => {
            id.parse().map_or(Route::Unknown, Route::AccessToken)
        }
        (
            &Method::POST,
            [
                "repos",
                owner,
                repo,
                "actions",
                "runs",
                run,
                "deployment_protection_rule",
            ],
        ) => run.parse().map_or(Route::Unknown, |run| {
            Route::Review(format!("{owner}/{repo}"), run)
        }),
        (&Method::GET, ["repos", owner, repo, "commits", sha]) => {
            Route::Commit(format!("{owner}/{repo}"), (*sha).to_owned())
        }
        (&Method::GET, ["repos", owner, repo, "commits", sha, "pulls"]) => {
            Route::Pulls(format!("{owner}/{repo}"), (*sha).to_owned())
        }
        _ => Route::Unknown,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, held) = {
        let mut data = shared.data.lock().unwrap_or_else(|p| p.into_inner());
        let mut response = answer(&shared, &mut data, &method, &uri, &headers, &body);
        rate_limit_headers(&shared, &mut data, &mut response);
        data.log.push(AppRequest {
            method: method.to_string(),
            target: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            status: response.status().as_u16(),
            credential: credential(&headers),
            accept: header(&headers, "accept"),
            api_version: header(&headers, "x-github-api-version"),
            user_agent: header(&headers, "user-agent"),
        });
        let held = *shared.hold.borrow()
            && response.status() == StatusCode::NO_CONTENT
            && matches!(route(&method, uri.path()), Route::Review(..));
        if held {
            data.held += 1;
        }
        (response, held)
    };
    if held {
        // The decision is recorded; its answer waits, without the lock, until the hold ends.
        let _ = shared.hold.subscribe().wait_for(|on| !*on).await;
    }
    response
}

fn rate_limit_headers(shared: &Shared, data: &mut Data, response: &mut Response) {
    let now = epoch_now();
    if now >= data.reset {
        data.remaining = shared.config.rate_limit;
        data.reset = now + 3600;
    }
    let limited = matches!(
        response.status(),
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) && response.headers().contains_key("retry-after");
    let remaining = if limited {
        0
    } else {
        data.remaining = data.remaining.saturating_sub(1);
        data.remaining
    };
    let limit = shared.config.rate_limit;
    for (name, value) in [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        (
            "x-ratelimit-used",
            limit.saturating_sub(remaining).to_string(),
        ),
        ("x-ratelimit-reset", data.reset.to_string()),
        ("x-ratelimit-resource", "core".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
}

fn answer(
    shared: &Shared,
    data: &mut Data,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if !data.failures.is_empty() {
        return injected(data.failures.remove(0));
    }
    if header(headers, "user-agent").is_none_or(|u| u.trim().is_empty()) {
        return error(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a \
             User-Agent header",
            "rest/overview/resources-in-the-rest-api#user-agent-required",
        );
    }
    match route(method, uri.path()) {
        Route::AccessToken(installation) => access_token(shared, data, headers, installation),
        other => {
            if installation_token(data, headers).is_none() {
                return error(StatusCode::UNAUTHORIZED, "Bad credentials", "rest");
            }
            match other {
                Route::Review(repo, run) => review(data, &repo, run, body),
                Route::Commit(repo, sha) => commit(data, &repo, &sha),
                Route::Pulls(repo, sha) => pulls(data, &repo, &sha),
                Route::AccessToken(_) | Route::Unknown => {
                    error(StatusCode::NOT_FOUND, "Not Found", "rest")
                }
            }
        }
    }
}

/// A failure a test asked for, with the body GitHub gives it.
fn injected(status: StatusCode) -> Response {
    match status {
        StatusCode::UNAUTHORIZED => error(status, "Bad credentials", "rest"),
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => {
            let mut response = error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you \
                 try again.",
                "rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            response
        }
        _ => error(status, "Server Error", "rest"),
    }
}

/// The JWT check, GitHub's way; `Err` is the 401 message.
fn check_jwt(shared: &Shared, jwt: &str) -> Result<(), &'static str> {
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(UNDECODABLE);
    };
    let decode = |part: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let header = decode(header).ok_or(UNDECODABLE)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(UNDECODABLE);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| UNDECODABLE)?;
    let signed = &jwt[..jwt.rfind('.').unwrap_or(0)];
    let signature = Signature::try_from(signature.as_slice()).map_err(|_| UNDECODABLE)?;
    if shared
        .public_key
        .verify(signed.as_bytes(), &signature)
        .is_err()
    {
        return Err(UNDECODABLE);
    }
    let claims = decode(claims).ok_or(UNDECODABLE)?;
    let app_id = shared.config.app_id.to_string();
    let iss = match claims.get("iss") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err("'Issuer' claim ('iss') must be an Integer"),
    };
    if iss != app_id {
        return Err(UNDECODABLE);
    }
    let (Some(iat), Some(exp)) = (
        claims.get("iat").and_then(Value::as_u64),
        claims.get("exp").and_then(Value::as_u64),
    ) else {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future \
             time at which the assertion expires",
        );
    };
    let now = epoch_now();
    if exp <= now {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future \
             time at which the assertion expires",
        );
    }
    if exp > now + 600 || exp.saturating_sub(iat) > 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future");
    }
    if iat > now + 60 {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        );
    }
    Ok(())
}

fn access_token(
    shared: &Shared,
    data: &mut Data,
    headers: &HeaderMap,
    installation_id: u64,
) -> Response {
    let Some(jwt) = bearer(headers) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
            "rest",
        );
    };
    if let Err(message) = check_jwt(shared, &jwt) {
        return error(StatusCode::UNAUTHORIZED, message, "rest");
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    let expires_at = SystemTime::now() + shared.config.token_lifetime;
    let expires_text = chrono::DateTime::<chrono::Utc>::from(expires_at)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    data.tokens.insert(
        token.clone(),
        Issued {
            installation_id,
            expires_at,
        },
    );
    data.issued += 1;
    (
        StatusCode::CREATED,
        [("content-type", "application/json; charset=utf-8")],
        json!({
            "token": token,
            "expires_at": expires_text,
            "permissions": {"actions": "read", "deployments": "write", "contents": "read",
                            "pull_requests": "read"},
            "repository_selection": "all",
        })
        .to_string(),
    )
        .into_response()
}

/// The installation of a token that GitHub issued and that has not expired (else the caller
/// answers `401 Bad credentials`).
fn installation_token(data: &Data, headers: &HeaderMap) -> Option<u64> {
    let now = SystemTime::now();
    bearer(headers)
        .and_then(|token| data.tokens.get(&token))
        .filter(|issued| issued.expires_at > now)
        .map(|issued| issued.installation_id)
}

fn review(data: &mut Data, repo: &str, run: u64, body: &[u8]) -> Response {
    const DOC: &str =
        "rest/actions/workflow-runs#review-custom-deployment-protection-rules-for-a-workflow-run";
    let Some(environments) = data.runs.get_mut(&(repo.to_lowercase(), run)) else {
        return error(StatusCode::NOT_FOUND, "Not Found", DOC);
    };
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(environment) = body
        .get("environment_name")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"environment_name\" wasn't supplied.",
            DOC,
        );
    };
    let state = body.get("state").and_then(Value::as_str).unwrap_or("");
    if !matches!(state, "approved" | "rejected") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\nFor 'properties/state', it is not one of [\"approved\", \
             \"rejected\"].",
            DOC,
        );
    }
    let comment = match body.get("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(_) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid request.\n\nFor 'properties/comment', it is not a string.",
                DOC,
            );
        }
    };
    match environments.get_mut(environment) {
        Some(slot @ None) => {
            let decision = Review {
                owner_repo: repo.to_lowercase(),
                run_id: run,
                environment: environment.to_owned(),
                state: state.to_owned(),
                comment,
            };
            *slot = Some(decision.clone());
            data.reviews.push(decision);
            StatusCode::NO_CONTENT.into_response()
        }
        // Decided already, or never waiting for this App: nothing is pending (a choice: see the
        // module's documentation).
        Some(Some(_)) | None => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No pending deployment requests to approve or reject",
            DOC,
        ),
    }
}

fn commit(data: &Data, repo: &str, sha: &str) -> Response {
    let Some(message) = data.commits.get(&(repo.to_lowercase(), sha.to_owned())) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("No commit found for SHA: {sha}"),
            "rest/commits/commits#get-a-commit",
        );
    };
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        json!({
            "sha": sha,
            "commit": {
                "message": message,
                "author": {"name": "Mona Octocat", "email": "mona@github.com",
                           "date": "2026-11-29T12:00:00Z"},
            },
            "files": [],
        })
        .to_string(),
    )
        .into_response()
}

fn pulls(data: &Data, repo: &str, sha: &str) -> Response {
    let list = data
        .pulls
        .get(&(repo.to_lowercase(), sha.to_owned()))
        .cloned()
        .unwrap_or_default();
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        Value::Array(list).to_string(),
    )
        .into_response()
}
