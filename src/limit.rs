//! The per-address rate limits of SPEC 11, in memory, per replica. Each
//! client address has two token buckets: the login endpoints draw on one
//! (`logins_burst`, refilling at `logins_per_second`), refused credentials
//! on the other (`failures_per_minute`, refilling at that rate).
//!
//! The addresses live in a bounded `moka` cache: an address is forgotten as
//! soon as both its buckets are full again (it is then no different from an
//! address never seen), and at most [`MAX_ADDRESSES`] are kept, so a flood
//! from many addresses cannot grow it.
//!
//! A bucket is kept as the one instant at which it will be full again
//! (the "theoretical arrival time" of GCRA): its debt is the time until
//! then, each token is `interval` of debt, and a draw is allowed while the
//! debt leaves room for one more token. That makes both questions SPEC 11
//! asks cheap and exact: whether a bucket is empty without drawing on it,
//! and how long until it is not (`Retry-After`). The rates are read from
//! the config snapshot of each request, so a reload changes them at once.
//!
//! Nothing here runs for a request with a known-good credential: only the
//! login endpoints, and credentials that are not known good, reach it.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::config::RateLimits;
use crate::metrics::LimitKind;

/// The most client addresses remembered at once. An address whose buckets
/// are both full takes no entry; past this bound the cache evicts the
/// addresses it has seen least.
pub const MAX_ADDRESSES: u64 = 100_000;

/// A request refused by a bucket: which one, and the whole seconds until a
/// request would be allowed again (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub kind: LimitKind,
    pub retry_after: u64,
}

/// Microseconds since the limiter's epoch.
type Micros = u64;

/// One bucket's state: the instant it will be full again (0: full).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    full_at: Micros,
}

/// A bucket's parameters: how much debt one token is, and how many tokens
/// it holds.
#[derive(Debug, Clone, Copy)]
struct Rule {
    interval: Micros,
    burst: u64,
}

impl Rule {
    fn logins(limits: &RateLimits) -> Self {
        Rule {
            interval: 1_000_000 / u64::from(limits.logins_per_second.max(1)),
            burst: u64::from(limits.logins_burst.max(1)),
        }
    }

    fn failures(limits: &RateLimits) -> Self {
        Rule {
            interval: 60_000_000 / u64::from(limits.failures_per_minute.max(1)),
            burst: u64::from(limits.failures_per_minute.max(1)),
        }
    }
}

impl Bucket {
    /// How long until one token is there (`None`: there is one now).
    fn wait(self, now: Micros, rule: Rule) -> Option<Micros> {
        let debt = self.full_at.saturating_sub(now);
        let room = rule.interval.saturating_mul(rule.burst - 1);
        (debt > room).then(|| debt - room)
    }

    fn draw(&mut self, now: Micros, rule: Rule) {
        self.full_at = self.full_at.max(now).saturating_add(rule.interval);
    }
}

/// The two buckets of one address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Buckets {
    logins: Bucket,
    failures: Bucket,
}

impl Buckets {
    /// When both buckets are full again and the address can be forgotten.
    fn idle_at(self) -> Micros {
        self.logins.full_at.max(self.failures.full_at)
    }
}

pub struct Limiter {
    epoch: Instant,
    addresses: moka::sync::Cache<IpAddr, Buckets>,
}

/// Forgets an address when its buckets are full again; reading it does not
/// keep it.
struct UntilFull {
    epoch: Instant,
}

impl UntilFull {
    fn left(&self, buckets: &Buckets, at: Instant) -> Option<Duration> {
        let now = micros_since(self.epoch, at);
        Some(Duration::from_micros(buckets.idle_at().saturating_sub(now)))
    }
}

impl moka::Expiry<IpAddr, Buckets> for UntilFull {
    fn expire_after_create(
        &self,
        _key: &IpAddr,
        value: &Buckets,
        created_at: Instant,
    ) -> Option<Duration> {
        self.left(value, created_at)
    }

    fn expire_after_update(
        &self,
        _key: &IpAddr,
        value: &Buckets,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.left(value, updated_at)
    }
}

