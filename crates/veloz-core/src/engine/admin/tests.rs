use super::*;
use crate::instrument::Instrument;
use crate::reference::ReferenceEngine;

/// The engine and its naive twin, fed the same commands; every step compares events,
/// hashes and the engine's invariants.
struct Pair {
    e: Engine,
    r: ReferenceEngine,
    seq: Seq,
}

impl Pair {
    fn new() -> Pair {
        let inst = [Instrument::simple(1, "A"), Instrument::simple(2, "B")];
        Pair {
            e: Engine::new(0, &inst),
            r: ReferenceEngine::new(0, &inst),
            seq: 0,
        }
    }

    fn run(&mut self, cmd: Command) -> Vec<Event> {
        self.seq += 1;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        self.e.apply(self.seq, self.seq * 10, &cmd, &mut x);
        self.r.apply(self.seq, self.seq * 10, &cmd, &mut y);
        assert_eq!(x, y, "twin differs on {cmd:?}");
        assert_eq!(
            self.e.state_hash(),
            self.r.state_hash(),
            "hash after {cmd:?}"
        );
        self.e.validate().unwrap();
        x
    }

    fn admin(&mut self, request_id: u64, action: AdminAction) -> Vec<Event> {
        self.run(Command::Admin(AdminCommand { action, request_id }))
    }

    /// A GTC limit order; returns its id if it was accepted.
    fn order(
        &mut self,
        account: AccountId,
        symbol: SymbolId,
        coid: u64,
        side: Side,
        price: Price,
    ) -> Vec<Event> {
        self.run(Command::New(NewOrder::limit(
            account, symbol, coid, side, price, 10,
        )))
    }
}

fn admin_event(request_id: u64, action: AdminAction, outcome: AdminOutcome) -> Event {
    Event::Admin {
        request_id,
        action,
        applied: outcome == AdminOutcome::Applied,
        outcome,
    }
}

fn accepted_id(events: &[Event]) -> OrderId {
    match events[0] {
        Event::Accepted { order_id, .. } => order_id,
        ref other => panic!("expected Accepted, got {other:?}"),
    }
}

fn rejected(events: &[Event]) -> RejectReason {
    match events {
        [Event::Rejected { reason, .. }] => *reason,
        other => panic!("expected one Rejected, got {other:?}"),
    }
}

fn replace(
    account: AccountId,
    symbol: SymbolId,
    order_id: OrderId,
    price: Price,
    qty: Qty,
) -> Command {
    Command::Replace(ReplaceOrder {
        account,
        symbol,
        client_order_id: 900,
        order_id,
        price,
        qty,
    })
}

fn cancel(account: AccountId, symbol: SymbolId, order_id: OrderId) -> Command {
    Command::Cancel(CancelOrder {
        account,
        symbol,
        client_order_id: 901,
        order_id,
    })
}

#[test]
fn halt_refuses_new_orders_and_replaces_but_not_cancels() {
    let mut p = Pair::new();
    let id = accepted_id(&p.order(1, 1, 1, Side::Buy, 100));
    let id2 = accepted_id(&p.order(1, 1, 2, Side::Buy, 99));
    let id3 = accepted_id(&p.order(2, 1, 3, Side::Sell, 105));
    let hash_before = p.e.state_hash();
    let halt = AdminAction::HaltInstrument(1);
    assert_eq!(
        p.admin(7, halt),
        [admin_event(7, halt, AdminOutcome::Applied)]
    );
    assert_eq!(p.e.is_halted(1), Some(true));
    assert_eq!(p.e.is_halted(2), Some(false));
    assert_eq!(p.e.is_halted(5), None);
    assert_ne!(p.e.state_hash(), hash_before, "a halt is state");
    // Halted before anything else is looked at: even an invalid order says halted.
    assert_eq!(
        rejected(&p.order(3, 1, 4, Side::Sell, 100)),
        RejectReason::InstrumentHalted
    );
    assert_eq!(
        rejected(&p.order(3, 1, 5, Side::Sell, 0)),
        RejectReason::InstrumentHalted
    );
    assert_eq!(
        rejected(&p.run(replace(1, 1, id, 101, 10))),
        RejectReason::InstrumentHalted
    );
    assert_eq!(
        rejected(&p.run(replace(1, 1, 999, 101, 10))),
        RejectReason::InstrumentHalted
    );
    // Unknown symbol still comes first.
    assert_eq!(
        rejected(&p.order(3, 8, 6, Side::Sell, 100)),
        RejectReason::UnknownSymbol
    );
    // The other book trades on.
    assert!(matches!(
        p.order(3, 2, 7, Side::Sell, 100)[0],
        Event::Accepted { .. }
    ));
    // Cancel and mass cancel still work.
    assert!(matches!(
        p.run(cancel(1, 1, id))[..],
        [Event::Cancelled {
            reason: CancelReason::Requested,
            ..
        }]
    ));
    let ev = p.run(Command::MassCancel(MassCancel::requested(2, 902, Some(1))));
    assert!(matches!(
        ev.last(),
        Some(Event::MassCancelled { count: 1, .. })
    ));
    assert_eq!(p.e.order_leaves(id3), None);
    // Halting again changes nothing.
    assert_eq!(
        p.admin(8, halt),
        [admin_event(8, halt, AdminOutcome::AlreadyInState)]
    );
    // Resume restores trading; resuming again changes nothing.
    let resume = AdminAction::ResumeInstrument(1);
    assert_eq!(
        p.admin(9, resume),
        [admin_event(9, resume, AdminOutcome::Applied)]
    );
    assert_eq!(
        p.admin(10, resume),
        [admin_event(10, resume, AdminOutcome::AlreadyInState)]
    );
    assert_eq!(p.e.is_halted(1), Some(false));
    assert!(matches!(
        p.run(replace(1, 1, id2, 98, 10))[..],
        [Event::Replaced { .. }]
    ));
    assert!(matches!(
        p.order(3, 1, 8, Side::Sell, 98)[..],
        [Event::Accepted { .. }, Event::Trade { .. }]
    ));
}

