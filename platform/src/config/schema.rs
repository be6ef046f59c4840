//! The keys of `serverless.yml` the components define, what `scf-local` does with each one, and the check
//! that names every key it does not know (with the nearest known one) and every key it reads but cannot
//! honour on one machine (a VPC, file systems, layers, …).

use std::collections::BTreeSet;

use serde_yaml::Value;

/// What `scf-local` does with a key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node {
    /// Read and honoured; its value is not checked further.
    Read,
    /// Read but not honoured locally (listed once at start-up).
    Ignored,
    /// A map with these keys (the groups together).
    Map(&'static [&'static [(&'static str, Node)]]),
    /// A list of items of this shape.
    List(&'static Node),
    /// A map whose keys are the user's (multi-scf's `functions`), each value of this shape.
    Keys(&'static Node),
    /// A multi-scf trigger: its `parameters` depend on its `type`.
    MultiTrigger,
}

use Node::{Ignored, Read};

const LOCAL: &[(&str, Node)] = &[
    ("concurrency", Read),
    ("provisioned", Read),
    ("idleTimeout", Read),
    ("retryInterval", Read),
    ("queueLimit", Read),
    ("dialect", Read),
    ("command", Read),
    ("python", Read),
];

const SRC: &[(&str, Node)] = &[
    ("src", Read),
    ("dist", Read),
    ("hook", Read),
    ("bucket", Read),
    ("object", Read),
    ("exclude", Ignored),
    ("include", Ignored),
];

const KEY_VALUE: &[(&str, Node)] = &[("key", Read), ("value", Read)];

/// The keys of one function, in every component (`inputs` of `scf`, each of multi-scf's `functions` and its
/// shared defaults, http's `faas`).
const FUNCTION: &[(&str, Node)] = &[
    ("name", Read),
    ("src", Node::Map(&[SRC])),
    ("handler", Read),
    ("runtime", Read),
    ("type", Read),
    ("entryFile", Read),
    ("memorySize", Read),
    ("timeout", Read),
    ("initTimeout", Read),
    ("environment", Node::Map(&[&[("variables", Read)]])),
    ("environments", Node::List(&Node::Map(&[KEY_VALUE]))),
    ("namespace", Read),
    ("region", Read),
    ("retryNum", Read),
    ("msgTTL", Read),
    (
        "image",
        Node::Map(&[&[
            ("command", Read),
            ("args", Read),
            ("imageUrl", Ignored),
            ("imageType", Ignored),
            ("registryId", Ignored),
        ]]),
    ),
    (
        "instanceConcurrencyConfig",
        Node::Map(&[&[("enable", Read), ("maxConcurrency", Read)]]),
    ),
    ("local", Node::Map(&[LOCAL])),
    ("role", Ignored),
    ("description", Ignored),
    ("publicAccess", Read),
    ("installDependency", Ignored),
    ("vpcConfig", Ignored),
    ("vpc", Ignored),
    ("cfs", Ignored),
    ("deadLetter", Ignored),
    ("layers", Ignored),
    ("cls", Ignored),
    ("eip", Ignored),
    ("asyncRunEnable", Ignored),
    ("traceEnable", Ignored),
    ("tags", Ignored),
    ("protocolType", Ignored),
    ("protocolParams", Ignored),
    ("provisionedNum", Ignored),
    ("qualifier", Ignored),
    ("publish", Ignored),
    ("publishDescription", Ignored),
    ("traffic", Ignored),
    ("enableRoleAuth", Ignored),
    ("nodeType", Ignored),
    ("nodeSpec", Ignored),
    ("dnsCache", Ignored),
    ("intranetConfig", Ignored),
];

const TIMER: &[(&str, Node)] = &[
    ("name", Read),
    ("cronExpression", Read),
    ("enable", Read),
    ("argument", Read),
    ("qualifier", Ignored),
    ("description", Ignored),
];

const ENDPOINT: &[(&str, Node)] = &[
    ("path", Read),
    ("method", Read),
    ("enableCORS", Read),
    ("serviceTimeout", Read),
    ("isBase64Encoded", Read),
    ("isBase64Trigger", Read),
    (
        "base64EncodedTriggerRules",
        Node::List(&Node::Map(&[&[("name", Read), ("value", Read)]])),
    ),
    (
        "param",
        Node::List(&Node::Map(&[&[
            ("name", Read),
            ("position", Read),
            ("defaultValue", Read),
            ("required", Ignored),
            ("type", Ignored),
            ("desc", Ignored),
        ]])),
    ),
    (
        "function",
        Node::Map(&[&[
            ("name", Read),
            ("isIntegratedResponse", Read),
            ("functionName", Read),
            ("functionQualifier", Ignored),
            ("functionNamespace", Ignored),
            ("type", Ignored),
        ]]),
    ),
    ("apiName", Read),
    ("apiId", Read),
    ("description", Ignored),
    ("responseType", Ignored),
    ("usagePlan", Ignored),
    ("auth", Ignored),
    ("authType", Ignored),
    ("app", Ignored),
    ("protocolType", Ignored),
    ("serviceConfig", Ignored),
    ("oauthConfig", Ignored),
    ("authRelationApiId", Ignored),
];

const APIGW: &[(&str, Node)] = &[
    ("serviceName", Read),
    ("serviceId", Read),
    ("id", Read),
    ("name", Read),
    ("environment", Read),
    ("endpoints", Node::List(&Node::Map(&[ENDPOINT]))),
    ("apis", Node::List(&Node::Map(&[ENDPOINT]))),
    ("protocols", Ignored),
    ("netTypes", Ignored),
    ("description", Ignored),
    ("instanceId", Ignored),
    ("qualifier", Ignored),
    ("tags", Ignored),
    ("customDomains", Ignored),
];

/// A trigger of a kind `scf-local` runs on demand only: its parameters are read as they are.
const ON_DEMAND: &[(&str, Node)] = &[("name", Read), ("parameters", Read)];

const SCF_EVENT: &[(&str, Node)] = &[
    (
        "timer",
        Node::Map(&[&[("name", Read), ("parameters", Node::Map(&[TIMER]))]]),
    ),
    (
        "apigw",
        Node::Map(&[&[("name", Read), ("parameters", Node::Map(&[APIGW]))]]),
    ),
    ("cos", Node::Map(&[ON_DEMAND])),
    ("cmq", Node::Map(&[ON_DEMAND])),
    ("ckafka", Node::Map(&[ON_DEMAND])),
    ("clb", Node::Map(&[ON_DEMAND])),
    ("cls", Node::Map(&[ON_DEMAND])),
    ("mps", Node::Map(&[ON_DEMAND])),
];

const SCF_ONLY: &[(&str, Node)] = &[
    ("events", Node::List(&Node::Map(&[SCF_EVENT]))),
    ("ignoreTriggers", Read),
    ("autoCreateApi", Ignored),
];

const MULTI_ONLY: &[(&str, Node)] = &[
    ("functions", Node::Keys(&Node::Map(&[FUNCTION]))),
    ("triggers", Node::List(&Node::MultiTrigger)),
    ("ignoreTriggers", Read),
    ("isAutoPublish", Ignored),
];

const HTTP_APIGW: &[(&str, Node)] = &[
    ("isDisabled", Read),
    ("id", Read),
    ("name", Read),
    ("environment", Read),
    ("enableCORS", Read),
    (
        "api",
        Node::Map(&[&[
            ("cors", Read),
            ("timeout", Read),
            ("name", Read),
            ("qualifier", Ignored),
        ]]),
    ),
    ("protocols", Ignored),
    ("description", Ignored),
    ("tags", Ignored),
    ("customDomains", Ignored),
    ("app", Ignored),
    ("usagePlan", Ignored),
    ("auth", Ignored),
    ("ignoreUpdate", Ignored),
];

const HTTP_ONLY: &[(&str, Node)] = &[
    ("framework", Read),
    ("bootstrap", Node::Map(&[&[("cmd", Read)]])),
];

const HTTP_INPUTS: &[(&str, Node)] = &[
    ("region", Read),
    ("src", Node::Map(&[SRC])),
    ("faas", Node::Map(&[FUNCTION, HTTP_ONLY])),
    ("apigw", Node::Map(&[HTTP_APIGW])),
    ("assets", Ignored),
    ("static", Ignored),
];

const TOP: &[(&str, Node)] = &[
    ("component", Read),
    ("name", Read),
    ("app", Read),
    ("stage", Read),
    ("org", Ignored),
];

/// The components `scf-local` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component {
    /// `component: scf`, or no component: one function in `inputs`.
    Scf,
    /// `component: multi-scf`: `inputs.functions`.
    MultiScf,
    /// `component: http`: a web framework in `inputs.faas`.
    Http,
}

/// What the check found in one file.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Unknown keys, each with the nearest known one.
    pub(crate) unknown: Vec<String>,
    /// Keys read but not honoured locally (paths, lists written `[]`).
    pub(crate) ignored: BTreeSet<String>,
}

/// Checks a whole file (`doc`) of `component`.
pub(crate) fn check(doc: &Value, component: Component) -> Findings {
    let mut f = Findings::default();
    let inputs: &[&[(&str, Node)]] = match component {
        Component::Scf => &[FUNCTION, SCF_ONLY],
        Component::MultiScf => &[FUNCTION, MULTI_ONLY],
        Component::Http => &[HTTP_INPUTS],
    };
    let top: [&[(&str, Node)]; 1] = [TOP];
    if let Value::Mapping(map) = doc {
        for (k, v) in map {
            let Some(key) = k.as_str() else { continue };
            if key == "inputs" {
                walk_map(v, inputs, "inputs", &mut f);
            } else {
                walk_key(key, v, &top, "", &mut f);
            }
        }
    }
    f
}

fn walk(value: &Value, node: Node, path: &str, f: &mut Findings) {
    match node {
        Read => {}
        Ignored => {
            f.ignored.insert(path.to_owned());
        }
        Node::Map(groups) => walk_map(value, groups, path, f),
        Node::List(item) => {
            if let Value::Sequence(items) = value {
                let path = format!("{path}[]");
                for v in items {
                    walk(v, *item, &path, f);
                }
            }
        }
        Node::Keys(item) => {
            if let Value::Mapping(map) = value {
                for (k, v) in map {
                    let key = k.as_str().map_or_else(|| "?".to_owned(), str::to_owned);
                    walk(v, *item, &format!("{path}.{key}"), f);
                }
            }
        }
        Node::MultiTrigger => {
            let parameters = match value.get("type").and_then(Value::as_str) {
                Some("timer") => Node::Map(&[TIMER]),
                Some("apigw") => Node::Map(&[APIGW]),
                _ => Read,
            };
            let keys = [
                ("type", Read),
                ("function", Read),
                ("name", Read),
                ("parameters", parameters),
            ];
            walk_map(value, &[&keys], path, f);
        }
    }
}

fn walk_map(value: &Value, groups: &[&[(&str, Node)]], path: &str, f: &mut Findings) {
    let Value::Mapping(map) = value else { return };
    for (k, v) in map {
        let Some(key) = k.as_str() else { continue };
        walk_key(key, v, groups, path, f);
    }
}

fn walk_key(key: &str, value: &Value, groups: &[&[(&str, Node)]], path: &str, f: &mut Findings) {
    let full = if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    };
    match groups
        .iter()
        .flat_map(|g| g.iter())
        .find(|(k, _)| *k == key)
    {
        Some((_, node)) => walk(value, *node, &full, f),
        None => {
            let known = groups.iter().flat_map(|g| g.iter()).map(|(k, _)| *k);
            f.unknown.push(match nearest(key, known) {
                Some(near) => format!("unknown key {full}: did you mean {near}? (it is not read)"),
                None => format!("unknown key {full} (it is not read)"),
            });
        }
    }
}

/// The known key closest to `key`: the same but for case, else within a small edit distance.
fn nearest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        let d = if k.eq_ignore_ascii_case(key) {
            0
        } else {
            distance(&lower, &k.to_ascii_lowercase())
        };
        if best.is_none_or(|(b, _)| d < b) {
            best = Some((d, k));
        }
    }
    let limit = (key.chars().count() / 3).clamp(2, 4);
    best.filter(|(d, _)| *d <= limit).map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    #[test]
    fn misspelt_keys_name_the_nearest_one() {
        let f = check(
            &yaml(
                "component: scf\nnmae: x\ninputs:\n  memorysize: 256\n  timeOut: 3\n  handlr: a.b\n  zzzzzzzz: 1\n  events:\n    - timer:\n        parameters:\n          cronExpresion: '* * * * * * *'\n",
            ),
            Component::Scf,
        );
        assert_eq!(
            f.unknown,
            [
                "unknown key nmae: did you mean name? (it is not read)",
                "unknown key inputs.memorysize: did you mean memorySize? (it is not read)",
                "unknown key inputs.timeOut: did you mean timeout? (it is not read)",
                "unknown key inputs.handlr: did you mean handler? (it is not read)",
                "unknown key inputs.zzzzzzzz (it is not read)",
                "unknown key inputs.events[].timer.parameters.cronExpresion: did you mean cronExpression? (it is not read)",
            ]
        );
    }

    #[test]
    fn keys_not_honoured_are_listed() {
        let f = check(
            &yaml(
                "component: multi-scf\ninputs:\n  vpcConfig: {vpcId: v}\n  functions:\n    a:\n      layers: []\n      handler: x.y\n  triggers:\n    - type: apigw\n      parameters:\n        protocols: [http]\n        apis:\n          - path: /\n            function: a\n            usagePlan: {}\n    - type: timer\n      function: a\n      parameters:\n        qualifier: $DEFAULT\n        cronExpression: '* * * * * * *'\n",
            ),
            Component::MultiScf,
        );
        assert!(f.unknown.is_empty(), "{:?}", f.unknown);
        assert_eq!(
            f.ignored.into_iter().collect::<Vec<_>>(),
            [
                "inputs.functions.a.layers",
                "inputs.triggers[].parameters.apis[].usagePlan",
                "inputs.triggers[].parameters.protocols",
                "inputs.triggers[].parameters.qualifier",
                "inputs.vpcConfig",
            ]
        );
    }

    #[test]
    fn http_keys() {
        let f = check(
            &yaml(
                "component: http\ninputs:\n  src: {src: ./, hook: npm i, exclude: [.env]}\n  faas: {framework: express, memorysize: 512}\n  apigw: {api: {cors: true}, protocols: [http]}\n",
            ),
            Component::Http,
        );
        assert_eq!(
            f.unknown,
            ["unknown key inputs.faas.memorysize: did you mean memorySize? (it is not read)"]
        );
        assert_eq!(
            f.ignored.into_iter().collect::<Vec<_>>(),
            ["inputs.apigw.protocols", "inputs.src.exclude"]
        );
    }
}
