//! The RPC methods the sandbox answers.
//!
//! [`call`] takes the body of one request (already out of containers and gzip), peels the
//! `invokeWithLayer` / `initConnection` / `invokeWithoutUpdates` / `invokeAfterMsg(s)` wrappers,
//! applies the account's injected faults, and answers. Anything unknown gets
//! `400 METHOD_NOT_IMPLEMENTED`: an answer, never silence, so a client never hangs on us.
//!
//! Requests are made with an auth key, which may be logged in to nobody: then only
//! `help.getConfig` and the login methods (answered by `crate::login`) work, and everything else
//! is `401 AUTH_KEY_UNREGISTERED`, as on Telegram.
//!
//! Channel methods are answered by `crate::channels`, behind one `match` arm; a new family
//! would do the same, with its handlers in its own module, reading and changing [`World`].

use grammers_tl_types::{self as tl, Identifiable, Serializable, functions};

use crate::wire::{Tail, constructor_of, parse_call};
use crate::world::{AccountId, World, unix_now};

/// The most users one `users.getUsers` may ask for. Telegram's documented limit is unclear; the
/// sandbox enforces 200 so that tgwatch's batching stays within what it plans for.
pub(crate) const GET_USERS_LIMIT: usize = 200;

/// An answer to one RPC: the serialized result, or an `rpc_error`.
#[derive(Debug)]
pub(crate) enum Answer {
    Result(Vec<u8>),
    Error { code: i32, message: String },
}

impl Answer {
    pub(crate) fn ok(value: &impl Serializable) -> Self {
        Answer::Result(value.to_bytes())
    }

    pub(crate) fn error(code: i32, message: impl Into<String>) -> Self {
        Answer::Error {
            code,
            message: message.into(),
        }
    }

    fn bad_input() -> Self {
        // What Telegram says when it cannot parse a request's arguments.
        Self::error(400, "INPUT_FETCH_ERROR")
    }
}

/// Who makes a request: the auth key it is encrypted with, on which live connection, on which
/// DC.
#[derive(Clone, Copy)]
pub(crate) struct Caller {
    pub(crate) key: [u8; 8],
    pub(crate) connection: Option<u64>,
    pub(crate) dc: i32,
}

impl Caller {
    /// A request made outside any connection, on the home DC: the unit tests' shorthand.
    #[cfg(test)]
    pub(crate) fn key(key: [u8; 8]) -> Self {
        Caller {
            key,
            connection: None,
            dc: crate::HOME_DC,
        }
    }
}

/// Answers one request of `account` made with its original key: the unit tests' shorthand.
#[cfg(test)]
pub(crate) fn call_as(world: &mut World, account: AccountId, body: &[u8]) -> Answer {
    match world
        .accounts
        .get(&account)
        .map(|record| record.original_key)
    {
        Some(key) => call(world, Caller::key(key), body),
        None => Answer::error(401, "AUTH_KEY_UNREGISTERED"),
    }
}

/// Answers one request, as whichever account the caller's key is logged in as.
pub(crate) fn call(world: &mut World, caller: Caller, body: &[u8]) -> Answer {
    let Caller {
        key,
        connection,
        dc,
    } = caller;
    let Ok(Unwrapped {
        query,
        without_updates,
    }) = unwrap_wrappers(body)
    else {
        return Answer::bad_input();
    };
    if let Some(connection) = connection {
        world.note_request(key, connection, !without_updates);
    }
    let id = constructor_of(&query);
    let method = tl::name_for_id(id);
    // Looked up per request: a login or logout on this very connection changes it.
    let account = world.account_of_key(key);
    world.count_call(account, method);

    if let Some(answer) = injected_fault(world, account, method, id) {
        return answer;
    }
    if let Some(answer) = crate::login::answer(world, key, dc, id, &query) {
        return answer.unwrap_or_else(|_: tl::deserialize::Error| Answer::bad_input());
    }
    let Some(account) = account else {
        return if id == functions::help::GetConfig::CONSTRUCTOR_ID {
            get_config(dc)
        } else if method.starts_with("auth.") {
            // A login method the sandbox does not answer (auth.resendCode, bots...): saying
            // "not logged in" would send the client round in circles.
            Answer::error(400, "METHOD_NOT_IMPLEMENTED")
        } else {
            Answer::error(401, "AUTH_KEY_UNREGISTERED")
        };
    };

    if id == functions::help::GetConfig::CONSTRUCTOR_ID {
        return get_config(dc);
    }
    // An account is served by its own DC only; its key is known everywhere here (standing in
    // for the authorization a client would export to another DC).
    let home_dc = world
        .accounts
        .get(&account)
        .map_or(dc, |record| record.home_dc);
    if home_dc != dc {
        return Answer::error(303, format!("USER_MIGRATE_{home_dc}"));
    }

    let answer = match id {
        functions::updates::GetState::CONSTRUCTOR_ID => get_state(world, account),
        functions::updates::GetDifference::CONSTRUCTOR_ID => {
            crate::updates::get_difference(world, account, &query)
        }
        functions::users::GetUsers::CONSTRUCTOR_ID => get_users(world, account, &query),
        functions::users::GetFullUser::CONSTRUCTOR_ID => get_full_user(world, account, &query),
        functions::contacts::ResolveUsername::CONSTRUCTOR_ID => {
            resolve_username(world, account, &query)
        }
        id if crate::channels::handles(id) => crate::channels::call(world, account, id, &query),
        _ => {
            tracing::debug!(method, "sandbox: method not implemented");
            Ok(Answer::error(400, "METHOD_NOT_IMPLEMENTED"))
        }
    };
    answer.unwrap_or_else(|_: tl::deserialize::Error| Answer::bad_input())
}

