//! The rule with `ENFORCE_PKI_VALIDATION=true`: an approved CR passes only with a valid signature
//! by a trusted key, as `hookbridge gate` requires.

use super::*;

/// A signing key whose certificate is trusted (in the returned directory), and one that is not.
fn signing_keys(dir: &Path) -> (keys::SigningKey, keys::SigningKey, std::path::PathBuf) {
    let password = SecretString::from("test-password".to_owned());
    let mut made = Vec::new();
    for name in ["Change Manager", "Stranger"] {
        let written = keys::keygen(
            name,
            &dir.join("keys"),
            Algorithm::Ed25519,
            0,
            &password,
            30,
        )
        .expect("keygen");
        let pem = std::fs::read_to_string(&written.private_key).expect("read key");
        made.push((written, keys::open(&pem, &password).expect("open key")));
    }
    let trusted = dir.join("trusted");
    std::fs::create_dir(&trusted).expect("mkdir trusted");
    std::fs::copy(&made[0].0.certificate, trusted.join("change-manager.crt")).expect("copy");
    let stranger = made.pop().expect("stranger").1;
    let key = made.pop().expect("key").1;
    (key, stranger, trusted)
}

/// `key`'s approval of `cr`, as the JSON text the CR's signature field holds.
fn approval_of(key: &keys::SigningKey, cr: &str) -> String {
    let now = chrono::Utc::now();
    let statement = Statement {
        cr_id: cr.into(),
        status: "Approved".into(),
        approver: approver().display_name.clone(),
        role: "Change Manager".into(),
        signed_at: now - chrono::Duration::hours(1),
        expires_at: now + chrono::Duration::days(1),
    };
    serde_json::to_string(&approval::sign(key, statement).expect("sign")).expect("json")
}

/// With `ENFORCE_PKI_VALIDATION=true`, an approved CR is not enough: without a signature, with
/// an edited one, one of another CR or one by an untrusted key the deployment is rejected with a
/// reason naming the signature; with a valid signature by a trusted key it is approved.
async fn pki_enforced_rejects_approved_crs_without_a_valid_signature(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, stranger, trusted) = signing_keys(dir.path());
    let run = start_run_with(
        &store_env(redis, "hbdep"),
        &[
            ("ENFORCE_PKI_VALIDATION", "true".to_owned()),
            ("HOOKBRIDGE_PKI_TRUSTED_DIR", trusted.display().to_string()),
        ],
        &app,
        &slack,
        dir.path(),
    );
    let client = http();
    let jira_url = run.at("/webhooks/jira");
    // Approved CRs; the signature is added before Jira's webhook is delivered, so that the worker
    // never sees one approved without it.
    let mut crs = Vec::new();
    for summary in ["Unsigned", "Signed", "Edited", "Other CR's", "Untrusted"] {
        let (cr, _created) = jira.create_change_request(
            CrSpec::new(summary).status("Approved").field(
                "customfield_10102",
                json!([approver().with_role("Change Manager")]),
            ),
            &approver(),
        );
        crs.push(cr);
    }
    let signatures = [
        None,
        Some(approval_of(&key, &crs[1])),
        Some(approval_of(&key, &crs[2]).replace("Change Manager", "Change Managers")),
        Some(approval_of(&key, &crs[1])),
        Some(approval_of(&stranger, &crs[4])),
    ];
    for (cr, signature) in crs.iter().zip(&signatures) {
        // A webhook carries the whole issue: the last edit is the CR as the worker first sees it.
        let edit = jira.set_field(
            cr,
            "customfield_10103",
            signature.as_deref().map_or(Value::Null, |s| json!(s)),
            &approver(),
        );
        assert_eq!(edit.post(&client, &jira_url, JIRA_SECRET).await, 202);
    }
    let expected = [
        ("rejected", "has no valid PKI signature"),
        ("approved", "is Approved"),
        ("rejected", "PKI signature invalid"),
        ("rejected", "PKI signature invalid"),
        ("rejected", "PKI signature invalid"),
    ];
    for (n, cr) in crs.iter().enumerate() {
        let run_id = 51 + n as u64;
        app.await_deployment(REPO, run_id, "production");
        let event = rule_event(&app, run_id, "production", &json!({"jira_cr_id": cr}));
        assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
    }
    for (n, (cr, (state, says))) in crs.iter().zip(expected).enumerate() {
        let review = review_of(&app, 51 + n as u64, &run).await;
        assert_review(&review, state, cr);
        let comment = review.comment.unwrap_or_default();
        assert!(comment.contains(says), "{cr}: {comment}");
    }
    wait_rule_events_processed(&run, crs.len()).await;
    for n in 0..crs.len() {
        assert_eq!(reviews_of(&app, 51 + n as u64).len(), 1, "run {}", 51 + n);
    }
}

#[tokio::test]
async fn pki_enforced_rejects_approved_crs_without_a_valid_signature_on_the_embedded_store() {
    pki_enforced_rejects_approved_crs_without_a_valid_signature(false).await;
}

#[tokio::test]
async fn pki_enforced_rejects_approved_crs_without_a_valid_signature_on_redis() {
    pki_enforced_rejects_approved_crs_without_a_valid_signature(true).await;
}
