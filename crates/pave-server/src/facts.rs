//! This replica's copy of the delivery facts, for the DORA queries: reading a million rows
//! for every query would cost seconds, so the copy is kept and, before each use, brought up
//! to date from the rows changed since (`seq`). The store stays the only truth: the copy is
//! checked against it on every use, so replicas answer alike.

use std::collections::HashMap;
use std::sync::Arc;

use pave_store::{DeliveryFacts, Store, StoreError};

#[derive(Default)]
struct Copy {
    facts: Arc<DeliveryFacts>,
    deployments: HashMap<String, usize>,
    incidents: HashMap<String, usize>,
    changes: HashMap<String, usize>,
}

/// Merges `items` into `list`, replacing those whose key is already there.
fn merge<T>(list: &mut Vec<T>, index: &mut HashMap<String, usize>, items: Vec<T>, key: impl Fn(&T) -> &str) {
    for item in items {
        match index.get(key(&item)) {
            Some(&i) => list[i] = item,
            None => {
                index.insert(key(&item).to_owned(), list.len());
                list.push(item);
            }
        }
    }
}

#[derive(Default)]
pub struct FactsCache {
    copy: tokio::sync::Mutex<Copy>,
}

impl FactsCache {
    /// The current facts: the kept copy if nothing changed since, else the copy caught up.
    pub async fn current(&self, store: &Store) -> Result<Arc<DeliveryFacts>, StoreError> {
        let mut copy = self.copy.lock().await;
        let latest = store.delivery_seq().await?;
        if copy.facts.seq == latest && (latest > 0 || copy.deployments.is_empty()) {
            return Ok(copy.facts.clone());
        }
        let delta = store.delivery_changes_since(copy.facts.seq, &[]).await?;
        let Copy { facts, deployments, incidents, changes } = &mut *copy;
        let f = Arc::make_mut(facts);
        f.seq = f.seq.max(delta.seq);
        merge(&mut f.deployments, deployments, delta.deployments, |d| d.id.as_str());
        merge(&mut f.incidents, incidents, delta.incidents, |i| i.id.as_str());
        merge(&mut f.changes, changes, delta.changes, |c| c.sha.as_str());
        Ok(copy.facts.clone())
    }
}
