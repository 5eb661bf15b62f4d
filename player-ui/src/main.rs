//! The Shoal web app: browse, search, watch, upload, and a bare player for embedding. Client-side
//! rendered with Leptos, built by Trunk from `www/index.html`, served by the pod. It talks to
//! the pod's JSON API ([`api`]) and plays media through client-core ([`stream`]).

mod api;
mod components;
mod format;
mod pages;
mod prefs;
mod stream;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    let location = web_sys::window().map(|w| w.location());
    let path = location
        .as_ref()
        .and_then(|l| l.pathname().ok())
        .unwrap_or_default();
    // The embed route is a page of its own: no header, no footer, no router, just the player.
    if path.starts_with("/embed/") {
        let search = location
            .as_ref()
            .and_then(|l| l.search().ok())
            .unwrap_or_default();
        let request = pages::EmbedRequest::from_location(&path, &search);
        leptos::mount::mount_to_body(move || {
            view! { <div class="embed-root"><pages::EmbedPage request/></div> }
        });
    } else {
        leptos::mount::mount_to_body(App);
    }
}

#[component]
fn App() -> impl IntoView {
    view! {
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar">
                <A href="/" attr:class="brand">"Shoal"</A>
                <nav aria-label="Main">
                    <A href="/" exact=true>"Home"</A>
                    <A href="/search">"Search"</A>
                    <A href="/upload">"Upload"</A>
                </nav>
            </header>
            <main id="main" tabindex="-1">
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::Home/>
                    <Route path=path!("/search") view=pages::Search/>
                    <Route path=path!("/w/:uuid") view=pages::Watch/>
                    <Route path=path!("/upload") view=pages::Upload/>
                </Routes>
            </main>
            <footer>
                <pages::PodStatus/>
            </footer>
        </Router>
    }
}