fn micros_since(epoch: Instant, at: Instant) -> Micros {
    u64::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

/// Whole seconds, at least 1.
fn retry_after(wait: Micros) -> u64 {
    wait.div_ceil(1_000_000).max(1)
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(MAX_ADDRESSES)
    }
}

impl Limiter {
    pub fn new(max_addresses: u64) -> Self {
        let epoch = Instant::now();
        Limiter {
            epoch,
            addresses: moka::sync::Cache::builder()
                .max_capacity(max_addresses)
                .expire_after(UntilFull { epoch })
                .build(),
        }
    }

    /// A request to a login endpoint: refused while the address's failure
    /// bucket is empty, or its login bucket is; else one login is drawn.
    /// A refusal draws on neither bucket.
    pub fn login(&self, client: IpAddr, limits: &RateLimits) -> Result<(), Limited> {
        self.login_at(client, limits, Instant::now())
    }

    /// A credential that is not known good, before it is checked: refused
    /// while the address's failure bucket is empty. Draws on nothing.
    pub fn may_check(&self, client: IpAddr, limits: &RateLimits) -> Result<(), Limited> {
        self.may_check_at(client, limits, Instant::now())
    }

    /// A refused credential: one token of the address's failure bucket (an
    /// empty bucket stays empty).
    pub fn failed(&self, client: IpAddr, limits: &RateLimits) {
        self.failed_at(client, limits, Instant::now())
    }

    /// The addresses remembered, expired ones dropped first: for the gauge,
    /// read when metrics are scraped.
    pub fn addresses(&self) -> u64 {
        self.addresses.run_pending_tasks();
        self.addresses.entry_count()
    }

    fn login_at(&self, client: IpAddr, limits: &RateLimits, at: Instant) -> Result<(), Limited> {
        let now = micros_since(self.epoch, at);
        let (logins, failures) = (Rule::logins(limits), Rule::failures(limits));
        let mut verdict = Ok(());
        self.addresses.entry(key(client)).and_compute_with(|entry| {
            let mut buckets = entry.map(|e| e.into_value()).unwrap_or_default();
            let refused = match buckets.failures.wait(now, failures) {
                Some(wait) => Some((LimitKind::Failures, wait)),
                None => buckets
                    .logins
                    .wait(now, logins)
                    .map(|wait| (LimitKind::Login, wait)),
            };
            if let Some((kind, wait)) = refused {
                verdict = Err(Limited {
                    kind,
                    retry_after: retry_after(wait),
                });
                return moka::ops::compute::Op::Nop;
            }
            buckets.logins.draw(now, logins);
            moka::ops::compute::Op::Put(buckets)
        });
        verdict
    }

    fn may_check_at(
        &self,
        client: IpAddr,
        limits: &RateLimits,
        at: Instant,
    ) -> Result<(), Limited> {
        let Some(buckets) = self.addresses.get(&key(client)) else {
            return Ok(());
        };
        let now = micros_since(self.epoch, at);
        match buckets.failures.wait(now, Rule::failures(limits)) {
            Some(wait) => Err(Limited {
                kind: LimitKind::Failures,
                retry_after: retry_after(wait),
            }),
            None => Ok(()),
        }
    }

    fn failed_at(&self, client: IpAddr, limits: &RateLimits, at: Instant) {
        let now = micros_since(self.epoch, at);
        let rule = Rule::failures(limits);
        self.addresses.entry(key(client)).and_compute_with(|entry| {
            let mut buckets = entry.map(|e| e.into_value()).unwrap_or_default();
            if buckets.failures.wait(now, rule).is_some() {
                return moka::ops::compute::Op::Nop;
            }
            buckets.failures.draw(now, rule);
            moka::ops::compute::Op::Put(buckets)
        });
    }
}

