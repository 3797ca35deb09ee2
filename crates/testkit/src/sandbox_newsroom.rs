//! The demo's channels: public channels in the sandbox where posts keep coming and are now and
//! then edited or deleted, so that channel monitoring (stored messages and their versions, the
//! live feed, webhooks) has something to show without a real Telegram.

use std::time::Duration;

use tgwatch_sandbox::{Sandbox, SandboxError};

/// A channel the demo watches.
pub struct DemoChannel {
    pub id: i64,
    pub username: &'static str,
    pub title: &'static str,
    pub about: &'static str,
}

pub const DEMO_CHANNELS: [DemoChannel; 2] = [
    DemoChannel {
        id: 1_500_000_001,
        username: "tgwatch_news",
        title: "tgwatch news",
        about: "Releases and notes (a sandbox channel of the demo)",
    },
    DemoChannel {
        id: 1_500_000_002,
        username: "tgwatch_deals",
        title: "Daily deals",
        about: "Prices that change and posts that vanish (a sandbox channel of the demo)",
    },
];

const HEADLINES: [&str; 8] = [
    "Release 1.4 is out",
    "Maintenance window tonight",
    "Coffee grinder -30 %",
    "New dashboard charts",
    "Headphones at half price",
    "Webhooks now retry for a day",
    "Last call: garden chairs",
    "Office hours moved to Friday",
];

/// What the newsroom does at one beat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Beat {
    Post {
        channel: usize,
        text: String,
    },
    /// Rewrite the channel's newest post.
    EditNewest {
        channel: usize,
    },
    /// Delete the channel's oldest post still there.
    DeleteOldest {
        channel: usize,
    },
}

/// The beat at `step`: the channels take turns; every fifth beat edits, every seventh deletes,
/// the others post.
pub fn beat(step: u64) -> Beat {
    let channel = (step % DEMO_CHANNELS.len() as u64) as usize;
    if step % 5 == 4 {
        Beat::EditNewest { channel }
    } else if step % 7 == 6 {
        Beat::DeleteOldest { channel }
    } else {
        let headline = HEADLINES[(step % HEADLINES.len() as u64) as usize];
        Beat::Post {
            channel,
            text: format!("{headline} (#{step})"),
        }
    }
}

/// Creates the demo's channels in the sandbox, each with a first post.
pub fn add_channels(sandbox: &Sandbox) -> Result<(), SandboxError> {
    for channel in &DEMO_CHANNELS {
        sandbox.add_channel(
            channel.id,
            channel.id ^ 0x0c4a,
            Some(channel.username),
            channel.title,
            channel.about,
        )?;
        sandbox.set_channel_subscribers(channel.id, 1_200)?;
        sandbox.post(channel.id, &format!("Welcome to {}", channel.title))?;
    }
    Ok(())
}

/// Plays a beat every `every` (real time) until the task is aborted.
pub fn run(sandbox: Sandbox, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Ids of the posts still there, oldest first, per channel.
        let mut posts: Vec<Vec<i32>> = vec![Vec::new(); DEMO_CHANNELS.len()];
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await;
        for step in 0.. {
            ticker.tick().await;
            if let Err(error) = play(&sandbox, &mut posts, beat(step)) {
                tracing::warn!(step, %error, "sandbox newsroom: a beat failed");
            }
        }
    })
}

fn play(sandbox: &Sandbox, posts: &mut [Vec<i32>], beat: Beat) -> Result<(), SandboxError> {
    match beat {
        Beat::Post { channel, text } => {
            let posted = sandbox.post(DEMO_CHANNELS[channel].id, &text)?;
            posts[channel].push(posted.id);
        }
        Beat::EditNewest { channel } => {
            if let Some(newest) = posts[channel].last() {
                sandbox.edit(
                    DEMO_CHANNELS[channel].id,
                    *newest,
                    "Correction: the price above was wrong, now fixed",
                )?;
            }
        }
        Beat::DeleteOldest { channel } => {
            // Keep a few posts in each channel.
            if posts[channel].len() > 3 {
                let oldest = posts[channel].remove(0);
                sandbox.delete(DEMO_CHANNELS[channel].id, &[oldest])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_take_turns_and_edits_and_deletions_come_at_their_beats() {
        let beats: Vec<Beat> = (0..8).map(beat).collect();
        assert_eq!(
            beats[0],
            Beat::Post {
                channel: 0,
                text: "Release 1.4 is out (#0)".into()
            }
        );
        assert!(matches!(beats[1], Beat::Post { channel: 1, .. }));
        assert_eq!(beats[4], Beat::EditNewest { channel: 0 });
        assert_eq!(beats[6], Beat::DeleteOldest { channel: 0 });
        // Every fifth beat edits even where a deletion would also fall.
        assert_eq!(beat(34), Beat::EditNewest { channel: 0 });
        assert_eq!(beat(13), Beat::DeleteOldest { channel: 1 });
        let posts = (0..70)
            .filter(|step| matches!(beat(*step), Beat::Post { .. }))
            .count();
        assert_eq!(posts, 70 - 14 - 8);
    }
}