/// A request without its wrappers.
struct Unwrapped {
    query: Vec<u8>,
    /// It came in `invokeWithoutUpdates`: its connection is not subscribed to updates by it.
    without_updates: bool,
}

/// Peels the wrappers that only carry another query. grammers sends
/// `invokeWithLayer(initConnection(help.getConfig))` first on every connection. The client's
/// layer is not checked: the sandbox speaks grammers' layer, and a client a layer or two apart
/// (Telethon) only differs in constructors the sandbox does not send.
fn unwrap_wrappers(body: &[u8]) -> Result<Unwrapped, tl::deserialize::Error> {
    let mut query = body.to_vec();
    let mut without_updates = false;
    // Each wrapper holds exactly one query; a handful of levels is more than any client nests.
    for _ in 0..8 {
        query = match constructor_of(&query) {
            functions::InvokeWithLayer::<Tail>::CONSTRUCTOR_ID => {
                parse_call::<functions::InvokeWithLayer<Tail>>(&query)?
                    .query
                    .0
            }
            functions::InitConnection::<Tail>::CONSTRUCTOR_ID => {
                parse_call::<functions::InitConnection<Tail>>(&query)?
                    .query
                    .0
            }
            functions::InvokeWithoutUpdates::<Tail>::CONSTRUCTOR_ID => {
                without_updates = true;
                parse_call::<functions::InvokeWithoutUpdates<Tail>>(&query)?
                    .query
                    .0
            }
            functions::InvokeAfterMsg::<Tail>::CONSTRUCTOR_ID => {
                parse_call::<functions::InvokeAfterMsg<Tail>>(&query)?
                    .query
                    .0
            }
            functions::InvokeAfterMsgs::<Tail>::CONSTRUCTOR_ID => {
                parse_call::<functions::InvokeAfterMsgs<Tail>>(&query)?
                    .query
                    .0
            }
            _ => break,
        };
    }
    Ok(Unwrapped {
        query,
        without_updates,
    })
}

/// Bans and FLOOD_WAITs injected by the control API: a ban, then a method's FLOOD_WAIT for
/// everyone, then one for the account's calls of the method, then one for all its calls.
///
/// `help.getConfig` (the payload of `initConnection`) is never refused: Telegram answers it even
/// for an unregistered key, and refusing it would fail the connection instead of the request.
/// A ban covers every key of the account. A per-method FLOOD_WAIT hits its method whatever key
/// calls it (logged in or not). The per-account FLOOD_WAIT spares the update machinery
/// (`updates.getState`, `updates.getDifference`), so that it hits the calls a test aims at
/// rather than grammers' background requests.
fn injected_fault(
    world: &mut World,
    account: Option<AccountId>,
    method: &str,
    id: u32,
) -> Option<Answer> {
    if id == functions::help::GetConfig::CONSTRUCTOR_ID {
        return None;
    }
    let ban = account
        .and_then(|account| world.accounts.get(&account))
        .and_then(|record| record.ban);
    if let Some(ban) = ban {
        return Some(Answer::error(401, ban.error_name()));
    }
    if let Some(flood) = world.method_floods.get_mut(method) {
        let seconds = flood.seconds;
        flood.remaining = flood.remaining.saturating_sub(1);
        if flood.remaining == 0 {
            world.method_floods.remove(method);
        }
        return Some(Answer::error(420, format!("FLOOD_WAIT_{seconds}")));
    }
    let record = world.accounts.get_mut(&account?)?;
    if let Some(flood) = record.method_floods.get_mut(method) {
        let seconds = flood.seconds;
        flood.remaining = flood.remaining.saturating_sub(1);
        if flood.remaining == 0 {
            record.method_floods.remove(method);
        }
        return Some(Answer::error(420, format!("FLOOD_WAIT_{seconds}")));
    }
    if matches!(
        id,
        functions::updates::GetState::CONSTRUCTOR_ID
            | functions::updates::GetDifference::CONSTRUCTOR_ID
            | functions::updates::GetChannelDifference::CONSTRUCTOR_ID
    ) {
        return None;
    }
    let flood = record.flood.as_mut()?;
    let seconds = flood.seconds;
    flood.remaining = flood.remaining.saturating_sub(1);
    if flood.remaining == 0 {
        record.flood = None;
    }
    Some(Answer::error(420, format!("FLOOD_WAIT_{seconds}")))
}

