//! Presence: what one observation of a user's status says, and what we derive from many.
//!
//! Everything here is pure (no I/O, no clock): the actors feed observations in and persist what
//! comes out, and the tests check the rules directly.

pub mod pushes;
pub mod schedule;
pub mod sessions;
pub mod stats;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// A user's status as Telegram reports it (grammers' `UserStatus`, flattened).
///
/// `Recently`, `LastWeek` and `LastMonth` mean the user hides the exact status from us: they are
/// recorded, but they are evidence of neither online nor offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Online now; Telegram considers the user online until `expires`.
    Online {
        expires: DateTime<Utc>,
    },
    /// Offline; last seen online at `was_online` when Telegram tells us.
    Offline {
        was_online: Option<DateTime<Utc>>,
    },
    Recently,
    LastWeek,
    LastMonth,
    Unknown,
}

impl Status {
    /// The name stored in `status_checks.status` and used in the API.
    pub fn kind(&self) -> StatusKind {
        match self {
            Status::Online { .. } => StatusKind::Online,
            Status::Offline { .. } => StatusKind::Offline,
            Status::Recently => StatusKind::Recently,
            Status::LastWeek => StatusKind::LastWeek,
            Status::LastMonth => StatusKind::LastMonth,
            Status::Unknown => StatusKind::Unknown,
        }
    }

    /// Rebuilds a status from its stored columns.
    pub fn from_parts(
        kind: StatusKind,
        expires: Option<DateTime<Utc>>,
        was_online: Option<DateTime<Utc>>,
        observed_at: DateTime<Utc>,
    ) -> Status {
        match kind {
            // An online row without an expiry means "online at that instant".
            StatusKind::Online => Status::Online {
                expires: expires.unwrap_or(observed_at),
            },
            StatusKind::Offline => Status::Offline { was_online },
            StatusKind::Recently => Status::Recently,
            StatusKind::LastWeek => Status::LastWeek,
            StatusKind::LastMonth => Status::LastMonth,
            StatusKind::Unknown => Status::Unknown,
        }
    }

    pub fn expires(&self) -> Option<DateTime<Utc>> {
        match self {
            Status::Online { expires } => Some(*expires),
            _ => None,
        }
    }

    pub fn was_online(&self) -> Option<DateTime<Utc>> {
        match self {
            Status::Offline { was_online } => *was_online,
            _ => None,
        }
    }
}

/// The status without its timestamps: the `status` column and the API's `status` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "sea-orm",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "Text")
)]
pub enum StatusKind {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "online"))]
    Online,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "offline"))]
    Offline,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "recently"))]
    Recently,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "last_week"))]
    LastWeek,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "last_month"))]
    LastMonth,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "unknown"))]
    Unknown,
}

impl StatusKind {
    pub const ALL: [StatusKind; 6] = [
        StatusKind::Online,
        StatusKind::Offline,
        StatusKind::Recently,
        StatusKind::LastWeek,
        StatusKind::LastMonth,
        StatusKind::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Online => "online",
            StatusKind::Offline => "offline",
            StatusKind::Recently => "recently",
            StatusKind::LastWeek => "last_week",
            StatusKind::LastMonth => "last_month",
            StatusKind::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<StatusKind> {
        StatusKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// Where an observation came from (the `source` column of `status_checks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "sea-orm",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "Text")
)]
pub enum Source {
    /// Our batched `users.getUsers` poll.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "poll"))]
    Poll,
    /// An `UpdateUserStatus` that Telegram pushed.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "push"))]
    Push,
    /// Recorded by hand through the API.
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "manual"))]
    Manual,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Poll => "poll",
            Source::Push => "push",
            Source::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Option<Source> {
        [Source::Poll, Source::Push, Source::Manual]
            .into_iter()
            .find(|source| source.as_str() == text)
    }
}

/// One observation of one user's status at one moment.
///
/// Observations are ordered the way the gap rule reads them: by time, and at the same instant
/// `Online` first, then `Offline`, then the hidden statuses and `Unknown`, then by `expires` and
/// `was_online`. Two statuses seen at the same instant are thus read in one fixed order whatever
/// order they arrived in, and an offline status wins over an online one of the same instant (the
/// user was online at that instant and left: the offline status says when). Only equal
/// observations compare equal, so sorting puts duplicates next to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    pub observed_at: DateTime<Utc>,
    pub status: Status,
}

impl Observation {
    /// The observation with every timestamp cut to the microsecond, the precision the database
    /// keeps: what is folded live must equal what is read back to fold again.
    pub fn at_stored_precision(self) -> Observation {
        let cut = |at: DateTime<Utc>| at.trunc_subsecs(6);
        Observation {
            observed_at: cut(self.observed_at),
            status: match self.status {
                Status::Online { expires } => Status::Online {
                    expires: cut(expires),
                },
                Status::Offline { was_online } => Status::Offline {
                    was_online: was_online.map(cut),
                },
                other => other,
            },
        }
    }

    fn order_key(&self) -> OrderKey {
        let rank = match self.status {
            Status::Online { .. } => 0,
            Status::Offline { .. } => 1,
            Status::Recently => 2,
            Status::LastWeek => 3,
            Status::LastMonth => 4,
            Status::Unknown => 5,
        };
        (
            self.observed_at,
            rank,
            self.status.expires(),
            self.status.was_online(),
        )
    }
}

/// Time, rank of the status at one instant, `expires`, `was_online`.
type OrderKey = (
    DateTime<Utc>,
    u8,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

impl Ord for Observation {
    fn cmp(&self, other: &Observation) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for Observation {
    fn partial_cmp(&self, other: &Observation) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
