//! Limits on what one client may cost the engine: an order rate per session, a back-off
//! after failed logons (per account and per source address), and a bound on connections
//! that have not logged on yet (per source address).
//!
//! - [`OrderBucket`]: a token bucket per session, kept as GCRA (a "theoretical arrival
//!   time"): an order at `now` passes when the bucket's time is at most `now + tolerance`,
//!   which moves the time on by one interval. A compare, a max and an add per order; no
//!   division, no allocation, no lock. Owned by its session, touched only on its shard.
//! - [`Throttles`]: engine-wide, in [`crate::shared::Shared`]: the per-account order rates
//!   (read at logon) and the logon limiter, one `Mutex` over two bounded tables (source
//!   addresses, accounts). The lock is taken only at accept, at logon and when a session
//!   that never logged on ends; never per order.
//!
//! Back-off: a failure is a logon whose token was checked and refused (or whose account is
//! unknown). After `threshold` failures with no quiet `window` between them, the key (an
//! address or an account) is backed off for `initial` ns; each further failure doubles it,
//! up to `max`. Logons refused during a back-off are not failures (their token is not even
//! hashed) and do not prolong it. A successful logon clears the account and the address.
//!
//! Bounds: each table holds at most [`TABLE_CAP`] keys; a new key beyond that evicts the
//! key touched longest ago (an O(n) scan, only when full, only on the logon path). An
//! evicted address forgets its pending connections: the limit can only get looser.
//!
//! Pure bookkeeping: every method takes `now` (the shards' [`Clock`](crate::io::Clock)
//! nanoseconds, comparable across cores); no IO.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;

use rustc_hash::FxHashMap;
use veloz_config::Config;
use veloz_core::AccountId;

/// Keys held per table (addresses, accounts).
pub const TABLE_CAP: usize = 4_096;

const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MS: u64 = 1_000_000;

/// One session's order rate limit (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderBucket {
    /// Nanoseconds per order; 0: unlimited.
    interval_ns: u64,
    /// How far ahead of `now` the bucket's time may run: the burst beyond the first order.
    tolerance_ns: u64,
    /// When the bucket is next full of one more order ("theoretical arrival time").
    tat: u64,
}

impl OrderBucket {
    /// `rate` orders per second on average, `burst` at once (0 rate: unlimited).
    pub fn new(rate: u64, burst: u64) -> OrderBucket {
        if rate == 0 {
            return OrderBucket::default();
        }
        let interval_ns = (NS_PER_S / rate).max(1);
        OrderBucket {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(burst.max(1) - 1),
            tat: 0,
        }
    }

    /// Take one order at `now`: false when it is over the rate (nothing changes then).
    #[inline]
    pub fn take(&mut self, now: u64) -> bool {
        if self.interval_ns == 0 {
            return true;
        }
        if self.tat > now.saturating_add(self.tolerance_ns) {
            return false;
        }
        self.tat = self.tat.max(now) + self.interval_ns;
        true
    }
}

/// What to do with a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Take it (it now counts as pending until it logs on or ends).
    Open,
    /// Close it: its address is backed off after failed logons.
    BackedOff,
    /// Close it: its address has too many connections not logged on yet.
    TooManyPending,
}

/// The logon limiter's settings, in ns (from `[gateway]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogonLimits {
    /// Failures of one account before its back-off (0: off).
    pub account_failures: u32,
    /// Failures from one address before its back-off (0: off).
    pub address_failures: u32,
    pub initial_ns: u64,
    pub max_ns: u64,
    pub window_ns: u64,
    /// Connections not logged on per address (0: unlimited).
    pub max_pending: u32,
}

impl LogonLimits {
    pub fn from_config(config: &Config) -> LogonLimits {
        let g = &config.gateway;
        LogonLimits {
            account_failures: g.logon_failures_before_backoff,
            address_failures: g.address_logon_failures_before_backoff,
            initial_ns: g.logon_backoff_initial_ms * NS_PER_MS,
            max_ns: g.logon_backoff_max_ms * NS_PER_MS,
            window_ns: g.logon_failure_window_ms * NS_PER_MS,
            max_pending: g.max_pending_logons_per_ip,
        }
    }
}

