//! How web instances get their port: with a network namespace of their own (only a loopback interface),
//! every instance listens on port 9000 as on the cloud, and the platform reaches it through a connection its
//! init makes inside ([`crate::Process::connect`]). Where namespaces cannot be made (not root and no user
//! namespaces, a kernel or container without them, or `SCF_LOCAL_NETNS=off`) the instances share the
//! machine's network and each is told a free port in `PORT` (the fallback).

/// How instances are given their port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    /// A network namespace per instance; every instance listens on 9000.
    Namespace,
    /// No namespaces; each instance gets a free port of the machine in `PORT`, for the reason given.
    SharedPort(String),
}

impl NetMode {
    /// One line saying which mode runs, for the platform's banner and the cold start's log.
    pub fn describe(&self) -> String {
        match self {
            NetMode::Namespace => {
                "each instance has its own network namespace and listens on port 9000".to_owned()
            }
            NetMode::SharedPort(why) => format!(
                "no network namespaces ({why}): each instance listens on the free port given in PORT"
            ),
        }
    }
}