/// A `Config` with no `dc_options`: grammers then keeps the session's DC addresses, which all
/// point at the sandbox. `this_dc` is the DC the request reached.
fn get_config(dc: i32) -> Answer {
    let now = unix_now();
    Answer::ok(&tl::enums::Config::Config(tl::types::Config {
        default_p2p_contacts: false,
        preload_featured_stickers: false,
        revoke_pm_inbox: true,
        blocked_mode: false,
        force_try_ipv6: false,
        date: now,
        expires: now.saturating_add(3600),
        test_mode: false,
        this_dc: dc,
        dc_options: Vec::new(),
        dc_txt_domain_name: "sandbox.invalid".into(),
        chat_size_max: 200,
        megagroup_size_max: 200_000,
        forwarded_count_max: 100,
        online_update_period_ms: 210_000,
        offline_blur_timeout_ms: 5_000,
        offline_idle_timeout_ms: 30_000,
        online_cloud_timeout_ms: 300_000,
        notify_cloud_delay_ms: 30_000,
        notify_default_delay_ms: 1_500,
        push_chat_period_ms: 60_000,
        push_chat_limit: 2,
        edit_time_limit: 172_800,
        revoke_time_limit: i32::MAX,
        revoke_pm_time_limit: i32::MAX,
        rating_e_decay: 2_419_200,
        stickers_recent_limit: 200,
        channels_read_media_period: 604_800,
        tmp_sessions: None,
        call_receive_timeout_ms: 20_000,
        call_ring_timeout_ms: 90_000,
        call_connect_timeout_ms: 30_000,
        call_packet_timeout_ms: 10_000,
        me_url_prefix: "https://t.me/".into(),
        autoupdate_url_prefix: None,
        gif_search_username: None,
        venue_search_username: None,
        img_search_username: None,
        static_maps_provider: None,
        caption_length_max: 1024,
        message_length_max: 4096,
        webfile_dc_id: 4,
        suggested_lang_code: None,
        lang_pack_version: None,
        base_lang_pack_version: None,
        reactions_default: None,
        autologin_token: None,
    }))
}

fn get_state(world: &World, account: AccountId) -> Result<Answer, tl::deserialize::Error> {
    Ok(Answer::ok(&tl::enums::updates::State::State(
        crate::updates::state_of(world, account),
    )))
}

/// Resolves an `InputUser` the way Telegram does: the self user, or a known user whose access
/// hash matches. Anything else is `None` (`users.getUsers` just leaves such users out).
fn lookup_user(world: &World, account: AccountId, input: &tl::enums::InputUser) -> Option<i64> {
    match input {
        tl::enums::InputUser::UserSelf => Some(account.user_id()),
        tl::enums::InputUser::User(user) => world
            .users
            .get(&user.user_id)
            .filter(|record| record.access_hash == user.access_hash)
            .map(|record| record.id),
        tl::enums::InputUser::Empty | tl::enums::InputUser::FromMessage(_) => None,
    }
}

fn get_users(
    world: &World,
    account: AccountId,
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::users::GetUsers>(query)?;
    if request.id.len() > GET_USERS_LIMIT {
        return Ok(Answer::error(400, "LIMIT_INVALID"));
    }
    let users: Vec<tl::enums::User> = request
        .id
        .iter()
        .filter_map(|input| lookup_user(world, account, input))
        .filter_map(|id| world.users.get(&id))
        .map(|record| world.user_for(record, account))
        .collect();
    Ok(Answer::ok(&users))
}