/// The failures and back-off of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entry {
    failures: u32,
    last_failure: u64,
    /// The current back-off's length (0: none yet).
    backoff_ns: u64,
    /// Refused until then.
    until: u64,
    /// Addresses only: connections not logged on yet.
    pending: u32,
    /// Last touched, for eviction.
    touched: u64,
}

impl Entry {
    fn backed_off(&self, now: u64) -> bool {
        now < self.until
    }

    /// One checked failure at `now`; true when it (re)arms the back-off.
    fn fail(&mut self, now: u64, threshold: u32, l: &LogonLimits) -> bool {
        if self.failures > 0 && now.saturating_sub(self.last_failure) > l.window_ns {
            self.failures = 0;
            self.backoff_ns = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if threshold == 0 || self.failures < threshold {
            return false;
        }
        self.backoff_ns = match self.backoff_ns {
            0 => l.initial_ns,
            d => d.saturating_mul(2).min(l.max_ns),
        };
        self.until = now + self.backoff_ns;
        true
    }

    fn clear(&mut self) {
        *self = Entry {
            pending: self.pending,
            touched: self.touched,
            ..Entry::default()
        };
    }

    /// Nothing worth keeping.
    fn idle(&self) -> bool {
        self.failures == 0 && self.pending == 0
    }
}

/// A bounded table of entries (see the module docs).
#[derive(Debug)]
struct Table<K> {
    entries: BTreeMap<K, Entry>,
}

impl<K: Ord + Copy> Table<K> {
    fn get(&self, k: &K) -> Option<&Entry> {
        self.entries.get(k)
    }

    /// The entry of `k`, made (evicting the stalest when full) if absent.
    fn entry(&mut self, k: K, now: u64) -> &mut Entry {
        if !self.entries.contains_key(&k) && self.entries.len() >= TABLE_CAP {
            let stalest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.touched)
                .map(|(k, _)| *k);
            if let Some(s) = stalest {
                self.entries.remove(&s);
            }
        }
        let e = self.entries.entry(k).or_default();
        e.touched = now;
        e
    }

