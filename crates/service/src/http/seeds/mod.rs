//! Drop-in routes for the clients of the seed systems: each seed's paths, field names and shapes
//! mapped onto the native handlers' functions and the store (no second copy of their logic).
//! They answer with the admin token only, like `/api`.

pub mod seed_002;
pub mod seed_003;

use std::future::Future;

use uuid::Uuid;

use super::error::ApiError;
use tgwatch_store::{
    StorageError,
    page::{MAX_LIMIT, Page},
};

/// Every item of a paginated store list, page after page (seed 002's lists are not paginated:
/// Django REST Framework without pagination answers the whole list).
async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>, ApiError>
where
    F: FnMut(u64, Option<Uuid>) -> Fut,
    Fut: Future<Output = Result<Page<T>, StorageError>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let next = page(MAX_LIMIT, cursor).await?;
        items.extend(next.items);
        match next.next_cursor {
            Some(last) => cursor = Some(last),
            None => return Ok(items),
        }
    }
}
