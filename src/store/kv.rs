//! The `kv` tree: small JSON values for front ends (Telegram chats, pending updates, handoffs),
//! wrapped as `{"v":1,"value":...}` like every other record.

use super::records::{KvIn, KvOut, VERSION, decode};
use super::{Store, StoreError};
use serde::{Serialize, de::DeserializeOwned};

impl Store {
    /// A value of the `kv` tree (front-end state: Telegram chats, pending updates, handoffs).
    pub fn kv_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let value = self.kv.get(key).map_err(|e| self.sled_err(e))?;
        value
            .map(|v| decode::<KvIn<T>>(|| format!("kv/{key}"), &v).map(|r| r.value))
            .transpose()
    }

    /// Store a value in the `kv` tree (not flushed).
    pub fn kv_put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.kv
            .insert(key, kv_bytes(key, value)?)
            .map(|_| ())
            .map_err(|e| self.sled_err(e))
    }

    /// Store a value under `key` only if the key is free (not flushed). One sled
    /// compare-and-swap: of callers racing for one key, exactly one gets `true`.
    pub fn kv_insert_new<T: Serialize>(&self, key: &str, value: &T) -> Result<bool, StoreError> {
        let swapped = self
            .kv
            .compare_and_swap(key, None::<&[u8]>, Some(kv_bytes(key, value)?))
            .map_err(|e| self.sled_err(e))?;
        Ok(swapped.is_ok())
    }

    /// Remove the `kv` values whose keys sort in `from..to`; returns how many.
    pub fn kv_remove_range(&self, from: &str, to: &str) -> Result<usize, StoreError> {
        let mut removed = 0;
        for key in self.kv.range(from..to).keys() {
            let key = key.map_err(|e| self.sled_err(e))?;
            if self.kv.remove(key).map_err(|e| self.sled_err(e))?.is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Remove a `kv` value.
    pub fn kv_remove(&self, key: &str) -> Result<(), StoreError> {
        self.kv
            .remove(key)
            .map(|_| ())
            .map_err(|e| self.sled_err(e))
    }

    /// All `kv` values whose key starts with `prefix`, in key order.
    pub fn kv_scan<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix(prefix) {
            let (key, value) = item.map_err(|e| self.sled_err(e))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let record: KvIn<T> = decode(|| format!("kv/{key}"), &value)?;
            out.push((key, record.value));
        }
        Ok(out)
    }
}

fn kv_bytes<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&KvOut { v: VERSION, value }).map_err(|e| StoreError::Encode {
        key: key.to_string(),
        reason: e.to_string(),
    })
}
