//! Pieces the pages share: video cards and lists, the media player, the P2P panel.

mod media_player;
mod p2p_panel;
mod video_list;

pub use media_player::{MediaPlayer, PlayerOptions};
pub use p2p_panel::P2pPanel;
pub use video_list::{Pager, VideoGrid};
