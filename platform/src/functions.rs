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
    /// A web or image-style function (`http/`).
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
    /// When the platform read them, ms since the epoch (their `AddTime` and `ModTime`).
    pub(crate) loaded_ms: i64,
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

    /// Every function's definition, by name.
    pub(crate) fn configs(&self) -> Vec<&FunctionConfig> {
        let mut all: Vec<&FunctionConfig> = self
            .events
            .values()
            .map(|p| &p.config)
            .chain(self.http.values().map(|p| &p.config))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// No functions yet, read now (their `AddTime` and `ModTime`).
    pub(crate) fn new() -> Functions {
        Functions {
            loaded_ms: scf_store::now_ms(),
            ..Functions::default()
        }
    }

    /// The functions of the projects in `dirs`, each read by `load` (one directory, one project: one
    /// function, or a multi-scf project's several), and what reading them found, as the banner says it:
    /// warnings, keys not honoured, start commands made for web functions.
    pub(crate) fn read(
        dirs: &[std::path::PathBuf],
        load: impl Fn(&std::path::Path) -> Result<crate::config::Project, crate::PlatformError>,
    ) -> Result<(Vec<FunctionConfig>, Vec<String>), crate::PlatformError> {
        let mut configs = Vec::new();
        let mut notes = Vec::new();
        for dir in dirs {
            let project = load(dir)?;
            notes.extend(project.warnings.iter().map(|w| format!("warning: {w}")));
            if !project.ignored.is_empty() {
                notes.push(format!(
                    "{}: read but not honoured locally: {}",
                    project.file.as_deref().unwrap_or(&project.dir).display(),
                    project.ignored.join(", ")
                ));
            }
            for config in project.functions {
                if let Some(made) = config.http.as_ref().and_then(|h| h.generated.as_ref()) {
                    notes.push(format!(
                        "function {}: its code has no scf_bootstrap: started with `{made}`",
                        config.name
                    ));
                }
                configs.push(config);
            }
        }
        Ok((configs, notes))
    }

    /// Adds `config`'s function (an event pool, or a web / image-style one); refuses a second function of
    /// the same name.
    pub(crate) fn add(
        &mut self,
        config: FunctionConfig,
        platform: &crate::instance::Platform,
        store: &scf_store::Store,
        events: &crate::activity::Events,
    ) -> Result<(), crate::PlatformError> {
        if self.contains(&config.name) {
            return Err(crate::PlatformError::Config(format!(
                "two functions are named {}",
                config.name
            )));
        }
        let name = config.name.clone();
        platform.serves_code(&config.code_dir);
        if config.http.is_some() {
            self.http.insert(
                name,
                HttpPool::new(config, platform.clone(), store.clone(), events.clone()),
            );
        } else {
            self.events.insert(
                name,
                EventPool::new(config, platform.clone(), store.clone(), events.clone()),
            );
        }
        Ok(())
    }
}
