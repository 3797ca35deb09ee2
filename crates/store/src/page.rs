//! Cursor pagination: items in id order (UUID v7, so creation order), oldest first unless
//! [`Order::Desc`] is asked for; `next_cursor` is the last id of the page, and the next page
//! starts after it in the same order. Stable under inserts, unlike offsets.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Doing, StorageError};

pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

/// The `order` of a list: `asc` (oldest first) or `desc` (newest first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Uuid>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Runs `select` for one page of at most `limit` rows after `cursor`, in `order`.
pub async fn fetch<E, C>(
    db: &C,
    select: Select<E>,
    id_column: E::Column,
    id_of: impl Fn(&E::Model) -> Uuid,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<E::Model>, StorageError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut select = match order {
        Order::Asc => select.order_by_asc(id_column),
        Order::Desc => select.order_by_desc(id_column),
    }
    .limit(limit + 1);
    if let Some(cursor) = cursor {
        select = select.filter(match order {
            Order::Asc => id_column.gt(cursor),
            Order::Desc => id_column.lt(cursor),
        });
    }
    let mut items = select.all(db).await.doing("listing a page")?;
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(limit as usize);
        items.last().map(&id_of)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
