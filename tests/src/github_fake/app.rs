//! The GitHub fake as seen by a GitHub App ([`super::GithubConfig::app_id`]): the App's JWT
//! (RS256, checked against [`crate::github_app_fake::APP_PUBLIC_KEY_PEM`], `iss` the App ID,
//! `exp` in the future and at most 10 minutes away) on `GET /app` ("Get the authenticated app":
//! `slug`), `GET /repos/{owner}/{repo}/installation` ("Get a repository installation for the
//! authenticated app": `id`; 404 for a repository the App is not installed on) and `POST
//! /app/installations/{id}/access_tokens` (`201`, a `ghs_…` token for an hour); an installation
//! token then works on the repository routes, and the App's writes show as `<slug>[bot]`.

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Value, json};

use super::issues::json_answer;
use super::{Data, epoch_now, error};

/// The App's slug (its login is `hookbridge-app[bot]`).
pub const APP_SLUG: &str = "hookbridge-app";
/// The installation every repository with issues has.
pub const INSTALLATION_ID: u64 = 4242;

const UNDECODABLE: &str = "A JSON web token could not be decoded";

fn public_key() -> &'static VerifyingKey<rsa::sha2::Sha256> {
    static KEY: OnceLock<VerifyingKey<rsa::sha2::Sha256>> = OnceLock::new();
    KEY.get_or_init(|| {
        VerifyingKey::new(
            RsaPublicKey::from_public_key_pem(crate::github_app_fake::APP_PUBLIC_KEY_PEM)
                .expect("the App's public key"),
        )
    })
}

/// Checks a JWT as GitHub does; `Err` is the 401 message.
pub(super) fn check_jwt(app_id: u64, jwt: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(UNDECODABLE);
    };
    let decode = |part: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    if decode(header)
        .and_then(|h| h["alg"].as_str().map(str::to_owned))
        .as_deref()
        != Some("RS256")
    {
        return Err(UNDECODABLE);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|s| Signature::try_from(s.as_slice()).ok())
        .ok_or(UNDECODABLE)?;
    let signed = &jwt[..jwt.rfind('.').unwrap_or(0)];
    public_key()
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| UNDECODABLE)?;
    let claims = decode(claims).ok_or(UNDECODABLE)?;
    let iss = match &claims["iss"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err("'Issuer' claim ('iss') must be an Integer"),
    };
    let now = epoch_now();
    match (claims["iat"].as_u64(), claims["exp"].as_u64()) {
        _ if iss != app_id.to_string() => Err(UNDECODABLE),
        (Some(iat), Some(exp)) if exp > now && exp <= now + 600 && iat <= now + 60 => Ok(()),
        _ => Err("'Expiration time' claim ('exp') is too far in the future"),
    }
}

/// `GET /app`.
pub(super) fn get_app(app_id: u64) -> Response {
    json_answer(
        StatusCode::OK,
        &json!({"id": app_id, "slug": APP_SLUG, "name": "hookbridge App",
                "owner": {"login": "octo", "type": "Organization"}}),
    )
}

/// `GET /repos/{owner}/{repo}/installation`.
pub(super) fn installation(data: &Data, app_id: u64, repo: &str) -> Response {
    if !data.issues.contains_key(&repo.to_lowercase()) {
        return error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "rest/apps/apps#get-a-repository-installation-for-the-authenticated-app",
        );
    }
    json_answer(
        StatusCode::OK,
        &json!({"id": INSTALLATION_ID, "app_id": app_id, "app_slug": APP_SLUG,
                "target_type": "Organization", "repository_selection": "selected"}),
    )
}

/// `POST /app/installations/{id}/access_tokens`.
pub(super) fn access_token(data: &mut Data, installation: u64) -> Response {
    if installation != INSTALLATION_ID {
        return error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "rest/apps/apps#create-an-installation-access-token-for-an-app",
        );
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    data.installation_tokens.push(token.clone());
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    json_answer(
        StatusCode::CREATED,
        &json!({"token": token, "expires_at": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "permissions": {"issues": "write", "metadata": "read"},
                "repository_selection": "selected"}),
    )
}

/// The App's login on GitHub: the sender of its writes.
pub(super) fn bot_login() -> String {
    format!("{APP_SLUG}[bot]")
}
