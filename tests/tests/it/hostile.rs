//! Hostile requests: a corpus of malformed, oversized, mis-signed and mistyped requests against the
//! real `hookbridge-ingest` (GitHub and Jira routes), each named, each written byte for byte on a
//! raw TCP connection (so that control characters, broken framing and odd methods reach the server
//! as sent), each with the answer the README's "HTTP contract (ingest)" gives: 400 / 401 / 405 /
//! 413 / 415 with a JSON `{"error","detail"}` body that never echoes a signature — never a 5xx.
//! Requests that the HTTP/1 parser itself refuses before any route sees them (a header with a
//! control character, too many or too long headers, an unparsable `Content-Length`) get a 4xx
//! from the server library, which is not the contract's JSON; those cases say so.
//!
//! After the corpus the ingest must still be healthy: `GET /health` is 200 and a signed delivery
//! is still 202. A second table sends *validly signed* but broken payloads to `hookbridge run`
//! (ingest and worker in one process): each is refused 400 or, when accepted, ends dead-lettered or
//! ignored by the worker, which keeps running and still processes a good delivery afterwards.

use std::time::{Duration, Instant};

use hookbridge_tests::github::{GithubIssue, delivery_id, signature};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, embedded_queue_contents, http};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "gh-hostile-s3cret-5e1d";
const JIRA_SECRET: &str = "jira-hostile-s3cret-0b7a";

/// `sha256=<hex>` of `body` under the GitHub secret.
fn sig(body: &[u8]) -> String {
    signature(SECRET, body)
}

/// The hex digits of a signature, without `sha256=`.
fn hex_of(signature: &str) -> String {
    signature.trim_start_matches("sha256=").to_owned()
}

/// How the body is framed on the wire.
#[derive(Clone, Debug)]
enum Framing {
    /// `Content-Length: <body length>`.
    Length,
    /// No length at all (and no chunking).
    NoLength,
    /// This `Content-Length` value as written, and the body as it is.
    Declared(&'static str),
    /// `Transfer-Encoding: chunked`, the body cut in chunks of this size, then `0\r\n\r\n`.
    Chunked(usize),
    /// These exact bytes after the head (a hand-made chunked stream), with `Transfer-Encoding:
    /// chunked`.
    ChunkedRaw(&'static [u8]),
    /// The whole length declared, only this many bytes sent, then the write half is closed.
    Truncated(usize),
}

/// One request as sent: request line, headers (raw bytes), body and its framing.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    target: Vec<u8>,
    version: &'static str,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Header lines written as they are, after the headers.
    raw_lines: Vec<Vec<u8>>,
    body: Vec<u8>,
    framing: Framing,
}

impl Req {
    fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            target: path.as_bytes().to_vec(),
            version: "HTTP/1.1",
            headers: Vec::new(),
            raw_lines: Vec::new(),
            body: body.into(),
            framing: Framing::Length,
        }
    }

    /// A GitHub `issues` delivery of `body`, correctly signed with the GitHub secret.
    fn github(body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        let signature = sig(&body);
        Self::post("/webhooks/github", body)
            .header("Content-Type", "application/json")
            .header("X-GitHub-Event", "issues")
            .header("X-GitHub-Delivery", &delivery_id())
            .header("X-Hub-Signature-256", &signature)
    }

    /// A Jira delivery of `body`, correctly signed with the Jira secret.
    fn jira(body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        let signature = signature(JIRA_SECRET, &body);
        Self::post("/webhooks/jira", body)
            .header("Content-Type", "application/json; charset=UTF-8")
            .header(
                "X-Atlassian-Webhook-Identifier",
                &format!("jira-{}", delivery_id()),
            )
            .header("X-Hub-Signature", &signature)
    }

    /// Sets (replaces) a header.
    fn header(self, name: &str, value: &str) -> Self {
        self.header_bytes(name.as_bytes(), value.as_bytes())
    }

    fn header_bytes(mut self, name: &[u8], value: &[u8]) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_vec(), value.to_vec()));
        self
    }

    /// Adds a header, keeping any of the same name.
    fn also(mut self, name: &str, value: &[u8]) -> Self {
        self.headers
            .push((name.as_bytes().to_vec(), value.to_vec()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
        self
    }

    /// Adds a header line exactly as given.
    fn line(mut self, line: &[u8]) -> Self {
        self.raw_lines.push(line.to_vec());
        self
    }

    fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }

    fn target(mut self, target: &[u8]) -> Self {
        self.target = target.to_vec();
        self
    }

    fn version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    /// The value of the first header `name`, if any.
    fn get(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// Every signature this request carries (to check that no answer echoes one).
    fn signatures(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| {
                let n = String::from_utf8_lossy(n).to_ascii_lowercase();
                n.contains("signature")
            })
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
            .filter(|v| v.len() >= 16)
            .collect()
    }

    /// The bytes written to the socket: everything but, for [`Framing::Truncated`], the part of
    /// the body never sent.
    fn wire(&self, host: &str) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(
            format!(" {}\r\nHost: {host}\r\nConnection: close\r\n", self.version).as_bytes(),
        );
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        for line in &self.raw_lines {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        let body: Vec<u8> = match &self.framing {
            Framing::Length => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n", self.body.len()).as_bytes(),
                );
                self.body.clone()
            }
            Framing::NoLength => self.body.clone(),
            Framing::Declared(value) => {
                out.extend_from_slice(format!("Content-Length: {value}\r\n").as_bytes());
                self.body.clone()
            }
            Framing::Chunked(size) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                let mut framed = Vec::new();
                for chunk in self.body.chunks((*size).max(1)) {
                    framed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    framed.extend_from_slice(chunk);
                    framed.extend_from_slice(b"\r\n");
                }
                framed.extend_from_slice(b"0\r\n\r\n");
                framed
            }
            Framing::ChunkedRaw(raw) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                raw.to_vec()
            }
            Framing::Truncated(sent) => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n", self.body.len()).as_bytes(),
                );
                self.body[..*sent].to_vec()
            }
        };
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }
}

/// One answer read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn text(&self) -> String {
        format!(
            "{}\r\n\r\n{}",
            self.head,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// The end of the head and the body length of a (possibly partial) answer, once complete.
fn complete(buffer: &[u8], head_only: bool) -> Option<(usize, usize)> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")?;
    if head_only {
        return Some((end, 0));
    }
    let head = String::from_utf8_lossy(&buffer[..end]);
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    (buffer.len() >= end + 4 + length).then_some((end, length))
}

