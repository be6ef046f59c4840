//! `scf-local package`: a function as a zip the real cloud accepts, and a `serverless.yml` beside it that
//! deploys it (`docs/deploy.md`).
//!
//! What goes into the zip:
//!
//! - **SCF's own runtimes** (a Python or Node.js function, by default): the code directory as SCF's runtime
//!   expects it, the entry file at the top, without what is only for this machine (`.git`, `.venv`,
//!   `__pycache__`, `serverless.yml`, `.env`, the platform's data).
//! - **A custom runtime** (`--custom-runtime`, and always for native functions and for Lambda): the code, plus
//!   a generated `bootstrap` that starts `scf-shim` from [`RUNTIME_DIR`] in the package (the shim and the
//!   language pieces it needs, in the runtime layout `bin/scf-shim`, `lib/scf-runtime/…`), or from a layer's
//!   `/opt/bin/scf-shim` when the package uses one.
//! - **A Rust crate**: built with cargo ([`crate::build::build_crate`]; release, glibc 2.17 through
//!   cargo-zigbuild when it is installed); its library goes where the handler names it, or its `bootstrap`
//!   binary is the package.
//! - **The layer** ([`package_layer`]): the shim and every language piece under the layer's `/opt` layout
//!   (`bin/scf-shim`, `lib/scf-runtime/{python,node}`), shared by many functions.
//!
//! Modes are kept (the bootstrap and the shim are 0755), names sorted, times fixed: the same input gives the
//! same zip. The whole package is bounded ([`MAX_PACKAGE_BYTES`]).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use scf_shim::host::Kind;
use scf_shim::host::layout::{self, Piece};

use crate::PlatformError;
use crate::build::{self, Artifact, BuildRequest, Profile};
use crate::config::{FunctionConfig, RuntimeKind};

mod archive;
mod deploy;

use archive::write;
use deploy::{lambda_function_yml, lambda_name, put, scf_function_yml, scf_runtime_name, yaml};

/// Where a package that carries its own runtime keeps it: `scf-runtime/bin/scf-shim`,
/// `scf-runtime/lib/scf-runtime/…` (the runtime layout, so the shim finds its pieces beside itself).
pub const RUNTIME_DIR: &str = "scf-runtime";
/// The most a package may hold, uncompressed. SCF takes a zip of up to 50 MB uploaded directly, larger ones
/// through COS; code of more than this is refused here.
pub const MAX_PACKAGE_BYTES: u64 = 500 * 1024 * 1024;
/// The Python runtime of SCF a package names when the function says only `python3`.
pub const DEFAULT_SCF_PYTHON: &str = "Python3.9";
/// The Node.js runtime of SCF a package names when the function says only `nodejs`.
pub const DEFAULT_SCF_NODE: &str = "Nodejs16.13";
/// AWS Lambda's runtime for a `bootstrap` on Amazon Linux 2023.
pub const LAMBDA_RUNTIME: &str = "provided.al2023";
/// The first words of every `serverless.yml` this module writes: one it did not write is never replaced.
const MARKER: &str = "# Written by scf-local package for ";

/// Which cloud the package is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cloud {
    /// Tencent Cloud's SCF, deployed with Tencent's Serverless Framework (component `scf`).
    #[default]
    Scf,
    /// AWS Lambda's `provided.al2023` runtime (the shim speaks the Lambda Runtime API), deployed with the
    /// Serverless Framework's `aws` provider.
    Lambda,
}

/// How to package.
#[derive(Debug, Clone, Default)]
pub struct PackageOptions {
    /// The zip to write; `serverless.yml` (and, for SCF, the folder the framework uploads) go beside it.
    pub output: PathBuf,
    /// The cloud.
    pub cloud: Cloud,
    /// A Python or Node.js function as a custom runtime (our shim) instead of SCF's own runtime.
    pub custom_runtime: bool,
    /// Start the shim from a layer (`package --layer`) instead of carrying it: the layer as the deployment
    /// names it (SCF `NAME:VERSION`, Lambda the layer version's ARN).
    pub use_layer: Option<String>,
    /// For a custom runtime: the interpreter the instance runs Python with (a path in the instance, e.g. from
    /// a layer), given to the shim as `SCF_PYTHON`.
    pub python: Option<String>,
    /// For a custom runtime: the `node` the instance runs (a path in the instance), as `SCF_NODE`.
    pub node: Option<String>,
    /// The profile a crate is built with.
    pub profile: Profile,
    /// Build a crate for this machine's glibc even when cargo-zigbuild could build it for glibc 2.17.
    pub host_glibc: bool,
}

