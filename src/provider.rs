//! Which provider: a [`ProviderId`] names one entry of the configuration's provider table,
//! and a [`ProviderTable`] holds one value per provider, reached only by id.
//!
//! A leaf: the gate, the token cache, the stats and the glue's per-provider state all name
//! providers this way, so that no bare index is passed around.

/// One configured provider: its position in `providers` (the single-issuer form has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(usize);

impl ProviderId {
    /// The provider at `index` of the configuration's list.
    pub const fn at(index: usize) -> ProviderId {
        ProviderId(index)
    }

    /// Its position in the configuration's list.
    pub const fn index(self) -> usize {
        self.0
    }
}

/// One `T` per provider, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderTable<T> {
    entries: Vec<T>,
}

impl<T> Default for ProviderTable<T> {
    fn default() -> Self {
        ProviderTable {
            entries: Vec::new(),
        }
    }
}

impl<T> FromIterator<T> for ProviderTable<T> {
    fn from_iter<I: IntoIterator<Item = T>>(entries: I) -> Self {
        ProviderTable {
            entries: entries.into_iter().collect(),
        }
    }
}

impl<T> ProviderTable<T> {
    /// Provider `id`'s entry; `None` only for an id of another table.
    pub fn get(&self, id: ProviderId) -> Option<&T> {
        self.entries.get(id.0)
    }

    /// Provider `id`'s entry, to change.
    pub fn get_mut(&mut self, id: ProviderId) -> Option<&mut T> {
        self.entries.get_mut(id.0)
    }

    /// Every entry with its id, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = (ProviderId, &T)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(index, entry)| (ProviderId(index), entry))
    }

    /// Every entry with its id, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ProviderId, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .map(|(index, entry)| (ProviderId(index), entry))
    }

    /// Every entry, in configuration order.
    pub fn values(&self) -> std::slice::Iter<'_, T> {
        self.entries.iter()
    }

    /// How many providers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none (a configuration always has one).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A table of `f` of each entry, by the same ids.
    pub fn map<U>(&self, f: impl FnMut(&T) -> U) -> ProviderTable<U> {
        ProviderTable {
            entries: self.entries.iter().map(f).collect(),
        }
    }
}
