//! An instance's environment, built from nothing: the variables the platform gives it (the documented SCF
//! variables and the function's own, in [`crate::SpawnSpec::env`]) and a short allowlist of the platform's
//! own ([`INHERITED`]). Nothing else of the platform's environment reaches a function: no credentials
//! (`TENCENTCLOUD_SECRETKEY`, `AWS_SECRET_ACCESS_KEY`, …), no tokens, no proxies.

/// The variables of the platform's environment an instance inherits (when the platform has them), besides
/// every `LC_*` locale variable: where programs are, the locale, the time zone, the home directory, the
/// dynamic linker's path, and the runtime's own choices of interpreter and addon (`docs/python.md`, `docs/node.md`). The
/// instance's `TMPDIR` is always its own (the platform sets it).
pub const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "LD_LIBRARY_PATH",
    "SCF_PYTHON",
    "SCF_NODE",
    "SCF_NODE_BOOTSTRAP",
    "SCF_NODE_ADDON",
];

/// Whether the platform's variable `name` is passed on to instances.
pub fn inherited(name: &str) -> bool {
    INHERITED.contains(&name) || name.starts_with("LC_")
}

/// The whole environment of an instance: the allowlisted variables of `platform` (the platform's own
/// environment), then `own` (which wins: a function may set its own `TZ` or `PATH`).
pub fn instance_environment<I, K, V>(platform: I, own: &[(String, String)]) -> Vec<(String, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut env: Vec<(String, String)> = platform
        .into_iter()
        .filter_map(|(k, v)| {
            let k = k.as_ref().to_str()?;
            (inherited(k) && !own.iter().any(|(o, _)| o == k))
                .then(|| Some((k.to_owned(), v.as_ref().to_str()?.to_owned())))?
        })
        .collect();
    env.sort();
    env.extend(own.iter().cloned());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowlist_and_the_instances_own_variables() {
        let platform = [
            ("PATH", "/usr/bin"),
            ("TENCENTCLOUD_SECRETKEY", "secret"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("LC_ALL", "C.UTF-8"),
            ("TZ", "UTC"),
            ("HTTPS_PROXY", "http://user:pw@proxy"),
        ];
        let own = vec![
            ("SCF_FUNCTIONNAME".to_owned(), "f".to_owned()),
            ("TZ".to_owned(), "Asia/Shanghai".to_owned()),
        ];
        let env = instance_environment(platform, &own);
        assert_eq!(
            env,
            [
                ("LC_ALL", "C.UTF-8"),
                ("PATH", "/usr/bin"),
                ("SCF_FUNCTIONNAME", "f"),
                ("TZ", "Asia/Shanghai"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }
}