fn get_full_user(
    world: &World,
    account: AccountId,
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::users::GetFullUser>(query)?;
    let Some(record) = lookup_user(world, account, &request.id).and_then(|id| world.users.get(&id))
    else {
        return Ok(Answer::error(400, "USER_ID_INVALID"));
    };
    let full = tl::types::UserFull {
        blocked: false,
        phone_calls_available: false,
        phone_calls_private: false,
        can_pin_message: false,
        has_scheduled: false,
        video_calls_available: false,
        voice_messages_forbidden: false,
        translations_disabled: false,
        stories_pinned_available: false,
        blocked_my_stories_from: false,
        wallpaper_overridden: false,
        contact_require_premium: false,
        read_dates_private: false,
        sponsored_enabled: false,
        can_view_revenue: false,
        bot_can_manage_emoji_status: false,
        display_gifts_button: false,
        noforwards_my_enabled: false,
        noforwards_peer_enabled: false,
        unofficial_security_risk: false,
        id: record.id,
        about: None,
        settings: tl::enums::PeerSettings::Settings(tl::types::PeerSettings {
            report_spam: false,
            add_contact: false,
            block_contact: false,
            share_contact: false,
            need_contacts_exception: false,
            report_geo: false,
            autoarchived: false,
            invite_members: false,
            request_chat_broadcast: false,
            business_bot_paused: false,
            business_bot_can_reply: false,
            geo_distance: None,
            request_chat_title: None,
            request_chat_date: None,
            business_bot_id: None,
            business_bot_manage_url: None,
            charge_paid_message_stars: None,
            registration_month: None,
            phone_country: None,
            name_change_date: None,
            photo_change_date: None,
        }),
        personal_photo: None,
        profile_photo: None,
        fallback_photo: None,
        notify_settings: tl::enums::PeerNotifySettings::Settings(tl::types::PeerNotifySettings {
            show_previews: None,
            silent: None,
            mute_until: None,
            ios_sound: None,
            android_sound: None,
            other_sound: None,
            stories_muted: None,
            stories_hide_sender: None,
            stories_ios_sound: None,
            stories_android_sound: None,
            stories_other_sound: None,
        }),
        bot_info: None,
        pinned_msg_id: None,
        common_chats_count: 0,
        folder_id: None,
        ttl_period: None,
        theme: None,
        private_forward_name: None,
        bot_group_admin_rights: None,
        bot_broadcast_admin_rights: None,
        wallpaper: None,
        stories: None,
        business_work_hours: None,
        business_location: None,
        business_greeting_message: None,
        business_away_message: None,
        business_intro: None,
        birthday: None,
        personal_channel_id: None,
        personal_channel_message: None,
        stargifts_count: None,
        starref_program: None,
        bot_verification: None,
        send_paid_messages_stars: None,
        disallowed_gifts: None,
        stars_rating: None,
        stars_my_pending_rating: None,
        stars_my_pending_rating_date: None,
        main_tab: None,
        saved_music: None,
        note: None,
        bot_manager_id: None,
    };
    Ok(Answer::ok(&tl::enums::users::UserFull::Full(
        tl::types::users::UserFull {
            full_user: tl::enums::UserFull::Full(full),
            chats: Vec::new(),
            users: vec![world.user_for(record, account)],
        },
    )))
}

