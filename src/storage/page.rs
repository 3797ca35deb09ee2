//! Cursor pagination: items in id order (UUID v7, so creation order), `next_cursor` is the last
//! id of the page, and the next page starts after it. Stable under inserts, unlike offsets.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use serde::Serialize;
use uuid::Uuid;

use super::{Doing, StorageError};

pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

#[derive(Debug, Serialize)]
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

/// Runs `select` for one page of at most `limit` rows after `cursor`.
pub async fn fetch<E, C>(
    db: &C,
    select: Select<E>,
    id_column: E::Column,
    id_of: impl Fn(&E::Model) -> Uuid,
    limit: u64,
    cursor: Option<Uuid>,
) -> Result<Page<E::Model>, StorageError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut select = select.order_by_asc(id_column).limit(limit + 1);
    if let Some(cursor) = cursor {
        select = select.filter(id_column.gt(cursor));
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