/// The key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by
/// its /64, the smallest network a host is usually given, so that one host
/// cannot take a fresh budget with each of its addresses.
fn key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn limits(logins_per_second: u32, logins_burst: u32, failures_per_minute: u32) -> RateLimits {
        RateLimits {
            logins_per_second,
            logins_burst,
            failures_per_minute,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn the_login_bucket_holds_its_burst_and_refills_at_its_rate() {
        let limiter = Limiter::new(100);
        let l = limits(2, 3, 30);
        let t0 = limiter.epoch + SECOND;
        let a = ip("192.0.2.1");
        for i in 0..3 {
            assert_eq!(limiter.login_at(a, &l, t0), Ok(()), "login {i}");
        }
        // Empty: one token comes back every 500 ms.
        let refused = limiter.login_at(a, &l, t0);
        assert_eq!(
            refused,
            Err(Limited {
                kind: LimitKind::Login,
                retry_after: 1
            })
        );
        // A refusal drew nothing: still empty 499 ms later, one token at 500 ms.
        assert!(limiter
            .login_at(a, &l, t0 + Duration::from_millis(499))
            .is_err());
        assert_eq!(
            limiter.login_at(a, &l, t0 + Duration::from_millis(500)),
            Ok(())
        );
        assert!(limiter
            .login_at(a, &l, t0 + Duration::from_millis(500))
            .is_err());
        // Another address has its own buckets.
        assert_eq!(limiter.login_at(ip("192.0.2.2"), &l, t0), Ok(()));
    }

    #[test]
    fn an_empty_failure_bucket_refuses_logins_and_unchecked_credentials() {
        let limiter = Limiter::new(100);
        let l = limits(10, 50, 3);
        let t0 = limiter.epoch + SECOND;
        let a = ip("2001:db8::1");
        for _ in 0..3 {
            assert_eq!(limiter.may_check_at(a, &l, t0), Ok(()));
            limiter.failed_at(a, &l, t0);
        }
        // 3 per minute: one token every 20 s.
        let locked = Err(Limited {
            kind: LimitKind::Failures,
            retry_after: 20,
        });
        assert_eq!(limiter.may_check_at(a, &l, t0), locked);
        assert_eq!(limiter.login_at(a, &l, t0), locked);
        // Failures while empty (requests already past the check) keep it
        // empty, not emptier.
        limiter.failed_at(a, &l, t0);
        let later = t0 + Duration::from_millis(19_500);
        assert_eq!(
            limiter.may_check_at(a, &l, later),
            Err(Limited {
                kind: LimitKind::Failures,
                retry_after: 1
            })
        );
        assert_eq!(
            limiter.may_check_at(a, &l, t0 + Duration::from_secs(20)),
            Ok(())
        );
        // The same /64 is the same client; another /64 is not.
        assert!(limiter.may_check_at(ip("2001:db8::ffff"), &l, t0).is_err());
        assert!(limiter.may_check_at(ip("2001:db8:0:1::1"), &l, t0).is_ok());
    }

    #[test]
    fn a_login_refused_by_both_buckets_waits_for_the_failure_bucket() {
        let limiter = Limiter::new(100);
        let l = limits(1, 1, 1);
        let t0 = limiter.epoch + SECOND;
        let a = ip("198.51.100.7");
        assert_eq!(limiter.login_at(a, &l, t0), Ok(()));
        limiter.failed_at(a, &l, t0);
        assert_eq!(
            limiter.login_at(a, &l, t0),
            Err(Limited {
                kind: LimitKind::Failures,
                retry_after: 60
            })
        );
    }

    #[test]
    fn addresses_are_bounded_and_forgotten_once_their_buckets_are_full() {
        let limiter = Limiter::new(64);
        let l = limits(10, 50, 30);
        for i in 0..2_000u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = limiter.login(a, &l);
            limiter.failed(a, &l);
        }
        let kept = limiter.addresses();
        assert!(kept <= 64, "{kept} addresses kept, bound 64");
        assert!(kept > 0, "the limiter keeps the recent addresses");

        let full = Buckets::default();
        assert_eq!(full.idle_at(), 0, "a fresh address is idle at once");
        let mut used = Buckets::default();
        used.logins.draw(1_000, Rule::logins(&l));
        used.failures.draw(1_000, Rule::failures(&l));
        assert_eq!(
            used.idle_at(),
            1_000 + 2_000_000,
            "a failure is forgotten after 2 s"
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_the_ipv4_client() {
        assert_eq!(key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }
}
