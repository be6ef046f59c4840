//! COS (object storage): the event a bucket's trigger sends when an object is created or deleted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{GenerateError, OverrideKey, Overrides, key};

/// The event of a COS trigger, invoked asynchronously: one record per object event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosEvent {
    /// The object events.
    #[serde(rename = "Records")]
    pub records: Vec<CosRecord>,
}

/// One object event: the object and its bucket, and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosRecord {
    /// The object and its bucket.
    pub cos: CosEntity,
    /// What happened.
    pub event: CosEventInfo,
}

/// `cos` of a record: the object and its bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CosEntity {
    /// The notification format's version (`"1.0"`).
    pub cos_schema_version: String,
    /// The object.
    pub cos_object: CosObject,
    /// Its bucket.
    pub cos_bucket: CosBucket,
    /// The notification's id (`"unknown"` when it has none).
    pub cos_notification_id: String,
}

/// `cos.cosObject`: the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosObject {
    /// The object's URL.
    pub url: String,
    /// The object's metadata (`Content-Type`, `x-cos-request-id`, `x-cos-meta-…`).
    pub meta: BTreeMap<String, String>,
    /// The object's version id (empty for a bucket without versioning).
    pub vid: String,
    /// The object's key, prefixed by the appid and the bucket: `/1250000000/examplebucket/photos/cat.jpg`.
    pub key: String,
    /// The object's size in bytes.
    pub size: i64,
}

/// `cos.cosBucket`: the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosBucket {
    /// The bucket's region in COS's short form (`gz` for ap-guangzhou, `sh`, `bj`, `cd`, …).
    pub region: String,
    /// The bucket's name, without the appid.
    pub name: String,
    /// The owner's appid.
    pub appid: String,
}

/// `event` of a record: what happened, and the request that did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CosEventInfo {
    /// The event (`cos:ObjectCreated:Put`, `cos:ObjectCreated:Post`, `cos:ObjectRemove:Delete`, …).
    pub event_name: String,
    /// The event format's version (`"1.0"`).
    pub event_version: String,
    /// When it happened, in seconds since the Unix epoch.
    pub event_time: i64,
    /// `"qcs::cos"`.
    pub event_source: String,
    /// The request that caused it.
    pub request_parameters: CosRequestParameters,
    /// The function's queue: `qcs:0:lambda:<region>:appid/<appid>:<namespace>.<function>.<qualifier>`.
    pub event_queue: String,
    /// Reserved (empty).
    pub reserved_info: String,
    /// The request's id at COS.
    pub reqid: i64,
}

/// `event.requestParameters`: the request that caused the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosRequestParameters {
    /// The client's address.
    #[serde(rename = "requestSourceIP")]
    pub request_source_ip: String,
    /// The request's headers (its `Authorization`).
    #[serde(rename = "requestHeaders")]
    pub request_headers: BTreeMap<String, String>,
}

pub(super) const KEYS: &[OverrideKey] = &[
    key(
        "bucket",
        "the bucket's name, without the appid (`cosBucket.name`)",
        "examplebucket",
    ),
    key(
        "appid",
        "the bucket owner's appid (`cosBucket.appid`)",
        "1250000000",
    ),
    key(
        "region",
        "the bucket's region (`ap-guangzhou`, …): the URL's, and `cosBucket.region` in COS's short form",
        "ap-guangzhou",
    ),
    key(
        "key",
        "the object's key (`cosObject.key`, `cosObject.url`)",
        "photos/cat.jpg",
    ),
    key(
        "size",
        "the object's size in bytes (`cosObject.size`)",
        "102400",
    ),
    key(
        "event-name",
        "what happened (`eventName`): cos:ObjectCreated:Put, cos:ObjectRemove:Delete, …",
        "cos:ObjectCreated:Put",
    ),
    key(
        "event-time",
        "when, in seconds since the Unix epoch (`eventTime`)",
        "1718006400",
    ),
    key(
        "source-ip",
        "the client's address (`requestSourceIP`)",
        "203.0.113.10",
    ),
    key(
        "function",
        "the function the bucket notifies (`eventQueue`)",
        "cos-handler",
    ),
];

/// COS's short names of the regions of its classic domains; other regions are written as they are.
const SHORT_REGIONS: &[(&str, &str)] = &[
    ("ap-beijing", "bj"),
    ("ap-chengdu", "cd"),
    ("ap-chongqing", "cq"),
    ("ap-guangzhou", "gz"),
    ("ap-hongkong", "hk"),
    ("ap-shanghai", "sh"),
    ("ap-singapore", "sg"),
];

pub(super) fn sample(o: &Overrides<'_>) -> Result<CosEvent, GenerateError> {
    let bucket = o.text("bucket");
    let appid = o.text("appid");
    let region = o.text("region");
    let object = o.text("key").trim_start_matches('/').to_owned();
    if bucket.is_empty() || object.is_empty() {
        let which = if bucket.is_empty() { "bucket" } else { "key" };
        return Err(o.invalid(which, "expected a name that is not empty"));
    }
    let short = SHORT_REGIONS
        .iter()
        .find(|(long, _)| *long == region)
        .map_or(region.as_str(), |(_, short)| short)
        .to_owned();
    let size = o.integer("size")?;
    if size < 0 {
        return Err(o.invalid("size", "expected a size in bytes, 0 or more"));
    }
    Ok(CosEvent {
        records: vec![CosRecord {
            cos: CosEntity {
                cos_schema_version: "1.0".to_owned(),
                cos_object: CosObject {
                    url: format!("http://{bucket}-{appid}.cos.{region}.myqcloud.com/{object}"),
                    meta: BTreeMap::from([
                        ("Content-Type".to_owned(), content_type(&object).to_owned()),
                        (
                            "x-cos-request-id".to_owned(),
                            "NjY2NmE3ZjBfOTg1ZjJhMGFfMjg4ZV8xMjM0NTY3OA==".to_owned(),
                        ),
                    ]),
                    vid: String::new(),
                    key: format!("/{appid}/{bucket}/{object}"),
                    size,
                },
                cos_bucket: CosBucket {
                    region: short.clone(),
                    name: bucket,
                    appid: appid.clone(),
                },
                cos_notification_id: "unknown".to_owned(),
            },
            event: CosEventInfo {
                event_name: o.text("event-name"),
                event_version: "1.0".to_owned(),
                event_time: o.integer("event-time")?,
                event_source: "qcs::cos".to_owned(),
                request_parameters: CosRequestParameters {
                    request_source_ip: o.text("source-ip"),
                    request_headers: BTreeMap::from([(
                        "Authorization".to_owned(),
                        "q-sign-algorithm=sha1&q-ak=AKIDEXAMPLE&q-sign-time=1718006340;1718009940\
                         &q-key-time=1718006340;1718009940&q-header-list=host&q-url-param-list=\
                         &q-signature=0f3a0c8f5d2b7e6a9c4d1b8e7f6a5d4c3b2a1f0e"
                            .to_owned(),
                    )]),
                },
                event_queue: format!(
                    "qcs:0:lambda:{short}:appid/{appid}:default.{}.$LATEST",
                    o.text("function")
                ),
                reserved_info: String::new(),
                reqid: 493_521_876,
            },
        }],
    })
}

/// The `Content-Type` COS would have recorded for a common file name.
fn content_type(object: &str) -> &'static str {
    let ext = object.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "txt" => "text/plain",
        "json" => "application/json",
        "html" => "text/html",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}
