//! Home: what this pod (and the pods it follows) has to watch, newest first, and what is popular.

use leptos::prelude::*;

use crate::api;
use crate::components::{Pager, VideoGrid};

const PER_PAGE: u64 = 12;
const POPULAR_COUNT: u64 = 6;

#[component]
pub fn Home() -> impl IntoView {
    set_title("Shoal");
    view! {
        <section class="home">
            <h1 id="home-title">"Watch together, stream from each other"</h1>
            <p class="lead">
                "Videos and audio on this pod play from other viewers' browsers as well as from the pod."
            </p>
            <PopularVideos/>
            <RecentVideos/>
        </section>
    }
}

#[component]
fn RecentVideos() -> impl IntoView {
    let page = RwSignal::new(0u64);
    let videos = LocalResource::new(move || {
        let start = page.get() * PER_PAGE;
        async move { api::list_videos("-createdAt", start, PER_PAGE).await }
    });
    view! {
        <section id="recent" aria-labelledby="recent-title">
            <h2 id="recent-title">"Recent"</h2>
            {move || match videos.get() {
                None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                Some(Err(e)) => {
                    view! { <p class="error" role="alert">{format!("Cannot load the videos: {e}")}</p> }
                        .into_any()
                }
                Some(Ok(list)) => {
                    view! {
                        <VideoGrid videos=list.data empty="Nothing here yet: upload the first video."/>
                        <Pager page total=list.total per_page=PER_PAGE/>
                    }
                        .into_any()
                }
            }}
        </section>
    }
}

/// The most viewed; hidden until something has been watched.
#[component]
fn PopularVideos() -> impl IntoView {
    let videos = LocalResource::new(|| api::list_videos("-views", 0, POPULAR_COUNT));
    move || {
        let watched: Vec<api::Video> = match videos.get() {
            Some(Ok(list)) => list.data.into_iter().filter(|v| v.views > 0).collect(),
            _ => Vec::new(),
        };
        (!watched.is_empty()).then(|| {
            view! {
                <section id="popular" aria-labelledby="popular-title">
                    <h2 id="popular-title">"Popular"</h2>
                    <VideoGrid videos=watched empty=""/>
                </section>
            }
        })
    }
}

/// Sets the document's title (what tabs and history show).
pub fn set_title(title: &str) {
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        doc.set_title(title);
    }
}