/// What [`package_function`] or [`package_layer`] wrote.
#[derive(Debug, Clone)]
pub struct Packaged {
    /// The zip.
    pub zip: PathBuf,
    /// Its files.
    pub files: usize,
    /// Their size, uncompressed.
    pub bytes: u64,
    /// The runtime the deployment names (`Python3.9`, `CustomRuntime`, `provided.al2023`, …).
    pub runtime: String,
    /// The `serverless.yml` that deploys it.
    pub serverless_yml: PathBuf,
    /// For SCF: the folder beside the zip holding the same files, which Tencent's framework uploads.
    pub src_dir: Option<PathBuf>,
    /// What the user should know (one sentence each).
    pub notes: Vec<String>,
}

/// One file of a package.
#[derive(Debug)]
struct Entry {
    /// Its path in the package (`/`-separated).
    name: String,
    source: Source,
    executable: bool,
}

#[derive(Debug)]
enum Source {
    File(PathBuf),
    Text(String),
}

/// The files of a package being gathered, with its size bound.
#[derive(Debug, Default)]
struct Contents {
    entries: Vec<Entry>,
    bytes: u64,
}

impl Contents {
    fn add_file(&mut self, name: String, path: &Path) -> Result<(), PlatformError> {
        let meta = std::fs::metadata(path)
            .map_err(PlatformError::io(format!("reading {}", path.display())))?;
        self.bytes += meta.len();
        if self.bytes > MAX_PACKAGE_BYTES {
            return Err(PlatformError::Config(format!(
                "the package would hold more than {} MB (at {}): leave out what the function does not need, or \
                 put shared parts in a layer",
                MAX_PACKAGE_BYTES >> 20,
                path.display()
            )));
        }
        self.entries.push(Entry {
            name,
            source: Source::File(path.to_path_buf()),
            executable: meta.permissions().mode() & 0o111 != 0,
        });
        Ok(())
    }

    fn add_text(&mut self, name: &str, text: String, executable: bool) {
        self.bytes += text.len() as u64;
        self.entries.push(Entry {
            name: name.to_owned(),
            source: Source::Text(text),
            executable,
        });
    }

    fn has(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.name == name || e.name.starts_with(&format!("{name}/")))
    }

    /// Adds every file under `dir` as `<prefix>/<relative path>`, in name order, following symbolic links
    /// (a link back into its own ancestry is left out), skipping what `skip` says.
    fn add_tree(
        &mut self,
        dir: &Path,
        prefix: &str,
        skip: &dyn Fn(&str, &Path, bool) -> bool,
    ) -> Result<(), PlatformError> {
        let mut ancestry = Vec::new();
        self.walk(dir, prefix, "", skip, &mut ancestry)
    }

    fn walk(
        &mut self,
        dir: &Path,
        prefix: &str,
        rel: &str,
        skip: &dyn Fn(&str, &Path, bool) -> bool,
        ancestry: &mut Vec<PathBuf>,
    ) -> Result<(), PlatformError> {
        let real = dir
            .canonicalize()
            .map_err(PlatformError::io(format!("reading {}", dir.display())))?;
        if ancestry.contains(&real) {
            return Ok(());
        }
        ancestry.push(real);
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map_err(PlatformError::io(format!("reading {}", dir.display())))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let Some(name) = name.to_str().map(str::to_owned) else {
                return Err(PlatformError::Config(format!(
                    "{}: a file name that is not UTF-8 cannot go into the package",
                    dir.display()
                )));
            };
            let path = dir.join(&name);
            let rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            // A broken link has no metadata: it is left out, as the cloud could not read it either.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if skip(&rel, &path, meta.is_dir()) {
                continue;
            }
            let full = if prefix.is_empty() {
                rel.clone()
            } else {
                format!("{prefix}/{rel}")
            };
            if meta.is_dir() {
                self.walk(&path, prefix, &rel, skip, ancestry)?;
            } else if meta.is_file() {
                self.add_file(full, &path)?;
            }
        }
        ancestry.pop();
        Ok(())
    }
}

