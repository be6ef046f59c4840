//! The handler string `file.method`: parsed by [`scf_protocol::handler`], the one place for every language.

pub use scf_protocol::handler::HandlerName;
