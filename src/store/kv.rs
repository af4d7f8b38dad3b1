//! The `kv` tree: small JSON values for front ends (Telegram chats, pending updates, handoffs),
//! wrapped as `{"v":1,"value":...}` like every other record. Values that belong to a
//! conversation are sealed with its owner's key ([`sealed::kv_owner`]); a value whose key was
//! destroyed reads as absent.

use super::records::{KvIn, KvOut, VERSION, decode};
use super::{Store, StoreError, sealed};
use serde::{Serialize, de::DeserializeOwned};

impl Store {
    /// A value of the `kv` tree (front-end state: Telegram chats, pending updates, handoffs).
    pub fn kv_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let value = self.kv.get(key).map_err(|e| self.sled_err(e))?;
        match value {
            Some(v) => self.kv_decode(key, &v),
            None => Ok(None),
        }
    }

    /// Store a value in the `kv` tree (not flushed).
    pub fn kv_put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.kv
            .insert(key, self.kv_bytes(key, value)?)
            .map(|_| ())
            .map_err(|e| self.sled_err(e))
    }

    /// Store a value under `key` only if the key is free (not flushed). One sled
    /// compare-and-swap: of callers racing for one key, exactly one gets `true`.
    pub fn kv_insert_new<T: Serialize>(&self, key: &str, value: &T) -> Result<bool, StoreError> {
        let swapped = self
            .kv
            .compare_and_swap(key, None::<&[u8]>, Some(self.kv_bytes(key, value)?))
            .map_err(|e| self.sled_err(e))?;
        Ok(swapped.is_ok())
    }

    /// Remove the `kv` values whose keys sort in `from..to`; returns how many.
    /// Replace the value at `key` with `change(value)` if there is one, atomically: a value
    /// removed or replaced meanwhile is never brought back or overwritten with a change of an
    /// older one (compare-and-swap on the stored bytes, retried). Returns whether it changed.
    pub fn kv_update<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        change: impl Fn(T) -> T,
    ) -> Result<bool, StoreError> {
        loop {
            let Some(old) = self.kv.get(key).map_err(|e| self.sled_err(e))? else {
                return Ok(false);
            };
            let Some(value) = self.kv_decode::<T>(key, &old)? else {
                return Ok(false);
            };
            let new = self.kv_bytes(key, &change(value))?;
            let swapped = self
                .kv
                .compare_and_swap(key, Some(old), Some(new))
                .map_err(|e| self.sled_err(e))?;
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

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

    /// All `kv` values whose key starts with `prefix`, in key order (erased ones left out).
    pub fn kv_scan<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix(prefix) {
            let (key, value) = item.map_err(|e| self.sled_err(e))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            if let Some(v) = self.kv_decode(&key, &value)? {
                out.push((key, v));
            }
        }
        Ok(out)
    }

    fn kv_decode<T: DeserializeOwned>(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let data_key = sealed::kv_owner(key).and_then(|o| self.keys.get(&o));
        let describe = || format!("kv/{key}");
        match sealed::open_value(data_key.as_ref(), "kv", key.as_bytes(), value, describe)? {
            Some(plain) => decode::<KvIn<T>>(describe, &plain).map(|r| Some(r.value)),
            None => Ok(None),
        }
    }

    /// The stored bytes of a `kv` value: sealed when it belongs to a conversation. A front
    /// end's owner gets its key on first use; a session's must exist (else `NoSession`).
    fn kv_bytes<T: Serialize>(&self, key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
        let plain =
            serde_json::to_vec(&KvOut { v: VERSION, value }).map_err(|e| StoreError::Encode {
                key: key.to_string(),
                reason: e.to_string(),
            })?;
        let Some(owner) = sealed::kv_owner(key) else {
            return Ok(plain);
        };
        let data_key = if sealed::is_session_owner(&owner) {
            self.keys
                .get(&owner)
                .ok_or_else(|| StoreError::NoSession(owner[1..].to_string()))?
        } else {
            self.keys.get_or_create(&owner)?
        };
        Ok(sealed::seal_value(&data_key, "kv", key.as_bytes(), &plain))
    }
}
