//! The local SQS server (moto_server, started on a free port by `scripts/with-test-services.sh`),
//! as the tests and benchmarks reach it.

use aws_sdk_sqs::types::QueueAttributeName;

/// The variable `scripts/with-test-services.sh` sets to moto_server's URL.
pub const ENDPOINT_VARIABLE: &str = "HOOKBRIDGE_TEST_SQS_ENDPOINT";

/// moto_server's URL.
///
/// # Panics
/// When the tests were not started through `scripts/with-test-services.sh` (or `make test`),
/// saying how to run them.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_VARIABLE} is not set, so SQS cannot be tested. Run the tests with \
             `make test`, or wrap the command: \
             `scripts/with-test-services.sh cargo test -p hookbridge-tests --test it` \
             (it installs and starts a local SQS server, moto)"
        )
    })
}

/// A client of the SQS server at `endpoint` with test credentials. They go into this client's
/// configuration only: the process environment is shared by every test running in parallel.
pub async fn client_for(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&config)
}

/// A queue and the dead-letter queue its redrive policy points at.
pub struct QueueWithDlq {
    pub queue_url: String,
    pub dlq_url: String,
}

/// Creates `<name>-dlq`, then `name` with a redrive policy of `max_receive` receives to it and
/// extra `attributes` (for example SQS's real 256 KiB `MaximumMessageSize`; moto's default is
/// 1 MiB).
///
/// # Panics
/// When the server refuses any of it.
pub async fn create_queue_with_dlq(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receive: u32,
    attributes: &[(QueueAttributeName, &str)],
) -> QueueWithDlq {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create the DLQ {name}-dlq: {e:?}"))
        .queue_url
        .expect("the DLQ has a URL");
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("read the DLQ's ARN")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("the DLQ has an ARN");
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive.to_string(),
    });
    let mut create = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string());
    for (attribute, value) in attributes {
        create = create.attributes(attribute.clone(), *value);
    }
    let queue_url = create
        .send()
        .await
        .unwrap_or_else(|e| panic!("create the queue {name}: {e:?}"))
        .queue_url
        .expect("the queue has a URL");
    QueueWithDlq { queue_url, dlq_url }
}
