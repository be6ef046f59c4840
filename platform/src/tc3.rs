//! TencentCloud API signatures (TC3-HMAC-SHA256), as the official SDKs compute them.
//!
//! ```text
//! CanonicalRequest = METHOD \n URI \n QUERY \n CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
//! StringToSign     = "TC3-HMAC-SHA256" \n Timestamp \n Date/service/tc3_request \n hex(sha256(CanonicalRequest))
//! Key              = HMAC(HMAC(HMAC("TC3"+SecretKey, Date), service), "tc3_request")
//! Signature        = hex(HMAC(Key, StringToSign))
//! ```
//!
//! [`verify`] checks what TencentCloud checks, each failure with its `AuthFailure.*` code ([`Tc3Error`]):
//! the scope's service must be `scf`, its date the UTC day of `X-TC-Timestamp`, the timestamp within five
//! minutes of the clock, and the signed headers must include `content-type` and `host`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The parts of a request a signature covers.
pub struct SignedRequest<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path, `/`.
    pub uri: &'a str,
    /// The query string without `?`.
    pub query: &'a str,
    /// A header's value by lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The body.
    pub body: &'a [u8],
}

impl std::fmt::Debug for SignedRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// The signature of `req` for the signed header names `signed` (`content-type;host`), at `timestamp`, for
/// `service`, with `secret_key`.
pub fn signature(
    req: &SignedRequest<'_>,
    signed: &str,
    timestamp: i64,
    service: &str,
    secret_key: &str,
) -> String {
    let date = scope_date(timestamp).unwrap_or_default();
    sign(req, signed, timestamp, &date, service, secret_key)
}

/// [`signature`] with the scope's date given (a client may name another date than its timestamp's).
fn sign(
    req: &SignedRequest<'_>,
    signed: &str,
    timestamp: i64,
    date: &str,
    service: &str,
    secret_key: &str,
) -> String {
    // A client may leave the body out of the signature (`X-TC-Content-SHA256: UNSIGNED-PAYLOAD`).
    let unsigned = (req.header)("x-tc-content-sha256")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("UNSIGNED-PAYLOAD"));
    let payload: &[u8] = if unsigned {
        b"UNSIGNED-PAYLOAD"
    } else {
        req.body
    };
    let canonical_headers: String = signed
        .split(';')
        .map(|h| {
            format!(
                "{}:{}\n",
                h,
                (req.header)(h)
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            )
        })
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.uri,
        req.query,
        canonical_headers,
        signed,
        hex(&Sha256::digest(payload))
    );
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    let k_signing = hmac(&k_service, b"tc3_request");
    hex(&hmac(&k_signing, string_to_sign.as_bytes()))
}

/// The service a front door signature must be made for: the real platform's, `scf`.
pub const SERVICE: &str = "scf";
/// How far `X-TC-Timestamp` may be from the platform's clock, seconds.
pub const MAX_SKEW_SECS: i64 = 300;
/// The headers every signature must cover.
const REQUIRED_HEADERS: [&str; 2] = ["content-type", "host"];

/// Why a signature was refused, with the TencentCloud error code of each case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tc3Error {
    /// The `Authorization` header is missing or malformed: not TC3-HMAC-SHA256, a part missing, a credential
    /// scope not of the form `SecretId/Date/service/tc3_request`, signed headers without `content-type` and
    /// `host`, no valid `X-TC-Timestamp`.
    #[error("{0}")]
    InvalidAuthorization(String),
    /// The SecretId is not the platform's.
    #[error("SecretId {0} is not known")]
    SecretIdNotFound(String),
    /// `X-TC-Timestamp` is more than [`MAX_SKEW_SECS`] from now.
    #[error(
        "the signature has expired: X-TC-Timestamp {timestamp} is {skew} s from the platform's clock (at most {MAX_SKEW_SECS} s)"
    )]
    SignatureExpire {
        /// The request's timestamp.
        timestamp: i64,
        /// How far it is from now, seconds.
        skew: i64,
    },
    /// The signature is well formed but wrong: made for another service or another day than the request's
    /// timestamp, or with another key, or over other bytes.
    #[error("{0}")]
    SignatureFailure(String),
}

impl Tc3Error {
    /// The TencentCloud error code (`AuthFailure.*`).
    pub fn code(&self) -> &'static str {
        match self {
            Tc3Error::InvalidAuthorization(_) => "AuthFailure.InvalidAuthorization",
            Tc3Error::SecretIdNotFound(_) => "AuthFailure.SecretIdNotFound",
            Tc3Error::SignatureExpire { .. } => "AuthFailure.SignatureExpire",
            Tc3Error::SignatureFailure(_) => "AuthFailure.SignatureFailure",
        }
    }
}

/// The UTC date of `timestamp` as a credential scope writes it, `YYYY-MM-DD`.
fn scope_date(timestamp: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(timestamp).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day()
    ))
}