/// The package's file names and output paths, checked before anything is built or written.
#[derive(Debug)]
struct Output {
    zip: PathBuf,
    file_name: String,
    dir: PathBuf,
    yml: PathBuf,
    src_dir: Option<PathBuf>,
}

impl Output {
    fn new(path: &Path, cloud: Cloud) -> Result<Output, PlatformError> {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.len() > 4 && n.ends_with(".zip"))
            .ok_or_else(|| {
                PlatformError::Config(format!(
                    "-o {}: name the zip to write, e.g. -o build/fn.zip",
                    path.display()
                ))
            })?
            .to_owned();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .map_err(PlatformError::io(format!("making {}", parent.display())))?;
        let dir = parent
            .canonicalize()
            .map_err(PlatformError::io(format!("reading {}", parent.display())))?;
        let yml = dir.join("serverless.yml");
        let src_dir = (cloud == Cloud::Scf).then(|| dir.join(&file_name[..file_name.len() - 4]));
        let ours = match std::fs::read_to_string(&yml) {
            Ok(text) => {
                let first = text.lines().next().unwrap_or_default();
                let Some(rest) = first.strip_prefix(MARKER) else {
                    return Err(PlatformError::Config(format!(
                        "{} exists and was not written by scf-local package: write the package into a folder of \
                         its own (-o other/{file_name})",
                        yml.display()
                    )));
                };
                let named = rest.split(':').next().unwrap_or_default();
                if named != file_name {
                    return Err(PlatformError::Config(format!(
                        "{} deploys {named}: write each package into a folder of its own (-o other/{file_name})",
                        yml.display()
                    )));
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(PlatformError::io(format!("reading {}", yml.display()))(e)),
        };
        if let Some(src) = &src_dir {
            if !ours && src.exists() {
                return Err(PlatformError::Config(format!(
                    "{} exists: scf-local package writes the package's files there for the Serverless Framework; \
                     choose another -o",
                    src.display()
                )));
            }
        }
        Ok(Output {
            zip: dir.join(&file_name),
            file_name,
            dir,
            yml,
            src_dir,
        })
    }

    /// The paths, relative to `root`, of what this output writes (and their temporary names), when it writes
    /// inside `root`: the walk of a code directory leaves them out.
    fn inside(&self, root: &Path) -> Vec<String> {
        let Ok(rel) = self.dir.strip_prefix(root) else {
            return Vec::new();
        };
        let mut names = vec![
            self.file_name.clone(),
            "serverless.yml".to_owned(),
            format!(".{}.tmp", self.file_name),
        ];
        if let Some(stem) = self
            .src_dir
            .as_ref()
            .and_then(|s| s.file_name())
            .and_then(|n| n.to_str())
        {
            names.push(stem.to_owned());
            names.push(format!(".{stem}.tmp"));
        }
        names
            .into_iter()
            .map(|n| rel.join(n).display().to_string())
            .collect()
    }

    fn tmp(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}.tmp"))
    }
}

/// How a function's package runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// SCF's own runtime of that name runs the code.
    Own(String),
    /// Our generated `bootstrap` starts `scf-shim`, with these language pieces.
    Shim(Vec<Piece>),
    /// The function is its own custom runtime (its `bootstrap`).
    AsIs,
}

