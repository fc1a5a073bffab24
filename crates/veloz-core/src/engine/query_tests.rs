use super::*;
use crate::instrument::Instrument;

fn engine() -> Engine {
    let inst = |id, symbol: &str| Instrument {
        id,
        symbol: symbol.to_string(),
        price_scale: 2,
        tick_size: 1,
        lot_size: 1,
        min_qty: 1,
        max_qty: 1_000,
        price_band_bps: 0,
        reference_price: 100,
        market_protection_ticks: 10,
    };
    Engine::new(0, &[inst(1, "A"), inst(2, "B")])
}

fn new(
    e: &mut Engine,
    seq: Seq,
    account: AccountId,
    symbol: SymbolId,
    coid: u64,
    side: Side,
    price: Price,
) -> OrderId {
    let mut out = Vec::new();
    e.apply(
        seq,
        seq * 10,
        &Command::New(NewOrder::limit(account, symbol, coid, side, price, 5)),
        &mut out,
    );
    match out[0] {
        Event::Accepted { order_id, .. } => order_id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn status_by_id_or_client_id_only_for_the_owner() {
    let mut e = engine();
    let a = new(&mut e, 1, 7, 1, 70, Side::Buy, 99);
    let b = new(&mut e, 2, 8, 1, 70, Side::Buy, 98);
    let by_id = e.order_status(7, 1, OrderRef::Id(a)).unwrap();
    assert_eq!(
        (
            by_id.order_id,
            by_id.client_order_id,
            by_id.price,
            by_id.leaves_qty,
            by_id.entered_ns
        ),
        (a, 70, 99, 5, 10)
    );
    assert_eq!(e.order_status(7, 1, OrderRef::ClientId(70)), Ok(by_id));
    // The same client id of another account is that account's order, never ours.
    assert_eq!(
        e.order_status(8, 1, OrderRef::ClientId(70))
            .unwrap()
            .order_id,
        b
    );
    assert_eq!(
        e.order_status(7, 1, OrderRef::Id(b)),
        Err(RejectReason::NotOrderOwner)
    );
    assert_eq!(
        e.order_status(7, 2, OrderRef::Id(a)),
        Err(RejectReason::UnknownOrder)
    );
    assert_eq!(
        e.order_status(7, 9, OrderRef::Id(a)),
        Err(RejectReason::UnknownSymbol)
    );
    assert_eq!(
        e.order_status(7, 1, OrderRef::ClientId(71)),
        Err(RejectReason::UnknownOrder)
    );
}

#[test]
fn cancel_and_replace_by_client_id_resolve_within_the_account() {
    let mut e = engine();
    let a = new(&mut e, 1, 7, 1, 70, Side::Buy, 99);
    let _ = new(&mut e, 2, 8, 1, 71, Side::Buy, 99);
    let mut out = Vec::new();
    // Account 7 cannot reach account 8's order by 8's client id.
    e.apply(
        3,
        30,
        &Command::Cancel(CancelOrder {
            account: 7,
            symbol: 1,
            client_order_id: 5,
            order_id: OrderRef::ClientId(71).raw(),
        }),
        &mut out,
    );
    assert!(
        matches!(
            out[0],
            Event::Rejected {
                reason: RejectReason::UnknownOrder,
                order_id: 0,
                ..
            }
        ),
        "{out:?}"
    );
    out.clear();
    e.apply(
        4,
        40,
        &Command::Replace(ReplaceOrder {
            account: 7,
            symbol: 1,
            client_order_id: 6,
            order_id: OrderRef::ClientId(70).raw(),
            price: 97,
            qty: 3,
        }),
        &mut out,
    );
    assert!(
        matches!(out[0], Event::Replaced { order_id, client_order_id: 6, price: 97, qty: 3, .. } if order_id == a),
        "{out:?}"
    );
    // The order keeps the client id it was entered with.
    out.clear();
    e.apply(
        5,
        50,
        &Command::Cancel(CancelOrder {
            account: 7,
            symbol: 1,
            client_order_id: 7,
            order_id: OrderRef::ClientId(70).raw(),
        }),
        &mut out,
    );
    assert!(
        matches!(out[0], Event::Cancelled { order_id, client_order_id: 7, qty: 3, .. } if order_id == a),
        "{out:?}"
    );
    assert_eq!(
        e.order_status(7, 1, OrderRef::ClientId(70)),
        Err(RejectReason::UnknownOrder)
    );
}

#[test]
fn open_orders_page_in_id_order_per_account() {
    let mut e = engine();
    let mut mine = Vec::new();
    for i in 0..7u64 {
        let symbol = 1 + (i % 2) as u32;
        let price = 90 + i as i64;
        mine.push(new(&mut e, 1 + i, 7, symbol, 100 + i, Side::Buy, price));
        new(
            &mut e,
            100 + i,
            8,
            symbol,
            100 + i,
            Side::Sell,
            200 + i as i64,
        );
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = e.open_orders(7, None, after, 3).unwrap();
        assert!(page.orders.len() <= 3);
        assert!(page
            .orders
            .iter()
            .all(|o| o.account == 7 && o.order_id > after));
        seen.extend(page.orders.iter().map(|o| o.order_id));
        if !page.more {
            break;
        }
        after = page.orders.last().unwrap().order_id;
    }
    assert_eq!(seen, mine, "every open order once, ascending");
    let only_b = e.open_orders(7, Some(2), 0, 100).unwrap();
    assert_eq!(only_b.orders.len(), 3);
    assert!(!only_b.more);
    assert!(only_b.orders.iter().all(|o| o.symbol == 2));
    assert_eq!(
        e.open_orders(7, Some(9), 0, 1),
        Err(RejectReason::UnknownSymbol)
    );
    assert!(e.open_orders(9, None, 0, 10).unwrap().orders.is_empty());
}
