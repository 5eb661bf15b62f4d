//! Videos as cards in a grid: thumbnail, duration, title, views, date, and the pod of origin
//! when it is not this one.

use leptos::prelude::*;

use crate::api::Video;
use crate::format;

/// A grid of cards, or `empty` when there is nothing to show.
#[component]
pub fn VideoGrid(videos: Vec<Video>, #[prop(into)] empty: String) -> impl IntoView {
    if videos.is_empty() {
        return view! { <p class="empty-note">{empty}</p> }.into_any();
    }
    view! {
        <ul class="video-grid">
            {videos
                .into_iter()
                .map(|video| view! { <li><VideoCard video/></li> })
                .collect_view()}
        </ul>
    }
    .into_any()
}

/// One video: a link to its watch page.
#[component]
pub fn VideoCard(video: Video) -> impl IntoView {
    let href = format!("/w/{}", video.uuid);
    let duration = video.duration.map(format::duration);
    let meta = [
        format::views(video.views),
        format::date(&video.created_at).to_owned(),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" · ");
    view! {
        <a class="video-card" href=href data-uuid=video.uuid.clone()>
            <Thumbnail url=video.thumbnail_url.clone() is_audio=video.is_audio duration/>
            <span class="card-title">{video.name.clone()}</span>
            <span class="card-meta">
                {meta}
                <PodBadge pod=video.pod.clone()/>
            </span>
        </a>
    }
}

#[component]
fn Thumbnail(url: Option<String>, is_audio: bool, duration: Option<String>) -> impl IntoView {
    let picture = match url {
        // Decorative: the card's title names the video.
        Some(url) => view! { <img src=url alt="" loading="lazy"/> }.into_any(),
        None => view! {
            <span class="thumb-placeholder" aria-hidden="true">
                {if is_audio { "♪" } else { "▶" }}
            </span>
        }
        .into_any(),
    };
    view! {
        <span class="thumb">
            {picture}
            {is_audio.then(|| view! { <span class="badge kind">"Audio"</span> })}
            {duration.map(|d| view! { <span class="badge duration">{d}</span> })}
        </span>
    }
}

/// The pod a video comes from, shown only for followed pods' videos.
#[component]
pub fn PodBadge(pod: crate::api::PodRef) -> impl IntoView {
    (!pod.local && !pod.host.is_empty()).then(|| {
        view! { <span class="badge pod" title="From a followed pod">{pod.host}</span> }
    })
}

/// Previous / next page buttons with "Page 2 of 5".
#[component]
pub fn Pager(page: RwSignal<u64>, total: u64, per_page: u64) -> impl IntoView {
    let pages = total.div_ceil(per_page.max(1)).max(1);
    if pages <= 1 {
        return ().into_any();
    }
    view! {
        <nav class="pager" aria-label="Pages">
            <button
                type="button"
                disabled=move || page.get() == 0
                on:click=move |_| page.update(|p| *p = p.saturating_sub(1))
            >
                "← Previous"
            </button>
            <span>{move || format!("Page {} of {pages}", page.get() + 1)}</span>
            <button
                type="button"
                disabled=move || page.get() + 1 >= pages
                on:click=move |_| page.update(|p| *p += 1)
            >
                "Next →"
            </button>
        </nav>
    }
    .into_any()
}