/// Writes the package of `function` (`scf-local package DIR -o fn.zip`), with `shim` (and the language
/// pieces found beside it) as its runtime where it needs ours. Blocks (files, zip, cargo): call it off the
/// event loop.
pub fn package_function(
    shim: &Path,
    function: &FunctionConfig,
    opts: &PackageOptions,
) -> Result<Packaged, PlatformError> {
    if function.http.is_some() {
        return Err(PlatformError::Config(
            "web and image-style functions are not packaged by scf-local package: deploy a web function's folder \
             with the Serverless Framework (type: web), an image-style one as an image"
                .into(),
        ));
    }
    if function.command.is_some() {
        return Err(PlatformError::Config(
            "a function started by a command (--command, inputs.local.command) runs only on this machine: package \
             the custom runtime's bootstrap instead"
                .into(),
        ));
    }
    if opts
        .use_layer
        .as_deref()
        .is_some_and(|l| l.trim().is_empty())
    {
        return Err(PlatformError::Config(
            "--use-layer names the layer, e.g. scf-runtime:1".into(),
        ));
    }
    let out = Output::new(&opts.output, opts.cloud)?;
    let mut notes = Vec::new();
    let mut contents = Contents::default();
    let language = match function.runtime {
        RuntimeKind::Auto => Kind::detect(&function.code_dir, &function.handler),
        RuntimeKind::Python => Kind::Python,
        RuntimeKind::Node => Kind::Node,
        RuntimeKind::Native | RuntimeKind::Custom => Kind::Native,
    };
    let custom = function.runtime == RuntimeKind::Custom;
    let plan = match (&function.rust_crate, language) {
        _ if custom => Plan::AsIs,
        (Some(_), _) => Plan::Shim(Vec::new()),
        (None, Kind::Python | Kind::Node) if opts.cloud == Cloud::Scf && !opts.custom_runtime => {
            Plan::Own(scf_runtime_name(function, language, &mut notes))
        }
        (None, Kind::Python) => Plan::Shim(vec![Piece::Python]),
        (None, Kind::Node) => Plan::Shim(vec![Piece::Node]),
        (None, Kind::Native) => Plan::Shim(Vec::new()),
    };

    // The function's own files.
    match &function.rust_crate {
        Some(crate_dir) => {
            let artifact = if custom {
                Artifact::Bootstrap
            } else {
                Artifact::Library
            };
            let glibc_2_17 = !opts.host_glibc && on_path("cargo-zigbuild");
            if !glibc_2_17 && !opts.host_glibc {
                notes.push(
                    "the crate was built against this machine's glibc (cargo-zigbuild is not on PATH); SCF runs \
                     glibc 2.17: `pip install cargo-zigbuild ziglang` makes scf-local package build for it"
                        .into(),
                );
            }
            let built = build::build_crate(&BuildRequest {
                crate_dir: crate_dir.clone(),
                artifact,
                profile: opts.profile,
                glibc_2_17,
            })
            .map_err(|e| PlatformError::Config(build_failure(&e)))?;
            let at = build::place(&built, artifact, &function.handler)
                .map_err(|e| PlatformError::Config(e.to_string()))?;
            contents.add_file(at.display().to_string(), &built.path)?;
        }
        None => {
            let code = function.code_dir.clone();
            let own = out.inside(&code);
            let skip = |rel: &str, _: &Path, is_dir: bool| -> bool {
                let name = rel.rsplit('/').next().unwrap_or(rel);
                let top = !rel.contains('/');
                own.iter().any(|o| o == rel)
                    || name == ".git"
                    || name == "__pycache__"
                    || (!is_dir && name.ends_with(".pyc"))
                    || (top
                        && matches!(
                            name,
                            ".venv"
                                | ".scf-local"
                                | ".serverless"
                                | "serverless.yml"
                                | "serverless.yaml"
                                | ".env"
                        ))
            };
            contents.add_tree(&code, "", &skip)?;
            if contents.entries.is_empty() {
                return Err(PlatformError::Config(format!(
                    "{} holds no files to package",
                    code.display()
                )));
            }
            if code.join(".venv").is_dir() && matches!(plan, Plan::Own(_)) {
                notes.push(
                    "the code directory's .venv stays on this machine: SCF runs the code with its own Python, so \
                     install what it imports into the folder (pip install -r requirements.txt -t DIR)"
                        .into(),
                );
            }
        }
    }
    if custom && !contents.has("bootstrap") {
        return Err(PlatformError::Config(format!(
            "a custom runtime's package needs an executable bootstrap at its top; {} has none",
            function.code_dir.display()
        )));
    }

    // The runtime, where the package needs ours.
    if let Plan::Shim(pieces) = &plan {
        for taken in ["bootstrap", RUNTIME_DIR] {
            if contents.has(taken) {
                return Err(PlatformError::Config(format!(
                    "the code has its own {taken}, where the package puts the runtime's: rename it, or package \
                     the function as its own custom runtime (--runtime custom)"
                )));
            }
        }
        let bootstrap = match &opts.use_layer {
            Some(_) => bootstrap_script(None, opts),
            None => {
                runtime_layout(shim, pieces, RUNTIME_DIR, &mut contents)?;
                if !layout_is_installed(shim) {
                    notes.push(dev_shim_note(shim));
                }
                bootstrap_script(Some(&format!("./{RUNTIME_DIR}/bin/scf-shim")), opts)
            }
        };
        contents.add_text("bootstrap", bootstrap, true);
    }

    let runtime = match (&plan, opts.cloud) {
        (_, Cloud::Lambda) => LAMBDA_RUNTIME.to_owned(),
        (Plan::Own(name), Cloud::Scf) => name.clone(),
        (_, Cloud::Scf) => "CustomRuntime".to_owned(),
    };
    if opts.cloud == Cloud::Lambda && matches!(plan, Plan::Shim(ref p) if !p.is_empty()) {
        notes.push(format!(
            "{LAMBDA_RUNTIME} has no {} of its own: give the function one in a layer (its bin/ is on PATH there), or \
             name it with --python/--node",
            if language == Kind::Python { "python3" } else { "node" }
        ));
    }
    let yml = match opts.cloud {
        Cloud::Scf => scf_function_yml(function, &out, &runtime, opts.use_layer.as_deref()),
        Cloud::Lambda => lambda_function_yml(function, &out, opts.use_layer.as_deref()),
    }?;
    write(&out, contents, yml, runtime, notes)
}

