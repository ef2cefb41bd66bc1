//! Realistic, varied GitHub `issues.opened` deliveries for benchmarks.
//!
//! The shape follows GitHub's documented webhook payload ("Webhook events and payloads", `issues`):
//! the issue with its user, labels and reactions, the full repository object with its ~40 API URL
//! templates and its owner, the organization and the sender. Titles and bodies are Markdown built
//! from a vocabulary with a per-delivery seed, so no two bodies are alike: a benchmark that
//! compresses or stores them sees what it would see in production (a payload repeating one
//! sentence would flatter any compressor). Deliveries average about 10.5 KB.

use serde_json::{Value, json};

/// A small deterministic generator (splitmix64): the same seed gives the same delivery.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "the",
    "worker",
    "queue",
    "fails",
    "when",
    "a",
    "deployment",
    "is",
    "retried",
    "after",
    "timeout",
    "and",
    "logs",
    "show",
    "connection",
    "reset",
    "by",
    "peer",
    "on",
    "startup",
    "config",
    "file",
    "missing",
    "value",
    "for",
    "key",
    "expected",
    "string",
    "got",
    "null",
    "we",
    "see",
    "this",
    "in",
    "production",
    "since",
    "upgrade",
    "to",
    "version",
    "memory",
    "grows",
    "until",
    "pod",
    "restarts",
    "cache",
    "invalidation",
    "race",
    "between",
    "two",
    "requests",
    "that",
    "update",
    "same",
    "record",
    "latency",
    "spikes",
    "every",
    "few",
    "minutes",
    "under",
    "load",
    "button",
    "does",
    "nothing",
    "clicked",
    "twice",
    "page",
    "renders",
    "blank",
    "Safari",
    "Firefox",
    "Chrome",
    "mobile",
    "layout",
    "breaks",
    "width",
    "token",
    "expires",
    "early",
    "refresh",
    "loop",
    "scheduler",
    "skips",
    "jobs",
    "cron",
    "daylight",
    "saving",
    "migration",
    "locks",
    "table",
    "index",
    "slow",
    "query",
    "plan",
    "regression",
    "introduced",
    "commit",
    "bisected",
    "flaky",
    "test",
    "CI",
    "passes",
    "locally",
    "Windows",
    "paths",
    "backslash",
    "encoding",
    "UTF-8",
    "emoji",
    "truncated",
    "export",
    "CSV",
    "header",
    "order",
    "changed",
    "API",
    "returns",
    "500",
    "instead",
    "of",
    "404",
    "pagination",
    "cursor",
    "lost",
    "webhook",
    "signature",
    "mismatch",
    "proxy",
    "strips",
    "header",
    "retry",
    "storm",
    "backoff",
    "jitter",
    "metrics",
    "counter",
    "resets",
    "dashboard",
    "shows",
    "gap",
    "alert",
    "fires",
    "without",
    "reason",
    "docs",
    "unclear",
    "about",
    "permissions",
    "scope",
    "admin",
    "role",
    "can",
    "not",
    "delete",
    "archived",
    "project",
    "search",
    "ignores",
    "filter",
    "sort",
    "descending",
    "date",
    "timezone",
    "offset",
    "wrong",
    "by",
    "one",
    "hour",
    "build",
    "cache",
    "stale",
    "dependency",
    "pinned",
    "security",
    "advisory",
    "bump",
    "minor",
    "patch",
    "feature",
    "request",
    "would",
    "like",
    "option",
    "disable",
    "notifications",
    "per",
    "repository",
    "workaround",
    "restart",
];

const LANGUAGES: &[&str] = &[
    "Rust",
    "Go",
    "TypeScript",
    "Python",
    "Java",
    "Kotlin",
    "Ruby",
];
const LABELS: &[(&str, &str, &str)] = &[
    ("bug", "d73a4a", "Something isn't working"),
    ("enhancement", "a2eeef", "New feature or request"),
    (
        "documentation",
        "0075ca",
        "Improvements or additions to documentation",
    ),
    ("good first issue", "7057ff", "Good for newcomers"),
    ("help wanted", "008672", "Extra attention is needed"),
    ("performance", "fbca04", "Slower than it should be"),
    ("security", "b60205", "Security-relevant change"),
];
const ORGS: &[&str] = &[
    "acme",
    "octo-org",
    "payments-team",
    "infra-platform",
    "mlops",
];
const REPOS: &[&str] = &[
    "payments-api",
    "checkout",
    "billing-worker",
    "gateway",
    "agent-runner",
];
const USERS: &[&str] = &[
    "octocat",
    "hubot",
    "mona",
    "jdoe-dev",
    "release-bot",
    "sre-alice",
];