/// Checks the `Authorization` header of `req` against `secret_id`/`secret_key` as TencentCloud does: the
/// algorithm, the credential scope (`SecretId/Date/scf/tc3_request`, its date the UTC day of
/// `X-TC-Timestamp`), the signed headers (`content-type` and `host` among them), the timestamp's skew, and
/// the signature itself (over the body, or over `UNSIGNED-PAYLOAD` when `X-TC-Content-SHA256` says so).
pub fn verify(
    req: &SignedRequest<'_>,
    secret_id: &str,
    secret_key: &str,
    now: i64,
) -> Result<(), Tc3Error> {
    let invalid = |why: &str| Tc3Error::InvalidAuthorization(why.to_owned());
    let auth = (req.header)("authorization")
        .ok_or_else(|| invalid("the request is not signed (no Authorization header)"))?;
    let rest = auth
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or_else(|| invalid("the Authorization header is not TC3-HMAC-SHA256"))?;
    let mut credential = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let (Some(credential), Some(signed), Some(sig)) = (credential, signed, sig) else {
        return Err(invalid(
            "the Authorization header lacks Credential, SignedHeaders or Signature",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [id, date, service, terminator] = scope[..] else {
        return Err(invalid(
            "the credential scope is not SecretId/Date/service/tc3_request",
        ));
    };
    if terminator != "tc3_request" {
        return Err(invalid(
            "the credential scope does not end with tc3_request",
        ));
    }
    let names: Vec<&str> = signed.split(';').collect();
    if names
        .iter()
        .any(|n| n.is_empty() || *n != n.to_ascii_lowercase())
    {
        return Err(invalid(
            "SignedHeaders must be lower-case header names separated by ';'",
        ));
    }
    if let Some(missing) = REQUIRED_HEADERS.iter().find(|h| !names.contains(h)) {
        return Err(Tc3Error::InvalidAuthorization(format!(
            "SignedHeaders must include content-type and host ({missing} is not signed)"
        )));
    }
    let timestamp: i64 = (req.header)("x-tc-timestamp")
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| invalid("the request has no valid X-TC-Timestamp"))?;
    if id != secret_id {
        return Err(Tc3Error::SecretIdNotFound(id.to_owned()));
    }
    let skew = (now - timestamp).abs();
    if skew > MAX_SKEW_SECS {
        return Err(Tc3Error::SignatureExpire { timestamp, skew });
    }
    // TencentCloud's Node.js SDK signs the host without its port and names the service after the endpoint's
    // first label (the cloud's endpoint is `scf.tencentcloudapi.com`): for `127.0.0.1:9100` it signs host
    // `127.0.0.1`, service `127`. That form is accepted too; the key must match all the same.
    let host = (req.header)("host").unwrap_or_default();
    let portless = host
        .rsplit_once(':')
        .map(|(h, _)| h)
        .filter(|h| !h.is_empty() && !h.ends_with(':'));
    let node_form = portless.is_some_and(|h| h.split('.').next() == Some(service));
    if service != SERVICE && !node_form {
        return Err(Tc3Error::SignatureFailure(format!(
            "the signature was made for service {service}; this endpoint is {SERVICE}"
        )));
    }
    let expected_date = scope_date(timestamp).unwrap_or_default();
    if date != expected_date {
        return Err(Tc3Error::SignatureFailure(format!(
            "the credential scope's date {date} is not the UTC date of X-TC-Timestamp ({expected_date})"
        )));
    }
    let matches = |expected: String| {
        expected.len() == sig.len()
            && expected
                .bytes()
                .zip(sig.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    if service == SERVICE && matches(signature(req, signed, timestamp, service, secret_key)) {
        return Ok(());
    }
    if let Some(portless) = portless {
        let header = |h: &str| match h {
            "host" => Some(portless.to_owned()),
            other => (req.header)(other),
        };
        let without_port = SignedRequest {
            header: &header,
            ..*req
        };
        if matches(signature(
            &without_port,
            signed,
            timestamp,
            service,
            secret_key,
        )) {
            return Ok(());
        }
    }
    Err(Tc3Error::SignatureFailure(
        "the signature does not match".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Tencent Cloud's signature documentation (CVM DescribeInstances).
    #[test]
    fn matches_the_documented_example() {
        let body = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let header = |h: &str| match h {
            "content-type" => Some("application/json; charset=utf-8".to_owned()),
            "host" => Some("cvm.tencentcloudapi.com".to_owned()),
            _ => None,
        };
        let req = SignedRequest {
            method: "POST",
            uri: "/",
            query: "",
            header: &header,
            body,
        };
        let sig = signature(
            &req,
            "content-type;host",
            1551113065,
            "cvm",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        );
        assert_eq!(
            sig,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    const ID: &str = "AKIDEXAMPLE";
    const KEY: &str = "secretEXAMPLE";
    const NOW: i64 = 1_551_113_065; // 2019-02-25 16:44:25 UTC

    /// A request with the given Authorization header (the others fixed).
    fn check(auth: &str, timestamp: i64) -> Result<(), Tc3Error> {
        let body = br#"{"FunctionName":"f"}"#;
        let auth = auth.to_owned();
        let header = move |h: &str| match h {
            "content-type" => Some("application/json".to_owned()),
            "host" => Some("127.0.0.1:9100".to_owned()),
            "x-tc-action" => Some("Invoke".to_owned()),
            "x-tc-timestamp" => Some(timestamp.to_string()),
            "authorization" => Some(auth.clone()),
            _ => None,
        };
        let req = SignedRequest {
            method: "POST",
            uri: "/",
            query: "",
            header: &header,
            body,
        };
        verify(&req, ID, KEY, NOW)
    }

    /// An Authorization header whose signature is right for the scope it names (so that only the scope, the
    /// headers or the timestamp can be what is wrong).
    fn signed(date: &str, service: &str, headers: &str, timestamp: i64) -> String {
        signed_host(date, service, headers, timestamp, "127.0.0.1:9100")
    }

    /// [`signed`] over another `host` than the request's.
    fn signed_host(date: &str, service: &str, headers: &str, timestamp: i64, host: &str) -> String {
        let body = br#"{"FunctionName":"f"}"#;
        let header = move |h: &str| match h {
            "content-type" => Some("application/json".to_owned()),
            "host" => Some(host.to_owned()),
            "x-tc-action" => Some("Invoke".to_owned()),
            _ => None,
        };
        let req = SignedRequest {
            method: "POST",
            uri: "/",
            query: "",
            header: &header,
            body,
        };
        let sig = sign(&req, headers, timestamp, date, service, KEY);
        format!(
            "TC3-HMAC-SHA256 Credential={ID}/{date}/{service}/tc3_request, SignedHeaders={headers}, Signature={sig}"
        )
    }

    fn code(r: Result<(), Tc3Error>) -> &'static str {
        r.map_or_else(|e| e.code(), |()| "ok")
    }

    /// The Node.js SDK's form for `127.0.0.1:9100`: host signed without the port, service `127`.
    #[test]
    fn the_node_sdks_local_form_passes_and_only_it() {
        let node_form = |service: &str, host: &str| {
            signed_host("2019-02-25", service, "content-type;host", NOW, host)
        };
        assert_eq!(check(&node_form("127", "127.0.0.1"), NOW), Ok(()));
        assert_eq!(check(&node_form("scf", "127.0.0.1"), NOW), Ok(()));
        // The service of another endpoint, or the port signed with service 127: refused.
        for auth in [
            node_form("cvm", "127.0.0.1"),
            node_form("127", "127.0.0.1:9100"),
        ] {
            assert_eq!(
                code(check(&auth, NOW)),
                "AuthFailure.SignatureFailure",
                "{auth}"
            );
        }
    }

    #[test]
    fn a_good_signature_passes_and_each_defect_has_its_code() {
        let good = signed("2019-02-25", "scf", "content-type;host", NOW);
        assert_eq!(check(&good, NOW), Ok(()));
        // More headers may be signed.
        let more = signed("2019-02-25", "scf", "content-type;host;x-tc-action", NOW);
        assert_eq!(check(&more, NOW), Ok(()));
        let cases = [
            (
                signed("2019-02-25", "cvm", "content-type;host", NOW),
                NOW,
                "AuthFailure.SignatureFailure",
            ),
            (
                signed("2019-02-24", "scf", "content-type;host", NOW),
                NOW,
                "AuthFailure.SignatureFailure",
            ),
            (
                signed("2019-02-25", "scf", "host", NOW),
                NOW,
                "AuthFailure.InvalidAuthorization",
            ),
            (
                signed("2019-02-25", "scf", "content-type", NOW),
                NOW,
                "AuthFailure.InvalidAuthorization",
            ),
            (
                signed("2019-02-25", "scf", "Content-Type;host", NOW),
                NOW,
                "AuthFailure.InvalidAuthorization",
            ),
            (
                good.replace(ID, "AKIDother"),
                NOW,
                "AuthFailure.SecretIdNotFound",
            ),
            (
                good.replace("tc3_request", "tc4_request"),
                NOW,
                "AuthFailure.InvalidAuthorization",
            ),
            (
                good.replace("/scf/", "/scf/x/"),
                NOW,
                "AuthFailure.InvalidAuthorization",
            ),
            (
                good.replace("TC3-HMAC-SHA256", "HMAC-SHA1"),
                NOW,
                "AuthFailure.InvalidAuthorization",
            ),
            (
                good.replace(", Signature=", ", Sig="),
                NOW,
                "AuthFailure.InvalidAuthorization",
            ),
            (
                format!("{}0", &good[..good.len() - 1]),
                NOW,
                "AuthFailure.SignatureFailure",
            ),
        ];
        for (auth, ts, want) in cases {
            assert_eq!(code(check(&auth, ts)), want, "{auth}");
        }
        // Six minutes off, signed for that moment: expired.
        let old = NOW - 360;
        let stale = signed("2019-02-25", "scf", "content-type;host", old);
        assert_eq!(code(check(&stale, old)), "AuthFailure.SignatureExpire");
        let e = check("", NOW).expect_err("empty");
        assert_eq!(e.code(), "AuthFailure.InvalidAuthorization");
    }
}
