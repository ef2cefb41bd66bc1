//! The local S3 server: moto_server (started by `scripts/with-test-services.sh`) serves S3 on the
//! same port as SQS, at [`crate::sqs::endpoint`].

/// A client of the S3 server at `endpoint` with test credentials, path-style as local servers
/// need. The credentials go into this client's configuration only: the process environment is
/// shared by every test running in parallel.
pub async fn client_for(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

/// A new bucket with a unique name starting with `prefix` (lowercase letters, digits, hyphens).
///
/// # Panics
/// When the server refuses it.
pub async fn create_bucket(client: &aws_sdk_s3::Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create the bucket {name}: {e:?}"));
    name
}

/// The keys under `prefix` in `bucket`, with their sizes.
///
/// # Panics
/// When the server cannot list them.
pub async fn list(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<(String, i64)> {
    client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list s3://{bucket}/{prefix}: {e:?}"))
        .contents
        .unwrap_or_default()
        .into_iter()
        .map(|o| (o.key.unwrap_or_default(), o.size.unwrap_or(-1)))
        .collect()
}

/// The content of `s3://bucket/key`.
///
/// # Panics
/// When it cannot be read.
pub async fn read(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("read s3://{bucket}/{key}: {e:?}"))
        .body
        .collect()
        .await
        .expect("the object's body")
        .to_vec()
}

/// Replaces `s3://bucket/key` with `content`.
///
/// # Panics
/// When the server refuses it.
pub async fn write(client: &aws_sdk_s3::Client, bucket: &str, key: &str, content: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(content.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("write s3://{bucket}/{key}: {e:?}"));
}