fn sentence(rng: &mut Seeded, words: u64) -> String {
    let mut out = String::new();
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
    out
}

fn markdown_body(rng: &mut Seeded, target_bytes: usize) -> String {
    let mut body = String::from("### Describe the bug\n\n");
    while body.len() < target_bytes {
        match rng.below(6) {
            0 => {
                body.push_str("\n\n```text\n");
                for frame in 0..(3 + rng.below(6)) {
                    body.push_str(&format!(
                        "  at {}::{}::{} ({}.rs:{}:{})\n",
                        rng.pick(WORDS),
                        rng.pick(WORDS),
                        rng.pick(WORDS),
                        rng.pick(WORDS),
                        rng.below(2000),
                        frame + rng.below(80)
                    ));
                }
                body.push_str("```\n\n");
            }
            1 => {
                for step in 1..=(2 + rng.below(4)) {
                    let words = 4 + rng.below(10);
                    body.push_str(&format!("{step}. {}\n", sentence(rng, words)));
                }
            }
            2 => {
                let words = 6 + rng.below(12);
                body.push_str(&format!(
                    "> {} (see #{})\n\n",
                    sentence(rng, words),
                    rng.below(5000)
                ));
            }
            _ => {
                let words = 20 + rng.below(60);
                body.push_str(&sentence(rng, words));
                body.push_str(".\n\n");
            }
        }
    }
    body.push_str("### Environment\n\n");
    body.push_str(&format!(
        "- version: {}.{}.{}\n- os: {}\n",
        rng.below(4),
        rng.below(30),
        rng.below(20),
        rng.pick(&[
            "Ubuntu 24.04",
            "Debian 13",
            "macOS 15.2",
            "Windows 11",
            "Alpine 3.21"
        ])
    ));
    body
}

fn user(login: &str, id: u64) -> Value {
    let api = format!("https://api.github.com/users/{login}");
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": "User",
        "user_view_type": "public",
        "site_admin": false
    })
}