/// Writes the layer (`scf-local package --layer -o layer.zip`): `scf-shim` and every language piece found
/// beside it, under the layer's `/opt` layout (`bin/scf-shim`, `lib/scf-runtime/{python,node}`).
pub fn package_layer(shim: &Path, opts: &PackageOptions) -> Result<Packaged, PlatformError> {
    let out = Output::new(&opts.output, opts.cloud)?;
    let mut contents = Contents::default();
    runtime_layout(shim, &[Piece::Python, Piece::Node], "", &mut contents)?;
    let mut notes = Vec::new();
    if !layout_is_installed(shim) {
        notes.push(dev_shim_note(shim));
    }
    let stem = &out.file_name[..out.file_name.len() - 4];
    let yml = match opts.cloud {
        Cloud::Scf => {
            let mut inputs = serde_yaml::Mapping::new();
            put(&mut inputs, "name", stem);
            put(&mut inputs, "src", format!("./{stem}"));
            put(
                &mut inputs,
                "runtimes",
                serde_yaml::Value::Sequence(vec!["CustomRuntime".into()]),
            );
            put(
                &mut inputs,
                "description",
                "scf-shim and its language pieces (scf-local package --layer)",
            );
            let mut doc = serde_yaml::Mapping::new();
            put(&mut doc, "component", "layer");
            put(&mut doc, "name", stem);
            put(&mut doc, "inputs", serde_yaml::Value::Mapping(inputs));
            yaml(
                &out,
                "the layer; deploy it with `sls deploy` in this folder",
                doc,
            )?
        }
        Cloud::Lambda => {
            let mut artifact = serde_yaml::Mapping::new();
            put(&mut artifact, "artifact", out.file_name.as_str());
            let mut layer = serde_yaml::Mapping::new();
            put(&mut layer, "package", serde_yaml::Value::Mapping(artifact));
            put(
                &mut layer,
                "compatibleRuntimes",
                serde_yaml::Value::Sequence(vec![LAMBDA_RUNTIME.into()]),
            );
            put(
                &mut layer,
                "description",
                "scf-shim and its language pieces (scf-local package --layer)",
            );
            let mut layers = serde_yaml::Mapping::new();
            put(&mut layers, "scfRuntime", serde_yaml::Value::Mapping(layer));
            let mut provider = serde_yaml::Mapping::new();
            put(&mut provider, "name", "aws");
            let mut doc = serde_yaml::Mapping::new();
            put(&mut doc, "service", lambda_name(stem));
            put(&mut doc, "provider", serde_yaml::Value::Mapping(provider));
            put(&mut doc, "layers", serde_yaml::Value::Mapping(layers));
            yaml(
                &out,
                "the layer; deploy it with `serverless deploy` in this folder",
                doc,
            )?
        }
    };
    write(&out, contents, yml, "layer".to_owned(), notes)
}

