//! Reading a Prometheus `/metrics` page the way a scraper does.

/// `GET url` (a `/metrics` page) as text.
///
/// # Panics
/// When the page cannot be fetched or does not answer 200.
pub async fn scrape(url: &str) -> String {
    let response = crate::ingest::http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 200, "GET {url}");
    response.text().await.expect("metrics text")
}

/// The value of one sample, `series` written as the exposition writes it
/// (`name{label="value",…}` with labels in name order, or a bare `name`).
pub fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}
