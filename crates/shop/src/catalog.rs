//! Products and their sellable stock.

use matsuri_core::ids::parse_uuid;
use matsuri_core::timefmt::rfc3339;
use matsuri_core::{CURRENCY, FieldError};
use matsuri_db::is_unique_violation;

use crate::{Product, ShopError, ShopService};

/// The largest price and stock accepted; far above anything real, far below overflow.
pub const MAX_PRICE: i64 = 100_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;

/// A product to create, checked.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: i64,
    pub stock: i64,
}

impl NewProduct {
    pub fn parse(
        sku: &str,
        name: &str,
        description: Option<&str>,
        price: i64,
        stock: i64,
    ) -> Result<Self, ShopError> {
        let mut errors = Vec::new();
        if sku.is_empty()
            || sku.len() > 64
            || !sku
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errors.push(FieldError::new(
                "sku",
                "must be 1 to 64 of A-Z, a-z, 0-9, '-', '_', '.'",
            ));
        }
        let name = matsuri_core::text::line("name", name, 200)
            .map_err(|e| errors.push(e))
            .unwrap_or_default();
        let description = description.unwrap_or_default();
        if description.chars().count() > 5_000 {
            errors.push(FieldError::new(
                "description",
                "must be at most 5000 characters",
            ));
        }
        if !(0..=MAX_PRICE).contains(&price) {
            errors.push(FieldError::new(
                "price",
                format!("must be between 0 and {MAX_PRICE}"),
            ));
        }
        if let Err(e) = check_stock(stock) {
            errors.push(e);
        }
        if !errors.is_empty() {
            return Err(ShopError::Invalid(errors));
        }
        Ok(Self {
            sku: sku.to_owned(),
            name,
            description: description.trim().to_owned(),
            price,
            stock,
        })
    }
}

fn check_stock(stock: i64) -> Result<(), FieldError> {
    if (0..=MAX_STOCK).contains(&stock) {
        Ok(())
    } else {
        Err(FieldError::new(
            "stock",
            format!("must be between 0 and {MAX_STOCK}"),
        ))
    }
}

type ProductRow = (String, String, String, String, i64, i64, i64);

const PRODUCT_COLUMNS: &str = "id, sku, name, description, price, created_at, updated_at";

/// The product as the catalog answers it, with what the stock can hand out.
fn product(row: ProductRow, available: i64) -> Product {
    let (id, sku, name, description, price, created_at, updated_at) = row;
    Product {
        id,
        sku,
        name,
        description,
        price,
        currency: CURRENCY.to_owned(),
        available,
        created_at: rfc3339(created_at),
        updated_at: rfc3339(updated_at),
    }
}

impl ShopService {
    /// What each product's stock can still hand out.
    pub(crate) async fn allocatable(&self, product_ids: &[String]) -> Result<Vec<i64>, ShopError> {
        if product_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.allocator.available(product_ids).await?)
    }

    async fn with_stock(&self, rows: Vec<ProductRow>) -> Result<Vec<Product>, ShopError> {
        let ids: Vec<String> = rows.iter().map(|row| row.0.clone()).collect();
        let available = self.allocatable(&ids).await?;
        Ok(rows
            .into_iter()
            .zip(available)
            .map(|(row, a)| product(row, a))
            .collect())
    }

    /// Creates the product; its `stock` is recorded as counted today.
    pub async fn create_product(&self, new: NewProduct) -> Result<Product, ShopError> {
        let id = matsuri_core::ids::new_uuid_v7();
        let now = self.clock.now_ms();
        let row: ProductRow = sqlx::query_as(
            "INSERT INTO products (id, sku, name, description, price, available, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             RETURNING id, sku, name, description, price, created_at, updated_at",
        )
        .bind(&id)
        .bind(&new.sku)
        .bind(&new.name)
        .bind(&new.description)
        .bind(new.price)
        .bind(new.stock)
        .bind(now)
        .fetch_one(self.db.writer())
        .await
        .map_err(|e| if is_unique_violation(&e) { ShopError::SkuTaken } else { e.into() })?;
        let available = self.allocator.set_book(&id, &new.sku, new.stock).await?;
        tracing::info!(product_id = %id, sku = %new.sku, stock = new.stock, "product created");
        Ok(product(row, available))
    }

    /// Records `stock` as the product's stock counted today; answers the product with what
    /// can be sold now (less what open orders hold).
    pub async fn set_stock(&self, product_id: &str, stock: i64) -> Result<Product, ShopError> {
        check_stock(stock).map_err(|e| ShopError::Invalid(vec![e]))?;
        let id = parse_uuid(product_id)
            .ok_or_else(|| ShopError::ProductNotFound(product_id.to_owned()))?;
        let row: Option<ProductRow> = sqlx::query_as(
            "UPDATE products SET available = $2, updated_at = $3 WHERE id = $1 \
             RETURNING id, sku, name, description, price, created_at, updated_at",
        )
        .bind(&id)
        .bind(stock)
        .bind(self.clock.now_ms())
        .fetch_optional(self.db.writer())
        .await?;
        let row = row.ok_or_else(|| ShopError::ProductNotFound(product_id.to_owned()))?;
        let available = self.allocator.set_book(&id, &row.1, stock).await?;
        tracing::info!(product_id = %id, stock, "stock set");
        Ok(product(row, available))
    }

    pub async fn product(&self, product_id: &str) -> Result<Product, ShopError> {
        let id = parse_uuid(product_id)
            .ok_or_else(|| ShopError::ProductNotFound(product_id.to_owned()))?;
        let row: Option<ProductRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
        )))
        .bind(&id)
        .fetch_optional(self.db.reader())
        .await?;
        let row = row.ok_or_else(|| ShopError::ProductNotFound(product_id.to_owned()))?;
        let mut products = self.with_stock(vec![row]).await?;
        products
            .pop()
            .ok_or_else(|| ShopError::ProductNotFound(product_id.to_owned()))
    }

    /// The name and price of each id that is a product, `(id, name, price)`; others are
    /// left out.
    pub async fn names_and_prices(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String, i64)>, ShopError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(matsuri_db::rows_per_statement(1)) {
            let sql = format!(
                "SELECT id, name, price FROM products WHERE id IN ({})",
                matsuri_db::parameter_list(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            found.extend(query.fetch_all(self.db.reader()).await?);
        }
        Ok(found)
    }

    /// Products in creation order, `limit + 1` of them from after `cursor`; a catalog
    /// page, so from the read replica when there is one.
    pub async fn products_after(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Product>, ShopError> {
        let rows: Vec<ProductRow> = self
            .db
            .read_lagging(|pool| async move {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {PRODUCT_COLUMNS} FROM products WHERE id > $1 ORDER BY id LIMIT $2"
                )))
                .bind(cursor.unwrap_or(""))
                .bind(i64::from(limit) + 1)
                .fetch_all(&pool)
                .await
            })
            .await?;
        self.with_stock(rows).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_checked() {
        assert!(NewProduct::parse("TEE-01", "Tour tee", None, 3500, 10).is_ok());
        let Err(ShopError::Invalid(errors)) = NewProduct::parse("bad sku!", "", None, -1, -5)
        else {
            panic!("expected validation errors");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["sku", "name", "price", "stock"]);
        assert!(NewProduct::parse("X", "x", None, MAX_PRICE + 1, 0).is_err());
    }
}
