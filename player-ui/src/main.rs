//! The Shoal web app: browse, search, watch, upload. Client-side rendered with Leptos, built by
//! Trunk from `www/index.html`, served by the pod. It talks to the pod's JSON API ([`api`]) and
//! plays media through client-core.

mod api;
mod pages;

use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    view! {
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">"Shoal"</A>
                <nav>
                    <A href="/">"Home"</A>
                </nav>
            </header>
            <main>
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::Home/>
                </Routes>
            </main>
            <footer>
                <pages::PodStatus/>
            </footer>
        </Router>
    }
}
