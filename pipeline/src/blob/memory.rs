//! [`MemoryBlobStore`]: blobs in a map, for tests and throwaway runs.
//!
//! Generations count up from 1 across the whole store. A streamed upload is collected whole
//! before it becomes visible (the memory store holds every object in memory anyway).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::StreamExt;

use super::{
    BlobError, BlobKey, BlobMeta, BlobReadStream, BlobStore, ByteStream, Condition, CreateOutcome,
    Generation, check_prefix,
};

/// One stored object.
#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    meta: BlobMeta,
}

/// The map and the generation counter, behind one lock so conditional writes are atomic.
#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, Object>,
    last_generation: Generation,
}

/// Blobs in memory. Cheap to create; nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    name: String,
    state: Mutex<State>,
}

impl MemoryBlobStore {
    /// An empty store whose URIs read `memory://name/key`.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.trim_end_matches('/').to_owned(),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated (each update is one
        // insert or remove), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(
        &self,
        key: &BlobKey,
        data: Bytes,
        content_type: &str,
        condition: Condition,
    ) -> Result<BlobMeta, BlobError> {
        let mut state = self.lock();
        let current = state.objects.get(key.as_str()).map(|o| o.meta.generation);
        condition.check(current, || self.uri(key))?;
        state.last_generation += 1;
        let meta = BlobMeta {
            key: key.as_str().to_owned(),
            size: data.len() as u64,
            generation: state.last_generation,
            content_type: content_type.to_owned(),
            updated: Utc::now(),
        };
        state.objects.insert(
            key.as_str().to_owned(),
            Object {
                data,
                meta: meta.clone(),
            },
        );
        Ok(meta)
    }

    fn object(&self, key: &BlobKey) -> Result<Object, BlobError> {
        self.lock()
            .objects
            .get(key.as_str())
            .cloned()
            .ok_or_else(|| BlobError::NotFound { uri: self.uri(key) })
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    fn uri(&self, key: &BlobKey) -> String {
        format!("memory://{}/{}", self.name, key)
    }

    async fn put(
        &self,
        key: &BlobKey,
        data: Bytes,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        self.write(key, data, content_type, Condition::None)
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        mut data: ByteStream,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        let mut all = BytesMut::new();
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|source| BlobError::Source {
                uri: self.uri(key),
                source,
            })?;
            all.extend_from_slice(&chunk);
        }
        self.write(key, all.freeze(), content_type, Condition::None)
    }

    async fn create_if_absent(
        &self,
        key: &BlobKey,
        data: Bytes,
        content_type: &str,
    ) -> Result<CreateOutcome, BlobError> {
        CreateOutcome::of_write(self.write(key, data, content_type, Condition::Absent))
    }

    async fn replace_if_generation(
        &self,
        key: &BlobKey,
        data: Bytes,
        content_type: &str,
        generation: Generation,
    ) -> Result<BlobMeta, BlobError> {
        self.write(key, data, content_type, Condition::Generation(generation))
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        Ok(self.object(key)?.data)
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<BlobReadStream, BlobError> {
        let data = self.object(key)?.data;
        Ok(futures::stream::once(async move { Ok(data) }).boxed())
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        Ok(self.object(key)?.meta)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        check_prefix(prefix)?;
        let state = self.lock();
        Ok(state
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, o)| o.meta.clone())
            .collect())
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool, BlobError> {
        Ok(self.lock().objects.remove(key.as_str()).is_some())
    }

    async fn delete_if_generation(
        &self,
        key: &BlobKey,
        generation: Generation,
    ) -> Result<(), BlobError> {
        let mut state = self.lock();
        match state.objects.get(key.as_str()).map(|o| o.meta.generation) {
            None => Err(BlobError::NotFound { uri: self.uri(key) }),
            Some(g) if g != generation => Err(BlobError::PreconditionFailed {
                uri: self.uri(key),
                expected: generation,
            }),
            Some(_) => {
                state.objects.remove(key.as_str());
                Ok(())
            }
        }
    }
}
