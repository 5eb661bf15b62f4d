//! `/api/v1/videos` and `/api/v1/search/videos`: list, get, update, delete, search, upload.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::videos::{self, MediaFilter, PodUrls, Sort, VideoJson};
use crate::Pod;

/// Most results one page may hold.
const MAX_COUNT: u32 = 100;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    start: Option<u32>,
    count: Option<u32>,
    sort: Option<String>,
    /// `video` or `audio`.
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    search: Option<String>,
}

#[derive(Serialize)]
pub struct Page {
    total: u64,
    data: Vec<VideoJson>,
}

fn paging(q: &ListQuery) -> Result<(u32, u32, MediaFilter), ApiError> {
    let count = q.count.unwrap_or(15);
    if count == 0 || count > MAX_COUNT {
        return Err(ApiError::bad_request(
            "invalid_count",
            format!("count must be between 1 and {MAX_COUNT}"),
        ));
    }
    let filter = MediaFilter::parse(q.media_type.as_deref())
        .map_err(|m| ApiError::bad_request("invalid_media_type", m))?;
    Ok((q.start.unwrap_or(0), count, filter))
}

fn page(pod: &Pod, total: u64, rows: Vec<videos::Video>) -> Json<Page> {
    let urls = PodUrls::new(pod.public_url());
    Json(Page {
        total,
        data: rows.iter().map(|v| VideoJson::new(v, &urls)).collect(),
    })
}

pub async fn list(
    State(pod): State<Pod>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let (start, count, filter) = paging(&q)?;
    let sort =
        Sort::parse(q.sort.as_deref()).map_err(|m| ApiError::bad_request("invalid_sort", m))?;
    let (total, rows) = pod
        .db()
        .call(move |c| videos::list(c, start, count, sort, filter))
        .await
        .map_err(ApiError::internal)?;
    Ok(page(&pod, total, rows))
}

pub async fn search(
    State(pod): State<Pod>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let (start, count, filter) = paging(&q)?;
    let text = q.search.clone().unwrap_or_default();
    if text.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_search",
            "the search is longer than 200 characters",
        ));
    }
    let (total, rows) = pod
        .db()
        .call(move |c| videos::search(c, &text, start, count, filter))
        .await
        .map_err(ApiError::internal)?;
    Ok(page(&pod, total, rows))
}

async fn find(pod: &Pod, id: String) -> Result<videos::Video, ApiError> {
    let shown = id.clone();
    pod.db()
        .call(move |c| videos::get(c, &id))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no video {shown:?} on this pod"),
            )
        })
}

pub async fn get(
    State(pod): State<Pod>,
    Path(id): Path<String>,
) -> Result<Json<VideoJson>, ApiError> {
    let video = find(&pod, id).await?;
    Ok(Json(VideoJson::new(
        &video,
        &PodUrls::new(pod.public_url()),
    )))
}

/// `POST /api/v1/videos/{id}/views`: a viewer started playing (feeds the "popular" sort).
pub async fn add_view(
    State(pod): State<Pod>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let video = find(&pod, id).await?;
    pod.db()
        .call(move |c| videos::add_view(c, video.id))
        .await
        .map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct Update {
    name: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
}

pub async fn update(
    State(pod): State<Pod>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Update>,
) -> Result<Json<VideoJson>, ApiError> {
    super::require_admin(&pod, &headers)?;
    let video = find(&pod, id).await?;
    if let Some(name) = &body.name {
        let n = name.trim().chars().count();
        if n == 0 || n > 120 {
            return Err(ApiError::bad_request(
                "invalid_name",
                "the name must have 1 to 120 characters",
            ));
        }
    }
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 10_000)
    {
        return Err(ApiError::bad_request(
            "invalid_description",
            "the description is longer than 10000 characters",
        ));
    }
    let tags = body.tags.map(|t| videos::normalize_tags(&t.join(",")));
    let id = video.id;
    let updated = pod
        .db()
        .call(move |c| {
            videos::update(
                c,
                id,
                body.name.as_deref().map(str::trim),
                body.description.as_deref(),
                tags.as_deref(),
            )?;
            videos::get(c, &id.to_string())
        })
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the video was deleted meanwhile",
            )
        })?;
    Ok(Json(VideoJson::new(
        &updated,
        &PodUrls::new(pod.public_url()),
    )))
}

pub async fn delete(
    State(pod): State<Pod>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super::require_admin(&pod, &headers)?;
    let video = find(&pod, id).await?;
    let row_id = video.id;
    pod.db()
        .call(move |c| videos::delete(c, row_id))
        .await
        .map_err(ApiError::internal)?;
    // The row is gone first, so nothing points at the files any more; then the files go.
    pod.catalogue().remove(&video.info_hash);
    pod.tracker().forget_swarm(&video.info_hash);
    let data = &pod.config().data_dir;
    let _ =
        tokio::fs::remove_file(data.join(crate::upload::MEDIA_DIR).join(&video.media_path)).await;
    if let Some(thumb) = &video.thumbnail {
        let _ = tokio::fs::remove_file(data.join(crate::upload::THUMBNAIL_DIR).join(thumb)).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct Uploaded {
    video: UploadedRef,
}

#[derive(Serialize)]
pub struct UploadedRef {
    id: i64,
    uuid: String,
}

pub async fn upload(
    State(pod): State<Pod>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    super::require_admin(&pod, &headers)?;
    let expected = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let video = crate::upload::receive(&pod, multipart, expected).await?;
    Ok((
        StatusCode::OK,
        Json(Uploaded {
            video: UploadedRef {
                id: video.id,
                uuid: video.uuid,
            },
        }),
    ))
}