/// Sends `req` on a fresh connection and reads one answer; `None` when the server closed the
/// connection without answering.
async fn exchange(address: &str, req: &Req) -> Option<Answer> {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let wire = req.wire(address);
    // The server may answer (and close) before reading everything, e.g. a 413 from the length.
    let _ = stream.write_all(&wire).await;
    if matches!(req.framing, Framing::Truncated(_)) {
        let _ = stream.shutdown().await;
    }
    let head_only = req.method == "HEAD";
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let read = async {
        loop {
            if let Some((end, length)) = complete(&buffer, head_only) {
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("a status code");
                let body = buffer[end + 4..end + 4 + length].to_vec();
                return Some(Answer { status, head, body });
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    assert!(
                        buffer.is_empty(),
                        "connection closed in the middle of an answer: {:?}",
                        String::from_utf8_lossy(&buffer)
                    );
                    return None;
                }
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no answer in time: {:?}",
                String::from_utf8_lossy(&wire[..wire.len().min(300)])
            )
        })
}

/// The answer a case must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This status, and (for an error) the contract's JSON `{"error","detail"}`.
    Status(u16),
    /// Refused by the HTTP/1 parser before any route, with this status (400, or 431 for a head
    /// over its limits): the server library's answer, not the contract's JSON.
    Protocol(u16),
}

struct Case {
    name: &'static str,
    req: Req,
    expect: Expect,
}

fn case(name: &'static str, req: Req, expect: Expect) -> Case {
    Case { name, req, expect }
}

/// `depth` nested openings of `open` (e.g. 100,000 `[`), unclosed.
fn nested(open: &str, depth: usize) -> Vec<u8> {
    open.repeat(depth).into_bytes()
}

/// A valid `issues.opened` payload of issue `number`.
fn opened(number: u64) -> Vec<u8> {
    serde_json::to_vec(&GithubIssue::new("octo-org/hostile", number).event("opened")).expect("JSON")
}

/// A valid Jira `jira:issue_updated` payload about a non-CR issue.
fn jira_valid() -> Vec<u8> {
    serde_json::to_vec(&hookbridge_tests::github::jira_issue_updated(
        "OPS-7", "Done",
    ))
    .expect("JSON")
}

fn form(body: &str) -> Req {
    Req::github(body.as_bytes()).header("Content-Type", "application/x-www-form-urlencoded")
}