/// The custom runtime's start file. SCF runs it in the code directory (`/var/user`), Lambda in
/// `LAMBDA_TASK_ROOT`; it hands the instance to `scf-shim`, which reads the runtime API and the handler from the
/// environment the platform sets. `bundled`: the shim's path in the package; `None`: the layer's.
fn bootstrap_script(bundled: Option<&str>, opts: &PackageOptions) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# Written by scf-local package: the custom runtime's start file. It runs scf-shim, which reads \
         the\n# runtime API (SCF_RUNTIME_API and SCF_RUNTIME_API_PORT, or AWS_LAMBDA_RUNTIME_API) and _HANDLER from \
         the\n# environment the platform sets.\ncd \"$(dirname \"$0\")\" || exit 1\n",
    );
    for (var, value) in [
        (scf_shim::host::python::PYTHON_ENV, &opts.python),
        (scf_shim::host::node::NODE_ENV, &opts.node),
    ] {
        if let Some(v) = value {
            s.push_str(&format!("export {var}={}\n", sh_quote(v)));
        }
    }
    match bundled {
        Some(path) => s.push_str(&format!("exec {path}\n")),
        None => s.push_str(
            "if [ -x /opt/bin/scf-shim ]; then exec /opt/bin/scf-shim; fi\n\
             if command -v scf-shim >/dev/null 2>&1; then exec scf-shim; fi\n\
             echo \"bootstrap: scf-shim is neither in /opt/bin nor on PATH: add the layer scf-local package --layer \
             writes to the function\" >&2\nexit 127\n",
        ),
    }
    s
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Adds `bin/scf-shim` and the language pieces found beside it (the shim's own rule,
/// [`scf_shim::host::layout`]) under `prefix` in the runtime layout.
fn runtime_layout(
    shim: &Path,
    pieces: &[Piece],
    prefix: &str,
    contents: &mut Contents,
) -> Result<(), PlatformError> {
    let join = |rel: &str| {
        if prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{prefix}/{rel}")
        }
    };
    let shim = shim
        .canonicalize()
        .map_err(PlatformError::io(format!("reading {}", shim.display())))?;
    contents.add_file(join("bin/scf-shim"), &shim)?;
    for &piece in pieces {
        let dir = layout::locate(piece, Some(&shim)).map_err(|e| {
            PlatformError::Config(format!(
                "the runtime's {} piece is missing ({e}): install the release tarball, or run `make build` in a \
                 checkout",
                piece.name()
            ))
        })?;
        let into = join(&format!("{}/{}", layout::LAYOUT_DIR, piece.name()));
        let no_cache = |rel: &str, _: &Path, _: bool| -> bool {
            rel.rsplit('/')
                .next()
                .is_some_and(|n| n == "__pycache__" || n.ends_with(".pyc"))
        };
        match piece {
            // The package folder, as the wheel has it.
            Piece::Python => {
                contents.add_tree(&dir.join("scf_sdk"), &format!("{into}/scf_sdk"), &no_cache)?
            }
            // What npm packs (package.json's "files", the manifest, README, licence), and a locally built add-on.
            Piece::Node => {
                let manifest = dir.join("package.json");
                let text = std::fs::read_to_string(&manifest)
                    .map_err(PlatformError::io(format!("reading {}", manifest.display())))?;
                let pkg: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| PlatformError::Config(format!("{}: {e}", manifest.display())))?;
                let mut names: BTreeSet<String> =
                    ["package.json", "README.md", "LICENSE", "index.node"]
                        .into_iter()
                        .map(str::to_owned)
                        .collect();
                for f in pkg["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str())
                {
                    names.insert(f.trim_end_matches('/').to_owned());
                }
                for name in names {
                    let path = dir.join(&name);
                    if path.is_dir() {
                        contents.add_tree(&path, &format!("{into}/{name}"), &no_cache)?;
                    } else if path.is_file() {
                        contents.add_file(format!("{into}/{name}"), &path)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether the shim sits in an installed runtime layout (`<prefix>/bin/scf-shim` with
/// `<prefix>/lib/scf-runtime`), as the release tarball installs it, rather than in a build tree.
fn layout_is_installed(shim: &Path) -> bool {
    let shim = shim.canonicalize().unwrap_or_else(|_| shim.to_path_buf());
    shim.parent()
        .and_then(Path::parent)
        .is_some_and(|prefix| prefix.join(layout::LAYOUT_DIR).is_dir())
}

fn dev_shim_note(shim: &Path) -> String {
    format!(
        "the runtime comes from a build tree ({}): it needs this machine's glibc, and SCF runs glibc 2.17; package \
         with the release's scf-local (make dist) for the cloud",
        shim.display()
    )
}

fn build_failure(e: &build::BuildError) -> String {
    match e {
        build::BuildError::Failed {
            summary,
            first_error,
        } => format!("{summary}\n{first_error}"),
        other => other.to_string(),
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            std::fs::metadata(d.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names() {
        let dir = std::env::temp_dir().join(format!("scf-package-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut f = FunctionConfig::load(
            &dir,
            &crate::config::Overrides {
                handler: Some("index.main_handler".into()),
                ..Default::default()
            },
        )
        .expect("config");
        let _ = std::fs::remove_dir_all(&dir);
        let mut notes = Vec::new();
        for (named, kind, want) in [
            (Some("Python3.10"), Kind::Python, "Python3.10"),
            (Some("python3.9"), Kind::Python, "Python3.9"),
            (Some("python3"), Kind::Python, DEFAULT_SCF_PYTHON),
            (None, Kind::Python, DEFAULT_SCF_PYTHON),
            (Some("Nodejs18.15"), Kind::Node, "Nodejs18.15"),
            (Some("nodejs"), Kind::Node, DEFAULT_SCF_NODE),
        ] {
            f.runtime_name = named.map(str::to_owned);
            assert_eq!(scf_runtime_name(&f, kind, &mut notes), want, "{named:?}");
        }
        assert_eq!(notes.len(), 3, "a note for each default: {notes:?}");
    }

    #[test]
    fn bootstraps_quote_and_find_the_shim() {
        let opts = PackageOptions {
            python: Some("/opt/py 3/bin/python3".into()),
            ..PackageOptions::default()
        };
        let s = bootstrap_script(Some("./scf-runtime/bin/scf-shim"), &opts);
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        assert!(
            s.contains("export SCF_PYTHON='/opt/py 3/bin/python3'\n"),
            "{s}"
        );
        assert!(s.ends_with("exec ./scf-runtime/bin/scf-shim\n"), "{s}");
        let s = bootstrap_script(None, &PackageOptions::default());
        assert!(s.contains("exec /opt/bin/scf-shim"), "{s}");
        assert!(!s.contains("SCF_PYTHON"), "{s}");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(lambda_name("hello_fn"), "hello-fn");
        assert_eq!(lambda_name("9x"), "fn-9x");
    }
}