fn repository(rng: &mut Seeded, org: &str, name: &str, owner_id: u64) -> Value {
    let full = format!("{org}/{name}");
    let api = format!("https://api.github.com/repos/{full}");
    let mut repo = json!({
        "id": 100_000_000 + rng.below(900_000_000),
        "node_id": format!("R_kgDO{}", rng.below(1 << 40)),
        "name": name,
        "full_name": full,
        "private": rng.below(2) == 0,
        "owner": user(org, owner_id),
        "html_url": format!("https://github.com/{full}"),
        "description": sentence(rng, 8),
        "fork": false,
        "url": api,
        "created_at": "2024-03-05T09:12:44Z",
        "updated_at": "2026-11-20T16:02:11Z",
        "pushed_at": "2026-11-21T08:45:03Z",
        "git_url": format!("git://github.com/{full}.git"),
        "ssh_url": format!("git@github.com:{full}.git"),
        "clone_url": format!("https://github.com/{full}.git"),
        "svn_url": format!("https://github.com/{full}"),
        "homepage": null,
        "size": rng.below(100_000),
        "stargazers_count": rng.below(5000),
        "watchers_count": rng.below(5000),
        "language": rng.pick(LANGUAGES),
        "has_issues": true,
        "has_projects": true,
        "has_downloads": true,
        "has_wiki": false,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": rng.below(300),
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": rng.below(400),
        "license": {"key": "apache-2.0", "name": "Apache License 2.0", "spdx_id": "Apache-2.0",
                    "url": "https://api.github.com/licenses/apache-2.0", "node_id": "MDc6TGljZW5zZTI="},
        "allow_forking": true,
        "is_template": false,
        "web_commit_signoff_required": false,
        "topics": ["ci", "payments", "webhooks"],
        "visibility": "private",
        "forks": rng.below(300),
        "open_issues": rng.below(400),
        "watchers": rng.below(5000),
        "default_branch": "main",
        "custom_properties": {"tier": format!("{}", 1 + rng.below(4))}
    });
    for (key, path) in [
        ("forks_url", "/forks"),
        ("keys_url", "/keys{/key_id}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("teams_url", "/teams"),
        ("hooks_url", "/hooks"),
        ("issue_events_url", "/issues/events{/number}"),
        ("events_url", "/events"),
        ("assignees_url", "/assignees{/user}"),
        ("branches_url", "/branches{/branch}"),
        ("tags_url", "/tags"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("trees_url", "/git/trees{/sha}"),
        ("statuses_url", "/statuses/{sha}"),
        ("languages_url", "/languages"),
        ("stargazers_url", "/stargazers"),
        ("contributors_url", "/contributors"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("commits_url", "/commits{/sha}"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("comments_url", "/comments{/number}"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("contents_url", "/contents/{+path}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("merges_url", "/merges"),
        ("archive_url", "/{archive_format}{/ref}"),
        ("downloads_url", "/downloads"),
        ("issues_url", "/issues{/number}"),
        ("pulls_url", "/pulls{/number}"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("labels_url", "/labels{/name}"),
        ("releases_url", "/releases{/id}"),
        ("deployments_url", "/deployments"),
    ] {
        repo[key] = Value::String(format!("{api}{path}"));
    }
    repo
}

/// The body of delivery number `n` (an `issues.opened` event), about 10.5 KB on average.
pub fn issues_opened(n: u64) -> Vec<u8> {
    let mut rng = Seeded(n.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5DEE_CE66);
    let org = rng.pick(ORGS);
    let name = rng.pick(REPOS);
    let full = format!("{org}/{name}");
    let number = 1 + rng.below(20_000);
    let author = rng.pick(USERS);
    let author_id = 1000 + rng.below(9_000_000);
    let api = format!("https://api.github.com/repos/{full}/issues/{number}");
    let labels: Vec<Value> = (0..rng.below(3))
        .map(|_| {
            let (label, color, description) = LABELS[rng.below(LABELS.len() as u64) as usize];
            json!({
                "id": rng.below(9_000_000_000),
                "node_id": format!("LA_kwDO{}", rng.below(1 << 40)),
                "url": format!("https://api.github.com/repos/{full}/labels/{}", label.replace(' ', "%20")),
                "name": label,
                "color": color,
                "default": true,
                "description": description
            })
        })
        .collect();
    let title_words = 4 + rng.below(9);
    let body_bytes = 300 + rng.below(2000) as usize;
    let owner_id = 9_000_000 + rng.below(1000);
    let issue = json!({
        "url": api,
        "repository_url": format!("https://api.github.com/repos/{full}"),
        "labels_url": format!("{api}/labels{{/name}}"),
        "comments_url": format!("{api}/comments"),
        "events_url": format!("{api}/events"),
        "html_url": format!("https://github.com/{full}/issues/{number}"),
        "id": 2_000_000_000 + rng.below(900_000_000),
        "node_id": format!("I_kwDO{}", rng.below(1 << 40)),
        "number": number,
        "title": sentence(&mut rng, title_words),
        "user": user(author, author_id),
        "labels": labels,
        "state": "open",
        "locked": false,
        "assignee": null,
        "assignees": [],
        "milestone": null,
        "comments": 0,
        "created_at": "2026-11-23T10:00:00Z",
        "updated_at": "2026-11-23T10:00:00Z",
        "closed_at": null,
        "author_association": "MEMBER",
        "type": null,
        "active_lock_reason": null,
        "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
        "body": markdown_body(&mut rng, body_bytes),
        "reactions": {
            "url": format!("{api}/reactions"),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0
        },
        "timeline_url": format!("{api}/timeline"),
        "performed_via_github_app": null,
        "state_reason": null
    });
    let payload = json!({
        "action": "opened",
        "issue": issue,
        "repository": repository(&mut rng, org, name, owner_id),
        "organization": {
            "login": org,
            "id": 9_000_000 + rng.below(1000),
            "node_id": format!("O_kgDO{}", rng.below(1 << 40)),
            "url": format!("https://api.github.com/orgs/{org}"),
            "repos_url": format!("https://api.github.com/orgs/{org}/repos"),
            "events_url": format!("https://api.github.com/orgs/{org}/events"),
            "hooks_url": format!("https://api.github.com/orgs/{org}/hooks"),
            "issues_url": format!("https://api.github.com/orgs/{org}/issues"),
            "members_url": format!("https://api.github.com/orgs/{org}/members{{/member}}"),
            "public_members_url": format!("https://api.github.com/orgs/{org}/public_members{{/member}}"),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", rng.below(1 << 24)),
            "description": sentence(&mut rng, 6)
        },
        "sender": user(author, author_id)
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_varied_valid_json_of_about_ten_kilobytes() {
        let bodies: Vec<Vec<u8>> = (0..200).map(issues_opened).collect();
        let mean = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
        assert!((8_500..12_500).contains(&mean), "mean size {mean}");
        let mut distinct = bodies.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), bodies.len(), "every delivery differs");
        for body in &bodies {
            let v: Value = serde_json::from_slice(body).expect("json");
            assert_eq!(v["action"], "opened");
        }
        assert_eq!(issues_opened(7), issues_opened(7), "deterministic");
    }
}
