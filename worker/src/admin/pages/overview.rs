//! The overview: this process's figures (the ones `/metrics` shows), the last hour's charts, and
//! whether each dependency answers.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Serialize;

use super::{Chrome, respond};
use crate::admin::AdminState;
use crate::admin::charts::{round, sparkline};
use crate::admin::figures::{Figures, Sample};

/// One dependency: `up`, `down`, `dry-run` or `off`, and what that means.
#[derive(Debug, Clone, Serialize)]
pub struct Dependency {
    pub name: &'static str,
    pub state: &'static str,
    pub detail: String,
}

/// One chart of the last hour.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub id: &'static str,
    pub title: &'static str,
    /// One value per sample, oldest first.
    pub values: Vec<f64>,
    pub latest: String,
    pub highest: String,
    #[serde(skip)]
    pub svg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub figures: Figures,
    pub average_latency: String,
    pub limiter_wait_seconds: String,
    /// The spool's depth, or why there is none to show.
    pub spool: String,
    pub health: Vec<Dependency>,
    pub charts: Vec<Chart>,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct Page<'a> {
    chrome: Chrome,
    data: &'a Overview,
}

/// The change of `of` between consecutive samples, per minute.
fn per_minute(samples: &[Sample], of: impl Fn(&Figures) -> f64) -> Vec<f64> {
    samples
        .windows(2)
        .map(|w| {
            let seconds = (w[1].at - w[0].at).num_milliseconds() as f64 / 1000.0;
            let delta = (of(&w[1].figures) - of(&w[0].figures)).max(0.0);
            if seconds > 0.0 {
                delta * 60.0 / seconds
            } else {
                0.0
            }
        })
        .collect()
}

fn chart(id: &'static str, title: &'static str, values: Vec<f64>) -> Chart {
    let latest = round(values.last().copied().unwrap_or(0.0));
    let highest = round(values.iter().copied().fold(0.0, f64::max));
    let svg = sparkline(&values, title);
    Chart {
        id,
        title,
        values,
        latest,
        highest,
        svg,
    }
}

#[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
fn charts(samples: &[Sample]) -> Vec<Chart> {
    let latency: Vec<f64> = samples
        .windows(2)
        .map(|w| w[1].figures.latency_ms_since(&w[0].figures).unwrap_or(0.0))
        .collect();
    let level = |of: fn(&Figures) -> u64| -> Vec<f64> {
        samples.iter().map(|s| of(&s.figures) as f64).collect()
    };
    vec![
        chart(
            "events",
            "Events processed per minute",
            per_minute(samples, |f| f.processed as f64),
        ),
        chart("latency", "Average processing time (ms)", latency),
        chart("queue", "Queue depth (waiting)", level(|f| f.queue_visible)),
        chart(
            "dead-letters",
            "Dead letters",
            level(|f| f.dead_letters.unwrap_or(0)),
        ),
        chart("spool", "Spool depth", level(|f| f.spool.unwrap_or(0))),
        chart(
            "jira-429",
            "Jira 429 answers per minute",
            per_minute(samples, |f| f.jira_429 as f64),
        ),
        chart(
            "limiter",
            "Rate-limiter waits per minute",
            per_minute(samples, |f| f.limiter_waits as f64),
        ),
    ]
}

async fn health(state: &AdminState, figures: &Figures) -> Vec<Dependency> {
    let queue = match state.queue.check_ready().await {
        Ok(()) => Dependency {
            name: "queue",
            state: "up",
            detail: format!("{} backend", state.queue.backend_name()),
        },
        Err(e) => Dependency {
            name: "queue",
            state: "down",
            detail: e.to_string(),
        },
    };
    let store = match state.store.check_ready().await {
        Ok(()) => Dependency {
            name: "store",
            state: "up",
            detail: format!("{} backend", state.store.backend_name()),
        },
        Err(e) => Dependency {
            name: "store",
            state: "down",
            detail: e.to_string(),
        },
    };
    let jira = match &state.jira {
        None => Dependency {
            name: "jira",
            state: "dry-run",
            detail: "JIRA_BASE_URL is not set: requests are written to the audit trail".into(),
        },
        Some(health) if health.is_up() => Dependency {
            name: "jira",
            state: "up",
            detail: "takes the worker's requests".into(),
        },
        Some(health) => Dependency {
            name: "jira",
            state: "down",
            detail: match health.state() {
                crate::jira::health::State::Down(why) => why,
                crate::jira::health::State::Up => String::new(),
            },
        },
    };
    let slack = if state.slack {
        Dependency {
            name: "slack",
            state: if figures.slack_failed > 0 {
                "down"
            } else {
                "up"
            },
            detail: format!(
                "{} alerts sent, {} failed since start",
                figures.slack_sent, figures.slack_failed
            ),
        }
    } else {
        Dependency {
            name: "slack",
            state: "off",
            detail: "SLACK_WEBHOOK_URL is not set: alerts are written to the audit trail".into(),
        }
    };
    vec![queue, store, jira, slack]
}

/// `GET /`.
pub async fn show(req: HttpRequest, state: web::Data<AdminState>, chrome: Chrome) -> HttpResponse {
    let figures = Figures::read(&state.metrics, state.spool.as_ref()).await;
    // The charts end now: the figures just read are their last point.
    let mut samples = state.history.samples();
    samples.push(Sample {
        at: chrono::Utc::now(),
        figures: figures.clone(),
    });
    let average_latency = if figures.settled == 0 {
        "—".to_owned()
    } else {
        #[allow(clippy::cast_precision_loss)]
        let ms = figures.processing_seconds * 1000.0 / figures.settled as f64;
        format!("{} ms", round(ms))
    };
    let overview = Overview {
        health: health(&state, &figures).await,
        average_latency,
        limiter_wait_seconds: round(figures.limiter_wait_seconds),
        spool: match figures.spool {
            Some(n) => n.to_string(),
            None if state.spool.is_some() => "cannot be read".into(),
            None => "none here (the ingest's, on SQS)".into(),
        },
        charts: charts(&samples),
        figures,
    };
    respond(
        &req,
        &overview,
        Page {
            chrome,
            data: &overview,
        },
    )
}
