//! An account's common update box: its pts-carrying updates and `updates.getDifference`.
//!
//! As on Telegram, the difference is computed from the state the client sends (its `pts`): the
//! log is never consumed, so asking twice gives the same answer (a retry after a lost reply
//! loses nothing). Status changes carry no pts and are not part of it: a client that was away
//! learns statuses by asking (`users.getUsers`), not from the difference.
//!
//! The pts-carrying updates the sandbox makes are incoming private messages
//! ([`Sandbox::send_private_message`]). Channels have their own sequences: for a channel that
//! moved past what the member last got, the difference carries an `updateChannelTooLong`, and
//! the client asks `updates.getChannelDifference` (see `crate::channels`).

use grammers_tl_types::{self as tl, functions};

use crate::dispatch::Answer;
use crate::error::SandboxError;
use crate::sandbox::Sandbox;
use crate::wire::parse_call;
use crate::world::{AccountId, Delivery, Pushed, World, unix_now};

/// At most this many updates per `updates.getDifference` answer; more make it a
/// `differenceSlice`, after which the client asks again from the slice's state.
pub(crate) const DIFFERENCE_LIMIT: usize = 100;

/// One pts-carrying update of the common box.
pub(crate) struct LoggedUpdate {
    /// The account's pts after it.
    pub(crate) pts: i32,
    pub(crate) date: i32,
    pub(crate) update: tl::enums::Update,
    pub(crate) users: Vec<tl::enums::User>,
}

pub(crate) fn state_of(world: &World, account: AccountId) -> tl::types::updates::State {
    let (pts, qts, seq) = world
        .accounts
        .get(&account)
        .map(|record| (record.pts, record.qts, record.seq))
        .unwrap_or((1, 0, 0));
    tl::types::updates::State {
        pts,
        qts,
        date: unix_now(),
        seq,
        unread_count: 0,
    }
}

/// `updates.getDifference`: every logged update after the request's `pts` (up to
/// [`DIFFERENCE_LIMIT`]), and an `updateChannelTooLong` per channel the account is behind in.
pub(crate) fn get_difference(
    world: &World,
    account: AccountId,
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::updates::GetDifference>(query)?;
    let state = state_of(world, account);
    let log = world
        .accounts
        .get(&account)
        .map(|record| record.log.as_slice())
        .unwrap_or_default();
    let after: Vec<&LoggedUpdate> = log
        .iter()
        .filter(|logged| logged.pts > request.pts)
        .collect();
    let missed_channels = crate::channels::missed_channels(world, account);
    if after.is_empty() && missed_channels.is_empty() {
        return Ok(Answer::ok(&tl::enums::updates::Difference::Empty(
            tl::types::updates::DifferenceEmpty {
                date: state.date,
                seq: state.seq,
            },
        )));
    }

    let window = &after[..after.len().min(DIFFERENCE_LIMIT)];
    let mut new_messages = Vec::new();
    let mut other_updates = Vec::new();
    let mut users = Vec::new();
    for logged in window {
        match &logged.update {
            tl::enums::Update::NewMessage(new) => new_messages.push(new.message.clone()),
            other => other_updates.push(other.clone()),
        }
        users.extend(logged.users.iter().cloned());
    }
    other_updates.extend(missed_channels);
    let chats = crate::channels::chats_for(world, account, &other_updates);

    if window.len() < after.len() {
        let last = window.last().map_or(request.pts, |logged| logged.pts);
        let date = window.last().map_or(state.date, |logged| logged.date);
        return Ok(Answer::ok(&tl::enums::updates::Difference::Slice(
            tl::types::updates::DifferenceSlice {
                new_messages,
                new_encrypted_messages: Vec::new(),
                other_updates,
                chats,
                users,
                intermediate_state: tl::enums::updates::State::State(tl::types::updates::State {
                    pts: last,
                    date,
                    ..state
                }),
            },
        )));
    }
    Ok(Answer::ok(&tl::enums::updates::Difference::Difference(
        tl::types::updates::Difference {
            new_messages,
            new_encrypted_messages: Vec::new(),
            other_updates,
            chats,
            users,
            state: tl::enums::updates::State::State(state),
        },
    )))
}

/// A private text message from `from_user` to `to`: logged in the account's common box (its pts
/// moves by one) and pushed to every authorization of the account that takes updates.
fn send_private_message(
    world: &mut World,
    from_user: i64,
    to: AccountId,
    text: &str,
) -> Result<(i32, Delivery), SandboxError> {
    let sender = world
        .users
        .get(&from_user)
        .ok_or(SandboxError::UnknownUser(from_user))?;
    let users = vec![world.user_for(sender, to)];
    let date = world.message_time();
    let record = world.account_mut(to)?;
    record.last_message_id += 1;
    record.pts += 1;
    let (id, pts) = (record.last_message_id, record.pts);
    let update = tl::enums::Update::NewMessage(tl::types::UpdateNewMessage {
        message: private_message(id, from_user, date, text),
        pts,
        pts_count: 1,
    });
    record.log.push(LoggedUpdate {
        pts,
        date,
        update: update.clone(),
        users: users.clone(),
    });
    let reached = world.push(
        to,
        &Pushed::Updates {
            updates: vec![update],
            users,
        },
    )?;
    let delivery = if reached > 0 {
        Delivery {
            live: reached,
            ..Delivery::default()
        }
    } else {
        Delivery {
            queued: 1,
            ..Delivery::default()
        }
    };
    Ok((id, delivery))
}

fn private_message(id: i32, from_user: i64, date: i32, text: &str) -> tl::enums::Message {
    let peer = tl::enums::Peer::User(tl::types::PeerUser { user_id: from_user });
    tl::enums::Message::Message(text_message(id, peer.clone(), Some(peer), date, text))
}

