//! TencentCloud API signatures (TC3-HMAC-SHA256), as the official SDKs compute them.
//!
//! ```text
//! CanonicalRequest = METHOD \n URI \n QUERY \n CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
//! StringToSign     = "TC3-HMAC-SHA256" \n Timestamp \n Date/service/tc3_request \n hex(sha256(CanonicalRequest))
//! Key              = HMAC(HMAC(HMAC("TC3"+SecretKey, Date), service), "tc3_request")
//! Signature        = hex(HMAC(Key, StringToSign))
//! ```

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
        hex(&Sha256::digest(req.body))
    );
    let date = time::OffsetDateTime::from_unix_timestamp(timestamp)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default();
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

/// Checks the `Authorization` header of `req` against `secret_id`/`secret_key`. Returns why it fails.
pub fn verify(
    req: &SignedRequest<'_>,
    secret_id: &str,
    secret_key: &str,
    now: i64,
) -> Result<(), String> {
    let auth = (req.header)("authorization")
        .ok_or("the request is not signed (no Authorization header)")?;
    let rest = auth
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or("the Authorization header is not TC3-HMAC-SHA256")?;
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
    let (credential, signed, sig) = match (credential, signed, sig) {
        (Some(c), Some(s), Some(g)) => (c, s, g),
        _ => {
            return Err(
                "the Authorization header lacks Credential, SignedHeaders or Signature".into(),
            );
        }
    };
    let mut scope = credential.split('/');
    let id = scope.next().unwrap_or_default();
    let _date = scope.next();
    let service = scope.next().unwrap_or_default();
    if id != secret_id {
        return Err(format!("SecretId {id} is not known"));
    }
    let timestamp: i64 = (req.header)("x-tc-timestamp")
        .and_then(|t| t.trim().parse().ok())
        .ok_or("the request has no valid X-TC-Timestamp")?;
    if (now - timestamp).abs() > 300 {
        return Err("the signature has expired (X-TC-Timestamp is more than 5 minutes off)".into());
    }
    let matches = |expected: String| {
        expected.len() == sig.len()
            && expected
                .bytes()
                .zip(sig.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    };
    if matches(signature(req, signed, timestamp, service, secret_key)) {
        return Ok(());
    }
    // TencentCloud's Node.js SDK signs the host without its port (the cloud's endpoints have none): a local
    // endpoint `127.0.0.1:PORT` is accepted signed either way.
    let host = (req.header)("host").unwrap_or_default();
    if let Some((portless, _)) = host.rsplit_once(':')
        && !portless.is_empty()
    {
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
    Err("the signature does not match".into())
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
}
