//! The cart (seed 000 §1 step 1): adding reads the product and its stock and records the
//! line. Stock is only promised at checkout; the cart's check tells the shopper early.

use matsuri_core::CURRENCY;
use matsuri_core::ids::{UserId, parse_uuid};

use crate::{Cart, CartLine, ShopError, ShopService};

impl ShopService {
    fn check_quantity(&self, quantity: i64, allow_zero: bool) -> Result<(), ShopError> {
        let min = i64::from(!allow_zero);
        let max = self.settings.max_line_quantity;
        if (min..=max).contains(&quantity) {
            Ok(())
        } else {
            Err(ShopError::invalid(
                "quantity",
                format!("must be between {min} and {max}"),
            ))
        }
    }

    /// The product's availability, or `ProductNotFound`.
    async fn available(&self, product_id: &str) -> Result<(String, i64), ShopError> {
        let id = parse_uuid(product_id)
            .ok_or_else(|| ShopError::ProductNotFound(product_id.to_owned()))?;
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM products WHERE id = $1")
            .bind(&id)
            .fetch_optional(self.db.reader())
            .await?;
        if known.is_none() {
            return Err(ShopError::ProductNotFound(product_id.to_owned()));
        }
        let available = self.allocatable(std::slice::from_ref(&id)).await?;
        Ok((id, available.first().copied().unwrap_or(0)))
    }

    pub async fn cart(&self, user: &UserId) -> Result<Cart, ShopError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT c.product_id, p.name, p.price, c.quantity \
             FROM cart_items c JOIN products p ON p.id = c.product_id \
             WHERE c.user_id = $1 ORDER BY c.added_at, c.product_id",
        )
        .bind(user.as_str())
        .fetch_all(self.db.reader())
        .await?;
        let ids: Vec<String> = rows.iter().map(|row| row.0.clone()).collect();
        let available = self.allocatable(&ids).await?;
        let items: Vec<CartLine> = rows
            .into_iter()
            .zip(available)
            .map(
                |((product_id, name, price, quantity), available)| CartLine {
                    line_total: price.saturating_mul(quantity),
                    product_id,
                    name,
                    price,
                    quantity,
                    available,
                },
            )
            .collect();
        let total = items
            .iter()
            .fold(0_i64, |sum, line| sum.saturating_add(line.line_total));
        Ok(Cart {
            items,
            total,
            currency: CURRENCY.to_owned(),
        })
    }

    /// Adds `quantity` units to the cart (on top of any already there).
    pub async fn add_to_cart(
        &self,
        user: &UserId,
        product_id: &str,
        quantity: i64,
    ) -> Result<Cart, ShopError> {
        self.check_quantity(quantity, false)?;
        let (id, available) = self.available(product_id).await?;
        let in_cart: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(quantity), 0) FROM cart_items WHERE user_id = $1 AND product_id = $2",
        )
        .bind(user.as_str())
        .bind(&id)
        .fetch_one(self.db.reader())
        .await?;
        let wanted = in_cart.saturating_add(quantity);
        self.check_quantity(wanted, false)?;
        if wanted > available {
            return Err(ShopError::OutOfStock {
                product_id: id,
                available,
                requested: wanted,
            });
        }
        let changed = sqlx::query(
            "INSERT INTO cart_items (user_id, product_id, quantity, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = cart_items.quantity + excluded.quantity \
             WHERE cart_items.quantity + excluded.quantity <= $5",
        )
        .bind(user.as_str())
        .bind(&id)
        .bind(quantity)
        .bind(self.clock.now_ms())
        .bind(self.settings.max_line_quantity)
        .execute(self.db.writer())
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(ShopError::invalid(
                "quantity",
                format!(
                    "a cart line holds at most {}",
                    self.settings.max_line_quantity
                ),
            ));
        }
        self.activity.record(
            user.as_str(),
            matsuri_module::ActivityKind::CartAdd,
            Some(&id),
            None,
        );
        self.cart(user).await
    }

    /// Sets a line's quantity; 0 removes it.
    pub async fn set_cart_quantity(
        &self,
        user: &UserId,
        product_id: &str,
        quantity: i64,
    ) -> Result<Cart, ShopError> {
        self.check_quantity(quantity, true)?;
        if quantity == 0 {
            return self.remove_from_cart(user, product_id).await;
        }
        let (id, available) = self.available(product_id).await?;
        if quantity > available {
            return Err(ShopError::OutOfStock {
                product_id: id,
                available,
                requested: quantity,
            });
        }
        let changed = sqlx::query(
            "UPDATE cart_items SET quantity = $3 WHERE user_id = $1 AND product_id = $2",
        )
        .bind(user.as_str())
        .bind(&id)
        .bind(quantity)
        .execute(self.db.writer())
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(ShopError::NotInCart);
        }
        self.cart(user).await
    }

    pub async fn remove_from_cart(
        &self,
        user: &UserId,
        product_id: &str,
    ) -> Result<Cart, ShopError> {
        if let Some(id) = parse_uuid(product_id) {
            sqlx::query("DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2")
                .bind(user.as_str())
                .bind(&id)
                .execute(self.db.writer())
                .await?;
        }
        self.cart(user).await
    }
}