#[test]
fn admin_of_an_unknown_symbol_changes_nothing() {
    let mut p = Pair::new();
    p.order(1, 1, 1, Side::Buy, 100);
    let hash = p.e.state_hash();
    for (k, action) in [
        AdminAction::HaltInstrument(9),
        AdminAction::ResumeInstrument(9),
    ]
    .into_iter()
    .enumerate()
    {
        let ev = p.admin(k as u64, action);
        assert_eq!(
            ev,
            [admin_event(k as u64, action, AdminOutcome::UnknownSymbol)]
        );
        assert!(matches!(ev[0], Event::Admin { applied: false, .. }));
    }
    assert_eq!(p.e.state_hash(), hash);
    assert_eq!(p.e.halted_instruments().count(), 0);
}

#[test]
fn kill_switch_cancels_everything_then_only_reduces() {
    let mut p = Pair::new();
    let mut mine = Vec::new();
    for (k, (symbol, side, price)) in [
        (1, Side::Buy, 100),
        (2, Side::Sell, 205),
        (1, Side::Sell, 110),
        (1, Side::Buy, 101),
    ]
    .into_iter()
    .enumerate()
    {
        mine.push(accepted_id(&p.order(4, symbol, k as u64 + 1, side, price)));
    }
    let other = accepted_id(&p.order(5, 1, 1, Side::Buy, 100));
    let disable = AdminAction::DisableAccount(4);
    let ev = p.admin(11, disable);
    // Ascending instrument, bids then asks, best first; then the Admin event.
    let cancelled: Vec<(OrderId, SymbolId, u64)> = ev[..4]
        .iter()
        .map(|e| match *e {
            Event::Cancelled {
                order_id,
                symbol,
                client_order_id,
                reason,
                account,
                qty,
                ..
            } => {
                assert_eq!(reason, CancelReason::AccountDisabled);
                assert_eq!((account, qty), (4, 10));
                (order_id, symbol, client_order_id)
            }
            ref other => panic!("expected Cancelled, got {other:?}"),
        })
        .collect();
    assert_eq!(
        cancelled,
        [
            (mine[3], 1, 4),
            (mine[0], 1, 1),
            (mine[2], 1, 3),
            (mine[1], 2, 2)
        ]
    );
    assert_eq!(ev[4], admin_event(11, disable, AdminOutcome::Applied));
    assert_eq!(ev.len(), 5);
    assert!(p.e.is_disabled(4) && !p.e.is_disabled(5));
    assert_eq!(p.e.resting_orders(), 1);
    assert_eq!(p.e.order_leaves(other), Some(10));
    // New orders and replaces refused; halt is checked first.
    assert_eq!(
        rejected(&p.order(4, 1, 9, Side::Buy, 100)),
        RejectReason::AccountDisabled
    );
    assert_eq!(
        rejected(&p.run(replace(4, 1, mine[0], 100, 5))),
        RejectReason::AccountDisabled
    );
    p.admin(12, AdminAction::HaltInstrument(2));
    assert_eq!(
        rejected(&p.order(4, 2, 9, Side::Buy, 100)),
        RejectReason::InstrumentHalted
    );
    // Cancels still answer (nothing rests: UnknownOrder), mass cancels still work.
    assert_eq!(
        rejected(&p.run(cancel(4, 1, mine[0]))),
        RejectReason::UnknownOrder
    );
    let ev = p.run(Command::MassCancel(MassCancel::requested(4, 903, None)));
    assert!(matches!(ev[..], [Event::MassCancelled { count: 0, .. }]));
    // Others are not affected.
    assert!(matches!(
        p.order(5, 1, 2, Side::Buy, 99)[0],
        Event::Accepted { .. }
    ));
    // Disabling again changes nothing; enabling restores, once.
    assert_eq!(
        p.admin(13, disable),
        [admin_event(13, disable, AdminOutcome::AlreadyInState)]
    );
    let enable = AdminAction::EnableAccount(4);
    assert_eq!(
        p.admin(14, enable),
        [admin_event(14, enable, AdminOutcome::Applied)]
    );
    assert_eq!(
        p.admin(15, enable),
        [admin_event(15, enable, AdminOutcome::AlreadyInState)]
    );
    assert!(!p.e.is_disabled(4));
    assert!(matches!(
        p.order(4, 1, 10, Side::Sell, 120)[..],
        [Event::Accepted { .. }]
    ));
}