/// The corpus. Every request is otherwise well-formed and correctly signed unless its name says
/// otherwise, so that each case exercises exactly one fault.
#[allow(clippy::too_many_lines)]
fn corpus() -> Vec<Case> {
    use Expect::{Protocol, Status};
    let good = opened(1);
    let good_sig = sig(&good);
    let good_hex = hex_of(&good_sig);
    let mut cases = vec![
        // ---- Bodies that are not UTF-8 / not JSON / not an object (signed: 400).
        case(
            "invalid UTF-8 in a string",
            Req::github(&b"{\"action\":\"op\xff\xfeened\"}"[..]),
            Status(400),
        ),
        case(
            "lone UTF-8 continuation byte",
            Req::github(&b"\x80"[..]),
            Status(400),
        ),
        case(
            "overlong UTF-8 encoding of /",
            Req::github(&b"{\"a\":\"\xc0\xaf\"}"[..]),
            Status(400),
        ),
        case(
            "UTF-16LE body with BOM",
            Req::github(&b"\xff\xfe{\x00}\x00"[..]),
            Status(400),
        ),
        case(
            "UTF-8 BOM before the JSON",
            Req::github(&b"\xef\xbb\xbf{}"[..]),
            Status(400),
        ),
        case(
            "100,000 nested [",
            Req::github(nested("[", 100_000)),
            Status(400),
        ),
        case(
            "100,000 nested [ closed",
            Req::github([nested("[", 100_000), nested("]", 100_000)].concat()),
            Status(400),
        ),
        case(
            "100,000 nested {\"a\": in an object",
            Req::github(nested("{\"a\":", 100_000)),
            Status(400),
        ),
        case(
            // Valid JSON: the ingest passes it on (the worker's side is in the second test).
            "100,000-deep object, closed (valid JSON: accepted)",
            Req::github(
                [
                    nested("{\"a\":", 100_000),
                    b"1".to_vec(),
                    nested("}", 100_000),
                ]
                .concat(),
            ),
            Status(202),
        ),
        case("empty body", Req::github(Vec::new()), Status(400)),
        case(
            "whitespace only",
            Req::github(&b" \r\n\t "[..]),
            Status(400),
        ),
        case(
            "JSON array",
            Req::github(&b"[{\"action\":\"opened\"}]"[..]),
            Status(400),
        ),
        case("JSON string", Req::github(&b"\"opened\""[..]), Status(400)),
        case("JSON number", Req::github(&b"42"[..]), Status(400)),
        case("JSON null", Req::github(&b"null"[..]), Status(400)),
        case("JSON true", Req::github(&b"true"[..]), Status(400)),
        case(
            "truncated JSON",
            Req::github(&b"{\"action\":\"opened\""[..]),
            Status(400),
        ),
        case(
            "trailing garbage",
            Req::github(&b"{\"action\":\"opened\"} x"[..]),
            Status(400),
        ),
        case("two JSON documents", Req::github(&b"{}{}"[..]), Status(400)),
        case(
            "NUL byte after the JSON",
            Req::github(&b"{\"action\":\"opened\"}\x00"[..]),
            Status(400),
        ),
        case(
            "raw NUL inside a string",
            Req::github(&b"{\"action\":\"op\x00ened\"}"[..]),
            Status(400),
        ),
        case(
            "raw control character inside a string",
            Req::github(&b"{\"action\":\"op\x01\x1bened\"}"[..]),
            Status(400),
        ),
        case(
            "lone surrogate escape in action",
            Req::github(&br#"{"action":"\ud800"}"#[..]),
            Status(400),
        ),
        case(
            "action is a number",
            Req::github(&br#"{"action":5}"#[..]),
            Status(400),
        ),
        case(
            "action is an object",
            Req::github(&br#"{"action":{"x":1}}"#[..]),
            Status(400),
        ),
        case(
            "action is an array",
            Req::github(&br#"{"action":["opened"]}"#[..]),
            Status(400),
        ),
        case(
            "action given twice",
            Req::github(&br#"{"action":"opened","action":"closed"}"#[..]),
            Status(400),
        ),
        case(
            // JSON's grammar has no range: accepted (the worker's side is in the second test).
            "number beyond f64 (valid JSON: accepted)",
            Req::github(&br#"{"action":"opened","n":1e999}"#[..]),
            Status(202),
        ),
        case(
            "single-quoted JSON",
            Req::github(&b"{'action':'opened'}"[..]),
            Status(400),
        ),
        case(
            "JSON with a comment",
            Req::github(&b"{/* x */\"action\":\"opened\"}"[..]),
            Status(400),
        ),
        // ---- Form bodies (GitHub allows application/x-www-form-urlencoded with payload=).
        case(
            "form without payload=",
            form("payload_missing=1"),
            Status(400),
        ),
        case("empty form", form(""), Status(400)),
        case("form payload= not JSON", form("payload=hello"), Status(400)),
        case(
            "form payload= a JSON array",
            form("payload=%5B%5D"),
            Status(400),
        ),
        case(
            "form payload= invalid percent-encoding",
            form("payload=%ZZ%"),
            Status(400),
        ),
        case(
            "form payload= invalid UTF-8",
            form("payload=%FF%FE"),
            Status(400),
        ),
        case(
            "form payload= 100,000 nested [",
            form(&format!("payload={}", "%5B".repeat(100_000))),
            Status(400),
        ),
        case(
            "form payload= with action a number",
            form("payload=%7B%22action%22%3A5%7D"),
            Status(400),
        ),
        // ---- Content types (checked first: 415 even unsigned).
        case(
            "text/plain",
            Req::github(good.clone()).header("Content-Type", "text/plain"),
            Status(415),
        ),
        case(
            "no content type",
            Req::github(good.clone()).without("Content-Type"),
            Status(415),
        ),
        case(
            "empty content type",
            Req::github(good.clone()).header("Content-Type", ""),
            Status(415),
        ),
        case(
            "application/json-patch+json",
            Req::github(good.clone()).header("Content-Type", "application/json-patch+json"),
            Status(415),
        ),
        case(
            "application/jsonx",
            Req::github(good.clone()).header("Content-Type", "application/jsonx"),
            Status(415),
        ),
        case(
            "multipart/form-data",
            Req::github(good.clone()).header("Content-Type", "multipart/form-data; boundary=x"),
            Status(415),
        ),
        case(
            "non-UTF-8 bytes in the content type",
            Req::github(good.clone()).header_bytes(b"Content-Type", b"application/json\xff"),
            Status(415),
        ),
        case(
            "text/plain and unsigned",
            Req::github(good.clone())
                .header("Content-Type", "text/plain")
                .without("X-Hub-Signature-256"),
            Status(415),
        ),
        case(
            "a form on the Jira route",
            Req::jira(&b"payload=%7B%7D"[..])
                .header("Content-Type", "application/x-www-form-urlencoded"),
            Status(415),
        ),
        case(
            "control character in the content type",
            Req::github(good.clone()).header_bytes(b"Content-Type", b"application/json\x01"),
            Protocol(400),
        ),
        // ---- Signature variants (401, except the harmless ones noted).
        case(
            "no signature",
            Req::github(good.clone()).without("X-Hub-Signature-256"),
            Status(401),
        ),
        case(
            "empty signature",
            Req::github(good.clone()).header("X-Hub-Signature-256", ""),
            Status(401),
        ),
        case(
            "sha256= and nothing",
            Req::github(good.clone()).header("X-Hub-Signature-256", "sha256="),
            Status(401),
        ),
        case(
            "SHA256= in capitals",
            Req::github(good.clone()).header("X-Hub-Signature-256", &format!("SHA256={good_hex}")),
            Status(401),
        ),
        case(
            "sha1= of 40 hex digits",
            Req::github(good.clone())
                .header("X-Hub-Signature-256", &format!("sha1={}", &good_hex[..40])),
            Status(401),
        ),
        case(
            "63 hex digits",
            Req::github(good.clone()).header(
                "X-Hub-Signature-256",
                &format!("sha256={}", &good_hex[..63]),
            ),
            Status(401),
        ),
        case(
            "65 hex digits",
            Req::github(good.clone()).header("X-Hub-Signature-256", &format!("sha256={good_hex}0")),
            Status(401),
        ),
        case(
            "62 hex digits",
            Req::github(good.clone()).header(
                "X-Hub-Signature-256",
                &format!("sha256={}", &good_hex[..62]),
            ),
            Status(401),
        ),
        case(
            "non-hex digit",
            Req::github(good.clone()).header(
                "X-Hub-Signature-256",
                &format!("sha256=g{}", &good_hex[1..]),
            ),
            Status(401),
        ),
        case(
            "bare hex without sha256=",
            Req::github(good.clone()).header("X-Hub-Signature-256", &good_hex),
            Status(401),
        ),
        case(
            "space after sha256=",
            Req::github(good.clone()).header("X-Hub-Signature-256", &format!("sha256= {good_hex}")),
            Status(401),
        ),
        case(
            "tab inside the hex",
            Req::github(good.clone()).header(
                "X-Hub-Signature-256",
                &format!("sha256={}\t{}", &good_hex[..32], &good_hex[32..]),
            ),
            Status(401),
        ),
        case(
            "two values in one header",
            Req::github(good.clone())
                .header("X-Hub-Signature-256", &format!("{good_sig}, {good_sig}")),
            Status(401),
        ),
        case(
            "10 KB of hex",
            Req::github(good.clone()).header(
                "X-Hub-Signature-256",
                &format!("sha256={}", "ab".repeat(5_000)),
            ),
            Status(401),
        ),
        case(
            "wrong secret",
            Req::github(good.clone()).header(
                "X-Hub-Signature-256",
                &signature("not-the-secret-at-all", &good),
            ),
            Status(401),
        ),
        case(
            "the Jira secret on the GitHub route",
            Req::github(good.clone()).header("X-Hub-Signature-256", &signature(JIRA_SECRET, &good)),
            Status(401),
        ),
        case(
            "X-Hub-Signature (not -256) on the GitHub route",
            Req::github(good.clone())
                .without("X-Hub-Signature-256")
                .header("X-Hub-Signature", &good_sig),
            Status(401),
        ),
        case(
            "two signature headers, wrong first",
            Req::github(good.clone())
                .without("X-Hub-Signature-256")
                .also(
                    "X-Hub-Signature-256",
                    signature("not-the-secret-at-all", &good).as_bytes(),
                )
                .also("X-Hub-Signature-256", good_sig.as_bytes()),
            Status(401),
        ),
        // Ambiguous, but harmless: the first header decides (a forger cannot make it match).
        case(
            "two signature headers, right first (the first decides)",
            Req::github(good.clone())
                .without("X-Hub-Signature-256")
                .also("X-Hub-Signature-256", good_sig.as_bytes())
                .also(
                    "X-Hub-Signature-256",
                    signature("not-the-secret-at-all", &good).as_bytes(),
                ),
            Status(202),
        ),
        case(
            "signature of the body minus its last byte",
            Req::github(good.clone()).header("X-Hub-Signature-256", &sig(&good[..good.len() - 1])),
            Status(401),
        ),
        case(
            "NUL byte in the signature header",
            Req::github(good.clone()).header_bytes(
                b"X-Hub-Signature-256",
                format!("sha256={}\0", &good_hex).as_bytes(),
            ),
            Protocol(400),
        ),
        case(
            "non-UTF-8 byte in the signature header",
            Req::github(good.clone()).header_bytes(
                b"X-Hub-Signature-256",
                format!("sha256={}\u{e9}", &good_hex).as_bytes(),
            ),
            Status(401),
        ),
        // ---- Provider headers (after the signature: 400).
        case(
            "no X-GitHub-Event",
            Req::github(good.clone()).without("X-GitHub-Event"),
            Status(400),
        ),
        case(
            "empty X-GitHub-Event",
            Req::github(good.clone()).header("X-GitHub-Event", ""),
            Status(400),
        ),
        case(
            "non-ASCII X-GitHub-Event",
            Req::github(good.clone()).header("X-GitHub-Event", "issües"),
            Status(400),
        ),
        case(
            "no X-GitHub-Delivery",
            Req::github(good.clone()).without("X-GitHub-Delivery"),
            Status(400),
        ),
        case(
            "path traversal in X-GitHub-Delivery",
            Req::github(good.clone()).header("X-GitHub-Delivery", "../../etc/passwd"),
            Status(400),
        ),
        case(
            "200-character X-GitHub-Delivery",
            Req::github(good.clone()).header("X-GitHub-Delivery", &"a".repeat(200)),
            Status(400),
        ),
        case(
            "spaces and quotes in X-GitHub-Delivery",
            Req::github(good.clone()).header("X-GitHub-Delivery", "a b\"c"),
            Status(400),
        ),
        case(
            "control character in X-GitHub-Event",
            Req::github(good.clone()).header_bytes(b"X-GitHub-Event", b"iss\x01ues"),
            Protocol(400),
        ),
        case(
            "escape sequence in X-GitHub-Delivery",
            Req::github(good.clone()).header_bytes(b"X-GitHub-Delivery", b"\x1b[31mred"),
            Protocol(400),
        ),
        // ---- Huge and broken headers (the HTTP parser's limits).
        case(
            "200 headers",
            (0..200).fold(Req::github(good.clone()), |r, i| {
                r.also(&format!("X-Junk-{i}"), b"x")
            }),
            Protocol(431),
        ),
        case(
            // Under the HTTP server's limit on the request head (about 128 KiB): accepted.
            "one 100 KB header (accepted)",
            Req::github(good.clone()).header("X-Junk", &"x".repeat(100_000)),
            Status(202),
        ),
        case(
            "one 1 MB header",
            Req::github(good.clone()).header("X-Junk", &"x".repeat(1_000_000)),
            Protocol(431),
        ),
        case(
            "80 headers of 2 KB",
            (0..80).fold(Req::github(good.clone()), |r, i| {
                r.also(&format!("X-Junk-{i}"), "y".repeat(2_000).as_bytes())
            }),
            Protocol(431),
        ),
        case(
            "header name with a space",
            Req::github(good.clone()).header_bytes(b"X Junk", b"1"),
            Protocol(400),
        ),
        case(
            "header line without a colon",
            Req::github(good.clone()).line(b"X-Junk-No-Colon"),
            Protocol(400),
        ),
        case(
            "obsolete line folding",
            Req::github(good.clone()).header_bytes(b"X-Folded", b"a\r\n b"),
            Protocol(400),
        ),
        // ---- Framing and lengths.
        case(
            "Content-Length beyond u64",
            Req::github(good.clone()).framing(Framing::Declared("99999999999999999999999")),
            Protocol(400),
        ),
        case(
            "negative Content-Length",
            Req::github(good.clone()).framing(Framing::Declared("-1")),
            Protocol(400),
        ),
        case(
            "Content-Length not a number",
            Req::github(good.clone()).framing(Framing::Declared("12abc")),
            Protocol(400),
        ),
        case(
            "Content-Length of 26 MiB, never sent",
            Req::github(good.clone()).framing(Framing::Declared("27262976")),
            Status(413),
        ),
        case(
            "Content-Length of 2^63, never sent",
            Req::github(good.clone()).framing(Framing::Declared("9223372036854775808")),
            Status(413),
        ),
        case(
            "two different Content-Lengths",
            Req::github(good.clone()).also("Content-Length", b"1"),
            Protocol(400),
        ),
        case(
            "Content-Length and chunked together",
            Req::github(good.clone())
                .framing(Framing::Chunked(64))
                .also("Content-Length", b"5"),
            Protocol(400),
        ),
        case(
            "truncated body, then EOF",
            Req::github(good.clone()).framing(Framing::Truncated(20)),
            Status(400),
        ),
        case(
            "body longer than Content-Length",
            Req::github(good.clone()).framing(Framing::Declared("10")),
            Status(401),
        ),
        case(
            "bad chunk size",
            Req::github(good.clone()).framing(Framing::ChunkedRaw(b"zz\r\n{}\r\n0\r\n\r\n")),
            Status(400),
        ),
        case(
            "chunked garbage JSON",
            Req::github(&b"{\"action\":"[..]).framing(Framing::Chunked(3)),
            Status(400),
        ),
        case(
            "chunked 100,000 nested [",
            Req::github(nested("[", 100_000)).framing(Framing::Chunked(4096)),
            Status(400),
        ),
        case(
            "chunked, unsigned",
            Req::github(good.clone())
                .framing(Framing::Chunked(100))
                .without("X-Hub-Signature-256"),
            Status(401),
        ),
        case(
            "unknown transfer coding",
            Req::github(good.clone())
                .framing(Framing::NoLength)
                .header("Transfer-Encoding", "gzip"),
            Protocol(400),
        ),
        case(
            "invalid HTTP version",
            Req::github(good.clone()).version("HTTP/9.9"),
            Protocol(400),
        ),
        // ---- Methods and paths.
        case(
            "GET on the GitHub route",
            Req::github(Vec::new())
                .method("GET")
                .framing(Framing::NoLength),
            Status(405),
        ),
        case(
            "PUT on the Jira route",
            Req::jira(jira_valid()).method("PUT"),
            Status(405),
        ),
        case(
            "PATCH on /createJIRA",
            Req::github(good.clone())
                .method("PATCH")
                .target(b"/createJIRA"),
            Status(405),
        ),
        case(
            "DELETE on /jira/webhook",
            Req::jira(Vec::new())
                .method("DELETE")
                .target(b"/jira/webhook"),
            Status(405),
        ),
        case(
            "OPTIONS on the GitHub route",
            Req::github(Vec::new()).method("OPTIONS"),
            Status(405),
        ),
        case(
            "TRACE on the GitHub route",
            Req::github(Vec::new()).method("TRACE"),
            Status(405),
        ),
        case(
            "made-up method",
            Req::github(good.clone()).method("FROBNICATE"),
            Status(405),
        ),
        case(
            "lower-case post",
            Req::github(good.clone()).method("post"),
            Status(405),
        ),
        case(
            "HEAD on the GitHub route",
            Req::github(Vec::new())
                .method("HEAD")
                .framing(Framing::NoLength),
            Status(405),
        ),
        case(
            "trailing slash",
            Req::github(good.clone()).target(b"/webhooks/github/"),
            Status(404),
        ),
        case(
            "route in capitals",
            Req::github(good.clone()).target(b"/WEBHOOKS/GITHUB"),
            Status(404),
        ),
        case(
            "double slash",
            Req::github(good.clone()).target(b"//webhooks/github"),
            Status(404),
        ),
        case(
            "dot-dot segment",
            Req::github(good.clone()).target(b"/webhooks/x/../github"),
            Status(404),
        ),
        case(
            "encoded NUL in the path",
            Req::github(good.clone()).target(b"/webhooks/github%00"),
            Status(404),
        ),
        case(
            "encoded slash in the path",
            Req::github(good.clone()).target(b"/webhooks%2Fgithub"),
            Status(404),
        ),
        case(
            "10 KB path",
            Req::github(good.clone()).target(format!("/{}", "a".repeat(10_000)).as_bytes()),
            Status(404),
        ),
        case(
            "asterisk target",
            Req::github(good.clone()).target(b"*"),
            Status(404),
        ),
        // ---- The Jira route.
        case(
            "Jira body that is an array",
            Req::jira(&b"[1, 2]"[..]),
            Status(400),
        ),
        case(
            "Jira body without webhookEvent",
            Req::jira(&br#"{"issue":{"key":"CR-1"}}"#[..]),
            Status(400),
        ),
        case(
            "Jira webhookEvent a number",
            Req::jira(&br#"{"webhookEvent":7}"#[..]),
            Status(400),
        ),
        case(
            "Jira webhookEvent empty",
            Req::jira(&br#"{"webhookEvent":""}"#[..]),
            Status(400),
        ),
        case(
            "Jira issue_event_type_name an object",
            Req::jira(&br#"{"webhookEvent":"jira:issue_updated","issue_event_type_name":{}}"#[..]),
            Status(400),
        ),
        case(
            "Jira invalid UTF-8",
            Req::jira(&b"{\"webhookEvent\":\"jira:\xff\"}"[..]),
            Status(400),
        ),
        case(
            "Jira 100,000 nested [",
            Req::jira(nested("[", 100_000)),
            Status(400),
        ),
        case(
            "Jira unsigned",
            Req::jira(jira_valid()).without("X-Hub-Signature"),
            Status(401),
        ),
        case(
            "Jira signed with the GitHub secret",
            Req::jira(jira_valid()).header("X-Hub-Signature", &sig(&jira_valid())),
            Status(401),
        ),
        case(
            "Jira signature in the GitHub header",
            Req::jira(jira_valid()).without("X-Hub-Signature").header(
                "X-Hub-Signature-256",
                &signature(JIRA_SECRET, &jira_valid()),
            ),
            Status(401),
        ),
        case(
            "Jira shared-secret header when not enabled",
            Req::jira(jira_valid())
                .without("X-Hub-Signature")
                .header("X-Webhook-Signature", &format!("sha256={JIRA_SECRET}")),
            Status(401),
        ),
        case(
            "Jira identifier with a slash",
            Req::jira(jira_valid()).header("X-Atlassian-Webhook-Identifier", "a/b"),
            Status(400),
        ),
        case(
            "Jira text/xml",
            Req::jira(jira_valid()).header("Content-Type", "text/xml"),
            Status(415),
        ),
    ];
    // Harmless variants of a good request: accepted.
    cases.extend([
        case(
            "uppercase hex signature (accepted: same digest)",
            Req::github(good.clone()).header(
                "X-Hub-Signature-256",
                &format!("sha256={}", good_hex.to_uppercase()),
            ),
            Status(202),
        ),
        case(
            "spaces around the signature (accepted)",
            Req::github(good.clone()).header("X-Hub-Signature-256", &format!("   {good_sig}   ")),
            Status(202),
        ),
        case(
            "APPLICATION/JSON in capitals (accepted)",
            Req::github(good.clone()).header("Content-Type", "APPLICATION/JSON; charset=utf-8"),
            Status(202),
        ),
        case(
            "chunked in 1-byte chunks (accepted)",
            Req::github(good.clone()).framing(Framing::Chunked(1)),
            Status(202),
        ),
        case(
            "query string on the route (accepted)",
            Req::github(good.clone()).target(b"/webhooks/github?x=1&y=%00"),
            Status(202),
        ),
        case(
            "HTTP/1.0 (accepted)",
            Req::github(good.clone()).version("HTTP/1.0"),
            Status(202),
        ),
    ]);
    cases
}

/// Everything every answer must satisfy, whatever the case.
fn assert_contract(case: &Case, answer: Option<&Answer>) {
    let name = case.name;
    let Some(answer) = answer else {
        panic!("{name}: the connection was closed without an answer");
    };
    assert!(
        answer.status < 500,
        "{name}: a server error: {}",
        answer.text()
    );
    let text = String::from_utf8_lossy(&answer.body);
    for secret in [SECRET, JIRA_SECRET] {
        assert!(
            !text.contains(secret),
            "{name}: the answer echoes {secret:?}: {text}"
        );
    }
    // The error may name the form `sha256=<64 hex digits>`, never a value of it.
    assert!(
        text.match_indices("sha256=")
            .all(|(at, m)| !text[at + m.len()..].starts_with(|c: char| c.is_ascii_hexdigit())),
        "{name}: the answer echoes a signature: {text}"
    );
    for signature in case.req.signatures() {
        let hex = hex_of(&signature);
        if hex.len() >= 16 {
            assert!(
                !text
                    .to_ascii_lowercase()
                    .contains(&hex.to_ascii_lowercase()[..16]),
                "{name}: the answer echoes the signature: {text}"
            );
        }
    }
    let error_shape = || {
        let body = answer
            .json()
            .unwrap_or_else(|| panic!("{name}: not JSON: {}", answer.text()));
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty())
                && body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: not {{\"error\",\"detail\"}}: {}",
            answer.text()
        );
    };
    let wanted = match &case.expect {
        Expect::Status(s) => *s,
        Expect::Protocol(status) => {
            assert_eq!(
                answer.status,
                *status,
                "{name}: the parser should refuse this: {}",
                answer.text()
            );
            return;
        }
    };
    assert_eq!(
        answer.status,
        wanted,
        "{name}: wanted {wanted}, got {}",
        answer.text()
    );
    match answer.status {
        202 => {
            let body = answer.json().expect("202 is JSON");
            assert_eq!(body["status"], "queued", "{name}: {body}");
            if let Some(id) = case.req.get("X-GitHub-Delivery") {
                assert_eq!(body["delivery"], id.trim(), "{name}");
            }
        }
        405 if case.req.method != "HEAD" => {
            error_shape();
            assert!(
                answer.head.to_ascii_lowercase().contains("allow: post"),
                "{name}: 405 without Allow: POST: {}",
                answer.head
            );
        }
        405 => {}
        s if s >= 400 => error_shape(),
        _ => {}
    }
}

/// The ingest is still well: healthy, and a signed delivery is still queued.
async fn assert_still_serving(ingest: &TestIngest, what: &str) {
    let health = http()
        .get(ingest.at("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200, "{what}: /health");
    let body = opened(424_242);
    let answer = http()
        .post(ingest.at("/webhooks/github"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", delivery_id())
        .header("X-Hub-Signature-256", sig(&body))
        .body(body)
        .send()
        .await
        .expect("a signed delivery");
    assert_eq!(
        answer.status(),
        202,
        "{what}: a signed delivery after the corpus"
    );
    assert!(
        ingest.proc.output().iter().all(|l| !l.contains("panicked")),
        "{what}: a panic:\n{}",
        ingest.printed()
    );
}

/// The corpus against `hookbridge-ingest`: each case gets its documented answer, the refused ones
/// are not queued, and the ingest stays healthy throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_documented_answers() {
    let ingest = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET)
        .start();
    let address = ingest.url.trim_start_matches("http://").to_owned();
    let cases = corpus();
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    let mut accepted = 0;
    for case in &cases {
        assert!(names.insert(case.name), "two cases named {:?}", case.name);
        let answer = exchange(&address, &case.req).await;
        eprintln!(
            "{:>5}  {}",
            answer
                .as_ref()
                .map_or("none".into(), |a| a.status.to_string()),
            case.name
        );
        if answer.as_ref().is_some_and(|a| a.status == 202) {
            accepted += 1;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_contract(case, answer.as_ref());
        }));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(message);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_still_serving(&ingest, "after the corpus").await;
    // Nobody without the secret can make the ingest write an error line per request (actix-web's
    // own "stream error: request parse error" included): the logs are not theirs to fill.
    let errors: Vec<String> = ingest
        .proc
        .output()
        .into_iter()
        .filter(|l| l.contains("\"ERROR\"") || l.contains(" ERROR "))
        .collect();
    assert!(
        errors.len() < 5,
        "{} error lines for {} hostile requests:\n{}",
        errors.len(),
        cases.len(),
        errors.join("\n")
    );
    // Exactly the accepted requests (and the final good one) are in the queue.
    let queued = embedded_queue_contents(ingest.dir.path()).await;
    assert_eq!(
        queued.len(),
        accepted + 1,
        "only accepted requests are queued: {:?}",
        queued
            .iter()
            .map(|e| e.delivery.as_str())
            .collect::<Vec<_>>()
    );
}

/// What should become of a signed-but-broken delivery the ingest accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// The ingest refuses it (400).
    Refused,
    /// Dead-lettered by the worker (permanent failure), recorded as `message.dead_lettered`.
    DeadLettered,
    /// Acknowledged without effect, recorded as `event.ignored`.
    Ignored,
    /// Dead-lettered, ignored or processed (`event.accepted`, and then nothing left in the queue
    /// and nothing retried): anything but a crash or a retry loop.
    Settled,
}

/// The sum of the samples of metric family `name` whose labels contain `labels`.
fn family_sum(page: &str, name: &str, labels: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let base = series.split('{').next()?;
            (base == name && series.contains(labels))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

struct Broken {
    name: &'static str,
    req: Req,
    fate: Fate,
}

fn github_event(event: &str, body: &Value) -> Req {
    Req::github(serde_json::to_vec(body).expect("JSON")).header("X-GitHub-Event", event)
}

fn jira_event(body: &Value) -> Req {
    Req::jira(serde_json::to_vec(body).expect("JSON"))
}

/// A Jira CR webhook for `CR-<n>` with `fields`, at a fixed time.
fn cr_event(n: u32, fields: &Value) -> Value {
    json!({
        "timestamp": 1_763_888_400_000_u64,
        "webhookEvent": "jira:issue_updated",
        "user": {"accountId": "5b10", "displayName": "Ada"},
        "issue": {"id": "1", "key": format!("CR-{n}"), "fields": fields},
    })
}

#[allow(clippy::too_many_lines)]
fn broken_corpus() -> Vec<Broken> {
    use Fate::{DeadLettered, Ignored, Refused, Settled};
    let issue = GithubIssue::new("octo-org/hostile", 7);
    let mut valid = issue.event("opened");
    let mut deep_markdown = String::new();
    for depth in 0..3_000 {
        deep_markdown.push_str(&"  ".repeat(depth % 200));
        deep_markdown.push_str("- > 1. [x](http://e) **`");
        deep_markdown.push('\n');
    }
    let broken = |name, req, fate| Broken { name, req, fate };
    let mut cases = vec![
        broken(
            "signed garbage JSON",
            Req::github(&b"{\"action\": opened}"[..]),
            Refused,
        ),
        broken(
            "signed invalid UTF-8",
            Req::github(&b"{\"action\":\"\xff\"}"[..]),
            Refused,
        ),
        broken(
            "signed action as a number",
            github_event("issues", &json!({"action": 5, "issue": {}})),
            Refused,
        ),
        broken(
            "signed 100,000 nested [",
            Req::github(nested("[", 100_000)),
            Refused,
        ),
        broken("signed JSON array", Req::github(&b"[]"[..]), Refused),
        broken(
            "signed Jira webhookEvent as a list",
            jira_event(&json!({"webhookEvent": ["jira:issue_updated"]})),
            Refused,
        ),
        broken(
            "issue is a string",
            github_event(
                "issues",
                &json!({"action": "opened", "issue": "not an issue"}),
            ),
            DeadLettered,
        ),
        broken(
            "empty object",
            github_event("issues", &json!({})),
            DeadLettered,
        ),
        broken(
            "action null, no issue",
            github_event("issues", &json!({"action": null})),
            DeadLettered,
        ),
        broken(
            "issue number a string",
            github_event("issues", &{
                let mut v = valid.clone();
                v["issue"]["number"] = json!("7");
                v
            }),
            DeadLettered,
        ),
        broken(
            "issue number negative",
            github_event("issues", &{
                let mut v = valid.clone();
                v["issue"]["number"] = json!(-7);
                v
            }),
            DeadLettered,
        ),
        broken(
            "issue number 1e30",
            github_event("issues", &{
                let mut v = valid.clone();
                v["issue"]["number"] = json!(1e30);
                v
            }),
            DeadLettered,
        ),
        broken(
            "labels an object",
            github_event("issues", &{
                let mut v = valid.clone();
                v["issue"]["labels"] = json!({"name": "bug"});
                v
            }),
            DeadLettered,
        ),
        broken(
            "comment event without comment",
            github_event("issue_comment", &{
                let mut v = valid.clone();
                v["action"] = json!("created");
                v
            }),
            Settled,
        ),
        broken(
            "NUL, escapes and controls in the title and body",
            github_event("issues", &{
                let mut v = GithubIssue::new("octo-org/hostile", 8).event("opened");
                v["issue"]["title"] = json!("\u{0}\u{1b}[31m\u{7f}\u{2028}\u{fffe}");
                v["issue"]["body"] = json!("\u{0}\r\n\u{85}```\u{1}\n\u{0}");
                v
            }),
            Settled,
        ),
        broken(
            "3,000 lines of nested Markdown",
            github_event("issues", &{
                let mut v = GithubIssue::new("octo-org/hostile", 9).event("opened");
                v["issue"]["body"] = json!(deep_markdown);
                v
            }),
            Settled,
        ),
        broken(
            "action a NUL",
            github_event("issues", &{
                let mut v = GithubIssue::new("octo-org/hostile", 10).event("opened");
                v["action"] = json!("\u{0}");
                v
            }),
            Settled,
        ),
        broken(
            "100,000-deep value beside a valid issue",
            Req::github(
                [
                    &b"{\"deep\":"[..],
                    &nested("[", 100_000),
                    &nested("]", 100_000),
                    &b","[..],
                    &serde_json::to_vec(&GithubIssue::new("octo-org/hostile", 11).event("opened"))
                        .expect("JSON")[1..],
                ]
                .concat(),
            ),
            Settled,
        ),
        broken(
            "number beyond f64 in an issue",
            Req::github(
                [
                    &b"{\"n\":1e999,"[..],
                    &serde_json::to_vec(&GithubIssue::new("octo-org/hostile", 12).event("opened"))
                        .expect("JSON")[1..],
                ]
                .concat(),
            ),
            Settled,
        ),
        broken(
            "Jira CR with 100,000-deep fields",
            Req::jira(
                [
                    &br#"{"webhookEvent":"jira:issue_updated","timestamp":1,"issue":{"key":"CR-12","fields":{"x":"#[..],
                    &nested("{\"a\":", 100_000),
                    &b"1"[..],
                    &nested("}", 100_000),
                    &b"}}}"[..],
                ]
                .concat(),
            ),
            Settled,
        ),
        broken(
            "Jira CR with a number beyond f64",
            Req::jira(
                &br#"{"webhookEvent":"jira:issue_updated","timestamp":1,"issue":{"key":"CR-13","fields":{"status":{"name":"Open"},"x":-1e999}}}"#[..],
            ),
            Settled,
        ),
        broken(
            "Jira issue a string",
            jira_event(
                &json!({"webhookEvent": "jira:issue_updated", "timestamp": 1, "issue": "CR-1"}),
            ),
            Ignored,
        ),
        broken(
            "Jira CR without an issue",
            jira_event(&json!({"webhookEvent": "jira:issue_updated", "timestamp": 1})),
            DeadLettered,
        ),
        broken(
            "Jira CR without a time",
            jira_event(
                &json!({"webhookEvent": "jira:issue_updated", "issue": {"key": "CR-1", "fields": {"status": {"name": "Open"}}}}),
            ),
            DeadLettered,
        ),
        broken(
            "Jira timestamp a string",
            jira_event(
                &json!({"webhookEvent": "jira:issue_updated", "timestamp": "yesterday", "issue": {"key": "CR-1"}}),
            ),
            DeadLettered,
        ),
        broken(
            "Jira timestamp out of range",
            jira_event(
                &json!({"webhookEvent": "jira:issue_updated", "timestamp": i64::MAX, "issue": {"key": "CR-2", "fields": {"status": {"name": "Open"}}}}),
            ),
            DeadLettered,
        ),
        broken(
            "Jira changelog a string",
            jira_event(&{
                let mut v = cr_event(3, &json!({"status": {"name": "Open"}}));
                v["changelog"] = json!("status changed");
                v
            }),
            DeadLettered,
        ),
        broken(
            "Jira changelog items of the wrong type",
            jira_event(&{
                let mut v = cr_event(4, &json!({"status": {"name": "Open"}}));
                v["changelog"] = json!({"items": [{"field": 1, "fromString": []}]});
                v
            }),
            DeadLettered,
        ),
        broken(
            "Jira CR status a number",
            jira_event(&cr_event(5, &json!({"status": 3}))),
            Settled,
        ),
        broken(
            "Jira CR without fields",
            jira_event(
                &json!({"webhookEvent": "jira:issue_created", "timestamp": 1, "issue": {"key": "CR-6"}}),
            ),
            Settled,
        ),
        broken(
            "Jira CR key with a payload",
            jira_event(
                &json!({"webhookEvent": "jira:issue_updated", "timestamp": 1, "issue": {"key": "CR-1;DROP TABLE", "fields": {"status": {"name": "Open"}}}}),
            ),
            Settled,
        ),
        broken(
            "Jira CR fields of every wrong type",
            jira_event(&cr_event(
                7,
                &json!({
                    "status": {"name": "Open", "id": 3},
                    "summary": 42,
                    "issuetype": "Change",
                    "customfield_10102": [1, "x", null, {"role": 5}, {"displayName": ["a"]}],
                    "customfield_10103": [{"type": "doc"}],
                    "description": {"type": "doc", "content": "not a list"},
                }),
            )),
            Settled,
        ),
        broken(
            "Jira CR approvers as deeply nested JSON text",
            jira_event(&cr_event(
                8,
                &json!({
                    "status": {"name": "Open"},
                    "customfield_10102": format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)),
                    "customfield_10103": "{\"a\":".repeat(5_000),
                    "description": format!("Budget: {} tokens", "9".repeat(400)),
                }),
            )),
            Settled,
        ),
        broken(
            "Jira CR description 120 paragraphs deep",
            jira_event(&cr_event(
                9,
                &json!({
                    "status": {"name": "Open"},
                    "description": (0..120).fold(json!({"type": "text", "text": "Budget: 5 tokens"}), |inner, _| json!({"type": "paragraph", "content": [inner]})),
                }),
            )),
            Settled,
        ),
        broken(
            "Jira self URL that is not a URL",
            jira_event(&{
                let mut v = cr_event(10, &json!({"status": {"name": "Open"}}));
                v["issue"]["self"] = json!("http://[::1");
                v["user"] = json!("nobody");
                v
            }),
            Settled,
        ),
    ];
    valid["issue"]["title"] = json!("the good one");
    cases.push(broken(
        "a valid delivery among them",
        github_event("issues", &valid),
        Settled,
    ));
    cases
}

/// Validly signed but broken payloads to `hookbridge run`: refused 400 by the ingest, or accepted
/// and then dead-lettered or ignored by the worker, which neither crashes nor loops, and still
/// processes a good delivery sent after all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_signed_payloads_do_not_break_the_worker() {
    let mut run = TestIngest::run_mode()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET)
        .env("JIRA_PROJECT_KEY", "DEMO")
        .env("HOOKBRIDGE_MAX_RECEIVE_COUNT", "3")
        .start();
    let address = run.url.trim_start_matches("http://").to_owned();
    let cases = broken_corpus();
    let mut accepted: Vec<(&Broken, String)> = Vec::new();
    for case in &cases {
        let answer = exchange(&address, &case.req)
            .await
            .unwrap_or_else(|| panic!("{}: no answer", case.name));
        let name = case.name;
        if case.fate == Fate::Refused {
            assert_eq!(answer.status, 400, "{name}: {}", answer.text());
            continue;
        }
        assert_eq!(answer.status, 202, "{name}: {}", answer.text());
        let delivery = answer.json().expect("JSON")["delivery"]
            .as_str()
            .expect("a delivery id")
            .to_owned();
        accepted.push((case, delivery));
    }

    // The good delivery, sent last, is processed (dry run: its Jira request is in the trail).
    let audit = run.dir.path().join("audit");
    let good = GithubIssue::new("octo-org/hostile", 424_243);
    let good_body = serde_json::to_vec(&good.event("opened")).expect("JSON");
    let answer = exchange(&address, &Req::github(good_body))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 202, "{}", answer.text());

    // Every accepted delivery settles, each as its fate says.
    let count = |records: &[Value], delivery: &str, action: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r.to_string().contains(delivery))
            .count()
    };
    let settled =
        |records: &[Value], delivery: &str, action: &str| count(records, delivery, action) > 0;
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        let trail = hookbridge_tests::audit::trail_text(&audit);
        let records = hookbridge_tests::audit::records(&audit);
        let pending: Vec<String> = accepted
            .iter()
            .filter(|(case, delivery)| {
                let dead = settled(&records, delivery, "message.dead_lettered");
                let ignored = settled(&records, delivery, "event.ignored");
                let accepted = settled(&records, delivery, "event.accepted");
                match case.fate {
                    Fate::DeadLettered => !dead,
                    Fate::Ignored => !ignored,
                    Fate::Settled | Fate::Refused => !(dead || ignored || accepted),
                }
            })
            .map(|(case, delivery)| format!("{} ({delivery})", case.name))
            .collect();
        let good_done = trail.contains(&good.html_url()) && trail.contains("/rest/api/3/issue");
        if pending.is_empty() && good_done {
            break;
        }
        assert!(
            run.proc.try_exit().is_none(),
            "hookbridge run exited:\n{}",
            run.printed()
        );
        assert!(
            Instant::now() < deadline,
            "not settled: {pending:?}; good delivery processed: {good_done}\ntrail:\n{trail}\n{}",
            run.printed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A dead-lettered delivery is dead-lettered at once (a permanent failure), never retried.
    let records = hookbridge_tests::audit::records(&audit);
    for (case, delivery) in &accepted {
        let actions: Vec<String> = records
            .iter()
            .filter(|r| r.to_string().contains(delivery.as_str()))
            .map(|r| r["action"].as_str().unwrap_or("?").to_owned())
            .collect();
        eprintln!("{}: {}", case.name, actions.join(", "));
    }
    for (case, delivery) in &accepted {
        let dead = count(&records, delivery, "message.dead_lettered");
        assert!(dead <= 1, "{}: dead-lettered {dead} times", case.name);
    }
    // Nothing is left in the queue or waiting for a retry, nothing was retried, and the worker
    // counted as many dead letters as the trail shows.
    let dead_in_trail = accepted
        .iter()
        .filter(|(_, d)| settled(&records, d, "message.dead_lettered"))
        .count();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let page = hookbridge_tests::metrics::scrape(&run.at("/metrics")).await;
        let waiting: f64 = ["visible", "in_flight", "delayed"]
            .iter()
            .map(|state| {
                family_sum(
                    &page,
                    "hookbridge_queue_messages",
                    &format!("state=\"{state}\""),
                )
            })
            .sum();
        let retried = family_sum(&page, "hookbridge_worker_messages_retried_total", "");
        let dead = family_sum(&page, "hookbridge_worker_messages_dead_lettered_total", "");
        if waiting == 0.0 {
            assert_eq!(retried, 0.0, "a broken delivery was retried:\n{page}");
            #[allow(clippy::cast_precision_loss)]
            let expected = dead_in_trail as f64;
            assert_eq!(dead, expected, "dead letters counted:\n{page}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "messages left in the queue:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // `hookbridge dlq list` shows exactly the dead-lettered ones.
    let (status, output) = hookbridge_tests::process::run_to_end(
        "hookbridge",
        &["dlq", "list", "--json"],
        &[("HOOKBRIDGE_DATA_DIR", run.dir.path().display().to_string())],
        PATIENCE,
    )
    .await;
    assert!(status.success(), "dlq list: {output:?}");
    let listed = output
        .iter()
        .find(|l| l.trim_start().starts_with('['))
        .cloned()
        .unwrap_or_default();
    for (case, delivery) in &accepted {
        if case.fate == Fate::DeadLettered {
            assert!(
                listed.contains(delivery.as_str()),
                "{}: not in `dlq list`: {listed}",
                case.name
            );
        }
        if case.fate == Fate::Ignored {
            assert!(
                !listed.contains(delivery.as_str()),
                "{}: in `dlq list`: {listed}",
                case.name
            );
        }
    }
    assert!(
        run.proc.output().iter().all(|l| !l.contains("panicked")),
        "a panic:\n{}",
        run.printed()
    );
    let health = http().get(run.at("/health")).send().await.expect("health");
    assert_eq!(health.status(), 200);
    run.proc.terminate();
    let exit = run.proc.wait_exit(PATIENCE);
    assert!(exit.success(), "SIGTERM must exit 0, got {exit}");
}