fn resolve_username(
    world: &World,
    account: AccountId,
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    let request = parse_call::<functions::contacts::ResolveUsername>(query)?;
    let name = request.username.trim_start_matches('@').to_lowercase();
    let Some(record) = world
        .usernames
        .get(&name)
        .and_then(|id| world.users.get(id))
    else {
        // Channels share the username namespace.
        return Ok(crate::channels::resolve_username(world, account, &name)
            .unwrap_or_else(|| Answer::error(400, "USERNAME_NOT_OCCUPIED")));
    };
    Ok(Answer::ok(&tl::enums::contacts::ResolvedPeer::Peer(
        tl::types::contacts::ResolvedPeer {
            peer: tl::enums::Peer::User(tl::types::PeerUser { user_id: record.id }),
            chats: Vec::new(),
            users: vec![world.user_for(record, account)],
        },
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use grammers_tl_types::Deserializable;

    use super::*;
    use crate::crypto::{ServerKey, random_key};
    use crate::world::Ban;

    /// A world with one account (id 1) and nobody else.
    pub(crate) fn world_with_account() -> (World, AccountId) {
        let mut world = World::default();
        let account = world
            .add_account(1, 1, None, "Me", ServerKey::new(random_key()))
            .expect("account");
        (world, account)
    }

    fn error_of(answer: Answer) -> (i32, String) {
        match answer {
            Answer::Error { code, message } => (code, message),
            Answer::Result(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn wrappers_are_peeled_and_counted_by_what_they_carry() {
        let (mut world, account) = world_with_account();
        let request = functions::InvokeWithLayer {
            layer: tl::LAYER,
            query: functions::InitConnection {
                api_id: 1,
                device_model: "d".into(),
                system_version: "s".into(),
                app_version: "a".into(),
                system_lang_code: "en".into(),
                lang_pack: String::new(),
                lang_code: "en".into(),
                proxy: None,
                params: None,
                query: functions::help::GetConfig {},
            },
        };
        let Answer::Result(bytes) = call_as(&mut world, account, &request.to_bytes()) else {
            panic!("getConfig failed");
        };
        let tl::enums::Config::Config(config) =
            tl::enums::Config::from_bytes(&bytes).expect("a Config");
        assert!(config.dc_options.is_empty());
        assert_eq!(world.calls.get("help.getConfig"), Some(&1));
    }

    #[test]
    fn flood_waits_spare_connection_setup_and_update_machinery() {
        let (mut world, account) = world_with_account();
        world.account_mut(account).expect("account").flood = Some(crate::world::FloodWait {
            seconds: 9,
            remaining: 1,
        });
        for spared in [
            functions::help::GetConfig {}.to_bytes(),
            functions::updates::GetState {}.to_bytes(),
        ] {
            assert!(matches!(
                call_as(&mut world, account, &spared),
                Answer::Result(_)
            ));
        }
        let get_me = functions::users::GetUsers {
            id: vec![tl::enums::InputUser::UserSelf],
        }
        .to_bytes();
        assert_eq!(
            error_of(call_as(&mut world, account, &get_me)),
            (420, "FLOOD_WAIT_9".to_owned())
        );
        assert!(matches!(
            call_as(&mut world, account, &get_me),
            Answer::Result(_)
        ));
    }

    #[test]
    fn an_accounts_method_flood_wait_spares_its_other_methods_and_other_accounts() {
        let (mut world, account) = world_with_account();
        let other = world
            .add_account(2, 2, None, "Other", ServerKey::new(random_key()))
            .expect("account");
        world
            .account_mut(account)
            .expect("account")
            .method_floods
            .insert(
                "users.getUsers".to_owned(),
                crate::world::FloodWait {
                    seconds: 5,
                    remaining: 1,
                },
            );
        let get_me = functions::users::GetUsers {
            id: vec![tl::enums::InputUser::UserSelf],
        }
        .to_bytes();
        let get_state = functions::updates::GetState {}.to_bytes();
        assert!(matches!(
            call_as(&mut world, other, &get_me),
            Answer::Result(_)
        ));
        assert!(matches!(
            call_as(&mut world, account, &get_state),
            Answer::Result(_)
        ));
        assert_eq!(
            error_of(call_as(&mut world, account, &get_me)),
            (420, "FLOOD_WAIT_5".to_owned())
        );
        assert!(matches!(
            call_as(&mut world, account, &get_me),
            Answer::Result(_)
        ));
    }

    #[test]
    fn a_ban_spares_only_get_config() {
        let (mut world, account) = world_with_account();
        world.account_mut(account).expect("account").ban = Some(Ban::SessionRevoked);
        assert!(matches!(
            call_as(
                &mut world,
                account,
                &functions::help::GetConfig {}.to_bytes()
            ),
            Answer::Result(_)
        ));
        assert_eq!(
            error_of(call_as(
                &mut world,
                account,
                &functions::updates::GetState {}.to_bytes()
            )),
            (401, "SESSION_REVOKED".to_owned())
        );
    }

    #[test]
    fn garbage_gets_an_error_not_a_panic() {
        let (mut world, account) = world_with_account();
        let mut truncated = functions::users::GetUsers {
            id: vec![tl::enums::InputUser::UserSelf],
        }
        .to_bytes();
        truncated.truncate(6);
        assert_eq!(error_of(call_as(&mut world, account, &truncated)).0, 400);
        assert_eq!(
            error_of(call_as(&mut world, account, &[1, 2])),
            (400, "METHOD_NOT_IMPLEMENTED".to_owned())
        );
    }
}
