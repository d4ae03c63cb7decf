//! `/uploads`: staging a client's files on the share for a job to take.

use super::*;

impl From<crate::master::uploads::UploadError> for ApiError {
    fn from(e: crate::master::uploads::UploadError) -> Self {
        use crate::master::uploads::UploadError as U;
        let status = match &e {
            U::Bad(_) | U::Body(_) => StatusCode::BAD_REQUEST,
            U::Unknown(_) => StatusCode::NOT_FOUND,
            U::Exists(_) => StatusCode::CONFLICT,
            U::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            U::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            U::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// A fresh upload folder.
#[utoipa::path(post, path = "/uploads", tag = "uploads",
    responses((status = 200, description = "the upload", body = UploadAnswer),
        (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 507, description = "the shared folder is full", body = ErrorBody)))]
pub(super) async fn create_upload(State(sh): Shr) -> ApiResult<Json<UploadAnswer>> {
    let shared = sh.shared_dir.clone();
    let (upload_id, path) =
        tokio::task::spawn_blocking(move || crate::master::uploads::create(&shared))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(UploadAnswer {
        upload_id,
        path: path.display().to_string(),
    }))
}

/// Streams a file into an upload.
#[utoipa::path(put, path = "/uploads/{id}/{name}", tag = "uploads",
    params(("id" = String, Path, pattern = "^up-[0-9a-f]{32}$", description = "the upload's id"),
        ("name" = String, Path, pattern = "^[^./][^/]*(/[^./][^/]*)*$", description = "the file's name in the upload (may hold `/`)")),
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream",
        description = "the file's bytes (none: an empty file)"),
    responses((status = 200, description = "stored", body = UploadedFile),
        (status = 400, description = "a bad id or name", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such upload", body = ErrorBody),
        (status = 409, description = "the file exists", body = ErrorBody), (status = 413, description = "over MAX_UPLOAD_BYTES", body = ErrorBody),
        (status = 507, description = "the shared folder is full", body = ErrorBody)))]
pub(super) async fn put_upload(
    State(sh): Shr,
    Path((id, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<UploadedFile>> {
    let (path, bytes) = crate::master::uploads::write(
        &sh.shared_dir,
        &id,
        &name,
        body,
        sh.settings.max_upload_bytes,
    )
    .await?;
    Ok(Json(UploadedFile {
        upload_id: id,
        path: path.display().to_string(),
        bytes,
    }))
}

/// Removes an upload.
#[utoipa::path(delete, path = "/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, pattern = "^up-[0-9a-f]{32}$", description = "the upload's id")),
    responses((status = 200, description = "removed"),
        (status = 400, description = "a bad id", body = ErrorBody), (status = 401, description = "no or wrong cluster token", body = ErrorBody), (status = 404, description = "no such upload", body = ErrorBody)))]
pub(super) async fn delete_upload(
    State(sh): Shr,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let shared = sh.shared_dir.clone();
    let gone = id.clone();
    tokio::task::spawn_blocking(move || crate::master::uploads::delete(&shared, &gone))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(serde_json::json!({"upload_id": id, "deleted": true})))
}
