//! The functions one platform serves, by name: event functions and web / image-style ones.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::FunctionConfig;
use crate::event::EventPool;
use crate::http::HttpPool;

/// One function and its instances.
#[derive(Debug, Clone)]
pub(crate) enum Function {
    /// An event function (`event.rs`).
    Event(Arc<EventPool>),
    /// A web or image-style function (`http.rs`).
    Http(Arc<HttpPool>),
}

impl Function {
    pub(crate) fn config(&self) -> &FunctionConfig {
        match self {
            Function::Event(pool) => &pool.config,
            Function::Http(pool) => &pool.config,
        }
    }
}

/// The functions, by name.
#[derive(Debug, Default)]
pub(crate) struct Functions {
    pub(crate) events: HashMap<String, Arc<EventPool>>,
    pub(crate) http: HashMap<String, Arc<HttpPool>>,
}

impl Functions {
    /// Every function's name, sorted.
    pub(crate) fn names(&self) -> Vec<&String> {
        let mut names: Vec<&String> = self.events.keys().chain(self.http.keys()).collect();
        names.sort();
        names
    }

    pub(crate) fn get(&self, name: &str) -> Option<Function> {
        match (self.events.get(name), self.http.get(name)) {
            (Some(pool), _) => Some(Function::Event(pool.clone())),
            (None, Some(pool)) => Some(Function::Http(pool.clone())),
            (None, None) => None,
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.events.contains_key(name) || self.http.contains_key(name)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty() && self.http.is_empty()
    }
}
