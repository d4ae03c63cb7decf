//! Object URLs: `s3://bucket/key`, `gs://bucket/key`, `az://container/key`.
//!
//! A URL names a bucket (or an Azure container) and a key inside it. Keys are plain: `/`
//! separates segments, and a segment is never empty, `.` or `..`, nor holds a control
//! character or `\`, so a key taken from a request or found on the share cannot name anything
//! but what it says.

use super::ObjectError;
use std::fmt;

/// Which cloud's protocol a URL speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cloud {
    /// Amazon S3 and S3-protocol servers (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Azure Blob Storage (`az://`).
    Azure,
}

impl Cloud {
    /// The URL scheme (`s3`, `gs`, `az`).
    pub fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
            Cloud::Azure => "az",
        }
    }

    fn from_scheme(scheme: &str) -> Option<Cloud> {
        match scheme {
            "s3" | "s3a" => Some(Cloud::S3),
            "gs" => Some(Cloud::Gcs),
            "az" | "azure" => Some(Cloud::Azure),
            _ => None,
        }
    }
}

/// The longest key accepted (S3's and GCS's limit).
const MAX_KEY_BYTES: usize = 1024;

/// A checked object URL.
///
/// ```
/// use gridmr_runtime::objstore::ObjectUrl;
/// let url: ObjectUrl = "s3://books/2026/*.txt".parse()?;
/// assert_eq!((url.bucket(), url.key()), ("books", "2026/*.txt"));
/// let out: ObjectUrl = "s3://results/wordcount".parse()?;
/// assert_eq!(out.join("_SUCCESS").to_string(), "s3://results/wordcount/_SUCCESS");
/// assert!("s3://books/../etc".parse::<ObjectUrl>().is_err());
/// # Ok::<(), gridmr_runtime::objstore::ObjectError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectUrl {
    cloud: Cloud,
    bucket: String,
    key: String,
}

/// Whether `s` is meant as an object URL (its scheme is one GridMR reads objects with), so that
/// it is checked as one rather than as a local path.
pub fn is_object_url(s: &str) -> bool {
    s.split_once("://")
        .is_some_and(|(scheme, _)| Cloud::from_scheme(scheme).is_some())
}

impl ObjectUrl {
    /// The cloud.
    pub fn cloud(&self) -> Cloud {
        self.cloud
    }

    /// The bucket (or container).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key, without a leading `/`; empty for the bucket's root, ending in `/` for a
    /// prefix written so.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The same bucket with another key (checked by the caller: keys listed by the store).
    pub(crate) fn with_key(&self, key: &str) -> ObjectUrl {
        ObjectUrl {
            key: key.to_owned(),
            ..self.clone()
        }
    }

    /// The key as a prefix: empty or ending in `/`.
    pub fn prefix(&self) -> String {
        match self.key.is_empty() || self.key.ends_with('/') {
            true => self.key.clone(),
            false => format!("{}/", self.key),
        }
    }

    /// The object `name` below this URL taken as a prefix. `name` is one plain segment.
    pub fn join(&self, name: &str) -> ObjectUrl {
        self.with_key(&format!("{}{name}", self.prefix()))
    }

    /// The bucket's root: what an allow-list names.
    pub fn root(&self) -> ObjectUrl {
        self.with_key("")
    }

    /// The key as the store's path (no trailing `/`).
    pub(crate) fn path(&self) -> object_store::path::Path {
        use object_store::path::Path;
        // A key listed by the store comes back as the store's path (its odd characters
        // percent-encoded): taken as it is. A key given by a user is encoded here.
        let key = self.key.trim_end_matches('/');
        Path::parse(key)
            .unwrap_or_else(|_| Path::from_iter(key.split('/').filter(|s| !s.is_empty())))
    }

    /// Whether this URL lies below `prefix` (taken as a prefix).
    pub fn is_below(&self, prefix: &ObjectUrl) -> bool {
        self.cloud == prefix.cloud
            && self.bucket == prefix.bucket
            && self.key.starts_with(&prefix.prefix())
            && self.key.len() > prefix.prefix().len()
    }
}

fn bad(url: &str, reason: impl Into<String>) -> ObjectError {
    ObjectError::BadUrl {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

fn check_bucket(url: &str, bucket: &str) -> Result<(), ObjectError> {
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let ok_ends = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && ok_chars && ok_ends && !bucket.contains("..") {
        Ok(())
    } else {
        Err(bad(
            url,
            "the bucket must be 3 to 63 lower-case letters, digits, '-' or '.'",
        ))
    }
}

fn check_key(url: &str, key: &str) -> Result<(), ObjectError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(bad(url, format!("the key is over {MAX_KEY_BYTES} bytes")));
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    if body.is_empty() {
        return Ok(());
    }
    for segment in body.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(bad(url, "a key segment is empty, '.' or '..'"));
        }
        if segment.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad(url, "the key holds a control character or '\\'"));
        }
    }
    Ok(())
}

impl std::str::FromStr for ObjectUrl {
    type Err = ObjectError;

    fn from_str(url: &str) -> Result<Self, ObjectError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(url, "not scheme://bucket/key"))?;
        let cloud =
            Cloud::from_scheme(scheme).ok_or_else(|| bad(url, "the scheme is not s3, gs or az"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains(['@', ':', '?', '#']) {
            return Err(bad(
                url,
                "credentials, ports, queries and fragments are not taken",
            ));
        }
        check_bucket(url, bucket)?;
        check_key(url, key)?;
        Ok(ObjectUrl {
            cloud,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.cloud.scheme(), self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_parse_and_print_back() {
        for (s, bucket, key) in [
            ("s3://data/in/a.txt", "data", "in/a.txt"),
            ("gs://my.bucket/x/", "my.bucket", "x/"),
            ("az://container", "container", ""),
        ] {
            let u: ObjectUrl = s.parse().unwrap();
            assert_eq!((u.bucket(), u.key()), (bucket, key), "{s}");
        }
        let u: ObjectUrl = "s3a://data/k".parse().unwrap();
        assert_eq!(u.to_string(), "s3://data/k");
        assert_eq!(u.path().as_ref(), "k");
        assert_eq!(u.join("_SUCCESS").to_string(), "s3://data/k/_SUCCESS");
    }

    #[test]
    fn anything_that_could_name_something_else_is_refused() {
        for s in [
            "s3://data/../x",
            "s3://data/a//b",
            "s3://data/./b",
            "s3://data/a\\b",
            "s3://data/a\nb",
            "s3://key:secret@data/a",
            "s3://data:9000/a",
            "s3://Data/a",
            "s3://ab/a",
            "http://data/a",
            "s3:/data/a",
            "/data/a",
        ] {
            assert!(s.parse::<ObjectUrl>().is_err(), "{s}");
        }
        assert!(
            is_object_url("gs://x/y") && !is_object_url("/shared/x") && !is_object_url("file:///x")
        );
    }

    #[test]
    fn below_means_strictly_inside_the_same_bucket() {
        let out: ObjectUrl = "s3://data/out".parse().unwrap();
        assert!("s3://data/out/part-r-00000"
            .parse::<ObjectUrl>()
            .unwrap()
            .is_below(&out));
        for s in [
            "s3://data/out",
            "s3://data/outside/x",
            "s3://other/out/x",
            "gs://data/out/x",
        ] {
            assert!(!s.parse::<ObjectUrl>().unwrap().is_below(&out), "{s}");
        }
    }
}
