//! The `scf_bootstrap` a component writes when the code has none: for an `http` component, the one of its
//! framework; for a web function of `component: scf`, the runtime's interpreter on `entryFile`. The cloud's
//! start the interpreters under `/var/lang/…`; these start the machine's own (`node`, `python3`, `php` on
//! `PATH`), listening on `PORT` (9000 in an instance's own network, as on the cloud).

use std::path::Path;

use crate::PlatformError;

/// A start command made for a web function whose code has no `scf_bootstrap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generated {
    /// The program.
    pub(crate) program: String,
    /// Its arguments.
    pub(crate) args: Vec<String>,
    /// What the banner shows.
    pub(crate) shown: String,
}

/// The frameworks of the `http` component.
pub(crate) const FRAMEWORKS: &[&str] = &[
    "express", "koa", "egg", "nestjs", "nextjs", "nuxtjs", "flask", "django", "laravel", "thinkphp",
];

fn shell(script: String) -> Generated {
    Generated {
        program: "/bin/sh".to_owned(),
        args: vec!["-c".to_owned(), format!("exec {script}")],
        shown: script,
    }
}

fn node_script(what: &str, js: &str) -> Generated {
    Generated {
        program: "node".to_owned(),
        args: vec!["-e".to_owned(), js.to_owned()],
        shown: format!("node ({what})"),
    }
}

/// The start of `framework`'s server.
pub(crate) fn framework(framework: &str) -> Result<Generated, PlatformError> {
    Ok(match framework.to_ascii_lowercase().as_str() {
        "express" | "koa" => shell("node app.js".to_owned()),
        "nestjs" => shell("env SERVERLESS=1 node ./dist/main.js".to_owned()),
        "egg" => node_script(
            "egg in single mode",
            "const tmp = process.env.TMPDIR || '/tmp';\n\
             Object.assign(process.env, { EGG_SERVER_ENV: 'prod', NODE_ENV: 'production', NODE_LOG_DIR: tmp,\n\
               EGG_APP_CONFIG: JSON.stringify({ rundir: tmp, logger: { dir: tmp } }) });\n\
             const { Application } = require('egg');\n\
             new Application({ mode: 'single', env: 'prod' }).listen(Number(process.env.PORT || 9000), '0.0.0.0');\n",
        ),
        "nextjs" => node_script(
            "next start",
            "require('next/dist/cli/next-start').nextStart(['--port', process.env.PORT || '9000', '--hostname', '0.0.0.0']);\n",
        ),
        "nuxtjs" => node_script(
            "nuxt start",
            "require('@nuxt/cli').run(['start', '--port', process.env.PORT || '9000', '--hostname', '0.0.0.0'])\n\
             .catch((e) => { console.error(e); process.exit(2); });\n",
        ),
        "flask" => shell("python3 -u app.py".to_owned()),
        "django" => shell("python3 -u manage.py runserver 0.0.0.0:${PORT:-9000} --noreload".to_owned()),
        "laravel" => shell(
            "env SERVERLESS=1 LOG_CHANNEL=stderr SESSION_DRIVER=array php artisan serve --host 0.0.0.0 --port ${PORT:-9000}"
                .to_owned(),
        ),
        "thinkphp" => shell("env SERVERLESS=1 php think run --host 0.0.0.0 --port ${PORT:-9000}".to_owned()),
        other => {
            return Err(PlatformError::Config(format!(
                "faas.framework '{other}': expected one of {}",
                FRAMEWORKS.join(", ")
            )));
        }
    })
}

/// The start of a web function of `runtime` (`Nodejs12.16`, `Python3.9`, `Php7`, …) whose server is in
/// `entry_file` (default `app.js`, `app.py` or `hello.php`).
pub(crate) fn entry_file(
    runtime: &str,
    entry_file: Option<&str>,
) -> Result<Generated, PlatformError> {
    let lower = runtime.to_ascii_lowercase();
    let (runner, default) = if lower.starts_with("nodejs") || lower.is_empty() {
        ("node", "app.js")
    } else if lower.starts_with("python") {
        ("python3 -u", "app.py")
    } else if lower.starts_with("php") {
        ("php -S 0.0.0.0:${PORT:-9000}", "hello.php")
    } else {
        return Err(PlatformError::Config(format!(
            "a web function of runtime {runtime} needs its own scf_bootstrap (one is made for Node.js, Python and PHP only)"
        )));
    };
    let file = entry_file.unwrap_or(default);
    if file.contains(['\'', '"', '$', '`', ';', '&', '|', '\n']) {
        return Err(PlatformError::Config(format!(
            "entryFile '{file}': a file name, without quotes or shell characters"
        )));
    }
    Ok(shell(format!("{runner} {file}")))
}

/// A warning when the code's own `scf_bootstrap` starts an interpreter under `/var/lang/…` that this machine
/// does not have (the cloud's paths).
pub(crate) fn cloud_paths(bootstrap: &Path) -> Option<String> {
    let text = std::fs::read_to_string(bootstrap).ok()?;
    let start = text.find("/var/lang/")?;
    let path: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
        .collect();
    if Path::new(&path).exists() {
        return None;
    }
    Some(format!(
        "{} starts {path}, which is the cloud's interpreter and is not on this machine: start the interpreter from PATH \
         (`node app.js`), or remove the file to have one made",
        bootstrap.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frameworks_and_entry_files() {
        assert_eq!(
            framework("express").expect("express").args,
            ["-c", "exec node app.js"]
        );
        assert_eq!(
            framework("Flask").expect("flask").shown,
            "python3 -u app.py"
        );
        assert_eq!(framework("nextjs").expect("next").program, "node");
        for f in FRAMEWORKS {
            assert!(framework(f).is_ok(), "{f}");
        }
        let e = framework("rails").expect_err("rails");
        assert!(e.to_string().contains("express, koa"), "{e}");
        assert_eq!(
            entry_file("Nodejs12.16", None).expect("node").shown,
            "node app.js"
        );
        assert_eq!(
            entry_file("Python3.9", Some("server.py"))
                .expect("py")
                .shown,
            "python3 -u server.py"
        );
        assert!(entry_file("Go1", None).is_err());
        assert!(entry_file("Nodejs12.16", Some("a.js; rm -rf /")).is_err());
    }
}