    fn drop_if_idle(&mut self, k: &K) {
        if self.entries.get(k).is_some_and(Entry::idle) {
            self.entries.remove(k);
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// What the logon limiter holds.
#[derive(Debug)]
struct Tables {
    addresses: Table<IpAddr>,
    accounts: Table<AccountId>,
}

/// Engine-wide throttles (see the module docs).
#[derive(Debug)]
pub struct Throttles {
    limits: LogonLimits,
    /// The default order rate and burst.
    orders: (u64, u64),
    /// Accounts with their own rate or burst.
    account_orders: FxHashMap<AccountId, (u64, u64)>,
    tables: Mutex<Tables>,
}

impl Throttles {
    pub fn new(config: &Config) -> Throttles {
        let g = &config.gateway;
        let orders = (g.order_rate_per_s, g.order_burst);
        let account_orders = config
            .accounts
            .iter()
            .map(|a| {
                let rate = a.order_rate_per_s.unwrap_or(orders.0);
                (a.id, (rate, a.order_burst.unwrap_or(orders.1)))
            })
            .collect();
        Throttles::with(LogonLimits::from_config(config), orders, account_orders)
    }

    fn with(
        limits: LogonLimits,
        orders: (u64, u64),
        account_orders: FxHashMap<AccountId, (u64, u64)>,
    ) -> Throttles {
        Throttles {
            limits,
            orders,
            account_orders,
            tables: Mutex::new(Tables {
                addresses: Table {
                    entries: BTreeMap::new(),
                },
                accounts: Table {
                    entries: BTreeMap::new(),
                },
            }),
        }
    }

    /// A fresh order bucket for a session of `account`.
    pub fn order_bucket(&self, account: AccountId) -> OrderBucket {
        let (rate, burst) = self
            .account_orders
            .get(&account)
            .copied()
            .unwrap_or(self.orders);
        OrderBucket::new(rate, burst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Plain counters: a panic elsewhere leaves nothing half-done worth refusing over.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection from `ip` at `now`: take it (counted as pending) or close it.
    pub fn admit(&self, ip: IpAddr, now: u64) -> Admission {
        let l = self.limits;
        let mut t = self.lock();
        if t.addresses.get(&ip).is_some_and(|e| e.backed_off(now)) {
            return Admission::BackedOff;
        }
        let e = t.addresses.entry(ip, now);
        if l.max_pending > 0 && e.pending >= l.max_pending {
            return Admission::TooManyPending;
        }
        e.pending += 1;
        Admission::Open
    }

    /// A connection from `ip` that never logged on ended.
    pub fn closed_before_logon(&self, ip: IpAddr) {
        let mut t = self.lock();
        if let Some(e) = t.addresses.entries.get_mut(&ip) {
            e.pending = e.pending.saturating_sub(1);
        }
        t.addresses.drop_if_idle(&ip);
    }

    /// Whether a logon of `account` from `ip` is checked at all: false while either is
    /// backed off (refuse it without hashing the token).
    pub fn logon_allowed(&self, ip: IpAddr, account: AccountId, now: u64) -> bool {
        let t = self.lock();
        let off = |e: Option<&Entry>| e.is_some_and(|e| e.backed_off(now));
        !off(t.addresses.get(&ip)) && !off(t.accounts.get(&account))
    }

    /// A checked logon of `account` from `ip` failed at `now`. Returns (address, account):
    /// whether each is now backed off anew.
    pub fn failed(&self, ip: IpAddr, account: AccountId, now: u64) -> (bool, bool) {
        let l = self.limits;
        let mut t = self.lock();
        let by_address = t.addresses.entry(ip, now).fail(now, l.address_failures, &l);
        let by_account = t
            .accounts
            .entry(account, now)
            .fail(now, l.account_failures, &l);
        (by_address, by_account)
    }

    /// A logon of `account` from `ip` succeeded: both are cleared, and the connection no
    /// longer counts as pending.
    pub fn succeeded(&self, ip: IpAddr, account: AccountId) {
        let mut t = self.lock();
        if let Some(e) = t.addresses.entries.get_mut(&ip) {
            e.clear();
            e.pending = e.pending.saturating_sub(1);
        }
        t.addresses.drop_if_idle(&ip);
        t.accounts.entries.remove(&account);
    }

    /// Keys held: (addresses, accounts).
    pub fn held(&self) -> (usize, usize) {
        let t = self.lock();
        (t.addresses.len(), t.accounts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = NS_PER_MS;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn limits() -> LogonLimits {
        LogonLimits {
            account_failures: 3,
            address_failures: 5,
            initial_ns: 100 * MS,
            max_ns: 400 * MS,
            window_ns: 1_000 * MS,
            max_pending: 2,
        }
    }

    fn throttles() -> Throttles {
        Throttles::with(limits(), (0, 1), FxHashMap::default())
    }

    #[test]
    fn a_bucket_passes_its_burst_then_its_rate() {
        // 100/s (one per 10 ms), burst 10.
        let mut b = OrderBucket::new(100, 10);
        let t0 = 5_000 * MS;
        let passed = (0..200).filter(|_| b.take(t0)).count();
        assert_eq!(passed, 10);
        // 50 ms later: 5 more (one per 10 ms), then none.
        let passed = (0..200).filter(|_| b.take(t0 + 50 * MS)).count();
        assert_eq!(passed, 5);
        // One interval later exactly one; a refusal leaves the bucket as it was.
        assert!(!b.take(t0 + 59 * MS));
        assert!(b.take(t0 + 60 * MS));
        assert!(!b.take(t0 + 60 * MS));
        // A long pause refills to the burst, never beyond.
        let passed = (0..200).filter(|_| b.take(t0 + 10_000 * MS)).count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn a_steady_client_at_the_rate_is_never_refused() {
        let mut b = OrderBucket::new(1_000, 1);
        assert!((0..10_000u64).all(|i| b.take(i * MS)));
        assert!(!b.take(9_999 * MS + MS / 2));
    }

    #[test]
    fn rate_zero_is_unlimited_and_accounts_override_the_default() {
        let mut b = OrderBucket::new(0, 0);
        assert!((0..1_000_000).all(|_| b.take(0)));
        let mut per_account = FxHashMap::default();
        per_account.insert(7, (2, 1));
        let t = Throttles::with(limits(), (0, 1_000), per_account);
        let mut b = t.order_bucket(7);
        assert!(b.take(0) && !b.take(0) && b.take(NS_PER_S / 2));
        assert_eq!(t.order_bucket(8), OrderBucket::default());
    }

    #[test]
    fn failures_back_off_doubling_to_the_cap_and_success_resets() {
        let t = throttles();
        let (a, acct) = (ip(1), 9);
        let mut now = 0;
        for _ in 0..2 {
            assert_eq!(t.failed(a, acct, now), (false, false));
            now += MS;
        }
        assert!(t.logon_allowed(a, acct, now));
        // Third failure: the account backs off for 100 ms; the address not yet.
        assert_eq!(t.failed(a, acct, now), (false, true));
        assert!(!t.logon_allowed(a, acct, now + 99 * MS));
        assert!(
            t.logon_allowed(a, 10, now + 99 * MS),
            "other accounts go on"
        );
        assert!(t.logon_allowed(a, acct, now + 100 * MS));
        // Further failures double it: 200, 400, then 400 (the cap).
        for d in [200, 400, 400] {
            now += 100 * MS;
            t.failed(a, acct, now);
            assert!(!t.logon_allowed(a, acct, now + (d - 1) * MS), "{d}");
            assert!(t.logon_allowed(a, acct, now + d * MS), "{d}");
        }
        // That made six from the address (five armed its back-off, six doubled it): it is
        // backed off too, and refused at accept.
        assert!(!t.logon_allowed(a, 10, now + MS));
        assert_eq!(t.admit(a, now + MS), Admission::BackedOff);
        assert_eq!(t.admit(ip(2), now + MS), Admission::Open);
        // A success clears the account and the address.
        t.succeeded(a, acct);
        assert!(t.logon_allowed(a, acct, now + MS));
        assert_eq!(t.admit(a, now + MS), Admission::Open);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_window() {
        let t = throttles();
        t.failed(ip(1), 1, 0);
        t.failed(ip(1), 1, MS);
        // More than the window later: counting starts again.
        let later = 1_100 * MS;
        assert_eq!(t.failed(ip(1), 1, later), (false, false));
        assert_eq!(t.failed(ip(1), 1, later + 1), (false, false));
        assert_eq!(t.failed(ip(1), 1, later + 2), (false, true));
    }

    #[test]
    fn pending_connections_are_bounded_per_address() {
        let t = throttles();
        assert_eq!(t.admit(ip(1), 0), Admission::Open);
        assert_eq!(t.admit(ip(1), 0), Admission::Open);
        assert_eq!(t.admit(ip(1), 0), Admission::TooManyPending);
        assert_eq!(t.admit(ip(2), 0), Admission::Open);
        t.closed_before_logon(ip(1));
        assert_eq!(t.admit(ip(1), 0), Admission::Open);
        t.succeeded(ip(1), 1);
        t.closed_before_logon(ip(2));
        assert_eq!(t.held(), (1, 0), "only ip 1's remaining pending connection");
    }

    #[test]
    fn tables_are_bounded_and_evict_the_stalest() {
        let t = throttles();
        for n in 0..(TABLE_CAP as u32 + 100) {
            t.failed(ip(n), n, n as u64);
        }
        assert_eq!(t.held(), (TABLE_CAP, TABLE_CAP));
        // The newest keys are kept, the oldest went.
        let tables = t.lock();
        assert!(tables.addresses.get(&ip(TABLE_CAP as u32 + 99)).is_some());
        assert!(tables.addresses.get(&ip(0)).is_none());
        assert!(tables.accounts.get(&99).is_none());
    }
}
