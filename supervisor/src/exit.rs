//! How an instance process ended, and the one text that describes it.

/// How an instance's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// How the process itself ended.
    pub how: ExitHow,
    /// The instance passed its memory size: the kernel's OOM killer (in the instance's cgroup) or the
    /// platform's sampler killed it.
    pub memory_exceeded: bool,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitHow {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// It is gone; how is not known.
    Unknown,
}

impl Exit {
    /// The text every kind of instance uses for the exit: `exit status 2`, `killed by signal 9 (SIGKILL)`.
    pub fn describe(&self) -> String {
        match self.how {
            ExitHow::Code(code) => format!("exit status {code}"),
            ExitHow::Signal(sig) => format!("killed by signal {sig}{}", signal_name(sig)),
            ExitHow::Unknown => "exited".to_owned(),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGINT => " (SIGINT)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_once_for_every_instance() {
        let e = |how| Exit {
            how,
            memory_exceeded: false,
        };
        assert_eq!(e(ExitHow::Code(2)).describe(), "exit status 2");
        assert_eq!(
            e(ExitHow::Signal(libc::SIGKILL)).describe(),
            "killed by signal 9 (SIGKILL)"
        );
        assert_eq!(e(ExitHow::Signal(64)).describe(), "killed by signal 64");
    }
}
