//! Transactions and lists of the Redis store: a [`Transaction`] is sent as one Lua script, which
//! Redis runs atomically — every condition is checked, then every write applied, with nothing from
//! another client in between.
//!
//! The script is generic: `KEYS` are the keys the transaction touches, `ARGV[1]` is JSON naming,
//! per condition and write, its kind and the index of its key. Numbers travel as strings, so Lua's
//! floating-point numbers never print one as `1e+11`.

use redis::Script;
use serde_json::{Value, json};

use super::{RedisStore, store_error};
use crate::store::transaction::{Condition, Transaction, Write};
use crate::store::{StoreError, ttl_ms};

/// `KEYS`: the keys touched; `ARGV[1]`: `{"c": [conditions], "w": [writes]}`. Returns 1 when
/// applied, 0 when a condition failed (and nothing was written).
pub(super) const COMMIT: &str = r"
local ops = cjson.decode(ARGV[1])
for _, c in ipairs(ops.c) do
    local current = redis.call('GET', KEYS[tonumber(c.k)])
    if c.v == nil then
        if current then return 0 end
    elseif current ~= c.v then
        return 0
    end
end
for _, w in ipairs(ops.w) do
    local key = KEYS[tonumber(w.k)]
    if w.t == 'put' then
        if w.px then redis.call('SET', key, w.v, 'PX', w.px) else redis.call('SET', key, w.v) end
    elseif w.t == 'del' then
        redis.call('DEL', key)
    elseif w.t == 'push' then
        redis.call('RPUSH', key, w.v)
        if w.keep then redis.call('LTRIM', key, '-' .. w.keep, '-1') end
        if w.px then redis.call('PEXPIRE', key, w.px) else redis.call('PERSIST', key) end
    elseif w.t == 'pop' then
        redis.call('LTRIM', key, w.n, '-1')
    elseif w.t == 'incr' then
        redis.call('HINCRBY', key, w.f, w.n)
    elseif w.t == 'done' then
        redis.call('SET', key, '1', 'PX', w.px)
    end
end
return 1
";

/// The script's `KEYS` and `ARGV[1]` for `tx`.
fn encode(store: &RedisStore, tx: &Transaction) -> (Vec<String>, String) {
    let mut keys = Vec::new();
    let mut index = |key: String| {
        keys.push(key);
        keys.len().to_string()
    };
    let conditions: Vec<Value> = tx
        .conditions
        .iter()
        .map(|c| match c {
            Condition::Unchanged { key, raw } => {
                let mut c = json!({"k": index(store.kv_key(key))});
                if let Some(raw) = raw {
                    c["v"] = raw.as_str().into();
                }
                c
            }
            Condition::Holds(guard) => {
                json!({"k": index(store.lock_key(&guard.key)), "v": guard.token.to_string()})
            }
        })
        .collect();
    let writes: Vec<Value> = tx
        .writes
        .iter()
        .map(|w| match w {
            Write::Put { key, value, ttl } => {
                let mut w = json!({"t": "put", "k": index(store.kv_key(key)), "v": value});
                if let Some(ttl) = ttl {
                    w["px"] = ttl_ms(*ttl).to_string().into();
                }
                w
            }
            Write::Delete { key } => json!({"t": "del", "k": index(store.kv_key(key))}),
            Write::Push {
                list,
                item,
                keep,
                ttl,
            } => {
                let mut w = json!({"t": "push", "k": index(store.list_key(list)), "v": item});
                if let Some(keep) = keep {
                    w["keep"] = keep.to_string().into();
                }
                if let Some(ttl) = ttl {
                    w["px"] = ttl_ms(*ttl).to_string().into();
                }
                w
            }
            Write::PopFront { list, count } => {
                json!({"t": "pop", "k": index(store.list_key(list)), "n": count.to_string()})
            }
            Write::Increment {
                counters,
                field,
                by,
            } => json!({
                "t": "incr",
                "k": index(store.counters_key(counters)),
                "f": field,
                "n": by.to_string(),
            }),
            Write::MarkDone { delivery, ttl } => json!({
                "t": "done",
                "k": index(store.done_key(delivery)),
                "px": ttl_ms(*ttl).to_string(),
            }),
        })
        .collect();
    let argv = json!({"c": conditions, "w": writes}).to_string();
    (keys, argv)
}

impl RedisStore {
    /// See [`crate::store::Store::commit`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn commit(&self, tx: &Transaction) -> Result<bool, StoreError> {
        let (keys, argv) = encode(self, tx);
        let script: &Script = &self.scripts.commit;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        invocation.arg(argv);
        let mut conn = self.conn.clone();
        let applied: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(applied == 1)
    }

    /// Every counter of the family `counters`: field and value.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached; [`StoreError::Corrupt`] when a
    /// value is not a count.
    pub async fn counters(&self, counters: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut conn = self.conn.clone();
        let all: std::collections::HashMap<String, String> =
            redis::AsyncCommands::hgetall(&mut conn, self.counters_key(counters))
                .await
                .map_err(store_error)?;
        all.into_iter()
            .map(|(field, value)| {
                value
                    .parse::<u64>()
                    .map(|v| (field, v))
                    .map_err(|_| StoreError::Corrupt(format!("counter {counters} holds {value:?}")))
            })
            .collect()
    }

    /// Up to `count` items of `list` from position `start` (0 = oldest).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn list_range(
        &self,
        list: &str,
        start: usize,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let first = isize::try_from(start).unwrap_or(isize::MAX);
        let last = first.saturating_add(isize::try_from(count).unwrap_or(isize::MAX) - 1);
        redis::AsyncCommands::lrange(&mut conn, self.list_key(list), first, last)
            .await
            .map_err(store_error)
    }

    /// Up to `count` items of `list` from position `start` counted from the newest (0 = newest),
    /// newest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn list_range_newest(
        &self,
        list: &str,
        start: usize,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let newest = -1 - isize::try_from(start).unwrap_or(isize::MAX - 1);
        let oldest = newest.saturating_sub(isize::try_from(count).unwrap_or(isize::MAX) - 1);
        let mut items: Vec<String> =
            redis::AsyncCommands::lrange(&mut conn, self.list_key(list), oldest, newest)
                .await
                .map_err(store_error)?;
        items.reverse();
        Ok(items)
    }

    /// How many items `list` holds.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn list_len(&self, list: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        redis::AsyncCommands::llen(&mut conn, self.list_key(list))
            .await
            .map_err(store_error)
    }
}
