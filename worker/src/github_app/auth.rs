//! Authenticating as the App and as its installations.
//!
//! "Generating a JSON Web Token (JWT) for a GitHub App": the JWT is signed with RS256 and carries
//! `iat` (issued at; 60 s in the past against clock drift), `exp` (no more than 10 minutes into
//! the future — GitHub answers 401 "'Expiration time' claim ('exp') is too far in the future"
//! otherwise) and `iss` (the App's client ID or App ID). GitHub issues the App's private key as a
//! PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`); PKCS#8 (`-----BEGIN PRIVATE KEY-----`) is
//! accepted too.
//!
//! "Generating an installation access token for a GitHub App": `POST
//! /app/installations/{installation_id}/access_tokens` with `Authorization: Bearer <JWT>` answers
//! `201 {"token": "ghs_…", "expires_at": "2016-07-11T22:14:10Z", …}`; the token expires after one
//! hour. [`InstallationTokens`] keeps each installation's token until shortly before then.
//!
//! Signing and verifying are `ring`'s (RSASSA-PKCS1-v1_5 with SHA-256); PEM and DER are read by
//! the `pkcs8`/`der` crates. Nothing here parses ASN.1 or does RSA by hand.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pkcs8::der::pem;
use pkcs8::der::zeroize::Zeroizing;
use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use ring::signature::{self, RsaKeyPair};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::{GithubAppError, Reply, classify, exchange, message};

