//! Page-number pagination shared by list queries.

/// Items per page, as in the predecessor's API.
pub const PAGE_SIZE: u64 = 50;

/// One page of a list, with the total count for building `next`/`previous` links.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Items of this page.
    pub items: Vec<T>,
    /// Items over all pages.
    pub total: u64,
    /// 1-based page number.
    pub page: u64,
    /// Page size used.
    pub page_size: u64,
}

impl<T> Page<T> {
    /// Whether a page follows this one.
    pub fn has_next(&self) -> bool {
        self.page * self.page_size < self.total
    }

    /// Converts the items, keeping the paging facts.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            page: self.page,
            page_size: self.page_size,
        }
    }
}

/// Runs `query` for page `page` (from 1) of `page_size`, with the total count.
pub async fn fetch<E, C>(
    query: sea_orm::Select<E>,
    db: &C,
    page: u64,
    page_size: u64,
) -> crate::StoreResult<Page<E::Model>>
where
    E: sea_orm::EntityTrait,
    E::Model: Sync,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::PaginatorTrait;
    let paginator = query.paginate(db, page_size);
    let total = paginator.num_items().await?;
    let items = paginator.fetch_page(page.saturating_sub(1)).await?;
    Ok(Page {
        items,
        total,
        page,
        page_size,
    })
}