/// The switch leaves a disabled account nothing resting in this engine, so its cancels find
/// nothing; they are answered as usual (`UnknownOrder`), never refused for the switch.
#[test]
fn a_disabled_accounts_cancels_are_answered_not_refused() {
    let mut p = Pair::new();
    let id = accepted_id(&p.order(6, 1, 1, Side::Buy, 100));
    let ev = p.admin(3, AdminAction::DisableAccount(6));
    assert!(
        matches!(ev[0], Event::Cancelled { order_id, reason: CancelReason::AccountDisabled, .. } if order_id == id)
    );
    assert_eq!(
        rejected(&p.run(cancel(6, 1, id))),
        RejectReason::UnknownOrder
    );
    let by_coid = Command::Cancel(CancelOrder {
        account: 6,
        symbol: 1,
        client_order_id: 904,
        order_id: OrderRef::ClientId(1).raw(),
    });
    assert_eq!(rejected(&p.run(by_coid)), RejectReason::UnknownOrder);
}

#[test]
fn admin_events_take_no_stream_number_but_kill_switch_cancels_do() {
    let mut p = Pair::new();
    p.order(4, 1, 1, Side::Buy, 100);
    p.order(4, 2, 2, Side::Buy, 100);
    assert_eq!(p.e.stream_last(4), 2);
    p.admin(1, AdminAction::HaltInstrument(1));
    assert!(p.e.stream_assigned().is_empty());
    assert_eq!(p.e.stream_last(0), 0, "no stream for the operator");
    let ev = p.admin(2, AdminAction::DisableAccount(4));
    assert_eq!(ev.len(), 3);
    let assigned = p.e.stream_assigned();
    assert_eq!(assigned.len(), 2);
    assert!(assigned
        .iter()
        .all(|a| a.account == 4 && a.part == Part::All));
    assert_eq!(
        assigned
            .iter()
            .map(|a| (a.event_index, a.stream_seq))
            .collect::<Vec<_>>(),
        [(0, 3), (1, 4)]
    );
    assert_eq!(p.e.stream_accounts(), 1);
}

#[test]
fn hash_without_admin_state_is_unchanged() {
    let mut p = Pair::new();
    p.order(1, 1, 1, Side::Buy, 100);
    let plain = p.e.state_hash();
    p.admin(1, AdminAction::HaltInstrument(2));
    p.admin(2, AdminAction::DisableAccount(77));
    let both = p.e.state_hash();
    assert_ne!(both, plain);
    p.admin(3, AdminAction::ResumeInstrument(2));
    let disabled_only = p.e.state_hash();
    assert!(disabled_only != plain && disabled_only != both);
    p.admin(4, AdminAction::EnableAccount(77));
    assert_eq!(
        p.e.state_hash(),
        plain,
        "undone controls hash as never used"
    );
    // And the same as an engine that never saw an admin command at all.
    let mut q = Pair::new();
    q.order(1, 1, 1, Side::Buy, 100);
    // (seq and ts of the order are equal in both.)
    assert_eq!(q.e.state_hash(), plain);
}
