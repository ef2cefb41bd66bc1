//! The audit trail: one JSON object per line in `<audit dir>/audit.jsonl`, appended with a single
//! `write` on an `O_APPEND` file and synced, so lines from several processes never interleave and
//! a written record survives a crash. (A later change makes the records hash-chained.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::Value;

/// Appends audit records; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: Arc<PathBuf>,
    lock: Arc<Mutex<()>>,
}

/// Why an audit record could not be written.
#[derive(Debug, thiserror::Error)]
#[error("audit trail {path}: {source}")]
pub struct AuditError {
    path: String,
    #[source]
    source: std::io::Error,
}

impl AuditLog {
    /// The trail in `dir` (created on first write).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: Arc::new(dir.join("audit.jsonl")),
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `{"ts": now, "kind": kind, ...fields}`.
    ///
    /// # Errors
    /// [`AuditError`] when the file cannot be opened, written or synced.
    pub async fn record(&self, kind: &str, fields: Value) -> Result<(), AuditError> {
        let mut record = serde_json::Map::new();
        record.insert("ts".into(), Utc::now().to_rfc3339().into());
        record.insert("kind".into(), kind.into());
        if let Value::Object(map) = fields {
            record.extend(map);
        }
        let mut line = serde_json::to_vec(&Value::Object(record)).unwrap_or_default();
        line.push(b'\n');
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.append(&line))
            .await
            .map_err(|e| AuditError {
                path: self.path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    fn append(&self, line: &[u8]) -> Result<(), AuditError> {
        let err = |source| AuditError {
            path: self.path.display().to_string(),
            source,
        };
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&*self.path)
            .map_err(err)?;
        file.write_all(line).map_err(err)?;
        file.sync_data().map_err(err)
    }
}