/// How far in the past `iat` is set (GitHub's advice against clock drift).
const IAT_BACKDATE: Duration = Duration::from_secs(60);
/// How long after *now* a JWT expires: under GitHub's 10-minute maximum, so that a clock a little
/// ahead of GitHub's is not answered "'exp' is too far in the future". `exp - iat` is then
/// exactly 10 minutes.
const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// A cached installation token is used until this long before its `expires_at`.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The App's identity: its ID and private key. `Debug` shows the ID only.
pub struct AppCredentials {
    app_id: u64,
    key: RsaKeyPair,
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl AppCredentials {
    /// Reads the App's private key, PKCS#1 (as GitHub issues it) or PKCS#8 PEM.
    ///
    /// # Errors
    /// A description (without key material) when the PEM is not an RSA private key ring accepts
    /// (at least 2048 bits).
    pub fn from_pem(app_id: u64, pem: &str) -> Result<Self, String> {
        let (label, der) = pem::decode_vec(pem.trim().as_bytes())
            .map_err(|_| "the GitHub App private key is not a PEM document".to_owned())?;
        let der = Zeroizing::new(der);
        let key = match label {
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            other => {
                return Err(format!(
                    "the GitHub App private key is a {other:?} PEM, not an RSA private key"
                ));
            }
        }
        .map_err(|e| format!("the GitHub App private key is not usable: {e}"))?;
        Ok(Self { app_id, key })
    }

    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// The public half, as GitHub keeps it to check the App's JWTs (for this module's tests; the
    /// GitHub fake checks signatures with a library of its own).
    #[cfg(test)]
    fn public_key(&self) -> AppPublicKey {
        AppPublicKey(self.key.public().as_ref().to_vec())
    }

    /// A JWT authenticating as the App at `now`: RS256, `iat` = now − 60 s, `exp` = now + 9 min,
    /// `iss` = the App ID.
    ///
    /// # Errors
    /// [`GithubAppError::Other`] when the clock is before 1970 or signing fails.
    pub fn jwt(&self, now: SystemTime) -> Result<SecretString, GithubAppError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| GithubAppError::Other("the clock is before 1970".into()))?;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        let claims = serde_json::json!({
            "iat": now.saturating_sub(IAT_BACKDATE).as_secs(),
            "exp": (now + JWT_LIFETIME).as_secs(),
            "iss": self.app_id,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| GithubAppError::Other("signing the App's JWT failed".into()))?;
        Ok(SecretString::from(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// An App's public key: GitHub's side of the JWT signature check, for this module's tests (the
/// worker never needs it; the GitHub App fake in `hookbridge-tests` checks with RustCrypto's RSA).
#[cfg(test)]
#[derive(Clone, Debug)]
struct AppPublicKey(Vec<u8>);

#[cfg(test)]
impl AppPublicKey {
    /// Reads a `PUBLIC KEY` (SubjectPublicKeyInfo, as GitHub shows it) or `RSA PUBLIC KEY`
    /// (PKCS#1) PEM.
    ///
    /// # Errors
    /// A description when it is neither, or not RSA.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        /// rsaEncryption.
        const RSA: pkcs8::ObjectIdentifier =
            pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
        let (label, der) = pem::decode_vec(pem.trim().as_bytes())
            .map_err(|_| "the public key is not a PEM document".to_owned())?;
        match label {
            "RSA PUBLIC KEY" => Ok(Self(der)),
            "PUBLIC KEY" => {
                let info = pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der.as_slice())
                    .map_err(|e| format!("the public key is not a SubjectPublicKeyInfo: {e}"))?;
                if info.algorithm.oid != RSA {
                    return Err("the public key is not an RSA key".into());
                }
                Ok(Self(info.subject_public_key.raw_bytes().to_vec()))
            }
            other => Err(format!("a {other:?} PEM is not a public key")),
        }
    }

    /// Whether `signature` is this key's RS256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

/// One installation's token and when GitHub said it expires.
struct Cached {
    token: SecretString,
    expires_at: SystemTime,
}

/// Installation tokens by installation, each used until `margin` before it expires. Pure (the
/// clock is an argument), so its rules are tested without a server.
struct TokenCache {
    margin: Duration,
    tokens: HashMap<u64, Cached>,
}

impl TokenCache {
    fn get(&self, installation_id: u64, now: SystemTime) -> Option<SecretString> {
        let cached = self.tokens.get(&installation_id)?;
        let fresh = cached
            .expires_at
            .checked_sub(self.margin)
            .is_some_and(|use_until| now < use_until);
        fresh.then(|| cached.token.clone())
    }

    fn put(&mut self, installation_id: u64, token: SecretString, expires_at: SystemTime) {
        self.tokens
            .insert(installation_id, Cached { token, expires_at });
    }

    fn forget(&mut self, installation_id: u64) {
        self.tokens.remove(&installation_id);
    }
}

/// GitHub's answer to a token request; the token becomes a secret as soon as it is read.
#[derive(Deserialize)]
struct IssuedToken {
    token: String,
    expires_at: String,
}

/// The App's installation tokens: fetched with a JWT when missing or about to expire, cached
/// otherwise. `Debug` shows which installations have one, never a token.
pub struct InstallationTokens {
    http: reqwest::Client,
    api: Url,
    credentials: Arc<AppCredentials>,
    cache: Mutex<TokenCache>,
    /// One fetch at a time, so concurrent callers wait for the one token instead of each
    /// asking GitHub for another.
    fetching: tokio::sync::Mutex<()>,
}

impl fmt::Debug for InstallationTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let installations: Vec<u64> = self.cache().tokens.keys().copied().collect();
        f.debug_struct("InstallationTokens")
            .field("api", &self.api.as_str())
            .field("app_id", &self.credentials.app_id)
            .field("cached_installations", &installations)
            .finish()
    }
}

impl InstallationTokens {
    /// Tokens for `credentials`' App from the API at `api` (a base URL ending in `/`).
    pub fn new(http: reqwest::Client, api: Url, credentials: Arc<AppCredentials>) -> Self {
        Self {
            http,
            api,
            credentials,
            cache: Mutex::new(TokenCache {
                margin: DEFAULT_REFRESH_MARGIN,
                tokens: HashMap::new(),
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Uses a cached token until `margin` before it expires (default 5 minutes), instead.
    #[must_use]
    pub fn with_refresh_margin(self, margin: Duration) -> Self {
        self.cache().margin = margin;
        self
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A token for `installation_id`: the cached one while it is fresh, else a new one.
    ///
    /// # Errors
    /// [`GithubAppError::Refused`] when GitHub refuses the App's JWT (wrong key or App ID) or the
    /// installation; [`GithubAppError::Transient`] when GitHub is unavailable or rate limits.
    pub async fn token(&self, installation_id: u64) -> Result<SecretString, GithubAppError> {
        if let Some(token) = self.cache().get(installation_id, SystemTime::now()) {
            return Ok(token);
        }
        let _fetching = self.fetching.lock().await;
        if let Some(token) = self.cache().get(installation_id, SystemTime::now()) {
            return Ok(token);
        }
        let (token, expires_at) = self.fetch(installation_id).await?;
        self.cache().put(installation_id, token.clone(), expires_at);
        Ok(token)
    }

    /// Drops `installation_id`'s token (GitHub answered 401 to it): the next
    /// [`token`](Self::token) fetches a new one.
    pub fn forget(&self, installation_id: u64) {
        self.cache().forget(installation_id);
    }

    async fn fetch(
        &self,
        installation_id: u64,
    ) -> Result<(SecretString, SystemTime), GithubAppError> {
        let url = self
            .api
            .join(&format!(
                "app/installations/{installation_id}/access_tokens"
            ))
            .map_err(|_| GithubAppError::Other("bad GitHub API URL".into()))?;
        let jwt = self.credentials.jwt(SystemTime::now())?;
        let Reply {
            status,
            headers,
            body,
        } = exchange(&self.http, &jwt, reqwest::Method::POST, url, None).await?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(GithubAppError::Refused(format!(
                "the App's JWT was refused: {}",
                message(&body)
            )));
        }
        if status == StatusCode::NOT_FOUND {
            return Err(GithubAppError::Refused(format!(
                "installation {installation_id} not found for this App"
            )));
        }
        if !status.is_success() {
            return Err(classify(status, &headers, &body));
        }
        let issued: IssuedToken = serde_json::from_str(&body)
            .map_err(|_| GithubAppError::Other("unexpected installation token answer".into()))?;
        let token = SecretString::from(issued.token);
        let expires_at = chrono::DateTime::parse_from_rfc3339(&issued.expires_at)
            .ok()
            .and_then(|at| u64::try_from(at.timestamp()).ok())
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
            .ok_or_else(|| {
                GithubAppError::Other("unexpected installation token expires_at".into())
            })?;
        Ok((token, expires_at))
    }
}

/// `Bearer <secret>` as a header value marked sensitive (kept out of reqwest's and hyper's debug
/// output).
pub(crate) fn bearer(secret: &SecretString) -> Result<HeaderValue, GithubAppError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret()))
        .map_err(|_| GithubAppError::Other("a token is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A 2048-bit key made for these tests with `openssl genrsa -traditional` (PKCS#1, as GitHub
    /// issues them).
    pub(crate) const KEY: &str = "\
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
    /// Another 2048-bit key, PKCS#8 (`openssl genpkey`), and its public key.
    const PKCS8_KEY: &str = "\
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
    const PKCS8_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAzDePf188gCZVxyll4OpF
nZEL0T+odPt6npOECpWxucQR/Gj4V79jYbVXgZ3+G3MH9XdBXJIMmwe//LQFbwPE
Ix86238w9ttAUgEuOTX7MSUTYzdboargjsA+f92y7JsLC7FA5Dim1laZHGvGaKwg
kAEAh0niryHjjUJvYtU0aajAA7Gyo8jr4478FPCf16qW88GgKHPdJSQOyFrgFpDy
PiSsb0EGh/ItSYoY79DwGaERo/f8k0uX012hwBHwqQCf19sF5JyF73Yr1tX9zyDe
3DgOZn4BsoT6vngZoeUeMip4iQeLyoK3ad1KK1ZfE8IDjkEahHP5w2KQIZ2+E6Zn
CwIDAQAB
-----END PUBLIC KEY-----
";

    fn credentials() -> AppCredentials {
        AppCredentials::from_pem(4242, KEY).expect("test key")
    }

    fn decode(part: &str) -> serde_json::Value {
        let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn jwt_claims_and_signature() {
        let credentials = credentials();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let jwt = credentials.jwt(now).expect("jwt");
        let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(decode(parts[0])["alg"], "RS256");
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], 4242);
        assert_eq!(claims["iat"], 1_800_000_000 - 60);
        assert_eq!(claims["exp"], 1_800_000_000 + 540);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("signature");
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(
            credentials
                .public_key()
                .verify(signed.as_bytes(), &signature)
        );
        assert!(
            !credentials
                .public_key()
                .verify(b"something else", &signature)
        );
    }

    #[test]
    fn pkcs8_and_spki_are_read_too() {
        let pkcs8 = PKCS8_KEY;
        let credentials = AppCredentials::from_pem(1, pkcs8).expect("pkcs8");
        let public = AppPublicKey::from_pem(PKCS8_PUBLIC).expect("spki");
        let jwt = credentials.jwt(SystemTime::now()).expect("jwt");
        let (signed, signature) = jwt.expose_secret().rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("signature");
        assert!(public.verify(signed.as_bytes(), &signature));
        assert!(
            !credentials_public_matches(&public),
            "a different key does not verify"
        );
    }

    fn credentials_public_matches(public: &AppPublicKey) -> bool {
        let jwt = credentials().jwt(SystemTime::now()).expect("jwt");
        let (signed, signature) = jwt.expose_secret().rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("signature");
        public.verify(signed.as_bytes(), &signature)
    }

    #[test]
    fn not_a_private_key_is_an_error_without_key_material() {
        let error = AppCredentials::from_pem(1, PKCS8_PUBLIC).expect_err("a public key");
        assert!(error.contains("PUBLIC KEY"), "{error}");
        assert!(AppCredentials::from_pem(1, "not a pem").is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let credentials = credentials();
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("4242") && shown.contains("redacted"),
            "{shown}"
        );
        let jwt = credentials.jwt(SystemTime::now()).expect("jwt");
        let shown = format!("{jwt:?}");
        assert!(!shown.contains(jwt.expose_secret()), "{shown}");
        let header = bearer(&jwt).expect("header");
        assert!(header.is_sensitive());
        let tokens = InstallationTokens::new(
            reqwest::Client::new(),
            Url::parse("https://api.github.com/").expect("url"),
            Arc::new(credentials),
        );
        tokens.cache().put(
            7,
            SecretString::from("ghs_secret".to_owned()),
            SystemTime::now() + Duration::from_secs(3600),
        );
        let shown = format!("{tokens:?}");
        assert!(
            !shown.contains("ghs_secret") && shown.contains('7'),
            "{shown}"
        );
    }

    #[test]
    fn cache_reuses_until_the_margin_before_expiry() {
        let mut cache = TokenCache {
            margin: DEFAULT_REFRESH_MARGIN,
            tokens: HashMap::new(),
        };
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(cache.get(7, t0).is_none());
        cache.put(
            7,
            SecretString::from("ghs_one".to_owned()),
            t0 + Duration::from_secs(3600),
        );
        let reused = cache
            .get(7, t0 + Duration::from_secs(54 * 60))
            .expect("fresh");
        assert_eq!(reused.expose_secret(), "ghs_one");
        assert!(cache.get(8, t0).is_none(), "per installation");
        assert!(
            cache.get(7, t0 + Duration::from_secs(55 * 60)).is_none(),
            "5 minutes before expiry it is stale"
        );
        cache.forget(7);
        assert!(cache.get(7, t0).is_none());
    }

    #[test]
    fn a_token_shorter_than_the_margin_is_never_reused() {
        let mut cache = TokenCache {
            margin: DEFAULT_REFRESH_MARGIN,
            tokens: HashMap::new(),
        };
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        cache.put(
            7,
            SecretString::from("ghs_short".to_owned()),
            t0 + Duration::from_secs(60),
        );
        assert!(cache.get(7, t0).is_none());
    }
}