/// A received text message with every optional part left out: the base of the private messages
/// here and of the channels' posts (which add what a post carries).
pub(crate) fn text_message(
    id: i32,
    peer_id: tl::enums::Peer,
    from_id: Option<tl::enums::Peer>,
    date: i32,
    text: &str,
) -> tl::types::Message {
    tl::types::Message {
        out: false,
        mentioned: false,
        media_unread: false,
        silent: false,
        post: false,
        from_scheduled: false,
        legacy: false,
        edit_hide: false,
        pinned: false,
        noforwards: false,
        invert_media: false,
        offline: false,
        video_processing_pending: false,
        paid_suggested_post_stars: false,
        paid_suggested_post_ton: false,
        id,
        from_id,
        from_boosts_applied: None,
        from_rank: None,
        peer_id,
        saved_peer_id: None,
        fwd_from: None,
        via_bot_id: None,
        via_business_bot_id: None,
        guestchat_via_from: None,
        reply_to: None,
        date,
        message: text.to_owned(),
        media: None,
        reply_markup: None,
        entities: None,
        views: None,
        forwards: None,
        replies: None,
        edit_date: None,
        post_author: None,
        grouped_id: None,
        reactions: None,
        restriction_reason: None,
        ttl_period: None,
        quick_reply_shortcut_id: None,
        effect: None,
        factcheck: None,
        report_delivery_until_date: None,
        paid_message_stars: None,
        suggested_post: None,
        schedule_repeat_period: None,
        summary_from_language: None,
        rich_message: None,
    }
}

impl Sandbox {
    /// `from_user` sends `to` a private text message: the account's pts moves by one, every
    /// authorization of the account with a connection that takes updates gets an
    /// `updateNewMessage`, and a client that was away finds it in `updates.getDifference`
    /// (counted as `queued` when no connection took it). Returns the message id (per account,
    /// as on Telegram) and where it went.
    pub fn send_private_message(
        &self,
        from_user: i64,
        to: AccountId,
        text: &str,
    ) -> Result<(i32, Delivery), SandboxError> {
        send_private_message(&mut self.shared.world(), from_user, to, text)
    }

    /// The account's common update state: `(pts, qts, seq)`.
    pub fn update_state(&self, account: AccountId) -> Result<(i32, i32, i32), SandboxError> {
        let world = self.shared.world();
        let record = world.account(account)?;
        Ok((record.pts, record.qts, record.seq))
    }
}

#[cfg(test)]
mod tests {
    use grammers_tl_types::{Deserializable, Serializable};

    use super::*;

    /// The account and a friend (user 2) who writes to it.
    fn world_with_account() -> (World, AccountId) {
        let (mut world, account) = crate::dispatch::tests::world_with_account();
        world.add_user(2, 2, None, "Friend").expect("user");
        (world, account)
    }

    fn difference(world: &World, account: AccountId, pts: i32) -> tl::enums::updates::Difference {
        let query = functions::updates::GetDifference {
            pts,
            pts_limit: None,
            pts_total_limit: None,
            date: 0,
            qts: 0,
            qts_limit: None,
        }
        .to_bytes();
        let Ok(Answer::Result(bytes)) = get_difference(world, account, &query) else {
            panic!("getDifference failed");
        };
        tl::enums::updates::Difference::from_bytes(&bytes).expect("a Difference")
    }

    #[test]
    fn the_difference_is_computed_from_the_clients_pts_and_consumes_nothing() {
        let (mut world, account) = world_with_account();
        for text in ["one", "two", "three"] {
            send_private_message(&mut world, 2, account, text).expect("sent");
        }
        for _ in 0..2 {
            let tl::enums::updates::Difference::Difference(all) = difference(&world, account, 1)
            else {
                panic!("expected a full difference");
            };
            assert_eq!(all.new_messages.len(), 3);
            let tl::enums::updates::State::State(state) = all.state;
            assert_eq!(state.pts, 4);
        }
        let tl::enums::updates::Difference::Difference(last) = difference(&world, account, 3)
        else {
            panic!("expected a difference");
        };
        assert_eq!(last.new_messages.len(), 1);
        assert!(matches!(
            difference(&world, account, 4),
            tl::enums::updates::Difference::Empty(_)
        ));
    }

    #[test]
    fn a_long_difference_comes_in_slices() {
        let (mut world, account) = world_with_account();
        for n in 0..(DIFFERENCE_LIMIT + 5) {
            send_private_message(&mut world, 2, account, &n.to_string()).expect("sent");
        }
        let tl::enums::updates::Difference::Slice(slice) = difference(&world, account, 1) else {
            panic!("expected a slice");
        };
        assert_eq!(slice.new_messages.len(), DIFFERENCE_LIMIT);
        let tl::enums::updates::State::State(state) = slice.intermediate_state;
        let tl::enums::updates::Difference::Difference(rest) =
            difference(&world, account, state.pts)
        else {
            panic!("expected the rest");
        };
        assert_eq!(rest.new_messages.len(), 5);
    }

    #[test]
    fn statuses_are_not_part_of_the_difference() {
        let (mut world, account) = world_with_account();
        world
            .account_mut(account)
            .expect("account")
            .contacts
            .insert(2);
        let delivery = world
            .set_user_status(2, crate::UserStatus::Online { expires: 10 })
            .expect("status");
        assert_eq!(
            (delivery.live, delivery.queued, delivery.dropped),
            (0, 0, 1)
        );
        assert!(matches!(
            difference(&world, account, 1),
            tl::enums::updates::Difference::Empty(_)
        ));
    }
}
