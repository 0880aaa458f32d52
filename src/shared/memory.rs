//! A test double of [`SharedStore`]: shared data as Envoy keeps it, in memory, for the tests
//! of the key cache, the fetcher and the socket quota.

use std::cell::RefCell;
use std::collections::HashMap;

use super::SharedStore;

/// Shared data as Envoy keeps it: every set bumps a process-wide CAS counter. A hook
/// can run once just before a set of a chosen entry, to play another VM's thread
/// writing between this VM's read and its write.
#[derive(Default)]
pub(crate) struct Memory {
    /// Each entry's value and CAS number.
    pub entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: RefCell<u32>,
    /// A hook run once just before the named entry is set.
    #[allow(clippy::type_complexity)]
    pub before_set: RefCell<Option<(String, Box<dyn FnOnce()>)>>,
}

impl SharedStore for &Memory {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.entries.borrow().get(key) {
            // As Envoy answers: an empty value comes back as none, with its CAS token.
            Some((value, cas)) if value.is_empty() => (None, Some(*cas)),
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let hook = self.before_set.borrow_mut().take();
        match hook {
            Some((entry, hook)) if entry == key => hook(),
            other => *self.before_set.borrow_mut() = other,
        }
        let mut entries = self.entries.borrow_mut();
        if let (Some(expected), Some((_, current))) = (cas, entries.get(key)) {
            if expected != *current {
                return false;
            }
        }
        *self.next_cas.borrow_mut() += 1;
        entries.insert(key.to_owned(), (value.to_vec(), *self.next_cas.borrow()));
        true
    }
}
