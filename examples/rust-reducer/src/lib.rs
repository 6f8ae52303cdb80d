//! A limit order book as a redux-cluster-rs reducer, written in Rust and loaded into the
//! prebuilt addon with `loadReducer('.../liborder_book_reducer.so', { market: 'BTC-EUR' })`.
//!
//! Actions (JSON, as any Redux action):
//! - `{ type: 'book/place', payload: { id, side: 'buy' | 'sell', price, qty } }`: matches
//!   against the other side at the best prices first (then oldest first); what is left
//!   rests in the book.
//! - `{ type: 'book/cancel', payload: { id } }`: removes a resting order.
//!
//! State (what `getState()` returns): `{ market, bids, asks, trades, volume }` with bids
//! best (highest) first, asks best (lowest) first, the last 50 trades newest last, and
//! the total quantity traded.

use redux_cluster_reducer::{export_reducer, Reducer};
use serde::{Deserialize, Serialize};

const TRADES_KEPT: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub price: u64,
    pub qty: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub buy: String,
    pub sell: String,
    pub price: u64,
    pub qty: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    pub market: String,
    /// Highest price first; equal prices oldest first.
    pub bids: Vec<Order>,
    /// Lowest price first; equal prices oldest first.
    pub asks: Vec<Order>,
    pub trades: Vec<Trade>,
    pub volume: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Side {
    Buy,
    Sell,
}

#[derive(Deserialize)]
struct Place {
    id: String,
    side: Side,
    price: u64,
    qty: u64,
}

#[derive(Deserialize)]
struct Cancel {
    id: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", content = "payload")]
enum Action {
    #[serde(rename = "book/place")]
    Place(Place),
    #[serde(rename = "book/cancel")]
    Cancel(Cancel),
}

#[derive(Deserialize)]
struct Config {
    market: String,
}

impl Book {
    fn place(&mut self, p: Place) -> Result<(), String> {
        if p.qty == 0 {
            return Err(format!("order {}: qty must be positive", p.id));
        }
        if self.bids.iter().chain(&self.asks).any(|o| o.id == p.id) {
            return Err(format!("order {} is already in the book", p.id));
        }
        let mut left = p.qty;
        let (against, rest) = match p.side {
            Side::Buy => (&mut self.asks, &mut self.bids),
            Side::Sell => (&mut self.bids, &mut self.asks),
        };
        let crosses = |o: &Order| match p.side {
            Side::Buy => o.price <= p.price,
            Side::Sell => o.price >= p.price,
        };
        while left > 0 && against.first().is_some_and(crosses) {
            let best = &mut against[0];
            let qty = left.min(best.qty);
            // A market that traded more than u64 units has a bug upstream; stop before
            // this trade changes anything (the engine turns the panic into ERR_REDUCER).
            let volume = self.volume.checked_add(qty).expect("volume overflow");
            let (buy, sell) = match p.side {
                Side::Buy => (p.id.clone(), best.id.clone()),
                Side::Sell => (best.id.clone(), p.id.clone()),
            };
            self.trades.push(Trade {
                buy,
                sell,
                price: best.price,
                qty,
            });
            self.volume = volume;
            best.qty -= qty;
            left -= qty;
            if best.qty == 0 {
                against.remove(0);
            }
        }
        if self.trades.len() > TRADES_KEPT {
            self.trades.drain(..self.trades.len() - TRADES_KEPT);
        }
        if left > 0 {
            // After the last order at a better or equal price: price, then time priority.
            let at = match p.side {
                Side::Buy => rest.partition_point(|o| o.price >= p.price),
                Side::Sell => rest.partition_point(|o| o.price <= p.price),
            };
            rest.insert(
                at,
                Order {
                    id: p.id,
                    price: p.price,
                    qty: left,
                },
            );
        }
        Ok(())
    }

    fn cancel(&mut self, c: Cancel) -> Result<(), String> {
        for side in [&mut self.bids, &mut self.asks] {
            if let Some(i) = side.iter().position(|o| o.id == c.id) {
                side.remove(i);
                return Ok(());
            }
        }
        Err(format!("order {} is not in the book", c.id))
    }
}

impl Reducer for Book {
    const NAME: &'static str = "order-book";

    fn new(config: &[u8]) -> Result<Self, String> {
        let market = match serde_json::from_slice::<Option<Config>>(config) {
            Ok(Some(c)) => c.market,
            Ok(None) => "default".to_string(),
            Err(e) => return Err(format!("config must be {{ market: string }}: {e}")),
        };
        Ok(Book {
            market,
            ..Book::default()
        })
    }

    fn apply(&mut self, action: &[u8]) -> Result<(), String> {
        // Actions of other types are not the book's: left alone, as a Redux reducer does.
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            ty: &'a str,
        }
        let head: Head = serde_json::from_slice(action).map_err(|e| e.to_string())?;
        if !head.ty.starts_with("book/") {
            return Ok(());
        }
        match serde_json::from_slice::<Action>(action).map_err(|e| e.to_string())? {
            Action::Place(p) => self.place(p),
            Action::Cancel(c) => self.cancel(c),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a book serializes")
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        *self = serde_json::from_slice(snapshot).map_err(|e| e.to_string())?;
        Ok(())
    }
}

export_reducer!(Book);

#[cfg(test)]
mod tests {
    use super::*;

    fn act(book: &mut Book, json: &str) -> Result<(), String> {
        book.apply(json.as_bytes())
    }

    #[test]
    fn matches_at_the_best_price_then_rests() {
        let mut b = Book::new(br#"{"market":"X"}"#).unwrap();
        act(
            &mut b,
            r#"{"type":"book/place","payload":{"id":"s1","side":"sell","price":101,"qty":5}}"#,
        )
        .unwrap();
        act(
            &mut b,
            r#"{"type":"book/place","payload":{"id":"s2","side":"sell","price":100,"qty":5}}"#,
        )
        .unwrap();
        act(
            &mut b,
            r#"{"type":"book/place","payload":{"id":"b1","side":"buy","price":101,"qty":7}}"#,
        )
        .unwrap();
        assert_eq!(b.trades.len(), 2);
        assert_eq!(
            (
                b.trades[0].sell.as_str(),
                b.trades[0].price,
                b.trades[0].qty
            ),
            ("s2", 100, 5)
        );
        assert_eq!((b.trades[1].sell.as_str(), b.trades[1].qty), ("s1", 2));
        assert_eq!(
            b.asks,
            vec![Order {
                id: "s1".into(),
                price: 101,
                qty: 3
            }]
        );
        assert!(b.bids.is_empty());
        assert_eq!(b.volume, 7);
        act(
            &mut b,
            r#"{"type":"book/place","payload":{"id":"b2","side":"buy","price":99,"qty":1}}"#,
        )
        .unwrap();
        act(&mut b, r#"{"type":"book/cancel","payload":{"id":"s1"}}"#).unwrap();
        assert!(act(&mut b, r#"{"type":"book/cancel","payload":{"id":"s1"}}"#).is_err());
        assert!(act(
            &mut b,
            r#"{"type":"book/place","payload":{"id":"b2","side":"buy","price":9,"qty":1}}"#
        )
        .is_err());
        act(&mut b, r#"{"type":"other"}"#).unwrap();
        let copy = b.snapshot();
        let mut c = Book::new(b"null").unwrap();
        c.restore(&copy).unwrap();
        assert_eq!(c, b);
    }
}
